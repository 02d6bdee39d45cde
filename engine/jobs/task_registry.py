"""Task names to task functions. A job's task name says which package holds it
("engine.evaluate" -> engine.jobs.tasks.TASKS, "trt.build" -> trt.tasks.TASKS), so a worker can
run deployment tasks without engine importing trt."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# The only places task code may come from: a task name's package -> the module with its TASKS.
TASK_MODULES = {"engine": "engine.jobs.tasks", "trt": "trt.tasks"}


def resolve(name: str) -> Callable[..., dict[str, Any]]:
    """The function of a task name, imported from its package's tasks module."""
    package = name.split(".", 1)[0]
    if package not in TASK_MODULES:
        raise ValueError(f"unknown task {name!r}")
    tasks = importlib.import_module(TASK_MODULES[package]).TASKS
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; {package} offers {', '.join(sorted(tasks))}")
    return tasks[name]
