"""Declarative network specs: read (JSON/YAML), check by shape propagation, build.

A spec is plain data: ``{"name", "description", "input": {"channels", "height", "width"},
"layers": [{"type": ..., params...}, ...]}``, or just the list of layers. It is read with
``json.loads`` / ``yaml.safe_load`` only, so a spec can never run code; layer types come
from a fixed registry (engine.networks.layers), never from names looked up in Python.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from math import prod
from typing import Any

import yaml
from torch import nn

from engine.networks.errors import SpecError, short
from engine.networks.layers import ALIASES, KINDS, REFUSED, Layer, fmt_shape
from engine.networks.params import check_args, suggest
from engine.state import limits

TOP_KEYS = ("name", "description", "input", "layers")
INPUT_KEYS = ("channels", "height", "width")


@dataclass
class LayerRow:
    """One line of the layer table: what a layer outputs and how many weights it adds."""

    index: int
    type: str
    description: str
    output_shape: tuple[int, ...]
    params: int


# --- reading -----------------------------------------------------------------------------

def _yaml_error(exc: yaml.YAMLError) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError):
        return SpecError(f"the spec is not plain data{where}: {problem}; specs may only hold "
                         "mappings, lists, numbers, strings and booleans")
    return SpecError(f"the spec is not valid YAML or JSON{where}: {problem}")


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases: `*a` repeats a whole subtree, and a few nested ones make a
    354-byte spec expand to gigabytes (the "billion laughs"). A spec never needs them."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            mark = event.start_mark
            raise SpecError(f"the spec uses a YAML alias (*{str(event.anchor)[:40]}, line "
                            f"{mark.line + 1}); aliases are not allowed in specs: write the "
                            "layers out")
        return super().compose_node(parent, index)


def _load_text(text: str) -> Any:
    """JSON first (exact messages for JSON users), then safe YAML, which never runs code.

    Refused before parsing: text above limits.SPEC_BYTES; while parsing: YAML aliases and
    nesting too deep for the parser; after: nesting deeper than limits.SPEC_DEPTH."""
    if not text.strip():
        raise SpecError("the spec is empty")
    cap = limits.SPEC_BYTES.value
    if len(text) > cap:
        raise SpecError(f"the spec is {limits.size(len(text))}, above the "
                        f"{limits.size(cap)} limit ({limits.SPEC_BYTES.name})")
    try:
        try:
            obj = json.loads(text)
        except ValueError:
            try:
                obj = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
            except yaml.YAMLError as exc:
                raise _yaml_error(exc) from None
    except RecursionError:
        raise _too_deep() from None
    _check_depth(obj)
    return obj


def _too_deep() -> SpecError:
    return SpecError(f"the spec is nested more than {limits.SPEC_DEPTH.value} levels deep "
                     f"({limits.SPEC_DEPTH.name}); a spec is a list of flat layer mappings")


def _check_depth(obj: Any) -> None:
    """Iteratively (no recursion to exhaust): refuse data nested deeper than the limit."""
    cap = limits.SPEC_DEPTH.value
    stack = [(obj, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > cap:
                raise _too_deep()
            seen += len(value)
            if seen > 1_000_000:
                raise SpecError("the spec holds more than a million values; it cannot be a "
                                "network spec")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items)


def _check_input(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise SpecError("'input' must be a mapping with channels, height and width")
    for key in value:
        if key not in INPUT_KEYS:
            raise SpecError(f"unknown key {short(key)} in 'input'"
                            f"{suggest(str(key)[:60], INPUT_KEYS)}; "
                            f"allowed: {', '.join(INPUT_KEYS)}")
    for key in INPUT_KEYS:
        v = value.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65536:
            raise SpecError(f"input {key} must be a whole number from 1 to 65536, "
                            f"got {short(v)}")
    return {key: value[key] for key in INPUT_KEYS}


def _check_layer_shape(index: int, layer: Any) -> dict:
    """Structure only (a mapping with a string 'type'); parameters are checked later."""
    if not isinstance(layer, dict):
        raise SpecError(f"each layer must be a mapping like {{type: relu}}, got {short(layer)}",
                        index)
    if "type" not in layer:
        raise SpecError(f"missing 'type' (one of: {', '.join(KINDS)})", index)
    if not isinstance(layer["type"], str):
        raise SpecError(f"'type' must be a string, got {short(layer['type'])}", index)
    for key in layer:
        if not isinstance(key, str):
            raise SpecError(f"parameter names must be strings, got {short(key)}", index,
                            layer["type"])
    return layer


def parse_spec(text_or_obj: str | bytes | dict | list) -> dict:
    """Any accepted form (JSON/YAML text, dict, bare layer list) -> a normalised new dict.

    Checks syntax and structure only; ``validate_spec`` checks layers against an input.
    """
    if isinstance(text_or_obj, bytes):
        try:
            text_or_obj = text_or_obj.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError(f"the spec is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if isinstance(text_or_obj, str):
        obj = _load_text(text_or_obj)
    else:
        _check_depth(text_or_obj)
        obj = copy.deepcopy(text_or_obj)
    if isinstance(obj, list):
        obj = {"layers": obj}
    if not isinstance(obj, dict):
        raise SpecError("a spec must be a mapping with a 'layers' list, or a list of layers; "
                        f"got {type(obj).__name__}")
    for key in obj:
        if key not in TOP_KEYS:
            raise SpecError(f"unknown top-level key {short(key)}"
                            f"{suggest(str(key)[:60], TOP_KEYS)}; allowed: {', '.join(TOP_KEYS)}")
    if not isinstance(obj.get("layers"), list):
        raise SpecError("a spec needs a 'layers' list")
    if len(obj["layers"]) > limits.SPEC_LAYERS.value:
        raise SpecError(f"the spec has {len(obj['layers']):,} layers, above the limit of "
                        f"{limits.SPEC_LAYERS.value:,} ({limits.SPEC_LAYERS.name})")
    spec: dict[str, Any] = {"name": obj.get("name", "custom"),
                            "description": obj.get("description", "")}
    for key in ("name", "description"):
        if not isinstance(spec[key], str):
            raise SpecError(f"'{key}' must be a string, got {short(spec[key])}")
    if obj.get("input") is not None:
        spec["input"] = _check_input(obj["input"])
    spec["layers"] = [_check_layer_shape(i, layer) for i, layer in enumerate(obj["layers"])]
    return spec


def dump_spec(spec: str | bytes | dict | list, fmt: str = "yaml") -> str:
    """Spec -> editable text ("yaml": one flow mapping per layer; "json": indented)."""
    spec = parse_spec(spec)
    if fmt == "json":
        return json.dumps(spec, indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)
    raise ValueError(f"unknown format {fmt!r}; use 'yaml' or 'json'")


def recommended_input(spec: str | bytes | dict | list) -> tuple[int, int, int] | None:
    """The spec's recommended (C, H, W), or None when it does not say."""
    shape = parse_spec(spec).get("input")
    return None if shape is None else (shape["channels"], shape["height"], shape["width"])


# --- checking ----------------------------------------------------------------------------

def _check_target(input_shape: Any, num_classes: Any) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                  for d in shape):
        raise SpecError(f"input shape must be three positive whole numbers (channels, height, "
                        f"width), got {short(input_shape)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SpecError(f"the number of classes must be a positive whole number, "
                        f"got {short(num_classes)}")
    if num_classes > limits.CLASSES.value:
        raise SpecError(f"{num_classes:,} classes is above the limit of "
                        f"{limits.CLASSES.value:,} ({limits.CLASSES.name})")
    return shape  # type: ignore[return-value]


def _kind_of(index: int, type_: str, count: int):
    if len(type_) > 40:
        raise SpecError(f"unknown layer type {short(type_)}; known types: {', '.join(KINDS)}",
                        index, short(type_))
    if type_.lower() in REFUSED:
        raise SpecError(REFUSED[type_.lower()], index, type_)
    if type_ not in KINDS:
        raise SpecError(f"unknown layer type '{type_}'{suggest(type_, list(KINDS), ALIASES)}; "
                        f"known types: {', '.join(KINDS)}", index, type_)
    if type_ == "torchvision" and index != count - 1:
        after = "1 layer follows" if index == count - 2 else f"{count - 1 - index} layers follow"
        raise SpecError(f"a torchvision model must be the last layer (it ends with its own "
                        f"classifier), but {after} it", index, type_)
    return KINDS[type_]


def _check_end(rows: list[LayerRow], num_classes: int) -> None:
    """The network must end with one raw score per class, as cross-entropy expects."""
    last = rows[-1]
    hint = "end with a linear layer with out: classes"
    if len(last.output_shape) != 1:
        raise SpecError(f"the network ends with a {fmt_shape(last.output_shape)} image, but it "
                        f"must end with {num_classes} class scores; add flatten, then {hint}",
                        last.index, last.type)
    if last.output_shape[0] != num_classes:
        raise SpecError(f"the last layer outputs {last.output_shape[0]} values but the dataset "
                        f"has {num_classes} classes; {hint}", last.index, last.type)


def _check(spec: Any, input_shape: Any, num_classes: Any) -> list[tuple[Layer, LayerRow]]:
    """Walk the layers, propagating the shape; the single source of truth for both the table
    and the built module, so they can never disagree."""
    layers = parse_spec(spec)["layers"]
    shape = _check_target(input_shape, num_classes)
    if not layers:
        raise SpecError("the network has no layers; add at least flatten and "
                        "linear (out: classes)")
    checked = []
    total_params, activations = 0, prod(shape)
    for index, raw in enumerate(layers):
        type_ = raw["type"]
        kind = _kind_of(index, type_, len(layers))
        args = check_args(raw, kind.params, lambda m, i=index, t=type_: SpecError(m, i, t))
        layer = Layer(index, type_, args, shape, num_classes)
        shape, params, description = kind.infer(layer)
        total_params += params
        activations += prod(shape)
        _check_budget(layer, shape, total_params, activations)
        checked.append((layer, LayerRow(index, type_, description, shape, params)))
    _check_end([row for _, row in checked], num_classes)
    return checked


def _check_budget(layer: Layer, shape: tuple[int, ...], params: int, activations: int) -> None:
    """Refuse, at the layer that crosses it, a network whose weights or per-image activations
    exceed the limits: the figure in the message, long before an allocator fails."""
    cap = limits.PARAMETERS.value
    if params > cap:
        raise layer.fail(f"the network reaches {params:,} parameters "
                         f"({limits.size(4 * params)} of fp32 weights), above the limit of "
                         f"{cap:,} ({limits.PARAMETERS.name})")
    cap = limits.ACTIVATIONS.value
    if activations > cap:
        raise layer.fail(f"outputs {fmt_shape(shape)} per image; the layers so far output "
                         f"{activations:,} values per image ({limits.size(4 * activations)}, "
                         f"times the batch size in training), above the limit of {cap:,} "
                         f"({limits.ACTIVATIONS.name})")


def validate_spec(spec: str | bytes | dict | list, input_shape: tuple[int, int, int],
                  num_classes: int) -> list[LayerRow]:
    """Check a spec for images of ``input_shape`` (C, H, W) and ``num_classes`` classes.

    Returns one row per layer (output shape without batch, parameter count); raises
    SpecError naming the first bad layer. Pure arithmetic, so it is cheap enough to run on
    every keystroke of an editor.
    """
    return [row for _, row in _check(spec, input_shape, num_classes)]


def build_network(spec: str | bytes | dict | list, input_shape: tuple[int, int, int],
                  num_classes: int) -> nn.Sequential:
    """Validate, then build an ``nn.Sequential`` with one module per spec layer (module i is
    layer i of the table). Initialisation draws from torch's global RNG, so
    ``torch.manual_seed`` makes it reproducible."""
    return nn.Sequential(*[KINDS[layer.type].build(layer)
                           for layer, _ in _check(spec, input_shape, num_classes)])


def count_parameters(model: nn.Module) -> int:
    """Number of learnable values (all parameters, trainable or frozen)."""
    return sum(p.numel() for p in model.parameters())
