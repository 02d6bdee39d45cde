"""Reading images and fitting them to a network's input, the same way everywhere.

Datasets, training and inference all go through fit_image(), so an image is resized and
converted identically when a dataset is built and when a model is asked about it later.
Pure numpy/Pillow on purpose: no torch import, cheap to load in any process.

Resize modes follow NVIDIA DIGITS (digits/utils/image.py, resize_image):

- squash:    resize to height x width, ignoring the aspect ratio.
- crop:      keep the aspect ratio, resize to cover the target, cut the overhang from the
             centre.
- fill:      keep the aspect ratio, resize to fit inside the target, pad the rest.
- half_crop: DIGITS' "half crop, half fill": resize by the mean of the two ratios, then cut the
             dimension that overhangs and pad the one that falls short.

Padding is black (zeros), not DIGITS' random noise: the same image then always gives the same
input, so training, inference, ONNX and TensorRT agree bit for bit.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.state import limits

RESIZE_MODES: tuple[str, ...] = ("squash", "crop", "fill", "half_crop")
CHANNELS: tuple[int, ...] = (1, 3)

_RESAMPLE = Image.Resampling.BILINEAR  # antialiased when shrinking, as Pillow does for resize()
_WIDE_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


class ImageError(ValueError):
    """The data is not an image Pillow can read; the message says which and why."""


def load_image(src: str | os.PathLike | bytes | BinaryIO) -> Image.Image:
    """Decode an image fully (so errors surface here, not later) and apply its EXIF rotation."""
    label = _describe(src)
    try:
        if isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                img = _decode(f)
        elif isinstance(src, (bytes, bytearray, memoryview)):
            img = _decode(io.BytesIO(bytes(src)))
        else:
            img = _decode(src)
    except FileNotFoundError:
        raise ImageError(f"cannot read image {label}: file not found") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read image {label}: it is a folder") from None
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image {label}: not an image Pillow can identify") from None
    except ImageError as e:
        raise ImageError(f"cannot read image {label}: {e}") from None
    except Exception as e:  # decoders of malformed files raise anything
        raise ImageError(f"cannot read image {label}: {e or type(e).__name__}") from None
    return img


def _decode(f: BinaryIO) -> Image.Image:
    with warnings.catch_warnings():  # our own limit below says it in one line
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(f)
    check_pixels(img)
    img.load()
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # a broken EXIF block must not lose a good image
        pass
    return img


def check_pixels(img: Image.Image) -> None:
    """Refuse an image whose header declares more pixels than the limit, before decoding it
    (a 560 KB PNG can declare 12000 x 12000 and cost gigabytes once decoded)."""
    cap = limits.IMAGE_PIXELS.value
    w, h = img.size
    if w * h > cap:
        raise ImageError(f"{w} x {h} = {w * h / 1e6:.0f} megapixels, above the "
                         f"{cap / 1e6:g}-megapixel limit ({limits.IMAGE_PIXELS.name})")


def _describe(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return repr(Path(src).name)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"({len(src)} bytes)"
    return repr(getattr(src, "name", "(stream)"))


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """An 8-bit "L" (channels=1) or "RGB" (channels=3) image from any Pillow mode.

    Transparent pixels are composited onto white, as DIGITS did; 16-bit and float images are
    scaled to 0..255; palette, CMYK, YCbCr and 1-bit images convert the usual Pillow way.
    """
    _check_channels(channels)
    target = "L" if channels == 1 else "RGB"
    if img.mode in _WIDE_INT_MODES or img.mode == "F":
        img = _to_8bit(img)
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode == target:
        return img
    try:
        return img.convert(target)
    except ValueError as e:
        raise ImageError(f"cannot convert a {img.mode} image to {target}: {e}") from None


def _to_8bit(img: Image.Image) -> Image.Image:
    a = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
    elif a.size and a.max() > 255:
        a = a / 257.0  # 16-bit range 0..65535 onto 0..255
    return Image.fromarray(np.clip(np.nan_to_num(a) + 0.5, 0, 255).astype(np.uint8), "L")


def fit_image(
    img: Image.Image, height: int, width: int, channels: int, resize_mode: str = "squash"
) -> np.ndarray:
    """The image as a uint8 height x width x channels array, resized the DIGITS way."""
    _check_geometry(height, width, resize_mode)
    img = to_channels(img, channels)
    new_h, new_w = resized_size(img.height, img.width, height, width, resize_mode)
    if (img.height, img.width) != (new_h, new_w):
        img = img.resize((new_w, new_h), _RESAMPLE)
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return np.ascontiguousarray(crop_or_pad(a, height, width))


def fit_array(
    arr: np.ndarray, height: int, width: int, channels: int, resize_mode: str = "squash"
) -> np.ndarray:
    """fit_image() for a uint8 H x W or H x W x C (C = 1, 3 or 4) array."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise ImageError(f"expected a uint8 array, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"expected an H x W or H x W x 1/3/4 array, got shape {a.shape}")
    return fit_image(Image.fromarray(a), height, width, channels, resize_mode)


def fit_batch(
    images: np.ndarray, height: int, width: int, channels: int, resize_mode: str = "squash"
) -> np.ndarray:
    """fit_array() over a uint8 N x H x W (x C) batch, skipping the resize when sizes match.

    Channel changes alone are vectorised (and equal to Pillow's conversion), so a dataset kept
    at its native size costs no per-image work.
    """
    _check_geometry(height, width, resize_mode)
    _check_channels(channels)
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[:, :, :, None]
    if a.ndim != 4 or a.shape[3] not in CHANNELS or a.dtype != np.uint8:
        raise ImageError(f"expected a uint8 N x H x W x (1|3) batch, got {a.dtype} {a.shape}")
    if a.shape[1:3] == (height, width):
        return convert_channels(a, channels)
    out = np.empty((len(a), height, width, channels), dtype=np.uint8)
    for i, one in enumerate(a):
        out[i] = fit_array(one, height, width, channels, resize_mode)
    return out


def convert_channels(batch: np.ndarray, channels: int) -> np.ndarray:
    """N x H x W x C uint8 to `channels` channels, matching Pillow's L <-> RGB conversion."""
    c = batch.shape[-1]
    if c == channels:
        return batch
    if c == 1 and channels == 3:
        return np.repeat(batch, 3, axis=-1)
    if c == 3 and channels == 1:
        # Pillow's ITU-R 601-2 luma in fixed point: (R*19595 + G*38470 + B*7471 + 2^15) >> 16.
        out = np.empty(batch.shape[:-1] + (1,), dtype=np.uint8)
        for start in range(0, len(batch), 4096):
            x = batch[start:start + 4096].astype(np.uint32)
            luma = x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000
            out[start:start + 4096, ..., 0] = (luma >> 16).astype(np.uint8)
        return out
    raise ImageError(f"cannot convert {c} channels to {channels}")


def resized_size(h: int, w: int, height: int, width: int, resize_mode: str) -> tuple[int, int]:
    """The (height, width) DIGITS resizes an h x w image to before cropping or padding.

    Like DIGITS, a dimension that will be padded is grown by one pixel when that makes the
    padding even, so both sides get the same amount.
    """
    height_ratio, width_ratio = h / height, w / width
    if resize_mode == "squash" or height_ratio == width_ratio:
        return height, width
    if resize_mode == "crop":
        ratio = min(height_ratio, width_ratio)
    elif resize_mode == "fill":
        ratio = max(height_ratio, width_ratio)
    elif resize_mode == "half_crop":
        ratio = (height_ratio + width_ratio) / 2.0
    else:
        raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, "
                         f"not {resize_mode!r}")
    new_h, new_w = max(1, round(h / ratio)), max(1, round(w / ratio))
    if resize_mode != "crop":
        if width_ratio > height_ratio and (height - new_h) % 2 == 1:
            new_h += 1
        elif width_ratio < height_ratio and (width - new_w) % 2 == 1:
            new_w += 1
    return new_h, new_w


def crop_or_pad(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop each overhanging dimension and zero-pad each short one to height x width.

    An odd overhang loses its extra pixel at the start, as DIGITS' round((have - size) / 2).
    """
    for axis, size in ((0, height), (1, width)):
        have = a.shape[axis]
        if have > size:
            start = (have - size + 1) // 2
            a = a[start:start + size] if axis == 0 else a[:, start:start + size]
        elif have < size:
            before = (size - have) // 2
            pad = [(0, 0)] * a.ndim
            pad[axis] = (before, size - have - before)
            a = np.pad(a, pad)
    return a


def _check_geometry(height: int, width: int, resize_mode: str) -> None:
    sizes = (height, width)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
               for s in sizes):
        raise ValueError(f"height and width must be positive integers, got {height} x {width}")
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, "
                         f"not {resize_mode!r}")


def _check_channels(channels: int) -> None:
    if channels not in CHANNELS:
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels!r}")
