"""MovieLens ratings (ml-latest CSV, ClayRS ml-100k CSV, original ml-100k ``u.data``).

Input ``path`` is a ratings file or the folder holding it (``ratings.csv``, else
``u.data``). Layouts:

* CSV with a header (comma-separated, standard CSV quoting), columns found by name:
  user ``userId`` or ``user_id``; item ``movieId`` or ``item_id``; ``rating``;
  ``timestamp`` (optional, unix seconds). ml-latest uses ``userId,movieId,rating,timestamp``.
* ``u.data`` (original ml-100k): tab-separated, no header, ``user item rating timestamp``.

User and movie ids must be integers (MovieLens ids). There is no given split: every
kept rating is a **train** interaction (split the dataset afterwards), timestamps are
kept (a pair rated twice keeps the latest time; the repeated rows are counted in
``meta["duplicate_rows"]``, which ``graphrec prepare`` and ``graphrec train --task ctr``
print as a note). ``min_rating`` keeps only ratings ``>= min_rating``; otherwise every
rating is an interaction. Items are the movies that
have at least one kept rating (movies listed in ``movies.csv`` but never rated are not
items: they have no interaction to learn or evaluate from); users likewise. Both are
in numeric id order.

Side files read from the folder of the ratings file when present:

* ``movies.csv`` (ml-latest: ``movieId,title,genres``): ``item_fields["title"]``,
  ``item_fields["genres"]`` (genres as written, ``|``-separated);
* ``items_info.json`` (ClayRS ml-100k: a list of objects with ``movielens_id``):
  ``item_fields`` ``title``, ``genres``, ``plot`` (strings as written; over
  ``movies.csv`` values when both exist);
* ``users_info.csv`` (``user_id,age,gender,occupation,...``): ``user_fields`` ``age``,
  ``gender``, ``occupation``, as strings (categorical tokens, as in RecBole's ml-100k);
* ``text_minilm.npy`` with ``text_minilm_item_ids.npy`` (the movie id of each row):
  ``item_features["text"]``, aligned by movie id (every item needs a row; extra rows
  are ignored).

Items/users without a side-file entry get ``""`` in these fields.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.data.dataset import Dataset, IdColumn, build_dataset, dataset_name_from, index_dtype
from graphrec.data.formats._common import (
    ColumnCheck,
    FloatCheck,
    IntCheck,
    PathLike,
    RowScan,
    Table,
    TableScan,
    check_feature_matrix,
    duplicate_rows,
    load_npy,
    looks_like_data,
    parse_int,
    read_json,
    read_npy,
    require_file,
    run_checks,
)
from graphrec.data.formats._csvscan import CsvScan, read_csv_table
from graphrec.errors import ConfigError, DataError, GraphrecNote

__all__ = ["read_movielens"]

_USER_COLS = ("userId", "user_id")
_ITEM_COLS = ("movieId", "item_id")
_UDATA_COLS = ("user_id", "item_id", "rating", "timestamp")




def _note_unread_columns(table: Table) -> None:
    """A :class:`GraphrecNote` naming the header's columns the reader does not read (a
    time column named ``ts`` would be dropped silently: the dataset has no timestamps)."""
    read = {*_USER_COLS, *_ITEM_COLS, "rating", "timestamp"}
    unread = [str(c) for c in table.header if str(c).strip() and str(c) not in read]
    if unread:
        hint = (" (the time of each rating is read from a column named timestamp)"
                if "timestamp" not in table.header else "")
        warnings.warn(f"{table.path}: column{'s' if len(unread) > 1 else ''} {', '.join(map(repr, unread))} not read"
                      f"{hint}", GraphrecNote, stacklevel=3)


def _pick(table: Table, names: tuple[str, ...], what: str) -> str:
    for n in names:
        if table.has(n):
            return n
    if looks_like_data(table.header):
        raise DataError(
            f"{table.path} line 1: the header is missing: line 1 {table.header} looks like a data row, not column "
            f"names: add the header line first (e.g. userId,movieId,rating,timestamp)"
        )
    raise DataError(
        f"{table.path} line 1: header has no {what} column (found {table.header}): "
        f"name it {' or '.join(names)} (the columns read: userId or user_id, movieId or item_id, and, if given, "
        "rating and timestamp)"
    )


def _ratings_file(path: Path) -> Path:
    if path.is_dir():
        for fname in ("ratings.csv", "u.data"):
            if (path / fname).is_file():
                return path / fname
        if (path / "ratings.dat").is_file():
            _refuse_double_colon(path / "ratings.dat")
        raise DataError(f"{path}: no ratings.csv or u.data found: pass the ratings file itself")
    return require_file(path, "MovieLens ratings file", "pass ratings.csv, u.data or their folder")


_SUPPORTED = ("ratings.csv with a header (userId,movieId,rating,timestamp) or u.data (tab-separated, no header: "
              "user item rating timestamp)")


def _refuse_double_colon(path: Path) -> None:
    """MovieLens 1M/10M ``ratings.dat`` (``user::movie::rating::time``) is not read."""
    raise DataError(
        f"{path}: the '::'-separated layout of MovieLens 1M/10M ratings.dat is not supported: convert it to "
        f"{_SUPPORTED}, e.g. (echo userId,movieId,rating,timestamp; sed 's/::/,/g' ratings.dat) > ratings.csv"
    )


def _is_udata(path: Path) -> bool:
    if path.name == "u.data":
        return True
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return "\t" in first and first.split("\t")[0].strip().isdigit()


def _align(ids: np.ndarray, mapping: dict[str, Any]) -> np.ndarray:
    return np.array([str(mapping.get(i, "")) for i in ids.tolist()], dtype=str)


def _item_info(path: Path) -> dict[str, dict[str, str]]:
    data = read_json(path, "item info file")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of movie objects, got {type(data).__name__}: fix the file")
    out: dict[str, dict[str, str]] = {}
    for k, obj in enumerate(data):
        if not isinstance(obj, dict) or "movielens_id" not in obj:
            raise DataError(f"{path}: entry {k} has no 'movielens_id': give every movie object its id")
        mid = str(obj["movielens_id"]).strip()
        if mid in out:
            raise DataError(f"{path}: movielens_id {mid!r} is listed twice (entry {k}): keep one entry per movie")
        out[mid] = {f: "" if obj.get(f) is None else str(obj.get(f)) for f in ("title", "genres", "plot")}
    return out


def _text_features(npy: Path, ids_file: Path, item_ids: np.ndarray) -> np.ndarray:
    x = load_npy(npy, "text")
    require_file(ids_file, "row id file of text_minilm.npy", "it lists the movie id of each feature row")
    row_ids = read_npy(ids_file, "save the movie id of each feature row with numpy.save")
    row_ids = np.asarray(row_ids).reshape(-1)
    if row_ids.dtype.kind not in "iu":
        raise DataError(f"{ids_file}: movie ids must be integers, got dtype {row_ids.dtype}: save them as int64")
    if len(row_ids) != x.shape[0]:
        raise DataError(
            f"{ids_file}: {len(row_ids)} ids but {npy} has {x.shape[0]} rows: give one id per feature row"
        )
    u, c = np.unique(row_ids, return_counts=True)
    if (c > 1).any():
        raise DataError(f"{ids_file}: movie id {int(u[c > 1][0])} has several feature rows: keep one row per movie")
    row_of = {int(m): r for r, m in enumerate(row_ids.tolist())}
    rows = np.empty(len(item_ids), np.int64)
    for k, iid in enumerate(item_ids.tolist()):
        r = row_of.get(int(iid))
        if r is None:
            raise DataError(
                f"{ids_file}: movie {iid} has no row in {npy.name}: compute its text feature or "
                "remove its ratings"
            )
        rows[k] = r
    return check_feature_matrix(x[rows], npy, "text", item_ids)


def read_movielens(path: PathLike, *, min_rating: float | None = None, name: str | None = None,
                   chunk_bytes: int | None = None) -> Dataset:
    """Read MovieLens ratings (module doc) into a :class:`Dataset` (all in train).

    Args:
        path: ``ratings.csv`` / ``u.data`` or the folder holding it.
        min_rating: keep only ratings ``>= min_rating`` (default: keep all).
        name: dataset name (default: the folder name).
        chunk_bytes: the ratings file is read this many bytes at a time (default
            :data:`~graphrec.data.formats._common.CHUNK_BYTES`); only memory depends on it.
    """
    if min_rating is not None and not np.isfinite(min_rating):  # every comparison with nan is False
        raise ConfigError(f"min_rating={min_rating} (--min-rating) is not a finite number: pass a rating, e.g. 4, "
                          "or leave it out to keep every rating")
    rfile = _ratings_file(Path(path))
    root = rfile.parent
    with open(rfile, encoding="utf-8", errors="replace") as f:
        if "::" in f.readline():
            _refuse_double_colon(rfile)
    scan: RowScan
    if _is_udata(rfile):
        scan = TableScan(rfile, header=False, names=_UDATA_COLS, chunk_bytes=chunk_bytes)
    else:
        scan = CsvScan(rfile, _USER_COLS + _ITEM_COLS, "userId,movieId,rating,timestamp", chunk_bytes=chunk_bytes)
    # the rows' checks in the order of the whole-file reader's (the columns it picks, if
    # the header has them: a header without them is refused after the file's own errors)
    ucol = next((c for c in _USER_COLS if scan.has(c)), None)
    icol = next((c for c in _ITEM_COLS if scan.has(c)), None)
    checks: dict[str, ColumnCheck] = {}
    if ucol is not None and icol is not None:
        checks["user"] = IntCheck(ucol, what="a MovieLens user id")
        checks["item"] = IntCheck(icol, what="a MovieLens movie id")
        if scan.has("rating"):  # parsed (a rating that is no finite number is an error), kept for min_rating
            checks["rating"] = FloatCheck("rating", finite=True, store=min_rating is not None)
        if scan.has("timestamp"):
            checks["timestamp"] = FloatCheck("timestamp", finite=True)
    run_checks(scan, list(checks.values()))
    table = scan.head()
    if not isinstance(scan, TableScan):
        _pick(table, _USER_COLS, "user id")
        _pick(table, _ITEM_COLS, "movie id")
        _note_unread_columns(table)
    users = checks["user"].values()
    items = checks["item"].values()
    ratings = checks["rating"].values() if "rating" in checks else None
    ts = checks["timestamp"].values() if "timestamp" in checks else None
    del checks
    if min_rating is not None:
        if ratings is None:
            raise DataError(
                f"{rfile} line 1: min_rating (--min-rating) needs a 'rating' column (found {table.header}): drop it"
            )
        keep = ratings >= float(min_rating)
        if not keep.any():
            raise DataError(
                f"{rfile}: no rating is >= min_rating={min_rating} (max is {ratings.max()}): lower min_rating"
            )
        users, items = users[keep], items[keep]
        ts = None if ts is None else ts[keep]
        del keep
    del ratings

    # users and items in numeric id order: codes into the distinct ids
    users_u, user_codes = np.unique(users, return_inverse=True)
    del users
    items_u, item_codes = np.unique(items, return_inverse=True)
    del items
    user_ids = np.array([str(u) for u in users_u.tolist()], dtype=str)
    item_ids = np.array([str(i) for i in items_u.tolist()], dtype=str)
    users = IdColumn(user_codes.astype(index_dtype(len(user_ids))), user_ids)
    items = IdColumn(item_codes.astype(index_dtype(len(item_ids))), item_ids)
    del user_codes, item_codes

    item_fields: dict[str, np.ndarray] = {}
    movies = root / "movies.csv"
    if movies.is_file():
        mt = read_csv_table(movies, _ITEM_COLS, "movieId,title,genres", allow_empty=True)
        mid = parse_int(mt, _pick(mt, ("movieId", "item_id"), "movie id"), what="a MovieLens movie id")
        keys = [str(m) for m in mid.tolist()]
        for field in ("title", "genres"):
            if mt.has(field):
                item_fields[field] = _align(item_ids, dict(zip(keys, mt.col(field))))
    info = root / "items_info.json"
    if info.is_file():
        by_id = _item_info(info)
        for field in ("title", "genres", "plot"):
            item_fields[field] = _align(item_ids, {k: v[field] for k, v in by_id.items()})

    user_fields: dict[str, np.ndarray] = {}
    uinfo = root / "users_info.csv"
    if uinfo.is_file():
        ut = read_csv_table(uinfo, _USER_COLS, "user_id,age,gender,occupation", allow_empty=True)
        uid = parse_int(ut, _pick(ut, _USER_COLS, "user id"), what="a MovieLens user id")
        keys = [str(u) for u in uid.tolist()]
        for field in ("age", "gender", "occupation"):
            if ut.has(field):
                user_fields[field] = _align(user_ids, dict(zip(keys, ut.col(field))))

    item_features: dict[str, np.ndarray] = {}
    npy, ids_file = root / "text_minilm.npy", root / "text_minilm_item_ids.npy"
    if npy.is_file() or ids_file.is_file():
        item_features["text"] = _text_features(npy, ids_file, item_ids)

    meta: dict[str, Any] = {"format": "movielens", "source": str(rfile), "min_rating": min_rating}
    split = IdColumn(np.zeros(len(users), np.int8), np.array(["train"]))
    dups = duplicate_rows(users, items, split, np.zeros(len(users), np.int8), [str(rfile)])
    if dups:
        meta["duplicate_rows"] = dups
    return build_dataset(
        users,
        items,
        split,
        timestamps=ts,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        user_fields=user_fields,
        item_fields=item_fields,
        name=name or dataset_name_from(root.name),
        source=str(rfile),
        meta=meta,
    )
