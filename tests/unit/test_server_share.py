"""The dashboard server's CPU budget while jobs run on the CPU (engine/hosting/server_share):
a token bucket over the process's CPU clock, first come first served, checked with fake
clocks so each figure is exact."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest

from engine import jobs
from engine.hosting import server_share
from engine.hosting.server_share import BURST_S, MAX_WAIT_S, CachedCheck, CpuBudget
from engine.state import store


class Clocks:
    """A wall clock and a CPU clock that move only when told; sleeping moves the wall."""

    def __init__(self) -> None:
        self.now = 100.0
        self.cpu = 5.0
        self.slept: list[float] = []

    def sleep(self, _cond, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(clocks: Clocks, share: float = 0.5, busy: bool = True) -> CpuBudget:
    return CpuBudget(share, lambda: busy, cpu=lambda: clocks.cpu, clock=lambda: clocks.now,
                     sleep=clocks.sleep)


def test_the_share_setting_reads_cores_and_refuses_what_is_not_one():
    assert server_share.share_from_env({}) == server_share.DEFAULT_SHARE
    assert server_share.share_from_env({"STUDIO_SERVER_CPU_SHARE": " 0.5 "}) == 0.5
    assert server_share.share_from_env({"STUDIO_SERVER_CPU_SHARE": "0"}) == 0.0
    for bad in ("half", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="STUDIO_SERVER_CPU_SHARE must be a number of CPU "
                                             f"cores.*not '{bad}'"):
            server_share.share_from_env({"STUDIO_SERVER_CPU_SHARE": bad})


def test_runs_within_the_burst_do_not_wait_and_the_next_waits_for_its_debt():
    clocks = Clocks()
    b = budget(clocks, share=0.5)
    with b.run() as waited:
        assert waited == 0
        clocks.cpu += BURST_S * 0.5  # the whole burst
    with b.run() as waited:  # the bucket is empty, not in debt: no wait
        assert waited == 0
        clocks.cpu += 0.1  # 0.1 s of CPU beyond it
    with b.run() as waited:
        assert waited == pytest.approx(0.1 / 0.5)  # paid back at half a core
    assert clocks.slept == [pytest.approx(0.2)]


def test_the_bucket_refills_with_time_but_holds_no_more_than_the_burst():
    clocks = Clocks()
    b = budget(clocks, share=0.5)
    clocks.now += 3600  # an idle hour buys no more than the burst
    with b.run():
        clocks.cpu += BURST_S * 0.5 + 0.05
    with b.run() as waited:
        assert waited == pytest.approx(0.05 / 0.5)
    with b.run():
        clocks.cpu += 0.2
    clocks.now += 0.3  # 0.15 s refilled of the 0.2 s owed
    with b.run() as waited:
        assert waited == pytest.approx(0.05 / 0.5)


def test_a_one_off_cost_delays_a_view_by_at_most_max_wait():
    clocks = Clocks()
    b = budget(clocks, share=0.3)
    with b.run():
        clocks.cpu += 30.0  # e.g. the start's imports in another thread: 100 s at 0.3 cores
    with b.run() as waited:
        assert waited == pytest.approx(MAX_WAIT_S)


@pytest.mark.parametrize("busy,share", [(False, 0.3), (True, 0.0)])
def test_nothing_waits_without_a_cpu_job_or_with_the_limit_off(busy, share):
    clocks = Clocks()
    b = budget(clocks, share=share, busy=busy)
    for _ in range(5):
        with b.run() as waited:
            clocks.cpu += 10.0
            assert waited == 0
    assert clocks.slept == []


def test_a_run_inside_a_run_of_the_same_thread_is_the_outer_ones():
    clocks = Clocks()
    b = budget(clocks, share=0.5)
    with b.run():
        clocks.cpu += 10.0  # deep in debt
        with b.run() as waited:  # a fragment's first draw inside its page
            assert waited == 0 and len(b._inflight) == 1
    assert clocks.slept == [] and not b._inflight
    with b.run() as waited:  # the next page waits for the debt, capped
        assert waited == pytest.approx(MAX_WAIT_S)


def test_waiting_runs_go_first_come_first_served_two_at_a_time():
    # Credit never runs out and held runs always count: only the turn order matters.
    b = CpuBudget(1000.0, lambda: True, hold_s=600)
    release = threading.Event()
    order: list[int] = []
    inside = []
    lock = threading.Lock()

    def run(k: int) -> None:
        with b.run():
            with lock:
                order.append(k)
                inside.append(k)
                assert len(inside) <= server_share.CONCURRENT
            release.wait(10)
            with lock:
                inside.remove(k)

    threads = []
    for k in range(5):
        t = threading.Thread(target=run, args=(k,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while len(order) + len(b._queue) < k + 1 and time.monotonic() < deadline:
            time.sleep(0.005)  # thread k has arrived (holding a run or queued) before k+1
    assert order == [0, 1] and len(b._queue) == 3
    release.set()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_the_cpu_job_question_is_asked_at_most_every_interval():
    now = [0.0]
    asked = []
    check = CachedCheck(lambda: asked.append(now[0]) or True, every_s=2.0, clock=lambda: now[0])
    for t in (0.0, 0.5, 1.9, 2.0, 2.1, 5.0):
        now[0] = t
        assert check() is True
    assert asked == [0.0, 2.0, 5.0]


def test_running_on_cpu_counts_running_jobs_that_hold_the_cpu(home):
    rows = [("a", "running", "cpu"), ("b", "running", "cuda:0"), ("c", "running", "cpu:2"),
            ("d", "queued", None), ("e", "done", "cpu"), ("f", "running", "cuda:0,1")]
    with closing(store.connect(home)) as conn:
        assert jobs.running_on_cpu(home) == 0
        for job_id, status, device in rows:
            store.insert_job(conn, {"id": job_id, "name": job_id, "status": status,
                                    "device": "auto", "assigned_device": device,
                                    "config": {}, "created": 1.0, "queued": 1.0})
    assert jobs.running_on_cpu(home) == 2  # a (one CPU) and c (a 2-process CPU DDP job)



def test_a_long_run_stops_holding_a_place_after_hold_s():
    b = CpuBudget(1000.0, lambda: True, hold_s=0.05)
    release, admitted = threading.Event(), threading.Event()

    def hold() -> None:
        with b.run():
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(server_share.CONCURRENT)]
    for t in holders:
        t.start()
    deadline = time.monotonic() + 5
    while len(b._inflight) < server_share.CONCURRENT and time.monotonic() < deadline:
        time.sleep(0.005)

    def third() -> None:
        with b.run():
            admitted.set()

    t3 = threading.Thread(target=third)
    t3.start()
    assert admitted.wait(5)  # both places still held, but by runs over hold_s old
    release.set()
    for t in (*holders, t3):
        t.join(10)
    assert not b._inflight
