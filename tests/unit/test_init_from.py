"""Starting a run from earlier weights (issue 17): an earlier job's checkpoint, a weights file,
torchvision's download; equal and different classes, freezing, refusing code, lineage."""

from __future__ import annotations

import pickle
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.datasets import create_dataset, open_dataset
from engine.networks import build_network, zoo_spec
from engine.training import ConfigError, TrainConfig, load_checkpoint, train
from engine.training.init import (
    InitError,
    freeze,
    head_name,
    load_start_weights,
    read_plan,
    read_weights,
    resolve_source,
    torchvision_weights,
)


@pytest.fixture(scope="module")
def parent_home(digits_home, tmp_path_factory) -> Path:
    """The digits workspace plus 'three' (digits 0-2 as a folder dataset) and a finished
    1-epoch LeNet job 'parent-job' on digits."""
    home = tmp_path_factory.mktemp("init") / "workspace"
    shutil.copytree(digits_home, home)
    ds = open_dataset("digits", home=home)
    folder = home.parent / "three"
    for label in range(3):
        (folder / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(ds.labels == label)[:40]:
            Image.fromarray(ds.images[i][:, :, 0]).save(folder / str(label) / f"{i}.png")
    create_dataset("three", "folder", {"path": str(folder)}, {"val_percent": 20.0}, home=home)
    train(TrainConfig(dataset="digits", epochs=1, lr=0.05), home / "jobs" / "parent-job",
          home=home)
    return home


def _workspace(parent_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "workspace"
    shutil.copytree(parent_home, home)
    return home


def test_equal_classes_copy_every_weight(parent_home, tmp_path):
    home = _workspace(parent_home, tmp_path)
    cfg = TrainConfig(dataset="digits", epochs=1, lr=0.05, init_from="parent",  # a prefix
                      freeze="all-but-head")
    run = home / "jobs" / "child"
    train(cfg, run, home=home)
    parent = load_checkpoint(home / "jobs" / "parent-job" / "best.pt")["model"]
    child = load_checkpoint(run / "last.pt")["model"]
    plan = read_plan(run)
    assert plan.source == "parent-job:best" and not plan.head_replaced
    assert plan.frozen == ["0", "2", "5"]
    for key in ("0.weight", "0.bias", "2.weight", "5.weight", "5.bias"):  # frozen: bit-equal
        assert torch.equal(parent[key], child[key]), key
    assert not torch.equal(parent["7.weight"], child["7.weight"])  # the head learned
    assert "starting from parent-job:best" in (run / "log.txt").read_text()


def test_different_classes_replace_the_head_and_say_so(parent_home, tmp_path):
    home = _workspace(parent_home, tmp_path)
    run = home / "jobs" / "three-child"
    cfg = TrainConfig(dataset="three", epochs=2, lr=0.05, init_from="parent-job:1",
                      freeze="2", pretrained_lr_factor=0.1)
    result = train(cfg, run, home=home)
    log = (run / "log.txt").read_text()
    assert "classes differ (10 -> 3)" in log and "layer 7 (Linear)" in log
    plan = read_plan(run)
    assert plan.head_replaced and plan.source == "parent-job:1"
    assert "7.weight" not in plan.loaded and "5.weight" in plan.loaded
    parent = load_checkpoint(home / "jobs" / "parent-job" / "checkpoints" / "epoch-0001.pt")
    child = load_checkpoint(run / "last.pt")
    assert child["model"]["7.weight"].shape == (3, 500)
    for key in ("0.weight", "2.bias"):
        assert torch.equal(parent["model"][key], child["model"][key])
    assert not torch.equal(parent["model"]["5.weight"], child["model"]["5.weight"])
    # Optimizer groups: the new head at the learning rate, pretrained layers at a tenth.
    groups = child["optimizer"]["param_groups"]
    assert [g["lr_scale"] for g in groups] == [1.0, 0.1]
    assert result.held_out["accuracy"] > 0.8  # three well-separated digits from good features


def test_resume_keeps_the_frozen_layers_and_groups(parent_home, tmp_path):
    home = _workspace(parent_home, tmp_path)
    run = home / "jobs" / "resumed"
    cfg = TrainConfig(dataset="three", epochs=2, lr=0.05, init_from="parent-job",
                      freeze="2", pretrained_lr_factor=0.5)
    train(cfg, run, home=home, should_stop=lambda: True)  # stops after the first step
    shutil.rmtree(home / "jobs" / "parent-job")  # resume needs only the run itself
    cfg.epochs = 2
    train(cfg, run, home=home, resume=True)
    first = load_checkpoint(run / "checkpoints" / "epoch-0002.pt")
    assert [g["lr_scale"] for g in first["optimizer"]["param_groups"]] == [1.0, 0.5]
    parent = load_checkpoint(parent_home / "jobs" / "parent-job" / "best.pt")["model"]
    assert torch.equal(parent["2.weight"], first["model"]["2.weight"])


def test_other_shape_mismatch_names_the_layer():
    spec = zoo_spec("lenet")
    spec["layers"][2]["out"] = 30  # conv2: 30 filters, not 50
    other = build_network(spec, (1, 28, 28), 10).state_dict()
    model = build_network(zoo_spec("lenet"), (1, 28, 28), 10)
    with pytest.raises(InitError, match=r"layer 2 \(Conv2d\) does not fit.*\[30, 20, 5, 5\]"
                                        r".*needs \[50, 20, 5, 5\]"):
        load_start_weights(model, other, None, [str(i) for i in range(10)], print)
    wide = build_network(zoo_spec("lenet-wide"), (1, 28, 28), 10).state_dict()
    with pytest.raises(InitError, match="layer '3'.*which this network lacks"):
        load_start_weights(model, wide, None, [str(i) for i in range(10)], print)
    mlp = build_network(zoo_spec("mlp"), (1, 28, 28), 10).state_dict()
    with pytest.raises(InitError, match="another network"):
        load_start_weights(model, mlp, None, [str(i) for i in range(10)], print)


def test_torchvision_state_dict_file_loads_into_the_zoo_resnet(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(num_classes=1000)
    path = tmp_path / "resnet18-test.pth"
    torch.save(source.state_dict(), path)
    state, classes = read_weights(path)
    model = build_network(zoo_spec("resnet18"), (1, 32, 32), 4)
    notes = []
    plan = load_start_weights(model, state, classes, ["a", "b", "c", "d"], notes.append)
    assert plan.head_replaced and head_name(model) == "0.fc"
    got = model.state_dict()
    assert torch.equal(got["0.layer4.1.conv2.weight"], source.state_dict()["layer4.1.conv2.weight"])
    # Grey images: the RGB filters of the first convolution are summed, and the log says so.
    assert torch.allclose(got["0.conv1.weight"],
                          source.state_dict()["conv1.weight"].sum(1, keepdim=True))
    assert any("summed" in n for n in notes) and any("0.fc" in n for n in notes)
    frozen = freeze(model, "all-but-head", plan.head)
    assert "0.fc" not in frozen and "0.bn1" in frozen
    bn = model.get_submodule("0.bn1")
    before = bn.running_mean.clone()
    model.train()
    model(torch.randn(4, 1, 32, 32))
    assert torch.equal(bn.running_mean, before)  # a frozen batch norm keeps its statistics


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_carrying_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": {"0.weight": Payload(str(marker))}}, f)
    torch.save({"0.weight": Payload(str(marker))}, tmp_path / "evil2.pt")
    marker.unlink(missing_ok=True)  # torch.save pickled it without running it; be sure
    for p in (path, tmp_path / "evil2.pt"):
        with pytest.raises(InitError, match="refused: it holds code"):
            read_weights(p)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    with pytest.raises(InitError, match="refused"):
        read_weights(tmp_path / "junk.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(InitError, match="holds no state dict"):
        read_weights(tmp_path / "list.pt")


def test_torchvision_download_offline_says_to_give_a_file(monkeypatch, tmp_path):
    """torchvision's real download code runs, with every connection refused."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights

    def refused(*args, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    with pytest.raises(InitError, match=r"give the weights file instead: --init-from "
                                        r"path/to/resnet18-\w+\.pth"):
        torchvision_weights(zoo_spec("resnet18"), "torchvision")
    with pytest.raises(InitError, match="only for the networks built on torchvision"):
        torchvision_weights(zoo_spec("lenet"), "torchvision")
    with pytest.raises(InitError, match="no 'NOPE' weights"):
        torchvision_weights(zoo_spec("resnet18"), "torchvision:NOPE")


def test_bad_start_settings_are_refused(parent_home, tmp_path):
    with pytest.raises(ConfigError, match="needs a start"):
        TrainConfig(dataset="digits", freeze="2").validate()
    with pytest.raises(ConfigError, match="all-but-head"):
        TrainConfig(dataset="digits", init_from="x", freeze="some").validate()
    with pytest.raises(ConfigError, match=r"factor must be in \(0, 1\]"):
        TrainConfig(dataset="digits", init_from="x", pretrained_lr_factor=0).validate()
    with pytest.raises(ConfigError, match="best, last or an epoch"):
        TrainConfig(dataset="digits", init_from="job:worst").validate()
    with pytest.raises(InitError, match="no job 'nojob'"):
        resolve_source("nojob", parent_home)
    with pytest.raises(InitError, match=r"no 7 checkpoint \(kept epochs: 1\)"):
        resolve_source("parent-job:7", parent_home)
    with pytest.raises(InitError, match="no weights file at"):
        resolve_source(str(tmp_path / "none.pth"), parent_home)
    assert resolve_source("parent-job", parent_home)[0] == "parent-job:best"


def test_lineage_is_stored_and_read_back(parent_home, tmp_path, capsys, monkeypatch):
    from engine import jobs
    from engine.cli.main import main
    from engine.jobs.lineage import lineage, lineage_line

    home = _workspace(parent_home, tmp_path)
    weights = tmp_path / "lenet-start.pt"
    shutil.copy(home / "jobs" / "parent-job" / "best.pt", weights)
    first = jobs.submit(TrainConfig(dataset="digits", init_from=str(weights)), name="first",
                        home=home, start_scheduler=False)
    shutil.copytree(home / "jobs" / "parent-job", jobs.job_dir(first, home), dirs_exist_ok=True)
    second = jobs.submit(TrainConfig(dataset="three", init_from=first[:17] + ":last"),
                         name="second", home=home, start_scheduler=False)
    stored = jobs.get_job(second, home=home)["config"]["init_from"]
    assert stored == f"{first}:last"  # the prefix was resolved to the full id at submit
    chain = lineage(second, home)
    assert [c.get("job") or c.get("file") for c in chain] == ["lenet-start.pt", first, second]
    assert lineage_line(second, home) == (f"file lenet-start.pt -> {first} (first) -[last]-> "
                                          f"{second} (second)")
    assert lineage_line(first, home).startswith("file lenet-start.pt -> ")
    with pytest.raises(ConfigError, match="no job 'nope'"):
        jobs.submit(TrainConfig(dataset="digits", init_from="nope"), home=home,
                    start_scheduler=False)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    assert main(["jobs", "show", second]) == 0
    assert f"lineage  file lenet-start.pt -> {first}" in capsys.readouterr().out


def test_cli_train_init_from_a_file(parent_home, tmp_path, monkeypatch, capsys):
    from engine.cli.main import main

    home = _workspace(parent_home, tmp_path)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    weights = tmp_path / "start.pt"
    shutil.copy(home / "jobs" / "parent-job" / "best.pt", weights)
    out = tmp_path / "cli-run"
    assert main(["train", "--dataset", "three", "--epochs", "1", "--init-from", str(weights),
                 "--freeze", "all-but-head", "--pretrained-lr-factor", "0.5", "--out", str(out),
                 "--json"]) == 0
    plan = read_plan(out)
    assert plan.head_replaced and plan.frozen == ["0", "2", "5"]
    assert main(["train", "--dataset", "three", "--freeze", "two"]) == 2
    assert "freeze takes a number of layers or 'all-but-head'" in capsys.readouterr().err
