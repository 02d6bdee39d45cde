"""The CPU thread budget (engine/threads.py): settings parsing, the admission rule, the
shares, the environment a worker gets, and a worker resizing its pool when told to."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import pytest

from engine import threads
from engine.jobs.scheduler import Scheduler
from engine.jobs.settings import SchedulerSettings, load_settings

# --- settings ------------------------------------------------------------------------------------


def test_settings_defaults_come_from_the_machine(tmp_path, monkeypatch):
    for var in ("STUDIO_CPU_SLOTS", "STUDIO_CPU_THREADS", "STUDIO_THREADS_PER_JOB",
                "STUDIO_TASK_THREADS"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(tmp_path)
    assert s.cpu_slots is None and s.cpu_threads is None
    assert s.threads_per_job == 0 and s.task_threads == 1
    assert s.thread_budget == threads.usable_cores() == len(os.sched_getaffinity(0))


def test_settings_file_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "settings.json").write_text(json.dumps(
        {"scheduler": {"cpu_threads": "8", "task_threads": 2, "threads_per_job": 3}}))
    monkeypatch.delenv("STUDIO_CPU_THREADS", raising=False)
    monkeypatch.delenv("STUDIO_TASK_THREADS", raising=False)
    monkeypatch.setenv("STUDIO_THREADS_PER_JOB", "4")
    s = load_settings(tmp_path)
    assert (s.cpu_threads, s.task_threads, s.threads_per_job) == (8, 2, 4)
    assert s.thread_budget == 8
    assert load_settings(tmp_path, cpu_threads=6).cpu_threads == 6


@pytest.mark.parametrize("env, message", [
    ({"STUDIO_CPU_THREADS": "many"}, "STUDIO_CPU_THREADS must be a number, got 'many'"),
    ({"STUDIO_CPU_THREADS": "0"}, "cpu_threads must be >= 1"),
    ({"STUDIO_TASK_THREADS": "0"}, "task_threads >= 1"),
    ({"STUDIO_THREADS_PER_JOB": "-1"}, "threads_per_job must be >= 0"),
])
def test_bad_settings_say_which_and_why(tmp_path, monkeypatch, env, message):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=message):
        load_settings(tmp_path)


def test_bad_settings_file_value_is_named(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"scheduler": {"cpu_threads": "two"}}))
    with pytest.raises(ValueError, match="cpu_threads must be a number, got 'two'"):
        load_settings(tmp_path)


# --- the rules -----------------------------------------------------------------------------------


def test_admission_keeps_every_job_at_its_minimum_within_the_budget():
    rules = {"cpu_threads": 2, "cpu_slots": None}
    assert threads.admits([], "train", **rules)
    assert threads.admits(["train"], "train", **rules)  # 1 + 1 threads
    assert threads.admits(["train"], "task", **rules)
    assert not threads.admits(["train", "train"], "train", **rules)  # a third would oversubscribe
    assert not threads.admits(["train", "task"], "task", **rules)
    # Fixed threads per training: two trainings of 2 threads do not fit 2 cores.
    assert not threads.admits(["train"], "train", cpu_threads=2, cpu_slots=None,
                              threads_per_job=2)
    # A job alone always starts, even if it asks for more than the budget.
    assert threads.admits([], "train", cpu_threads=2, cpu_slots=None, threads_per_job=4)
    # cpu_slots caps the count whatever the budget.
    assert not threads.admits(["train"], "task", cpu_threads=16, cpu_slots=1)
    assert threads.admits(["train"] * 3, "task", cpu_threads=16, cpu_slots=None,
                          task_threads=4)
    assert not threads.admits(["train"] * 3, "task", cpu_threads=16, cpu_slots=None,
                              task_threads=14)


def test_shares_split_the_budget_and_never_exceed_it():
    assert threads.shares(["train"], cpu_threads=2) == [2]  # alone: every core
    assert threads.shares(["train", "train"], cpu_threads=2) == [1, 1]
    assert threads.shares(["train", "task"], cpu_threads=2) == [1, 1]
    assert threads.shares(["train", "task"], cpu_threads=8) == [7, 1]
    assert threads.shares(["train", "train", "train"], cpu_threads=8) == [3, 3, 2]
    assert threads.shares(["task", "train"], cpu_threads=8, task_threads=2) == [2, 6]
    assert threads.shares(["train", "train"], cpu_threads=8, threads_per_job=2) == [2, 2]
    for running in (["train"] * 2, ["train", "task"], ["train"] * 3 + ["task"]):
        for budget in range(len(running), 17):
            assert sum(threads.shares(running, cpu_threads=budget)) <= budget


def test_a_worker_environment_sizes_its_pools():
    env = threads.thread_env(3)
    assert {k: env[k] for k in threads.ENV_VARS} == {
        "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "STUDIO_WORKER_THREADS": "3"}
    assert env["OMP_WAIT_POLICY"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))
    assert threads.thread_env(0)["OMP_NUM_THREADS"] == "1"


def test_scheduler_admits_by_budget_and_launches_with_the_share(tmp_path, monkeypatch,
                                                                 launched):
    """The real _pick and _launch, with Popen recorded instead of run."""
    from engine.state import store

    s = Scheduler(tmp_path, SchedulerSettings(cpu_threads=2, gpus=0), on_demand=True)
    s.gpus, s.conn = 0, store.connect(tmp_path)
    use = collections.Counter()
    train = store.Job(id="j-a", config={}, created=0.0, queued=0.0, device="cpu", kind="train")
    task = store.Job(id="j-b", config={}, created=0.0, queued=0.0, device="cpu", kind="task")
    assert s._pick(train, use) == "cpu"
    use["cpu"] += 1
    assert s._pick(task, use) == "cpu"  # 1 + 1 of 2
    use["cpu"] += 1
    use["cpu:task"] += 1
    assert s._pick(train, use) is None and s._pick(task, use) is None

    started = launched
    for kind in ("train", "task"):
        store.insert_job(s.conn, {"id": f"j-{kind}", "name": kind, "status": "queued",
                                  "device": "cpu", "kind": kind, "config": {}, "created": 1.0,
                                  "queued": 1.0})
    s.start_queued()
    assert [e["OMP_NUM_THREADS"] for e in started] == ["2", "1"]  # alone, then beside it
    assert all(e["MKL_NUM_THREADS"] == e["STUDIO_WORKER_THREADS"] for e in started)
    assert threads.read_share(tmp_path / "jobs" / "j-train") == 2
    s.rebalance()  # the training shrinks to make room for the task
    assert threads.read_share(tmp_path / "jobs" / "j-train") == 1
    assert threads.read_share(tmp_path / "jobs" / "j-task") is None  # tasks keep theirs
    assert s.shares == {"j-train": 1, "j-task": 1}


def test_worker_applies_its_share_and_follows_changes(tmp_path):
    """A child started with a thread environment runs with that many torch threads, and a
    ShareWatcher resizes the pool when the scheduler writes a new share."""
    code = """
import sys, torch
from pathlib import Path
from engine import threads
threads.use_threads(threads.env_threads())
print(torch.get_num_threads(), torch.get_num_interop_threads())
w = threads.ShareWatcher(Path(sys.argv[1]), threads.env_threads(), poll_s=0)
threads.write_share(Path(sys.argv[1]), 1)
print(w(), torch.get_num_threads())
"""
    env = {**os.environ, **threads.thread_env(2)}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == ["2", "1", "1", "1"]


def test_interactive_threads_are_one_for_the_dashboard(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("STUDIO_WORKER_THREADS", raising=False)
    try:
        threads.set_interactive_threads(None)
        assert threads.process_threads() is None
        threads.set_interactive_threads(1)
        assert threads.process_threads() == 1
        threads.apply_interactive_threads()
        assert torch.get_num_threads() == 1
    finally:
        threads.set_interactive_threads(None)
        torch.set_num_threads(before)
