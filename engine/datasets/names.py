"""Dataset names people cannot confuse: Unicode-normalised (NFKC), compared without case, and
compared again after folding look-alike letters (Cyrillic 'а' for Latin 'a', Greek 'ο' for 'o'),
so `base`, `Base`, `ｂａｓｅ` and `bаse` (Cyrillic a) cannot be four different datasets."""

from __future__ import annotations

import unicodedata

# Letters of other scripts that render like Latin ones (Unicode's confusables for the common
# cases: Cyrillic and Greek lower and upper case), after casefolding.
_LOOKALIKE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
    "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ℓ": "l",
})


def normalize(name: str) -> str:
    """The form a name is stored in: NFKC (full-width and compatibility forms folded)."""
    return unicodedata.normalize("NFKC", name).strip()


def key(name: str) -> str:
    """Two names with the same key are the same name to a person: NFKC, then casefold."""
    return normalize(name).casefold()


def skeleton(name: str) -> str:
    """key() with look-alike letters of other scripts folded onto Latin ones."""
    return key(name).translate(_LOOKALIKE)


def clash(name: str, existing: list[str]) -> tuple[str, str] | None:
    """(existing name, "the same name" | "looks like") when `name` clashes with one."""
    k, s = key(name), skeleton(name)
    for other in existing:
        if key(other) == k:
            return other, "is the same name as"
        if skeleton(other) == s:
            return other, "looks like"
    return None
