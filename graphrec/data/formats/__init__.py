"""Importers: the community formats users arrive with, each read into a :class:`Dataset`.

====================  =================================================================
format                reader
====================  =================================================================
``mmrec``             :func:`read_mmrec` / :func:`write_mmrec`: ``{name}.inter`` with ``x_label`` + ``.npy``
``lattice``           :func:`read_lattice`: ``train/val/test.json`` + id maps + ``.npy``
``unisrec``           :func:`read_unisrec`: ``{name}.{train,valid,test}.inter`` + raw float32
``recbole``           :func:`read_recbole` / :func:`write_recbole`: RecBole atomic files
``movielens``         :func:`read_movielens`: ratings CSV / ``u.data`` + side files
``csv``               :func:`read_table`: a plain CSV/TSV of interactions (+ item/user tables, ``.npy``)
====================  =================================================================

Every reader is a pure function of its files; bad input raises
:class:`~graphrec.errors.DataError` with a one-line message naming the file, the line or
id, and the fix. Formats are described in ``docs/data-formats.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from graphrec.data.dataset import Dataset
from graphrec.data.formats.lattice import read_lattice
from graphrec.data.formats.mmrec import read_mmrec, write_mmrec
from graphrec.data.formats.movielens import read_movielens
from graphrec.data.formats.recbole import read_recbole, write_recbole
from graphrec.data.formats.table import read_table
from graphrec.data.formats.unisrec import read_unisrec
from graphrec.errors import ConfigError, DataError

__all__ = [
    "FORMATS",
    "read_source",
    "read_mmrec",
    "write_mmrec",
    "read_lattice",
    "read_unisrec",
    "read_recbole",
    "write_recbole",
    "read_movielens",
    "read_table",
]

FORMATS: dict[str, Callable[..., Dataset]] = {
    "mmrec": read_mmrec,
    "lattice": read_lattice,
    "unisrec": read_unisrec,
    "recbole": read_recbole,
    "movielens": read_movielens,
    "csv": read_table,
}

# Which read_source options each format takes (beyond the path).
_OPTIONS: dict[str, frozenset[str]] = {
    "mmrec": frozenset({"features", "name", "unseen"}),
    "lattice": frozenset({"features", "name", "unseen"}),
    "unisrec": frozenset({"features", "name", "unseen", "dim"}),
    "recbole": frozenset({"name", "unseen"}),
    "movielens": frozenset({"name", "min_rating"}),
    "csv": frozenset({"features", "name", "unseen", "min_rating", "user_col", "item_col", "time_col", "rating_col",
                      "split_col", "items", "users"}),
}

# the command-line flag of each option (graphrec prepare), for the messages
_CLI_FLAGS: dict[str, str] = {"features": "--feature", "name": "--name", "min_rating": "--min-rating",
                              "dim": "--feature-dim", "user_col": "--user-col", "item_col": "--item-col",
                              "time_col": "--time-col", "rating_col": "--rating-col", "split_col": "--split-col",
                              "items": "--items", "users": "--users"}
UNSEEN_CHOICES = ("error", "drop", "keep")


def read_source(
    fmt: str,
    src: str | Path,
    *,
    features: Mapping[str, str] | None = None,
    name: str | None = None,
    unseen: str = "error",
    min_rating: float | None = None,
    dim: int | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    rating_col: str | None = None,
    split_col: str | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
) -> Dataset:
    """Read ``src`` with the importer of format ``fmt`` (a key of :data:`FORMATS`).

    Options a format does not take are rejected with a :class:`ConfigError` when they
    are set (``features`` for recbole/movielens, ``min_rating`` for all but movielens and csv, ``dim``
    for all but unisrec),
    rather than silently ignored. ``unseen`` is the exception: movielens has no given
    split, so nothing can be unseen and the value is accepted and has no effect (it must
    still be one of ``error``, ``drop``, ``keep``).
    ``user_col`` .. ``users`` are the csv format's (:func:`read_table`: which columns
    hold what, the item and user tables).
    ``features`` maps modality -> ``.npy`` path for mmrec, lattice and csv, and modality ->
    file suffix (e.g. ``feat1CLS``) for unisrec; ``dim`` (unisrec only) is the dimension of
    its raw feature files.

    Raises:
        DataError: unknown format (the message lists the valid ones) or bad input.
        ConfigError: an option the format does not take.
    """
    key = str(fmt).strip().lower()
    if key not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}: use one of {', '.join(FORMATS)}")
    given: dict[str, Any] = {"features": features, "name": name, "min_rating": min_rating, "dim": dim,
                             "user_col": user_col, "item_col": item_col, "time_col": time_col,
                             "rating_col": rating_col, "split_col": split_col, "items": items, "users": users}
    takes = _OPTIONS[key]
    for opt, val in given.items():
        if val is not None and opt not in takes:
            takers = ", ".join(f for f, opts in _OPTIONS.items() if opt in opts)
            raise ConfigError(
                f"format {key!r} does not take {opt} (formats that do: {takers}): remove {opt}= "
                f"(CLI: {_CLI_FLAGS[opt]})"
            )
    if unseen not in UNSEEN_CHOICES:  # checked for every format, also those it has no effect on
        raise ConfigError(f"unseen={unseen!r} (--unseen) is not one of {', '.join(UNSEEN_CHOICES)}")
    if (Path(src) / "dataset.json").is_file():  # a graphrec dataset, not a community format
        raise DataError(
            f"{src} is already a graphrec dataset directory (dataset.json): read it with Dataset.load "
            "(CLI: pass it as --data); prepare imports the community formats"
        )
    kwargs: dict[str, Any] = {k: v for k, v in given.items() if k in takes and v is not None}
    if "unseen" in takes:
        kwargs["unseen"] = unseen
    return FORMATS[key](Path(src), **kwargs)
