"""AppTest of Compare's settings: the settings that differ in a table of their own, and every
setting, the differing ones highlighted, in a lazy expander drawn when opened."""

from __future__ import annotations

import re

from dashboard.views.compare import HIGHLIGHT
from testkit.apptest import app, open_page
from testkit.finished_jobs import finished_job


def test_the_differing_settings_first_and_all_of_them_when_asked(jobs_home):
    ids = [finished_job(jobs_home, epochs=1, evaluate=False),
           finished_job(jobs_home, epochs=2, evaluate=False)]
    at = app()
    at.session_state["compare_ids"] = ids
    at = open_page(at, "compare")
    assert not at.exception, at.exception
    assert any(c.value == "1 setting(s) differ:" for c in at.caption)
    differing = at.dataframe[-1].value
    assert list(differing.index) == ["epochs"]
    assert differing.loc["epochs"].tolist() == ["1", "2"]
    [everything] = [e for e in at.expander if e.label.startswith("All ")]
    assert not everything.children  # closed: not built

    at.session_state["cmp_all_settings"] = True
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[-1]
    assert len(table.value) > 10 and "lr" in table.value.index
    styles = table.proto.arrow_data.styler.styles  # the differing row alone is highlighted
    assert HIGHLIGHT in styles
    row = list(table.value.index).index("epochs")
    assert set(re.findall(r"_row(\d+)_col(\d+)", styles)) == {(str(row), "0"), (str(row), "1")}
