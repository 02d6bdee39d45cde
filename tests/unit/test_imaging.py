"""engine.images.loading: reading any image and fitting it the DIGITS way."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.images.loading import (
    RESIZE_MODES,
    ImageError,
    convert_channels,
    fit_array,
    fit_batch,
    fit_image,
    load_image,
    resized_size,
    to_channels,
)


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def white(width: int, height: int) -> Image.Image:
    return Image.new("L", (width, height), 255)


def content_box(a: np.ndarray) -> tuple[int, int]:
    """(rows, cols) holding image rather than black padding; the image itself is all white."""
    rows = np.flatnonzero(a[:, :, 0].any(axis=1))
    cols = np.flatnonzero(a[:, :, 0].any(axis=0))
    box = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    assert box.min() == 255 and a.sum() == box.sum()  # padding is black and only outside
    return len(rows), len(cols)


# --- load_image --------------------------------------------------------------------------------


def test_load_image_from_path_bytes_and_stream(tmp_path):
    img = Image.new("RGB", (7, 5), (10, 20, 30))
    data = encode(img)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for src in (path, str(path), data, io.BytesIO(data)):
        loaded = load_image(src)
        assert loaded.size == (7, 5)
        assert loaded.getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("data", [b"", b"hello, not an image", encode(white(9, 9))[:40]])
def test_load_image_refuses_non_images(data):
    with pytest.raises(ImageError, match="cannot read image"):
        load_image(data)


def test_load_image_missing_file_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_load_image_applies_exif_rotation():
    img = Image.new("L", (30, 10), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    loaded = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert loaded.size == (10, 30)


# --- modes -------------------------------------------------------------------------------------


def test_transparency_composites_onto_white():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 0, 255))
    out = np.asarray(to_channels(rgba, 3))
    assert tuple(out[0, 0]) == (0, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)
    la = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(to_channels(la, 1)).min() == 255


def test_palette_with_transparency_and_cmyk_and_bilevel():
    pal = Image.new("P", (3, 3), 1)
    pal.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    pal.putpixel((0, 0), 0)
    out = np.asarray(to_channels(load_image(encode(pal)), 3))
    assert tuple(out[0, 0]) == (255, 255, 255)  # transparent index
    assert tuple(out[1, 1]) == (200, 0, 0)
    cmyk = Image.new("CMYK", (3, 3), (0, 255, 255, 0))  # pure red
    red = np.asarray(to_channels(load_image(encode(cmyk, "JPEG", quality=100)), 3))
    assert red[1, 1, 0] > 240 and red[1, 1, 1] < 15
    bilevel = Image.new("1", (3, 3), 1)
    assert np.asarray(to_channels(bilevel, 1)).min() == 255


def test_sixteen_bit_and_float_images_scale_to_eight_bit():
    wide = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    img = load_image(encode(Image.fromarray(wide)))
    assert np.asarray(to_channels(img, 1)).tolist() == [[0, 255], [128, 1]]
    unit = Image.fromarray(np.array([[0.0, 1.0]], dtype=np.float32), "F")
    assert np.asarray(to_channels(unit, 1)).tolist() == [[0, 255]]


def test_gray_to_rgb_and_back():
    gray = Image.new("L", (2, 2), 77)
    assert fit_image(gray, 2, 2, 3, "squash").tolist() == [[[77] * 3] * 2] * 2
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    assert fit_image(rgb, 2, 2, 1, "squash")[0, 0, 0] == Image.new(
        "RGB", (1, 1), (255, 0, 0)).convert("L").getpixel((0, 0))


def test_vectorised_channel_conversion_matches_pillow():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    gray = convert_channels(batch, 1)
    for i in range(5):
        expected = np.asarray(Image.fromarray(batch[i]).convert("L"))
        assert np.array_equal(gray[i, :, :, 0], expected)
    assert np.array_equal(convert_channels(gray, 3)[..., 2], gray[..., 0])


# --- resize modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "rows", "cols"),
    [
        ("squash", 28, 28),  # stretched: everything is image
        ("crop", 28, 28),  # 42 x 28, cut to 28 x 28
        ("fill", 20, 28),  # 28 x 19 grown to 20 so the padding is even: 4 + 4 black rows
        ("half_crop", 22, 28),  # 34 x 22, width cut to 28, 3 + 3 black rows
    ],
)
def test_resize_modes_on_a_wide_image(mode, rows, cols):
    out = fit_image(white(60, 40), 28, 28, 1, mode)
    assert out.shape == (28, 28, 1) and out.dtype == np.uint8
    assert content_box(out) == (rows, cols)
    if rows < 28:
        pad = (28 - rows) // 2
        assert out[:pad].max() == 0 and out[-pad:].max() == 0  # black, centred


@pytest.mark.parametrize(
    ("mode", "rows", "cols"),
    [("squash", 20, 40), ("crop", 20, 40), ("fill", 20, 20), ("half_crop", 20, 28)],
)
def test_resize_modes_to_a_wide_target(mode, rows, cols):
    out = fit_image(white(50, 50), 20, 40, 3, mode)
    assert out.shape == (20, 40, 3)
    assert content_box(out) == (rows, cols)
    if cols < 40:
        pad = (40 - cols) // 2
        assert out[:, :pad].max() == 0 and out[:, -pad:].max() == 0


def test_resized_size_follows_digits():
    assert resized_size(40, 60, 28, 28, "crop") == (28, 42)
    assert resized_size(40, 60, 28, 28, "fill") == (20, 28)
    assert resized_size(60, 40, 28, 28, "fill") == (28, 20)
    assert resized_size(40, 60, 28, 28, "half_crop") == (22, 34)
    assert resized_size(50, 50, 20, 20, "fill") == (20, 20)


def test_crop_keeps_the_centre():
    a = np.zeros((10, 30), dtype=np.uint8)
    a[:, 10:20] = 255  # a bright band in the middle third
    out = fit_array(a, 10, 10, 1, "crop")
    assert out.min() == 255


def test_fit_batch_skips_resizing_at_native_size_and_matches_fit_array():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (4, 12, 9), dtype=np.uint8)
    same = fit_batch(batch, 12, 9, 1, "squash")
    assert np.shares_memory(same, batch)
    for mode in RESIZE_MODES:
        resized = fit_batch(batch, 8, 8, 3, mode)
        assert resized.shape == (4, 8, 8, 3)
        assert np.array_equal(resized[2], fit_array(batch[2], 8, 8, 3, mode))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="resize_mode"):
        fit_image(white(4, 4), 2, 2, 1, "stretch")
    with pytest.raises(ValueError, match="channels"):
        fit_image(white(4, 4), 2, 2, 4, "squash")
    with pytest.raises(ValueError, match="positive"):
        fit_image(white(4, 4), 0, 2, 1, "squash")
