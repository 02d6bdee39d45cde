"""What differs between two networks, layer by layer, in the words of the DIGITS lab:
"conv1 20 -> 75 filters", "+ relu after pool1", with the parameters each change adds."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from engine.networks.spec import LayerRow, validate_spec
from engine.networks.zoo import zoo_spec

_SHORT = {"conv": "conv", "maxpool": "pool", "avgpool": "pool", "adaptiveavgpool": "pool",
          "linear": "fc"}


def as_spec(network: str | dict[str, Any]) -> dict[str, Any]:
    """A zoo name or a spec -> the spec."""
    return zoo_spec(network) if isinstance(network, str) else network


def layer_names(rows: list[LayerRow]) -> list[str]:
    """conv1, pool1, conv2, pool2, flatten1, fc1, relu1, fc2: numbered per kind."""
    seen: Counter[str] = Counter()
    names = []
    for r in rows:
        kind = _SHORT.get(r.type, r.type)
        seen[kind] += 1
        names.append(f"{kind}{seen[kind]}")
    return names


def _change(name: str, a: LayerRow, b: LayerRow) -> str:
    words_a, words_b = a.description.split(), b.description.split()
    if len(words_a) == len(words_b):
        changed = [f"{x} -> {y}" for x, y in zip(words_a, words_b, strict=True) if x != y]
        what = ", ".join(changed)
    else:
        what = f"{a.description} -> {b.description}"
    return f"{name} {what} ({b.params - a.params:+,} parameters)"


def network_diff(a: str | dict[str, Any], b: str | dict[str, Any],
                 input_shape: tuple[int, int, int], classes: int) -> list[str]:
    """The changes from network a to network b, one line each; [] when they are the same.
    The last line compares the total parameters."""
    rows_a = validate_spec(as_spec(a), input_shape, classes)
    rows_b = validate_spec(as_spec(b), input_shape, classes)
    names_a = layer_names(rows_a)
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=[r.type for r in rows_a], b=[r.type for r in rows_b],
                                      autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if rows_a[i].description != rows_b[j].description:
                    lines.append(_change(names_a[i], rows_a[i], rows_b[j]))
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                lines.append(f"{names_a[i]} {rows_a[i].description} -> "
                             f"{rows_b[j].description}")
            continue
        for i in range(i1, i2):
            lines.append(f"- {rows_a[i].description} (was {names_a[i]})")
        after = names_a[i1 - 1] if i1 > 0 else None
        for j in range(j1, j2):
            where = f"after {after}" if after else "at the start"
            lines.append(f"+ {rows_b[j].description} {where}"
                         + (f" ({rows_b[j].params:+,} parameters)" if rows_b[j].params else ""))
    if lines:
        total_a, total_b = sum(r.params for r in rows_a), sum(r.params for r in rows_b)
        lines.append(f"parameters {total_a:,} -> {total_b:,}")
    return lines
