"""`python -m engine evaluate JOB` and `python -m engine classify JOB PATH...`."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine import jobs
from engine.cli.common import CliError, print_result
from engine.hosting.ownership import acting_user, check_may_write


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="evaluate a trained job's checkpoint on its test split: "
                       "accuracy, per-class metrics, confusion matrix (stored for the dashboard)")
    e.add_argument("job", help="job id (or a unique prefix)")
    e.add_argument("--checkpoint", default="best.pt", help="checkpoint file in the job's folder")
    e.add_argument("--split", choices=("test", "val", "train"),
                   help="default: test, or validation when the dataset has no test split")
    e.add_argument("--device", default="cpu")
    e.add_argument("--user", help="who asks (default: $STUDIO_USER; only the job's owner may "
                   "store an evaluation in it)")
    e.add_argument("--calibrate", action="store_true",
                   help="first fit a temperature on the validation split (temperature "
                   "scaling) and store it in the checkpoint; then evaluate")
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

    job = jobs.get_job(job_id, metrics=False, events=False)  # JobError: no such job
    if job.kind != "train":
        raise CliError(f"job {job.id} is a {job.config.get('task', 'task')} task job, "
                       "not a training job")
    path = jobs.job_dir(job.id) / checkpoint
    if Path(checkpoint).name != checkpoint or not path.exists():
        found = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.exists() else []
        raise CliError(f"job {job.id} has no checkpoint {checkpoint!r}"
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
              f"images          {summary['images']}"]
    cal = summary.get("calibration")
    if cal:
        lines.append(f"ECE             {cal['ece']:.2%}" + (
            f" (raw {cal['ece_raw']:.2%}, temperature {cal['temperature']:.3f})"
            if cal["temperature"] != 1.0 else " (uncalibrated)"))
    lines.append("")
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
    from engine.evaluation.evaluate import calibrate_job, evaluate_job

    job, ckpt = _trained_job(a.job, a.checkpoint)
    check_may_write(job, acting_user(a.user), "calibrate" if a.calibrate else "evaluate")
    if a.calibrate:
        bar = _Bar(f"calibrating {ckpt.name}", 100, a.json)
        try:
            calibrate_job(job.id, ckpt.name, device=a.device, progress=bar)
        finally:
            bar.close()
    bar = _Bar(f"evaluating {ckpt.name}", 100, a.json)
    try:  # stored like a task's evaluation, so the dashboard shows it
        summary = evaluate_job(job.id, ckpt.name, a.split, device=a.device, progress=bar)
    finally:
        bar.close()
    if a.json:
        return {"job": job.id, **summary}
    epoch = f" (epoch {summary['epoch']})" if summary.get("epoch") is not None else ""
    return format_evaluation(summary, f"job {job.id} · {summary['checkpoint']}{epoch} on "
                                      f"the {summary['split']} split")


def cmd_classify(a: argparse.Namespace) -> Any:
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
        out = {"job": job.id, "checkpoint": ckpt.name, **result}
        if a.csv:
            out["csv"] = text
        else:
            out["rows"] = list(csv.DictReader(io.StringIO(text)))
        if labelled:
            out["labelled"] = labelled
        return _unless_none_classified(out, result, True)
    lines = []
    if not a.csv:
        for row in csv.DictReader(io.StringIO(text)):
            mark = {"true": " ✓", "false": " ✗"}.get(row["correct"], "")
            lines.append(f"{row['file']}: " + (f"error: {row['error']}" if row["error"] else
                         ", ".join(row[k] for k in row if k.startswith("top") and row[k])
                         + mark))
        lines.append("")
    lines.append(f"{result['images']} images classified with job {job.id} {ckpt.name}"
                 + (f", {result['errors']} could not be" if result["errors"] else "")
                 + (f", {result['unlabelled']} without a label" if result["unlabelled"] else "")
                 + (f", {result['unknown_label']} with a label the model does not know"
                    if result["unknown_label"] else ""))
    if a.csv:  # the rows are in the CSV: the failures are named here all the same
        lines += [f"{f['file']}: error: {f['error']}" for f in result.get("failures", [])]
        if result.get("failures_not_listed"):
            lines.append(f"... and {result['failures_not_listed']} more (the CSV's error "
                         "column)")
        lines.append(f"results: {text}")
    if labelled:
        lines += ["", format_evaluation(labelled, f"on the {labelled['images']} labelled "
                                                  "images:")]
    return _unless_none_classified("\n".join(lines), result, False)


def _unless_none_classified(output: Any, result: dict[str, Any], as_json: bool) -> Any:
    """The output; but when no image could be classified, printed before a one-line error (a
    batch fails only then: one bad image among many is a row with its reason)."""
    if result["errors"] and not result["images"]:
        print_result(output, as_json)
        raise CliError(f"none of the {result['errors']} images could be classified"
                       + ("" if as_json else " (each one's reason is above)"))
    return output
