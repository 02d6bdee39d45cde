"""The CPU thread budget: how many CPU jobs may run at once and how many threads each gets.

Two processes whose thread pools together ask for more threads than there are cores do not
share the cores, they fight: OpenMP's spin-waiting pools stall each other (two LeNet trainings
with two threads each on two cores ran at 0.42x of one alone in total). So the scheduler
hands out a budget of `cpu_threads` (the cores this process may use, unless set):

- a task job (evaluation, classify-many, export) gets `task_threads` (1 by default);
- training jobs get `threads_per_job` each, or with 0 (the default) an even share of what the
  tasks leave, rebalanced whenever a CPU job starts or ends: a training alone uses every core,
  two trainings split them;
- a CPU job is admitted only while every running CPU job can still get its minimum (1 thread a
  training, `task_threads` a task) within the budget, and fewer than `cpu_slots` run.

A worker learns its share from its environment at start (OMP_NUM_THREADS, MKL_NUM_THREADS and
STUDIO_WORKER_THREADS) and, for training, from `<job dir>/threads` while it runs, which the
scheduler rewrites when the share changes (`ShareWatcher` applies it between steps).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

THREADS_FILE = "threads"  # in a job's directory: the share the scheduler gives it now
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "STUDIO_WORKER_THREADS")


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, as containers and taskset set it),
    not every CPU the machine has."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS)
        return max(1, os.cpu_count() or 1)


def minimum_threads(kind: str, task_threads: int, threads_per_job: int) -> int:
    """The fewest threads a CPU job of this kind ("train" or "task") runs with."""
    if kind == "task":
        return task_threads
    return threads_per_job or 1


def admits(running: Sequence[str], kind: str, *, cpu_threads: int, cpu_slots: int | None,
           task_threads: int = 1, threads_per_job: int = 0, count: int = 1) -> bool:
    """Whether a CPU job of `kind` may start beside the running CPU jobs (their kinds); a
    data-parallel job of `count` CPU processes takes `count` slots at once. The first job
    always starts, even if it alone asks for more than the budget."""
    if cpu_slots is not None and len(running) + count > cpu_slots:
        return False
    if not running:
        return True
    need = sum(minimum_threads(k, task_threads, threads_per_job)
               for k in [*running, *[kind] * count])
    return need <= cpu_threads


def shares(running: Sequence[str], *, cpu_threads: int, task_threads: int = 1,
           threads_per_job: int = 0) -> list[int]:
    """The threads of each running CPU job (kinds in start order). Tasks get task_threads;
    trainings get threads_per_job, or (0) an even split of the rest, the older ones taking
    the remainder, never fewer than 1."""
    tasks = sum(1 for k in running if k == "task")
    trainings = len(running) - tasks
    left = max(0, cpu_threads - tasks * task_threads)
    even, extra = divmod(left, trainings) if trainings else (0, 0)
    out, nth = [], 0
    for k in running:
        if k == "task":
            out.append(max(1, task_threads))
            continue
        if threads_per_job:
            out.append(threads_per_job)
        else:
            out.append(max(1, even + (nth < extra)))
        nth += 1
    return out


def thread_env(threads: int) -> dict[str, str]:
    """The environment variables that size a child's thread pools (OpenMP, MKL, and ours for
    torch.set_num_threads) before it imports torch. OpenMP threads also sleep rather than spin
    while they wait (unless the host says otherwise): on a machine whose cores other programs
    also use, spinning pools stalled a 2-thread LeNet training to 100-400 images/s, against
    1,700-1,900 with passive waiting, in the same minutes (2 vCPUs, load average ~10)."""
    env = {name: str(max(1, int(threads))) for name in ENV_VARS}
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    return env


def use_threads(threads: int, interop: int | None = 1) -> None:
    """Size this process's torch pools: intra-op to `threads`, inter-op (once, before any
    parallel work; later calls cannot change it) to `interop`."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    if interop is not None:
        try:
            torch.set_num_interop_threads(max(1, int(interop)))
        except RuntimeError:  # already set or inter-op work already ran: keep what there is
            pass


def env_threads() -> int | None:
    """The share the scheduler gave this worker at start (None outside a scheduled worker)."""
    value = os.environ.get("STUDIO_WORKER_THREADS", "")
    return max(1, int(value)) if value.strip().isdigit() else None


def write_share(job_dir: Path, threads: int) -> None:
    """Tell a running worker its new share (atomically: it never reads half a number)."""
    tmp = job_dir / f".{THREADS_FILE}.{os.getpid()}"
    tmp.write_text(str(int(threads)))
    os.replace(tmp, job_dir / THREADS_FILE)


def read_share(job_dir: Path) -> int | None:
    try:
        text = (job_dir / THREADS_FILE).read_text().strip()
    except OSError:
        return None
    return max(1, int(text)) if text.isdigit() else None


class ShareWatcher:
    """Called between training steps: every `poll_s` it reads the job's share file and resizes
    torch's intra-op pool when the share changed."""

    def __init__(self, job_dir: Path, current: int, poll_s: float = 1.0) -> None:
        self.job_dir = Path(job_dir)
        self.current = current
        self.poll_s = poll_s
        self._next = time.monotonic() + poll_s

    def __call__(self) -> int:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.poll_s
            share = read_share(self.job_dir)
            if share is not None and share != self.current:
                import torch

                torch.set_num_threads(share)
                self.current = share
        return self.current


# --- a process's own inference (the dashboard) ------------------------------------------------

_interactive: int | None = None


def set_interactive_threads(threads: int | None) -> None:
    """Threads for this process's own inference (the dashboard's canvas, probes, uploads: one,
    so the cores stay with the jobs). Applied when a backend is built (see
    engine.inference.classify.get_backend), so calling this imports nothing heavy."""
    global _interactive
    _interactive = None if threads is None else max(1, int(threads))


def process_threads() -> int | None:
    """The threads this process should compute with: the interactive setting, else the share a
    scheduled worker was started with, else None (the library's default: every core)."""
    return _interactive or env_threads()


def apply_interactive_threads() -> None:
    """Size torch's pool to the interactive setting, if there is one (inter-op left alone: a
    server process may already have used it)."""
    if _interactive is not None:
        use_threads(_interactive, interop=None)
