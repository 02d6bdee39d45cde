"""Deploy page sections of issue 18: serve a model, accuracy vs latency, bring your own model.

Kept apart from dashboard/views/deploy.py (its steps 1-4); it only draws, the work is in
trt.serve.process, trt.damage (as the trt.damage task) and trt.byo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, task_progress
from engine.state.runs import job_dir
from trt import layout
from trt.layout import PRECISIONS


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- serve ------------------------------------------------------------------------------------


def render_serve(run: Path, key: str, ready: bool = True) -> None:
    """Start/stop `python -m trt serve` for a run (or an imported model) and show how to call
    it."""
    from trt.byo import is_imported
    from trt.serve import process
    from trt.serve.model import BACKENDS

    st.subheader("Serve")
    st.caption("An HTTP server for this model: the KServe v2 / Triton protocol and a plain "
               "`POST /classify`, with dynamic batching; TensorRT where the GPU and an engine "
               "allow, else ONNX Runtime; the checkpoint itself in PyTorch on request.")
    info = process.status(run)
    if info:
        st.success(f"Serving **{info['model']}** at {info['url']} ({info['backend']})")
        st.code(process.curl_examples(info), language="bash")
        if st.button("Stop server", key=f"{key}_stop"):
            process.stop(run)
            st.rerun()
        return
    if not ready:
        st.caption("Export the model first: the server serves its bundle.")
    with st.form(f"{key}_form", border=False):
        c1, c2, c3, c4 = st.columns(4)
        port = c1.number_input("Port (0: any free one)", 0, 65535, 0, key=f"{key}_port")
        # an imported ONNX model has no checkpoint for PyTorch to run
        backends = [b for b in BACKENDS if b != "pytorch" or not is_imported(run)]
        backend = c2.selectbox("Backend", backends, key=f"{key}_backend",
                               help="auto: TensorRT where the GPU and an engine allow, else ONNX "
                                    "Runtime; pytorch: the checkpoint itself, on the GPU where "
                                    "CUDA is (no TensorRT needed)")
        max_batch = c3.number_input("Max batch", 1, 1024, 32, key=f"{key}_batch")
        delay = c4.number_input("Max queue delay (ms)", 0.0, 1000.0, 5.0, key=f"{key}_delay")
        token = st.text_input("Bearer token (optional)", type="password", key=f"{key}_token")
        go = st.form_submit_button("Start server", disabled=not ready)
    if go:
        with st.spinner("Starting the server (it makes the bundle first if needed)..."):
            try:
                process.start(run, port=int(port) or None, backend=backend,
                              token=token or None, max_batch=int(max_batch),
                              max_delay_ms=float(delay))
            except (RuntimeError, OSError, ValueError) as e:
                st.error(f"The server did not start: {e}")
                return
        st.rerun()


# --- accuracy vs latency ---------------------------------------------------------------------


def damage_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"Class": r["class"], "Images": r["images"],
                          "FP32 accuracy %": r["fp32_accuracy"],
                          "Variant accuracy %": r["variant_accuracy"],
                          "Δ points": r["delta_points"],
                          "Now confused with": r["now_confused_with"] or "",
                          "Images moved": r["moved"]} for r in rows])


def delta_heatmap(delta: list[list[int]], classes: list[str]) -> alt.Chart:
    cells = [{"true": classes[i], "predicted": classes[j], "change": v}
             for i, row in enumerate(delta) for j, v in enumerate(row)]
    limit = max(1, max(abs(c["change"]) for c in cells))
    return alt.Chart(pd.DataFrame(cells), title="Confusion matrix: variant minus FP32").mark_rect(
    ).encode(x=alt.X("predicted:N", sort=classes), y=alt.Y("true:N", sort=classes),
             color=alt.Color("change:Q", scale=alt.Scale(scheme="redblue", domain=[-limit,
                                                                                   limit])),
             tooltip=["true", "predicted", "change"])


def accuracy_latency_chart(rows: list[dict[str, Any]], within: float) -> alt.Chart:
    frame = pd.DataFrame([r | {"accuracy %": 100 * r["accuracy"],
                               "choice": f"fastest within {within:g} points" if r["best"]
                               else "other"} for r in rows])
    return alt.Chart(frame, title="Accuracy vs latency (p50 per image batch)").mark_point(
        filled=True, size=90).encode(
        x=alt.X("p50_ms:Q", scale=alt.Scale(type="log"), title="p50 latency (ms)"),
        y=alt.Y("accuracy %:Q", scale=alt.Scale(zero=False)),
        color="variant:N", shape="choice:N",
        tooltip=["variant", "backend", "batch", "p50_ms", "images_per_s", "accuracy %"])


def render_damage(job_id: str) -> None:
    st.subheader("Accuracy vs latency")
    st.caption("Each precision's held-out accuracy against FP32, per class (where quantization "
               "hurts), and its latency per batch size; the fastest choice within the allowed "
               "accuracy loss is marked.")
    latest = task_progress.show(job_id, "trt.damage", "trt.damage", key="dp_cancel_trt.damage")
    from engine import jobs

    active = latest is not None and latest["status"] in jobs.ACTIVE
    with st.form("dp_damage_form", border=False):
        c1, c2 = st.columns(2)
        precisions = c1.multiselect("Variants", list(PRECISIONS), default=list(PRECISIONS),
                                    key="dp_damage_precisions")
        within = c2.number_input("Allowed loss (points of FP32 accuracy)", 0.0, 100.0, 1.0,
                                 step=0.5, key="dp_damage_within")
        go = st.form_submit_button("Measure", disabled=active)
    if go:
        task_progress.submit("trt.damage", job_id, {"precisions": precisions or ["fp32"],
                                                    "within": float(within)}, "damage")
    report = _read(layout.damage_path(job_dir(job_id)))
    if not report:
        return
    summary = pd.DataFrame([{"Variant": p, "Accuracy %": 100 * v["accuracy"],
                             "Δ vs FP32 (points)": v["delta_points"]}
                            for p, v in report["variants"].items()])
    st.dataframe(summary, hide_index=True, width="stretch")
    others = [p for p in report["variants"] if p != "fp32"]
    if others:
        chosen = st.selectbox("Per-class damage of", others, key="dp_damage_variant")
        v = report["variants"][chosen]
        c1, c2 = st.columns(2)
        c1.dataframe(damage_frame(v["damage"]), hide_index=True, width="stretch")
        charts.draw(c2, delta_heatmap, v["confusion_delta"], report["classes"])
    charts.draw(st, accuracy_latency_chart, report["accuracy_latency"], report["within_points"])


# --- bring your own model --------------------------------------------------------------------


def render_byo() -> None:
    from engine.datasets import list_datasets
    from trt.byo import contract, import_upload, list_imports

    st.subheader("Bring your own model")
    st.caption("An ONNX classifier trained elsewhere, with its labels and preprocessing: "
               "checked on ONNX Runtime, then variants, bundle and server as for a trained job "
               "(`python -m trt import` does the same, and `python -m trt build` builds its "
               "engines).")
    with st.expander("Import an ONNX model"), st.form("byo_form"):
        name = st.text_input("Name", key="byo_name")
        model = st.file_uploader("ONNX model", type=["onnx"], key="byo_onnx")
        labels = st.file_uploader("Labels (.txt one per line, or .json list)",
                                  type=["txt", "json"], key="byo_labels")
        c1, c2, c3, c4 = st.columns(4)
        height = c1.number_input("Height", 1, 4096, 28, key="byo_h")
        width = c2.number_input("Width", 1, 4096, 28, key="byo_w")
        channels = c3.selectbox("Channels", [1, 3], key="byo_c")
        polarity = c4.selectbox("Polarity", ["as-is", "white-on-black"], key="byo_pol")
        c1, c2 = st.columns(2)
        mean = c1.text_input("Mean per channel (after x / 255)", "0", key="byo_mean")
        std = c2.text_input("Std per channel", "1", key="byo_std")
        calib = st.file_uploader("Calibration images (.zip; class folders score accuracy)",
                                 type=["zip"], key="byo_calib")
        names = [d["name"] for d in list_datasets()]
        dataset = st.selectbox("...or a dataset of the workspace", ["(none)", *names],
                               key="byo_dataset")
        go = st.form_submit_button("Import")
    if go:
        try:
            if model is None or labels is None:
                raise ValueError("upload the ONNX model and its labels")
            pp = contract(int(height), int(width), int(channels),
                          [float(x) for x in mean.split(",")], [float(x) for x in std.split(",")],
                          polarity=polarity)
            with st.spinner("Importing and checking on ONNX Runtime..."):
                r = import_upload(name, model.getvalue(), labels.getvalue().decode(), pp,
                                  calibration_zip=calib.getvalue() if calib else None,
                                  dataset=None if dataset == "(none)" else dataset)
            st.success(f"Imported {name}: top-1 agreement batch vs one at a time "
                       f"{r['check']['top1_agreement']:.2%} on {r['check']['inputs']}")
        except (ValueError, OSError) as e:
            st.error(f"Could not import: {e}")
    imported = list_imports()
    if not imported:
        return
    chosen = st.selectbox("Imported model", imported, format_func=lambda p: p.name,
                          key="byo_chosen")
    render_byo_model(chosen)


def render_byo_model(root: Path) -> None:
    from trt.bundle import make_bundle

    report = _read(layout.sidecar(layout.onnx_path(root))) or {}
    check = report.get("check", {})
    st.caption(f"{len(report.get('classes', []))} classes, input {report.get('input', {})}; "
               f"check on {check.get('inputs')}: top-1 agreement "
               f"{check.get('top1_agreement', 0):.2%}")
    variants = st.multiselect("Variants in the bundle", list(PRECISIONS), default=["fp32"],
                              key="byo_variants")
    if st.button("Make variants and bundle", key="byo_bundle"):
        with st.spinner("Converting, calibrating and measuring accuracy..."):
            try:
                b = make_bundle(root, layout.bundle_path(root),
                                variants=variants or ["fp32"])
                st.dataframe(pd.DataFrame([{"Variant": p, "Accuracy %":
                                            100 * v["accuracy"] if "accuracy" in v else None}
                                           for p, v in b["variants"].items()]),
                             hide_index=True)
            except (ValueError, OSError, RuntimeError) as e:
                st.error(f"Could not make the bundle: {e}")
    bundle = layout.bundle_path(root)
    if bundle.exists():
        st.download_button("Download bundle.zip", bundle.read_bytes(),
                           file_name=f"{root.name}-bundle.zip", key="byo_download")
    render_serve(root, key="byo_serve", ready=True)
