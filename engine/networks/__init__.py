"""Networks: a zoo and a declarative, data-only network spec, checked before training.

    rows = validate_spec(zoo_spec("lenet"), (1, 28, 28), 10)   # table rows, or SpecError
    model = build_network(zoo_spec("lenet"), (1, 28, 28), 10)  # nn.Sequential

Names load on first use: `from engine.networks import zoo_names` does not import PyTorch.
"""

from engine.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "errors": ("SpecError",),
    "render": ("format_layer_table", "spec_to_graphviz"),
    "spec": ("LayerRow", "build_network", "count_parameters", "dump_spec", "parse_spec",
             "recommended_input", "validate_spec"),
    "tvlayer": ("TORCHVISION_MODELS",),
    "zoo": ("zoo_info", "zoo_names", "zoo_spec"),
})
