"""Where a run reports what it does. The trainer calls a MetricsSink; the CLI prints through
one, tests record through one, and the jobs layer writes SQLite through one."""

from __future__ import annotations

from typing import Any


class MetricsSink:
    """Receives a run's events. The base class ignores them all."""

    def on_start(self, info: dict[str, Any]) -> None:
        """Once, before the first step: epochs, steps per epoch, device, parameters..."""

    def on_progress(self, progress: dict[str, Any]) -> None:
        """During an epoch, at a bounded rate: epoch, step, steps, loss, images_per_s, eta."""

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        """After each epoch: losses, accuracies, learning rate, images/s, epoch time."""

    def on_log(self, message: str) -> None:
        """A line for the run's log."""

    def on_end(self, result: dict[str, Any]) -> None:
        """Once, when the run ends for any reason (status says which)."""


class RecordingSink(MetricsSink):
    """Keeps every event in lists: for tests and for callers that want the history."""

    def __init__(self) -> None:
        self.started: dict[str, Any] = {}
        self.progress: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self.logs: list[str] = []
        self.result: dict[str, Any] = {}

    def on_start(self, info: dict[str, Any]) -> None:
        self.started = info

    def on_progress(self, progress: dict[str, Any]) -> None:
        self.progress.append(progress)

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        self.epochs.append(metrics)

    def on_log(self, message: str) -> None:
        self.logs.append(message)

    def on_end(self, result: dict[str, Any]) -> None:
        self.result = result


class FanoutSink(MetricsSink):
    """Sends every event to several sinks."""

    def __init__(self, *sinks: MetricsSink) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def on_start(self, info: dict[str, Any]) -> None:
        for s in self.sinks:
            s.on_start(info)

    def on_progress(self, progress: dict[str, Any]) -> None:
        for s in self.sinks:
            s.on_progress(progress)

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        for s in self.sinks:
            s.on_epoch(metrics)

    def on_log(self, message: str) -> None:
        for s in self.sinks:
            s.on_log(message)

    def on_end(self, result: dict[str, Any]) -> None:
        for s in self.sinks:
            s.on_end(result)
