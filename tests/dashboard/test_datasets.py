"""AppTest of the Datasets page: create (offline sample, zip and IDX uploads), errors,
sign-in, the dataset view and explorer, and who may delete.

Navigation: the first test runs the real dashboard/app.py and opens the page with
`at.switch_page("routes/datasets.py")` (st.navigation's file pages); the others run the view
alone with AppTest.from_function, which is faster and needs no password gate or sidebar."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.datasets import create_dataset, explore, list_datasets, open_dataset
from testkit.apptest import APP, errors
from testkit.mnist import write_idx

ROOT = str(Path(__file__).resolve().parents[2])


def datasets_view() -> None:
    """Script body for AppTest.from_function: the Datasets view on its own."""
    from dashboard.views import datasets

    datasets.render()


def view(user: str | None = "alice", **query: str) -> AppTest:
    at = AppTest.from_function(datasets_view, default_timeout=60)
    if user:
        at.session_state["user"] = user
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def explorer_images(at: AppTest) -> list[str]:
    """Captions of the explorer grid (the image element after the mean image)."""
    grids = [img for img in at.image if "Mean training image" not in img.captions]
    return grids[-1].captions if grids else []



def test_offline_sample_through_the_app(home):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["user"] = "alice"
    at.run()
    at.switch_page("routes/datasets.py").run()
    assert not at.exception and at.title[0].value == "Datasets"
    assert at.text_input(key="ds_off_name").value == "digits"

    at.button(key="ds_off_submit").click().run()
    assert not at.exception and not errors(at), errors(at)
    [row] = list_datasets()
    assert row["name"] == "digits" and row["owner"] == "alice" and row["source"] == "digits-sample"
    assert any("Created 'digits'" in s.value for s in at.success)
    assert at.query_params["id"] == row["id"]
    assert len(at.get("vega_lite_chart")) == 1  # counts per class and split
    assert any("Mean training image" in img.captions for img in at.image)

    # Page sizes and the class filter change what the explorer shows.
    assert len(explorer_images(at)) == 25
    for size in (10, 50, 100):
        at.selectbox(key="ds_page_size").set_value(size).run()
        assert len(explorer_images(at)) == size
    at.selectbox(key="ds_class").set_value(3).run()
    captions = explorer_images(at)
    assert len(captions) == 100 and set(captions) == {"3"}
    ds = open_dataset("digits")
    last = explore(ds, "train", 3, 0, 100).pages
    [pager] = at.get("pagination")
    pager.set_value(last).run()
    expected = explore(ds, "train", 3, last - 1, 100)
    assert len(explorer_images(at)) == len(expected.images) < 100
    at.selectbox(key="ds_split").set_value("val").run()
    assert len(explorer_images(at)) == sum(ds.labels[ds.split("val")] == 3)


def zip_of_pngs(classes: dict[str, int], size: int = 12) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as zf:
        for cls, n in classes.items():
            for i in range(n):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(
                    png, format="PNG")
                zf.writestr(f"shapes/{cls}/{i}.png", png.getvalue())
    return buf.getvalue()


def test_folder_zip_upload_creates_a_dataset(home):
    at = view()
    at.file_uploader(key="ds_zip_train").set_value(
        ("../../x/shapes.zip", zip_of_pngs({"circle": 6, "square": 5}), "application/zip"))
    at.number_input(key="ds_opt_zip_height").set_value(16)
    at.button(key="ds_zip_submit").click().run()
    assert not at.exception and not errors(at), errors(at)
    [row] = list_datasets()
    assert row["name"] == "shapes" and row["owner"] == "alice"
    assert row["classes"] == ["circle", "square"] and row["total"] == 11
    assert row["height"] == 16 and row["width"] == 28
    assert not any((home / "uploads").iterdir())  # saved inside it (not ../../x), then removed
    assert not (home.parent / "x").exists()
    assert "circle" in explorer_images(at)


def test_idx_upload_creates_a_dataset(home, tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "imgs", rng.integers(0, 255, (40, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "labels", np.arange(40) % 4)
    at = view()
    at.text_input(key="ds_idx_name").set_value("tiny idx")
    at.file_uploader(key="ds_idx_train_images").set_value(
        ("train-images-idx3-ubyte", (tmp_path / "imgs").read_bytes(), "application/octet-stream"))
    at.button(key="ds_idx_submit").click().run()
    assert "Choose the training labels files." in errors(at)
    assert not list_datasets()
    at.file_uploader(key="ds_idx_train_labels").set_value(
        ("train-labels-idx1-ubyte", (tmp_path / "labels").read_bytes(), "application/octet-stream"))
    at.button(key="ds_idx_submit").click().run()
    assert not at.exception and not errors(at), errors(at)
    [row] = list_datasets()
    assert row["name"] == "tiny idx" and row["num_classes"] == 4 and row["total"] == 40


def test_duplicate_name_shows_error_and_keeps_the_form(home):
    create_dataset("digits", "digits-sample", owner="alice")
    at = view()
    at.number_input(key="ds_opt_off_val").set_value(20.0)
    at.button(key="ds_off_submit").click().run()
    assert not at.exception
    assert any("already exists" in e for e in errors(at)), errors(at)
    assert len(list_datasets()) == 1
    assert at.text_input(key="ds_off_name").value == "digits"
    assert at.number_input(key="ds_opt_off_val").value == 20.0


def test_failed_download_shows_the_engines_message(home, monkeypatch):
    # The build runs in a worker process (a job), which inherits the environment: a proxy
    # that refuses every connection keeps it off the network.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    at = view()
    at.selectbox(key="ds_dl_source").set_value("cifar10").run()
    assert at.number_input(key="ds_opt_dl_cifar10_height").value == 32  # its own defaults
    assert at.radio(key="ds_opt_dl_cifar10_colour").value == "Colour (RGB)"
    at.selectbox(key="ds_dl_source").set_value("fashion-mnist").run()
    assert at.number_input(key="ds_opt_dl_fashion-mnist_height").value == 28
    at.button(key="ds_dl_submit").click().run()
    assert not at.exception
    [message] = errors(at)
    assert "Could not download Fashion-MNIST (no network?)" in message and "\n" not in message
    assert not list_datasets()


def test_creating_needs_a_signed_in_user(home):
    at = view(user=None)
    at.button(key="ds_off_submit").click().run()
    assert any("Sign in" in w.value and "create a dataset" in w.value for w in at.warning)
    assert not list_datasets()


def test_only_the_owner_may_delete(home):
    ds = create_dataset("digits", "digits-sample", owner="alice")
    create_dataset("other", "digits-sample", owner="bob")
    at = view(user="bob", id=ds.id)
    assert at.selectbox(key="ds_pick").value == ds.id  # ?id= chooses the dataset
    delete = at.button(key="ds_delete")
    assert delete.disabled
    assert any("Only its owner, alice" in c.value for c in at.caption)

    at = view(user="alice", id="digits")  # a name works in the link too
    assert at.selectbox(key="ds_pick").value == ds.id
    assert not at.button(key="ds_delete").disabled
    at.button(key="ds_delete").click().run()
    at.button(key="ds_delete_yes").click().run()
    assert not at.exception
    assert [r["name"] for r in list_datasets()] == ["other"]
    assert any("Deleted 'digits'" in s.value for s in at.success)
