"""A fast first visit: the heavy imports (PyTorch, the network and training code, the pages
built on them) start in a background thread when the server shows its first page, and a page
whose view is not imported yet says so with a spinner instead of staying blank. Once they are
in, what is alive is frozen out of the garbage collector's sweeps."""

from __future__ import annotations

import gc
import importlib
import sys
import threading
from types import ModuleType

import streamlit as st

THREAD_NAME = "studio-warmup"
HEAVY = ("torch", "engine.networks", "engine.training", "engine.evaluation.evaluate",
         "engine.inference.predictor", "dashboard.views.new_model", "dashboard.views.job",
         "dashboard.views.compare", "dashboard.views.deploy", "dashboard.views.classify",
         "dashboard.views.probes", "dashboard.views.datasets")


def _import_all() -> None:
    for name in HEAVY:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page that needs it will say what is wrong
            pass
    # PyTorch and the pages leave ~350k objects that live as long as the server. Each full
    # collection walked them all (0.2 s of CPU holding the GIL, every view waiting), about one
    # per 300 views; frozen, a full one takes 10 ms and a view 15-20% less CPU under load
    # (bench/server_cost.py). What is garbage now is collected first, so nothing leaks.
    gc.collect()
    gc.freeze()


@st.cache_resource
def start() -> threading.Thread:
    """Once per server process: import the heavy modules in a daemon thread."""
    thread = threading.Thread(target=_import_all, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def view(name: str) -> ModuleType:
    """dashboard.views.<name>, imported under a spinner the first time."""
    module = f"dashboard.views.{name}"
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, "render"):
        # Still through import_module: it waits if the warm-up thread is importing it.
        return importlib.import_module(module)
    with st.spinner("Loading this page (PyTorch and the model code load once per server)…"):
        return importlib.import_module(module)
