"""The New model page's learning-rate finder: runs the range test (engine/training/lr_finder.py)
on the form's settings, draws loss against learning rate with the suggestions marked, and puts
a suggested rate into the form's learning-rate input with one click.

It runs in the page's process, with a progress bar: at most a few hundred mini-batches of a
throwaway copy (seconds on a GPU, under a minute for LeNet on two CPU cores), and nothing to
keep, so it takes no place in the job queue.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts
from engine.datasets import DatasetError
from engine.networks import SpecError
from engine.training import ConfigError, TrainConfig, TrainingDiverged
from engine.training.lr_finder import STEPS, find_lr

RESULT_KEY = "nm_lrf_result"


def _use(lr_key: str, rate: float) -> None:
    """Button callback (it runs before the form's widgets exist): fill the learning rate."""
    st.session_state[lr_key] = rate


def _rounded(rate: float) -> float:
    return float(f"{rate:.3g}")


def section(dataset_id: str, network: str | dict | None, settings: dict[str, Any],
            lr_key: str = "nm_lr") -> None:
    """The finder's expander. `settings` are the form's other training options (solver,
    batch size, augmentation, device...); `lr_key` is the learning-rate input's key."""
    kept = st.session_state.get(RESULT_KEY)
    with st.expander("Learning-rate finder (range test)", expanded=kept is not None):
        st.caption("Trains a throwaway copy of this network from its initial weights while the "
                   "learning rate grows from 1e-7 to 10, and suggests the rate where the loss "
                   "falls fastest. Nothing is saved.")
        c1, c2 = st.columns([1, 2])
        steps = int(c1.number_input("Mini-batches (at most)", 10, 1000, STEPS,
                                    key="nm_lrf_steps"))
        c2.write("")  # align the button with the input
        run = c2.button("Find learning rate", key="nm_lrf_run", disabled=network is None,
                        help=None if network is not None else "fix the network spec first")
        config = None
        if network is not None:
            config = {**TrainConfig(dataset=dataset_id).to_dict(), **settings,
                      "dataset": dataset_id, "network": network}
        if run and config is not None:
            kept = _run(config, steps) or kept
        if kept is None:
            return
        _show(kept, config, lr_key)


def _run(config: dict[str, Any], steps: int) -> dict[str, Any] | None:
    bar = st.progress(0.0, text="range test: starting")

    def progress(step: int, total: int, lr: float, loss: float) -> None:
        bar.progress(step / total, text=f"range test: step {step} of {total}, "
                                        f"lr {lr:.2e}, loss {loss:.4f}")

    try:
        result = find_lr(TrainConfig.from_dict(config), steps=steps, progress=progress)
    except (ConfigError, DatasetError, SpecError, TrainingDiverged, ValueError) as e:
        bar.empty()
        st.error(f"Range test: {e}")
        return None
    bar.empty()
    kept = {**result.to_dict(), "config": config}
    st.session_state[RESULT_KEY] = kept
    return kept


def _show(kept: dict[str, Any], config: dict[str, Any] | None, lr_key: str) -> None:
    suggestion, min_div10 = kept["suggested_lr"], kept["min_lr_div10"]
    marks = {name: rate for name, rate in (("steepest", suggestion), ("minimum / 10", min_div10))
             if rate is not None}
    charts.draw(st, charts.lr_finder, kept["lrs"], kept["losses"], kept["raw_losses"], marks)
    ended = (f"diverged at lr {kept['lrs'][-1]:.3g}, step {kept['steps_run']}"
             if kept["stopped"] == "diverged" and kept["lrs"]
             else f"ran all {kept['steps_run']} steps")
    st.caption(f"{kept['steps_run']} mini-batches of {kept['batch_size']} on {kept['device']} "
               f"({kept['solver']}) in {kept['seconds']:.1f} s; {ended}.")
    if config is not None and config != kept["config"]:
        st.caption("The settings have changed since this test: run it again to match them.")
    if suggestion is None:
        st.warning("No suggestion: the loss did not fall before it diverged. Try a smaller "
                   "batch size or another solver.")
        return
    c1, c2 = st.columns(2)
    c1.button(f"Use {_rounded(suggestion):g} (steepest descent)", key="nm_lrf_use",
              type="primary", on_click=_use, args=(lr_key, _rounded(suggestion)))
    if min_div10 is not None:
        c2.button(f"Use {_rounded(min_div10):g} (minimum / 10)", key="nm_lrf_use_min",
                  on_click=_use, args=(lr_key, _rounded(min_div10)))
