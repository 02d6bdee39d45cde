"""Issue 13 items 9 and 18 on the Datasets page: the offline download error names the
dashboard's tabs (not CLI flags), and Enter in a form's box does not submit the form (the
browser test presses Enter for real)."""

from __future__ import annotations

from engine.datasets import list_datasets
from engine.datasets.sources import downloads
from testkit.apptest import app, errors, open_page


def _forms(node, found):
    proto = getattr(node, "proto", None)
    if proto is not None and getattr(proto, "DESCRIPTOR", None) is not None \
            and proto.DESCRIPTOR.name == "Block" and proto.WhichOneof("type") == "form":
        found[proto.form.form_id] = proto.form
    for child in getattr(node, "children", {}).values():
        _forms(child, found)
    return found


def test_dataset_forms_submit_only_by_their_button(home):
    at = open_page(app(), "datasets")
    forms = _forms(at._tree, {})
    assert {"ds_offline_form", "ds_download_form", "ds_folder_form", "ds_idx_form"} <= set(forms)
    assert not any(f.enter_to_submit for f in forms.values())


def test_offline_download_error_names_the_tabs(home, monkeypatch):
    def offline(spec, root):
        raise OSError("network unreachable")

    monkeypatch.setattr(downloads, "_fetch", offline)  # never touch the network in tests
    at = open_page(app(), "datasets")
    at.button(key="ds_dl_submit").click().run()
    assert not at.exception
    [message] = errors(at)
    assert message.startswith("Could not download MNIST (no network?)")
    assert "**Offline sample**" in message and "**IDX files**" in message
    assert "--source" not in message
    assert not list_datasets()
