"""DIGITS' folder format: one subfolder per class, as a folder or a .zip of one.

Any file Pillow can read is an image; anything else is skipped and reported, never fatal.
Polarity is detected from the images (a folder of MNIST PNGs is white-on-black).
Zips are unpacked into the build's work folder, which the build removes when it ends.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.datasets.errors import DatasetError
from engine.datasets.sources.archive import extract_zip, is_zip
from engine.datasets.sources.base import FilePart, SourceData

IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


def read_folder_source(args: dict, workdir: Path) -> SourceData:
    """Classes from the training folder; val_path and test_path reuse its class names."""
    root, skipped = open_tree(args["path"], workdir / "train")
    classes = class_folders(root)
    if not classes:
        raise DatasetError(f"{Path(args['path']).name} has no class subfolders "
                           "(expected one subfolder per class)")
    train, more = scan(root, classes, prefix="")
    skipped += more
    parts: dict[str, FilePart] = {}
    for split in ("val", "test"):
        if args.get(f"{split}_path") is not None:
            split_root, more = open_tree(args[f"{split}_path"], workdir / split)
            skipped += [{**s, "file": f"{split}: {s['file']}"} for s in more]
            unknown = sorted(set(class_folders(split_root)) - set(classes))
            if unknown:
                raise DatasetError(f"the {split} folder has class(es) the training folder "
                                   f"lacks: {', '.join(repr(c) for c in unknown)}")
            parts[split], more = scan(split_root, classes, prefix=f"{split}: ")
            skipped += more
    return SourceData(classes=classes, train=train, val=parts.get("val"),
                      test=parts.get("test"), polarity="detect", skipped=skipped)


def open_tree(path_arg: str | Path, unzip_to: Path) -> tuple[Path, list[dict[str, str]]]:
    """The folder holding the class folders, unpacking a zip and looking through a wrapper;
    with the zip entries skipped (not images)."""
    path = Path(path_arg).expanduser()
    skipped: list[dict[str, str]] = []
    if path.is_dir():
        root = path
    elif is_zip(path):
        root, skipped = extract_zip(path, unzip_to)
    elif not path.exists():
        raise DatasetError(f"no such folder or zip file: {path}")
    elif path.suffix.lower() == ".zip":  # named .zip, but no zip directory in it
        raise DatasetError(f"{path.name} is not a valid zip file ({path.stat().st_size:,} "
                           "bytes): it is damaged or was cut short; zip the folder again")
    else:
        raise DatasetError(f"{path.name} is neither a folder nor a .zip file")
    return unwrap(root), skipped


def unwrap(root: Path) -> Path:
    """Descend through single top folders (zipping a folder makes one) to the class folders."""
    while True:
        entries = _visible(root)
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        inner = entries[0]
        if not any(e.is_dir() for e in _visible(inner)):
            return root  # the one folder is itself a class: leave it to the class count check
        root = inner


def class_folders(root: Path) -> list[str]:
    """Subfolders of root; a symbolic link is never a class (it may point out of the tree)."""
    return sorted(e.name for e in _visible(root) if e.is_dir() and not e.is_symlink())


def scan(root: Path, classes: list[str], prefix: str) -> tuple[FilePart, list[dict[str, str]]]:
    """Every file under each class folder (recursively), and loose files reported as skipped."""
    files: list[Path] = []
    labels: list[int] = []
    links: list[Path] = []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir() or folder.is_symlink():
            continue
        found, linked = _walk(folder, root)
        files += found
        links += linked
        labels += [index] * len(found)
    names = [prefix + p.relative_to(root).as_posix() for p in files]
    loose = [{"file": prefix + e.name, "reason": "not inside a class folder"}
             for e in _visible(root) if e.is_file() and not e.is_symlink()]
    loose += [{"file": prefix + p.relative_to(root).as_posix(),
               "reason": "a symbolic link (not followed: it may point outside the folder)"}
              for p in links + [e for e in _visible(root) if e.is_symlink()]]
    return FilePart(files, np.asarray(labels, dtype=np.int64), names), loose


def _walk(folder: Path, root: Path) -> tuple[list[Path], list[Path]]:
    """Regular files under folder, never following symbolic links (those are returned apart)."""
    files: list[Path] = []
    links: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for d in dirnames:
            if (here / d).is_symlink() and not _hidden(here / d, root):
                links.append(here / d)
        for f in filenames:
            p = here / f
            if _hidden(p, root):
                continue
            if p.is_symlink():
                links.append(p)
            elif p.is_file():
                files.append(p)
    return sorted(files), sorted(links)


def _visible(folder: Path) -> list[Path]:
    return sorted(e for e in folder.iterdir() if not _is_ignored(e.name))


def _hidden(path: Path, root: Path) -> bool:
    return any(_is_ignored(part) for part in path.relative_to(root).parts)


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES
