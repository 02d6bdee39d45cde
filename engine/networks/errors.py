"""The one error type of the networks package, so callers can point at the offending layer."""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3
MAX_MESSAGE = 400  # characters: a message is one line a person reads


def short(value: Any) -> str:
    """repr() of a value from a spec, abbreviated: a user's value may be huge or deep."""
    try:
        return _REPR.repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deep>"


class SpecError(ValueError):
    """A network spec that cannot be read, checked or built.

    ``layer_index`` is the 0-based position of the offending layer in the spec's layer list
    (the same number the layer table shows), or None when the problem is not one layer's.
    The message already names the layer, e.g. "layer 3 (conv): kernel 5 is larger than the
    4x4 input", so it can be shown to a user as is.
    """

    def __init__(self, message: str, layer_index: int | None = None,
                 layer_type: str | None = None) -> None:
        self.layer_index = layer_index
        self.layer_type = layer_type
        self.detail = message
        if layer_index is not None:
            kind = f" ({layer_type})" if layer_type else ""
            message = f"layer {layer_index}{kind}: {message}"
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 3] + "..."
        super().__init__(message)
