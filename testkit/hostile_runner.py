"""Runs one group of generated hostile inputs in its own process; the test_hostile_*.py files
start it and check what it reports.

    python testkit/hostile_runner.py GROUP OUT_DIR

Every case is generated here (nothing large is committed). For each case it records the
outcome ("refused" with the one-line message, "ok" with a note, or "crash" with the
traceback) and the process's peak RSS during that case alone (VmHWM, reset before each case
through /proc/self/clear_refs). Before the cases it creates data that must survive them (a
dataset and a job) and after them it reports whether that data is intact and which files
appeared outside the workspace. The parent gives it a sandbox: STUDIO_HOME, TMPDIR and HOME
all point inside OUT_DIR.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import struct
import sys
import traceback
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

Case = tuple[str, Callable[[], tuple[str, str]]]
LIBRARY_STATE = re.compile(r"^tmp/torchinductor_|^tmp/\.ses$|^home/\.cache(/Microsoft|$)")
REFUSALS = (ValueError, FileNotFoundError, PermissionError)  # the engine's one-line errors


# --- measuring ----------------------------------------------------------------------------------

def peak_kib() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_case(fn: Callable[[], tuple[str, str]]) -> dict:
    reset_peak()
    try:
        outcome, message = fn()
    except REFUSALS as e:
        outcome, message = "refused", str(e)
    except BaseException:  # noqa: BLE001 - anything else is exactly what the suite looks for
        outcome, message = "crash", traceback.format_exc()
    return {"outcome": outcome, "message": message, "peak_mib": peak_kib() / 1024}


def cli(module: str, *argv: str) -> tuple[str, str]:
    """A CLI run in this process: rc 2 with one line on stderr is a refusal."""
    from engine.cli.main import main as engine_main
    from trt.cli import main as trt_main

    main = engine_main if module == "engine" else trt_main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(list(argv))
        except SystemExit as e:  # argparse refusing a flag: usage + one error line, rc 2
            rc = e.code
    # tqdm bars redraw with carriage returns; keep what a terminal would finally show
    lines = [ln.split("\r")[-1] for ln in err.getvalue().splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.startswith("usage:")
             and not ln.startswith("  ") and "%|" not in ln and "it/s" not in ln]
    text = "\n".join(lines)
    if rc == 0:
        return "ok", out.getvalue()[-300:]
    if rc == 2:
        return "refused", text
    return "crash", f"exit status {rc}: {text}"


# --- generators -----------------------------------------------------------------------------------

def idx_bytes(magic_type: int, dims: tuple[int, ...], data: bytes) -> bytes:
    return bytes([0, 0, magic_type, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) \
        + data


def gzip_of_zeros(header: bytes, zeros: int) -> bytes:
    """gzip(header + zeros) streamed: a bomb without holding the zeros in memory."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as gz:
        gz.write(header)
        block = bytes(1 << 20)
        for _ in range(zeros >> 20):
            gz.write(block)
    return buf.getvalue()


def png_bytes(w: int, h: int, mode: str = "L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(w * h).integers(0, 255, (h, w), np.uint8)
                    ).convert(mode).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(w: int, h: int) -> bytes:
    """A valid RGBA PNG of w x h zero pixels, compressed row by row (small file, huge image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    comp = zlib.compressobj(9)
    row = bytes(1 + 4 * w)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def zip_of(entries: dict[str, bytes], path: Path, compress: int = zipfile.ZIP_DEFLATED,
           links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return path


def class_tree(n_classes: int = 2, per: int = 3) -> dict[str, bytes]:
    return {f"c{c}/{i}.png": png_bytes(8 + c, 8 + i) for c in range(n_classes)
            for i in range(per)}


# --- fixtures that must survive -----------------------------------------------------------------

def make_keepers(home: Path) -> dict:
    from engine.datasets import create_dataset
    from engine.state import store

    ds = create_dataset("keep", "digits-sample", owner="alice", home=home)
    job_id = "20260101-000000-keep00"
    job = home / "jobs" / job_id
    job.mkdir(parents=True)
    (job / "log.txt").write_text("a job that must survive\n")
    with contextlib.closing(store.connect(home)) as conn:
        store.insert_job(conn, {"id": job_id, "name": "keep", "owner": "alice",
                                "status": "done", "config": {"dataset": "keep"},
                                "created": 0.0, "queued": 0.0})
    return {"dataset": ds.id, "job": job_id}


def fingerprint(home: Path, keep: dict) -> dict:
    from engine.state import store

    files = {}
    for folder in (home / "datasets" / keep["dataset"], home / "jobs" / keep["job"]):
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                files[str(p.relative_to(home))] = hashlib.sha256(p.read_bytes()).hexdigest()
    with contextlib.closing(store.connect(home)) as conn:
        rows = [dict(r) for r in conn.execute("SELECT id, name, owner, manifest FROM datasets "
                                              "WHERE id = ?", (keep["dataset"],))]
        rows += [dict(r) for r in conn.execute("SELECT id, status, config FROM jobs WHERE id = ?",
                                               (keep["job"],))]
    return {"files": files, "rows": rows}


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# --- a model for checkpoints, uploads and bundles ----------------------------------------------

PREPROCESS = {"height": 28, "width": 28, "channels": 1, "resize_mode": "squash", "scale": 255.0,
              "mean": [0.1], "std": [0.3], "polarity": "white-on-black"}


def model_state() -> dict:
    import torch

    from engine.networks import build_network
    from engine.training import network_spec

    torch.manual_seed(0)
    spec = network_spec("lenet")
    model = build_network(spec, (1, 28, 28), 10)
    return {"model": model.state_dict(), "spec": spec, "classes": [str(i) for i in range(10)],
            "input_shape": [1, 28, 28], "preprocess": dict(PREPROCESS),
            "config": {"dataset": "keep"}, "epoch": 1}


def onnx_model(classes: int = 10, channels: int = 1, side: int = 28) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(
        size=(channels * side * side, classes)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(classes, np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "B"], ["logits"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def bundle(path: Path, **members: bytes | str | None) -> Path:
    """A bundle zip: the valid members, overridden (or removed, with None) by `members`."""
    base: dict[str, bytes | str | None] = {
        "model.onnx": onnx_model(), "labels.json": json.dumps([str(i) for i in range(10)]),
        "preprocess.json": json.dumps(PREPROCESS),
        "metadata.json": json.dumps({"format": "digits-studio-bundle/1",
                                     "input": {"shape": ["N", 1, 28, 28]}, "engines": []})}
    base.update(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in base.items():
            if data is not None:
                z.writestr(name, data)
    return path


# --- the groups ----------------------------------------------------------------------------------

def group_datasets(home: Path, inputs: Path) -> list[Case]:
    from engine.datasets import create_dataset

    rng = np.random.default_rng(1)
    cases: list[Case] = []

    def create(name: str, source: str, args: dict | None = None, **options) -> Callable:
        def fn() -> tuple[str, str]:
            ds = create_dataset(name, source, args, options or None, home=home)
            return "ok", f"{len(ds)} images, {ds.manifest['report']['skipped']} skipped"
        return fn

    def write(name: str, data: bytes) -> str:
        p = inputs / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return str(p)

    labels20 = write("labels20", idx_bytes(8, (20,), bytes(range(2)) * 10))
    images20 = idx_bytes(8, (20, 28, 28), bytes(20 * 784))
    idx_cases = {
        "gzip-bomb-header-20-images": gzip_of_zeros(idx_bytes(8, (20, 28, 28), b""), 512 << 20),
        "header-declares-huge": idx_bytes(8, (1_000_000, 4096, 4096), b""),
        "dims-overflow-int64": idx_bytes(8, (2**32 - 1, 2**32 - 1, 2**32 - 1), b""),
        "ndim-255": bytes([0, 0, 8, 255]) + b"\xff" * 1020,
        "empty-file": b"",
        "one-byte": b"\0",
        "bad-magic": b"\x12\x34\x08\x03" + bytes(100),
        "float-type": idx_bytes(0x0D, (20, 28, 28), bytes(20 * 784 * 4)),
        "labels-as-images": idx_bytes(8, (20,), bytes(20)),
        "zero-dimension": idx_bytes(8, (0, 28, 28), b""),
        "truncated-data": images20[:-100],
        "extra-data": images20 + b"extra",
        "gzip-corrupt": b"\x1f\x8b\x08\x00" + rng.bytes(500),
        "gzip-truncated": gzip.compress(images20)[:40],
        "count-mismatch": idx_bytes(8, (21, 28, 28), bytes(21 * 784)),
    }
    for n in range(8):
        idx_cases[f"truncated-header-{n}"] = images20[:n]
    for seed in range(5):
        idx_cases[f"random-bytes-{seed}"] = np.random.default_rng(seed).bytes(2000)
    for case, data in idx_cases.items():
        path = write(f"idx/{case}", data)
        cases.append((f"idx-{case}", create(f"i {case}"[:60], "idx",
                                            {"train_images": path, "train_labels": labels20})))
    cases.append(("idx-labels-missing", create("i missing", "idx", {
        "train_images": write("idx/ok-images", images20),
        "train_labels": str(inputs / "nope")})))
    cases.append(("idx-images-is-folder", create("i folder", "idx", {
        "train_images": str(inputs), "train_labels": labels20})))
    labels_1001 = np.repeat(np.arange(1001), 2).astype(">u2")  # uint16: IDX type 0x0B
    cases.append(("idx-uint16-labels", create("i u16", "idx", {
        "train_images": write("idx/many-images", idx_bytes(8, (2002, 2, 2), bytes(2002 * 4))),
        "train_labels": write("idx/u16", idx_bytes(0x0B, (2002,), labels_1001.tobytes()))})))

    zips = {
        "absolute-path": zip_of({**class_tree(), "/etc/evil.png": b"x"}, inputs / "z1.zip"),
        "dot-dot": zip_of({**class_tree(), "c0/../../evil.png": b"x"}, inputs / "z2.zip"),
        "backslash-dot-dot": zip_of({**class_tree(), "c0\\..\\..\\evil.png": b"x"},
                                    inputs / "z3.zip"),
        "drive-letter": zip_of({**class_tree(), "C:/evil.png": b"x"}, inputs / "z4.zip"),
        "symlink-entry": zip_of(class_tree(), inputs / "z5.zip", links={"c0/link.png": "/etc"}),
        "ratio-bomb": zip_of({**class_tree(), "c0/bomb.png": bytes(64 << 20)},
                             inputs / "z6.zip"),
        "png-bombs": zip_of({f"c{c}/bomb{i}.png": png_bomb(12000, 12000) for c in range(2)
                             for i in range(2)}, inputs / "z7.zip"),
        "only-non-images": zip_of({"c0/a.txt": b"x", "c1/b.exe": b"MZ", "c1/c.pdf": b"%PDF"},
                                  inputs / "z8.zip"),
        "corrupt-pngs": zip_of({f"c{c}/{i}.png": rng.bytes(300) for c in range(2)
                                for i in range(3)}, inputs / "z9.zip"),
        "truncated-pngs": zip_of({name: data[:len(data) // 2] for name, data
                                  in class_tree().items()}, inputs / "z10.zip"),
        "empty-files": zip_of({f"c{c}/{i}.png": b"" for c in range(2) for i in range(3)},
                              inputs / "z11.zip"),
        "empty-zip": zip_of({}, inputs / "z12.zip"),
        "one-class": zip_of(class_tree(1, 4), inputs / "z13.zip"),
        "nested-zip": zip_of({"c0/inner.zip": zip_of(class_tree(), inputs / "inner.zip")
                              .read_bytes(), "c1/x.png": png_bytes(9, 9)}, inputs / "z14.zip"),
        "long-names": zip_of({f"c0/{'a' * 300}.png": png_bytes(8, 8),
                              f"c1/{'b' * 300}.png": png_bytes(8, 8)}, inputs / "z15.zip"),
        "non-images-mixed": zip_of({**class_tree(), "c0/notes.txt": b"hello",
                                    "c1/run.sh": b"rm -rf /"}, inputs / "z16.zip"),
        "1001-classes": zip_of({f"k{c}/{i}.png": png_bytes(4, 4) for c in range(1001)
                                for i in range(2)}, inputs / "z18.zip"),
        "stored-big-entry": zip_of({**class_tree(), "c0/big.png": bytes(8 << 20)},
                                   inputs / "z17.zip", compress=zipfile.ZIP_STORED),
    }
    expect_ok = {"zip-non-images-mixed", "zip-stored-big-entry"}
    for case, path in zips.items():
        cases.append((f"zip-{case}", create(f"z {case}", "folder", {"path": str(path)})))
    (inputs / "not-a-zip.zip").write_bytes(rng.bytes(1000))
    cases.append(("zip-not-a-zip", create("z notzip", "folder",
                                          {"path": str(inputs / "not-a-zip.zip")})))
    damaged = zips["one-class"].read_bytes()
    (inputs / "damaged.zip").write_bytes(damaged[: len(damaged) // 2])
    cases.append(("zip-damaged", create("z damaged", "folder",
                                        {"path": str(inputs / "damaged.zip")})))
    many_entries = inputs / "many.zip"
    with zipfile.ZipFile(many_entries, "w") as z:
        for i in range(1200):
            z.writestr(f"c{i % 2}/{i}.png", b"")

    def with_env(var: str, value: str, fn: Callable) -> Callable:
        def wrapped() -> tuple[str, str]:
            old = os.environ.get(var)
            os.environ[var] = value
            try:
                return fn()
            finally:
                os.environ.pop(var) if old is None else os.environ.__setitem__(var, old)
        return wrapped

    cases.append(("zip-too-many-entries", with_env("STUDIO_MAX_ZIP_ENTRIES", "1000", create(
        "z many", "folder", {"path": str(many_entries)}))))
    cases.append(("zip-total-size-cap", with_env("STUDIO_MAX_ZIP_BYTES", "100", create(
        "z total", "folder", {"path": str(zips["non-images-mixed"])}))))
    # a folder with symbolic links out of the tree: skipped and counted, nothing read outside
    tree_dir = inputs / "linked"
    for name, data in class_tree().items():
        (tree_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (tree_dir / name).write_bytes(data)
    outside = inputs / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes(9, 9))
    (tree_dir / "c0" / "escape").symlink_to(outside, target_is_directory=True)
    (tree_dir / "c1" / "escape.png").symlink_to(outside / "secret.png")
    (tree_dir / "c2").symlink_to(outside, target_is_directory=True)
    expect_ok.add("folder-symlinks-skipped")
    cases.append(("folder-symlinks-skipped", create("f links", "folder",
                                                    {"path": str(tree_dir)})))

    sample = [("budget-4096-colour", {"height": 4096, "width": 4096, "channels": 3}),
              ("budget-1024-colour", {"height": 1024, "width": 1024, "channels": 3}),
              ("budget-4096-gray-inverted", {"height": 4096, "width": 4096,
                                             "add_inverted": True}),
              ("height-0", {"height": 0}), ("height-negative", {"height": -1}),
              ("height-huge", {"height": 10**12}), ("height-string", {"height": "28"}),
              ("height-float", {"height": 28.5}), ("channels-2", {"channels": 2}),
              ("channels-bool", {"channels": True}), ("resize-bogus", {"resize_mode": "x"}),
              ("val-nan", {"val_percent": float("nan")}),
              ("val-inf", {"val_percent": float("inf")}), ("val-100", {"val_percent": 100}),
              ("test-negative", {"test_percent": -5}),
              ("val-plus-test-100", {"val_percent": 60, "test_percent": 40}),
              ("max-below-min", {"min_per_class": 5, "max_per_class": 2}),
              ("seed-negative", {"seed": -1}), ("seed-huge", {"seed": 2**70}),
              ("min-per-class-huge", {"min_per_class": 10**6}),
              ("unknown-option", {"colour": True})]
    for case, options in sample:
        cases.append((f"options-{case}", create(f"o {case}", "digits-sample", None, **options)))
    names = {"empty": "", "spaces": "   ", "too-long": "x" * 65, "path": "../../etc",
             "id-like": "ds-12345678", "cyrillic-lookalike": "kеep", "casefold": "KEEP",
             "fullwidth": "ｋｅｅｐ", "nul": "a\0b", "newline": "a\nb", "emoji": "💥",
             "slash": "a/b", "not-a-string": 12345}
    for case, name in names.items():
        cases.append((f"name-{case}", create(name, "digits-sample")))
    cases.append(("source-unknown", create("s1", "nope")))
    cases.append(("source-extra-arg", create("s2", "digits-sample", {"path": "/etc"})))
    cases.append(("source-missing-arg", create("s3", "idx", {})))
    cases.append(("cli-budget-4096-colour", lambda: cli(
        "engine", "datasets", "create", "big", "--source", "digits-sample", "--height",
        "4096", "--width", "4096", "--color")))
    cases.append(("cli-val-nan", lambda: cli("engine", "datasets", "create", "n", "--source",
                                             "digits-sample", "--val-percent", "nan")))
    cases.append(("cli-idx-bomb", lambda: cli(
        "engine", "datasets", "create", "bomb", "--source", "idx", "--train-images",
        str(inputs / "idx/gzip-bomb-header-20-images"), "--train-labels", labels20)))
    cases.append(("cli-delete-in-use-missing", lambda: cli("engine", "datasets", "delete",
                                                           "no-such")))
    return [(cid, fn) for cid, fn in cases], expect_ok


def group_specs(home: Path, inputs: Path) -> tuple[list[Case], set[str]]:
    from engine.networks import validate_spec

    def check(text, shape=(1, 28, 28), classes: int = 10) -> Callable:
        def fn() -> tuple[str, str]:
            rows = validate_spec(text, shape, classes)
            return "ok", f"{len(rows)} layers"
        return fn

    lol = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
           + "".join(f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n"
                     for p, k in zip("abcdefg", "bcdefgh", strict=True)) + "layers: [*h]\n")
    specs: dict[str, object] = {
        "alias-bomb": lol,
        "alias-small": "x: &l {type: relu}\nlayers: [*l, {type: flatten}, {type: linear, out: "
                       "classes}]",
        "alias-merge": "base: &b {type: linear}\nlayers: [{type: flatten}, {<<: *b, out: 10}]",
        "deep-brackets": "[" * 100000,
        "deep-braces": "{" * 100000,
        "deep-json": '{"a":' * 5000 + "1" + "}" * 5000,
        "deep-dashes": "- " * 5000 + "x",
        "deep-dict-object": None,  # built below as an object, not text
        "huge-text": "layers: [" + "{type: relu}, " * 30000 + "]",
        "many-layers": {"layers": [{"type": "relu"}] * 600},
        "million-values": None,  # built below
        "linear-700000": "layers: [{type: flatten}, {type: linear, out: 700000}]",
        "out-3e9-yaml": "layers: [{type: flatten}, {type: linear, out: 3e9}]",
        "out-3e9-json": '{"layers": [{"type": "flatten"}, {"type": "linear", "out": 3e9}]}',
        "out-10-to-30": "layers: [{type: flatten}, {type: linear, out: "
                        "1000000000000000000000000000000}]",
        "conv-out-1e9": "layers: [{type: conv, out: 1000000000, kernel: 5}]",
        "conv-out-1e6": "layers: [{type: conv, out: 1000000, kernel: 5}]",
        "adaptive-100000": "layers: [{type: adaptiveavgpool, size: 100000}, {type: flatten}, "
                           "{type: linear, out: classes}]",
        "padding-1e9": "layers: [{type: conv, out: 4, kernel: 3, padding: 1000000000}]",
        "padding-1e5": "layers: [{type: conv, out: 64, kernel: 3, padding: 100000}]",
        "stride-1e21": "layers: [{type: conv, out: 4, kernel: 3, stride: "
                       "1000000000000000000000}]",
        "kernel-1e9": "layers: [{type: conv, out: 4, kernel: 1000000000}]",
        "out-negative": "layers: [{type: flatten}, {type: linear, out: -10}]",
        "out-float": "layers: [{type: flatten}, {type: linear, out: 3.5}]",
        "out-bool": "layers: [{type: flatten}, {type: linear, out: true}]",
        "type-list": "layers: [{type: [conv]}]",
        "type-huge": "layers: [{type: " + "c" * 100000 + "}]",
        "type-unknown": "layers: [{type: conv3d}]",
        "python-tag": "layers: !!python/object/apply:os.system ['echo pwned']",
        "python-name": "layers: [{type: !!python/name:os.system relu}]",
        "binary-garbage": bytes(range(256)) * 4,
        "dropout-nan": "layers: [{type: dropout, p: .nan}, {type: flatten}, "
                       "{type: linear, out: classes}]",
        "slope-inf": "layers: [{type: leakyrelu, slope: .inf}, {type: flatten}, "
                     "{type: linear, out: classes}]",
        "dropout-1.5": "layers: [{type: dropout, p: 1.5}]",
        "groups-0": "layers: [{type: conv, out: 4, kernel: 3, groups: 0}]",
        "residual-stride-0": "layers: [{type: residual, out: 4, stride: 0}]",
        "torchvision-bogus": "layers: [{type: torchvision, name: '__import__'}]",
        "empty": "", "whitespace": "   \n\t ", "ints": "[1, 2, 3]", "string": "'hello'",
        "number": "42", "null": "null", "layers-dict": "layers: {type: relu}",
        "key-huge": "{" + "k" * 5000 + ": 1, layers: []}",
        "input-huge": "input: {channels: 1000000000, height: 28, width: 28}\nlayers: []",
        "unknown-param-huge": "layers: [{type: relu, " + "x" * 5000 + ": 1}]",
        "value-huge-list": "layers: [{type: conv, out: 4, kernel: [" + "1, " * 20000 + "1]}]",
        "anchor-only-ok": "layers: [&r {type: flatten}, {type: linear, out: classes}]",
    }
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    specs["deep-dict-object"] = deep
    specs["million-values"] = {"layers": [[0] * 1000] * 1001}
    cases: list[Case] = [(f"spec-{k}", check(v)) for k, v in specs.items()]
    cases.append(("spec-classes-10000", check("layers: [{type: flatten}, {type: linear, out: "
                                              "classes}]", classes=10000)))
    cases.append(("spec-input-shape-huge", check("layers: [{type: flatten}, {type: linear, "
                                                 "out: classes}]", shape=(1, 99999, 99999))))
    cases.append(("spec-input-shape-bad", check("layers: [{type: relu}]", shape=(1, 28))))
    bomb_file = inputs / "bomb.yaml"
    bomb_file.write_text(lol)
    cases.append(("cli-networks-show-alias-bomb",
                  lambda: cli("engine", "networks", "show", str(bomb_file))))
    deep_file = inputs / "deep.yaml"
    deep_file.write_text("[" * 100000)
    cases.append(("cli-networks-show-deep", lambda: cli("engine", "networks", "show",
                                                        str(deep_file))))
    for flag, value in (("--input", "1,28"), ("--input", "a,b,c"), ("--input", "0,28,28"),
                        ("--input", "1,99999999,99999999"), ("--classes", "0"),
                        ("--classes", "100000")):
        cases.append((f"cli-networks-show{flag}={value}",
                      lambda f=flag, v=value: cli("engine", "networks", "show", "lenet", f, v)))
    return cases, {"spec-anchor-only-ok"}


def group_checkpoints(home: Path, inputs: Path) -> tuple[list[Case], set[str]]:
    import pickle

    import torch

    from engine.inference.predictor import Predictor
    from engine.training.checkpoint import save_checkpoint

    run = inputs / "run"
    good = model_state()
    save_checkpoint(run / "checkpoints" / "epoch-0001.pt", good)
    save_checkpoint(run / "best.pt", good)
    raw = (run / "best.pt").read_bytes()
    image = inputs / "seven.png"
    image.write_bytes(png_bytes(28, 28))
    cases: list[Case] = []

    def predict(path: Path) -> Callable:
        def fn() -> tuple[str, str]:
            Predictor(path)
            return "ok", "loaded"
        return fn

    def variant(name: str, data: bytes, keep_sidecar: bool = True) -> Path:
        folder = inputs / "runs" / name
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        for src in (run / "checkpoints").iterdir():
            (folder / "checkpoints" / src.name).write_bytes(src.read_bytes())
        (folder / "best.pt").write_bytes(data)
        if keep_sidecar:
            (folder / "best.pt.sha256").write_bytes((run / "best.pt.sha256").read_bytes())
        return folder / "best.pt"

    for seed in range(6):
        flipped = bytearray(raw)
        rng = np.random.default_rng(seed)
        for i in rng.integers(0, len(raw), 200):
            flipped[i] ^= 0xFF
        cases.append((f"ckpt-200-byte-flips-{seed}", predict(variant(f"flip{seed}",
                                                                     bytes(flipped)))))
    one = bytearray(raw)
    one[len(raw) // 2] ^= 1
    cases.append(("ckpt-one-bit-flip", predict(variant("bit", bytes(one)))))
    for name, data in {"truncated-half": raw[: len(raw) // 2], "truncated-10": raw[:10],
                       "empty": b"", "garbage": np.random.default_rng(9).bytes(5000),
                       "json": b'{"model": {}}', "zip-not-torch": zip_of(
                           {"a": b"b"}, inputs / "nt.zip").read_bytes()}.items():
        cases.append((f"ckpt-{name}", predict(variant(name, data))))
        cases.append((f"ckpt-{name}-no-sidecar", predict(variant(name + "-old", data,
                                                                 keep_sidecar=False))))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/pwned",))

    buf = io.BytesIO()
    torch.save({"model": Evil()}, buf)
    cases.append(("ckpt-pickle-payload", predict(variant("evil", buf.getvalue(), False))))
    buf = io.BytesIO()
    pickle.dump({"x": 1}, buf)
    cases.append(("ckpt-plain-pickle", predict(variant("pickle", buf.getvalue(), False))))

    def saved(name: str, state) -> Path:
        path = inputs / "runs" / name / "best.pt"
        save_checkpoint(path, state)  # a valid hash: the content itself is what is wrong
        return path

    cases.append(("ckpt-keyless", predict(saved("keyless", {"model": good["model"]}))))
    cases.append(("ckpt-list", predict(saved("list", [1, 2, 3]))))
    wrong = dict(good, model={k: torch.zeros(1) for k in good["model"]})
    cases.append(("ckpt-wrong-shapes", predict(saved("shapes", wrong))))
    cases.append(("ckpt-classes-huge", predict(saved("classes", dict(
        good, classes=[str(i) for i in range(100000)])))))
    cases.append(("ckpt-spec-bogus", predict(saved("spec", dict(good, spec={"layers": [
        {"type": "conv", "out": 10**9, "kernel": 5}]})))))
    cases.append(("ckpt-input-shape-bogus", predict(saved("shape", dict(
        good, input_shape=["a", None, -1])))))
    sidecar_bad = variant("sidecar-garbage", raw)
    (sidecar_bad.parent / "best.pt.sha256").write_text("not json")
    cases.append(("ckpt-sidecar-garbage", predict(sidecar_bad)))
    (inputs / "runs" / "dir.pt").mkdir(parents=True)
    cases.append(("ckpt-is-folder", predict(inputs / "runs" / "dir.pt")))
    cases.append(("ckpt-missing", predict(inputs / "runs" / "missing.pt")))
    cases.append(("ckpt-intact-loads", predict(run / "best.pt")))
    cases.append(("cli-predict-flipped", lambda: cli(
        "engine", "predict", str(inputs / "runs" / "flip0" / "best.pt"), str(image))))
    cases.append(("cli-predict-truncated", lambda: cli(
        "engine", "predict", str(inputs / "runs" / "truncated-half-old" / "best.pt"),
        str(image))))
    cases.append(("cli-predict-evil", lambda: cli(
        "engine", "predict", str(inputs / "runs" / "evil" / "best.pt"), str(image))))
    cases.append(("cli-trt-export-flipped", lambda: cli(
        "trt", "export", str(inputs / "runs" / "flip1"))))
    return cases, {"ckpt-intact-loads"}


def group_bundles(home: Path, inputs: Path) -> tuple[list[Case], set[str]]:
    image = inputs / "seven.png"
    image.write_bytes(png_bytes(28, 28))
    bomb = inputs / "bomb.png"
    bomb.write_bytes(png_bomb(12000, 12000))
    variants: dict[str, dict] = {
        "valid": {},
        "no-model": {"model.onnx": None}, "no-labels": {"labels.json": None},
        "no-preprocess": {"preprocess.json": None},
        "labels-dict": {"labels.json": json.dumps({"a": 1, "b": 2})},
        "labels-short": {"labels.json": json.dumps(["0", "1", "2"])},
        "labels-empty": {"labels.json": "[]"},
        "labels-nested": {"labels.json": json.dumps([[1], [2]] * 5)},
        "labels-invalid-json": {"labels.json": "[1, 2"},
        "labels-deep": {"labels.json": "[" * 100000 + "]" * 100000},
        "labels-numbers": {"labels.json": json.dumps(list(range(10)))},
        "preprocess-list": {"preprocess.json": "[1, 2]"},
        "preprocess-50000": {"preprocess.json": json.dumps(dict(PREPROCESS, height=50000,
                                                                width=50000))},
        "preprocess-width-0": {"preprocess.json": json.dumps(dict(PREPROCESS, width=0))},
        "preprocess-channels-2": {"preprocess.json": json.dumps(dict(PREPROCESS, channels=2))},
        "preprocess-mean-long": {"preprocess.json": json.dumps(dict(PREPROCESS, mean=[0, 0]))},
        "preprocess-std-0": {"preprocess.json": json.dumps(dict(PREPROCESS, std=[0]))},
        "preprocess-std-nan": {"preprocess.json": json.dumps(dict(PREPROCESS)).replace(
            '"std": [0.3]', '"std": [NaN]')},
        "preprocess-scale-negative": {"preprocess.json": json.dumps(dict(PREPROCESS,
                                                                         scale=-1))},
        "preprocess-resize-bogus": {"preprocess.json": json.dumps(dict(PREPROCESS,
                                                                       resize_mode="x"))},
        "preprocess-polarity-bogus": {"preprocess.json": json.dumps(dict(PREPROCESS,
                                                                         polarity=7))},
        "metadata-list": {"metadata.json": "[]"},
        "metadata-shape-mismatch": {"metadata.json": json.dumps({"input": {"shape": [
            "N", 3, 32, 32]}})},
        "metadata-shape-garbage": {"metadata.json": json.dumps({"input": {"shape": "x"}})},
        "model-garbage": {"model.onnx": np.random.default_rng(3).bytes(4000)},
        "model-empty": {"model.onnx": b""},
        "model-truncated": {"model.onnx": onnx_model()[:500]},
        "model-3-classes": {"model.onnx": onnx_model(classes=3)},
        "model-colour-input": {"model.onnx": onnx_model(channels=3)},
        "engine-without-gpu": {"engines/fp32.engine": b"not an engine"},
    }
    cases: list[Case] = []
    for case, members in variants.items():
        path = bundle(inputs / f"{case}.zip", **members)
        cases.append((f"bundle-{case}", lambda p=path: cli("trt", "infer", str(p), str(image),
                                                           "--json")))
    big = bundle(inputs / "big-engine.zip", **{"engines/fp32.engine": bytes(2 << 20)})

    def big_member() -> tuple[str, str]:
        os.environ["STUDIO_MAX_BUNDLE_MEMBER_BYTES"] = str(1 << 20)
        try:
            return cli("trt", "infer", str(big), str(image))
        finally:
            os.environ.pop("STUDIO_MAX_BUNDLE_MEMBER_BYTES")

    cases.append(("bundle-member-above-limit", big_member))
    (inputs / "not-zip.zip").write_bytes(b"PK\x03\x04garbage")
    cases.append(("bundle-not-a-zip", lambda: cli("trt", "infer", str(inputs / "not-zip.zip"),
                                                  str(image))))
    damaged = (inputs / "valid.zip").read_bytes()
    (inputs / "damaged.zip").write_bytes(damaged[: len(damaged) - 200])
    cases.append(("bundle-damaged", lambda: cli("trt", "infer", str(inputs / "damaged.zip"),
                                                str(image))))
    cases.append(("bundle-missing", lambda: cli("trt", "infer", str(inputs / "nope.zip"),
                                                str(image))))
    cases.append(("bundle-image-bomb", lambda: cli("trt", "infer", str(inputs / "valid.zip"),
                                                   str(bomb))))
    cases.append(("bundle-image-garbage", lambda: cli("trt", "infer",
                                                      str(inputs / "valid.zip"),
                                                      str(inputs / "not-zip.zip"))))
    return cases, {"bundle-valid", "bundle-labels-numbers", "bundle-engine-without-gpu"}


def group_uploads_and_flags(home: Path, inputs: Path) -> tuple[list[Case], set[str]]:
    from engine.inference.classify_many import classify_many
    from engine.training.checkpoint import save_checkpoint

    ckpt = inputs / "run" / "best.pt"
    save_checkpoint(ckpt, model_state())
    cases: list[Case] = []

    def classify(inputs_: list[Path]) -> Callable:
        def fn() -> tuple[str, str]:
            r = classify_many(ckpt, [str(p) for p in inputs_])
            if r["errors"]:
                return "refused-per-file", f"{r['images']} classified, {r['errors']} refused"
            return "ok", f"{r['images']} classified"
        return fn

    uploads = {
        "png-bombs": zip_of({f"bomb{i}.png": png_bomb(12000, 12000) for i in range(4)},
                            inputs / "u1.zip"),
        "zip-slip-names": zip_of({"../../evil.png": png_bytes(28, 28),
                                  "/abs.png": png_bytes(28, 28)}, inputs / "u2.zip"),
        "garbage-images": zip_of({f"{i}.png": np.random.default_rng(i).bytes(500)
                                  for i in range(5)}, inputs / "u3.zip"),
        "huge-entry": zip_of({"big.png": bytes(80 << 20)}, inputs / "u4.zip"),
        "empty-images": zip_of({"a.png": b"", "b.jpg": b""}, inputs / "u5.zip"),
        "symlink-entry": zip_of({"ok.png": png_bytes(28, 28)}, inputs / "u6.zip",
                                links={"link.png": "/etc/passwd"}),
    }
    for case, path in uploads.items():
        cases.append((f"upload-{case}", classify([path])))
    folder = inputs / "upfolder"
    folder.mkdir()
    (folder / "ok.png").write_bytes(png_bytes(28, 28))
    (folder / "passwd.png").symlink_to("/etc/passwd")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    cases.append(("upload-folder-symlinks", classify([folder])))
    single = inputs / "bomb.png"
    single.write_bytes(png_bomb(12000, 12000))
    cases.append(("upload-single-bomb", classify([single])))

    floats = ["--lr nan", "--lr inf", "--lr -1", "--lr 0", "--weight-decay inf",
              "--weight-decay nan", "--gamma nan", "--power nan", "--aug-shift nan",
              "--warmup-epochs inf", "--milestones nan", "--milestones 1,inf",
              "--aug-noise inf", "--aug-rotation nan", "--momentum 1", "--momentum nan",
              "--epochs 0", "--epochs -5", "--batch-size 0", "--aug-zoom 1", "--aug-invert 2",
              "--step-size 0", "--step-size inf", "--aug-shear inf", "--lr 1e400",
              "--val-interval 0", "--seed -1", "--device tpu", "--milestones x",
              "--early-stopping -1"]
    for flags in floats:
        cases.append((f"flags-submit{flags.replace(' ', '=')}", lambda f=flags: cli(
            "engine", "jobs", "submit", "--dataset", "keep", "--no-start", *f.split())))
    cases.append(("flags-train-lr-inf", lambda: cli("engine", "train", "--dataset", "keep",
                                                    "--lr", "inf")))
    cases.append(("flags-submit-no-dataset", lambda: cli("engine", "jobs", "submit",
                                                         "--dataset", "nope", "--no-start")))
    # every upload case is handled per file (a row with the reason), never by refusing all
    return cases, {cid for cid, _ in cases if cid.startswith("upload-")}


GROUPS = {"datasets": group_datasets, "specs": group_specs, "checkpoints": group_checkpoints,
          "bundles": group_bundles, "uploads": group_uploads_and_flags}


def main() -> int:
    group, out_dir = sys.argv[1], Path(sys.argv[2])
    home = Path(os.environ["STUDIO_HOME"])
    inputs = out_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    keep = make_keepers(home)
    before = fingerprint(home, keep)
    cases, expect_ok = GROUPS[group](home, inputs)
    inputs_before = tree(inputs)
    root_before = set(os.listdir(ROOT))
    import engine.cli.main  # noqa: F401 - what every CLI case loads (torch): not a case's cost
    import trt.cli  # noqa: F401

    reset_peak()
    baseline = peak_kib() / 1024
    results = {}
    for case_id, fn in cases:
        results[case_id] = run_case(fn) | {"expect_ok": case_id in expect_ok}
    after = fingerprint(home, keep)
    report = {
        "group": group, "baseline_mib": baseline, "cases": results,
        "intact": before == after,
        "new_in_inputs": sorted(tree(inputs) - inputs_before),
        "new_in_repo": sorted(set(os.listdir(ROOT)) - root_before),
        # Libraries' own state is not ours: torch makes its compiler cache folder
        # (TMPDIR/torchinductor_<user>) on import, ONNX Runtime its device id and session
        # files (~/.cache/Microsoft/DeveloperTools, TMPDIR/.ses) on its first session.
        "outside": sorted(str(p) for p in (out_dir / "tmp").rglob("*")
                          if not LIBRARY_STATE.search(str(p.relative_to(out_dir))))
        + sorted(str(p) for p in (out_dir / "home").rglob("*")
                 if not LIBRARY_STATE.search(str(p.relative_to(out_dir)))),
        "pwned": Path("/tmp/pwned").exists(),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
