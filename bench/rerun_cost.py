"""What a Streamlit rerun costs the dashboard's server, with and without the garbage collection
Streamlit runs after every script run (`runner.postScriptGC`; .streamlit/config.toml turns it
off). A one-page app that imports PyTorch, as the dashboard does, redraws a fragment 4 times a
second (a caption, or --full: the live answer's picture, metric, chart and button) in headless
Chromium; the server process's CPU time (from /proc) over --seconds gives the cost per rerun.
Both settings are measured in the same run, the default (collect after every run) being the
baseline. Writes bench/results/rerun_cost.json (--full: rerun_cost_full.json).

    .venv/bin/python bench/rerun_cost.py [--seconds 10] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from engine.processes import stat_fields
from testkit.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server

ROOT = Path(__file__).resolve().parent.parent
RERUNS_PER_S = 4
APP = '''
import sys, time
import numpy as np, pandas as pd, altair as alt, streamlit as st
import torch  # noqa: F401  (the dashboard has it loaded: a full collection walks its objects)

def answer():
    st.caption(f"t={time.time():.2f}")
    if "--full" in sys.argv:
        st.image(np.random.randint(0, 255, (196, 196), np.uint8), width=196)
        st.metric("Prediction", "7", "100% confidence")
        df = pd.DataFrame({"class": list("73982"), "probability": np.random.rand(5)})
        st.altair_chart(alt.Chart(df).mark_bar().encode(x="probability:Q", y="class:N"))
        st.button("Keep this frame")

st.title("rerun cost")
st.fragment(answer, run_every=RUN_EVERY)()
'''.replace("RUN_EVERY", repr(1 / RERUNS_PER_S))


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)  # user and system time, in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(app: Path, gc_after_run: bool, seconds: float, full: bool) -> float:
    """Server CPU ms per fragment rerun."""
    from playwright.sync_api import sync_playwright

    with streamlit_server(app, app.parent, app.parent / "streamlit.log",
                          args=["--runner.postScriptGC", str(gc_after_run).lower()],
                          script_args=["--full"] * full) as (url, proc), \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("rerun cost").wait_for(timeout=120_000)
        time.sleep(3)  # past the first run's imports
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        browser.close()
    return 1000 * (c1 - c0) / ((t1 - t0) * RERUNS_PER_S)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--full", action="store_true", help="the live answer's elements, not a caption")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app.py"
        app.write_text(APP)
        with_gc = measure(app, True, args.seconds, args.full)
        without = measure(app, False, args.seconds, args.full)
    what = "the live answer" if args.full else "one caption"
    print(f"fragment drawing {what}, {RERUNS_PER_S} reruns/s, PyTorch imported:")
    print(f"  gc.collect(2) after every run (Streamlit's default, baseline): {with_gc:6.1f} ms "
          "of server CPU per rerun")
    print(f"  runner.postScriptGC = false (.streamlit/config.toml):          {without:6.1f} ms "
          f"({without / with_gc:.2f}x)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    out = ROOT / "bench" / "results" / f"rerun_cost{'_full' if args.full else ''}.json"
    out.write_text(json.dumps({
        "fragment": what, "reruns_per_s": RERUNS_PER_S, "seconds": args.seconds,
        "ms_per_rerun_gc_after_run": with_gc, "ms_per_rerun_without": without,
        "ratio": without / with_gc, "load_average_1min": os.getloadavg()[0]}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
