"""Turning a drawing or a photo of a digit into what an MNIST-trained network expects.

MNIST digits were made by fitting the ink into a 20x20 box (keeping aspect ratio) and centring
its centre of mass in a 28x28 frame, white ink on black. frame_digit() does the same to a canvas
drawing, a scan or a photo, cleaning the page first so that only the ink is framed:

1. levels: which side is ink (dark on light paper, or light on dark) and how bright the paper
   and the ink are, judged on a lightly blurred copy;
2. flatten: a smooth background (a quadratic surface fitted to the paper pixels, ink excluded)
   is subtracted, so uneven light and gradients leave the paper flat;
3. stretch: paper -> 0, ink -> 255, the paper's noise floor clipped to 0;
4. specks: connected ink components much smaller than the largest are dropped;
5. frame: crop to the ink, fit in 20x20 keeping the aspect ratio, centre by centre of mass in
   28x28; then the polarity the caller asked for ("auto": white on black, "as-is": the image's
   own, "invert": the opposite of the image's own).

A clean drawing (flat paper, no noise) passes steps 1-4 unchanged, so canvas drawings and MNIST
digits are framed as they always were. This module is the one place digit framing lives: the
predictor, the CLI, bundles and the offline sample dataset all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

INK_THRESHOLD = 0.2  # fraction of full-scale ink that counts as ink for the crop and specks
POLARITIES = ("auto", "as-is", "invert")
WORK_SIZE = 1024  # larger images are cleaned at this size (long side), then scaled back
BLUR_FROM = 100  # images at least this large (long side) get the light blur (sigma 1 px)
MIN_CONTRAST = 16.0  # ink must stand this far (0..255) above the paper to count
NOISE_SIGMAS = 3.0  # paper noise floor: this many robust standard deviations above the paper
SPECK_FRACTION = 0.05  # components under this fraction of the largest one are specks...
SPECK_MIN_PAGE = 64  # ...on pages this large (long side): an MNIST digit's stray pixel is ink
FLAT_RANGE = 4.0  # a fitted background spanning less than this (0..255) counts as flat
TIGHT_BORDER = 0.3  # a tight crop's paper holds all but this fraction of the border...
TIGHT_CONTRAST = 4 * MIN_CONTRAST  # ...and its ink stands this far clear of the paper


class EmptyDrawing(ValueError):
    """No ink was found: there is nothing to classify."""

    def __init__(self) -> None:
        super().__init__("draw something: the image has no ink to classify")


@dataclass(frozen=True)
class Framed:
    """A digit framed like MNIST, with what the framing saw and decided.

    image: uint8 size x size, what the network sees (in the polarity asked for);
    cleaned: uint8, the original's size, ink 255 on paper 0 after flattening, stretching and
    speck removal (always white on black, whatever the polarity);
    box: (top, left, bottom, right) of the ink in the original's pixels, bottom/right exclusive;
    inverted: whether the image was inverted relative to the original;
    reason: one sentence on the polarity decision (paper and ink levels).
    """

    image: np.ndarray
    cleaned: np.ndarray
    box: tuple[int, int, int, int]
    inverted: bool
    reason: str
    paper_level: float
    ink_level: float
    dark_ink: bool


def to_gray(image: np.ndarray | Image.Image) -> np.ndarray:
    """A float32 HxW array in 0..255; alpha (as from a canvas) composites onto the background."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            return _alpha_gray(np.asarray(image, dtype=np.float32))
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            a = np.asarray(image, dtype=np.float32)
            return a / 257.0 if a.size and a.max() > 255 else a
        return np.asarray(image.convert("L"), dtype=np.float32)
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        return a[:, :, 0].astype(np.float32)
    if a.ndim == 3 and a.shape[2] == 4:
        return _alpha_gray(a.astype(np.float32))
    if a.ndim == 3 and a.shape[2] == 3:
        return a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    raise ValueError(f"expected a gray, RGB or RGBA image, got an array of shape {a.shape}")


def _alpha_gray(rgba: np.ndarray) -> np.ndarray:
    gray = rgba[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[:, :, 3] / 255.0
    if alpha.min() >= 1.0:
        return gray
    # Transparent pixels take the background level implied by the opaque ones' opposite.
    opaque = alpha > 0.5
    ink_level = gray[opaque].mean() if opaque.any() else 255.0
    background = 0.0 if ink_level > 127 else 255.0
    return gray * alpha + background * (1 - alpha)


def has_light_background(gray: np.ndarray) -> bool:
    """Dark ink on light paper? Judged by the border, where the background is."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) > 127


def apply_polarity(gray: np.ndarray, polarity: str) -> np.ndarray:
    """Make ink bright on dark (for whole images, not framed digits): 'auto' inverts
    light-background images, 'invert' always, 'as-is' never."""
    _check_polarity(polarity)
    if polarity == "invert" or (polarity == "auto" and has_light_background(gray)):
        return 255.0 - gray
    return gray


def _check_polarity(polarity: str) -> None:
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be auto, invert or as-is, not {polarity!r}")


# --- the pipeline ---------------------------------------------------------------------------


def frame_digit(image: np.ndarray | Image.Image, polarity: str = "auto", size: int = 28,
                box: int = 20, clean: bool = True) -> Framed:
    """Clean the page, crop to the ink and frame it like MNIST; EmptyDrawing if no ink.

    clean=False skips the cleaning for images known to be clean white ink on a black (0)
    background, such as a dataset's scans."""
    _check_polarity(polarity)
    gray = to_gray(image)
    if gray.size == 0:
        raise EmptyDrawing()
    work, shrink = _working_copy(gray)
    if clean:
        cleaned, paper, ink, dark_ink = clean_page(work)
    else:
        if float(work.max()) < MIN_CONTRAST:
            raise EmptyDrawing()
        cleaned = np.clip(work + 0.5, 0, 255).astype(np.uint8)
        paper, ink, dark_ink = 0.0, float(work.max()), False
    top, left, bottom, right = _ink_box(cleaned)
    framed = _fit_and_centre(cleaned, (top, left, bottom, right), size, box)
    inverted = polarity == "invert" or (polarity == "auto" and dark_ink)
    ink_bright = dark_ink == inverted
    out = framed if ink_bright else 255 - framed
    if shrink != 1.0:
        cleaned_full = np.asarray(Image.fromarray(cleaned).resize(
            (gray.shape[1], gray.shape[0]), Image.Resampling.BILINEAR))
        h, w = gray.shape
        top, left = int(top * shrink), int(left * shrink)
        bottom, right = min(h, int(np.ceil(bottom * shrink))), min(w, int(np.ceil(right * shrink)))
    else:
        cleaned_full = cleaned
    return Framed(out, cleaned_full, (top, left, bottom, right), inverted,
                  _reason(polarity, dark_ink, inverted, paper, ink), paper, ink, dark_ink)


def normalize_digit(image: np.ndarray | Image.Image, polarity: str = "auto", size: int = 28,
                    box: int = 20, clean: bool = True) -> np.ndarray:
    """An MNIST-framed uint8 size x size image of the ink, or EmptyDrawing if there is none."""
    return frame_digit(image, polarity, size, box, clean).image


def _working_copy(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The image, shrunk to WORK_SIZE on its long side if larger; and the factor back."""
    long_side = max(gray.shape)
    if long_side <= WORK_SIZE:
        return gray, 1.0
    factor = long_side / WORK_SIZE
    new = (max(1, round(gray.shape[1] / factor)), max(1, round(gray.shape[0] / factor)))
    small = Image.fromarray(gray, mode="F").resize(new, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32), gray.shape[0] / new[1]


def clean_page(gray: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
    """Steps 1-4: uint8 ink-255-on-paper-0, the paper and ink levels (0..255 of the input) and
    whether the ink is darker than the paper. EmptyDrawing when no ink stands out."""
    level = _exact_paper(gray)
    if level is not None:
        return _clean_flat(gray, level)
    smooth = ndimage.gaussian_filter(gray, 1.0) if max(gray.shape) >= BLUR_FROM else gray
    background, dark_ink, paper_mask = fit_background(smooth)
    sign = -1.0 if dark_ink else 1.0
    ink_up = sign * (gray - background)  # ink positive, paper about 0
    levels = sign * (smooth - background)  # the same, blurred: for levels, not for the output
    paper_values = ink_up[paper_mask]
    paper_mid = float(np.median(paper_values)) if paper_values.size else 0.0
    noise = _spread(paper_values)
    floor = paper_mid + NOISE_SIGMAS * noise
    peak = _ink_peak(levels, paper_mid + NOISE_SIGMAS * _spread(levels[paper_mask]))
    if peak - floor < max(MIN_CONTRAST, NOISE_SIGMAS * noise):
        tight = _clean_tight_crop(gray)
        if tight is None:
            raise EmptyDrawing()
        return tight
    paper_level = float(np.median(smooth[paper_mask])) if paper_mask.any() else 0.0
    return _stretch(ink_up, floor, peak), paper_level, paper_level + sign * peak, dark_ink


def _clean_tight_crop(gray: np.ndarray) -> tuple[np.ndarray, float, float, bool] | None:
    """clean_page() for a small image cut close to its digit (an upscaled 8x8 scan, a crop to
    the ink's box), where the ink covers so much that the fitted paper takes it for paper.

    Otsu's threshold splits the pixels and the side holding most of the border (70%: such a
    digit touches it) is the paper. None where that is not clear: a border split about evenly
    (a gradient, a noisy empty page), ink that does not stand well clear of the paper, or an
    image large enough to be a photo."""
    if max(gray.shape) >= BLUR_FROM:
        return None
    threshold = otsu_threshold(gray.ravel())
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light_border = float(np.mean(border > threshold))
    if TIGHT_BORDER < light_border < 1 - TIGHT_BORDER:
        return None
    dark_ink = light_border >= 1 - TIGHT_BORDER
    paper_side = gray > threshold if dark_ink else gray <= threshold
    if paper_side.all() or not paper_side.any():
        return None
    sign = -1.0 if dark_ink else 1.0
    paper = float(np.median(gray[paper_side]))
    ink_up = sign * (gray - paper)
    floor = NOISE_SIGMAS * _spread(ink_up[paper_side])
    peak = float(np.percentile(ink_up[~paper_side], 95))
    if peak - floor < TIGHT_CONTRAST:
        return None
    return _stretch(ink_up, floor, peak), paper, paper + sign * peak, dark_ink


def _exact_paper(gray: np.ndarray) -> float | None:
    """The paper's level when the page is already clean (a canvas, MNIST): most pixels and
    nearly all the border hold exactly one value. None for photos and scans."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    level = float(np.median(border))
    if np.mean(border == level) >= 0.9 and np.mean(gray == level) >= 0.5:
        return level
    return None


def _clean_flat(gray: np.ndarray, level: float) -> tuple[np.ndarray, float, float, bool]:
    """clean_page() for a page whose paper is exactly `level`: nothing to flatten or stretch
    but the ink's scale, so the drawing passes unchanged."""
    off = gray[gray != level]
    dark_ink = bool(off.size and np.median(off) < level)
    ink_up = np.clip(level - gray if dark_ink else gray - level, 0, None)
    peak = float(ink_up.max())
    if peak < MIN_CONTRAST:
        raise EmptyDrawing()
    return _stretch(ink_up, 0.0, peak), level, level - peak if dark_ink else level + peak, dark_ink


def fit_background(gray: np.ndarray, rounds: int = 4) -> tuple[np.ndarray, bool, np.ndarray]:
    """A smooth paper surface (quadratic in x and y) fitted with the ink left out, whether the
    ink is darker than the paper, and the paper pixels' mask.

    The ink's side is the one reaching furthest from the median: ink is the minority that
    stands out from the paper, whether the paper is white, grey or black."""
    h, w = gray.shape
    step = max(1, max(h, w) // 64)  # fit on a coarse grid: the surface is smooth
    sample = gray[::step, ::step].astype(np.float64)
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    design = _design(ys / max(h - 1, 1), xs / max(w - 1, 1))
    values = sample.ravel()
    mid = np.median(values)
    dark_ink = bool(mid - np.percentile(values, 0.5) > np.percentile(values, 99.5) - mid)
    # First guess at the paper: a morphological closing (dark ink) or opening (light ink)
    # wipes out strokes narrower than a quarter of the image; pixels far from it are ink.
    window = max(3, max(sample.shape) // 4) | 1
    morph = (ndimage.grey_closing if dark_ink else ndimage.grey_opening)(sample, size=window)
    up = (morph - sample if dark_ink else sample - morph).ravel()
    keep = up <= np.median(up) + max(3 * _spread(up), 8.0)
    coef = np.zeros(design.shape[1])
    for round_ in range(rounds):
        if keep.sum() < design.shape[1] * 2:
            break
        if round_ == 0:  # a level first, a surface once the ink is out of the way
            coef[0] = np.median(values[keep])
        else:
            a = design[keep]
            coef = np.linalg.solve(a.T @ a + 1e-9 * np.eye(a.shape[1]), a.T @ values[keep])
        resid = values - design @ coef
        up = -resid if dark_ink else resid
        keep = up < np.median(up[keep]) + max(3 * _spread(up[keep]), 8.0)
    y = (np.arange(h) / max(h - 1, 1))[:, None]
    x = (np.arange(w) / max(w - 1, 1))[None, :]
    surface = (coef[0] + coef[1] * x + coef[2] * y + coef[3] * x * x + coef[4] * x * y
               + coef[5] * y * y)
    resid = gray - surface
    up = -resid if dark_ink else resid
    paper = up < np.median(up) + max(3 * _spread(up), 8.0)
    if float(surface.max() - surface.min()) < FLAT_RANGE:
        # Flat paper (a canvas, MNIST): a constant level, so clean images pass unchanged.
        level = float(np.median(gray[paper])) if paper.any() else float(np.median(gray))
        surface = np.full((h, w), level, dtype=np.float64)
    return surface.astype(np.float32), bool(dark_ink), paper


def _spread(values: np.ndarray) -> float:
    """A robust standard deviation (1.4826 x the median absolute deviation)."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values)))) if values.size else 0.0


def _design(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    y, x = ys.ravel(), xs.ravel()
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def _ink_peak(ink_up: np.ndarray, floor: float) -> float:
    """Full-scale ink: a high percentile of the pixels Otsu puts on the ink's side, so a few
    bright noise pixels do not set the scale."""
    above = ink_up[ink_up > floor]
    if above.size == 0:
        return floor
    threshold = otsu_threshold(above)
    ink = above[above >= threshold]
    return float(np.percentile(ink, 95)) if ink.size >= 20 else float(ink.max())


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that best splits the values into two classes.

    In float64: float32 values a few thousandths apart near 255 cannot be cut into 256 bins."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.abs(values).max())):
        return float(values.min()) if values.size else 0.0
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centres[int(np.argmax(between))])


def _stretch(ink_up: np.ndarray, floor: float, peak: float) -> np.ndarray:
    """Step 3 and 4: `floor` -> 0 and `peak` -> 255 (clipped), specks dropped, as uint8."""
    stretched = np.clip((ink_up - floor) * (255.0 / (peak - floor)), 0, 255)
    return np.clip(_drop_specks(stretched) + 0.5, 0, 255).astype(np.uint8)


def _drop_specks(stretched: np.ndarray) -> np.ndarray:
    """Zero the connected ink components (and their faint rims) much smaller than the largest."""
    if max(stretched.shape) < SPECK_MIN_PAGE:
        return stretched
    mask = stretched > INK_THRESHOLD * 255
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return stretched
    areas = np.bincount(labels.ravel())[1:]
    limit = SPECK_FRACTION * areas.max()
    specks = np.flatnonzero(areas < limit) + 1
    if specks.size == 0:
        return stretched
    gone = ndimage.binary_dilation(np.isin(labels, specks), iterations=1) & ~np.isin(
        labels, np.flatnonzero(areas >= limit) + 1)
    out = stretched.copy()
    out[gone] = 0
    return out


def _ink_box(cleaned: np.ndarray) -> tuple[int, int, int, int]:
    ink = cleaned > INK_THRESHOLD * float(cleaned.max())
    if not ink.any():
        raise EmptyDrawing()
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _fit_and_centre(cleaned: np.ndarray, ink_box: tuple[int, int, int, int], size: int,
                    box: int) -> np.ndarray:
    """Scale so the ink box fits box x box, keeping one output pixel of faint rim around it
    (as MNIST's anti-aliased edges), and centre by mass. A 20-pixel ink box is not resampled,
    so an MNIST digit comes out as it went in."""
    top, left, bottom, right = ink_box
    h, w = bottom - top, right - left
    scale = box / max(h, w)
    rim = int(np.ceil(1 / scale))
    top, left = max(0, top - rim), max(0, left - rim)
    bottom, right = min(cleaned.shape[0], bottom + rim), min(cleaned.shape[1], right + rim)
    crop = cleaned[top:bottom, left:right].astype(np.float32)
    rows, cols = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))
    crop = crop[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # rim only where it holds ink
    h, w = crop.shape
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = crop
    if (new_h, new_w) != (h, w):
        fitted = np.asarray(Image.fromarray(crop, mode="F").resize(
            (new_w, new_h),
            Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR))
    fitted = np.clip(fitted, 0, None)
    # Full contrast after the fit: a thin stroke shrunk from a big canvas stays visible ink,
    # as MNIST's strokes are.
    fitted = fitted * (255.0 / max(float(fitted.max()), 1e-6))
    return centre_by_mass(fitted, size)


def centre_by_mass(fitted: np.ndarray, size: int) -> np.ndarray:
    """Place `fitted` in a size x size frame with its centre of mass at the frame's middle,
    never cutting the ink off; uint8."""
    h, w = fitted.shape
    mass = fitted.astype(np.float64)
    total = mass.sum()
    cy = (mass.sum(1) @ np.arange(h)) / total if total else (h - 1) / 2
    cx = (mass.sum(0) @ np.arange(w)) / total if total else (w - 1) / 2
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top:top + h, left:left + w] = fitted
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _reason(polarity: str, dark_ink: bool, inverted: bool, paper: float, ink: float) -> str:
    seen = (f"{'dark' if dark_ink else 'light'} ink (about {ink:.0f}) on "
            f"{'lighter' if dark_ink else 'darker'} paper (about {paper:.0f})")
    if polarity == "auto":
        return (f"auto: {seen}, so {'inverted to' if inverted else 'kept as'} white on black, "
                "as MNIST")
    if polarity == "as-is":
        return f"as-is: {seen}, kept as it is (no inversion)"
    return f"invert: {seen}, inverted as asked"
