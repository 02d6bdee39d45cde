"""bench/gpu_check.sh and bench/gpu_check.py without a GPU: the preflight's one-line refusal,
the plan and its time limits, and that a failing stage or backend is recorded while the run
goes on (fake stages, fake backends, a faked torch.cuda)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stage_runner():
    return load("stage_runner")  # before gpu_check, which imports it as a sibling script


@pytest.fixture(scope="module")
def gpu_check(stage_runner):
    return load("gpu_check")


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


def test_cpu_only_machine_is_refused_in_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    # A generous preflight limit: importing torch on a busy shared CPU can take over 30 s.
    proc = run_script(str(out), env={"GPU_CHECK_LIMIT_PREFLIGHT": "300"})
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gpu check refused: no CUDA GPU here")
    assert not out.exists()  # nothing written: no green run with no figures


def test_missing_staged_mnist_is_refused(gpu_check, monkeypatch, tmp_path):
    from testkit import mnist

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mnist, "MNIST_DIR", tmp_path)
    monkeypatch.setattr(mnist, "MNIST_IMAGES", tmp_path / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setattr(mnist, "MNIST_LABELS", tmp_path / "t10k-labels-idx1-ubyte.gz")
    why = gpu_check.preflight()
    assert f"not in {tmp_path}" in why and "bench/stage_device.sh" in why
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_plan_lists_every_step_with_a_limit_under_9_minutes_30(gpu_check):
    # 9 min 30 s: inside the device call's 580 s (bench/stage_device.sh), with the serving
    # step (issue 28) added to the 8 minutes of the others.
    proc = run_script("--plan")
    assert proc.returncode == 0, proc.stderr
    steps = dict(re.findall(r"^  (\w+)\s+(\d+) s  ", proc.stdout, re.M))
    assert list(steps) == ["preflight", "tensorrt", "figures", "serving", "tests", "throughput"]
    total = int(re.search(r"^  total\s+(\d+) s \(", proc.stdout, re.M).group(1))
    assert total == sum(int(v) for v in steps.values()) and total < 9.5 * 60 < 580
    stages = sum(s.limit_s for s in gpu_check.STAGES)
    assert f"total {stages:.0f} s" in proc.stdout
    assert stages < int(steps["figures"])  # the stages fit inside the figures step's limit
    names = [s.name for s in gpu_check.STAGES]
    for wanted in ("train-fp32", "train-bf16", "train-fp16", "train-compile", "time-to-98",
                   "concurrent", "scheduler-job", "evaluate", "onnxruntime-cuda", "inference",
                   "inference-compile"):
        assert wanted in names and wanted in proc.stdout


def test_a_failing_stage_is_recorded_and_the_next_ones_run(stage_runner, tmp_path):
    Stage = stage_runner.Stage
    report = stage_runner.Report(tmp_path / "gpu_check.json")
    seen_on_disk = {}

    def fails(ctx):
        raise RuntimeError("CUDA graph capture failed\nsecond line")

    def reads_file(ctx):
        seen_on_disk.update(json.loads(report.path.read_text())["stages"])
        return {"images_per_s": 123}

    def hangs(ctx):
        time.sleep(30)

    def not_here(ctx):
        raise stage_runner.StageSkipped("onnxruntime-gpu is not installed")

    stages = [Stage("first", 5, lambda ctx: {"figure": 1}), Stage("capture", 5, fails),
              Stage("after", 5, reads_file), Stage("needs-capture", 5, reads_file, ("capture",)),
              Stage("hangs", 0.5, hangs), Stage("ort", 5, not_here),
              Stage("last", 5, lambda ctx: {"figure": 2})]
    results = stage_runner.run_stages(stages, None, report, log=lambda m: None)
    assert [results[s.name]["status"] for s in stages] == [
        "ok", "error", "ok", "skipped", "timeout", "skipped", "ok"]
    assert results["capture"]["error"] == "RuntimeError: CUDA graph capture failed"
    assert results["needs-capture"]["error"] == "needs capture, which did not finish"
    assert results["hangs"]["error"] == "ran past its limit of 0.5 s"
    assert results["ort"]["error"] == "onnxruntime-gpu is not installed"
    # The file was rewritten after each stage: the third saw the first two.
    assert seen_on_disk["first"]["figure"] == 1 and seen_on_disk["capture"]["status"] == "error"
    on_disk = json.loads(report.path.read_text())
    assert on_disk["stages"]["last"] == results["last"]
    assert [p["stage"] for p in on_disk["plan"]] == [s.name for s in stages]


def test_a_backend_failing_at_setup_or_warm_up_is_skipped_and_others_measured():
    from trt.bench import measure

    def capture_fails(x):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    def compile_fails(x):
        def call():  # torch.compile compiles at the first call: the warm-up
            raise RuntimeError("inductor: compile failed")
        return call

    backends = {"pytorch-cpu": lambda x: (lambda: x.sum()), "pytorch-cuda-graph": capture_fails,
                "torch-compile": compile_fails}
    inputs = {1: np.zeros((1, 4), np.float32), 8: np.zeros((8, 4), np.float32)}
    skipped: dict[str, str] = {}
    times = measure(backends, inputs, seconds=0.05, rounds=2, skipped=skipped)
    assert set(times) == {("pytorch-cpu", 1), ("pytorch-cpu", 8)}
    assert all(len(t) >= 10 for t in times.values())
    assert skipped["pytorch-cuda-graph"].startswith("RuntimeError: CUDA error")
    assert skipped["torch-compile"] == "RuntimeError: inductor: compile failed"


def test_gpu_check_with_a_faked_cuda_records_the_failure_and_writes_its_files(
        gpu_check, monkeypatch, tmp_path):
    """torch.cuda says yes but nothing CUDA works (a CPU build): the run does not crash, the
    failure is in gpu_check.json and .md, and the exit status says some stage failed."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(gpu_check, "mnist_missing", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / "out"
    monkeypatch.setattr(gpu_check, "setup", lambda ctx: torch.zeros(1, device="cuda"))
    stages = [gpu_check.Stage("setup", 5, lambda ctx: gpu_check.setup(ctx)),
              *[s for s in gpu_check.STAGES if s.name in ("train-fp32", "onnxruntime-cuda")]]
    monkeypatch.setattr(gpu_check, "STAGES", stages)
    assert gpu_check.main(["--out", str(out)]) == 1
    data = json.loads((out / "gpu_check.json").read_text())
    assert data["stages"]["setup"]["status"] == "error"
    assert data["stages"]["train-fp32"]["status"] == "skipped"
    assert data["stages"]["onnxruntime-cuda"]["error"] == "needs train-fp32, which did not finish"
    assert "| setup | error |" in (out / "gpu_check.md").read_text()


def test_the_one_vs_n_gpu_row_says_skipped_on_one_gpu(gpu_check, stage_runner, monkeypatch,
                                                       tmp_path):
    monkeypatch.setattr(gpu_check, "visible_gpus", lambda: 1)
    ctx = gpu_check.Context(tmp_path, device="cuda")
    with pytest.raises(stage_runner.StageSkipped, match=r"^1 GPU \(the 1-vs-N-GPU row"):
        gpu_check.train_ddp(ctx)
    assert "train-ddp" in [s.name for s in gpu_check.STAGES]


def test_several_gpus_give_the_figures_step_the_ddp_row_time(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: a)'\n"
                                     "echo 'GPU 1: NVIDIA H200 (UUID: b)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    proc = run_script("--plan", env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^  figures\s+350 s", proc.stdout, re.M)
