"""Dynamic batching: concurrent requests gathered into one model call.

Each request submits a float32 N x C x H x W array (its rows). A single loop task takes the
oldest waiting request, then keeps adding waiting requests while the batch has room
(`max_batch` rows) and the first request has waited less than `max_delay_s`; the batch runs
on one worker thread (so the event loop keeps accepting requests meanwhile) and each request
gets its own rows of the output back. A request with more rows than `max_batch` runs alone.
`max_batch=1` turns batching off: requests run one at a time, in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class QueueFull(RuntimeError):
    """More rows are waiting than the queue allows; the client should retry later."""


@dataclass
class BatchStats:
    """What the batcher has done: model calls, rows, and how many calls had each size."""

    batches: int = 0
    rows: int = 0
    requests: int = 0
    sizes: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "rows": self.rows, "requests": self.requests,
                "mean_batch": self.rows / self.batches if self.batches else 0.0,
                "sizes": {str(k): v for k, v in sorted(self.sizes.items())}}


@dataclass
class _Pending:
    rows: np.ndarray
    future: asyncio.Future
    arrived: float


class DynamicBatcher:
    """Gathers submit() calls into batches for `run` (rows in, one output row per row out)."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 32,
                 max_delay_s: float = 0.005, max_queue: int = 1024) -> None:
        if max_batch < 1:
            raise ValueError(f"max batch must be at least 1, not {max_batch}")
        if max_delay_s < 0:
            raise ValueError(f"max queue delay must not be negative, not {max_delay_s}")
        self.run = run
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s if max_batch > 1 else 0.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._waiting_rows = 0
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")

    @property
    def batching(self) -> bool:
        return self.max_batch > 1

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="dynamic-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """The model's output rows for these input rows, computed in some batch."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self._waiting_rows + len(rows) > self.max_queue:
            raise QueueFull(f"server busy: {self._waiting_rows} images are already waiting "
                            f"(queue limit {self.max_queue}); retry later")
        future = asyncio.get_running_loop().create_future()
        self._waiting_rows += len(rows)
        self.stats.requests += 1
        await self._queue.put(_Pending(rows, future, time.perf_counter()))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None
        carry: _Pending | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            batch = [first]
            size = len(first.rows)
            deadline = first.arrived + self.max_delay_s
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), left)
                    except TimeoutError:
                        break
                if size + len(item.rows) > self.max_batch:
                    carry = item  # it opens the next batch
                    break
                batch.append(item)
                size += len(item.rows)
            await self._run(batch, size)

    async def _run(self, batch: list[_Pending], size: int) -> None:
        self._waiting_rows -= size
        self.stats.batches += 1
        self.stats.rows += size
        self.stats.sizes[size] += 1
        loop = asyncio.get_running_loop()
        try:
            rows = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
            out = await loop.run_in_executor(self._executor, self.run, rows)
        except Exception as e:  # the model failed: every request of the batch hears why
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        start = 0
        for p in batch:
            n = len(p.rows)
            if not p.future.done():  # a client that went away leaves a cancelled future
                p.future.set_result(out[start:start + n])
            start += n
