"""Running a group of testkit/hostile_runner.py in a sandboxed subprocess and judging its report:
the assertions every hostile case must pass, and the suite's figures for the README."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_BOUND_MIB = 1536  # whole process, torch and ONNX Runtime loaded (about 0.9-1.0 GiB idle)
GROWTH_BOUND_MIB = 512  # above the process's RSS before the cases started
MAX_MESSAGE = 600


def run_group(group: str, out: Path, timeout: float = 900) -> dict:
    """Run one group in a fresh process whose workspace, TMPDIR and HOME are inside `out`."""
    sandbox = {name: out / name for name in ("workspace", "tmp", "home")}
    for folder in sandbox.values():
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_MAX_")}
    env.update(STUDIO_HOME=str(sandbox["workspace"]), TMPDIR=str(sandbox["tmp"]),
               HOME=str(sandbox["home"]), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    env.pop("STUDIO_USER", None)
    r = subprocess.run([sys.executable, str(ROOT / "testkit" / "hostile_runner.py"), group,
                        str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    write_figures(report, out)
    return report


def problems(report: dict) -> list[str]:
    """Every way a case broke the contract, one line each (empty when all is well)."""
    bad = []
    for case, r in report["cases"].items():
        msg = (r["message"] or "").strip()
        if r["outcome"] == "crash":
            bad.append(f"{case}: crashed: {msg[-400:]}")
            continue
        if r["outcome"] == "refused":
            if not msg or "\n" in msg or "Traceback" in msg or len(msg) > MAX_MESSAGE:
                bad.append(f"{case}: refusal is not one clear line: {msg[:300]!r}")
        elif not r["expect_ok"]:
            bad.append(f"{case}: accepted, but should have been refused ({msg[:200]})")
        if r["peak_mib"] > PEAK_BOUND_MIB:
            bad.append(f"{case}: peak RSS {r['peak_mib']:.0f} MiB > {PEAK_BOUND_MIB} MiB")
        if r["peak_mib"] - report["baseline_mib"] > GROWTH_BOUND_MIB:
            bad.append(f"{case}: RSS grew {r['peak_mib'] - report['baseline_mib']:.0f} MiB "
                       f"> {GROWTH_BOUND_MIB} MiB")
    if not report["intact"]:
        bad.append("the dataset and job that existed before the cases changed")
    for key in ("new_in_inputs", "new_in_repo", "outside"):
        if report[key]:
            bad.append(f"files written outside the workspace ({key}): {report[key][:5]}")
    if report["pwned"]:
        bad.append("a pickle payload ran")
    return bad


def figures(report: dict) -> dict:
    cases = report["cases"].values()
    return {"group": report["group"], "cases": len(report["cases"]),
            "clear_errors": sum(r["outcome"] in ("refused", "refused-per-file") for r in cases),
            "handled_ok": sum(r["outcome"] == "ok" for r in cases),
            "crashes": sum(r["outcome"] == "crash" for r in cases),
            "baseline_mib": round(report["baseline_mib"]),
            "max_peak_mib": round(max(r["peak_mib"] for r in cases)),
            "max_growth_mib": round(max(r["peak_mib"] for r in cases) - report["baseline_mib"]),
            "data_intact": report["intact"]}


def write_figures(report: dict, out: Path) -> None:
    """Figures for the README; $STUDIO_HOSTILE_FIGURES (a folder) collects them when set."""
    target = os.environ.get("STUDIO_HOSTILE_FIGURES")
    data = json.dumps(figures(report), indent=1)
    (out / "figures.json").write_text(data)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / f"{report['group']}.json").write_text(data)
