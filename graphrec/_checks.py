"""Type checks shared by the argument checks of the public functions."""

from __future__ import annotations

import re
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """An integer, numpy's included, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


_INT_TEXT = re.compile(r"\s*-?[0-9]+\s*")


def is_int_text(text: str) -> bool:
    """Whether ``text`` is a whole number written with the ASCII digits 0-9, an optional
    ``-`` and surrounding whitespace only. Python's ``int()`` (and so numpy's string to
    int64 cast) also takes ``1_0`` (as 10), ``+3`` and non-ASCII digits such as ``٣``;
    ids and indices read from files must not be read that loosely."""
    return (text.isascii() and text.isdigit()) or _INT_TEXT.fullmatch(text) is not None


def counted(n: int, noun: str) -> str:
    """``1 such row``, ``3 such rows``: a count and its noun (plural by ``s``), for messages."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
