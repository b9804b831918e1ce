"""A plain table of interactions (CSV or TSV with a header), for data in no community
format: a shop's ``orders.csv``, a log export, Last.fm's ``user_artists.dat``.

One row per interaction; columns found by name (``user_col``, ``item_col``: the defaults
are ``user_id`` and ``item_id``, each also found as ``userId``/``user``,
``itemId``/``item``):

* ids are strings as written (whitespace around them removed): ``A1B2``, ``42``,
  ``user@example.org``. Users are in numeric order when every id is an integer, else
  lexicographic; items likewise, unless ``items`` fixes their order (below).
* ``time_col`` (default ``timestamp`` when the header has it): unix seconds (any finite
  number) or ISO 8601 dates and times (``2024-05-01``, ``2024-05-01 13:45:00``,
  ``2024-05-01T13:45:00+02:00``; without an offset a time is read as UTC), as seconds.
  One file holds one kind.
* ``rating_col`` (default ``rating`` when the header has it) with ``min_rating``: keep
  only the rows whose value is ``>= min_rating`` (explicit feedback as implicit
  positives); without ``min_rating`` every row is an interaction.
* ``split_col``: a column labelling each row ``train``, ``valid`` or ``test`` (a split
  given with the data); without it every row is train (split the dataset afterwards).

The separator is a comma (standard CSV quoting) unless the file name ends in ``.tsv``
or ``.tab`` or the header line holds a tab and no comma (tab-separated, no quoting, as
``.dat`` exports often are). Blank lines are skipped; a (user, item) pair listed twice
in a split is one interaction with the latest time (counted in
``meta["duplicate_rows"]``).

Side tables (same separator rules, found by the same id column names):

* ``items``: one row per item (the id column named like ``item_col``, or ``item_id``,
  ``itemId``, ``item``, ``id``). Its other columns become ``item_fields`` (strings), its
  row order is the dataset's item order, and its items without any interaction are kept
  (a catalogue's new items: ranked, and recommendable by the content models). Every
  item of the interactions needs a row.
* ``features``: ``{modality: .npy}`` whose row ``r`` is the ``r``-th item of ``items``
  (so ``items`` is required with them).
* ``users``: one row per user; its other columns become ``user_fields`` (users without a
  row get ``""``; rows of users without interactions are ignored).

A side file's path is relative to the interactions file's folder, or to the current
directory when only that holds it.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphrec.data.dataset import Dataset, IdColumn, build_dataset, dataset_name_from
from graphrec.data.formats._common import (
    ColumnCheck,
    Factorizer,
    FloatCheck,
    SEPARATORS,
    PathLike,
    RowScan,
    Table,
    TableScan,
    TokenCheck,
    check_feature_matrix,
    check_separator,
    check_unseen,
    duplicate_rows,
    id_column,
    is_number,
    item_count_from_features,
    load_feature_files,
    one_line,
    require_file,
    run_checks,
)
from graphrec.data.ctr import LARGEST_SECONDS
from graphrec.data.formats._csvscan import CsvScan
from graphrec.errors import ConfigError, DataError, GraphrecNote

__all__ = ["read_table"]

_USER_NAMES = ("user_id", "userId", "user")
_ITEM_NAMES = ("item_id", "itemId", "item")
_SPLITS = ("train", "valid", "test")


def _is_tab_separated(path: Path) -> bool:
    """``.tsv``/``.tab``, or a header line with a tab and no comma."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        return False
    return "\t" in first and "," not in first


def _scan(path: Path, names: tuple[str, ...], example: str, chunk_bytes: int | None = None) -> RowScan:
    """The rows of ``path`` in chunks, comma- or tab-separated (module doc)."""
    require_file(path, "file")
    scan: RowScan
    if _is_tab_separated(path):
        scan = TableScan(path, sep="\t", chunk_bytes=chunk_bytes)
    else:
        scan = CsvScan(path, names, example, chunk_bytes=chunk_bytes, skip_blank=True)
    header = [str(h).strip() for h in scan.keys]
    if not any(header):
        raise DataError(f"{path} line 1: the line is empty: the header (the column names, e.g. {example}) must be "
                        "the first line")
    seen: set[str] = set()
    for h in header:
        if h in seen and h:
            raise DataError(f"{path} line 1: column {h!r} appears twice in the header: rename or remove one")
        seen.add(h)
    return scan


def _column(scan: RowScan, given: str | None, defaults: tuple[str, ...], what: str, option: str,
            example: str) -> str:
    """The column read as ``what``: ``given`` (which must be in the header), else the first
    of ``defaults`` the header has; a one-line error naming the header and the option."""
    written = [str(h) for h in scan.keys]
    header = [h.strip() for h in written]  # `user_id, item_id`: the spaces are no part of the names
    if given is not None:
        if given.strip() in header:
            return written[header.index(given.strip())]
        raise DataError(f"{scan.path} line 1: header has no column {given!r} ({option}; found {header}): "
                        f"pass the name of the {what} column as written in the header{_did_you_mean(given, header)}")
    for name in defaults:
        if name in header:
            return written[header.index(name)]
    sep = getattr(scan, "sep", ",")
    check_separator(scan.path, written, sep, defaults,
                    f"write it with {SEPARATORS[sep]}s between the columns (e.g. {example.replace(',', sep)})")
    if header and all(is_number(h) for h in header):
        raise DataError(f"{scan.path} line 1: the header is missing: line 1 {header} looks like a data row, not "
                        f"column names: add the header line first (e.g. {example})")
    if option.startswith("--"):
        fix = f"name it with {option} (or call it {' or '.join(defaults)})"
    else:  # a side table, keyed by the interactions' column name or a usual one
        fix = f"rename its {what} column to {' or '.join(defaults)}"
    raise DataError(f"{scan.path} line 1: header has no {what} column (found {header}): {fix}"
                    + _did_you_mean(defaults[0], header, option if option.startswith("--") else None))


def _present(scan: RowScan, name: str) -> str | None:
    """The header's column named ``name`` (spaces around it aside), as written; None without one."""
    return next((str(h) for h in scan.keys if str(h).strip() == name), None)


def _did_you_mean(wanted: str, header: list[str], option: str | None = None) -> str:
    """`` (did you mean ...?)`` naming the header's column like ``wanted`` (the same letters
    in another case or with other separators: ``userID`` for ``user_id``), or nothing."""
    def key(name: str) -> str:
        return "".join(c for c in name.lower() if c.isalnum()).removesuffix("id")

    close = [h for h in header if key(h) and key(h) == key(wanted)]
    if not close:
        return ""
    return f" (did you mean {option + ' ' if option else ''}{close[0]}?)"


class _TimeCheck(ColumnCheck):
    """A time column read in chunks: unix seconds (finite numbers) or ISO 8601 dates and
    times, as float64 seconds; the first row fixes which, a later row of the other kind is
    an error (rank 0: the first bad row in the file)."""

    def __init__(self, column: str):
        super().__init__(column)
        self.dates: bool | None = None

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        values = [v.strip() for v in values]
        if self.dates is None and values:
            self.dates = not is_number(values[0])
        if not self.dates:
            try:
                out = np.array(values, dtype=np.float64)
            except ValueError:
                out = None
            if out is not None and np.isfinite(out).all():
                return out
            k = next(k for k, v in enumerate(values) if not (is_number(v) and np.isfinite(float(v))))
            self._fail(0, self._error(table, k, values[k], "unix seconds (finite numbers)"))
            return None
        # a number is no ISO 8601 time here (numpy would read 1714571100 as a year)
        out = None if any(map(is_number, values)) else _iso_seconds(values)
        if out is None:
            k = next(k for k, v in enumerate(values) if is_number(v) or _iso_seconds([v]) is None)
            self._fail(0, self._error(table, k, values[k], "ISO 8601 dates or times"))
            return None
        return out

    def _error(self, table: Table, k: int, value: str, kind: str) -> DataError:
        return DataError(
            f"{table.path} line {table.line(k)}: {self.column} {value!r} is not a time, and the column's first row "
            f"makes it {kind}: write every time as unix seconds (e.g. 1714571100) or every time as ISO 8601 "
            "(e.g. 2024-05-01T13:45:00), or name another column with --time-col"
        )

    def _empty(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float64)


def _iso_seconds(values: list[str]) -> np.ndarray | None:
    """Seconds since 1970 (UTC) of ISO 8601 dates/times, or None when one is not one.
    numpy parses naive ones at C speed; one with an offset or ``Z`` goes through
    :meth:`datetime.fromisoformat`."""
    if not any(("+" in v or v.endswith("Z") or v.count("-") > 2) for v in values):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ms = np.array(values, dtype="datetime64[ms]")
        except (ValueError, DeprecationWarning, OverflowError):
            ms = None
        if ms is not None and not np.isnat(ms).any():
            return ms.astype(np.int64) / 1000.0
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        out[k] = t.timestamp()
    return out


def _id_error(kind: str, column: str, what: str = "id"):
    def empty(table: Table, k: int) -> DataError:
        return DataError(f"{table.path} line {table.line(k)}: empty {kind} {what} in column {column!r}: give every "
                         f"row its {kind}, or remove the line")

    return empty


def _side_table(path: Path, id_names: tuple[str, ...], kind: str, example: str
                ) -> tuple[list[str], dict[str, list[str]]]:
    """A side table's ids (stripped, distinct, non-empty) and its other columns."""
    scan = _scan(path, id_names, example)
    table = scan.read_all()
    col = _column(scan, None, id_names, f"{kind} id", "", example)
    ids = [v.strip() for v in table.col(col)]
    seen: dict[str, int] = {}
    for k, v in enumerate(ids):
        if not v:
            raise DataError(f"{path} line {table.line(k)}: empty {kind} id in column {col!r}: give every row its "
                            f"{kind}, or remove the line")
        if v in seen:
            raise DataError(f"{path} line {table.line(k)}: {kind} {v!r} is listed again (first on line "
                            f"{table.line(seen[v])}): keep one row per {kind}")
        seen[v] = k
    fields = {str(h): table.col(h) for h in table.header if h != col and str(h).strip()}
    return ids, fields


def read_table(
    path: PathLike,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    rating_col: str | None = None,
    min_rating: float | None = None,
    split_col: str | None = None,
    items: PathLike | None = None,
    users: PathLike | None = None,
    features: Mapping[str, PathLike] | None = None,
    name: str | None = None,
    unseen: str = "error",
    chunk_bytes: int | None = None,
) -> Dataset:
    """Read a plain interaction table (module doc) into a :class:`Dataset`.

    Args:
        path: the interactions file (CSV, or TSV: module doc).
        user_col, item_col: the id columns (default: ``user_id``/``userId``/``user`` and
            ``item_id``/``itemId``/``item``).
        time_col: the time column (default ``timestamp`` when present; ``""``: none).
        rating_col, min_rating: keep the rows whose rating is ``>= min_rating``.
        split_col: a column of ``train``/``valid``/``test`` labels.
        items, users: side tables (fields; ``items`` fixes the item order and the rows
            of ``features``), relative to the interactions' folder unless absolute.
        features: ``{modality: .npy}``, row ``r`` = the ``r``-th row of ``items``.
        name: dataset name (default: the file name without its suffix).
        unseen: ``split_col`` only: valid/test rows of users/items never in train
            (``error``, ``drop``, ``keep``).
        chunk_bytes: bytes read at a time (only memory depends on it).
    """
    if min_rating is not None and not np.isfinite(min_rating):
        raise ConfigError(f"min_rating={min_rating} (--min-rating) is not a finite number: pass a rating, e.g. 4, "
                          "or leave it out to keep every row")
    src = Path(path)
    if src.is_dir():
        found = sorted(p.name for p in src.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".tab", ".dat"))
        raise DataError(f"{src} is a folder: the csv format reads one interactions file, pass it itself"
                        + (f" (here: {', '.join(found[:5])})" if found else ""))
    root = src.parent
    if features is not None and isinstance(features, Mapping):
        features = {m: _side_path(f, root) for m, f in features.items()}
    feats = load_feature_files(features, root)
    if feats and items is None:
        raise ConfigError("features need items=ITEMS.csv (CLI: --items), the table whose rows the feature rows "
                          "follow (row r of every .npy = the r-th item of ITEMS)")
    example = "user_id,item_id,timestamp"
    scan = _scan(src, (*_USER_NAMES, *_ITEM_NAMES, *(c for c in (user_col, item_col) if c)), example, chunk_bytes)
    ucol = _column(scan, user_col, _USER_NAMES, "user id", "--user-col", example)
    icol = _column(scan, item_col, _ITEM_NAMES, "item id", "--item-col", example)
    if ucol == icol:
        raise ConfigError(f"the user and item ids are both read from column {ucol!r}: name the other with "
                          f"{'--item-col' if user_col is not None else '--user-col'}")
    if time_col == "":
        tcol = None
    else:
        tcol = (_column(scan, time_col, (), "time", "--time-col", example) if time_col
                else _present(scan, "timestamp"))
    rcol = (_column(scan, rating_col, (), "rating", "--rating-col", example) if rating_col
            else _present(scan, "rating"))
    if min_rating is not None and rcol is None:
        raise DataError(f"{src} line 1: min_rating (--min-rating) needs a rating column (found {scan.keys}): name "
                        "it with --rating-col, or leave --min-rating out")
    scol = _column(scan, split_col, (), "split", "--split-col", example) if split_col else None

    user_codes, item_codes = Factorizer(), Factorizer()
    checks: dict[str, ColumnCheck] = {
        "user": TokenCheck(ucol, user_codes, lambda t, v: None, strip=True, empty=_id_error("user", ucol)),
        "item": TokenCheck(icol, item_codes, lambda t, v: None, strip=True, empty=_id_error("item", icol)),
    }
    split_codes = Factorizer()
    if scol is not None:
        checks["split"] = TokenCheck(scol, split_codes, _split_labels(scol), strip=True,
                                     empty=_id_error("split", scol, "label"))
    if min_rating is not None:  # a rating column is only read to filter on it
        checks["rating"] = FloatCheck(rcol, finite=True)
    if tcol is not None:
        checks["time"] = _TimeCheck(tcol)
    run_checks(scan, list(checks.values()))
    read = {c for c in (ucol, icol, tcol, rcol, scol) if c}
    unread = [str(h) for h in scan.keys if str(h).strip() and str(h) not in read]
    if unread:
        hints = [] if tcol or time_col == "" else ["a time column with --time-col"]
        hints += [] if rcol else ["a rating column to filter on with --rating-col and --min-rating"]
        hint = f" (name {' and '.join(hints)})" if hints else ""
        warnings.warn(f"{src}: column{'s' if len(unread) > 1 else ''} {', '.join(map(repr, unread))} not read{hint}",
                      GraphrecNote, stacklevel=2)
    if rcol is not None and min_rating is None:
        warnings.warn(f"{src}: every row is an interaction, whatever its {rcol!r}: --min-rating R keeps only the rows "
                      f"rated R or more (explicit ratings as positives)", GraphrecNote, stacklevel=2)
    u = id_column(checks["user"].values(), user_codes)
    i = id_column(checks["item"].values(), item_codes)
    n = len(u)
    if isinstance(scan, TableScan):  # tab-separated: no quoting, a quote is part of the id
        quoted = [(c, str(ids[0])) for c, ids in ((ucol, u.values), (icol, i.values))
                  if len(ids) and all(len(v) > 1 and v[0] == v[-1] == '"' for v in ids[:1000].tolist())]
        if quoted:
            warnings.warn(f"{src}: the ids of {', '.join(repr(c) for c, _ in quoted)} are in double quotes "
                          f"({quoted[0][1]}): a tab-separated file is read without quoting, so the quotes are part "
                          "of the ids: write it without them, or as CSV (commas)", GraphrecNote, stacklevel=2)
    if scol is not None:
        split = id_column(checks["split"].values(), split_codes)
    else:
        split = IdColumn(np.zeros(n, np.int8), np.array(["train"]))
    ts = checks["time"].values() if "time" in checks else None
    if ts is not None and len(ts) and not checks["time"].dates and float(np.abs(ts).max()) > LARGEST_SECONDS:
        warnings.warn(f"{src}: the times of {tcol!r} reach {float(np.abs(ts).max()):.4g}, beyond the year 5000 in "
                      "seconds: they look like milliseconds (or finer), and the CTR models read gaps between times as "
                      "seconds: write unix seconds", GraphrecNote, stacklevel=2)
    lines = scan.line_numbers()
    if min_rating is not None:
        keep = checks["rating"].values() >= float(min_rating)
        if not keep.any():
            raise DataError(f"{src}: no {rcol} is >= min_rating={min_rating} (the largest is "
                            f"{checks['rating'].values().max():g}): lower --min-rating")
        u, i, split = (IdColumn(c.codes[keep], c.values) for c in (u, i, split))
        ts = None if ts is None else ts[keep]
        rows = np.flatnonzero(keep)
        lines = rows + scan.first if lines is None else lines[rows]
    del checks

    def line(k: int) -> int:
        return int(lines[k]) if lines is not None else scan.first + k

    item_ids: np.ndarray | None = None
    item_fields: dict[str, np.ndarray] = {}
    item_features: dict[str, np.ndarray] = {}
    ipath = None if items is None else _side_path(items, root)
    upath = None if users is None else _side_path(users, root)
    if ipath is not None:
        names = tuple(dict.fromkeys((icol, *_ITEM_NAMES, "id")))
        ids, fields = _side_table(ipath, names, "item", f"{icol},title")
        listed = set(ids)
        missing = [k for k, v in enumerate(i.values.tolist()) if v not in listed]
        if missing:
            first = int(np.flatnonzero(np.isin(i.codes, missing))[0])
            raise DataError(
                f"{src} line {line(first)}: item {str(i[first])!r} has no row in {ipath} ({len(missing)} such "
                f"item{'s' if len(missing) > 1 else ''}): add {'their rows' if len(missing) > 1 else 'its row'} to "
                f"{ipath.name}, or remove {'their' if len(missing) > 1 else 'its'} interactions")
        item_ids = np.array(ids, dtype=str)
        item_fields = {f: np.array(v, dtype=str) for f, v in fields.items()}
        count = item_count_from_features(feats)
        if count is not None and count != len(ids):
            mod, (x, p) = next(iter(feats.items()))
            raise DataError(f"{p}: modality {mod!r} has {x.shape[0]} rows but {ipath} lists {len(ids)} items: "
                            f"row r of every feature file is the r-th item of {ipath.name}, one row per item")
        item_features = {mod: check_feature_matrix(x, p, mod, item_ids) for mod, (x, p) in feats.items()}
    user_fields: dict[str, np.ndarray] = {}
    uids = None
    if upath is not None:
        names = tuple(dict.fromkeys((ucol, *_USER_NAMES, "id")))
        ids, fields = _side_table(upath, names, "user", f"{ucol},age")
        row_of = {v: k for k, v in enumerate(ids)}
        uids = _user_order(u)
        rows = np.array([row_of.get(v, -1) for v in uids.tolist()], dtype=np.int64)
        for f, vals in fields.items():
            col = np.array([*vals, ""], dtype=str)
            user_fields[f] = col[rows]  # -1: the appended ""
        missing_users = int((rows < 0).sum())
        if missing_users:
            example_user = str(uids[int(np.flatnonzero(rows < 0)[0])])
            warnings.warn(f"{upath}: {missing_users:,} of the {len(uids):,} users have no row (e.g. {example_user!r}): "
                          "their user fields are empty" + ("; no user matches: is the table keyed by another id?"
                                                           if missing_users == len(uids) else ""),
                          GraphrecNote, stacklevel=2)
    if scol is not None:
        check_unseen(u, i, split, unseen, _Where(src, line))
    meta: dict[str, Any] = {"format": "csv", "source": str(src), "min_rating": min_rating,
                            "columns": {"user": ucol, "item": icol, "time": tcol, "rating": rcol, "split": scol}}
    if ipath is not None:
        meta["items"] = str(ipath)
    if upath is not None:
        meta["users"] = str(upath)
    dups = duplicate_rows(u, i, split, np.zeros(len(u), np.int8), [str(src)])
    if dups:
        meta["duplicate_rows"] = dups
    return build_dataset(
        u, i, split,
        timestamps=ts,
        user_ids=uids,  # the users table's fields are in this order
        item_ids=item_ids,
        item_features=item_features,
        user_fields=user_fields,
        item_fields=item_fields,
        name=name or dataset_name_from(src.stem),
        source=str(src),
        meta=meta,
        unseen=unseen,
    )


def _user_order(u: IdColumn) -> np.ndarray:
    """The users in the order :func:`build_dataset` gives them (numeric, else lexicographic)."""
    from graphrec.data.dataset import _natural_unique

    return _natural_unique(u.used())


def _split_labels(column: str):
    def check(table: Table, values: list[str]) -> DataError | None:
        for k, v in enumerate(values):
            if v not in _SPLITS:
                return DataError(f"{table.path} line {table.line(k)}: {column} {one_line(v)!r} is not a split: "
                                 "label every row train, valid or test")
        return None

    return check


class _Where:
    """``where[k]``: "FILE line L" of kept row ``k`` (for :func:`check_unseen`)."""

    def __init__(self, path: Path, line: Any):
        self.path, self.line = path, line

    def __getitem__(self, k: int) -> str:
        return f"{self.path} line {self.line(int(k))}"



def _side_path(p: PathLike, root: Path) -> Path:
    """A side file's path: relative to the interactions' folder ``root`` (as the other
    formats' ``--feature`` files), or as given (from the current directory) when only
    that exists: ``--items raw/products.csv`` beside ``raw/orders.csv`` works either way."""
    q = Path(p).expanduser()
    if q.is_absolute() or (root / q).exists() or not q.exists():
        return q if q.is_absolute() else (root / q).absolute()
    return q.absolute()
