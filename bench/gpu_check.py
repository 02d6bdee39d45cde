"""The measuring half of bench/gpu_check.sh: every GPU figure of the project in one run.

Stages (each with its own time limit, listed before the run starts; see STAGES): the MNIST
sample dataset (the tests' 8k/2k split of MNIST t10k), LeNet training on CUDA in fp32, bf16,
fp16 and with torch.compile (images/s, held-out accuracy, peak GPU memory), the product's CLI
to 98% held-out on CUDA beside the same command on the CPU, two trainings at once on one GPU
against one alone, a job through the scheduler and a worker on cuda:0, evaluation on the GPU
against the CPU, ONNX Runtime's CUDA provider (or why not), then the inference benchmark of
every backend (TensorRT skipped with the reason where it cannot run).

A stage that fails or runs past its limit is recorded as such and the next one runs;
gpu_check.json is rewritten after every stage, gpu_check.md at the end.
`--preflight` only checks that the run can start (CUDA, the staged MNIST) and says why not in
one line. Exit status: 0 all stages ran, 1 some failed, 2 the preflight refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402
from stage_runner import Report, Stage, StageSkipped, plan_lines, run_stages  # noqa: E402

# The time-to-accuracy recipe: Adam with a one-cycle schedule, 3 epochs (issue 15).
TTA_EPOCHS = 3
TTA_ARGS = ["--network", "lenet", "--solver", "adam", "--lr", "0.003", "--lr-policy",
            "onecycle", "--epochs", str(TTA_EPOCHS), "--batch-size", "64", "--seed", "0"]
TARGET = 0.98


@dataclass
class Context:
    tmp: Path
    device: str = "cuda"
    home: Path | None = None
    runs: dict[str, Path] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def mnist_missing() -> str | None:
    from testkit.mnist import MNIST_DIR, MNIST_IMAGES, MNIST_LABELS

    if MNIST_IMAGES.exists() and MNIST_LABELS.exists():
        return None
    return (f"the MNIST t10k files are not in {MNIST_DIR}: run `bash bench/stage_device.sh` "
            "before the device call and carry .device (or set STUDIO_MNIST_DIR)")


def on_gpu(device: str) -> bool:
    return device.startswith("cuda")


def preflight(device: str = "cuda") -> str | None:
    """Why this machine cannot run the GPU check (one line), or None."""
    if on_gpu(device) and not torch.cuda.is_available():
        return (f"no CUDA GPU here (torch {torch.__version__}, "
                f"torch.cuda.is_available() is False): the GPU check needs one")
    return mnist_missing()


def machine(device: str = "cuda") -> dict[str, Any]:
    gpu: dict[str, Any] = {"gpu": "none (a CPU rehearsal)"}
    if on_gpu(device):
        props = torch.cuda.get_device_properties(0)
        gpu = {"gpu": props.name, "capability": f"{props.major}.{props.minor}",
               "memory_gib": round(props.total_memory / 2**30, 1),
               "gpus": torch.cuda.device_count()}
    return {**gpu, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}


# --- stages --------------------------------------------------------------------------------------


def setup(ctx: Context) -> dict[str, Any]:
    from testkit.mnist import make_mnist_sample

    (ctx.tmp / "data").mkdir()
    ctx.home = make_mnist_sample(ctx.tmp / "data")
    torch.zeros(1, device=ctx.device)  # CUDA context up before the first timed stage
    return {"dataset": "mnist-sample: MNIST t10k, first 8,000 train (10% of them validation), "
                       "last 2,000 held out", "machine": machine(ctx.device)}


def train_stage(name: str, precision: str = "fp32", compile: bool = False,
                epochs: int = 5):
    def run(ctx: Context) -> dict[str, Any]:
        from engine.training import RecordingSink, TrainConfig, train

        gpu = on_gpu(ctx.device)
        if precision != "fp32" and not gpu:
            raise StageSkipped("mixed precision needs CUDA")
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise StageSkipped("this GPU has no bf16")
        if gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        sink = RecordingSink()
        cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=epochs, lr=0.01,
                          seed=0, device=ctx.device, precision=precision, compile=compile)
        run_dir = ctx.tmp / f"run-{name}"
        started = time.perf_counter()
        result = train(cfg, run_dir, sink=sink, home=ctx.home)
        wall = time.perf_counter() - started
        ctx.runs[name] = run_dir
        rates = [round(m["images_per_s"]) for m in sink.epochs]
        return {"precision": precision, "compile": compile, "epochs": epochs,
                "wall_s": round(wall, 2), "images_per_s_best_epoch": max(rates),
                "images_per_s_per_epoch": rates,
                "first_epoch_s": round(sink.epochs[0]["epoch_time"], 2),
                "held_out_accuracy": (result.held_out or {}).get("accuracy"),
                "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
                if gpu else None}
    return run


def _cli_env(ctx: Context) -> dict[str, str]:
    from engine.jobs.settings import process_env

    return process_env(ctx.home)


def _cli_train(ctx: Context, device: str, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "engine", "train", "--dataset", "mnist-sample", *TTA_ARGS,
           "--device", device, "--out", str(out), "--json"]
    return subprocess.Popen(cmd, cwd=ROOT, env=_cli_env(ctx), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen], started: float) -> list[dict[str, Any]]:
    """Wait for CLI trainings; their wall time (command start to result) and figures. Kills
    them all if this stage is interrupted (its time limit)."""
    try:
        outs = [p.communicate() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    wall = time.perf_counter() - started
    figures = []
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        if p.returncode:
            tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"`python -m engine train` exited {p.returncode}: {tail}")
        result = json.loads(stdout)
        accuracy = (result.get("held_out") or {}).get("accuracy")
        figures.append({"wall_s": round(wall, 2), "held_out_accuracy": accuracy,
                        "reached_98": accuracy is not None and accuracy >= TARGET,
                        "images_per_s_last_epoch": round(result["final"]["images_per_s"])})
    return figures


def time_to_accuracy(ctx: Context) -> dict[str, Any]:
    """The product's CLI from the command's start to its held-out result, on CUDA and, as the
    baseline measured in the same run, on the CPU."""
    runs = {}
    for name, device in (("cuda", _gpu0(ctx)), ("cpu", "cpu")):
        started = time.perf_counter()
        runs[name] = _finish([_cli_train(ctx, device, ctx.tmp / f"tta-{name}")], started)[0]
    ratio = runs["cpu"]["wall_s"] / runs["cuda"]["wall_s"]
    return {"recipe": "python -m engine train " + " ".join(TTA_ARGS), "target": TARGET,
            **runs, "cuda_speedup_wall": round(ratio, 2)}


def _gpu0(ctx: Context) -> str:
    return "cuda:0" if on_gpu(ctx.device) else ctx.device


def concurrent_jobs(ctx: Context) -> dict[str, Any]:
    """Two CLI trainings at once on cuda:0 against one alone (the time-to-98 run, else one
    run here): total images/s and its ratio to one alone."""
    alone = ctx.results.get("time-to-98", {}).get("cuda")
    if alone is None:
        started = time.perf_counter()
        alone = _finish([_cli_train(ctx, _gpu0(ctx), ctx.tmp / "alone")], started)[0]
    started = time.perf_counter()
    pair = _finish([_cli_train(ctx, _gpu0(ctx), ctx.tmp / f"pair-{i}") for i in (1, 2)],
                   started)
    total = sum(p["images_per_s_last_epoch"] for p in pair)
    return {"alone": alone, "two_at_once": pair, "total_images_per_s": total,
            "total_vs_alone": round(total / alone["images_per_s_last_epoch"], 2),
            "wall_two_vs_one": round(pair[0]["wall_s"] / alone["wall_s"], 2)}


def scheduler_job(ctx: Context) -> dict[str, Any]:
    """One training job submitted as the dashboard does, run by the scheduler and a worker
    on cuda:0, with the evaluation that follows it."""
    from engine import jobs
    from engine.jobs.scheduler import ensure_scheduler

    home = ctx.tmp / "jobs-home"
    shutil.copytree(ctx.home, home)
    os.environ.pop("STUDIO_GPUS", None)
    started = time.perf_counter()
    ensure_scheduler(home, poll_s=0.2, idle_exit_s=15)
    job_id = jobs.submit({"dataset": "mnist-sample", "network": "lenet", "epochs": 3,
                          "lr": 0.01, "device": _gpu0(ctx)}, name="gpu check", home=home)
    try:
        job = jobs.wait(job_id, timeout=None, poll_s=0.2, home=home)
    finally:  # also at this stage's time limit: no worker may train on beside later stages
        _stop(home, job_id)
    wall = time.perf_counter() - started
    if job["status"] != "done":
        raise RuntimeError(f"job ended {job['status']}: {job.get('message') or job.get('reason')}"
                           f" | {jobs.read_log(job_id, home=home, tail=3)}")
    result = job.get("result") or {}
    return {"status": job["status"], "assigned_device": job.get("assigned_device"),
            "wall_s_submit_to_done": round(wall, 2),
            "held_out_accuracy": (result.get("held_out") or {}).get("accuracy"),
            "images_per_s_last_epoch": round((result.get("final") or {}).get("images_per_s", 0))}


def _stop(home: Path, job_id: str) -> None:
    """End the job's worker (if still running) and the scheduler this stage started."""
    from engine import jobs
    from engine.jobs.scheduler import scheduler_status
    from engine.processes import terminate

    job = jobs.get_job(job_id, home, metrics=False, events=False)
    if job["status"] not in jobs.ENDED and job.get("pid"):
        terminate(int(job["pid"]))
    status = scheduler_status(home)
    if status.get("alive") and status.get("pid"):
        terminate(int(status["pid"]))


def evaluate_on_gpu(ctx: Context) -> dict[str, Any]:
    """The Evaluate page's work on the GPU against the CPU, same checkpoint, same answers."""
    from engine.evaluation.evaluate import evaluate_checkpoint

    run_dir = ctx.runs["train-fp32"]
    out = {}
    for name, device in (("cuda", _gpu0(ctx)), ("cpu", "cpu")):
        started = time.perf_counter()
        summary = evaluate_checkpoint(run_dir, home=ctx.home, device=device)
        out[name] = {"seconds": round(time.perf_counter() - started, 3),
                     "images": summary["images"], "accuracy": summary["accuracy"]}
    if abs(out["cuda"]["accuracy"] - out["cpu"]["accuracy"]) > 1e-3:
        raise RuntimeError(f"GPU and CPU evaluations differ: {out}")
    return {**out, "cpu_vs_cuda_seconds": round(out["cpu"]["seconds"] / out["cuda"]["seconds"],
                                                2)}


def onnxruntime_cuda(ctx: Context) -> dict[str, Any]:
    """ONNX Runtime's CUDA execution provider where onnxruntime-gpu is installed."""
    import numpy as np

    from engine.inference.predictor import Predictor
    from trt.bench import latency_stats, sample_calls
    from trt.onnx_export import onnx_bytes
    from trt.runtime import OnnxRunner, ort_provider_missing

    missing = ort_provider_missing("cuda")
    if missing:
        raise StageSkipped(missing)
    predictor = Predictor(ctx.runs["train-fp32"])
    model = onnx_bytes(predictor.model.cpu(), predictor.input_shape, 17)
    x = np.random.default_rng(0).standard_normal((64, *predictor.input_shape)).astype(np.float32)
    out = {}
    answers = {}
    for provider in ("cuda", "cpu"):
        runner = OnnxRunner(model, provider=provider)
        answers[provider] = runner.run(x)
        out[provider] = latency_stats(sample_calls(lambda r=runner: r.run(x), 0.5))
    out["max_abs_difference"] = float(np.abs(answers["cuda"] - answers["cpu"]).max())
    return {"batch": 64, **out}


def visible_gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# The 1-vs-N-GPU row's limit where it runs (2 or more GPUs: N ranks started, NCCL, 5 epochs);
# on a machine with fewer it only says why not, so it takes nothing from the one-GPU budget.
DDP_LIMIT_S = 45 if visible_gpus() >= 2 else 5


def train_ddp(ctx: Context) -> dict[str, Any]:
    """LeNet on every GPU at once (DDP: one rank per GPU, NCCL, the same global batch 64)
    against train-fp32 on one GPU in this run: images/s, the ratio, held-out accuracy."""
    from engine.training import TrainConfig
    from engine.training.distributed import run_training

    gpus = visible_gpus()
    if not on_gpu(ctx.device) or gpus < 2:
        raise StageSkipped(f"{gpus} GPU" + ("" if gpus == 1 else "s")
                           + " (the 1-vs-N-GPU row needs 2 or more)")
    one = ctx.results["train-fp32"]
    cfg = TrainConfig(dataset="mnist-sample", network="lenet", epochs=one["epochs"], lr=0.01,
                      seed=0, device="cuda", devices=gpus)
    started = time.perf_counter()
    result = run_training(cfg, ctx.tmp / "run-ddp", home=ctx.home)
    wall = time.perf_counter() - started
    rates = [round(m["images_per_s"]) for m in result.history]
    return {"gpus": gpus, "global_batch": 64, "wall_s": round(wall, 2),
            "images_per_s_best_epoch": max(rates), "images_per_s_per_epoch": rates,
            "one_gpu_images_per_s_best_epoch": one["images_per_s_best_epoch"],
            "n_vs_1": round(max(rates) / one["images_per_s_best_epoch"], 2),
            "held_out_accuracy": (result.held_out or {}).get("accuracy"),
            "one_gpu_held_out_accuracy": one["held_out_accuracy"]}


BENCH_BATCHES = (1, 64, 256)


def inference(ctx: Context) -> dict[str, Any]:
    """Every inference backend but torch.compile (its own stage: a slow compile there costs
    only its rows)."""
    from trt.bench import run_bench

    names = ("pytorch-cpu", "onnxruntime-cpu", "pytorch-cuda", "pytorch-cuda-graph",
             "tensorrt", "tensorrt-cuda-graph")
    return run_bench(ctx.runs["train-fp32"], batches=BENCH_BATCHES, seconds=0.6, rounds=3,
                     gpu=on_gpu(ctx.device), only=names)


def inference_compile(ctx: Context) -> dict[str, Any]:
    """torch.compile inference (a compile per batch shape) beside PyTorch eager on CUDA."""
    from trt.bench import run_bench

    if not on_gpu(ctx.device):
        raise StageSkipped("the torch.compile inference rows are CUDA only")
    return run_bench(ctx.runs["train-fp32"], batches=BENCH_BATCHES, seconds=0.6, rounds=3,
                     gpu=True, only=("pytorch-cuda", "torch-compile"))


STAGES = [
    Stage("setup", 15, setup, what="MNIST 8k/2k sample dataset, CUDA up"),
    Stage("train-fp32", 20, train_stage("train-fp32"), ("setup",), "LeNet 5 epochs, fp32"),
    Stage("train-bf16", 15, train_stage("train-bf16", "bf16"), ("setup",), "bf16 autocast"),
    Stage("train-fp16", 15, train_stage("train-fp16", "fp16"), ("setup",), "fp16 + scaler"),
    Stage("train-compile", 60, train_stage("train-compile", compile=True), ("setup",),
          "torch.compile (cold compile included)"),
    Stage("train-ddp", DDP_LIMIT_S, train_ddp, ("train-fp32",),
          "LeNet on all N GPUs (DDP) vs train-fp32 on one; skipped: 1 GPU"),
    Stage("time-to-98", 35, time_to_accuracy, ("setup",),
          "CLI to held-out result, CUDA and CPU baseline"),
    Stage("concurrent", 25, concurrent_jobs, ("setup",), "two trainings at once on cuda:0"),
    Stage("scheduler-job", 25, scheduler_job, ("setup",), "job via scheduler + worker on cuda:0"),
    Stage("evaluate", 10, evaluate_on_gpu, ("train-fp32",), "evaluation on GPU vs CPU"),
    Stage("onnxruntime-cuda", 10, onnxruntime_cuda, ("train-fp32",),
          "ONNX Runtime CUDA provider, or why not"),
    Stage("inference", 30, inference, ("train-fp32",),
          "inference backends, batch 1/64/256 (TensorRT: or why not)"),
    Stage("inference-compile", 40, inference_compile, ("train-fp32",),
          "torch.compile inference beside eager CUDA"),
]


# --- report --------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    stages = data.get("stages", {})
    gpu = stages.get("setup", {}).get("machine", {})
    lines = [f"# GPU check: {gpu.get('gpu', 'no GPU')} (compute capability "
             f"{gpu.get('capability', '?')}), torch {gpu.get('torch', '?')}, "
             f"{data.get('started', '')}", "",
             "| stage | status | s | figures |", "|---|---|---:|---|"]
    for name, r in stages.items():
        keep = {k: v for k, v in r.items() if k not in ("status", "seconds", "traceback",
                                                         "rows", "machine", "ratios")}
        text = json.dumps(keep, default=str)
        lines.append(f"| {name} | {r.get('status')} | {r.get('seconds', '')} | "
                     f"{text[:400].replace('|', '/')} |")
    from trt.bench import format_table

    for name in ("inference", "inference-compile"):
        if stages.get(name, {}).get("status") == "ok":
            lines += ["", f"## {name}", "", format_table(stages[name])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--preflight", action="store_true",
                    help="only check that the run can start; one line, exit 2 if not")
    ap.add_argument("--plan", action="store_true", help="print the stages and their limits")
    ap.add_argument("--stages", default="", help="comma-separated subset of the stages")
    ap.add_argument("--device", default="cuda",
                    help="cuda; cpu only rehearses the stages without a GPU (no GPU figures)")
    ap.add_argument("--stretch", type=float, default=1.0,
                    help="multiply every stage's time limit (a CPU rehearsal needs more)")
    args = ap.parse_args(argv)
    if args.plan:
        print("\n".join(plan_lines(STAGES)))
        return 0
    why = preflight(args.device)
    if why:
        print(f"gpu check refused: {why}", file=sys.stderr)
        return 2
    if args.preflight:
        info = machine(args.device)
        print(f"preflight ok: {info['gpu']} (compute capability "
              f"{info.get('capability', '-')}), torch {info['torch']}, CUDA {info['cuda']}")
        return 0
    chosen = [replace(s, limit_s=s.limit_s * args.stretch) for s in STAGES
              if not args.stages or s.name in args.stages.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("GPU check stages, each with its time limit:\n" + "\n".join(plan_lines(chosen)),
          flush=True)
    report = Report(out / "gpu_check.json",
                    {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                     "command": "bash bench/gpu_check.sh"})
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        ctx = Context(Path(tmp), device=args.device)
        report.data["stages"] = ctx.results  # later stages read earlier ones' figures
        run_stages(chosen, ctx, report, log=lambda m: print(m, flush=True))
    md = markdown(report.data)
    (out / "gpu_check.md").write_text(md)
    print(md)
    failed = [n for n, r in ctx.results.items() if r["status"] in ("error", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
