"""Numbers for and from people (engine/text.py): one parser of comma-separated numbers for the
CLI's --lr/--batch-size/--milestones and the dashboard's sweep and milestone fields."""

from __future__ import annotations

import pytest

from engine.text import format_duration, parse_numbers


def test_comma_separated_numbers_with_blanks_and_spaces():
    assert parse_numbers(" 0.1, 0.01,,1e-3 ", float, "lr") == [0.1, 0.01, 0.001]
    assert parse_numbers("32,64", int, "batch") == [32, 64]
    assert parse_numbers("", float, "lr") == [] and parse_numbers(" , ", int, "batch") == []


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("0.1,abc", float, "Learning rates: 'abc' is not a number; separate values with commas, "
                       "e.g. 0.1,0.01"),
    ("32,64.5", int, "Learning rates: '64.5' is not a whole number; separate values with "
                     "commas, e.g. 32,64"),
    ("0.1 0.01", float, "Learning rates: '0.1 0.01' is not a number"),
])
def test_a_bad_item_is_named(text, kind, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        parse_numbers(text, kind, "Learning rates")


def test_durations():
    assert [format_duration(s) for s in (None, 4.6, 125, 3723)] == ["—", "5s", "2m 05s",
                                                                     "1h 02m 03s"]
