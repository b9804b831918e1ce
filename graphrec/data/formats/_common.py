"""Helpers shared by the importers: table parsing, numeric columns, id maps, features.

Every helper raises :class:`~graphrec.errors.DataError` with a one-line message that
names the file, the line (1-based, as an editor shows it) or the id, and the fix.
Nothing here unpickles: ``.npy`` files are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from graphrec._checks import counted, is_int_text
from graphrec.data.dataset import check_modality_name, nonfinite_rows
from graphrec.errors import ConfigError, DataError

__all__ = [
    "PathLike",
    "SPLIT_NAMES",
    "Table",
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


def read_table(
    path: Path,
    *,
    sep: str = "\t",
    header: bool = True,
    names: Sequence[str] | None = None,
    strip_types: bool = False,
    allow_empty: bool = False,
    quoted_cells: bool = False,
) -> Table:
    """Read a delimited text file into string columns (rows are lines: no multi-line cells).

    ``header=False`` takes column names from ``names``. ``strip_types`` turns RecBole
    style ``name:type`` header fields into ``name`` (the raw header is kept in
    ``Table.header``). ``quoted_cells`` reads a cell that starts and ends with ``"`` the
    way RecBole's CSV parser does (outer quotes removed, ``""`` -> ``"``); see
    :func:`unquote_cell`. Lines may end in ``\\n`` or ``\\r\\n``; a final newline is
    optional. Blank lines after the header (empty or spaces only: a trailing ``\\n\\n``, a
    blank line between rows) are skipped, as pandas (RecBole's and MMRec's reader) skips
    them; every other line must have one field per column (a line of tabs only is a row
    of empty cells).
    """
    require_file(path, "file")
    text = _read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if header:
        if not lines:
            raise DataError(f"{path}: file is empty (no header line): write the header and the rows")
        head = lines[0].split(sep)
        if lines[0].startswith("\ufeff"):
            head[0] = head[0][1:]
        body = lines[1:]
        first = 2
    else:
        if names is None:
            raise ValueError("names are required when header=False")
        head = list(names)
        body = lines
        first = 1
    keys = [h.split(":", 1)[0] if strip_types else h for h in head]
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            if header and looks_like_data(keys):
                raise DataError(
                    f"{path} line 1: the header is missing: line 1 {head} looks like a data row, "
                    "not column names: add the header line first"
                )
            raise DataError(f"{path} line 1: column {k!r} appears twice in the header: rename or remove one")
        seen.add(k)
    line_numbers: list[int] | None = None
    if any(not ln.strip(" ") for ln in body):  # blank lines are skipped; rows keep their file line numbers
        line_numbers = [first + k for k, ln in enumerate(body) if ln.strip(" ")]
        body = [ln for ln in body if ln.strip(" ")]
    if not body and not allow_empty:
        raise DataError(f"{path}: no data rows after the header: the file is empty, add its rows")
    n = len(keys)
    rows = [ln.split(sep) for ln in body]
    for k, r in enumerate(rows):
        if len(r) != n:
            what = "tab" if sep == "\t" else repr(sep)
            where = line_numbers[k] if line_numbers is not None else first + k
            # a whole line in one field that another separator splits into the columns: the file's separator is wrong
            other = next((o for o in SEPARATORS if o != sep and len(body[k].split(o)) == n), None) if len(r) == 1 else None
            if other is not None:
                raise DataError(
                    f"{path} line {where}: expected {n} {SEPARATORS.get(sep, what)}-separated fields "
                    f"({', '.join(keys)}), found 1: the line is {SEPARATORS[other]}-separated: write the file with "
                    f"{SEPARATORS.get(sep, what)}s between the columns"
                )
            raise DataError(
                f"{path} line {where}: expected {n} {what}-separated fields "
                f"({', '.join(keys)}), found {len(r)}: fix or remove the line"
            )
    cols = list(zip(*rows)) if rows else [() for _ in keys]
    columns = {k: list(c) for k, c in zip(keys, cols)}
    if quoted_cells:
        for k, c in columns.items():
            if any(v.startswith('"') for v in c):
                columns[k] = [unquote_cell(v) for v in c]
    return Table(path, head, columns, first, line_numbers)


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


def to_int64(values: Sequence[str]) -> tuple[np.ndarray | None, int]:
    """``(int64 array, -1)``, or ``(None, k)`` where ``values[k]`` is the first value that is
    not an integer in int64 range written with the digits 0-9 (an optional ``-``, and
    surrounding whitespace, which is ignored; ``+3``, ``1_0`` and ``1.0`` are refused)."""
    try:
        if not all(is_int_text(v) for v in values):
            raise ValueError("not an integer")
        return (np.array(values, dtype=np.int64) if len(values) else np.zeros(0, np.int64)), -1
    except (TypeError, ValueError, OverflowError):
        return None, max(_first_bad(values, _to_int64), 0)


def parse_int(table: Table, column: str, *, what: str = "an integer index", nonneg: bool = True) -> np.ndarray:
    """Column ``column`` of ``table`` as int64, with the line of the first bad value."""
    values = table.col(column)
    out, k = to_int64(values)
    if out is None:
        raise DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is not "
            f"{what}: {column} must be a whole number below 2**63, written with the digits 0-9 "
            "(no '+', '_' or decimal point)"
        )
    if nonneg and out.size and out.min() < 0:
        k = int(np.flatnonzero(out < 0)[0])
        raise DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is negative: "
            f"{column} must be {what} >= 0"
        )
    return out


def parse_float(
    table: Table, column: str, *, empty_nan: bool = False, finite: bool = False, typed: bool = False
) -> np.ndarray:
    """Column ``column`` as float64 (``empty_nan``: an empty value is NaN; ``finite``:
    NaN and infinities, also ``1e999``, are an error naming the line, as for timestamps).
    ``typed``: the column is declared ``{column}:float`` (a RecBole header), so the error
    for a value that is no number says which type fits it (``float_seq`` for several
    numbers, ``token`` for text)."""
    values = table.col(column)
    if empty_nan:
        values = [v if v.strip() else "nan" for v in values]
    try:
        out = np.array(values, dtype=np.float64) if values else np.zeros(0, np.float64)
    except (TypeError, ValueError):
        k = max(_first_bad(values, float), 0)
        raise DataError(
            f"{table.path} line {table.line(k)}: {column} {values[k]!r} is not a number: "
            + _float_fix(values[k], column, typed)
        ) from None
    if finite:
        bad = ~np.isfinite(out)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{table.path} line {table.line(k)}: {column} {values[k]!r} is not a finite number "
                f"({counted(int(bad.sum()), 'such row')}): every {column} must be a finite number (e.g. unix seconds): "
                "fix or remove the row"
            )
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
    check_npy_file(path, "save the features as one items x dim matrix with numpy.save")
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(
            f"{path}: cannot be loaded without pickle ({one_line(e)}): save the features as a "
            "numeric array with numpy.save"
        ) from None
    except OSError as e:
        raise DataError(f"{path}: not a .npy file ({one_line(e)}): save it with numpy.save") from None
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


def check_npy_file(path: Path, fix: str) -> None:
    """A DataError saying what ``path`` is when it is not a ``.npy`` file: numpy.load
    takes anything without its magic bytes for a pickle ("cannot be loaded without
    pickle" for a text file) and returns an NpzFile for a ``.npz`` archive."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({one_line(e.strerror or e)})") from None
    if magic == b"\x93NUMPY":
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
    users: np.ndarray,
    items: np.ndarray,
    split: np.ndarray,
    unseen: str,
    where: Sequence[str],
) -> None:
    """Raise, naming the file and line of the first one, for valid/test rows whose user or
    item never occurs in train, when ``unseen == "error"``.

    ``where[k]`` describes the origin of row ``k`` (e.g. ``"path line 12"``). The
    ``"drop"``/``"keep"`` cases are left to :func:`~graphrec.data.dataset.build_dataset`.
    """
    if unseen not in ("error", "drop", "keep"):
        raise DataError(f"unseen={unseen!r} (--unseen) is not one of error, drop, keep")
    if unseen != "error":
        return
    split = np.asarray(split)
    in_train = split == "train"
    if in_train.all():
        return
    users = np.asarray(users)
    items = np.asarray(items)
    u_ok = np.isin(users, users[in_train])
    i_ok = np.isin(items, items[in_train])
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
    users: np.ndarray, items: np.ndarray, split: np.ndarray, file_of: np.ndarray, files: Sequence[str]
) -> dict[str, int]:
    """``{file: rows}`` for the rows that repeat a (user, item) pair already listed in the
    same split (``file_of[k]`` indexes ``files``, the file row ``k`` is in); files without
    such rows are left out. :func:`~graphrec.data.dataset.build_dataset` merges those
    rows into one interaction (the latest timestamp); readers record the count in
    ``meta["duplicate_rows"]`` and ``graphrec prepare`` prints it as a note."""
    if len(users) < 2:
        return {}
    _, u = np.unique(np.asarray(users), return_inverse=True)
    _, i = np.unique(np.asarray(items), return_inverse=True)
    _, s = np.unique(np.asarray(split), return_inverse=True)
    key = (u.astype(np.int64) * (int(i.max()) + 1) + i) * 3 + s
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    dup = np.zeros(len(key), dtype=bool)
    dup[order[1:]] = ordered[1:] == ordered[:-1]
    counts = np.bincount(np.asarray(file_of)[dup], minlength=len(files))
    return {str(files[f]): int(n) for f, n in enumerate(counts.tolist()) if n}


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
    if not found:
        raise DataError(f"{directory}: no *{suffix} file found: this is not a {what} directory")
    raise DataError(
        f"{directory}: several datasets ({', '.join(found)}) have {suffix} files: pass name= "
        "(CLI: --name) to choose one"
    )


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

