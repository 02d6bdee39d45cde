"""Networks: a zoo and a declarative, data-only network spec, checked before training.

    rows = validate_spec(zoo_spec("lenet"), (1, 28, 28), 10)   # table rows, or SpecError
    model = build_network(zoo_spec("lenet"), (1, 28, 28), 10)  # nn.Sequential
"""

from engine.networks.errors import SpecError
from engine.networks.render import format_layer_table, spec_to_graphviz
from engine.networks.spec import (
    LayerRow,
    build_network,
    count_parameters,
    dump_spec,
    parse_spec,
    recommended_input,
    validate_spec,
)
from engine.networks.tvlayer import MODELS as TORCHVISION_MODELS
from engine.networks.zoo import zoo_info, zoo_names, zoo_spec

__all__ = [
    "TORCHVISION_MODELS",
    "LayerRow",
    "SpecError",
    "build_network",
    "count_parameters",
    "dump_spec",
    "format_layer_table",
    "parse_spec",
    "recommended_input",
    "spec_to_graphviz",
    "validate_spec",
    "zoo_info",
    "zoo_names",
    "zoo_spec",
]
