"""`python -m engine` end to end, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "STUDIO_HOME": str(home)}
    p = subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=600)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_main_flow(home, tmp_path):
    created = json.loads(cli(home, "datasets", "create", "sample", "--source", "digits-sample",
                             "--json").stdout)
    assert created["name"] == "sample" and created["shape"] == [1, 28, 28]
    assert sum(created["images"].values()) == 1797
    listed = json.loads(cli(home, "datasets", "list", "--json").stdout)
    assert [d["name"] for d in listed] == ["sample"]
    shown = json.loads(cli(home, "datasets", "show", "sample", "--json").stdout)
    assert shown["preprocess"]["polarity"] == "white-on-black"

    run_dir = tmp_path / "run"
    p = cli(home, "train", "--dataset", "sample", "--network", "lenet", "--epochs", "2",
            "--out", str(run_dir), "--json")
    result = json.loads(p.stdout)
    assert result["status"] == "done" and result["epochs_completed"] == 2
    assert result["final"]["val_accuracy"] > 0.8
    assert "epoch 2" in p.stderr  # the per-epoch lines of the progress display

    digit = np.zeros((100, 100), np.uint8)
    digit[20:80, 45:55] = 255  # a "1"
    Image.fromarray(digit).save(tmp_path / "one.png")
    preds = json.loads(cli(home, "predict", str(run_dir), str(tmp_path / "one.png"),
                           "--digit", "--top-k", "3", "--json").stdout)
    assert preds[0]["label"] == "1" and len(preds[0]["top"]) == 3
    text = cli(home, "predict", str(run_dir / "best.pt"), str(tmp_path / "one.png")).stdout
    assert text.startswith(f"{tmp_path / 'one.png'}: 1 ")

    # Resume the finished run for one more epoch.
    more = json.loads(cli(home, "train", "--resume", str(run_dir), "--epochs", "3",
                          "--json").stdout)
    assert more["epochs_completed"] == 3


def test_networks_commands(home, tmp_path):
    names = [n["name"] for n in json.loads(cli(home, "networks", "list", "--json").stdout)]
    assert "lenet" in names and "lenet-wide" in names
    table = cli(home, "networks", "show", "lenet").stdout
    assert "431,080" in table or "431080" in table
    spec_path = tmp_path / "net.yaml"
    spec_path.write_text("layers:\n  - {type: flatten}\n  - {type: linear, out: 7}\n")
    bad = cli(home, "networks", "show", str(spec_path), ok=False)
    assert bad.returncode == 2 and "7 values but the dataset has 10 classes" in bad.stderr
    rows = json.loads(cli(home, "networks", "show", "lenet", "--input", "3,32,32", "--json",
                          "--classes", "4").stdout)
    assert rows[-1]["output_shape"] == [4]


def test_errors_are_one_line(home):
    for args in (["train", "--dataset", "nope", "--epochs", "1"],
                 ["datasets", "show", "nope"],
                 ["train", "--dataset", "x", "--network", "nonet"],
                 ["predict", "/nonexistent", "a.png"],
                 ["jobs", "submit", "--dataset", "x", "--lr", "0.1,abc"],
                 ["train", "--dataset", "x", "--lr-policy", "multistep", "--milestones", "5,x"]):
        p = cli(home, *args, ok=False)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        if "0.1,abc" in args:
            assert "--lr: 'abc' is not a number" in p.stderr
        if "5,x" in args:
            assert "--milestones: 'x' is not a number" in p.stderr


def test_resume_without_epochs_keeps_the_saved_run(home, tmp_path):
    """`train --resume RUN` alone continues the run as saved: a finished 1-epoch run stays
    1 epoch (the CLI once compared against its own default of 10 and extended it)."""
    cli(home, "datasets", "create", "sample", "--source", "digits-sample", "--max-per-class",
        "30")
    run_dir = tmp_path / "run"
    cli(home, "train", "--dataset", "sample", "--epochs", "1", "--lr", "0.05", "--out",
        str(run_dir))
    again = json.loads(cli(home, "train", "--resume", str(run_dir), "--json").stdout)
    assert again["epochs_completed"] == 1
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 1
    changed = cli(home, "train", "--resume", str(run_dir), "--lr", "0.1", ok=False)
    assert changed.returncode == 2 and "only --epochs may change (not --lr)" in changed.stderr


def test_only_typed_options_override_a_config():
    from engine.cli.main import build_parser
    from engine.cli.train import config_from_args

    saved = {"dataset": "d", "epochs": 4, "lr": 0.5, "augment": {"rotation": 10.0}}
    a = build_parser().parse_args(["train", "--aug-zoom", "0.1", "--no-compile"])
    cfg = config_from_args(a, base=saved)
    assert (cfg.epochs, cfg.lr, cfg.compile) == (4, 0.5, False)
    assert (cfg.augment.rotation, cfg.augment.zoom) == (10.0, 0.1)
    fresh = config_from_args(build_parser().parse_args(["train", "--dataset", "d"]))
    assert (fresh.epochs, fresh.lr, fresh.batch_size) == (10, 0.01, 64)


def test_dataset_options_start_from_the_sources_defaults_as_the_dashboard_does():
    from engine.cli.datasets import options_from_args
    from engine.cli.main import build_parser
    from engine.datasets import DatasetError, default_options

    def options(*args: str):
        return options_from_args(build_parser().parse_args(["datasets", "create", "x", *args]))

    cifar = options("--source", "cifar10")  # the CLI made CIFAR-10 28x28 grayscale
    assert (cifar.height, cifar.width, cifar.channels) == (32, 32, 3)
    assert cifar == default_options("cifar10")
    assert options("--source", "cifar10", "--grayscale", "--height", "24").channels == 1
    sample = options("--source", "digits-sample", "--color", "--test-percent", "20",
                     "--no-source-test", "--max-per-class", "30")
    assert (sample.height, sample.channels, sample.val_percent, sample.test_percent,
            sample.use_source_test, sample.max_per_class) == (28, 3, 10.0, 20.0, False, 30)
    with pytest.raises(DatasetError, match="val_percent must be a number from 0"):
        options("--source", "digits-sample", "--val-percent", "150")
    with pytest.raises(SystemExit):  # one or the other
        options("--source", "cifar10", "--color", "--grayscale")
