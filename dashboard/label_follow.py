"""A "True label" field that follows the current prediction until the user changes it.

Call `follow(st.session_state, key, guess)` before drawing the widget keyed `key` (and draw it
without an index/value argument: its value comes from the session state). While the field
still shows the last prediction it was given, a new prediction replaces it; once the user has
picked something else, their choice stays. `release(state, key)` starts following again (after
the image was saved, or a new image was loaded).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def _followed(key: str) -> str:
    return f"{key}__followed"


def follow(state: MutableMapping[str, Any], key: str, guess: str) -> str:
    """Set state[key] to `guess` unless the user changed the field; returns its value."""
    if key not in state or state[key] == state.get(_followed(key)):
        state[key] = guess
        state[_followed(key)] = guess
    return state[key]


def user_changed(state: MutableMapping[str, Any], key: str) -> bool:
    return key in state and state[key] != state.get(_followed(key))


def release(state: MutableMapping[str, Any], key: str) -> None:
    state.pop(key, None)
    state.pop(_followed(key), None)
