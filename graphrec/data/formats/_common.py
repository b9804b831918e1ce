"""Helpers shared by the importers: table parsing, numeric columns, id maps, features.

Every helper raises :class:`~graphrec.errors.DataError` with a one-line message that
names the file, the line (1-based, as an editor shows it) or the id, and the fix.
Nothing here unpickles: ``.npy`` files are loaded with ``allow_pickle=False``.

Interaction files are read in chunks of rows (:class:`TableScan`, :data:`CHUNK_BYTES`
at a time), each checked by :class:`ColumnCheck` s (:func:`run_checks`) and kept as
compact arrays (ids as codes of a :class:`Factorizer`): a file of tens of millions of
rows never exists as one Python string per cell. The errors are those of the whole-file
helpers (:func:`read_table`, :func:`parse_int`, ...), with the same lines, in the same
order (an error found in a later chunk can still be the one reported).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from graphrec._checks import counted, is_int_text
from graphrec.data.dataset import IdColumn, check_modality_name, index_dtype, nonfinite_rows
from graphrec.errors import ConfigError, DataError

__all__ = [
    "PathLike",
    "SPLIT_NAMES",
    "Table",
    "RowScan",
    "line_bounds",
    "split_token_seqs",
    "TableScan",
    "CHUNK_BYTES",
    "ColumnCheck",
    "IntCheck",
    "FloatCheck",
    "TokenCheck",
    "Factorizer",
    "id_column",
    "run_checks",
    "LazyWhere",
    "one_line",
    "require_file",
    "read_table",
    "quote_cell",
    "unquote_cell",
    "to_int64",
    "parse_int",
    "parse_float",
    "read_json",
    "index_from_map",
    "read_index_map",
    "index_ids",
    "resolve",
    "load_npy",
    "load_feature_files",
    "item_count_from_features",
    "check_feature_matrix",
    "check_npy_file",
    "read_npy",
    "is_number",
    "looks_like_data",
    "PANDAS_NA",
    "check_not_missing",
    "check_tab_separated",
    "check_separator",
    "check_unseen",
    "duplicate_rows",
    "check_dense_indices",
    "INDEX_SPREAD",
    "INDEX_FLOOR",
    "find_prefix",
]

PathLike = str | os.PathLike
SPLIT_NAMES = np.array(["train", "valid", "test"])


def one_line(text: Any) -> str:
    """``text`` with line breaks and tabs turned into spaces (messages stay one line)."""
    return " ".join(str(text).split())


def require_file(path: Path, what: str, fix: str = "") -> Path:
    """``path`` if it is a file, else a DataError naming it."""
    if not path.is_file():
        hint = f": {fix}" if fix else ""
        raise DataError(f"{path}: {what} not found{hint}")
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}): re-save the file as UTF-8") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({one_line(e.strerror or e)})") from None


class Table:
    """Columns of a delimited text file, all as strings, with their line numbers.

    Row ``k`` of every column comes from file line ``first_line + k``, or ``lines[k]``
    when the rows are not one per line (CSV fields with quoted line breaks).
    """

    def __init__(
        self,
        path: Path,
        header: list[str],
        columns: dict[str, list[str]],
        first_line: int,
        lines: Sequence[int] | None = None,
    ):
        self.path = path
        self.header = header
        self.columns = columns
        self.first_line = first_line
        self.lines = lines

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def line(self, row: int) -> int:
        """The file line number of row ``row``."""
        if self.lines is not None:
            return int(self.lines[int(row)])
        return self.first_line + int(row)

    def has(self, column: str) -> bool:
        return column in self.columns

    def col(self, column: str, fix: str = "") -> list[str]:
        """The values of ``column``; a DataError naming the header when it is absent."""
        if column not in self.columns:
            if looks_like_data(list(self.columns)):
                raise DataError(
                    f"{self.path} line 1: the header is missing: line 1 {self.header} looks like a data row, "
                    f"not column names (no {column!r} column): add the header line first"
                    + (f" ({fix})" if fix else "")
                )
            hint = fix or f"add a {column!r} column"
            raise DataError(
                f"{self.path} line 1: header has no {column!r} column "
                f"(found {self.header}): {hint}"
            )
        return self.columns[column]


def is_number(text: str) -> bool:
    """Whether ``text`` parses as a float (``float``'s reading: ``nan``, ``1e5``, `` 2 ``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def looks_like_data(fields: Sequence[str]) -> bool:
    """Whether header fields are all numbers (or number sequences, like a UniSRec history):
    a file whose header line is missing, its first row read as the header."""
    return bool(fields) and all(f.split() and all(is_number(x) for x in f.split()) for f in fields)


#: the cells pandas, which RecBole and MMRec read their files with, takes for missing
#: values by default (its ``na_values``): an id written as one of them would not read
#: back as itself
PANDAS_NA = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


def check_not_missing(table: Table, column: str, values: Sequence[str], kind: str, reader: str) -> None:
    """A one-line DataError naming the file line of the first of ``values`` (column
    ``column`` of ``table``, ids of ``kind`` ``user``/``item``) that pandas reads as a
    missing value (:data:`PANDAS_NA`): ``reader`` (RecBole, MMRec) would see NaN there."""
    if PANDAS_NA.isdisjoint(values):
        return
    for k, v in enumerate(values):
        if v in PANDAS_NA:
            raise DataError(
                f"{table.path} line {table.line(k)}: {column} {v!r} is read as a missing value by {reader} "
                f"(pandas takes {v!r} for NaN), so {reader} would not see this {kind}: rename the {kind} id in every "
                "file that lists it"
            )


def check_tab_separated(table: Table, what: str, example: str) -> None:
    """A one-line DataError when ``table`` (read as tab-separated) has a one-field header
    that holds commas, semicolons, spaces or pipes: the file is separated by those, not
    by tabs. ``what`` names the files (``RecBole atomic files``), ``example`` a header."""
    if len(table.header) != 1:
        return
    sep = next((c for c in table.header[0] if c in ",; |"), None)
    if sep is None:
        return
    shown = {",": "comma", ";": "semicolon", " ": "space", "|": "pipe"}[sep]
    raise DataError(
        f"{table.path} line 1: the file is not tab-separated (its header looks {shown}-separated: "
        f"{one_line(table.header[0])!r}): {what} are TSV, separate the columns with tabs (e.g. {example})"
    )


#: the separators a delimited file is commonly written with, and their names
SEPARATORS: dict[str, str] = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}


def other_separator(header: Sequence[str], sep: str, names: Sequence[str], strip_types: bool = False) -> str | None:
    """The common separator (:data:`SEPARATORS`) other than ``sep`` that the header line
    is written with, or None: ``header`` (the line split on ``sep``) lacks some of
    ``names``, and the line split on that separator holds more of them (``strip_types``:
    fields ``name:type`` count as ``name``, as RecBole headers)."""

    def found(fields: Sequence[str]) -> int:
        keys = {f.strip().strip('"').lstrip("\ufeff") for f in fields}
        if strip_types:
            keys = {k.split(":", 1)[0] for k in keys}
        return len(keys & set(names))

    have = found(header)
    if have == len(set(names)):
        return None
    line = sep.join(header)
    for other in SEPARATORS:
        if other != sep and other in line and found(line.split(other)) > have:
            return other
    return None


def check_separator(path: Path, header: Sequence[str], sep: str, names: Sequence[str], fix: str,
                    strip_types: bool = False) -> None:
    """A one-line DataError when the header of ``path`` (split on ``sep``: ``header``)
    lacks some of the columns ``names`` and the line split on another common separator
    holds more of them (:func:`other_separator`): the file is not ``sep``-separated, so
    "header has no ... column" would send the user to rename a column that is there.
    ``fix`` says how the file must be written (e.g. ``MovieLens ratings.csv is CSV:
    separate the columns with commas, e.g. userId,movieId,rating,timestamp``)."""
    other = other_separator(header, sep, names, strip_types)
    if other is None:
        return
    raise DataError(
        f"{path} line 1: the file is not {SEPARATORS[sep]}-separated (its header {sep.join(header)!r} is "
        f"{SEPARATORS[other]}-separated): {fix}"
    )


#: bytes of a file read at a time by :class:`TableScan` (and MovieLens' CSV reader): the
#: whole lines of such a block become one :class:`Table` of rows, so a file of any length
#: is held as Python strings one block at a time (about 100,000 rows of a RecBole
#: ``user_id item_id rating timestamp`` file: some 40 MB of strings), and as arrays of a
#: few bytes per row otherwise
CHUNK_BYTES = 1 << 22


class _Blocks:
    """The text of ``path`` in blocks of whole lines, ``chunk_bytes`` read at a time,
    decoded as UTF-8 with universal newlines (``\\r\\n`` and ``\\r`` read as ``\\n``), which
    is how :meth:`Path.read_text` reads the whole file: ``(text, its UTF-8 bytes)`` per
    block. A byte that is no UTF-8 is a DataError naming its offset in the file,
    whichever block holds it; ``os_errors``: an OSError while reading is a DataError too
    (else it propagates)."""

    def __init__(self, path: Path, chunk_bytes: int | None = None, os_errors: bool = True):
        self.path = path
        self.size = max(int(chunk_bytes or CHUNK_BYTES), 1)
        self.os_errors = os_errors

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        try:
            yield from self._blocks()
        except OSError as e:
            if not self.os_errors:
                raise
            raise DataError(f"{self.path}: cannot be read ({one_line(e.strerror or e)})") from None

    def _blocks(self) -> Iterator[tuple[str, bytes]]:
        offset = 0
        carry = b""
        with open(self.path, "rb") as f:
            while True:
                data = f.read(self.size)
                buf = carry + data if carry else data
                if not data:  # end of file: what is left is the last block
                    cut = len(buf)
                else:
                    cut = buf.rfind(b"\n") + 1
                    if not cut:  # old Mac line ends: cut after a \r whose next byte is known (and no \n)
                        cut = buf.rfind(b"\r", 0, len(buf) - 1) + 1
                if cut:
                    block, carry = buf[:cut], buf[cut:]
                    try:
                        text = block.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DataError(
                            f"{self.path}: not UTF-8 text (byte {offset + e.start}): re-save the file as UTF-8"
                        ) from None
                    offset += len(block)
                    if "\r" in text:
                        text = text.replace("\r\n", "\n").replace("\r", "\n")
                        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                    yield text, block
                else:
                    carry = buf
                if not data:
                    return


def line_bounds(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block's bytes (:class:`_Blocks`, not empty) as uint8, and where each of its lines
    starts and ends (the offset of its ``\n``, or the block's end for a last line without one)."""
    b = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(b == 10)
    if b[-1] != 10:
        ends = np.append(ends, len(b))
    starts = np.zeros_like(ends)
    starts[1:] = ends[:-1] + 1
    return b, starts, ends


#: the ASCII characters ``str.split()`` splits at (``str.isspace``), by byte value
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def split_token_seqs(cells: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The tokens of ``token_seq`` cells (a column of a chunk: each cell split at
    whitespace, as ``str.split()`` splits it), all cells' in one list, in order, and how
    many each cell holds (int64). One split of the cells joined, the counts found in its
    bytes (cells of ASCII text), rather than one list per cell."""
    joined = " ".join(cells)
    tokens = joined.split()
    if not joined.isascii():
        return tokens, np.fromiter(map(len, map(str.split, cells)), np.int64, len(cells))
    space = _ASCII_SPACE[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)]
    starts = np.flatnonzero(~space & np.r_[True, space[:-1]])
    # cell k ends before the space at ends[k] - 1: a token starting at p is in the cell of the ends <= p
    ends = np.cumsum(np.fromiter(map(len, cells), np.int64, len(cells)) + 1)
    return tokens, np.bincount(np.searchsorted(ends, starts, side="right"), minlength=len(cells))


def _block_lines(text: str) -> list[str]:
    """The lines of a block (:class:`_Blocks`): every block but a file's last ends with a
    line break, and a final line break ends the last line (no empty line after it)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _line_count(text: str) -> int:
    """``len(_block_lines(text))``."""
    return text.count("\n") + (0 if not text or text.endswith("\n") else 1)


class _Stages:
    """The error a whole-file reader raises first, found while reading in chunks: the
    first error of the earliest stage (a reader checks stage by stage over the whole
    file: the text, the header, the rows' fields...), the first in the file within a
    stage. An error is kept while the rest of the file is read for earlier stages."""

    def __init__(self) -> None:
        self.stage: int | None = None
        self.error: DataError | None = None

    def add(self, stage: int, error: DataError) -> None:
        if self.stage is None or stage < self.stage:
            self.stage, self.error = stage, error

    def before(self, stage: int) -> bool:
        """Whether an error of stage ``stage`` could still be the one raised."""
        return self.stage is None or stage < self.stage

    def raise_first(self) -> None:
        if self.error is not None:
            raise self.error


class _Lines:
    """Where the rows of a file read in chunks are: row ``k`` is on file line
    ``first + k`` while the rows are one per line, else the line numbers are kept."""

    def __init__(self, first: int):
        self.first = first
        self.rows = 0
        self._parts: list[np.ndarray] | None = None  # line numbers, once the rows are no longer one per line

    def add(self, start_line: int, n: int, lines: Sequence[int] | None) -> None:
        regular = lines is None or (n > 0 and lines[0] == start_line and lines[-1] == start_line + n - 1)
        if self._parts is None and regular and start_line == self.first + self.rows:
            self.rows += n
            return
        if self._parts is None:
            self._parts = [np.arange(self.first, self.first + self.rows, dtype=np.int64)]
        self._parts.append(np.asarray(lines, dtype=np.int64) if lines is not None
                           else np.arange(start_line, start_line + n, dtype=np.int64))
        self.rows += n

    def array(self) -> np.ndarray | None:
        """The line of every row, or None when row ``k`` is on line ``first + k``."""
        if self._parts is None:
            return None
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0]

    def line(self, row: int) -> int:
        lines = self.array()
        return int(lines[int(row)]) if lines is not None else self.first + int(row)


class RowScan:
    """What the chunked readers of a file share (:class:`TableScan`; MovieLens' CSV
    reader): after :meth:`chunks` (which subclasses implement, recording each chunk's
    rows in ``self._lines``, a :class:`_Lines`), where each row is and how many there
    are; the header (``self.header`` as written, ``self.keys`` as column names) before."""

    path: Path
    header: list[str]
    keys: list[str]
    first: int
    _lines: _Lines

    def chunks(self) -> Iterator[Table]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def rows(self) -> int:
        return self._lines.rows

    def line(self, row: int) -> int:
        """The file line of row ``row`` (counted over the whole file)."""
        return self._lines.line(row)

    def line_numbers(self) -> np.ndarray | None:
        """The file line of every row, or None when row ``k`` is on line ``first + k``."""
        return self._lines.array()

    def head(self) -> Table:
        """A :class:`Table` of the header and no rows: its ``col`` and ``has`` check the header."""
        return Table(self.path, self.header, {k: [] for k in self.keys}, self.first)

    def has(self, column: str) -> bool:
        return column in self.keys

    def read_all(self) -> Table:
        """The whole file as one :class:`Table` (what the whole-file reader returns)."""
        columns: dict[str, list[str]] = {k: [] for k in self.keys}
        for chunk in self.chunks():
            for k, c in chunk.columns.items():
                columns[k].extend(c)
        lines = self.line_numbers()
        return Table(self.path, self.header, columns, self.first, None if lines is None else lines.tolist())


class TableScan(RowScan):
    """A delimited text file (:func:`read_table`'s rules), read in chunks of rows.

    ``header`` / ``keys``: the header fields as written and as column names; iterate
    :meth:`chunks` for :class:`Table` s of consecutive rows, whose ``line`` gives file
    lines. Every error :func:`read_table` raises is raised, with the same message: the
    ones about the rows' fields, or the header, once the rest of the file has been read
    (a byte that is no UTF-8 anywhere comes first, as when the whole file is decoded at
    once), so it happens at the end of :meth:`chunks`; a chunk is only yielded while no
    such error is known. After :meth:`chunks`, :meth:`line` maps a row (counted over the
    whole file) to its file line and ``rows`` is the number of rows.
    """

    def __init__(
        self,
        path: Path,
        *,
        sep: str = "\t",
        header: bool = True,
        names: Sequence[str] | None = None,
        strip_types: bool = False,
        allow_empty: bool = False,
        quoted_cells: bool = False,
        chunk_bytes: int | None = None,
    ):
        require_file(path, "file")
        self.path = path
        self.sep = sep
        self.allow_empty = allow_empty
        self.quoted_cells = quoted_cells
        self.errors = _Stages()
        self._blocks = iter(_Blocks(path, chunk_bytes))
        first_block = next(self._blocks, None)
        text, raw = first_block if first_block is not None else ("", b"")
        if header:
            if not text:
                raise DataError(f"{path}: file is empty (no header line): write the header and the rows")
            cut = text.find("\n")
            line = text if cut < 0 else text[:cut]
            head = line.split(sep)
            if line.startswith("\ufeff"):
                head[0] = head[0][1:]
            self._rest = ("", b"") if cut < 0 else (text[cut + 1:], raw[raw.index(b"\n") + 1:])
            self.first = 2
        else:
            if names is None:
                raise ValueError("names are required when header=False")
            head = list(names)
            self._rest, self.first = (text, raw), 1
        self.header = head
        self.keys = [h.split(":", 1)[0] if strip_types else h for h in head]
        seen: set[str] = set()
        for k in self.keys:
            if k in seen:
                if header and looks_like_data(self.keys):
                    self.errors.add(0, DataError(
                        f"{path} line 1: the header is missing: line 1 {head} looks like a data row, "
                        "not column names: add the header line first"
                    ))
                else:
                    self.errors.add(0, DataError(
                        f"{path} line 1: column {k!r} appears twice in the header: rename or remove one"))
                break
            seen.add(k)
        self._lines = _Lines(self.first)
        self._any_rows = False

    def chunks(self) -> Iterator[Table]:
        start = self.first  # the file line of the block's first line
        block: tuple[str, bytes] | None = self._rest
        self._rest = ("", b"")
        while block is not None:
            text, raw = block
            if self.errors.before(2) and text:
                table = self._rows(text, raw, start)
                if table is not None and len(table):
                    yield table
            start += _line_count(text)
            block = next(self._blocks, None)
        if not self._any_rows and not self.allow_empty:
            self.errors.add(1, DataError(f"{self.path}: no data rows after the header: the file is empty, add its rows"))
        self.errors.raise_first()

    def _fields(self, text: str, raw: bytes) -> list[str] | None:
        """The cells of a block, row by row, split at once: when every line has one field
        per column (counted in its bytes) and none is blank; else None."""
        n, sep = len(self.keys), self.sep
        if n < 2 or len(sep) != 1 or sep == " " or not sep.isascii():
            return None
        b, starts, ends = line_bounds(raw)
        seps = np.flatnonzero(b == ord(sep))
        if len(seps) != (n - 1) * len(ends):
            return None
        # a line with n - 1 separators is no blank line (spaces only)
        if not (np.searchsorted(seps, ends) - np.searchsorted(seps, starts) == n - 1).all():
            return None
        cells = text.replace("\n", sep).split(sep)
        if text.endswith("\n"):
            cells.pop()
        return cells

    def _rows(self, text: str, raw: bytes, first: int) -> Table | None:
        """The rows of one block, or None after recording its first line of a wrong field count."""
        sep = self.sep
        keys = self.keys
        n = len(keys)
        cells = self._fields(text, raw)
        line_numbers: list[int] | None = None
        if cells is not None:
            columns = {k: cells[j::n] for j, k in enumerate(keys)}
            del cells
            rows_here = len(columns[keys[0]])
        else:
            body = _block_lines(text)
            if any(not ln.strip(" ") for ln in body):  # blank lines are skipped; rows keep their file line numbers
                line_numbers = [first + k for k, ln in enumerate(body) if ln.strip(" ")]
                body = [ln for ln in body if ln.strip(" ")]
            self._any_rows = self._any_rows or bool(body)
            rows = [ln.split(sep) for ln in body]
            for k, r in enumerate(rows):
                if len(r) != n:
                    what = "tab" if sep == "\t" else repr(sep)
                    where = line_numbers[k] if line_numbers is not None else first + k
                    # a whole line in one field that another separator splits into the columns: the file's separator is wrong
                    other = next((o for o in SEPARATORS if o != sep and len(body[k].split(o)) == n), None) if len(r) == 1 else None
                    if other is not None:
                        self.errors.add(2, DataError(
                            f"{self.path} line {where}: expected {n} {SEPARATORS.get(sep, what)}-separated fields "
                            f"({', '.join(keys)}), found 1: the line is {SEPARATORS[other]}-separated: write the file with "
                            f"{SEPARATORS.get(sep, what)}s between the columns"
                        ))
                    else:
                        self.errors.add(2, DataError(
                            f"{self.path} line {where}: expected {n} {what}-separated fields "
                            f"({', '.join(keys)}), found {len(r)}: fix or remove the line"
                        ))
                    return None
            cols = list(zip(*rows)) if rows else [() for _ in keys]
            del rows
            columns = {k: list(c) for k, c in zip(keys, cols)}
            rows_here = len(body)
        self._any_rows = self._any_rows or bool(rows_here)
        if self.quoted_cells and '"' in text:
            for k, c in columns.items():
                if any(v.startswith('"') for v in c):
                    columns[k] = [unquote_cell(v) for v in c]
        self._lines.add(first, rows_here, line_numbers)
        return Table(self.path, self.header, columns, first, line_numbers)


def read_table(
    path: Path,
    *,
    sep: str = "\t",
    header: bool = True,
    names: Sequence[str] | None = None,
    strip_types: bool = False,
    allow_empty: bool = False,
    quoted_cells: bool = False,
    chunk_bytes: int | None = None,
) -> Table:
    """Read a delimited text file into string columns (rows are lines: no multi-line cells).

    ``header=False`` takes column names from ``names``. ``strip_types`` turns RecBole
    style ``name:type`` header fields into ``name`` (the raw header is kept in
    ``Table.header``). ``quoted_cells`` reads a cell that starts and ends with ``"`` the
    way RecBole's CSV parser does (outer quotes removed, ``""`` -> ``"``); see
    :func:`unquote_cell`. Lines may end in ``\\n``, ``\\r\\n`` or ``\\r``; a final newline is
    optional. Blank lines after the header (empty or spaces only: a trailing ``\\n\\n``, a
    blank line between rows) are skipped, as pandas (RecBole's and MMRec's reader) skips
    them; every other line must have one field per column (a line of tabs only is a row
    of empty cells). For a large file, read it in chunks of rows with :class:`TableScan`
    (the same rules, errors and line numbers); ``chunk_bytes`` is its block size.
    """
    return TableScan(path, sep=sep, header=header, names=names, strip_types=strip_types, allow_empty=allow_empty,
                     quoted_cells=quoted_cells, chunk_bytes=chunk_bytes).read_all()


def unquote_cell(value: str) -> str:
    """A cell as RecBole (pandas CSV parsing) reads it: a quoted cell is unquoted.

    Only a cell that starts *and* ends with a double quote is unquoted (outer quotes
    dropped, each doubled quote read as one); any other cell is literal.
    """
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def quote_cell(value: str) -> str:
    """The inverse of :func:`unquote_cell` for writing: quote a cell starting with ``"``
    (RecBole's parser would take it for a quoted field), leave the others as they are."""
    if value.startswith('"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _first_bad(values: Sequence[str], conv: Any) -> int:
    for k, v in enumerate(values):
        try:
            conv(v)
        except (TypeError, ValueError, OverflowError):
            return k
    return -1


def _to_int64(v: str) -> np.int64:
    if not is_int_text(v):
        raise ValueError(v)
    return np.int64(int(v))


def _all_digits(values: Sequence[str]) -> bool:
    """Whether every value is one or more ASCII digits (then each is an integer's text,
    :func:`is_int_text`): one test of the values joined, not one per value."""
    if not isinstance(values, list) or "" in values:
        return False
    try:
        joined = "".join(values)
    except TypeError:  # not all strings
        return False
    return joined.isascii() and joined.isdigit()


def to_int64(values: Sequence[str]) -> tuple[np.ndarray | None, int]:
    """``(int64 array, -1)``, or ``(None, k)`` where ``values[k]`` is the first value that is
    not an integer in int64 range written with the digits 0-9 (an optional ``-``, and
    surrounding whitespace, which is ignored; ``+3``, ``1_0`` and ``1.0`` are refused)."""
    try:
        if not _all_digits(values) and not all(is_int_text(v) for v in values):
            raise ValueError("not an integer")
        return (np.array(values, dtype=np.int64) if len(values) else np.zeros(0, np.int64)), -1
    except (TypeError, ValueError, OverflowError):
        return None, max(_first_bad(values, _to_int64), 0)


def _int_values(table: Table, column: str, values: Sequence[str], what: str) -> tuple[np.ndarray | None, DataError | None]:
    """``values`` (column ``column`` of ``table``) as int64, or the error naming the first that is no integer."""
    out, k = to_int64(values)
    if out is None:
        return None, DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is not "
            f"{what}: {column} must be a whole number below 2**63, written with the digits 0-9 "
            "(no '+', '_' or decimal point)"
        )
    return out, None


def _negative_error(table: Table, column: str, values: Sequence[str], out: np.ndarray, what: str) -> DataError | None:
    if out.size and out.min() < 0:
        k = int(np.flatnonzero(out < 0)[0])
        return DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is negative: "
            f"{column} must be {what} >= 0"
        )
    return None


def parse_int(table: Table, column: str, *, what: str = "an integer index", nonneg: bool = True) -> np.ndarray:
    """Column ``column`` of ``table`` as int64, with the line of the first bad value."""
    values = table.col(column)
    out, err = _int_values(table, column, values, what)
    if out is None:
        raise err  # type: ignore[misc]
    if nonneg:
        err = _negative_error(table, column, values, out, what)
        if err is not None:
            raise err
    return out


def _float_values(
    table: Table, column: str, values: Sequence[str], empty_nan: bool, typed: bool
) -> tuple[np.ndarray | None, Sequence[str], DataError | None]:
    """``(float64 array, the values read, None)`` or ``(None, values, the error naming the first that is no number)``."""
    if empty_nan and ("" in values or any(map(str.isspace, values))):
        values = [v if v.strip() else "nan" for v in values]
    try:
        return (np.array(values, dtype=np.float64) if values else np.zeros(0, np.float64)), values, None
    except (TypeError, ValueError):
        k = max(_first_bad(values, float), 0)
        return None, values, DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is not a number: "
            + _float_fix(values[k], column, typed)
        )


def _nonfinite_error(path: Path, line: int, value: str, column: str, count: int) -> DataError:
    return DataError(
        f"{path} line {line}: {column} {value!r} is not a finite number "
        f"({counted(count, 'such row')}): every {column} must be a finite number"
        f"{' (e.g. unix seconds)' if 'time' in column.lower() else ''}: "
        "fix or remove the row"
    )


def parse_float(
    table: Table, column: str, *, empty_nan: bool = False, finite: bool = False, typed: bool = False
) -> np.ndarray:
    """Column ``column`` as float64 (``empty_nan``: an empty value is NaN; ``finite``:
    NaN and infinities, also ``1e999``, are an error naming the line, as for timestamps).
    ``typed``: the column is declared ``{column}:float`` (a RecBole header), so the error
    for a value that is no number says which type fits it (``float_seq`` for several
    numbers, ``token`` for text)."""
    out, values, err = _float_values(table, column, table.col(column), empty_nan, typed)
    if out is None:
        raise err  # type: ignore[misc]
    if finite:
        bad = ~np.isfinite(out)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise _nonfinite_error(table.path, table.line(k), values[k], column, int(bad.sum()))
    return out


def _float_fix(value: str, column: str, typed: bool) -> str:
    """What to do about ``value``, which is no number, in a float column."""
    parts = value.split()
    if typed and len(parts) > 1 and all(is_number(p) for p in parts):
        return f"it holds {len(parts)} numbers, but a float field holds one: declare it {column}:float_seq"
    if typed:
        return f"fix the value, or declare the column {column}:token if it is text"
    return "fix the value"


def read_json(path: Path, what: str, fix: str = "") -> Any:
    """Parse a JSON file; a DataError with the line and column of a syntax error, or
    naming a key that one object holds twice (``json`` would silently keep the last
    value: a LATTICE user listed twice would lose the items of the first entry). ``fix``:
    what to do when the file is missing."""
    require_file(path, what, fix)

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise DataError(
                    f"{path}: key {key!r} appears twice in one JSON object, and only one of its values could be "
                    "read: merge the two entries into one"
                )
            out[key] = value
        return out

    try:
        return json.loads(_read_text(path), object_pairs_hook=unique_keys)
    except json.JSONDecodeError as e:
        raise DataError(f"{path} line {e.lineno} column {e.colno}: invalid JSON ({e.msg}): fix the file") from None


def index_from_map(mapping: Mapping[str, Any], path: Path, what: str) -> np.ndarray:
    """Original ids in index order from ``{original id: index}``; indices must be 0..n-1."""
    n = len(mapping)
    ids = np.empty(n, dtype=object)
    filled = np.zeros(n, dtype=bool)
    for orig, idx in mapping.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            try:
                idx = int(str(idx))
            except ValueError:
                raise DataError(
                    f"{path}: {what} {orig!r} maps to {idx!r}, not an integer index: "
                    "map every id to an index 0..n-1"
                ) from None
        idx = int(idx)
        if not 0 <= idx < n:
            raise DataError(
                f"{path}: {what} {orig!r} maps to index {idx}, outside 0..{n - 1}: "
                f"indices must be 0..n-1 for the {n} ids listed"
            )
        if filled[idx]:
            raise DataError(
                f"{path}: index {idx} is given to {what} {ids[idx]!r} and {orig!r}: "
                "every index must belong to one id"
            )
        ids[idx] = str(orig)
        filled[idx] = True
    return ids.astype(str) if n else np.zeros(0, dtype=str)


def read_index_map(path: Path, what: str) -> np.ndarray:
    """A two-column ``original id <TAB> index`` file (no header) as ids in index order."""
    table = read_table(path, header=False, names=("id", "index"))
    idx = parse_int(table, "index")
    mapping: dict[str, int] = {}
    for k, (orig, i) in enumerate(zip(table.col("id"), idx.tolist())):
        if orig in mapping:
            raise DataError(
                f"{path} line {table.line(k)}: {what} {orig!r} is listed twice: keep one line per id"
            )
        mapping[orig] = i
    return index_from_map(mapping, path, what)


def load_npy(path: Path, modality: str) -> np.ndarray:
    """A 2-D real ``.npy`` matrix, loaded without pickle, as float32 (values beyond
    float32's range are an error, not infinities; a boolean matrix gives 0/1)."""
    require_file(path, f"feature file for modality {modality!r}",
                 "check the path in features (CLI: --feature MODALITY=FILE; a relative FILE is read from the "
                 "source folder)")
    x = read_npy(path, "save the features as one items x dim matrix with numpy.save")
    # (numpy counts timedelta64 as a number: durations are no features; booleans are 0/1)
    numeric = isinstance(x, np.ndarray) and (np.issubdtype(x.dtype, np.number) or x.dtype.kind == "b")
    if not isinstance(x, np.ndarray) or x.ndim != 2 or not numeric or x.dtype.kind == "m":
        shape = getattr(x, "shape", None)
        raise DataError(
            f"{path}: modality {modality!r} must be a 2-D numeric array (items x dim), "
            f"got shape {shape} dtype {getattr(x, 'dtype', type(x).__name__)}: save one row per item"
        )
    if x.shape[1] == 0:
        raise DataError(
            f"{path}: modality {modality!r} has shape {x.shape}, zero feature columns: save the "
            "items x dim matrix (dim >= 1), or leave the modality out"
        )
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(
            f"{path}: modality {modality!r} is complex ({x.dtype}), features are real numbers: save the "
            "real part (x.real) or the magnitude (abs(x)) with numpy.save"
        )
    if np.issubdtype(x.dtype, np.floating) and np.finfo(x.dtype).max > np.finfo(np.float32).max:
        with np.errstate(invalid="ignore"):
            big = np.abs(x) > np.finfo(np.float32).max  # NaN compares False; inf is left to the NaN/inf check
        big &= np.isfinite(x)
        if big.any():
            r, c = (int(v[0]) for v in np.nonzero(big))
            raise DataError(
                f"{path}: modality {modality!r} row {r} column {c} holds {float(x[r, c])!r}, outside float32's range "
                f"(about +-3.4e38; {counted(int(big.sum()), 'such value')}): features are stored as float32, so scale them"
            )
    return x.astype(np.float32, copy=False)


def read_npy(path: Path, fix: str, damaged: str = "re-save it") -> Any:
    """The array of the ``.npy`` file ``path``, loaded without pickle, after
    :func:`check_npy_file`: every problem is a one-line DataError, ending in ``fix`` (what
    to write instead) or, for a damaged file, ``damaged``."""
    check_npy_file(path, fix, damaged)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:  # what the header and size checks cannot tell
        raise DataError(f"{path}: cannot be read as a .npy array ({one_line(e)}): {damaged}") from None
    except OSError as e:
        raise DataError(f"{path}: not a .npy file ({one_line(e.strerror or e)}): {fix}") from None


def check_npy_file(path: Path, fix: str, damaged: str = "re-save it") -> None:
    """A DataError saying what ``path`` is when it is not a ``.npy`` file numpy loads
    without pickle: numpy.load takes anything without its magic bytes for a pickle
    ("cannot be loaded without pickle" for a text file) and returns an NpzFile for a
    ``.npz`` archive; an array of Python objects needs pickle (``fix``: what to save
    instead). A damaged header, or a file shorter than the header's shape and dtype need
    (truncated: numpy's "cannot reshape array of size ..."), ends in ``damaged``. Reads the
    header only."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic == b"\x93NUMPY":
                f.seek(0)
                try:
                    version = np.lib.format.read_magic(f)
                    # numpy's public readers (its _read_array_header is private, gone from numpy 2's
                    # np.lib.format): 2.0 and 3.0 headers both start with a 4-byte length
                    fmt = np.lib.format
                    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = read(f)
                except (ValueError, EOFError, SyntaxError, TypeError) as e:
                    raise DataError(f"{path}: the .npy header is damaged ({one_line(e)}): {damaged}") from None
                start = f.tell()
                size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: {damaged}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({one_line(e.strerror or e)})") from None
    if magic == b"\x93NUMPY":
        if dtype.hasobject:
            raise DataError(f"{path}: cannot be loaded without pickle (an array of Python objects, dtype "
                            f"{dtype}, shape {shape}): {fix}")
        need = start + int(np.prod(shape, dtype=object)) * dtype.itemsize
        if size < need:
            raise DataError(f"{path}: truncated: {size} of {need} bytes (the header's shape {shape}, dtype {dtype}): "
                            f"{damaged}")
        return
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        what = "a .npz archive (numpy.savez), not a .npy array"
    elif magic[:1] == b"\x80":
        what = "a Python pickle, which is never loaded, not a .npy array"
    elif not magic:
        what = "empty (0 bytes), not a .npy array"
    else:
        what = "not a .npy file (it does not start with numpy's magic bytes; a text file?)"
    raise DataError(f"{path}: {what}: {fix}")


def check_feature_matrix(
    x: np.ndarray, path: Path, modality: str, item_ids: np.ndarray, line_of: Any = None
) -> np.ndarray:
    """Row count and finiteness of a feature matrix, with errors naming ``path``, and the
    file line of a row (``line_of(row)``) when the rows come from a text file."""
    n = len(item_ids)
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataError(
            f"{path}: modality {modality!r} has shape {x.shape}, not items x dim with dim >= 1: give "
            "each item a feature row of at least one value, or leave the modality out"
        )
    if x.shape[0] != n:
        raise DataError(
            f"{path}: modality {modality!r} has {x.shape[0]} rows but the dataset has {n} items: "
            "give one feature row per item, row i = item index i"
        )
    bad = nonfinite_rows(x)
    if bad is not None:
        r = int(np.flatnonzero(bad)[0])
        where = f"{path} line {line_of(r)}: modality {modality!r}" if line_of else f"{path}: modality {modality!r} row {r}"
        raise DataError(
            f"{where} (item {str(item_ids[r])!r}) contains NaN or inf "
            f"({int(bad.sum())} rows): replace them with zeros to mark the item's modality as missing"
        )
    return x


def check_unseen(
    users: np.ndarray | IdColumn,
    items: np.ndarray | IdColumn,
    split: np.ndarray | IdColumn,
    unseen: str,
    where: Sequence[str],
) -> None:
    """Raise, naming the file and line of the first one, for valid/test rows whose user or
    item never occurs in train, when ``unseen == "error"``.

    ``users``, ``items``, ``split``: one value per row, or an :class:`IdColumn` of them.
    ``where[k]`` describes the origin of row ``k`` (e.g. ``"path line 12"``). The
    ``"drop"``/``"keep"`` cases are left to :func:`~graphrec.data.dataset.build_dataset`.
    """
    if unseen not in ("error", "drop", "keep"):
        raise DataError(f"unseen={unseen!r} (--unseen) is not one of error, drop, keep")
    if unseen != "error":
        return
    split = IdColumn.of(split)
    in_train = split.rows_where(split.values == "train")
    if in_train.all():
        return
    users = IdColumn.of(users)
    items = IdColumn.of(items)

    def seen_in_train(col: IdColumn) -> np.ndarray:
        seen = np.zeros(len(col.values), dtype=bool)
        seen[col.codes[in_train]] = True
        return col.rows_where(seen)

    u_ok = seen_in_train(users)
    i_ok = seen_in_train(items)
    orphan = ~in_train & ~(u_ok & i_ok)
    if not orphan.any():
        return
    k = int(np.flatnonzero(orphan)[0])
    who = f"user {str(users[k])!r}" if not u_ok[k] else f"item {str(items[k])!r}"
    raise DataError(
        f"{where[k]}: {who} appears in {split[k]} but never in train "
        f"({counted(int(orphan.sum()), 'such interaction')}): pass unseen='drop' (CLI: --unseen drop) "
        "to remove them or unseen='keep' (--unseen keep) to keep them"
    )


def duplicate_rows(
    users: np.ndarray | IdColumn,
    items: np.ndarray | IdColumn,
    split: np.ndarray | IdColumn,
    file_of: np.ndarray,
    files: Sequence[str],
) -> dict[str, int]:
    """``{file: rows}`` for the rows that repeat a (user, item) pair already listed in the
    same split (``file_of[k]`` indexes ``files``, the file row ``k`` is in; ``users``,
    ``items``, ``split``: one value per row, or an :class:`IdColumn` of them); files
    without such rows are left out. :func:`~graphrec.data.dataset.build_dataset` merges
    those rows into one interaction (the latest timestamp); readers record the count in
    ``meta["duplicate_rows"]`` and ``graphrec prepare`` prints it as a note."""
    if len(users) < 2:
        return {}
    u = IdColumn.of(users).codes
    i = IdColumn.of(items).codes
    s = IdColumn.of(split).codes
    key = u.astype(np.int64)
    key *= int(i.max()) + 1
    key += i
    key *= 3
    key += s
    order = np.argsort(key, kind="stable")
    key = key[order]
    repeats = key[1:] == key[:-1]
    del key
    dup = np.zeros(len(order), dtype=bool)
    dup[order[1:][repeats]] = True
    del order, repeats
    counts = np.bincount(np.asarray(file_of)[dup], minlength=len(files))
    return {str(files[f]): int(n) for f, n in enumerate(counts.tolist()) if n}


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word`` as it is read aloud (an MMRec, a RecBole, an item)."""
    return "an" if word[:1].lower() in "aeiou" or word[:2] in ("MM", "ML") else "a"


def find_prefix(directory: Path, suffix: str, name: str | None, what: str) -> str:
    """The dataset prefix of files ``{prefix}{suffix}`` in ``directory``.

    ``name`` if given, else the directory name when ``{dirname}{suffix}`` exists, else
    the only prefix found.
    """
    if not directory.is_dir():
        raise DataError(f"{directory}: directory not found: pass the folder that holds the {what} files")
    if name is not None:
        return name
    if (directory / f"{directory.name}{suffix}").is_file():
        return directory.name
    found = sorted(
        p.name[: -len(suffix)]
        for p in directory.glob(f"*{suffix}")
        if p.is_file()
    )
    if len(found) == 1:
        return found[0]
    guess = guess_format(directory)
    if not found or (guess is not None and guess[0] == "unisrec" and suffix == ".inter"):
        there = f"no *{suffix} file found" if not found else f"{', '.join(found)} are split files"
        raise DataError(f"{directory}: {there}: this is not {_article(what)} {what} directory"
                        + (f"; it holds {guess[1]}: use --format {guess[0]}" if guess else ""))
    raise DataError(
        f"{directory}: several datasets ({', '.join(found)}) have {suffix} files: pass name= "
        "(CLI: --name) to choose one"
    )


def guess_format(directory: Path) -> tuple[str, str] | None:
    """The community format whose files ``directory`` holds, as ``(format, what was
    seen)``, for a message when it was read as another; None when none is recognised."""
    def has(*names: str) -> bool:
        return all((directory / n).is_file() for n in names)

    if has("train.json", "val.json", "test.json"):
        return "lattice", "LATTICE's train.json, val.json and test.json"
    if any(directory.glob("*.train.inter")):
        return "unisrec", "UniSRec's NAME.train.inter"
    if has("ratings.csv") or has("u.data"):
        return "movielens", "MovieLens ratings (" + ("ratings.csv" if has("ratings.csv") else "u.data") + ")"
    return None


# ---------------------------------------------------------------------- columns read in chunks
class Factorizer:
    """Distinct strings and their codes, in the order they are first met: what a column of
    ids read in chunks is stored as (one small integer per row, each distinct id once)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def codes(self, values: Sequence[str]) -> np.ndarray:
        """The code of every value (new values get the next codes, in the order they
        first occur), int32 while they fit."""
        index = self._codes
        get = index.setdefault
        codes = [get(v, len(index)) for v in values]
        return np.array(codes, dtype=index_dtype(len(index)))

    def has_nul_end(self) -> bool:
        """Whether a string ends with ``\\0`` (numpy drops those characters)."""
        return any(k.endswith("\0") for k in self._codes)

    def values(self) -> np.ndarray:
        """The distinct strings in code order (code ``c`` is ``values()[c]``)."""
        return np.array(list(self._codes), dtype=str) if self._codes else np.zeros(0, dtype="<U1")


def id_column(codes: Sequence[np.ndarray] | np.ndarray, factorizer: Factorizer) -> IdColumn:
    """An :class:`~graphrec.data.dataset.IdColumn` of the codes (one array, or the arrays
    of several chunks or files, concatenated) of ``factorizer``'s strings. The strings are
    made distinct as numpy compares them (it drops trailing ``\\0`` characters, so two ids
    read as different could be one): equal values, equal codes, as ids compared as strings
    would be."""
    if isinstance(codes, (list, tuple)):
        codes = np.concatenate(codes) if codes else np.zeros(0, np.int32)
    codes = np.asarray(codes)
    if not len(codes):
        codes = codes.astype(np.int32)
    values = factorizer.values()
    if factorizer.has_nul_end():
        values, inverse = np.unique(values, return_inverse=True)
        codes = inverse.astype(codes.dtype)[codes]
    return IdColumn(codes, values)


class ColumnCheck:
    """What a whole-column helper (:func:`parse_int`, :func:`parse_float`,
    :func:`check_not_missing`) returns or raises, worked out over the chunks of a
    :class:`TableScan` (fed in file order with :meth:`feed`): :meth:`values` gives the
    column's values, compact (one array for the whole file), or raises the helper's error.
    A helper checks a whole column kind by kind (is every value a number? then: is any
    negative?); ``rank`` is that order, so a value of the first kind anywhere in the file
    is reported before one of the second, and within a kind the first in the file wins."""

    def __init__(self, column: str, store: bool = True):
        self.column = column
        self.store = store  # False: the values are checked, not kept (values() is then empty)
        self._parts: list[np.ndarray] = []
        self._errors: dict[int, DataError] = {}

    @property
    def failed(self) -> bool:
        return bool(self._errors)

    def _fail(self, rank: int, error: DataError | None) -> None:
        if error is not None and rank not in self._errors:
            self._errors[rank] = error

    def feed(self, table: Table) -> None:
        if 0 in self._errors:  # nothing later in the file can come before it
            return
        out = self._check(table, table.col(self.column))
        if self._errors:
            self._parts.clear()
        elif out is not None and self.store:
            self._parts.append(out)

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        raise NotImplementedError

    def _final_error(self) -> None:
        """Errors known only at the end of the file (a count over the whole column)."""

    def _empty(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    def values(self) -> np.ndarray:
        self._final_error()
        if self._errors:
            raise self._errors[min(self._errors)]
        if len(self._parts) != 1:
            self._parts = [np.concatenate(self._parts) if self._parts else self._empty()]
        return self._parts[0]


def run_checks(scan: Any, checks: Sequence[ColumnCheck]) -> None:
    """Read ``scan`` (a :class:`TableScan`, or anything whose ``chunks()`` yields
    :class:`Table` s of consecutive rows) to its end, feeding every chunk to ``checks``,
    listed in the order the reader makes them: once one has failed, the later ones are no
    longer fed (their errors could never be the first). An error of the file itself (its
    fields, its text) is raised here."""
    for chunk in scan.chunks():
        for c in checks:
            c.feed(chunk)
            if c.failed:
                break


def _small_ints(out: np.ndarray) -> np.ndarray:
    """``out`` (int64) as int32 when every value fits: half the memory for ids and indices."""
    if out.size and (int(out.min()) < -(2**31) or int(out.max()) >= 2**31):
        return out
    return out.astype(np.int32)


class IntCheck(ColumnCheck):
    """:func:`parse_int` of a column read in chunks (non-negative; int32 values while they
    fit); ``limit(table, values, out)`` may add an error of the third rank (a value too large)."""

    def __init__(self, column: str, *, what: str = "an integer index", limit: Any = None, dtype: Any = None):
        super().__init__(column)
        self.what, self.limit, self.dtype = what, limit, dtype

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        out, err = _int_values(table, self.column, values, self.what)
        if out is None:
            self._fail(0, err)
            return None
        self._fail(1, _negative_error(table, self.column, values, out, self.what))
        if self.limit is not None:
            self._fail(2, self.limit(table, values, out))
        return out.astype(self.dtype) if self.dtype is not None else _small_ints(out)


class FloatCheck(ColumnCheck):
    """:func:`parse_float` of a column read in chunks (float64 values)."""

    def __init__(self, column: str, *, empty_nan: bool = False, finite: bool = False, typed: bool = False,
                 store: bool = True):
        super().__init__(column, store)
        self.empty_nan, self.finite, self.typed = empty_nan, finite, typed
        self._bad = 0  # non-finite values so far
        self._first_bad: tuple[Path, int, str] | None = None

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        out, values, err = _float_values(table, self.column, values, self.empty_nan, self.typed)
        if out is None:
            self._fail(0, err)
            return None
        if self.finite:
            bad = ~np.isfinite(out)
            if bad.any():
                self._bad += int(bad.sum())
                if self._first_bad is None:
                    k = int(np.flatnonzero(bad)[0])
                    self._first_bad = (table.path, table.line(k), values[k])
        return out

    def _final_error(self) -> None:
        if self._first_bad is not None:
            self._fail(1, _nonfinite_error(*self._first_bad, self.column, self._bad))

    def _empty(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float64)


class TokenCheck(ColumnCheck):
    """Ids of a column read in chunks, as codes of ``factorizer`` (shared by the files of
    one kind of id): ``check(table, values)`` returns the error of a chunk's first bad
    id (:func:`check_not_missing`'s), or None; ``strip``: ids without the whitespace around
    them, and an empty one is an error of the first rank, ``empty(table, k)``."""

    def __init__(self, column: str, factorizer: Factorizer, check: Any, *, strip: bool = False, empty: Any = None):
        super().__init__(column)
        self.factorizer, self.check, self.strip, self.empty = factorizer, check, strip, empty

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        rank = 0
        if self.strip:
            values = [v.strip() for v in values]
            if not all(values):
                self._fail(0, self.empty(table, values.index("")))
                return None
            rank = 1
        self._fail(rank, self.check(table, values))
        if self._errors:
            return None
        return self.factorizer.codes(values)

    def _empty(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int32)


class LazyWhere(Sequence[str]):
    """Row origins computed on access (avoids building strings for every row)."""

    def __init__(self, fn: Any, n: int):
        self._fn = fn
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k: Any) -> Any:  # type: ignore[override]
        return self._fn(int(k))


#: an item count taken as ``max(index) + 1`` is refused when it is above
#: ``INDEX_FLOOR`` and more than ``INDEX_SPREAD`` times the distinct indices that occur
INDEX_SPREAD = 10
INDEX_FLOOR = 1000


def check_dense_indices(idx: np.ndarray, where_of: Any, what: str, fix: str) -> int:
    """``max(idx) + 1``, the item count a format without an id map takes, unless the
    indices are far too sparse for 0-based indices (more than :data:`INDEX_SPREAD` times
    the distinct values and above :data:`INDEX_FLOOR`): then raw ids were most likely
    given where indices belong, and allocating ``max + 1`` items would create mostly
    phantom items (or run out of memory). ``where_of(k)`` names the origin of ``idx[k]``."""
    k = int(np.argmax(idx))
    n = int(idx[k]) + 1
    distinct = int(np.unique(idx).size)
    if n > INDEX_FLOOR and n > INDEX_SPREAD * distinct:
        raise DataError(
            f"{where_of(k)}: {what} {n - 1} would make {n:,} items (0..{n - 1}) but only {distinct:,} distinct "
            f"indices occur (more than {INDEX_SPREAD}x): they look like raw ids, not 0-based item indices: {fix}"
        )
    return n


def index_ids(n: int) -> np.ndarray:
    """``["0", "1", ..., str(n-1)]`` as a compact string array.

    (``np.arange(n).astype(str)`` would give a ``<U21`` array, and the string width is
    part of :meth:`Dataset.fingerprint`; ids read back from text files are compact.)
    """
    return np.array([str(i) for i in range(n)], dtype=str) if n else np.zeros(0, dtype="<U1")


def resolve(path: PathLike, base: Path) -> Path:
    """``path`` relative to ``base`` unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def check_earlier_export(out: Path) -> None:
    """What an exporter's ``overwrite=True`` may replace: an earlier export (a folder
    holding a ``.inter`` file, as MMRec's and RecBole's do) or nothing; any other folder
    (a graphrec dataset, a folder of notes) is a one-line :class:`DataError`."""
    if out.is_dir() and any(out.iterdir()) and not any(out.glob("*.inter")):
        raise DataError(f"{out} holds no .inter file, so it is no earlier export: overwrite=True replaces only "
                        "those; choose another output folder")


def load_feature_files(
    features: Mapping[str, PathLike] | None, base: Path
) -> dict[str, tuple[np.ndarray, Path]]:
    """``{modality: (float32 matrix, path)}`` from ``{modality: .npy path}``."""
    if features is not None and not isinstance(features, Mapping):
        raise ConfigError(f"features must map modalities to .npy files, e.g. {{'image': 'image_feat.npy'}}, "
                          f"got {type(features).__name__} {features!r}")
    out: dict[str, tuple[np.ndarray, Path]] = {}
    for mod, p in (features or {}).items():
        check_modality_name(mod, f"features={{{mod!r}: {str(p)!r}}}", ConfigError)
        path = resolve(p, base)
        out[str(mod)] = (load_npy(path, str(mod)), path)
    return out


def item_count_from_features(feats: Mapping[str, tuple[np.ndarray, Path]]) -> int | None:
    """The common row count of the feature matrices (None when there are none)."""
    if not feats:
        return None
    items = list(feats.items())
    mod0, (x0, p0) = items[0]
    for mod, (x, p) in items[1:]:
        if x.shape[0] != x0.shape[0]:
            raise DataError(
                f"{p}: modality {mod!r} has {x.shape[0]} rows but {p0} ({mod0!r}) has "
                f"{x0.shape[0]}: every feature file needs one row per item, in the same order"
            )
    return int(x0.shape[0])

