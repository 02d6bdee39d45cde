"""engine.datasets: every source, every option, clean failures, and the explorer."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets import (
    SOURCES,
    DatasetError,
    DatasetOptions,
    create_dataset,
    delete_dataset,
    explore,
    list_datasets,
    open_dataset,
)
from engine.datasets.sources import downloads
from engine.images.loading import fit_image, load_image
from engine.state import store

DATASET_FILES = {"manifest.json", "images.npy", "labels.npy", "train.npy", "val.npy",
                 "test.npy", "mean.npy", "mean.png"}

# --- helpers -----------------------------------------------------------------------------------


def read_mnist(mnist_files) -> tuple[np.ndarray, np.ndarray]:
    images_gz, labels_gz = mnist_files
    images = np.frombuffer(gzip.decompress(images_gz.read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(gzip.decompress(labels_gz.read_bytes()), np.uint8, offset=8)
    return images.reshape(-1, 28, 28), labels


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, gz: bool = False) -> Path:
    """An IDX file of unsigned bytes; `magic` overrides the header's magic number."""
    magic = magic if magic is not None else (0x0800 | array.ndim)
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def idx_args(tmp_path: Path, images: np.ndarray, labels: np.ndarray, prefix: str = "train",
             gz: bool = False) -> dict[str, str]:
    return {f"{prefix}_images": str(write_idx(tmp_path / f"{prefix}-images", images, gz=gz)),
            f"{prefix}_labels": str(write_idx(tmp_path / f"{prefix}-labels", labels, gz=gz))}


def save(path: Path, img: Image.Image, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt)


def make_class_folder(root: Path, per_class: int = 4, classes=("cat", "dog", "fox")) -> Path:
    """Classes of images in several formats, sizes and modes, plus two files to skip."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        for i in range(per_class):
            w, h = 20 + 7 * i, 30 - 3 * i
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[..., c % 3] = 255  # a colour per class
            img = Image.fromarray(pixels)
            kind = i % 4
            if kind == 0:
                save(root / name / f"{i}.png", img)
            elif kind == 1:
                save(root / name / f"{i}.jpg", img.convert("L"), "JPEG")
            elif kind == 2:
                save(root / name / "sub" / f"{i}.bmp", img)  # nested folders count too
            else:
                save(root / name / f"{i}.png", img.convert("RGBA"))
    (root / classes[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / classes[1] / "notes.txt").write_text("not an image")
    return root


def zip_folder(folder: Path, zip_path: Path, wrapper: str | None = None) -> Path:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                rel = p.relative_to(folder).as_posix()
                zf.write(p, f"{wrapper}/{rel}" if wrapper else rel)
    return zip_path


def assert_nothing_left(home: Path, keep: tuple[str, ...] = ()) -> None:
    """No dataset folder, no .tmp- folder and no row beyond the datasets in `keep`."""
    folder = home / "datasets"
    present = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert present == sorted(keep)
    assert sorted(d["id"] for d in list_datasets(home)) == sorted(keep)


def digits(name: str = "d", **options):
    return create_dataset(name, "digits-sample", options=options)


# --- IDX -------------------------------------------------------------------------------------


def test_idx_gzip_from_real_mnist(home, mnist_files):
    images_gz, labels_gz = mnist_files
    stages = []
    ds = create_dataset("mnist", "idx", {"train_images": images_gz, "train_labels": labels_gz},
                        progress=lambda f, m: stages.append(f))
    assert stages[0] == 0.0 and stages[-1] == 1.0 and stages == sorted(stages)
    assert {p.name for p in ds.path.iterdir()} == DATASET_FILES
    m = ds.manifest
    assert m["source"] == "idx" and m["total"] == 10000 and ds.shape == (1, 28, 28)
    assert m["source_args"]["train_images"] == str(images_gz.resolve())
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.images.shape == (10000, 28, 28, 1) and isinstance(ds.images, np.memmap)
    assert abs(float(np.asarray(ds.images).mean()) - 33.79) < 0.01
    train, val, test = ds.split("train"), ds.split("val"), ds.split("test")
    assert len(train) == 9000 and len(val) == 1000 and len(test) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(10000))
    assert sum(m["counts"]["val"].values()) == 1000 and m["counts"]["val"]["3"] == 101
    assert m["sha256"] == hashlib.sha256((ds.path / "images.npy").read_bytes()).hexdigest()
    pre = ds.preprocess
    assert pre["polarity"] == "white-on-black" and pre["scale"] == 255.0
    train_pixels = np.asarray(ds.images)[train] / 255.0
    assert pre["mean"][0] == pytest.approx(train_pixels.mean(), abs=1e-6)
    assert pre["std"][0] == pytest.approx(train_pixels.std(), abs=1e-6)
    assert ds.mean.shape == (28, 28, 1) and ds.mean.dtype == np.float32
    assert np.allclose(ds.mean, np.asarray(ds.images)[train].mean(0), atol=1e-3)
    assert m["size_bytes"] > 10000 * 784 and m["report"] == {"skipped": 0,
                                                              "skipped_examples": []}
    assert Image.open(ds.path / "mean.png").size == (28, 28)


def test_idx_raw_with_a_test_pair(home, tmp_path, mnist_files):
    images, labels = read_mnist(mnist_files)
    args = {**idx_args(tmp_path, images[:8000], labels[:8000]),
            **idx_args(tmp_path, images[8000:], labels[8000:], prefix="test")}
    ds = create_dataset("split", "idx", args)
    test = ds.split("test")
    assert len(test) == 2000 and len(ds.split("val")) == 800
    assert np.array_equal(np.asarray(ds.images)[test, :, :, 0], images[8000:])
    assert np.array_equal(ds.labels[test], labels[8000:])
    # Without the source's test split, its images join the pool and test_percent carves.
    pooled = create_dataset("pooled", "idx", args,
                            {"use_source_test": False, "test_percent": 20.0, "val_percent": 0})
    assert len(pooled.split("test")) == 2000 and len(pooled.split("train")) == 8000
    assert len(pooled.split("val")) == 0


def test_idx_gzip_and_raw_give_the_same_images(home, tmp_path, mnist_files):
    raw_args = {}
    for key, gz_path in zip(("train_images", "train_labels"), mnist_files, strict=True):
        raw = tmp_path / gz_path.name.removesuffix(".gz")
        raw.write_bytes(gzip.decompress(gz_path.read_bytes()))
        raw_args[key] = raw
    raw = create_dataset("raw", "idx", raw_args)
    gz = create_dataset("gz", "idx", dict(zip(("train_images", "train_labels"), mnist_files,
                                              strict=True)))
    assert raw.manifest["sha256"] == gz.manifest["sha256"]
    assert np.array_equal(np.asarray(raw.images)[:, :, :, 0], read_mnist(mnist_files)[0])


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("magic", "expected IDX images"),
        ("count", "holds 300 images but"),
        ("truncated", "truncated"),
        ("type", "data type 0x0d"),
        ("missing", "no such IDX file"),
    ],
)
def test_bad_idx_files_are_refused_and_leave_nothing(home, tmp_path, mnist_files, broken,
                                                     message):
    images, labels = read_mnist(mnist_files)
    args = idx_args(tmp_path, images[:300], labels[:300])
    if broken == "magic":
        args["train_images"] = args["train_labels"]
    elif broken == "count":
        write_idx(Path(args["train_labels"]), labels[:299])
    elif broken == "truncated":
        path = Path(args["train_images"])
        path.write_bytes(path.read_bytes()[:-5])
    elif broken == "type":
        write_idx(Path(args["train_images"]), images[:300], magic=0x0D03)
    else:
        args["train_images"] = str(tmp_path / "nope")
    with pytest.raises(DatasetError, match=message):
        create_dataset("bad", "idx", args)
    assert_nothing_left(home)


# --- folders and zips --------------------------------------------------------------------------


def test_folder_of_mixed_images_skips_and_reports_bad_files(home, tmp_path):
    folder = make_class_folder(tmp_path / "animals", per_class=8)
    ds = create_dataset("animals", "folder", {"path": folder},
                        {"height": 16, "width": 24, "channels": 3, "val_percent": 25})
    assert ds.classes == ["cat", "dog", "fox"] and ds.shape == (3, 16, 24)
    assert ds.manifest["total"] == 24
    report = ds.manifest["report"]
    assert report["skipped"] == 2
    assert {e["file"] for e in report["skipped_examples"]} == {"cat/broken.png", "dog/notes.txt"}
    assert all(e["reason"] for e in report["skipped_examples"])
    assert ds.manifest["counts"]["val"] == {"cat": 2, "dog": 2, "fox": 2}
    assert ds.preprocess["polarity"] == "as-is"
    # Stored pixels are exactly what fit_image makes of the file (the shared contract).
    first = sorted((folder / "cat").glob("0.png"))[0]
    expected = fit_image(load_image(first), 16, 24, 3, "squash")
    assert any(np.array_equal(expected, img) for img in np.asarray(ds.images))


def test_folder_of_mnist_pngs_keeps_pixels_and_detects_polarity(home, tmp_path, mnist_files):
    images, labels = read_mnist(mnist_files)
    for i in range(200):
        save(tmp_path / "png" / str(labels[i]) / f"{i:05d}.png", Image.fromarray(images[i]))
    ds = create_dataset("mnist png", "folder", {"path": tmp_path / "png"})
    assert ds.classes == [str(d) for d in range(10)] and ds.manifest["total"] == 200
    assert ds.preprocess["polarity"] == "white-on-black"
    stored = {bytes(img) for img in np.asarray(ds.images)}
    assert stored == {bytes(img[:, :, None]) for img in images[:200]}


@pytest.mark.parametrize("wrapper", [None, "animals"])
def test_zip_of_class_folders_with_or_without_a_top_folder(home, tmp_path, wrapper):
    folder = make_class_folder(tmp_path / "animals")
    archive = zip_folder(folder, tmp_path / "animals.zip", wrapper)
    ds = create_dataset("zipped", "folder", {"path": archive})
    assert ds.classes == ["cat", "dog", "fox"] and ds.manifest["total"] == 12
    assert ds.manifest["report"]["skipped"] == 2
    assert {p.name for p in ds.path.iterdir()} == DATASET_FILES  # extraction folder removed
    assert_nothing_left(home, keep=(ds.id,))


def test_separate_val_and_test_folders(home, tmp_path):
    train = make_class_folder(tmp_path / "train", per_class=6)
    val = make_class_folder(tmp_path / "val", per_class=2)
    test = zip_folder(make_class_folder(tmp_path / "test", per_class=3), tmp_path / "test.zip")
    ds = create_dataset("three", "folder", {"path": train, "val_path": val, "test_path": test},
                        {"val_percent": 50, "test_percent": 50 - 1})
    counts = ds.manifest["counts"]
    assert counts["train"] == {"cat": 6, "dog": 6, "fox": 6}  # percentages are not used
    assert counts["val"] == {"cat": 2, "dog": 2, "fox": 2}
    assert counts["test"] == {"cat": 3, "dog": 3, "fox": 3}
    assert ds.manifest["report"]["skipped"] == 6
    assert "val: cat/broken.png" in {e["file"] for e in ds.manifest["report"]["skipped_examples"]}


def test_val_folder_with_an_unknown_class_is_refused(home, tmp_path):
    train = make_class_folder(tmp_path / "train")
    val = make_class_folder(tmp_path / "val", classes=("cat", "emu"))
    with pytest.raises(DatasetError, match="'emu'"):
        create_dataset("bad", "folder", {"path": train, "val_path": val})
    assert_nothing_left(home)


@pytest.mark.parametrize("entry", ["../escape.png", "/abs/olute.png", "cat/../../up.png"])
def test_zip_slip_is_refused_and_leaves_nothing(home, tmp_path, entry):
    folder = make_class_folder(tmp_path / "animals")
    archive = zip_folder(folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(entry), b"x")
    with pytest.raises(DatasetError, match="refusing evil.zip.*(absolute|'\\.\\.')"):
        create_dataset("evil", "folder", {"path": archive})
    assert_nothing_left(home)
    assert not (tmp_path / "escape.png").exists()


def test_not_a_folder_or_zip(home, tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="neither a folder nor a .zip"):
        create_dataset("x", "folder", {"path": tmp_path / "x.txt"})
    assert_nothing_left(home)


def test_a_damaged_zip_is_named_as_one(home, tmp_path):
    (tmp_path / "photos.zip").write_bytes(b"PK not really")  # e.g. an upload cut short
    with pytest.raises(DatasetError, match="photos.zip is not a valid zip file .13 bytes"):
        create_dataset("photos", "folder", {"path": tmp_path / "photos.zip"})
    assert_nothing_left(home)


# --- downloads -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_download_offline_fails_fast_with_one_line_hint(home, monkeypatch):
    """The real torchvision download code runs, with every connection refused as it is on a
    machine without network (on any machine, online or not)."""
    import urllib.error
    import urllib.request

    tried = []

    def refused(request, *args, **kwargs):
        tried.append(getattr(request, "full_url", request))
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    t0 = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        create_dataset("m", "mnist")
    assert time.perf_counter() - t0 < 45
    message = str(info.value)
    assert message.startswith("could not download MNIST (no network?): ")
    assert "digits-sample" in message and "\n" not in message
    assert tried and all("mnist" in str(url).lower() for url in tried)  # torchvision's mirrors
    assert_nothing_left(home)
    assert not (home / "downloads" / "mnist").exists()


@pytest.mark.parametrize(("source", "title"),
                         [("fashion-mnist", "Fashion-MNIST"), ("kmnist", "KMNIST"),
                          ("cifar10", "CIFAR-10")])
def test_every_download_source_names_itself_when_offline(home, monkeypatch, source, title):
    def offline(spec, root):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(downloads, "_fetch", offline)
    with pytest.raises(DatasetError, match=f"could not download {title} .*digits-sample"):
        create_dataset("x", source)
    assert_nothing_left(home)


def test_download_sources_use_torchvision_splits(home, monkeypatch):
    class Fake:  # what torchvision's CIFAR10 exposes: numpy NHWC data, list targets
        classes = ["plane", "car"]

        def __init__(self, n):
            self.data = np.full((n, 32, 32, 3), 9, dtype=np.uint8)
            self.targets = [i % 2 for i in range(n)]

    monkeypatch.setattr(downloads, "_fetch", lambda spec, root: (Fake(40), Fake(10)))
    ds = create_dataset("c", "cifar10", options={"height": 32, "width": 32, "channels": 3})
    assert ds.classes == ["plane", "car"] and len(ds.split("test")) == 10
    assert len(ds.split("train")) == 36 and ds.preprocess["polarity"] == "as-is"


# --- digits-sample -----------------------------------------------------------------------------


def test_digits_sample_is_framed_like_mnist(home):
    ds = digits()
    assert ds.manifest["total"] == 1797 and ds.num_classes == 10 and ds.shape == (1, 28, 28)
    x = np.asarray(ds.images)[..., 0].astype(np.float64)
    mass = x.sum((1, 2))
    rows = (x.sum(2) @ np.arange(28)) / mass
    cols = (x.sum(1) @ np.arange(28)) / mass
    assert np.abs(rows - 14).max() <= 1.0 and np.abs(cols - 14).max() <= 1.0
    ink = x > 0.2 * 255  # the ink box (fainter anti-aliased rims may reach past it, as MNIST's)
    height = 28 - ink.any(2).argmax(1) - ink.any(2)[:, ::-1].argmax(1)
    width = 28 - ink.any(1).argmax(1) - ink.any(1)[:, ::-1].argmax(1)
    assert height.max() <= 20 and width.max() <= 20 and np.maximum(height, width).min() == 20
    assert x.max() == 255 and ds.preprocess["polarity"] == "white-on-black"
    assert np.median(np.concatenate([x[:, 0], x[:, -1]])) == 0  # white on black


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
def test_each_resize_mode_on_non_square_images(home, tmp_path, mode):
    root = tmp_path / "shapes"
    for name in ("a", "b"):
        for i in range(2):
            save(root / name / f"{i}.png", Image.new("L", (60, 40), 255))
    ds = create_dataset(mode, "folder", {"path": root},
                        {"height": 28, "width": 28, "resize_mode": mode, "val_percent": 0})
    img = np.asarray(ds.images)[0]
    assert img.shape == (28, 28, 1)
    assert np.array_equal(img, fit_image(Image.new("L", (60, 40), 255), 28, 28, 1, mode))
    content_rows = int(img[:, :, 0].any(1).sum())
    assert content_rows == {"squash": 28, "crop": 28, "fill": 20, "half_crop": 22}[mode]
    assert ds.preprocess["resize_mode"] == mode


def test_size_and_colour_for_array_sources(home):
    colour = digits("colour", height=32, width=20, channels=3)
    assert colour.shape == (3, 32, 20) and colour.images.shape == (1797, 32, 20, 3)
    px = np.asarray(colour.images[:50])
    assert np.array_equal(px[..., 0], px[..., 2])  # gray digits, repeated into RGB
    assert len(colour.preprocess["mean"]) == 3 == len(colour.preprocess["std"])


def test_grayscale_from_colour_matches_pillow(home, tmp_path):
    folder = make_class_folder(tmp_path / "animals")
    gray = create_dataset("gray", "folder", {"path": folder}, {"channels": 1})
    rgb = create_dataset("rgb", "folder", {"path": folder}, {"channels": 3})
    converted = np.stack([np.asarray(Image.fromarray(i).convert("L")) for i in rgb.images])
    assert gray.shape == (1, 28, 28)
    # Resizing before or after the conversion may differ by a rounding step, never more.
    diff = np.abs(converted.astype(int) - np.asarray(gray.images)[..., 0].astype(int))
    assert diff.max() <= 2


def test_val_and_test_percent_are_stratified(home):
    ds = digits(val_percent=20, test_percent=10)
    counts = ds.manifest["counts"]
    for c in ds.classes:
        n = counts["train"][c] + counts["val"][c] + counts["test"][c]
        assert abs(counts["val"][c] - 0.2 * n) <= 0.5 + 1e-9
        assert abs(counts["test"][c] - 0.1 * n) <= 0.5 + 1e-9
    parts = [ds.split(s) for s in ("train", "val", "test")]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1797))


def test_max_per_class_caps_each_source_split(home, tmp_path, mnist_files):
    images, labels = read_mnist(mnist_files)
    args = {**idx_args(tmp_path, images[:3000], labels[:3000]),
            **idx_args(tmp_path, images[3000:4000], labels[3000:4000], prefix="test")}
    ds = create_dataset("small", "idx", args, {"max_per_class": 30, "val_percent": 10})
    counts = ds.manifest["counts"]
    for c in ds.classes:
        assert counts["train"][c] + counts["val"][c] == 30 and counts["val"][c] == 3
        assert counts["test"][c] == 30
    again = create_dataset("small2", "idx", args, {"max_per_class": 30, "val_percent": 10})
    assert again.manifest["sha256"] == ds.manifest["sha256"]


def test_min_per_class_refuses_small_classes_by_name(home, tmp_path):
    root = make_class_folder(tmp_path / "animals", per_class=3)
    (root / "fox" / "0.png").unlink()
    (root / "fox" / "1.jpg").unlink()
    with pytest.raises(DatasetError, match="class 'fox' has 1 image; .*at least 2"):
        create_dataset("few", "folder", {"path": root})
    assert_nothing_left(home)
    with pytest.raises(DatasetError, match="'dog' has 3, 'fox' has 1"):
        create_dataset("few", "folder", {"path": root}, {"min_per_class": 4})
    assert_nothing_left(home)
    ok = create_dataset("few", "folder", {"path": root}, {"min_per_class": 1})
    assert ok.manifest["counts"]["train"]["fox"] == 1  # the one image stays in train


def test_single_class_is_refused(home, tmp_path):
    root = tmp_path / "one"
    for i in range(3):
        save(root / "cat" / f"{i}.png", Image.new("L", (5, 5), i))
    with pytest.raises(DatasetError, match="need at least 2 classes"):
        create_dataset("one", "folder", {"path": root})
    assert_nothing_left(home)


def test_add_inverted_doubles_train_and_val(home):
    plain = digits("plain", seed=3)
    inv = digits("inverted", seed=3, add_inverted=True)
    n_train, n_val = len(plain.split("train")), len(plain.split("val"))
    assert len(inv.split("train")) == 2 * n_train and len(inv.split("val")) == 2 * n_val
    assert np.array_equal(inv.split("test"), plain.split("test"))
    images, labels = np.asarray(inv.images), inv.labels
    originals = np.concatenate([plain.split("train"), plain.split("val")])
    copies = np.arange(1797, 1797 + len(originals))
    assert np.array_equal(images[copies], 255 - images[originals])
    assert np.array_equal(labels[copies], labels[originals])
    assert set(copies[:n_train]) <= set(inv.split("train").tolist())
    assert inv.preprocess["mean"][0] == pytest.approx(0.5, abs=1e-6)


def test_seed_reproduces_splits_and_changes_them(home):
    a, b, c = digits("a", seed=7), digits("b", seed=7), digits("c", seed=8)
    for split in ("train", "val"):
        assert np.array_equal(a.split(split), b.split(split))
    assert not np.array_equal(a.split("val"), c.split("val"))
    assert a.manifest["counts"] == c.manifest["counts"]  # stratified: same sizes per class


def test_options_round_trip_and_validation():
    opts = DatasetOptions(height=32, width=32, channels=3, resize_mode="fill", seed=4)
    assert DatasetOptions.from_dict(opts.to_dict()) == opts
    assert DatasetOptions.coerce(None) == DatasetOptions()
    assert DatasetOptions.coerce({"height": np.int64(20)}).height == 20
    bad = [{"channels": 2}, {"resize_mode": "zoom"}, {"val_percent": 100}, {"height": 0},
           {"val_percent": 60, "test_percent": 40}, {"min_per_class": 0},
           {"max_per_class": 1, "min_per_class": 2}, {"seed": -1}, {"add_inverted": "yes"},
           {"colour": True}]
    for options in bad:
        with pytest.raises(DatasetError):
            DatasetOptions.from_dict(options)


# --- names, listing, deleting ------------------------------------------------------------------


def test_duplicate_name_is_refused_and_keeps_the_first(home):
    first = digits("same")
    with pytest.raises(DatasetError, match="already exists"):
        digits("same")
    assert_nothing_left(home, keep=(first.id,))


def test_names_may_use_any_script(home):
    ds = create_dataset("  données 2024_v1.2 ", "digits-sample", {}, {"max_per_class": 2})
    assert ds.name == "données 2024_v1.2" and open_dataset("données 2024_v1.2").id == ds.id


@pytest.mark.parametrize("name", ["", " ", "a/b", "x" * 65, "-lead", "ds-0123abcd", "a*b"])
def test_bad_names_are_refused(home, name):
    with pytest.raises(DatasetError, match="name"):
        create_dataset(name, "digits-sample")
    assert_nothing_left(home)


def test_bad_source_and_arguments(home):
    with pytest.raises(DatasetError, match="unknown source 'nope'"):
        create_dataset("x", "nope")
    with pytest.raises(DatasetError, match="does not take path"):
        create_dataset("x", "digits-sample", {"path": "/tmp"})
    with pytest.raises(DatasetError, match="needs train_labels"):
        create_dataset("x", "idx", {"train_images": "/tmp/a"})
    assert set(SOURCES) == {"mnist", "fashion-mnist", "kmnist", "cifar10", "digits-sample",
                            "idx", "folder"}
    assert all(isinstance(v, str) and "\n" not in v for v in SOURCES.values())


def test_list_open_and_delete(home):
    a = create_dataset("mine", "digits-sample", owner="ada")
    b = create_dataset("theirs", "digits-sample", {}, {"max_per_class": 10}, owner="bob")
    listed = list_datasets()
    assert [d["name"] for d in listed] == ["theirs", "mine"]
    assert listed[0]["total"] == 100 and listed[0]["num_classes"] == 10
    assert listed[0]["owner"] == "bob" and listed[0]["source"] == "digits-sample"
    assert [d["id"] for d in list_datasets(owner="ada")] == [a.id]
    assert open_dataset("mine").id == a.id and open_dataset(b.id).name == "theirs"
    delete_dataset("mine")
    assert_nothing_left(home, keep=(b.id,))
    with pytest.raises(DatasetError, match="no dataset named 'mine'"):
        open_dataset("mine")
    with pytest.raises(DatasetError, match="no dataset named"):
        delete_dataset("mine")
    conn = store.connect(home)
    assert store.get_dataset(conn, a.id) is None
    conn.close()


# --- explorer --------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [10, 25, 50, 100])
def test_explore_pages_with_class_filter(home, page_size):
    ds = digits(val_percent=0)
    everything = explore(ds, "train", page_size=page_size)
    assert everything.total == 1797 and everything.pages == -(-1797 // page_size)
    assert len(everything.images) == page_size
    sevens = explore(ds, "train", class_index=7, page=1, page_size=page_size)
    total = ds.manifest["counts"]["train"]["7"]
    assert sevens.total == total and sevens.pages == -(-total // page_size)
    assert (sevens.labels == 7).all() and len(sevens.images) == min(page_size, total - page_size)
    assert np.array_equal(sevens.images, np.asarray(ds.images)[sevens.indexes])
    last = explore(ds, "train", class_index=7, page=sevens.pages - 1, page_size=page_size)
    assert len(last.images) == total - (sevens.pages - 1) * page_size
    beyond = explore(ds, "train", class_index=7, page=sevens.pages, page_size=page_size)
    assert beyond.images.shape == (0, 28, 28, 1) and beyond.total == total


def test_explore_refuses_bad_arguments(home):
    ds = digits(max_per_class=5)
    with pytest.raises(ValueError, match="page_size"):
        explore(ds, page_size=20)
    with pytest.raises(ValueError, match="class_index"):
        explore(ds, class_index=10)
    with pytest.raises(ValueError, match="split"):
        explore(ds, split="holdout")
    assert explore(ds, split="test").total == 0


def test_stale_build_folders_are_cleaned_but_fresh_ones_kept(home):
    stale = home / "datasets" / ".tmp-ds-00000000"
    fresh = home / "datasets" / ".tmp-ds-11111111"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "images.npy").write_bytes(b"partial")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    ds = digits(max_per_class=2)
    assert sorted(p.name for p in (home / "datasets").iterdir()) == sorted([ds.id, fresh.name])
