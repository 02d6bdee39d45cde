"""The Ray backend's one shared object: a channel between the head's scheduler and the jobs
on nodes (see ray_cluster.py). Jobs report into it; the scheduler drains it into SQLite and
puts the jobs' cancel flags in it, which jobs ask for."""

from __future__ import annotations

from typing import Any

import ray

NAMESPACE = "digits-studio"


@ray.remote(num_cpus=0)
class JobChannel:
    """On the head node: reports from jobs wait here until the scheduler drains them; the
    jobs' cancel flags wait here until the jobs ask."""

    def __init__(self) -> None:
        self._messages: list[tuple[str, int, str, Any]] = []
        self._cancel: set[str] = set()

    def report(self, job_id: str, attempt: int, kind: str, payload: Any) -> None:
        self._messages.append((job_id, attempt, kind, payload))

    def drain(self) -> list[tuple[str, int, str, Any]]:
        messages, self._messages = self._messages, []
        return messages

    def set_cancel(self, job_ids: list[str]) -> None:
        self._cancel = set(job_ids)

    def cancelled(self, job_id: str) -> bool:
        return job_id in self._cancel
