"""Checking of layer parameters: a small schema language, so every layer type is data only.

Each layer type declares its parameters as ``Param`` objects; ``check_args`` turns the user's
raw mapping into clean Python values (ints, (h, w) pairs, floats) or raises a SpecError that
names the layer and the parameter, and suggests the closest known name for typos.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from engine.networks.errors import SpecError, short
from engine.state import limits

REQUIRED = object()

#: Keys users coming from PyTorch/Caffe tend to write; they are inferred, so say so.
INFERRED_KEYS = ("in", "in_channels", "in_features", "num_features", "input")


@dataclass(frozen=True)
class Param:
    """One parameter of a layer type.

    kind: "int" (whole number >= minimum), "pair" (whole number or [height, width] pair,
    each >= minimum), "prob" (0 <= p < 1), "float" (>= 0), "bool", "out" (whole number >= 1
    or the string "classes"), "choice" (a string from ``choices``).
    """

    kind: str
    default: Any = REQUIRED
    minimum: int = 1
    choices: tuple[str, ...] = ()


def suggest(word: str, options: list[str] | tuple[str, ...],
            aliases: dict[str, str] | None = None) -> str:
    """' (did you mean 'x'?)' for a near miss or a known alias (e.g. a PyTorch or Caffe name),
    else ''; typos and names from other frameworks are the commonest spec errors."""
    key = str(word).lower().replace("_", "")
    close = [aliases[key]] if aliases and key in aliases else []
    close = close or difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(value: Any, minimum: int) -> bool:
    return _is_int(value) and minimum <= value <= limits.LAYER_SIZE.value


def _bound(minimum: int) -> str:
    cap = f"{limits.LAYER_SIZE.value:,}"
    return (f"a positive whole number (at most {cap})" if minimum >= 1
            else f"a whole number >= 0 (at most {cap})")


def _coerce(name: str, spec: Param, value: Any, fail) -> Any:
    """One raw value -> a clean value, or ``fail(message)``."""
    if spec.kind == "int":
        if not _whole(value, spec.minimum):
            raise fail(f"{name} must be {_bound(spec.minimum)}, got {short(value)}")
        return value
    if spec.kind == "pair":
        if _whole(value, spec.minimum):
            return (value, value)
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_whole(v, spec.minimum) for v in value)):
            return (value[0], value[1])
        raise fail(f"{name} must be {_bound(spec.minimum)} or a [height, width] pair of them, "
                   f"got {short(value)}")
    if spec.kind == "prob":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise fail(f"{name} must be a probability from 0 up to (not including) 1, "
                       f"got {short(value)}")
        return float(value)
    if spec.kind == "float":
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0 <= value <= limits.LAYER_SIZE.value):
            raise fail(f"{name} must be a number from 0 to {limits.LAYER_SIZE.value:,}, "
                       f"got {short(value)}")
        return float(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise fail(f"{name} must be true or false, got {short(value)}")
        return value
    if spec.kind == "out":
        if value == "classes" or _whole(value, 1):
            return value
        raise fail(f"{name} must be {_bound(1)} or \"classes\", got {short(value)}")
    if spec.kind == "choice":
        if value in spec.choices:
            return value
        raise fail(f"{name} {short(value)} is not supported"
                   f"{suggest(str(value)[:100], spec.choices)}; "
                   f"choose one of: {', '.join(spec.choices)}")
    raise AssertionError(f"unknown parameter kind {spec.kind}")


def _unknown_key(key: Any, schema: dict[str, Param], fail) -> SpecError:
    allowed = ", ".join(schema) if schema else "none"
    key = key if len(str(key)) <= 60 else short(key)
    if key in INFERRED_KEYS:
        return fail(f"'{key}' is not a parameter: input sizes are inferred from the previous "
                    "layer, remove it")
    if key in ("weights", "pretrained"):
        return fail(f"'{key}' is not supported: networks always start from random weights "
                    "(no downloads); remove it")
    return fail(f"unknown parameter '{key}'{suggest(str(key), list(schema))}; "
                f"allowed: {allowed}")


def check_args(raw: dict, schema: dict[str, Param], fail) -> dict[str, Any]:
    """Raw layer mapping (with its 'type') -> {param: clean value}, defaults filled in.

    ``fail(message)`` must return the SpecError to raise, so messages carry the layer.
    """
    for key in raw:
        if key != "type" and key not in schema:
            raise _unknown_key(key, schema, fail)
    args: dict[str, Any] = {}
    for name, spec in schema.items():
        if name in raw:
            args[name] = _coerce(name, spec, raw[name], fail)
        elif spec.default is REQUIRED:
            raise fail(f"missing required parameter '{name}'")
        else:
            args[name] = spec.default
    return args
