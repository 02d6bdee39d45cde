"""What every command group shares: one-line user errors, printing results, numbers."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from typing import Any

from engine.text import parse_numbers


class CliError(Exception):
    """A problem the user can fix: printed as one line, no traceback."""


def user_errors(func: Callable[[argparse.Namespace], Any]) -> Callable:
    """A command whose PermissionError (someone else's job) is a one-line user error."""
    @functools.wraps(func)
    def wrapper(a: argparse.Namespace) -> Any:
        try:
            return func(a)
        except PermissionError as e:
            raise CliError(str(e)) from None
    return wrapper


def numbers(text: str, kind: type, flag: str) -> list:
    """A number or comma-separated numbers of one kind, or a CliError naming the flag."""
    try:
        values = parse_numbers(text, kind, flag)
    except ValueError as e:
        raise CliError(str(e)) from None
    if not values:
        raise CliError(f"{flag} takes a number or comma-separated numbers, not {text!r}")
    return values


def _jsonable(value: Any) -> Any:
    """What json.dumps cannot write itself: typed rows (store.Job, LiveJob) as their dicts,
    anything else as its str."""
    return value.to_dict() if hasattr(value, "to_dict") else str(value)


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=_jsonable))
    elif isinstance(result, str):
        print(result)
    elif isinstance(result, list):
        for row in result:
            print(json.dumps(row, default=_jsonable) if not isinstance(row, str) else row)
    elif result is not None:
        for k, v in result.items():
            print(f"{k}: {json.dumps(v, default=_jsonable) if not isinstance(v, str) else v}")
