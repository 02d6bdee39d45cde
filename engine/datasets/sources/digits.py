"""scikit-learn's bundled handwritten digits, framed like MNIST: the offline default data.

load_digits() holds 1,797 real 8x8 scans with ink levels 0..16. Each is scaled to 0..255 and
framed by engine.images.framing, the same code that frames canvas drawings and photos: its ink
box fitted into 20x20 keeping aspect ratio, placed in 28x28 with its centre of mass at the
middle (the page-cleaning step is skipped: the scans are clean). White ink on black, as MNIST.
"""

from __future__ import annotations

import numpy as np

from engine.datasets.sources.base import ArrayPart, SourceData
from engine.images.framing import normalize_digit

BOX = 20
FRAME = 28


def read_digits_source(args: dict) -> SourceData:
    from sklearn.datasets import load_digits  # heavy import, only when this source is used

    digits = load_digits()
    scans = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    framed = np.stack([normalize_digit(scan, "as-is", FRAME, BOX, clean=False)
                       for scan in scans])
    return SourceData(classes=[str(d) for d in range(10)],
                      train=ArrayPart(framed, digits.target.astype(np.int64)),
                      polarity="white-on-black", framing="mnist")
