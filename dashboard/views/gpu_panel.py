"""The GPU panel: per GPU, utilisation, memory used of total, temperature and power, from the
scheduler's NVML samples (engine/jobs/gpu_stats.py); on a machine without a GPU it says so.
Drawn on Home and on the Job page of a running job (there, the job's own GPUs)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import cpu_budget
from engine.jobs.gpu_stats import panel_data
from engine.jobs.scheduler import scheduler_alive

GIB = 1024**3
POLL_S = 2.0  # how often a page redraws the panel (the scheduler samples as often)


def _value(v: Any, fmt: str) -> str:
    return "—" if v is None else fmt.format(v)


def gpu_rows(sample: dict[str, Any], only: list[int] | None = None) -> list[dict[str, str]]:
    """The panel's lines, as shown: one per GPU (those in `only`, when given)."""
    rows = []
    for g in sample.get("gpus") or []:
        if only is not None and g["index"] not in only:
            continue
        used, total = g.get("memory_used"), g.get("memory_total")
        memory = ("—" if used is None or total is None
                  else f"{used / GIB:.1f} / {total / GIB:.1f} GiB")
        power = _value(g.get("power"), "{:.0f} W")
        if g.get("power") is not None and g.get("power_limit"):
            power += f" / {g['power_limit']:.0f} W"
        rows.append({"gpu": f"cuda:{g['index']} — {g['name']}",
                     "utilisation": _value(g.get("utilization"), "{}%"),
                     "memory": memory,
                     "temperature": _value(g.get("temperature"), "{} °C"),
                     "power": power})
    return rows


def _sample() -> dict[str, Any] | None:
    try:
        return panel_data(None, scheduler_alive())
    except Exception as e:  # noqa: BLE001 - the panel never breaks a page
        st.caption(f"GPU panel unavailable: {e}")
        return None


def render_live() -> None:
    """Home's panel: redrawn every POLL_S while there are GPUs to watch; a machine without
    one says so once (no polling)."""
    sample = _sample()
    if sample is None:
        return
    if sample.get("gpus") or sample.get("waiting"):
        cpu_budget.fragment(render, run_every=POLL_S)()
    else:
        render(sample=sample)


def render(only: list[int] | None = None, sample: dict[str, Any] | None = None) -> None:
    """The panel (a fragment's worth of work: one file read)."""
    sample = sample or _sample()
    if sample is None:
        return
    if sample.get("waiting"):
        st.caption("GPUs: waiting for the scheduler's first sample…")
        return
    rows = gpu_rows(sample, only)
    if not sample.get("gpus"):
        error = sample.get("error") or "none found"
        st.caption(f"**No GPU readings**: {error}."
                   + (" Training runs on the CPU." if "not installed" not in error else
                      " Install it (requirements.txt) to see the GPUs here."))
        return
    if not rows:
        st.caption("None of this job's GPUs is in the latest sample.")
        return
    for row in rows:
        c = st.columns([3, 2, 2, 2, 2])
        c[0].markdown(f"**{row['gpu']}**")
        c[1].metric("Utilisation", row["utilisation"])
        c[2].metric("Memory", row["memory"])
        c[3].metric("Temperature", row["temperature"])
        c[4].metric("Power", row["power"])
    if sample.get("stale"):
        st.caption("This sample is old: the scheduler has not written a new one lately.")
