"""What the dashboard's caches of drawn things (charts' specs, tables' Arrow) key by."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any


def key(build: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    """What a cache of `build(*args)` keys by: the builder's qualified name and the
    fingerprint of its arguments."""
    return f"{build.__module__}.{build.__qualname__}", fingerprint(args)


def fingerprint(args: tuple) -> Any:
    """A digest of the arguments' pickle (C-fast; Streamlit's own hashing walks lists of dicts
    in Python, a tenth of a finished job's page), or the arguments themselves for Streamlit to
    hash where they do not pickle."""
    try:
        # Pickled once more after a round trip: a pickle records which equal objects are one
        # object, so a builder's own value and the cache's copy of it (st.cache_data returns the
        # original on a miss, copies after) would digest apart and draw the thing twice.
        dump = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        dump = pickle.dumps(pickle.loads(dump), protocol=pickle.HIGHEST_PROTOCOL)
        return hashlib.blake2b(dump, digest_size=16).hexdigest()
    except Exception:  # noqa: BLE001 - anything unpicklable is hashed the slow way
        return args
