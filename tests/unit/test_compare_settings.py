"""Compare's settings table: the settings that differ between jobs, and only those rows
highlighted."""

from __future__ import annotations

import pandas as pd

from dashboard.views.compare import HIGHLIGHT, differing_rows, highlighted


def table() -> pd.DataFrame:
    return pd.DataFrame({"run a": {"lr": 0.01, "epochs": 5, "solver": "sgd"},
                         "run b": {"lr": 0.05, "epochs": 5, "solver": "adam"}}
                        ).map(str).astype(object)


def test_differing_rows_are_the_settings_not_equal_for_every_job():
    assert differing_rows(table()) == ["lr", "solver"]
    assert differing_rows(table()[["run a"]]) == []  # one job: nothing differs
    assert differing_rows(table().iloc[:0]) == []


def test_only_the_differing_rows_are_highlighted():
    styled = highlighted(table(), ["lr", "solver"])
    styled._compute()
    rows = {r for (r, _c), css in styled.ctx.items() if css}
    assert rows == {0, 2}  # lr and solver, not epochs
    assert styled.ctx[(0, 1)] == [tuple(p.split(": ")) for p in HIGHLIGHT.split("; ")]
