"""Fair share (issue 19): the queue's order across users, FIFO when turned off, priorities,
the running-jobs quota holding a user's further jobs back, and the real scheduler following
that order (its worker launches recorded instead of run)."""

from __future__ import annotations

import pytest

from engine.hosting import quotas
from engine.jobs.fair_share import FIFO, order_queue, queue_now
from engine.jobs.scheduler import Scheduler
from engine.jobs.settings import SchedulerSettings, load_settings
from engine.state import store


def _queue(*owners: str, start: float = 100.0) -> list[dict]:
    """Jobs queued one second apart, named owner + their n-th job: a1, a2, b1..."""
    seen: dict[str, int] = {}
    out = []
    for i, owner in enumerate(owners):
        seen[owner] = seen.get(owner, 0) + 1
        out.append({"id": f"{owner}{seen[owner]}", "owner": owner, "queued": start + i})
    return out


def _ids(placements) -> list[str]:
    return [p.job["id"] for p in placements]


def test_round_robin_across_three_users_with_uneven_queues():
    # alice queued five jobs before bob's two and carol's one.
    queue = _queue("a", "a", "a", "a", "a", "b", "b", "c")
    fair = order_queue(queue, running=[])
    assert _ids(fair) == ["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]
    assert all(p.may_start for p in fair)
    fifo = order_queue(queue, running=[], order=FIFO)
    assert _ids(fifo) == ["a1", "a2", "a3", "a4", "a5", "b1", "b2", "c1"]


def test_fewest_running_then_least_recently_served_first():
    queue = _queue("a", "b", "c")
    # a runs two jobs, b one: c (none running) first, then b, then a.
    running = [{"owner": "a"}, {"owner": "a"}, {"owner": "b"}]
    assert _ids(order_queue(queue, running)) == ["c1", "b1", "a1"]
    # Nobody runs anything: the one served longest ago goes first (never served: before all).
    served = {"a": 50.0, "b": 10.0}
    assert _ids(order_queue(queue, [], last_served=served)) == ["c1", "b1", "a1"]
    assert _ids(order_queue(queue, [], order=FIFO, last_served=served)) == ["a1", "b1", "c1"]


def test_priority_orders_a_users_own_jobs_only():
    queue = _queue("a", "a", "b")
    queue[1]["priority"] = 5  # a's second job jumps a's first, not bob
    assert _ids(order_queue(queue, [])) == ["a2", "b1", "a1"]
    assert _ids(order_queue(queue, [], order=FIFO)) == ["a1", "a2", "b1"]  # strict FIFO


def test_running_limit_holds_jobs_back_with_the_reason():
    queue = _queue("a", "a", "a", "b")
    running = [{"owner": "a"}]
    limits = {"a": 2}
    out = order_queue(queue, running, max_running=limits.get)
    assert _ids(out) == ["b1", "a1", "a2", "a3"]
    assert [p.may_start for p in out] == [True, True, False, False]
    assert out[2].waits == "a may run 2 jobs at once; a's earlier queued jobs start first"
    full = order_queue(queue, [{"owner": "a"}, {"owner": "a"}], max_running=limits.get)
    assert [p.waits for p in full if p.job["owner"] == "a"] == [
        "a already runs 2 jobs (limit 2)"] * 3
    fifo = order_queue(queue, running, order=FIFO, max_running=limits.get)
    assert _ids(fifo) == ["a1", "b1", "a2", "a3"] and not fifo[2].may_start
    # Task jobs (evaluations, exports) neither count nor wait for the limit.
    task = {"id": "t1", "owner": "a", "queued": 99.0, "kind": "task"}
    with_task = order_queue([*queue, task], running, max_running={"a": 1}.get)
    assert [p.job["id"] for p in with_task if p.may_start] == ["b1", "t1"]


def test_queue_order_setting_and_its_check(monkeypatch, tmp_path):
    assert load_settings(tmp_path).queue_order == "fair"
    monkeypatch.setenv("STUDIO_QUEUE_ORDER", "fifo")
    assert load_settings(tmp_path).queue_order == "fifo"
    monkeypatch.setenv("STUDIO_QUEUE_ORDER", "lottery")
    with pytest.raises(ValueError, match="queue_order must be fair or fifo"):
        load_settings(tmp_path)
    with pytest.raises(ValueError, match="queue order must be one of fair, fifo"):
        order_queue([], [], order="lottery")


def _scheduler_launches(tmp_path, monkeypatch, order: str) -> list[str]:
    """The jobs the real scheduler starts in one pass with two CPU slots: alice queued three
    jobs, then bob one; alice may run one at a time when her quota says so."""
    home = tmp_path / order
    home.mkdir(exist_ok=True)
    s = Scheduler(home, SchedulerSettings(cpu_slots=2, gpus=0, queue_order=order),
                  on_demand=True)
    s.gpus, s.conn = 0, store.connect(home)
    started: list[str] = []

    class FakePopen:
        pid = 4242

        def __init__(self, args, **kw):
            started.append(args[-1])

    monkeypatch.setattr("engine.jobs.scheduler.subprocess.Popen", FakePopen)
    for job in _queue("alice", "alice", "alice", "bob"):
        store.insert_job(s.conn, {**job, "name": job["id"], "status": "queued",
                                  "device": "cpu", "config": {}, "created": job["queued"]})
    s.start_queued()
    return started


def test_the_scheduler_starts_jobs_in_the_fair_order(tmp_path, monkeypatch):
    assert _scheduler_launches(tmp_path, monkeypatch, "fair") == ["alice1", "bob1"]
    assert _scheduler_launches(tmp_path, monkeypatch, "fifo") == ["alice1", "alice2"]


def test_the_scheduler_keeps_the_running_limit(tmp_path, monkeypatch):
    quotas.set_limit("alice", "running_jobs", 1, by=None, home=tmp_path / "fifo")
    assert _scheduler_launches(tmp_path, monkeypatch, "fifo") == ["alice1", "bob1"]
    with store.opened(tmp_path / "fifo") as conn:
        waiting = queue_now(conn, "fifo")
    assert [(p.job["id"], p.waits) for p in waiting] == [
        ("alice2", "alice already runs 1 job (limit 1)"),
        ("alice3", "alice already runs 1 job (limit 1)")]
