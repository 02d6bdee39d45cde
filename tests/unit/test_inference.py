"""The predictor and the canvas normalization, on real MNIST digits made hard."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from engine.images.framing import EmptyDrawing, normalize_digit
from engine.inference.predictor import Predictor, resolve_checkpoint
from testkit.mnist import read_idx_gz


@pytest.fixture(scope="module")
def predictor(mnist_lenet) -> Predictor:
    return Predictor(mnist_lenet[0])


@pytest.fixture(scope="module")
def held_out(mnist_files):
    images, labels = (read_idx_gz(p) for p in mnist_files)
    return images[8000:8200], labels[8000:8200]


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return float((ys * a).sum() / a.sum()), float((xs * a).sum() / a.sum())


def ink_box(a: np.ndarray, level: int = 40) -> tuple[int, int]:
    rows, cols = np.flatnonzero((a > level).any(1)), np.flatnonzero((a > level).any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


# --- ways to make a digit hard (each returns a PIL image of any size) ---------------------------

def shifted(d):  # off-centre on a bigger canvas
    canvas = np.zeros((60, 60), np.uint8)
    canvas[2:30, 30:58] = d
    return Image.fromarray(canvas)


def small(d):  # drawn small in a corner of a big canvas
    canvas = np.zeros((200, 200), np.uint8)
    canvas[150:164, 20:34] = np.asarray(Image.fromarray(d).resize((14, 14), Image.BILINEAR))
    return Image.fromarray(canvas)


def large(d):
    return Image.fromarray(d).resize((280, 280), Image.BILINEAR)


def thick(d):  # drawn with a thick marker on a big canvas
    return Image.fromarray(d).resize((280, 280), Image.BILINEAR).filter(ImageFilter.MaxFilter(9))


def paper(d):  # dark ink on light paper, as a photo or the "paper" canvas
    return Image.fromarray(255 - d).convert("RGB")


@pytest.mark.parametrize("make", [shifted, small, large, thick, paper])
def test_predictor_on_hard_digits(predictor, held_out, make):
    images, labels = held_out
    preds = predictor.predict([make(d) for d in images], digit=True)
    accuracy = np.mean([p.label == str(y) for p, y in zip(preds, labels, strict=True)])
    assert accuracy >= 0.9, f"{make.__name__}: {accuracy:.3f}"


def test_plain_images_without_framing(predictor, held_out):
    images, labels = held_out
    preds = predictor.predict([Image.fromarray(d) for d in images], top_k=3)
    assert np.mean([p.label == str(y) for p, y in zip(preds, labels, strict=True)]) >= 0.95
    p = preds[0]
    assert len(p.top) == 3 and p.top[0][1] >= p.top[1][1] >= p.top[2][1]
    assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert p.input.shape == (28, 28, 1) and p.input.dtype == np.uint8
    assert p.to_dict()["label"] == p.label


def test_inverted_digit_is_classified_via_polarity(predictor, held_out):
    images, labels = held_out
    inverted = [Image.fromarray(255 - d) for d in images[:100]]
    auto = predictor.predict(inverted, polarity="auto")
    as_is = predictor.predict(inverted, polarity="as-is")
    acc = lambda ps: np.mean([p.label == str(y) for p, y in zip(ps, labels, strict=False)])  # noqa: E731
    assert acc(auto) >= 0.95 and acc(as_is) < 0.5


def test_predictor_reads_files_and_bytes(predictor, held_out, tmp_path):
    d = held_out[0][0]
    path = tmp_path / "digit.png"
    Image.fromarray(d).save(path)
    a = predictor.predict(str(path))[0]
    b = predictor.predict(path.read_bytes())[0]
    assert a.label == b.label == str(held_out[1][0])


def test_resolve_checkpoint(mnist_lenet, tmp_path):
    run_dir = mnist_lenet[0]
    assert resolve_checkpoint(run_dir).name == "best.pt"
    with pytest.raises(FileNotFoundError):
        resolve_checkpoint(tmp_path)


# --- canvas normalization ---------------------------------------------------------------------

def stroke_digit(size: int, box: tuple[int, int, int, int], width: int, ink: int, bg: int):
    """A '7' drawn with lines on a canvas of the given size."""
    from PIL import ImageDraw

    img = Image.new("L", (size, size), bg)
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(img)
    draw.line([(x0, y0), (x1, y0), ((x0 + x1) // 2, y1)], fill=ink, width=width)
    return img


@pytest.mark.parametrize("case", [
    dict(size=280, box=(40, 40, 240, 240), width=18, ink=255, bg=0),   # large
    dict(size=280, box=(10, 200, 50, 260), width=4, ink=255, bg=0),    # small, off-centre
    dict(size=280, box=(150, 20, 270, 120), width=40, ink=255, bg=0),  # thick, off-centre
    dict(size=280, box=(60, 60, 220, 220), width=2, ink=255, bg=0),    # thin
    dict(size=280, box=(60, 60, 220, 220), width=16, ink=0, bg=255),   # paper style
])
def test_normalize_digit_frames_like_mnist(case):
    out = normalize_digit(stroke_digit(**case))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    cy, cx = centre_of_mass(out.astype(float))
    assert abs(cy - 14) <= 1.5 and abs(cx - 14) <= 1.5  # up to the frame edge for a "7"
    h, w = ink_box(out, level=51)
    assert max(h, w) == 20 and min(h, w) <= 20  # fitted in 20x20, aspect kept
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # white on black


def test_normalize_keeps_aspect_ratio():
    img = Image.new("L", (280, 280), 0)
    img.paste(255, (130, 40, 150, 240))  # a tall bar: 20 wide, 200 high
    out = normalize_digit(img)
    h, w = ink_box(out, level=51)
    assert h == 20 and w <= 4


def test_empty_canvas_says_draw_something():
    with pytest.raises(EmptyDrawing, match="draw something"):
        normalize_digit(np.zeros((280, 280), np.uint8))
    with pytest.raises(EmptyDrawing):
        normalize_digit(np.full((280, 280), 255, np.uint8))  # blank paper


def test_transparent_canvas_rgba():
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[50:150, 95:105] = (255, 255, 255, 255)  # white ink strokes on a transparent canvas
    out = normalize_digit(rgba)
    assert out.max() == 255 and ink_box(out, 51)[0] == 20
