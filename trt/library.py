"""Finding a TensorRT library and hearing what it says.

`tensorrt` (data centre, Jetson) and `tensorrt_rtx` (RTX PCs; builds ahead of time without a GPU)
share the API this package uses. TensorRT keeps one logger per process: the first one handed to a
Builder or Runtime wins and later ones are ignored, so this module owns that single logger and
lets callers capture its messages for the span of one build.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

LIBRARIES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")  # preference order

_module: ModuleType | None = None
_logger = None
_lock = threading.Lock()


class NoTensorRT(RuntimeError):
    """Neither tensorrt nor tensorrt_rtx can be imported."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("no TensorRT library is installed (pip install tensorrt-rtx, or "
                         "tensorrt on a data-centre GPU): " + "; ".join(reasons))


def tensorrt_module() -> ModuleType:
    """The first importable TensorRT library, preferring `tensorrt`."""
    global _module
    if _module is None:
        reasons = []
        for name in LIBRARIES:
            try:
                _module = importlib.import_module(name)
                break
            except Exception as e:  # a broken install raises more than ImportError
                reasons.append(f"{name}: {e}")
        else:
            raise NoTensorRT(reasons)
    return _module


def tensorrt_available() -> bool:
    try:
        tensorrt_module()
        return True
    except NoTensorRT:
        return False


def library_info() -> dict[str, str]:
    lib = tensorrt_module()
    return {"library": lib.__name__, "version": str(lib.__version__)}


def logger():
    """The process-wide TensorRT logger (created on first use)."""
    global _logger
    if _logger is None:
        lib = tensorrt_module()

        class CapturingLogger(lib.ILogger):
            def __init__(self) -> None:
                lib.ILogger.__init__(self)
                self.sinks: list[list[str]] = []

            def log(self, severity, msg: str) -> None:
                if severity <= lib.ILogger.Severity.WARNING:
                    for sink in self.sinks:
                        sink.append(f"{severity.name}: {msg}")

        _logger = CapturingLogger()
    return _logger


@contextmanager
def captured_messages() -> Iterator[list[str]]:
    """Errors and warnings TensorRT logs while the block runs (one capture at a time)."""
    with _lock:
        sink: list[str] = []
        log = logger()
        log.sinks.append(sink)
        try:
            yield sink
        finally:
            log.sinks.remove(sink)


def unique_messages(messages: list[str]) -> list[str]:
    """Messages in order, each once (TensorRT often repeats a line)."""
    return list(dict.fromkeys(messages))
