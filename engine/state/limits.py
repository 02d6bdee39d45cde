"""Resource limits on untrusted input, in one place, each with the setting that changes it.

Every limit has a default sized for a shared class server (a few GB of RAM per user) and an
environment variable a host can raise it with. A refusal always names the figure and the
setting, e.g. "... needs 84.0 GiB, above the 4.0 GiB budget (STUDIO_MAX_DATASET_BYTES)".
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str  # environment variable
    default: int
    what: str  # what it bounds, for the README and messages

    @property
    def value(self) -> int:
        raw = os.environ.get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            value = int(float(raw))
        except ValueError:
            raise ValueError(f"{self.name} must be a whole number, not {raw!r}") from None
        if value < 1:
            raise ValueError(f"{self.name} must be at least 1, not {value}")
        return value


GiB = 1 << 30
MiB = 1 << 20

# --- datasets ---------------------------------------------------------------------------------
DATASET_BYTES = Limit("STUDIO_MAX_DATASET_BYTES", 4 * GiB,
                      "the dataset's uint8 array (images x height x width x channels)")
IDX_BYTES = Limit("STUDIO_MAX_IDX_BYTES", 2 * GiB, "one IDX file, decompressed")
IMAGE_PIXELS = Limit("STUDIO_MAX_IMAGE_PIXELS", 24_000_000,
                     "pixels of one image file, checked before it is decoded")
ZIP_BYTES = Limit("STUDIO_MAX_ZIP_BYTES", 4 * GiB, "a zip's total uncompressed size")
ZIP_ENTRIES = Limit("STUDIO_MAX_ZIP_ENTRIES", 100_000, "entries in one zip")
ZIP_RATIO = Limit("STUDIO_MAX_ZIP_RATIO", 200,
                  "uncompressed / compressed size of a zip entry (zip bombs)")
UPLOAD_FILE_BYTES = Limit("STUDIO_MAX_UPLOAD_FILE_BYTES", 64 * MiB,
                         "one image file to classify (on disk or inside a zip)")
CLASSES = Limit("STUDIO_MAX_CLASSES", 1000, "classes of a dataset or network")

# --- network specs ----------------------------------------------------------------------------
SPEC_BYTES = Limit("STUDIO_MAX_SPEC_BYTES", 256 * 1024, "a network spec's text")
SPEC_DEPTH = Limit("STUDIO_MAX_SPEC_DEPTH", 20, "nesting of a network spec's data")
SPEC_LAYERS = Limit("STUDIO_MAX_SPEC_LAYERS", 500, "layers of a network spec")
PARAMETERS = Limit("STUDIO_MAX_PARAMETERS", 200_000_000,
                   "learnable parameters of a network (4 bytes each in fp32)")
ACTIVATIONS = Limit("STUDIO_MAX_ACTIVATIONS", 50_000_000,
                    "values all layers output for one image (x4 bytes x batch in training)")
LAYER_SIZE = Limit("STUDIO_MAX_LAYER_SIZE", 1_000_000,
                   "any one size, channel count, kernel, stride or padding in a spec")

# --- deployment bundles ---------------------------------------------------------------------
BUNDLE_MEMBER_BYTES = Limit("STUDIO_MAX_BUNDLE_MEMBER_BYTES", 1 * GiB,
                            "one file inside a bundle (model, engine)")
BUNDLE_META_BYTES = Limit("STUDIO_MAX_BUNDLE_META_BYTES", 16 * MiB,
                          "labels.json, preprocess.json or metadata.json of a bundle")

ALL: tuple[Limit, ...] = (
    DATASET_BYTES, IDX_BYTES, IMAGE_PIXELS, ZIP_BYTES, ZIP_ENTRIES, ZIP_RATIO, UPLOAD_FILE_BYTES,
    CLASSES, SPEC_BYTES, SPEC_DEPTH, SPEC_LAYERS, PARAMETERS, ACTIVATIONS, LAYER_SIZE,
    BUNDLE_MEMBER_BYTES, BUNDLE_META_BYTES)


def size(n: float) -> str:
    """Bytes in words: '84.0 GiB', '3.2 MiB', '512 bytes'."""
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"
