"""Issue 13 item 5: names, not ids. Datasets by name on Home and Compare, a custom network by
the name its spec carries, and Compare's network difference layer by layer with parameters."""

from __future__ import annotations

import copy
from contextlib import closing

from engine import jobs
from engine.datasets import create_dataset
from engine.networks import zoo_spec
from engine.networks.diff import network_diff
from engine.state import store
from testkit.apptest import app, errors, open_page


def wide_spec() -> dict:
    """The lab's widened LeNet: conv1 20 -> 75, conv2 50 -> 100, a ReLU after pool1."""
    spec = copy.deepcopy(zoo_spec("lenet"))
    spec["name"] = "lenet-75-100-relu"
    spec["layers"][0]["out"] = 75
    spec["layers"][2]["out"] = 100
    spec["layers"].insert(2, {"type": "relu"})
    return spec


def test_network_diff_speaks_in_layers():
    lines = network_diff("lenet", wide_spec(), (1, 28, 28), 10)
    assert lines[0] == "conv1 20 -> 75 (+1,430 parameters)"
    assert lines[1] == "+ relu after pool1"
    assert lines[2].startswith("conv2 50 -> 100 (+")
    assert lines[-1] == "parameters 431,080 -> 995,060"
    assert network_diff("lenet", zoo_spec("lenet"), (1, 28, 28), 10) == []


def _done(job_id: str, acc: float) -> None:
    with closing(store.connect()) as conn, store.transaction(conn):
        store.put_metrics(conn, job_id, {"epoch": 1, "train_loss": 0.5, "val_loss": 0.4,
                                         "val_accuracy": acc, "images_per_s": 1234.0})
        store.update_job(conn, job_id, status="done")


def test_home_and_compare_show_names(home):
    ds = create_dataset("mnist-small", "digits-sample", owner="alice")
    base = jobs.submit({"dataset": ds.id, "epochs": 1}, owner="alice", name="LeNet small",
                       start_scheduler=False)
    wide = jobs.submit({"dataset": ds.id, "epochs": 1, "network": wide_spec()}, owner="alice",
                       name="Wide", start_scheduler=False)
    _done(base, 0.9)
    _done(wide, 0.95)

    at = app()
    assert not at.exception and not errors(at)
    [table] = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert set(table["dataset"]) == {"mnist-small"}  # not ds-...
    assert set(table["network"]) == {"lenet", "lenet-75-100-relu (custom)"}

    at = app()
    at.session_state["compare_ids"] = [base, wide]
    at.session_state["cmp_all_settings"] = True  # the expander of every setting, open
    at = open_page(at, "compare")
    assert not at.exception and not errors(at)
    metrics = at.dataframe[0].value
    assert list(metrics.index) == ["LeNet small", "Wide"]  # names; ids only on a clash
    text = " ".join(m.value for m in at.markdown)
    assert "conv1 20 -> 75" in text and "+ relu after pool1" in text
    assert "conv2 50 -> 100" in text and "parameters 431,080 -> 995,060" in text
    settings = at.dataframe[-1].value
    assert settings.loc["dataset"].tolist() == ["mnist-small", "mnist-small"]
    assert settings.loc["network"].tolist()[0] == "lenet"
    assert settings.loc["network"].tolist()[1].startswith("lenet-75-100-relu (custom), 9 layers")


def test_job_page_names_a_custom_network(home):
    ds = create_dataset("mnist-small", "digits-sample", owner="alice")
    wide = jobs.submit({"dataset": ds.id, "epochs": 1, "network": wide_spec()}, owner="alice",
                       name="Wide", start_scheduler=False)
    at = open_page(app(), "job", id=wide)
    caption = at.caption[0].value
    assert "dataset mnist-small" in caption and "lenet-75-100-relu (custom)" in caption
