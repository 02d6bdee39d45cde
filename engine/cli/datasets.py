"""`python -m engine datasets create | list | show | delete`."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tqdm import tqdm

from engine.datasets.options import DatasetOptions, default_options
from engine.hosting.access import set_dataset_flags
from engine.hosting.ownership import acting_user
from engine.images.loading import RESIZE_MODES


def register(sub: argparse._SubParsersAction) -> None:
    from engine.datasets import SOURCES

    p = sub.add_parser("datasets", help="create, list, show and delete datasets")
    dsub = p.add_subparsers(dest="action", required=True)
    c = dsub.add_parser("create", help="create a dataset from a source",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="sources:\n" + "\n".join(f"  {k:14} {v}"
                                                        for k, v in SOURCES.items()))
    c.add_argument("name")
    c.add_argument("--source", required=True, choices=list(SOURCES))
    c.add_argument("--path", help="folder or .zip of class folders (folder source)")
    c.add_argument("--val-path", help="separate validation folder or .zip (folder source)")
    c.add_argument("--test-path", help="separate test folder or .zip (folder source)")
    c.add_argument("--train-images", help="IDX images file (idx source)")
    c.add_argument("--train-labels", help="IDX labels file (idx source)")
    c.add_argument("--test-images", help="IDX test images file (idx source, optional)")
    c.add_argument("--test-labels", help="IDX test labels file (idx source, optional)")
    # Unset options take the source's defaults (engine.datasets.default_options: CIFAR-10 is
    # 32x32 colour), as the dashboard's forms do; the help reads them from there.
    base, cifar = DatasetOptions(), default_options("cifar10")
    c.add_argument("--height", type=int, help=f"default: {base.height}, CIFAR-10 {cifar.height}")
    c.add_argument("--width", type=int, help=f"default: {base.width}, CIFAR-10 {cifar.width}")
    colour = c.add_mutually_exclusive_group()
    colour.add_argument("--color", dest="channels", action="store_const", const=3,
                        help="3 colour channels (default: grayscale, CIFAR-10 colour)")
    colour.add_argument("--grayscale", dest="channels", action="store_const", const=1,
                        help="1 channel")
    c.add_argument("--resize-mode", choices=list(RESIZE_MODES),
                   help=f"default: {base.resize_mode}")
    c.add_argument("--val-percent", type=float, help=f"default: {base.val_percent:g}")
    c.add_argument("--test-percent", type=float, help="carved when the source has no test "
                   f"split (default: {base.test_percent:g})")
    c.add_argument("--no-source-test", action="store_true",
                   help="ignore the source's own test split; cut --test-percent instead")
    c.add_argument("--min-per-class", type=int, help=f"default: {base.min_per_class}")
    c.add_argument("--max-per-class", type=int, default=None)
    c.add_argument("--add-inverted", action="store_true",
                   help="add inverted copies of the images (the lab's MNIST-invert)")
    c.add_argument("--seed", type=int, help=f"default: {base.seed}")
    c.add_argument("--owner", help="who owns it (default: $STUDIO_USER)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_datasets_create)

    ls = dsub.add_parser("list", help="list datasets")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_datasets_list)
    sh = dsub.add_parser("show", help="show a dataset's manifest and counts")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_datasets_show)
    rm = dsub.add_parser("delete", help="delete a dataset (rows and files)")
    rm.add_argument("name")
    rm.add_argument("--force", action="store_true",
                    help="delete it even though jobs use it (they can then no longer run, "
                         "resume or be evaluated)")
    rm.add_argument("--user", help="who asks (default: $STUDIO_USER; only the owner may)")
    rm.set_defaults(func=cmd_datasets_delete)
    for name, flag, helptext in [
            ("share", "shared", "share a dataset with the class (its owner or an instructor)"),
            ("unshare", "shared", "stop sharing a dataset"),
            ("lock", "locked", "lock a dataset read-only (instructors): nobody deletes it"),
            ("unlock", "locked", "unlock a dataset (instructors)")]:
        f = dsub.add_parser(name, help=helptext)
        f.add_argument("name")
        f.add_argument("--user", help="who asks (default: $STUDIO_USER)")
        f.set_defaults(func=cmd_datasets_flag, flag=flag, value=not name.startswith("un"))


def options_from_args(a: argparse.Namespace) -> DatasetOptions:
    """The source's default options with those given on the command line; a DatasetError
    names a bad one."""
    chosen = {"height": a.height, "width": a.width, "channels": a.channels,
              "resize_mode": a.resize_mode, "val_percent": a.val_percent,
              "test_percent": a.test_percent, "min_per_class": a.min_per_class,
              "max_per_class": a.max_per_class, "seed": a.seed}
    return dataclasses.replace(default_options(a.source), use_source_test=not a.no_source_test,
                               add_inverted=a.add_inverted,
                               **{k: v for k, v in chosen.items() if v is not None})


def cmd_datasets_create(a: argparse.Namespace) -> dict:
    from engine.datasets import create_dataset

    source_args = {k: getattr(a, k) for k in ("path", "val_path", "test_path", "train_images",
                                              "train_labels", "test_images", "test_labels")
                   if getattr(a, k)}
    options = options_from_args(a)
    bar = None if a.json else tqdm(total=100, desc=f"creating {a.name}", unit="%",
                                   file=sys.stderr, leave=False)

    def progress(fraction: float, message: str) -> None:
        if bar is not None:
            bar.set_postfix_str(message)
            bar.n = round(fraction * 100)
            bar.refresh()

    try:
        ds = create_dataset(a.name, a.source, source_args, options,
                            owner=acting_user(a.owner), progress=progress)
    finally:
        if bar is not None:
            bar.close()
    return _dataset_summary(ds.manifest)


def _dataset_summary(m: dict) -> dict:
    counts = m.get("counts", {})
    return {"id": m["id"], "name": m["name"], "source": m["source"],
            "classes": m["classes"], "shape": [m["channels"], m["height"], m["width"]],
            "images": {split: sum(c.values()) for split, c in counts.items()},
            "skipped": m.get("report", {}).get("skipped", 0)}


def cmd_datasets_list(a: argparse.Namespace) -> list:
    from engine.datasets import list_datasets

    return [{"id": d["id"], "name": d["name"], "owner": d.get("owner"), "source": d["source"],
             "created": d["created"], "shared": d["shared"], "locked": d["locked"]}
            for d in list_datasets(viewer=acting_user())]


def cmd_datasets_show(a: argparse.Namespace) -> dict:
    from engine.datasets import open_dataset

    m = open_dataset(a.name).manifest
    return {**_dataset_summary(m), "counts": m.get("counts"), "options": m.get("options"),
            "preprocess": m.get("preprocess"), "report": m.get("report")}


def cmd_datasets_delete(a: argparse.Namespace) -> dict:
    from engine.datasets import delete_dataset

    delete_dataset(a.name, force=a.force, user=acting_user(a.user))
    return {"deleted": a.name}


def cmd_datasets_flag(a: argparse.Namespace) -> dict:
    row = set_dataset_flags(a.name, user=acting_user(a.user), **{a.flag: a.value})
    return {"name": row["name"], "shared": bool(row["shared"]), "locked": bool(row["locked"])}
