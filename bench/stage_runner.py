"""Measuring stages that each get a time limit, where one failing stage costs only itself.

A stage is a function of a shared context returning its figures (a dict). run_stages() runs
them in order, each inside its own limit (SIGALRM: a Python-level interrupt, so a stage stuck
inside one long C call ends when that call returns; the shell's outer `timeout` covers the
rest), records an error or a timeout as that stage's status instead of stopping, skips the
stages that need one which did not finish, and writes the results file after every stage, so
a run cut short keeps every figure measured before.
"""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.state.workspace import atomic_write_json


class StageTimeout(Exception):
    """A stage ran past its time limit."""


class StageSkipped(Exception):
    """Raised by a stage that does not apply on this machine (the message says why)."""


@dataclass(frozen=True)
class Stage:
    name: str
    limit_s: float
    run: Callable[[Any], dict[str, Any]]
    needs: tuple[str, ...] = ()
    what: str = ""


@dataclass
class Report:
    """What run_stages() writes: the plan, then each stage's status, seconds and figures."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def plan_lines(stages: list[Stage]) -> list[str]:
    """One line per stage with its limit, then the total: printed before anything starts."""
    lines = [f"  {i}. {s.name:<18} {s.limit_s:>4.0f} s  {s.what}"
             for i, s in enumerate(stages, 1)]
    lines.append(f"  total {sum(s.limit_s for s in stages):.0f} s")
    return lines


def _alarm(signum, frame):
    raise StageTimeout()


def _timed_out(e: BaseException | None) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, StageTimeout):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def run_stage(stage: Stage, context: Any) -> dict[str, Any]:
    """One stage inside its limit: {"status": ok | error | timeout, "seconds", ...figures}."""
    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, stage.limit_s)
    try:
        figures = stage.run(context) or {}
        outcome = {"status": "ok", **figures}
    except StageSkipped as e:
        outcome = {"status": "skipped", "error": str(e)}
    except Exception as e:  # recorded, and the next stage runs
        if _timed_out(e):  # also when a library wrapped the interrupt in its own error
            outcome = {"status": "timeout",
                       "error": f"ran past its limit of {stage.limit_s:g} s"}
        else:
            lines = f"{type(e).__name__}: {e}".strip().splitlines()
            outcome = {"status": "error", "error": lines[0] if lines else type(e).__name__,
                       "traceback": traceback.format_exc(limit=-3)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    return outcome


def run_stages(stages: list[Stage], context: Any, report: Report,
               log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run every stage in order, saving the report after each; returns the stages' results."""
    results: dict[str, dict[str, Any]] = report.data.setdefault("stages", {})
    report.data["plan"] = [{"stage": s.name, "limit_s": s.limit_s, "what": s.what}
                           for s in stages]
    report.save()
    for stage in stages:
        missing = [n for n in stage.needs if results.get(n, {}).get("status") != "ok"]
        if missing:
            results[stage.name] = {"status": "skipped",
                                   "error": f"needs {', '.join(missing)}, which did not finish"}
        else:
            log(f"[{stage.name}] up to {stage.limit_s:.0f} s")
            results[stage.name] = run_stage(stage, context)
        outcome = results[stage.name]
        log(f"[{stage.name}] {outcome['status']}"
            + (f": {outcome['error']}" if "error" in outcome else "")
            + (f" ({outcome['seconds']} s)" if "seconds" in outcome else ""))
        report.save()
    return results
