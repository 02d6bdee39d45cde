"""Checkpoint hashes in sidecars (engine/state/integrity.py): what verify() says while a checkpoint
and its sidecar are replaced one after the other, as a copy to another machine does."""

from __future__ import annotations

import os

import pytest

from engine.state.integrity import record, verify


def test_a_verdict_taken_before_the_sidecar_landed_is_not_kept(tmp_path):
    ckpt = tmp_path / "last.pt"
    record(ckpt, b"epoch 1")
    ckpt.write_bytes(b"epoch 1")
    assert verify(ckpt) is True
    side_before = (tmp_path / "last.pt.sha256").read_bytes()
    ckpt.write_bytes(b"epoch 2")  # same size; its new hash is not written yet
    assert verify(ckpt) is False
    record(ckpt, b"epoch 2")  # ... and now it is; the checkpoint's own stat is unchanged
    assert (tmp_path / "last.pt.sha256").read_bytes() != side_before
    assert verify(ckpt) is True
    assert verify(tmp_path / "missing.pt") is None


def test_copied_run_files_put_each_sidecar_before_its_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r "
                                      "requirements-cluster.txt")
    from engine.jobs.backends.ray_node import write_files

    src = tmp_path / "src"
    src.mkdir()
    record(src / "last.pt", b"new weights")
    files = {"config.json": b"{}", "last.pt": b"new weights",
             "last.pt.sha256": (src / "last.pt.sha256").read_bytes()}
    order = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append(os.path.basename(b)),
                                                     real(a, b)))
    write_files(tmp_path / "dst", files)
    assert order.index("last.pt.sha256") < order.index("last.pt")
    assert verify(tmp_path / "dst" / "last.pt") is True
