"""Creating a dataset: read a source, fit, split, write, then publish all at once.

Everything is built in <home>/datasets/.tmp-<id>. Only a complete build is renamed to
<home>/datasets/<id>, inside the same SQLite transaction that adds its row, so a dataset is
either fully there (files and row) or not at all.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.datasets import names
from engine.datasets.budget import check_budget, check_class_count
from engine.datasets.catalog import Dataset, open_dataset
from engine.datasets.errors import DatasetError
from engine.datasets.options import DatasetOptions
from engine.datasets.progress import Progress, scaled, silent
from engine.datasets.sources import check_args, read_source
from engine.datasets.sources.base import Materialized, SourceData
from engine.datasets.splits import (
    STREAM_CAP,
    STREAM_SPLIT,
    cap_per_class,
    check_classes,
    count_per_class,
    require_two_classes,
    rng_for,
    stratified_split,
)
from engine.datasets.stats import looks_white_on_black, training_stats
from engine.images.contract import Contract
from engine.processes import pid_alive
from engine.state import dataset_files as layout
from engine.state import store
from engine.state.workspace import (
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    sha256_file,
    studio_home,
)

NAME_PATTERN = re.compile(r"[^\W_][\w .\-]{0,63}")  # letters of any script, digits
ID_PATTERN = re.compile(r"ds-[0-9a-f]{8}")
SKIPPED_EXAMPLES = 10
STALE_AFTER_S = 24 * 3600
OWNER_FILE = ".builder-pid"  # in a build folder: the pid of the process building it


def create_dataset(
    name: str,
    source: str,
    source_args: dict[str, Any] | None = None,
    options: DatasetOptions | dict[str, Any] | None = None,
    *,
    owner: str | None = None,
    home: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Build a dataset from `source` and register it; DatasetError says why when it cannot."""
    opts = DatasetOptions.coerce(options)
    name = check_name(name)
    args = check_args(source, source_args)
    report = progress or silent
    root = studio_home(home)
    conn = store.connect(root)
    try:
        _refuse_taken_name(conn, name)
        with new_build(root) as (dataset_id, tmp):
            manifest = build_files(tmp, dataset_id, name, source, args, opts, root, report)
            _publish(conn, tmp, layout.dataset_dir(root, dataset_id), manifest, owner)
    finally:
        conn.close()
    report(1.0, f"dataset {name!r} ready")
    return open_dataset(dataset_id, home=root)


def check_name(name: str) -> str:
    """A name people can type and scripts can pass: 1-64 letters, digits, space, - _ ."""
    if isinstance(name, str):
        name = names.normalize(name)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name.strip()):
        raise DatasetError(f"dataset name {name!r} must be 1 to 64 letters, digits, spaces, "
                           "'-', '_' or '.', starting with a letter or digit")
    if ID_PATTERN.fullmatch(name.strip()):
        raise DatasetError(f"dataset name {name!r} looks like a dataset id; choose another")
    return name.strip()


def _refuse_taken_name(conn: sqlite3.Connection, name: str) -> None:
    row = store.get_dataset(conn, name)
    if row is not None and row["name"] == name:
        raise DatasetError(f"a dataset named {name!r} already exists")
    taken = store.dataset_names(conn)
    found = names.clash(name, taken)
    if found:
        other, how = found
        raise DatasetError(f"dataset name {name!r} {how} the existing dataset {other!r}; "
                           "choose a clearly different name")


@contextmanager
def new_build(root: Path) -> Iterator[tuple[str, Path]]:
    """A new dataset id and its temporary build folder, marked with this process's pid so a
    build killed outright is reaped by the next one; removed if the block fails. The block
    fills the folder and publishes it (_publish)."""
    _remove_stale_builds(layout.datasets_dir(root))
    dataset_id = "ds-" + secrets.token_hex(4)
    tmp = layout.datasets_dir(root) / f".tmp-{dataset_id}"
    tmp.mkdir(parents=True)
    (tmp / OWNER_FILE).write_text(str(os.getpid()))
    try:
        yield dataset_id, tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_size(tmp: Path) -> int:
    """Bytes of a build folder's files, its builder's mark left out."""
    return sum(p.stat().st_size for p in tmp.iterdir() if p.is_file() and p.name != OWNER_FILE)


def _remove_stale_builds(folder: Path) -> None:
    """Builds killed outright (power cut, kill -9) leave .tmp- folders: drop those whose
    building process is gone at once, and any older than a day."""
    if not folder.exists():
        return
    cutoff = time.time() - STALE_AFTER_S
    for leftover in folder.iterdir():
        if not leftover.name.startswith((".tmp-", ".trash-")):
            continue
        try:
            if leftover.stat().st_mtime < cutoff or _builder_gone(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:  # another process cleaned it first
            pass


def _builder_gone(tmp: Path) -> bool:
    """True when the process that started this build folder no longer runs."""

    try:
        pid = int((tmp / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return False  # no owner recorded (yet): only the age rule applies
    return not pid_alive(pid)


def _publish(conn: sqlite3.Connection, tmp: Path, final: Path, manifest: dict,
             owner: str | None) -> None:
    (tmp / OWNER_FILE).unlink(missing_ok=True)  # finished: no longer a build to reap
    try:
        with store.transaction(conn):
            _refuse_taken_name(conn, manifest["name"])  # again, inside the write lock
            store.add_dataset(conn, manifest["id"], manifest["name"], owner, manifest["source"],
                              manifest)
            os.rename(tmp, final)
    except DatasetError:
        raise
    except ValueError as e:  # the name was taken while we were building
        raise DatasetError(str(e)) from None
    except BaseException:
        if final.exists() and not tmp.exists():
            shutil.rmtree(final, ignore_errors=True)  # renamed, but the row did not commit
        raise


# --- building the files ----------------------------------------------------------------------


@dataclass
class Assembled:
    """Every image of the dataset in storage order, and the split indexes into it."""

    images: np.ndarray
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    originals: int  # images before the inverted copies


def build_files(tmp: Path, dataset_id: str, name: str, source: str, args: dict[str, Any],
                opts: DatasetOptions, home: Path, report: Progress) -> dict[str, Any]:
    """Write the dataset's files into `tmp` and return its manifest."""
    report(0.0, f"reading source {source}")
    work = tmp / "work"
    data = read_source(source, args, home, work)
    require_two_classes(data.classes)  # before decoding anything
    check_class_count(data.classes)
    parts = _materialize(data, opts, scaled(report, 0.05, 0.8))
    shutil.rmtree(work, ignore_errors=True)
    report(0.8, "splitting")
    assembled = assemble(parts, data.classes, opts)
    report(0.85, "writing files")
    stats = _write_arrays(tmp, assembled)
    report(0.95, "hashing")
    skipped = data.skipped + [s for part in parts.values() for s in part.skipped]
    manifest = {
        "format_version": layout.FORMAT_VERSION,
        "id": dataset_id,
        "name": name,
        "source": source,
        "source_args": args,
        "options": opts.to_dict(),
        "classes": list(data.classes),
        "counts": _counts(assembled, data.classes),
        "total": int(len(assembled.labels)),
        "height": opts.height,
        "width": opts.width,
        "channels": opts.channels,
        "size_bytes": build_size(tmp),
        "sha256": sha256_file(tmp / layout.IMAGES),
        "created": time.time(),
        "report": {"skipped": len(skipped), "skipped_examples": skipped[:SKIPPED_EXAMPLES]},
        "preprocess": Contract(
            channels=opts.channels, height=opts.height, width=opts.width,
            resize_mode=opts.resize_mode, polarity=_polarity(data, assembled),
            framing=data.framing, mean=tuple(stats["mean"]), std=tuple(stats["std"]),
        ).to_dict(),
    }
    manifest["hash"] = manifest["sha256"]
    atomic_write_json(tmp / layout.MANIFEST, manifest)
    return manifest


def _materialize(data: SourceData, opts: DatasetOptions,
                 report: Progress) -> dict[str, Materialized]:
    """Cap each source split per class (before decoding anything), then fit its images."""
    present = {k: p for k, p in (("train", data.train), ("val", data.val), ("test", data.test))
               if p is not None}
    capped = {k: p.take(cap_per_class(p.labels, opts.max_per_class,
                                      rng_for(opts.seed, STREAM_CAP[k])))
              for k, p in present.items()}
    check_budget(sum(len(p) for p in capped.values()), opts)  # before allocating anything
    total = max(sum(len(p) for p in capped.values()), 1)
    done = 0
    out: dict[str, Materialized] = {}
    for key, part in capped.items():
        start, done = done, done + len(part)
        out[key] = part.materialize(opts, scaled(report, start / total, done / total))
    return out


def assemble(parts: dict[str, Materialized], classes: list[str],
             opts: DatasetOptions) -> Assembled:
    """Pool, check, split, and append inverted copies: the dataset in storage order.

    Storage order is: the pool (source train split, plus its test split when
    use_source_test is off), then the source's val split, then its test split, then the
    inverted copies of train and val.
    """
    source_test = parts.get("test") if opts.use_source_test else None
    pool_test = "test" in parts and source_test is None
    pooled = [parts["train"]] + ([parts["test"]] if pool_test else [])
    pool_labels = np.concatenate([p.labels for p in pooled])
    check_classes(classes, pool_labels, opts.min_per_class)
    val_pct = 0.0 if "val" in parts else opts.val_percent
    test_pct = 0.0 if source_test is not None else opts.test_percent
    train, val, test = stratified_split(pool_labels, len(classes), val_pct, test_pct,
                                        rng_for(opts.seed, STREAM_SPLIT))
    segments = pooled + [p for p in (parts.get("val"), source_test) if p is not None]
    images = np.concatenate([p.images for p in segments])
    labels = np.concatenate([p.labels for p in segments]).astype(np.int64)
    offset = len(pool_labels)
    if "val" in parts:
        val = np.arange(offset, offset + len(parts["val"].labels))
        offset += len(val)
    if source_test is not None:
        test = np.arange(offset, offset + len(source_test.labels))
    splits = {"train": train, "val": val, "test": test}
    originals = len(labels)
    if opts.add_inverted:
        images, labels, splits = _add_inverted(images, labels, splits)
    return Assembled(images, labels, {k: v.astype(np.int64) for k, v in splits.items()},
                     originals)


def _add_inverted(images: np.ndarray, labels: np.ndarray, splits: dict[str, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The lab's augmentation: 255 - x copies of train and val images, with their labels."""
    n = len(labels)
    sources = np.concatenate([splits["train"], splits["val"]])
    images = np.concatenate([images, 255 - images[sources]])
    labels = np.concatenate([labels, labels[sources]])
    n_train = len(splits["train"])
    copies = np.arange(n, n + len(sources))
    splits = {"train": np.concatenate([splits["train"], copies[:n_train]]),
              "val": np.concatenate([splits["val"], copies[n_train:]]),
              "test": splits["test"]}
    return images, labels, splits


def _write_arrays(tmp: Path, a: Assembled) -> dict[str, Any]:
    atomic_save_npy(tmp / layout.IMAGES, np.ascontiguousarray(a.images, dtype=np.uint8))
    atomic_save_npy(tmp / layout.LABELS, a.labels)
    for split, index in a.splits.items():
        atomic_save_npy(tmp / layout.split_file(split), index)
    mean_image, mean, std = training_stats(a.images, a.splits["train"])
    atomic_save_npy(tmp / layout.MEAN, mean_image)
    atomic_write_bytes(tmp / layout.MEAN_PNG, _png(mean_image))
    return {"mean": mean, "std": std}


def _png(mean_image: np.ndarray) -> bytes:
    pixels = np.clip(np.rint(mean_image), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buf, "PNG")
    return buf.getvalue()


def _counts(a: Assembled, classes: list[str]) -> dict[str, dict[str, int]]:
    counts = {}
    for split, index in a.splits.items():
        per_class = count_per_class(a.labels[index], len(classes))
        counts[split] = {name: int(n) for name, n in zip(classes, per_class, strict=True)}
    return counts


def _polarity(data: SourceData, a: Assembled) -> str:
    if data.polarity != "detect":
        return data.polarity
    train = a.splits["train"]
    originals = train[train < a.originals]
    return "white-on-black" if looks_white_on_black(a.images, originals) else "as-is"
