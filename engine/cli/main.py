"""`python -m engine`: datasets, networks, train, predict, evaluate and classify many.

Every command prints a readable result; --json prints a machine-readable one on stdout.
Errors that a user can fix print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.jobs.ownership import acting_user, check_may_write
from engine.training.sink import MetricsSink
from engine.workspace import studio_home


class CliError(Exception):
    """A problem the user can fix: printed as one line, no traceback."""


# --- datasets ----------------------------------------------------------------------------------


def _add_dataset_commands(sub: argparse._SubParsersAction) -> None:
    from engine.datasets import SOURCES
    from engine.images.loading import RESIZE_MODES

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
    c.add_argument("--height", type=int, default=28)
    c.add_argument("--width", type=int, default=28)
    c.add_argument("--color", action="store_true", help="3 colour channels (default: grayscale)")
    c.add_argument("--resize-mode", default="squash", choices=list(RESIZE_MODES))
    c.add_argument("--val-percent", type=float, default=10.0)
    c.add_argument("--test-percent", type=float, default=0.0)
    c.add_argument("--no-source-test", action="store_true",
                   help="ignore the source's own test split; cut --test-percent instead")
    c.add_argument("--min-per-class", type=int, default=2)
    c.add_argument("--max-per-class", type=int, default=None)
    c.add_argument("--add-inverted", action="store_true",
                   help="add inverted copies of the images (the lab's MNIST-invert)")
    c.add_argument("--seed", type=int, default=0)
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


def cmd_datasets_create(a: argparse.Namespace) -> dict:
    from engine.datasets import DatasetOptions, create_dataset

    source_args = {k: getattr(a, k) for k in ("path", "val_path", "test_path", "train_images",
                                              "train_labels", "test_images", "test_labels")
                   if getattr(a, k)}
    options = DatasetOptions(
        height=a.height, width=a.width, channels=3 if a.color else 1,
        resize_mode=a.resize_mode, val_percent=a.val_percent, test_percent=a.test_percent,
        use_source_test=not a.no_source_test, min_per_class=a.min_per_class,
        max_per_class=a.max_per_class, add_inverted=a.add_inverted, seed=a.seed)
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
             "created": d["created"]} for d in list_datasets()]


def cmd_datasets_show(a: argparse.Namespace) -> dict:
    from engine.datasets import open_dataset

    m = open_dataset(a.name).manifest
    return {**_dataset_summary(m), "counts": m.get("counts"), "options": m.get("options"),
            "preprocess": m.get("preprocess"), "report": m.get("report")}


def cmd_datasets_delete(a: argparse.Namespace) -> dict:
    from engine.datasets import delete_dataset

    delete_dataset(a.name, force=a.force, user=acting_user(a.user))
    return {"deleted": a.name}


# --- networks ----------------------------------------------------------------------------------


def _add_network_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("networks", help="list the zoo, show a network's layer table")
    nsub = p.add_subparsers(dest="action", required=True)
    ls = nsub.add_parser("list", help="list the networks of the zoo")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_networks_list)
    sh = nsub.add_parser("show", help="validate a network and print its layer table")
    sh.add_argument("network", help="zoo name, or a JSON/YAML spec file")
    sh.add_argument("--input", default="1,28,28", help="channels,height,width (default 1,28,28)")
    sh.add_argument("--classes", type=int, default=10)
    sh.add_argument("--spec", action="store_true", help="print the spec itself (to edit)")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_networks_show)


def load_network_arg(value: str) -> str | dict:
    """A zoo name stays a name; a path to a .json/.yaml file becomes its parsed spec."""
    from engine.networks import parse_spec, zoo_names

    if value in zoo_names():
        return value
    path = Path(value)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        if not path.exists():
            raise CliError(f"no network spec file at {path}")
        return parse_spec(path.read_text())
    raise CliError(f"unknown network {value!r}: use one of {', '.join(zoo_names())} "
                   "or a .json/.yaml spec file")


def cmd_networks_list(a: argparse.Namespace) -> list:
    from engine.networks import zoo_info

    return zoo_info()


def cmd_networks_show(a: argparse.Namespace) -> Any:
    from engine.networks import format_layer_table, validate_spec
    from engine.training import network_spec

    try:
        shape = tuple(int(v) for v in a.input.split(","))
        assert len(shape) == 3
    except (ValueError, AssertionError):
        raise CliError(f"--input must be channels,height,width, not {a.input!r}") from None
    spec = network_spec(load_network_arg(a.network))
    if a.spec:
        return spec
    rows = validate_spec(spec, shape, a.classes)
    if a.json:
        return [{"index": r.index, "type": r.type, "description": r.description,
                 "output_shape": list(r.output_shape), "params": r.params} for r in rows]
    return format_layer_table(rows)


# --- train -------------------------------------------------------------------------------------


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    from engine.training import LR_POLICIES, PRECISIONS, SOLVERS

    t = sub.add_parser("train", help="train a network in the foreground")
    t.add_argument("--dataset", help="dataset name or id")
    t.add_argument("--network", default="lenet", help="zoo name or a JSON/YAML spec file")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--solver", default="sgd", choices=SOLVERS)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--lr-policy", default="fixed", choices=LR_POLICIES)
    t.add_argument("--step-size", type=float, default=10.0, help="epochs (step, sigmoid)")
    t.add_argument("--gamma", type=float, default=0.1)
    t.add_argument("--milestones", default="", help="comma-separated epochs (multistep)")
    t.add_argument("--power", type=float, default=1.0, help="inv, poly")
    t.add_argument("--warmup-epochs", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-interval", type=int, default=1)
    t.add_argument("--checkpoint-interval", type=int, default=1)
    t.add_argument("--early-stopping", type=int, default=0, help="patience (0 = off)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--precision", default="fp32", choices=PRECISIONS)
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    for name, kind, helptext in [
        ("rotation", float, "degrees"), ("shift", float, "fraction"),
        ("shear", float, "degrees"), ("zoom", float, "fraction"),
        ("invert", float, "probability"), ("noise", float, "std on 0..1 pixels")]:
        t.add_argument(f"--aug-{name}", type=kind, default=0.0, help=f"augmentation: {helptext}")
    t.add_argument("--aug-hflip", action="store_true")
    t.add_argument("--aug-vflip", action="store_true")
    t.add_argument("--name", default="")
    t.add_argument("--out", help="run directory (default: workspace/jobs/<new id>)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped run from its last checkpoint")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)


def config_from_args(a: argparse.Namespace) -> Any:
    from engine.training import AugmentConfig, TrainConfig

    if not a.dataset:
        raise CliError("--dataset is required (see `python -m engine datasets list`)")
    milestones = [float(v) for v in a.milestones.split(",") if v.strip()]
    aug = AugmentConfig(rotation=a.aug_rotation, shift=a.aug_shift, shear=a.aug_shear,
                        zoom=a.aug_zoom, hflip=a.aug_hflip, vflip=a.aug_vflip,
                        invert=a.aug_invert, noise=a.aug_noise)
    return TrainConfig(
        dataset=a.dataset, network=load_network_arg(a.network), epochs=a.epochs,
        batch_size=a.batch_size, solver=a.solver, lr=a.lr, momentum=a.momentum,
        weight_decay=a.weight_decay, lr_policy=a.lr_policy, step_size=a.step_size,
        gamma=a.gamma, milestones=milestones, power=a.power, warmup_epochs=a.warmup_epochs,
        seed=a.seed, val_interval=a.val_interval, checkpoint_interval=a.checkpoint_interval,
        early_stopping=a.early_stopping, device=a.device, precision=a.precision,
        compile=a.compile, augment=aug, name=a.name).validate()


class ConsoleSink(MetricsSink):
    """A progress bar per epoch on stderr, and one line per epoch."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.epochs = 0

    def on_start(self, info: dict) -> None:
        self.epochs = info["epochs"]
        print(f"training on {info['device']}: {info['train_images']} images, "
              f"{info['parameters']:,} parameters", file=sys.stderr)

    def on_progress(self, p: dict) -> None:
        if self.bar is None:
            self.bar = tqdm(total=p["steps"], desc=f"epoch {p['epoch'] + 1}/{self.epochs}",
                            unit="step", file=sys.stderr, leave=False)
        self.bar.n = p["step"]
        self.bar.set_postfix(loss=f"{p['loss']:.4f}", img_s=f"{p['images_per_s']:.0f}")
        self.bar.refresh()

    def on_epoch(self, m: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        from engine.training.trainer import _format_epoch

        tqdm.write(_format_epoch(m), file=sys.stderr)

    def on_end(self, result: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def new_run_dir() -> Path:
    run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    return studio_home() / "jobs" / run_id


def cmd_train(a: argparse.Namespace) -> dict:
    from engine.training import TrainConfig, train

    if a.resume:
        run_dir = Path(a.resume)
        if not (run_dir / "config.json").exists():
            raise CliError(f"{run_dir} is not a run directory (no config.json)")
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        if a.epochs != 10 or cfg.epochs < a.epochs:
            cfg.epochs = max(cfg.epochs, a.epochs)
    else:
        cfg = config_from_args(a)
        run_dir = Path(a.out) if a.out else new_run_dir()
    result = train(cfg, run_dir, sink=ConsoleSink(), resume=bool(a.resume))
    return result.to_dict()


# --- predict -----------------------------------------------------------------------------------


def _add_predict_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify images with a trained checkpoint")
    p.add_argument("checkpoint", help="a checkpoint .pt file or a run directory")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--digit", action="store_true",
                   help="frame the ink like MNIST first (drawings, photos of digits)")
    p.add_argument("--polarity", default="auto", choices=["auto", "invert", "as-is"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def cmd_predict(a: argparse.Namespace) -> Any:
    from engine.inference.predictor import Predictor

    predictor = Predictor(a.checkpoint, device=a.device)
    results = []
    for path in a.images:
        pred = predictor.predict(path, top_k=a.top_k, digit=a.digit, polarity=a.polarity)[0]
        results.append({"image": path, **pred.to_dict()})
    if a.json:
        return results
    return "\n".join(f"{r['image']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}"
                                                   for t in r["top"]) for r in results)


# --- evaluate and classify many ----------------------------------------------------------------


def _add_evaluation_commands(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="evaluate a trained job's checkpoint on its test split: "
                       "accuracy, per-class metrics, confusion matrix (stored for the dashboard)")
    e.add_argument("job", help="job id (or a unique prefix)")
    e.add_argument("--checkpoint", default="best.pt", help="checkpoint file in the job's folder")
    e.add_argument("--split", choices=("test", "val", "train"),
                   help="default: test, or validation when the dataset has no test split")
    e.add_argument("--device", default="cpu")
    e.add_argument("--user", help="who asks (default: $STUDIO_USER; only the job's owner may "
                   "store an evaluation in it)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("classify", help="classify many images (zips, folders, files) with a "
                       "trained job's checkpoint; with labels, accuracy and a confusion matrix")
    c.add_argument("job", help="job id (or a unique prefix)")
    c.add_argument("paths", nargs="+", metavar="PATH", help="zip files, folders or images")
    c.add_argument("--labels", help="'folders' (each image's folder is its class) or a CSV of "
                   "file,label rows")
    c.add_argument("--csv", metavar="OUT", help="write one row per image to this CSV file")
    c.add_argument("--checkpoint", default="best.pt", help="checkpoint file in the job's folder")
    c.add_argument("--digit", action="store_true",
                   help="frame the ink like MNIST first (drawings, photos of digits)")
    c.add_argument("--polarity", default="auto", choices=["auto", "invert", "as-is"])
    c.add_argument("--device", default="cpu")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_classify)


def _trained_job(job_id: str, checkpoint: str) -> tuple[dict, Path]:
    """The training job and its checkpoint's path; one-line errors for what is missing."""
    from engine import jobs

    job = jobs.get_job(job_id, metrics=False, events=False)  # JobError: no such job
    if job.get("kind", "train") != "train":
        raise CliError(f"job {job['id']} is a {job['config'].get('task', 'task')} task job, "
                       "not a training job")
    path = jobs.job_dir(job["id"]) / checkpoint
    if Path(checkpoint).name != checkpoint or not path.exists():
        found = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.exists() else []
        raise CliError(f"job {job['id']} has no checkpoint {checkpoint!r}"
                       + (f" (it has {', '.join(found)})" if found else " yet"))
    return job, path


class _Bar:
    """A tqdm bar on stderr fed fractions (or counts) by engine progress callbacks."""

    def __init__(self, desc: str, total: float | None, quiet: bool) -> None:
        self.bar = None if quiet else tqdm(total=total, desc=desc, file=sys.stderr, leave=False)

    def __call__(self, done: float, message: str = "") -> None:
        if self.bar is not None:
            self.bar.n = round(done * 100) if self.bar.total == 100 else done
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_evaluation(summary: dict[str, Any], title: str = "") -> str:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix as plain text."""
    lines = [title] if title else []
    lines.append(f"top-1 accuracy  {summary['accuracy']:.2%}")
    if "top5" in summary:
        lines.append(f"top-5 accuracy  {summary['top5']:.2%}")
    lines += [f"loss            {summary['loss']:.4f}",
              f"macro F1        {summary['macro_f1']:.3f}",
              f"images          {summary['images']}", ""]
    classes = [str(c) for c in summary["classes"]]
    w = max([5, *(len(c) for c in classes)])
    lines.append(f"{'class':<{w}}  precision  recall     f1  support")
    for m in summary["per_class"]:
        lines.append(f"{m['class']:<{w}}  {m['precision']:9.3f}  {m['recall']:6.3f}  "
                     f"{m['f1']:5.3f}  {m['support']:7d}")
    cm = summary.get("confusion")
    if cm is None:  # many classes: the evaluation kept the most frequent mistakes only
        lines += ["", "most frequent mistakes (true -> predicted: images)"]
        lines += [f"{classes[t]} -> {classes[p]}: {n}"
                  for t, p, n in summary.get("top_confusions", [])[:30]]
        return "\n".join(lines)
    cw = max([3, *(len(c) for c in classes), *(len(str(n)) for row in cm for n in row)])
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * w + "".join(f" {c:>{cw}}" for c in classes)]
    lines += [f"{c:<{w}}" + "".join(f" {n:>{cw}}" for n in row) for c, row in zip(classes, cm,
                                                                                  strict=True)]
    return "\n".join(lines)


def cmd_evaluate(a: argparse.Namespace) -> Any:
    from engine.evaluation.evaluate import evaluate_job

    job, ckpt = _trained_job(a.job, a.checkpoint)
    check_may_write(job, acting_user(a.user), "evaluate")
    bar = _Bar(f"evaluating {ckpt.name}", 100, a.json)
    try:  # stored like a task's evaluation, so the dashboard shows it
        summary = evaluate_job(job["id"], ckpt.name, a.split, device=a.device, progress=bar)
    finally:
        bar.close()
    if a.json:
        return {"job": job["id"], **summary}
    epoch = f" (epoch {summary['epoch']})" if summary.get("epoch") is not None else ""
    return format_evaluation(summary, f"job {job['id']} · {summary['checkpoint']}{epoch} on "
                                      f"the {summary['split']} split")


def cmd_classify(a: argparse.Namespace) -> Any:
    import csv
    import io

    from engine.inference.classify_many import classify_many

    job, ckpt = _trained_job(a.job, a.checkpoint)
    missing = [p for p in a.paths if not Path(p).exists()]
    if missing:
        raise CliError(f"no such file or folder: {missing[0]}")
    if a.labels not in (None, "folders") and not Path(a.labels).is_file():
        raise CliError(f"--labels must be 'folders' or a CSV file; no file at {a.labels}")
    if a.csv and not Path(a.csv).parent.exists():
        raise CliError(f"no folder for --csv: {Path(a.csv).parent}")
    bar = _Bar("classifying", None, a.json)
    try:
        result = classify_many(ckpt, a.paths, labels=a.labels, out_csv=a.csv,
                               digit=a.digit, polarity=a.polarity, device=a.device,
                               progress=bar)
    finally:
        bar.close()
    labelled = result.pop("labelled", None)
    text = result.pop("csv")
    if a.json:
        out = {"job": job["id"], "checkpoint": ckpt.name, **result}
        if a.csv:
            out["csv"] = text
        else:
            out["rows"] = list(csv.DictReader(io.StringIO(text)))
        if labelled:
            out["labelled"] = labelled
        return out
    lines = []
    if not a.csv:
        for row in csv.DictReader(io.StringIO(text)):
            mark = {"true": " ✓", "false": " ✗"}.get(row["correct"], "")
            lines.append(f"{row['file']}: " + (f"error: {row['error']}" if row["error"] else
                         ", ".join(row[k] for k in row if k.startswith("top") and row[k])
                         + mark))
        lines.append("")
    lines.append(f"{result['images']} images classified with job {job['id']} {ckpt.name}"
                 + (f", {result['errors']} unreadable" if result["errors"] else "")
                 + (f", {result['unlabelled']} without a label" if result["unlabelled"] else "")
                 + (f", {result['unknown_label']} with a label the model does not know"
                    if result["unknown_label"] else ""))
    if a.csv:
        lines.append(f"results: {text}")
    if labelled:
        lines += ["", format_evaluation(labelled, f"on the {labelled['images']} labelled "
                                                  "images:")]
    return "\n".join(lines)



# --- main --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="Datasets, networks and training.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_dataset_commands(sub)
    _add_network_commands(sub)
    _add_train_command(sub)
    _add_predict_command(sub)
    _add_evaluation_commands(sub)
    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands() -> list:
    """Command groups of other engine modules (jobs, evaluation) register here."""
    from engine.cli.jobs import register as register_jobs

    return [register_jobs]


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    elif isinstance(result, str):
        print(result)
    elif isinstance(result, list):
        for row in result:
            print(json.dumps(row, default=str) if not isinstance(row, str) else row)
    elif result is not None:
        for k, v in result.items():
            print(f"{k}: {json.dumps(v, default=str) if not isinstance(v, str) else v}")


def main(argv: list[str] | None = None) -> int:
    from engine.datasets import DatasetError
    from engine.images.framing import EmptyDrawing
    from engine.images.loading import ImageError
    from engine.networks import SpecError
    from engine.training import ConfigError, TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        _print(args.func(args), getattr(args, "json", False))
    except (CliError, DatasetError, SpecError, ConfigError, ImageError, EmptyDrawing,
            FileNotFoundError, PermissionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
