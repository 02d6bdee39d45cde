"""The order in which queued jobs start: fair share across users, or strict first in, first out.

Fair share: the next job goes to the user with the fewest running jobs, then to the one served
least recently (whose last job started longest ago; never served comes first); among that
user's jobs, the highest priority, then the oldest. So one student who queues twenty jobs
gets one slot at a time, in turn with everyone else, instead of holding the queue.
FIFO: by the time queued (priority ignored), as the queue was before.

Either way a per-user running-jobs limit (engine/quotas) holds a user's further jobs back:
they stay queued, marked with why they wait, and come after every job that may start.

`order_queue` is a pure function of the queue and the running jobs, so the scheduler, the
Job page's "number N in the queue" and the simulation in bench/fair_share.py use the same
code. Jobs are dicts with "id", "owner", "queued" and optionally "priority".
"""

from __future__ import annotations

import collections
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.hosting import quotas
from engine.state import store
from engine.state.store import Job

FAIR, FIFO = "fair", "fifo"
QUEUE_ORDERS = (FAIR, FIFO)


@dataclass(frozen=True)
class Placement:
    job: Job | Mapping[str, Any]  # a store row (a plain mapping in tests and benchmarks)
    waits: str | None = None  # why it may not start now (a quota), None when it may

    @property
    def may_start(self) -> bool:
        return self.waits is None


def user_of(job: Mapping[str, Any]) -> str:
    """The owner, or "" for the local, user-less caller (one user like any other)."""
    return job.get("owner") or ""


def _fifo_key(item: tuple[int, Mapping[str, Any]]) -> tuple:
    """Time queued, then place in the given list (the store's queue order) on a tie."""
    n, job = item
    return (job.get("queued") or 0.0, n)


def _own_key(item: tuple[int, Mapping[str, Any]]) -> tuple:
    """Among one user's jobs: highest priority first, then the oldest."""
    return (-int(item[1].get("priority") or 0), *_fifo_key(item))


def order_queue(queued: Iterable[Mapping[str, Any]], running: Iterable[Mapping[str, Any]], *,
                order: str = FAIR, last_served: Mapping[str, float] | None = None,
                max_running: Callable[[str], int | None] | None = None) -> list[Placement]:
    """Every queued job in the order it would start, each with why it waits if a quota holds
    it back (those come last). last_served: user -> when their latest job started;
    max_running: user -> their running-jobs limit (None: unlimited)."""
    if order not in QUEUE_ORDERS:
        raise ValueError(f"queue order must be one of {', '.join(QUEUE_ORDERS)}, not {order!r}")
    queued = list(enumerate(queued))
    count = collections.Counter(user_of(j) for j in running if counts(j))
    before = dict(count)
    limit_of = max_running or (lambda user: None)
    limits: dict[str, int | None] = {}

    def limit(user: str) -> int | None:
        if user not in limits:
            limits[user] = limit_of(user)
        return limits[user]

    def full(job: Mapping[str, Any]) -> bool:
        cap = limit(user_of(job))
        return counts(job) and cap is not None and count[user_of(job)] >= cap

    starts: list[tuple[int, Mapping[str, Any]]] = []
    held: list[tuple[int, Mapping[str, Any]]] = []
    if order == FIFO:
        for item in sorted(queued, key=_fifo_key):
            if full(item[1]):
                held.append(item)
            else:
                starts.append(item)
                count[user_of(item[1])] += counts(item[1])
    else:
        waiting: dict[str, collections.deque] = {}
        for item in sorted(queued, key=_own_key):
            waiting.setdefault(user_of(item[1]), collections.deque()).append(item)
        # When each user was last served: never (first), at a real time, or in this pass
        # (after every real time, in the order of this pass's turns).
        served: dict[str, tuple[int, float]] = {
            u: (0, float(t)) for u, t in (last_served or {}).items() if t is not None}
        turn = itertools.count(1)
        while True:
            for items in waiting.values():  # a user's jobs over their limit step aside
                while items and full(items[0][1]):
                    held.append(items.popleft())
            ready = [u for u, items in waiting.items() if items]
            if not ready:
                break
            user = min(ready, key=lambda u: (count[u], served.get(u, (-1, 0.0)),
                                             _own_key(waiting[u][0])))
            item = waiting[user].popleft()
            starts.append(item)
            count[user] += counts(item[1])
            served[user] = (1, float(next(turn)))
        held.sort(key=_own_key)
    out = [Placement(job) for _, job in starts]
    for _, job in held:
        out.append(Placement(job, _why_held(user_of(job), before.get(user_of(job), 0),
                                                  limit(user_of(job)))))
    return out


def counts(job: Mapping[str, Any]) -> bool:
    """Whether a job counts against its owner's running-jobs limit: training jobs do; task
    jobs (evaluations, exports: short, and often started for the user) do not."""
    return job.get("kind", "train") != "task"


def _why_held(user: str, running: int, limit: int | None) -> str:
    who = user or "the local user"
    if running >= (limit or 0):
        return f"{who} already runs {running} job{'s' * (running != 1)} (limit {limit})"
    return (f"{who} may run {limit} job{'s' * (limit != 1)} at once; {who}'s earlier queued "
            "jobs start first")


def queue_now(conn: sqlite3.Connection, order: str = FAIR) -> list[Placement]:
    """The store's queue in the order jobs would start now, with the running jobs, when each
    user was last served and the running-jobs quotas: what the scheduler follows and the Job
    page shows."""

    queued = store.list_jobs(conn, statuses=("queued",), order="queue")
    if not queued:
        return []
    running = store.list_jobs(conn, statuses=("running",))
    last = store.last_started_by_owner(conn)
    return order_queue(queued, running, order=order, last_served=last,
                       max_running=quotas.running_limit(conn))
