"""CSV output of column arrays without pandas (not a dependency of the core install).

:func:`write_columns` writes a header and one row per index of equal-length columns, a
block of :data:`CHUNK_ROWS` rows at a time: text cells quoted as the :mod:`csv` module
quotes them (:func:`csv_cells`), floats to 9 significant digits (float32 round-trips),
integers as they print. The recommendations of ``graphrec recommend`` and the
predictions of ``graphrec evaluate --predictions`` go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import IO

import numpy as np

__all__ = ["CHUNK_ROWS", "csv_cells", "write_columns"]

#: rows formatted and written at a time (the text of a block is ~10x its bytes in Python
#: strings: formatting 20M recommendation rows at once took +6 GB)
CHUNK_ROWS = 1 << 20


def csv_cells(values: list[str]) -> list[str]:
    """``values`` as CSV cells, quoted as the csv module quotes them (a value holding a
    comma, a quote or a line break; quotes doubled); each distinct value checked once."""
    special = [v for v in set(values) if any(c in v for c in ',"\r\n')]
    if not special:
        return values
    quoted = {v: '"' + v.replace('"', '""') + '"' for v in special}
    return [quoted.get(v, v) for v in values]


def _cells(column: np.ndarray) -> list[str]:
    if column.dtype.kind == "f":
        return [f"{v:.9g}" for v in column.tolist()]
    if column.dtype.kind in "iub":
        return [str(v) for v in column.tolist()]
    return csv_cells([str(v) for v in column.tolist()])


def write_columns(
    f: IO[str], columns: Mapping[str, np.ndarray], progress: Callable[[int], object] | None = None
) -> None:
    """``columns`` (name -> 1-D array, equal lengths) as CSV into the text file ``f``
    (opened with ``newline=""``): the names as header, then the rows; ``progress(n)``
    after each block of ``n`` rows written (e.g. a tqdm bar's ``update``)."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    if any(len(columns[c]) != n for c in names):
        raise ValueError(f"columns of unequal lengths: {[(c, len(columns[c])) for c in names]}")
    f.write(",".join(names) + "\n")
    for s in range(0, n, CHUNK_ROWS):
        e = min(n, s + CHUNK_ROWS)
        cells = [_cells(np.asarray(columns[c][s:e])) for c in names]
        f.write("".join([",".join(row) + "\n" for row in zip(*cells)]))
        if progress is not None:
            progress(e - s)
