"""The New model form's inputs for training options: each input's bounds and choices come from
the option's field metadata (engine/training/config.py), never from literals here or in the
form, so the form offers exactly what TrainConfig.validate() accepts (a test compares them).

`name` is a TrainConfig field, or 'augment.NAME' for an augmentation setting.
"""

from __future__ import annotations

from typing import Any

from engine.training.config import option


def bounds(name: str, by_value: Any = None, most: float | None = None) -> tuple[Any, Any]:
    """The inclusive bounds of an option's input (those of the range its `by` option's value
    picks); `most` lowers the top for a reason of the page's (the machine's GPUs)."""
    low, high = option(name).form_bounds(by_value)
    return low, high if most is None else min(high, most)


def _start(name: str, value: Any, low: Any, high: Any) -> Any:
    """The input's starting value: `value` inside the bounds; above them the top (a job on 4
    GPUs cloned on a machine with 2); below them the option's default (a sigmoid job's
    negative gamma, cloned and switched to another policy), else the bottom."""
    opt = option(name)
    kind = int if opt.whole else float
    value = kind(value)
    if value > high:
        return high
    if value < low:
        return kind(opt.default) if opt.default is not None and low <= opt.default <= high \
            else low
    return value


def number(container: Any, label: str, name: str, value: Any, *, key: str,
           by_value: Any = None, most: float | None = None, **kwargs: Any) -> Any:
    """st.number_input for an option, bounded by its metadata."""
    low, high = bounds(name, by_value, most)
    return container.number_input(label, low, high, _start(name, value, low, high), key=key,
                                  **kwargs)


def slider(container: Any, label: str, name: str, value: Any, *, key: str,
           **kwargs: Any) -> Any:
    """st.slider for an option, over its whole range."""
    low, high = bounds(name)
    return container.slider(label, low, high, _start(name, value, low, high), key=key,
                            **kwargs)


def choice(container: Any, label: str, name: str, value: Any, *, key: str,
           **kwargs: Any) -> Any:
    """st.selectbox for an option with choices; `value` picked when it is one of them."""
    choices = list(option(name).choices)
    return container.selectbox(label, choices,
                               index=choices.index(value) if value in choices else 0, key=key,
                               **kwargs)
