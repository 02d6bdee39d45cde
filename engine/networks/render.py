"""Human views of a checked network: the text layer table (CLI) and Graphviz DOT (dashboard)."""

from __future__ import annotations

from engine.networks.layers import fmt_shape
from engine.networks.spec import LayerRow, validate_spec


def format_layer_table(rows: list[LayerRow], input_shape: tuple[int, ...] | None = None) -> str:
    """Aligned text table (#, layer, output shape, params) ending with the total, like the
    per-layer summary DIGITS and Keras print; an input row is added when its shape is given."""
    header = ("#", "layer", "output shape", "params")
    lines = [(str(r.index), r.description, fmt_shape(r.output_shape), f"{r.params:,}")
             for r in rows]
    if input_shape is not None:
        lines.insert(0, ("", "input", fmt_shape(tuple(input_shape)), ""))
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(4)]

    def fmt(row: tuple[str, ...]) -> str:
        return (f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                f"{row[3]:>{widths[3]}}").rstrip()

    rule = "-" * len(fmt(tuple("-" * w for w in widths)))
    total = f"Total params: {sum(r.params for r in rows):,}"
    return "\n".join([fmt(header), rule, *map(fmt, lines), rule, total])


def _label(*parts: str) -> str:
    """A quoted DOT label, one line per part (DOT's \\n escape), user text escaped."""
    escaped = [p.replace("\\", "\\\\").replace('"', '\\"') for p in parts]
    return '"' + "\\n".join(escaped) + '"'


def spec_to_graphviz(spec: str | bytes | dict | list, input_shape: tuple[int, int, int],
                     num_classes: int) -> str:
    """DOT source: input -> one box per layer (description, output shape, params) -> output.

    Validates first, so the picture always shows a network that would build.
    """
    rows = validate_spec(spec, input_shape, num_classes)
    lines = ["digraph network {", "  rankdir=TB;",
             ('  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
              'fontname="Helvetica", fontsize=11];'),
             '  edge [color="#667085"];',
             (f"  input [label={_label('input', fmt_shape(tuple(input_shape)))}, "
              'shape=ellipse, fillcolor="#e7f6ec"];')]
    previous = "input"
    for row in rows:
        node = f"layer{row.index}"
        parts = [f"{row.index}: {row.description}", fmt_shape(row.output_shape)]
        if row.params:
            parts.append(f"{row.params:,} params")
        lines.append(f"  {node} [label={_label(*parts)}];")
        lines.append(f"  {previous} -> {node};")
        previous = node
    lines.append(f"  output [label={_label(f'{num_classes} class scores')}, shape=ellipse, "
                 'fillcolor="#fdf1e6"];')
    lines.append(f"  {previous} -> output;")
    lines.append("}")
    return "\n".join(lines) + "\n"
