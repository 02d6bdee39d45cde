"""Digit framing (engine/images/framing.py): clean drawings and MNIST pass unchanged, photos of
digits are cleaned and cropped to the digit, and polarity says what it decided and why."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.images.framing import EmptyDrawing, Framed, clean_page, frame_digit, normalize_digit
from engine.images.photo_digits import photo_digit, photo_set
from testkit.mnist import read_idx_gz


def seven(size: int = 280, ink: int = 255, paper: int = 0, width: int = 18,
          box: tuple[int, int, int, int] = (60, 50, 220, 230)) -> Image.Image:
    """A '7' drawn with a brush, as on the canvas."""
    img = Image.new("L", (size, size), paper)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(img).line([(x0, y0), (x1, y0), ((x0 + x1) // 2, y1)], fill=ink, width=width,
                             joint="curve")
    return img


def ink_box(a: np.ndarray, level: float) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero((a > level).any(1)), np.flatnonzero((a > level).any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def best_shift_diff(out: np.ndarray, ref: np.ndarray) -> int:
    """The largest pixel difference between out and ref, at the best shift of at most 1 px."""
    out, ref = out.astype(int), ref.astype(int)
    return min(int(np.abs(np.roll(np.roll(out, dy, 0), dx, 1) - ref).max())
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.fixture(scope="module")
def mnist_held_out(mnist_files):
    images, labels = (read_idx_gz(p) for p in mnist_files)
    return images[8000:], labels[8000:]


# --- clean inputs pass unchanged -------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    dict(), dict(width=4), dict(width=40), dict(box=(10, 180, 60, 260), width=6),
    dict(ink=0, paper=255),
])
def test_clean_canvas_drawing_is_not_altered_by_cleaning(kwargs):
    img = seven(**kwargs)
    gray = np.asarray(img, np.float32)
    cleaned, paper, ink, dark = clean_page(gray)
    ink_up = 255 - gray if dark else gray
    assert dark == (kwargs.get("ink", 255) == 0)
    assert np.abs(cleaned.astype(int) - ink_up).max() <= 1  # cleaning is the identity
    assert paper == kwargs.get("paper", 0)
    framed = frame_digit(img)
    assert framed.box == ink_box(ink_up, 0.2 * 255)
    assert framed.cleaned.shape == gray.shape


def test_mnist_digits_come_out_as_they_went_in(mnist_held_out):
    images = mnist_held_out[0][:200]
    diffs = [best_shift_diff(normalize_digit(d), d) for d in images]
    unchanged = sum(d <= 3 for d in diffs)
    assert unchanged >= 196, sorted(diffs)[-10:]  # at most a pixel's shift, <= 3 grey levels


def test_mnist_as_is_and_auto_agree_on_white_on_black(mnist_held_out):
    d = mnist_held_out[0][0]
    auto, as_is = frame_digit(d), frame_digit(d, polarity="as-is")
    assert not auto.inverted and not as_is.inverted and not auto.dark_ink
    assert np.array_equal(auto.image, as_is.image)
    assert "kept as white on black" in auto.reason


# --- photos ---------------------------------------------------------------------------------


def test_photo_like_digits_are_cropped_to_the_digit(mnist_held_out):
    images, labels = mnist_held_out
    photos = photo_set(images, labels, 120, seed=3)
    errors = []
    for p in photos:
        framed = frame_digit(p.image())
        errors.append(max(abs(a - b) for a, b in zip(framed.box, p.box, strict=True)))
        assert framed.dark_ink and framed.inverted
        assert framed.cleaned.shape == p.size
    errors = np.array(errors)
    assert np.median(errors) <= 2 and np.mean(errors <= 4) >= 0.93, np.sort(errors)[-10:]


def uneven_page(size=(240, 320), seed=0) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A dark '7' on paper lit from one side (bright left, dim right) with grain: the page
    that the old framing squeezed whole into 20x20."""
    rng = np.random.default_rng(seed)
    h, w = size
    light = np.linspace(240, 110, w)[None, :] * np.ones((h, 1))
    ink = np.asarray(seven(size=max(h, w), box=(150, 80, 230, 200), width=10), np.float32)
    ink = ink[:h, :w] / 255
    gray = light * (0.9 * (1 - ink) + 0.15 * ink) + rng.normal(0, 4, (h, w))
    img = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
    return img, ink_box(ink, 0.5)


def test_uneven_light_is_flattened():
    img, known = uneven_page()
    framed = frame_digit(img)
    assert max(abs(a - b) for a, b in zip(framed.box, known, strict=True)) <= 3
    paper = np.ones(framed.cleaned.shape, bool)
    top, left, bottom, right = framed.box
    paper[max(0, top - 8):bottom + 8, max(0, left - 8):right + 8] = False
    assert np.mean(framed.cleaned[paper] == 0) > 0.995  # the paper became black, dim side too
    assert framed.image[:, 0].max() == 0 and framed.image.max() == 255


def test_specks_away_from_the_digit_are_dropped():
    img, known = uneven_page(seed=1)
    a = np.asarray(img).copy()
    a[20:23, 20:23] = 30  # dirt in a corner
    a[200:202, 290:293] = 40
    framed = frame_digit(Image.fromarray(a))
    assert max(abs(x - y) for x, y in zip(framed.box, known, strict=True)) <= 3
    assert framed.cleaned[15:28, 15:28].max() == 0


def test_big_photo_box_is_in_original_pixels():
    img, known = uneven_page()
    big = img.resize((img.width * 5, img.height * 5), Image.Resampling.BILINEAR)  # 1600 px
    framed = frame_digit(big)
    assert framed.cleaned.shape == (big.height, big.width)
    assert max(abs(a - 5 * b) for a, b in zip(framed.box, known, strict=True)) <= 15


def test_jpeg_photo_round_trip_through_bytes(mnist_held_out):
    p = photo_digit(mnist_held_out[0][5], int(mnist_held_out[1][5]), np.random.default_rng(7))
    framed = frame_digit(Image.open(io.BytesIO(p.jpeg)))
    assert isinstance(framed, Framed) and framed.image.shape == (28, 28)


# --- polarity -------------------------------------------------------------------------------


def test_polarity_auto_as_is_and_invert_on_dark_ink():
    img, _ = uneven_page()
    auto = frame_digit(img, polarity="auto")
    as_is = frame_digit(img, polarity="as-is")
    invert = frame_digit(img, polarity="invert")
    assert auto.inverted and invert.inverted and not as_is.inverted
    assert "dark ink" in auto.reason and "inverted to white on black" in auto.reason
    assert "as-is" in as_is.reason and "no inversion" in as_is.reason
    # as-is: the network sees the photo's own polarity, dark ink on a white frame
    assert as_is.image[0].min() == 255 and as_is.image.min() == 0
    assert np.array_equal(as_is.image, 255 - auto.image)
    assert np.array_equal(auto.box, as_is.box)


def test_invert_flips_light_ink():
    framed = frame_digit(seven(), polarity="invert")
    assert framed.inverted and not framed.dark_ink
    assert framed.image[0].min() == 255 and framed.image.min() == 0


def test_bad_polarity_and_blank_pages():
    with pytest.raises(ValueError, match="polarity must be"):
        frame_digit(seven(), polarity="upside-down")
    rng = np.random.default_rng(0)
    noisy_paper = np.clip(180 + rng.normal(0, 5, (200, 200)), 0, 255).astype(np.uint8)
    with pytest.raises(EmptyDrawing, match="draw something"):
        frame_digit(noisy_paper)
    with pytest.raises(EmptyDrawing):
        frame_digit(np.full((50, 50), 128, np.uint8))


def test_clean_false_frames_without_cleaning():
    scan = np.zeros((8, 8), np.uint8)
    scan[1:7, 3:5] = 255  # a bar that covers much of a tiny scan
    out = normalize_digit(scan, "as-is", clean=False)
    assert ink_box(out, 51)[2] - ink_box(out, 51)[0] == 20 and out.max() == 255


def test_a_digit_cut_close_to_its_ink_is_framed_like_its_padded_self():
    """An 8x8 scan scaled up fills its image: its ink, not its paper, is the majority of
    pixels near the border's level, and the fitted paper took it all for paper ("no ink")."""
    from sklearn.datasets import load_digits

    scans = load_digits().images[:300]
    for size in (8, 28, 64):
        diffs = []
        for scan in scans:
            tight = Image.fromarray(np.clip(scan * 16, 0, 255).astype(np.uint8)).resize(
                (size, size), Image.Resampling.BICUBIC)
            padded = np.pad(np.asarray(tight), size // 2)  # the same digit with paper round it
            out, ref = normalize_digit(tight), normalize_digit(padded)
            assert out.max() == 255 and out[0].max() == 0  # white ink framed on black
            diffs.append(np.abs(out.astype(int) - ref.astype(int)).mean())
        assert np.median(diffs) < 12, size  # the same digit (a blank frame would be ~35)
    dark = 255 - np.asarray(Image.fromarray((scans[0] * 16).astype(np.uint8)).resize((28, 28)))
    framed = frame_digit(dark)
    assert framed.dark_ink and framed.inverted and framed.image[0].max() == 0


@pytest.mark.parametrize("page", ["gradient", "noise", "flat"])
def test_a_small_page_without_a_digit_stays_empty(page):
    """The close-crop reading refuses a split that is not paper round ink."""
    rng = np.random.default_rng(0)
    pages = {"gradient": np.tile(np.linspace(0, 255, 28), (28, 1)),
             "noise": np.clip(128 + 40 * rng.standard_normal((28, 28)), 0, 255),
             "flat": np.full((28, 28), 200.0)}
    with pytest.raises(EmptyDrawing):
        frame_digit(pages[page].astype(np.float32))


def test_otsu_splits_values_too_close_for_float32_bins():
    from engine.images.framing import otsu_threshold

    values = np.array([253.48854, 253.49173], dtype=np.float32)  # from a 64x64 scaled scan
    assert 253.48 <= otsu_threshold(values) <= 253.5
    assert otsu_threshold(np.full(5, 7.0, np.float32)) == 7.0
