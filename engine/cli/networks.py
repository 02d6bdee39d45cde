"""`python -m engine networks list | show`, and reading a --network argument."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import CliError
from engine.networks import zoo_info
from engine.networks.zoo import zoo_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("networks", help="list the zoo, show a network's layer table")
    nsub = p.add_subparsers(dest="action", required=True)
    ls = nsub.add_parser("list", help="list the networks of the zoo")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_networks_list)
    sh = nsub.add_parser("show", help="validate a network and print its layer table")
    sh.add_argument("network", help="zoo name, or a JSON/YAML spec file")
    sh.add_argument("--input", default="1,28,28", help="channels,height,width (default 1,28,28)")
    sh.add_argument("--classes", type=int, default=10)
    sh.add_argument("--spec", action="store_true", help="print the spec itself (to edit)")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_networks_show)


def load_network_arg(value: str) -> str | dict:
    """A zoo name stays a name; a path to a .json/.yaml file becomes its parsed spec."""
    from engine.networks import parse_spec

    if value in zoo_names():
        return value
    path = Path(value)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        if not path.exists():
            raise CliError(f"no network spec file at {path}")
        return parse_spec(path.read_text())
    raise CliError(f"unknown network {value!r}: use one of {', '.join(zoo_names())} "
                   "or a .json/.yaml spec file")


def cmd_networks_list(a: argparse.Namespace) -> list:
    return zoo_info()


def cmd_networks_show(a: argparse.Namespace) -> Any:
    from engine.networks import format_layer_table, validate_spec
    from engine.training import network_spec

    try:
        shape = tuple(int(v) for v in a.input.split(","))
        assert len(shape) == 3
    except (ValueError, AssertionError):
        raise CliError(f"--input must be channels,height,width, not {a.input!r}") from None
    spec = network_spec(load_network_arg(a.network))
    if a.spec:
        return spec
    rows = validate_spec(spec, shape, a.classes)
    if a.json:
        return [{"index": r.index, "type": r.type, "description": r.description,
                 "output_shape": list(r.output_shape), "params": r.params} for r in rows]
    return format_layer_table(rows)
