"""Type checks shared by the argument checks of the public functions, and
:func:`renamed`, which keeps their renamed keyword arguments working."""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from graphrec.errors import ConfigError

_F = TypeVar("_F", bound=Callable[..., Any])


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


def renamed(_public: str | None = None, **old_to_new: str) -> Callable[[_F], _F]:
    """Keep a public function's renamed keyword arguments working: ``@renamed(data="data_path")``
    accepts ``data=`` as ``data_path=`` with a :class:`FutureWarning` that names the new
    one. Giving both (the new one as a keyword or positionally) is a one-line
    :class:`~graphrec.errors.ConfigError`. Positional calls are untouched. ``_public``:
    the name the messages give the function where users call it by another
    (``graphrec.recommend`` for ``recommend_run``)."""

    def decorate(func: _F) -> _F:
        names = list(inspect.signature(func).parameters)
        position = {new: names.index(new) for new in old_to_new.values()}  # a wrong new name fails at import
        where = _public or func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs or len(args) > position[new]:
                    raise ConfigError(f"{where}() got both {new}= and its old name {old}=: pass {new} only")
                warnings.warn(f"{where}(): the argument {old}= is renamed {new}=; {old}= will stop working",
                              FutureWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
