"""Network specs and zoo: shape tables match the built modules, bad specs fail clearly."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from engine.networks import (
    LayerRow,
    SpecError,
    build_network,
    count_parameters,
    dump_spec,
    format_layer_table,
    parse_spec,
    recommended_input,
    spec_to_graphviz,
    validate_spec,
    zoo_info,
    zoo_names,
    zoo_spec,
)

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
COLOUR_NETS = ("small-cnn", "resnet-small", "resnet18")

ZOO_CASES = [(name, MNIST) for name in zoo_names()]
ZOO_CASES += [(name, CIFAR) for name in COLOUR_NETS] + [("resnet18", (3, 64, 64))]


def assert_rows_match_model(rows: list[LayerRow], model: nn.Sequential,
                            input_shape: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    """Run the model layer by layer: every row's shape and params must be what torch sees."""
    assert len(model) == len(rows)
    x = torch.randn(batch, *input_shape)
    for row, module in zip(rows, model, strict=True):
        x = module(x)
        assert tuple(x.shape[1:]) == row.output_shape, row
        assert count_parameters(module) == row.params, row
    assert sum(r.params for r in rows) == count_parameters(model)
    return x


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- zoo ---------------------------------------------------------------------------------

def test_zoo_lists_the_lab_networks_with_info():
    names = zoo_names()
    assert names[:2] == ["lenet", "lenet-wide"]
    assert {"mlp", "small-cnn", "resnet-small", "resnet18"} <= set(names)
    info = {i["name"]: i for i in zoo_info()}
    assert list(info) == names
    assert info["lenet"]["input"] == {"channels": 1, "height": 28, "width": 28}
    assert info["resnet18"]["input"] == {"channels": 3, "height": 224, "width": 224}
    assert all(i["description"] for i in info.values())


def test_zoo_spec_is_a_copy_and_unknown_names_list_choices():
    spec = zoo_spec("lenet")
    spec["layers"][0]["out"] = 999
    assert zoo_spec("lenet")["layers"][0]["out"] == 20
    assert recommended_input(zoo_spec("resnet-small")) == CIFAR
    with pytest.raises(ValueError, match="lenet-wide"):
        zoo_spec("lenet5")


@pytest.mark.parametrize(("name", "shape"), ZOO_CASES)
def test_zoo_network_validates_builds_and_runs(name, shape):
    rows = validate_spec(zoo_spec(name), shape, 10)
    model = build_network(zoo_spec(name), shape, 10)
    assert isinstance(model, nn.Sequential)
    out = assert_rows_match_model(rows, model, shape)
    assert out.shape == (2, 10)
    assert rows[-1].output_shape == (10,)


def test_lenet_matches_digits():
    rows = validate_spec(zoo_spec("lenet"), MNIST, 10)
    table = [(r.description, r.output_shape, r.params) for r in rows]
    assert table == [
        ("conv 20 5x5 s1", (20, 24, 24), 520),
        ("maxpool 2x2 s2", (20, 12, 12), 0),
        ("conv 50 5x5 s1", (50, 8, 8), 25_050),
        ("maxpool 2x2 s2", (50, 4, 4), 0),
        ("flatten", (800,), 0),
        ("linear 500", (500,), 400_500),
        ("relu", (500,), 0),
        ("linear 10 (classes)", (10,), 5_010),
    ]
    assert count_parameters(build_network(zoo_spec("lenet"), MNIST, 10)) == 431_080


def test_lenet_wide_has_relu_after_pool1_and_wider_convs():
    layers = zoo_spec("lenet-wide")["layers"]
    assert [layer["type"] for layer in layers[:4]] == ["conv", "maxpool", "relu", "conv"]
    assert (layers[0]["out"], layers[3]["out"]) == (75, 100)
    model = build_network(zoo_spec("lenet-wide"), MNIST, 10)
    assert isinstance(model[1], nn.MaxPool2d) and isinstance(model[2], nn.ReLU)
    assert (model[0].out_channels, model[3].out_channels) == (75, 100)


def test_classes_follows_the_dataset():
    rows = validate_spec(zoo_spec("lenet"), MNIST, 3)
    assert rows[-1].output_shape == (3,) and rows[-1].params == 500 * 3 + 3
    assert build_network(zoo_spec("mlp"), (1, 8, 8), 3)(torch.zeros(4, 1, 8, 8)).shape == (4, 3)


def test_torchvision_layer_adapts_first_conv_to_grey_input():
    model = build_network(zoo_spec("resnet18"), MNIST, 10)
    assert model[0].conv1.in_channels == 1
    spec = [{"type": "torchvision", "name": "mobilenet_v3_small"}]
    rows = validate_spec(spec, (3, 32, 32), 7)
    assert rows[0].params == count_parameters(build_network(spec, (3, 32, 32), 7))


def test_build_is_deterministic_given_the_seed():
    def weights(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return list(build_network(zoo_spec("small-cnn"), MNIST, 10).state_dict().values())

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


# --- every layer type --------------------------------------------------------------------

ALL_TYPES = [
    {"type": "conv", "out": 8, "kernel": [3, 5], "padding": [1, 2]},
    {"type": "batchnorm"},
    {"type": "leakyrelu", "slope": 0.1},
    {"type": "conv", "out": 8, "kernel": 3, "stride": 2, "padding": 1, "groups": 4,
     "bias": False},
    {"type": "layernorm"},
    {"type": "elu"},
    {"type": "avgpool", "kernel": 3, "stride": 1, "padding": 1},
    {"type": "dropout2d", "p": 0.1},
    {"type": "residual", "out": 16, "stride": 2},
    {"type": "residual", "out": 16},
    {"type": "gelu"},
    {"type": "adaptiveavgpool", "size": 2},
    {"type": "flatten"},
    {"type": "linear", "out": 32, "bias": False},
    {"type": "batchnorm"},
    {"type": "layernorm"},
    {"type": "tanh"},
    {"type": "dropout", "p": 0.3},
    {"type": "sigmoid"},
    {"type": "linear", "out": "classes"},
]


def test_every_layer_type_shapes_and_params_match_torch():
    rows = validate_spec(ALL_TYPES, (3, 20, 20), 5)
    shapes = [r.output_shape for r in rows]
    assert shapes[0] == (8, 20, 20) and shapes[3] == (8, 10, 10) and shapes[8] == (16, 5, 5)
    assert "projection" in rows[8].description and "projection" not in rows[9].description
    model = build_network(ALL_TYPES, (3, 20, 20), 5)
    assert isinstance(model[1], nn.BatchNorm2d) and isinstance(model[14], nn.BatchNorm1d)
    assert assert_rows_match_model(rows, model, (3, 20, 20)).shape == (2, 5)


# --- reading specs -----------------------------------------------------------------------

@pytest.mark.parametrize("name", zoo_names())
def test_json_and_yaml_round_trips(name):
    spec = zoo_spec(name)
    assert parse_spec(json.dumps(spec)) == spec
    assert parse_spec(dump_spec(spec, "json")) == spec
    assert parse_spec(dump_spec(spec, "yaml")) == spec
    assert parse_spec(yaml.safe_dump(spec)) == spec


def test_hand_written_yaml_and_bare_list():
    text = """
    # LeNet-ish, typed by a user
    name: tiny
    layers:
      - {type: conv, out: 6, kernel: 5}
      - type: maxpool
        kernel: 2
      - {type: flatten}
      - {type: linear, out: classes}
    """
    spec = parse_spec(text)
    assert spec["name"] == "tiny" and spec["layers"][1] == {"type": "maxpool", "kernel": 2}
    assert validate_spec(spec, MNIST, 10)[1].output_shape == (6, 12, 12)
    bare = parse_spec("[{type: flatten}, {type: linear, out: classes}]")
    assert bare == {"name": "custom", "description": "",
                    "layers": [{"type": "flatten"}, {"type": "linear", "out": "classes"}]}


def test_parse_copies_its_input():
    layers = [{"type": "flatten"}, {"type": "linear", "out": "classes"}]
    parse_spec(layers)["layers"][0]["type"] = "relu"
    assert layers[0]["type"] == "flatten"


def test_yaml_cannot_run_code(tmp_path):
    target = tmp_path / "pwned"
    for text in (f"!!python/object/apply:os.mkdir ['{target}']",
                 f"layers:\n  - !!python/object/apply:os.mkdir ['{target}']"):
        with pytest.raises(SpecError, match="not plain data") as info:
            parse_spec(text)
        assert info.value.layer_index is None
    assert not target.exists()


@pytest.mark.parametrize("text", ["layers: [", "{\"layers\": [}", "layers:\n\t- x"])
def test_bad_syntax_is_a_spec_error(text):
    with pytest.raises(SpecError, match=r"not valid YAML or JSON \(line \d+"):
        parse_spec(text)


@pytest.mark.parametrize(("obj", "message"), [
    ("", "empty"),
    ("42", "must be a mapping"),
    ({"layers": [], "nmae": "x"}, "unknown top-level key 'nmae' \\(did you mean 'name'\\?\\)"),
    ({"name": "x"}, "needs a 'layers' list"),
    ({"layers": [], "input": {"channels": 0, "height": 28, "width": 28}}, "input channels"),
])
def test_bad_structure_is_a_spec_error(obj, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(obj)
    assert info.value.layer_index is None


# --- invalid specs name the layer --------------------------------------------------------

CONV_TAIL = [{"type": "flatten"}, {"type": "linear", "out": "classes"}]

INVALID = [
    ("unknown type", [{"type": "convolution", "out": 4, "kernel": 3}, *CONV_TAIL], 0,
     "unknown layer type 'convolution' \\(did you mean 'conv'\\?\\)"),
    ("unknown key", [{"type": "conv", "out": 4, "kernal": 3}, *CONV_TAIL], 0,
     "layer 0 \\(conv\\): unknown parameter 'kernal' \\(did you mean 'kernel'\\?\\)"),
    ("inferred key", [{"type": "flatten"}, {"type": "linear", "in": 784, "out": 10}], 1,
     "'in' is not a parameter: input sizes are inferred"),
    ("missing param", [{"type": "conv", "kernel": 3}, *CONV_TAIL], 0,
     "missing required parameter 'out'"),
    ("missing type", [{"out": 3}, *CONV_TAIL], 0, "missing 'type'"),
    ("bad value", [{"type": "conv", "out": 4, "kernel": 0}, *CONV_TAIL], 0,
     "kernel must be a positive whole number"),
    ("bool is not int", [{"type": "conv", "out": True, "kernel": 3}, *CONV_TAIL], 0,
     "out must be a positive whole number"),
    ("bad probability", [{"type": "flatten"}, {"type": "dropout", "p": 1.0},
                         {"type": "linear", "out": "classes"}], 1, "p must be a probability"),
    ("kernel too large", [*zoo_spec("lenet")["layers"][:4], {"type": "conv", "out": 8,
                                                            "kernel": 5}, *CONV_TAIL], 4,
     "layer 4 \\(conv\\): kernel 5 is larger than the 4x4 input"),
    ("pool too large", [{"type": "maxpool", "kernel": 30}, *CONV_TAIL], 0,
     "kernel 30 is larger than the 28x28 input"),
    ("wrong class count", zoo_spec("lenet")["layers"][:7], 6,
     "the last layer outputs 500 values but the dataset has 10 classes"),
    ("ends with an image", [{"type": "conv", "out": 10, "kernel": 3}], 0,
     "ends with a 10x26x26 image.*add flatten"),
    ("linear before flatten", [{"type": "conv", "out": 4, "kernel": 3},
                               {"type": "linear", "out": "classes"}], 1,
     "gets a 4x26x26 image; add a flatten layer before layer 1"),
    ("conv after flatten", [{"type": "flatten"}, {"type": "conv", "out": 4, "kernel": 3}], 1,
     "needs an image input.*must come before flatten"),
    ("softmax", [*CONV_TAIL, {"type": "softmax"}], 2, "remove this layer.*cross-entropy"),
    ("torchvision not last", [{"type": "torchvision", "name": "resnet18"}, {"type": "relu"}], 0,
     "must be the last layer"),
    ("torchvision unknown", [{"type": "torchvision", "name": "resnet19"}], 0,
     "'resnet19' is not supported \\(did you mean 'resnet18'\\?\\)"),
    ("torchvision weights", [{"type": "torchvision", "name": "resnet18", "weights": "DEFAULT"}],
     0, "'weights' is not supported"),
    ("torchvision too small", [{"type": "maxpool", "kernel": 4},
                               {"type": "torchvision", "name": "densenet121"}], 1,
     "densenet121 cannot run on a 1x7x7 input"),
    ("bad groups", [{"type": "conv", "out": 4, "kernel": 3, "groups": 3}, *CONV_TAIL], 0,
     "groups 3 must divide"),
]


@pytest.mark.parametrize(("layers", "index", "message"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_invalid_spec_names_the_layer(layers, index, message):
    with pytest.raises(SpecError, match=message) as info:
        validate_spec(layers, MNIST, 10)
    assert info.value.layer_index == index
    assert str(info.value).startswith(f"layer {index}")
    with pytest.raises(SpecError):
        build_network(layers, MNIST, 10)


@pytest.mark.parametrize(("layers", "shape", "classes", "message"), [
    ([], MNIST, 10, "no layers"),
    (CONV_TAIL, (1, 28), 10, "input shape"),
    (CONV_TAIL, (1, 0, 28), 10, "input shape"),
    (CONV_TAIL, MNIST, 0, "number of classes"),
])
def test_invalid_target_is_a_spec_error(layers, shape, classes, message):
    with pytest.raises(SpecError, match=message) as info:
        validate_spec(layers, shape, classes)
    assert info.value.layer_index is None


# --- views -------------------------------------------------------------------------------

def test_layer_table_is_aligned_with_total():
    rows = validate_spec(zoo_spec("lenet"), MNIST, 10)
    text = format_layer_table(rows, MNIST)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "layer", "output", "shape", "params"]
    assert lines[-1] == "Total params: 431,080"
    conv = next(line for line in lines if "conv 20 5x5 s1" in line)
    assert conv.split()[-2:] == ["20x24x24", "520"]
    body = [line for line in lines[2:-2] if line.strip()]
    assert len(body) == len(rows) + 1  # input row + one per layer
    column = lines[0].index("output shape")
    for line, row in zip(body[1:], rows, strict=True):
        assert line[column:].startswith(fmt(row) + " "), line


def fmt(row: LayerRow) -> str:
    return "x".join(map(str, row.output_shape))


def test_graphviz_has_every_layer():
    dot = spec_to_graphviz(zoo_spec("lenet"), MNIST, 10)
    rows = validate_spec(zoo_spec("lenet"), MNIST, 10)
    assert dot.startswith("digraph network {") and dot.rstrip().endswith("}")
    for row in rows:
        assert f'layer{row.index} [label="{row.index}: {row.description}\\n{fmt(row)}' in dot
    assert dot.count("->") == len(rows) + 1
    assert "input\\n1x28x28" in dot and "10 class scores" in dot
    with pytest.raises(SpecError):
        spec_to_graphviz([{"type": "softmax"}], MNIST, 10)
