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

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats._common import (
    PathLike,
    Table,
    check_feature_matrix,
    check_npy_file,
    check_separator,
    duplicate_rows,
    load_npy,
    looks_like_data,
    one_line,
    parse_float,
    parse_int,
    read_json,
    read_table,
    require_file,
)
from graphrec.errors import DataError

__all__ = ["read_movielens"]

_USER_COLS = ("userId", "user_id")
_ITEM_COLS = ("movieId", "item_id")
_UDATA_COLS = ("user_id", "item_id", "rating", "timestamp")


def _read_csv(path: Path, names: tuple[str, ...], example: str, *, allow_empty: bool = False) -> Table:
    """A comma-separated file with a header and CSV quoting, as a :class:`Table`.

    ``names``: column names of which the header holds at least one; a header that holds
    none, but does when split on a tab, semicolon, pipe or space, is a file written with
    that separator, refused in one line that says so (``example``: a header to copy)."""
    require_file(path, "file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}): re-save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    rows: list[list[str]] = []
    ends: list[int] = []  # file line on which each record ends (its line, unless quoted breaks)
    try:
        for row in reader:
            ends.append(reader.line_num)
            rows.append(row)
    except csv.Error as e:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({one_line(e)}): fix the quoting") from None
    if not rows:
        raise DataError(f"{path}: file is empty (no header line): write the header and the rows")
    header, body, lines = rows[0], rows[1:], ends[1:]
    check_separator(path, header, ",", names,
                    f"{path.name} is read as CSV: separate its columns with commas (e.g. {example})")
    while body and body[-1] == []:
        body.pop()
    if not body and not allow_empty:
        raise DataError(f"{path}: no data rows after the header: the file is empty, add its rows")
    n = len(header)
    for k, r in enumerate(body):
        if len(r) != n:
            raise DataError(
                f"{path} line {lines[k]}: expected {n} comma-separated fields ({', '.join(header)}), "
                f"found {len(r)}: fix or remove the line"
            )
    cols = list(zip(*body)) if body else [() for _ in header]
    return Table(path, header, {h: list(c) for h, c in zip(header, cols)}, 2, lines[: len(body)])


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
        f"name it {' or '.join(names)}"
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
    check_npy_file(ids_file, "save the movie id of each feature row with numpy.save")
    try:
        row_ids = np.load(ids_file, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(
            f"{ids_file}: cannot be loaded without pickle ({one_line(e)}): save the ids with numpy.save"
        ) from None
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


def read_movielens(path: PathLike, *, min_rating: float | None = None, name: str | None = None) -> Dataset:
    """Read MovieLens ratings (module doc) into a :class:`Dataset` (all in train).

    Args:
        path: ``ratings.csv`` / ``u.data`` or the folder holding it.
        min_rating: keep only ratings ``>= min_rating`` (default: keep all).
        name: dataset name (default: the folder name).
    """
    rfile = _ratings_file(Path(path))
    root = rfile.parent
    with open(rfile, encoding="utf-8", errors="replace") as f:
        if "::" in f.readline():
            _refuse_double_colon(rfile)
    if _is_udata(rfile):
        table = read_table(rfile, header=False, names=_UDATA_COLS)
        ucol, icol = "user_id", "item_id"
    else:
        table = _read_csv(rfile, _USER_COLS + _ITEM_COLS, "userId,movieId,rating,timestamp")
        ucol = _pick(table, _USER_COLS, "user id")
        icol = _pick(table, _ITEM_COLS, "movie id")
    users = parse_int(table, ucol, what="a MovieLens user id")
    items = parse_int(table, icol, what="a MovieLens movie id")
    ratings = parse_float(table, "rating") if table.has("rating") else None
    ts = parse_float(table, "timestamp", finite=True) if table.has("timestamp") else None
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

    user_ids = np.array([str(u) for u in np.unique(users).tolist()], dtype=str)
    item_ids = np.array([str(i) for i in np.unique(items).tolist()], dtype=str)

    item_fields: dict[str, np.ndarray] = {}
    movies = root / "movies.csv"
    if movies.is_file():
        mt = _read_csv(movies, _ITEM_COLS, "movieId,title,genres", allow_empty=True)
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
        ut = _read_csv(uinfo, _USER_COLS, "user_id,age,gender,occupation", allow_empty=True)
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
    dups = duplicate_rows(users, items, np.full(len(users), "train"), np.zeros(len(users), np.int64), [str(rfile)])
    if dups:
        meta["duplicate_rows"] = dups
    return build_dataset(
        users,
        items,
        np.full(len(users), "train"),
        timestamps=ts,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        user_fields=user_fields,
        item_fields=item_fields,
        name=name or root.name,
        source=str(rfile),
        meta=meta,
    )
