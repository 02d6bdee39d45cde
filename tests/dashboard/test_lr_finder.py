"""Issue 27 item 4 on the New model page: the learning-rate finder runs the range test on the
form's settings, draws its curve and fills the learning-rate input with one click."""

from __future__ import annotations

import json

from dashboard.views.lr_finder_panel import RESULT_KEY
from engine import jobs
from testkit.apptest import app, errors, open_page


def _vega_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def test_finder_fills_the_learning_rate(jobs_home, monkeypatch):
    at = open_page(app(), "new_model")
    assert at.number_input(key="nm_lr").value == 0.01  # SGD's default
    at.number_input(key="nm_batch").set_value(32)
    at.number_input(key="nm_lrf_steps").set_value(40)
    at.button(key="nm_lrf_run").click().run()
    assert not at.exception and not errors(at)
    kept = at.session_state[RESULT_KEY]
    assert kept["config"]["batch_size"] == 32 and kept["config"]["solver"] == "sgd"
    assert 0 < kept["steps_run"] <= 40 and len(kept["lrs"]) == kept["steps_run"]
    suggestion = kept["suggested_lr"]
    assert suggestion is not None and 1e-7 <= suggestion <= 10
    # The chart: loss against a log-scaled learning rate, a rule at the suggestion.
    [spec] = [s for s in _vega_specs(at) if "range test" in json.dumps(s)]
    assert '"type": "log"' in json.dumps(spec)
    assert '"rule"' in json.dumps(spec)

    rounded = float(f"{suggestion:.3g}")
    assert at.button(key="nm_lrf_use").label.startswith(f"Use {rounded:g}")
    at.button(key="nm_lrf_use").click().run()
    assert not at.exception
    assert at.number_input(key="nm_lr").value == rounded
    at.button(key="nm_lrf_use").click().run()  # again: idempotent, still the same rate
    assert at.number_input(key="nm_lr").value == rounded
    # The filled rate is what Submit queues (the queue itself is tested elsewhere).
    queued: list[dict] = []
    monkeypatch.setattr(jobs, "submit", lambda config, **kw: queued.append(config) or "x")
    at.button(key="nm_submit").click().run()
    assert [c["lr"] for c in queued] == [rounded]


def test_finder_changed_settings_are_flagged(jobs_home):
    at = open_page(app(), "new_model")
    at.number_input(key="nm_lrf_steps").set_value(10)
    at.button(key="nm_lrf_run").click().run()
    assert not at.exception and at.session_state[RESULT_KEY]["steps_run"] >= 1
    at.number_input(key="nm_batch").set_value(16).run()
    assert any("settings have changed" in c.value for c in at.caption)
