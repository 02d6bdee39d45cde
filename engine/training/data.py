"""Batches for the trainer.

A split that fits in memory is copied once to the training device as uint8 and batches are
gathered by index: no per-sample Python in the hot loop. A split too big for that is read from
the memory-mapped file by a DataLoader with workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

# Splits up to this many bytes are held whole on the device.
IN_MEMORY_LIMIT = int(os.environ.get("STUDIO_IN_MEMORY_BYTES", 4 * 1024**3))


def nhwc_to_nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


class Split:
    """One split (train, val or test) of a dataset, ready to hand out batches."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, index: np.ndarray,
                 device: torch.device) -> None:
        self.index = np.asarray(index, dtype=np.int64)
        self.device = device
        self.images_mm, self.labels_np = images, labels
        nbytes = len(self.index) * int(np.prod(images.shape[1:]))
        self.in_memory = nbytes <= IN_MEMORY_LIMIT
        self.y = torch.from_numpy(np.asarray(labels)[self.index].astype(np.int64)).to(device)
        if self.in_memory:
            # Sorted reads from the memmap are fastest; keep split order by index position.
            self.x = nhwc_to_nchw(np.asarray(images[np.sort(self.index)])[
                np.argsort(np.argsort(self.index))]).to(device)

    def __len__(self) -> int:
        return len(self.index)

    def batches(self, order: torch.Tensor, batch_size: int, start: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 NCHW images, labels) on the device, for positions `order[start*bs:]`."""
        if self.in_memory:
            order = order.to(self.device)
            for i in range(start * batch_size, len(order), batch_size):
                sel = order[i:i + batch_size]
                yield self.x[sel], self.y[sel]
            return
        chunks = [order[i:i + batch_size] for i in range(start * batch_size, len(order),
                                                           batch_size)]
        loader = torch.utils.data.DataLoader(
            _MemmapBatches(self.images_mm, self.index, chunks), batch_size=None,
            num_workers=min(4, os.cpu_count() or 1), pin_memory=self.device.type == "cuda")
        for sel, x in zip(chunks, loader, strict=True):
            yield x.to(self.device, non_blocking=True), self.y[sel.to(self.device)]


class _MemmapBatches(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, index: np.ndarray, chunks: list[torch.Tensor]):
        self.images, self.index, self.chunks = images, index, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> torch.Tensor:
        rows = self.index[self.chunks[i].numpy()]
        order = np.argsort(rows)
        batch = np.empty((len(rows),) + self.images.shape[1:], dtype=np.uint8)
        batch[order] = self.images[rows[order]]
        return nhwc_to_nchw(batch)
