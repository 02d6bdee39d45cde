"""Deploy: take a trained model out. Export to ONNX (checked against PyTorch), precision
variants with their held-out accuracy, TensorRT engines, a benchmark, and a bundle to download.

Every step is a task job (trt/tasks.py) run by a worker, never in Streamlit. What the page shows
comes from the files the tasks leave in the job's exports/ folder and from the task jobs
themselves, so a reload shows what is there; a fragment polls while a step runs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, nav, task_progress
from dashboard.views import deploy_serving
from dashboard.widgets import choose_trained_job
from engine import jobs
from trt import layout
from trt.bench_report import noise_warnings, summary
from trt.layout import PRECISIONS, variant_path

BATCHES = (1, 8, 64, 256)


# --- what is there --------------------------------------------------------------------------


def exports_state(job_id: str) -> dict[str, Any]:
    """Everything the steps have written for a job (None where a step has not run)."""
    return layout.exports_state(jobs.job_dir(job_id))


def _in_order(per_precision: dict[str, Any]) -> list[tuple[str, Any]]:
    # The JSON files sort their keys; show FP32 first, as the baseline the others are read by.
    rank = {p: i for i, p in enumerate(PRECISIONS)}
    return sorted(per_precision.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def variants_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per precision: held-out accuracy beside FP32's, and the difference."""
    rows = [{"precision": p.upper(), "accuracy %": round(100 * v["accuracy"], 2),
             "Δ vs FP32 (points)": v.get("delta_points"),
             "size KB": round(v["size_bytes"] / 1024, 1)}
            for p, v in _in_order(report.get("variants", {}))]
    return pd.DataFrame(rows, columns=["precision", "accuracy %", "Δ vs FP32 (points)",
                                       "size KB"])


def engines_table(engines: dict[str, Any]) -> pd.DataFrame:
    """One row per precision asked for: built (size, time, library) or refused (why)."""
    rows = []
    for precision, e in _in_order(engines):
        built = e.get("status") == "built"
        rows.append({
            "precision": precision.upper(), "status": e.get("status"),
            "size KB": round(e["engine_size_bytes"] / 1024, 1) if built else None,
            "build s": e.get("build_time_s") if built else None,
            "library": f"{e.get('library', '')} {e.get('version', '')}".strip() or None,
            "reason": "" if built else " ".join((e.get("reason") or "").split()),
        })
    return pd.DataFrame(rows, columns=["precision", "status", "size KB", "build s", "library",
                                       "reason"])


def bench_table(bench: dict[str, Any]) -> pd.DataFrame:
    cols = ["backend", "batch", "p50_ms", "p90_ms", "p99_ms", "images_per_s"]
    df = pd.DataFrame(bench.get("rows", []), columns=cols).round(
        {"p50_ms": 3, "p90_ms": 3, "p99_ms": 3, "images_per_s": 0})
    return df.rename(columns={"p50_ms": "p50 ms", "p90_ms": "p90 ms", "p99_ms": "p99 ms",
                              "images_per_s": "images/s"})


# --- the page -------------------------------------------------------------------------------


def _choose_job() -> str | None:
    return choose_trained_job("deployment", "id", "dp_job")


def _active(job_id: str, task: str) -> bool:
    """Draws the step's newest task job (progress, or how it failed); True while it runs."""
    latest = task_progress.show(job_id, task, task, key=f"dp_cancel_{task}")
    return latest is not None and latest.status in jobs.ACTIVE


def _export(job_id: str, state: dict[str, Any]) -> None:
    st.subheader("1. Export to ONNX")
    st.caption("ONNX with a dynamic batch axis, checked against PyTorch with ONNX Runtime on "
               "held-out images; then FP32, FP16 and INT8 variants with their accuracy.")
    active = _active(job_id, "trt.export")
    label = "Export again" if state["export"] else "Export"
    if st.button(label, key="dp_export", disabled=active, type="primary"):
        task_progress.submit("trt.export", job_id, {}, "export")
    report = state["export"]
    if report is None:
        return
    check = report.get("check", {})
    c1, c2, c3 = st.columns(3)
    c1.metric("Max |logit difference|", f"{check.get('max_abs_diff', float('nan')):.2e}")
    c2.metric("Top-1 agreement", f"{check.get('top1_agreement', 0):.2%}")
    c3.metric("Images checked", check.get("images", 0))
    st.caption(f"Checked on {check.get('inputs', 'unknown inputs')}; opset {report.get('opset')}"
               f", {report.get('size_bytes', 0) / 1024:.1f} KB.")
    variants = state["variants"]
    if variants:
        split = variants.get("split")
        where = ("validation split (the dataset has no test split)" if split == "val"
                 else f"{split} split")
        st.markdown(f"**Precision variants**: accuracy on the {where} of "
                    f"{variants.get('dataset')}, ONNX Runtime on the CPU")
        st.dataframe(variants_table(variants), hide_index=True, width="stretch")
    st.page_link(nav.page("classify"), label="Classify with the ONNX model (ONNX Runtime)",
                 query_params={"job": job_id})


def _build(job_id: str, state: dict[str, Any]) -> None:
    st.subheader("2. Build TensorRT engines")
    ready = state["onnx"] is not None
    if not ready:
        st.caption("Export the model first: engines are built from its ONNX graphs.")
    active = _active(job_id, "trt.build")
    have = [p for p in PRECISIONS if ready and variant_path(state["onnx"], p).exists()]
    with st.form("dp_build_form", enter_to_submit=False, border=False):
        # The key follows the choices: a widget made before the export (no options) would
        # otherwise keep its empty selection once the variants exist.
        precisions = st.multiselect("Precisions", have, default=have,
                                    key=f"dp_precisions_{'-'.join(have)}", disabled=not ready)
        c1, c2, c3, c4 = st.columns(4)
        lo = c1.number_input("Min batch", 1, 4096, 1, key="dp_min_batch")
        opt = c2.number_input("Opt batch", 1, 4096, 8, key="dp_opt_batch")
        hi = c3.number_input("Max batch", 1, 4096, 256, key="dp_max_batch")
        ws = c4.number_input("Workspace MB", 16, 65536, 1024, step=128, key="dp_workspace")
        go = st.form_submit_button("Build engines", disabled=not ready or active)
    if go:
        if not precisions:
            st.error("Choose at least one precision.")
        elif not lo <= opt <= hi:
            st.error("The batch sizes must satisfy min ≤ opt ≤ max.")
        else:
            task_progress.submit("trt.build", job_id, {
                "precisions": precisions, "min_batch": int(lo), "opt_batch": int(opt),
                "max_batch": int(hi), "workspace_mb": int(ws)}, "build engines")
    engines = state["engines"]
    if not engines:
        return
    st.dataframe(engines_table(engines), hide_index=True, width="stretch")
    for precision, e in _in_order(engines):
        if e.get("status") == "refused":
            st.warning(f"**{precision.upper()} refused by the builder**")
            st.code(e.get("reason") or "no reason given", language=None)


def _bench(job_id: str, state: dict[str, Any]) -> None:
    st.subheader("3. Benchmark")
    ready = state["onnx"] is not None
    if not ready:
        st.caption("Export the model first: the benchmark compares PyTorch with its ONNX graph.")
    active = _active(job_id, "trt.bench")
    with st.form("dp_bench_form", enter_to_submit=False, border=False):
        c1, c2 = st.columns([3, 1])
        batches = c1.multiselect("Batch sizes", list(BATCHES), default=list(BATCHES),
                                 key="dp_batches")
        seconds = c2.number_input("Seconds per cell", 0.1, 10.0, 1.0, step=0.5,
                                  key="dp_seconds")
        go = st.form_submit_button("Benchmark", disabled=not ready or active)
    if go:
        if not batches:
            st.error("Choose at least one batch size.")
        else:
            task_progress.submit("trt.bench", job_id, {"batches": sorted(batches),
                                                       "seconds": float(seconds)}, "benchmark")
    bench = state["bench"]
    if not bench:
        return
    st.dataframe(bench_table(bench), hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    charts.draw(c1, charts.bench_latency, bench.get("rows", []))
    charts.draw(c2, charts.bench_throughput, bench.get("rows", []))
    for sentence in summary(bench.get("rows", [])):
        st.markdown(f"- {sentence}")
    noisy = noise_warnings(bench.get("rows", []))
    if noisy:
        st.warning("**Noisy figures**: the machine was busy during these cells, so their "
                   "latencies vary widely; run the benchmark again (or longer) before trusting "
                   "them.\n" + "\n".join(f"- {cell}" for cell in noisy))
    for name, why in (bench.get("skipped") or {}).items():
        st.caption(f"Skipped {name}: {why}")


def _bundle(job_id: str, state: dict[str, Any]) -> None:
    st.subheader("4. Bundle")
    ready = state["onnx"] is not None
    if not ready:
        st.caption("Export the model first: a bundle holds its ONNX graph.")
    st.caption("A zip with the ONNX model, the engines chosen, labels, the preprocessing "
               "contract and a README; `python -m trt infer BUNDLE IMAGE...` runs it.")
    active = _active(job_id, "trt.bundle")
    variants = [p for p in PRECISIONS if ready and variant_path(state["onnx"], p).exists()]
    built = [p for p, e in _in_order(state["engines"] or {}) if e.get("status") == "built"]
    with st.form("dp_bundle_form", enter_to_submit=False, border=False):
        c1, c2 = st.columns(2)
        chosen = c1.multiselect("ONNX variants", variants, default=variants[:1],
                                key=f"dp_bundle_variants_{'-'.join(variants)}")
        engines = c2.multiselect("Engines", built, default=built,
                                 key=f"dp_bundle_engines_{'-'.join(built)}")
        go = st.form_submit_button("Bundle", disabled=not ready or active)
    if go:
        if not chosen:
            st.error("Choose at least one ONNX variant.")
        else:
            task_progress.submit("trt.bundle", job_id, {"variants": chosen, "engines": engines},
                                 "bundle")
    if state["bundle"] is not None:  # read when clicked, not on every rerun
        size = state["bundle"].stat().st_size
        st.download_button(f"Download bundle.zip ({size / 1024:.0f} KB)",
                           state["bundle"].read_bytes, file_name=f"{job_id}-bundle.zip",
                           mime="application/zip", key="dp_download", on_click="ignore")


def render() -> None:
    st.title("Deploy")
    job_id = _choose_job()
    if job_id is None:
        deploy_serving.render_byo()
        return
    state = exports_state(job_id)
    _export(job_id, state)
    st.divider()
    _build(job_id, state)
    st.divider()
    _bench(job_id, state)
    st.divider()
    _bundle(job_id, state)
    _serving_sections(job_id)


def _serving_sections(job_id: str) -> None:
    """Issue 18's sections (dashboard/views/deploy_serving.py)."""
    st.divider()
    deploy_serving.render_serve(jobs.job_dir(job_id), key="dp_serve")
    st.divider()
    deploy_serving.render_damage(job_id)
    st.divider()
    deploy_serving.render_byo()
