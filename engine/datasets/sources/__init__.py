"""The sources a dataset can be created from, and their arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.datasets.errors import DatasetError
from engine.datasets.sources.base import SourceData
from engine.datasets.sources.digits import read_digits_source
from engine.datasets.sources.downloads import DOWNLOADS, read_download_source
from engine.datasets.sources.folder import read_folder_source
from engine.datasets.sources.idx import read_idx_source


@dataclass(frozen=True)
class Source:
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    read: Callable[[dict[str, Any], Path, Path], SourceData]  # (args, home, workdir)


def _download(name: str) -> Source:
    title = DOWNLOADS[name].title
    return Source(f"{title} from torchvision (downloads once; needs the network)", (), (),
                  lambda args, home, workdir: read_download_source(name, home))


REGISTRY: dict[str, Source] = {
    **{name: _download(name) for name in DOWNLOADS},
    "digits-sample": Source(
        "scikit-learn's 1,797 handwritten digits framed like MNIST (offline)", (), (),
        lambda args, home, workdir: read_digits_source(args)),
    "idx": Source(
        "IDX files as MNIST ships them, gzip or raw (train pair, optional test pair)",
        ("train_images", "train_labels"), ("test_images", "test_labels"),
        lambda args, home, workdir: read_idx_source(args)),
    "folder": Source(
        "a folder or .zip with one subfolder per class (optional val_path, test_path)",
        ("path",), ("val_path", "test_path"),
        lambda args, home, workdir: read_folder_source(args, workdir)),
}

SOURCES: dict[str, str] = {name: source.description for name, source in REGISTRY.items()}


def check_args(name: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """The source's arguments, with paths as strings, or DatasetError saying what is wrong."""
    if name not in REGISTRY:
        raise DatasetError(f"unknown source {name!r}; choose one of {', '.join(REGISTRY)}")
    source = REGISTRY[name]
    args = {k: v for k, v in (args or {}).items() if v is not None}
    unknown = sorted(set(args) - set(source.required) - set(source.optional))
    if unknown:
        accepted = ", ".join(source.required + source.optional) or "no arguments"
        raise DatasetError(f"source {name!r} does not take {', '.join(unknown)} "
                           f"(it takes {accepted})")
    missing = [k for k in source.required if k not in args]
    if missing:
        raise DatasetError(f"source {name!r} needs {', '.join(missing)}")
    return {k: str(Path(v).expanduser().resolve()) if isinstance(v, (str, Path)) else v
            for k, v in args.items()}


def read_source(name: str, args: dict[str, Any], home: Path, workdir: Path) -> SourceData:
    """Read a source whose arguments check_args() has accepted."""
    return REGISTRY[name].read(args, home, workdir)
