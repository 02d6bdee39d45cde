"""The dashboard server's share of the CPU while jobs run on it (issue 28).

On a machine without a GPU the dashboard and the training jobs share the cores. A page view
costs the server some 15-20 ms of CPU, so twenty students who click without pause keep it
busy on a whole core, and a training job beside it lost a third of its speed: torch's threads
meet at a barrier after every operator, so one thread held off its core stalls the others
(bench/cpu_contention.py), and niceness cannot shift that across the kernel's per-session
groups. So while a job runs on the CPU the server admits page runs (and fragments' reruns) at
up to `share` cores of its own CPU time (all threads; a token bucket over the process's CPU
clock, first come first served, two runs at once, a long one counting for 0.2 s): under such
a load views queue for a moment instead of stalling the training. With no job on the CPU,
or a share of 0, nothing waits.

STUDIO_SERVER_CPU_SHARE sets the share in cores (default 0.2; 0 turns it off). Each replica
of `make replicas` keeps its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SETTING = "STUDIO_SERVER_CPU_SHARE"
DEFAULT_SHARE = 0.2  # cheaper views (2026-12-07 evening): both targets in 3 passes of 3 (docs)
BURST_S = 0.25  # CPU seconds a quiet server may spend at once: one student never waits
MAX_WAIT_S = 1.0  # a one-off cost (the start's imports, a big upload) delays no view longer
CONCURRENT = 2  # runs admitted at once while the budget holds...
HOLD_S = 0.2  # ...counting those that started this recently: a long one (a dataset being made,
# an upload unpacked) must not hold everybody else's views
BUSY_CHECK_S = 2.0  # how long the answer "a job runs on the CPU" is reused


def share_from_env(environ: dict[str, str] | os._Environ = os.environ) -> float:
    """The share in cores that STUDIO_SERVER_CPU_SHARE asks for (the default when unset)."""
    text = environ.get(SETTING, "").strip()
    if not text:
        return DEFAULT_SHARE
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not share >= 0 or share == float("inf"):
        raise ValueError(f"{SETTING} must be a number of CPU cores, 0 or more (e.g. 0.3; 0 "
                         f"for no limit), not {text!r}")
    return share


class CpuBudget:
    """Admits runs while this process has spent at most `share` cores of CPU time since the
    bucket was last full, as long as `busy()` is true; waiting runs go first come first
    served, at most CONCURRENT of those that started under `hold_s` ago at once. `cpu` and
    `clock` are the process's CPU clock and a monotonic clock (tests give their own)."""

    def __init__(self, share: float, busy: Callable[[], bool], *,
                 cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[threading.Condition, float], object] | None = None,
                 hold_s: float = HOLD_S) -> None:
        self.share, self.hold_s = share, hold_s
        self.busy = busy
        self._cpu, self._clock = cpu, clock
        self._sleep = sleep or (lambda cond, s: cond.wait(s))
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._inflight: dict[object, float] = {}  # admitted runs -> when they started
        self._held = threading.local()  # .active while this thread holds a run
        self._t, self._c = clock(), cpu()
        self._balance = BURST_S * share  # CPU seconds that may be spent before a run waits

    def _wait_s(self) -> float:
        """Refill the bucket for the time gone by, charge the CPU spent since: the seconds
        until it holds credit again (0: now)."""
        now, cpu = self._clock(), self._cpu()
        refill = self.share * (now - self._t)
        balance = min(BURST_S * self.share, self._balance + refill - (cpu - self._c))
        self._balance = max(balance, -MAX_WAIT_S * self.share)
        self._t, self._c = now, cpu
        # A debt under a microsecond counts as paid (float rounding must not spin the wait).
        return 0.0 if self._balance > -1e-6 else -self._balance / self.share

    @contextmanager
    def run(self) -> Iterator[float]:
        """Hold one run for the `with` block; yields the seconds it waited for its turn. A run
        inside a run of the same thread (a fragment's first draw inside its page) is the
        outer one's: it neither waits nor takes a second place."""
        if self.share <= 0 or getattr(self._held, "active", False) or not self.busy():
            yield 0.0
            return
        me, start = object(), self._clock()
        with self._cond:
            self._queue.append(me)
            try:
                while True:
                    if self._queue[0] is not me:
                        self._cond.wait()
                        continue
                    now = self._clock()
                    recent = [t for t in self._inflight.values() if now - t < self.hold_s]
                    if len(recent) < CONCURRENT:
                        wait = self._wait_s()
                        if wait <= 0:
                            break
                    else:  # until a run ends, or the oldest stops counting
                        wait = self.hold_s - (now - min(recent))
                    self._sleep(self._cond, wait)
            finally:
                self._queue.remove(me)
                self._cond.notify_all()
            self._inflight[me] = self._clock()
        self._held.active = True
        try:
            yield self._clock() - start
        finally:
            self._held.active = False
            with self._cond:
                del self._inflight[me]
                self._cond.notify_all()


class CachedCheck:
    """A yes/no question (does a job run on the CPU?) asked at most every `every_s` seconds."""

    def __init__(self, ask: Callable[[], bool], every_s: float = BUSY_CHECK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ask, self._every, self._clock = ask, every_s, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._answer = False

    def __call__(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._every:
                self._answer, self._at = bool(self._ask()), now
            return self._answer
