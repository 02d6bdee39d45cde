"""The dashboard's runs under the server's CPU budget (engine/hosting/server_share): every
script run (app.py) and every fragment's rerun, which Streamlit starts without the script."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine import jobs
from engine.hosting import server_share
from engine.state.workspace import studio_home


@st.cache_resource(show_spinner=False)
def _budget(share: float) -> server_share.CpuBudget:
    """Once per server process and share: one check of the running jobs per workspace every
    2 s."""
    checks: dict[str, server_share.CachedCheck] = {}

    def busy() -> bool:
        home = str(studio_home())
        if home not in checks:
            checks[home] = server_share.CachedCheck(lambda: jobs.running_on_cpu(home) > 0)
        return checks[home]()

    return server_share.CpuBudget(share, busy)


def current() -> server_share.CpuBudget:
    """The budget STUDIO_SERVER_CPU_SHARE asks for (ValueError, naming it, when it is bad)."""
    return _budget(server_share.share_from_env())


def fragment(func: Callable[..., Any] | None = None, *,
             run_every: float | None = None) -> Any:
    """st.fragment whose reruns wait their turn in the budget; as a call,
    fragment(f, run_every=2.0)(args), or as a decorator, @fragment(run_every=2.0)."""
    if func is None:
        return functools.partial(fragment, run_every=run_every)

    @functools.wraps(func)  # the same module and name: the fragment keeps its identity
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        with current().run():
            return func(*args, **kwargs)

    return st.fragment(budgeted, run_every=run_every)
