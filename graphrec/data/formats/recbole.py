"""RecBole atomic files: read and write ``{name}.inter``, ``.item``, ``.user`` and the
benchmark split files ``{name}.{train,valid,test}.inter``.

Format (RecBole 1.x "atomic files", one folder ``{data_path}/{name}/``):

* every file is tab-separated UTF-8 text with one header line whose fields are
  ``name:type``; ``type`` is ``token`` (a string), ``token_seq`` (space-separated
  strings), ``float`` or ``float_seq`` (space-separated numbers). A cell cannot hold a
  tab or line break; a cell that starts and ends with ``"`` is CSV-unquoted
  (outer quotes removed, each doubled `""` read as one `"`), as RecBole's pandas-based reader does.
* ``{name}.inter``: one interaction per row. ``user_id`` and ``item_id`` are required
  (declared ``:token``, taken as strings; a value pandas reads as missing,
  :data:`PANDAS_NA`, is an error); ``timestamp`` (optional, a number) is kept as the
  interaction time (declared ``:float``). Every ``:float`` column must hold numbers or
  be empty, as RecBole parses them, also unused ones. Other columns (``rating``,
  ``label``, ``item_id_list``, ...) are ignored and **every row is an interaction** (no
  rating/label threshold is applied; filter the file first if negatives are in it); a
  row that repeats a (user, item) pair of its file is merged into one interaction (the
  latest timestamp; RecBole keeps both without ``rm_dup_inter``), counted per file in
  ``meta["duplicate_rows"]``.
* ``{name}.train.inter``, ``{name}.valid.inter``, ``{name}.test.inter`` (RecBole's
  ``benchmark_filename`` layout), same columns: when ``{name}.train.inter`` exists the
  split is given and its rows go to train, ``.valid.inter`` rows to valid and
  ``.test.inter`` rows to test (either of the last two may be missing: that split is
  then absent). Otherwise all rows of ``{name}.inter`` go to train (no given split:
  split the dataset afterwards, e.g. with :func:`graphrec.data.splits.random_split`).
* ``{name}.item`` (optional): ``item_id`` plus item fields. Its row order is the item
  index order, and every listed item is in the dataset (also without interactions).
  A ``float_seq`` field whose non-empty values all have the same length ``d`` becomes
  ``item_features[field]`` (float32, ``n_items x d``; an empty value is a zero row =
  modality missing). Other fields become ``item_fields``: ``token`` and ``token_seq``
  as strings (the text as written, sequences stay space-joined), ``float`` as float64
  (empty = NaN), ragged ``float_seq`` as their text (with a warning naming the first
  row whose length differs from the most common one), a ``token_seq`` of decimal
  numbers, the same count in each row, as text with a :class:`GraphrecNote` (declare it
  ``float_seq`` to read it as features).
* ``{name}.user`` (optional): ``user_id`` plus user fields (same rules, no features);
  its row order is the user index order.
* an item field ``{x}_field`` beside a ``{x}`` feature is read as item field ``{x}``
  (that is how :func:`write_recbole` stores a field named like a modality).

Without ``.item``/``.user`` the ids are the distinct ids of the interactions (numeric
order when all are integers, else lexicographic).

:func:`write_recbole` writes the same layout (see its docstring); reading what it wrote
gives back the same :meth:`~graphrec.data.dataset.Dataset.fingerprint` for datasets
without cold items whose fields are strings or float64.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphrec._atomic import atomic_dir
from graphrec.data.dataset import SPLITS, Dataset, IdColumn, build_dataset, check_modality_name, dataset_name_from
from graphrec.data.formats._common import (
    PANDAS_NA,
    ColumnCheck,
    Factorizer,
    guess_format,
    FloatCheck,
    LazyWhere,
    PathLike,
    Table,
    TableScan,
    TokenCheck,
    check_earlier_export,
    check_feature_matrix,
    check_not_missing,
    check_tab_separated,
    check_unseen,
    duplicate_rows,
    id_column,
    is_number,
    looks_like_data,
    one_line,
    parse_float,
    quote_cell,
    read_table,
    require_file,
    run_checks,
)
from graphrec._checks import is_int_text
from graphrec.errors import DataError, GraphrecNote

__all__ = ["read_recbole", "write_recbole", "FIELD_TYPES", "PANDAS_NA", "RECBOLE_BUNDLED", "check_recbole_name"]

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
#: dataset names for which RecBole 1.2.1 reads the copy bundled in its package
#: (``recbole/dataset_example/{name}``) whatever ``data_path`` says: its
#: ``Config._set_default_parameters`` sets ``data_path`` to that folder when the dataset
#: name is exactly ``ml-100k`` (for any other name it is ``{data_path}/{name}``)
RECBOLE_BUNDLED = frozenset({"ml-100k"})
FIELD_SUFFIX = "_field"  # renames an item field whose name is also a modality (see write_recbole)


def _atomic_types(table: Table, path: Path, missing: Any = None) -> dict[str, str]:
    """``{field: type}`` of a ``name:type`` header (``table``: the file's rows, or its
    header only), with the errors of a bad header; ``missing(id_name)`` refuses the
    user/item ids pandas would read as missing (default: check the rows of ``table``)."""
    types: dict[str, str] = {}
    # 'user_id:token,item_id:token' is one field of a file split by tabs
    check_tab_separated(table, "RecBole atomic files", "user_id:token<TAB>item_id:token")
    if looks_like_data(table.header):
        raise DataError(
            f"{path} line 1: the header is missing: line 1 {table.header} looks like a data row, not column "
            "names: add the header line first (e.g. user_id:token<TAB>item_id:token)"
        )
    for raw in table.header:
        if ":" not in raw:
            raise DataError(
                f"{path} line 1: header field {raw!r} has no type: write it as "
                f"{raw}:token (or :token_seq, :float, :float_seq)"
            )
        fname, ftype = raw.split(":", 1)
        if fname.startswith("\ufeff"):
            fname = fname[1:]
        if ftype not in FIELD_TYPES:
            raise DataError(
                f"{path} line 1: field {fname!r} has type {ftype!r}: use one of {', '.join(FIELD_TYPES)}"
            )
        types[fname] = ftype
    for id_name, kind in (("user_id", "user"), ("item_id", "item")):
        if id_name in types:
            if types[id_name] != "token":  # RecBole remaps ids as tokens
                raise DataError(
                    f"{path} line 1: field {id_name!r} has type {types[id_name]!r}, but RecBole reads {kind} ids as "
                    f"tokens: declare it {id_name}:token"
                )
            if missing is None:
                check_not_missing(table, id_name, table.col(id_name), kind, "RecBole")
            else:
                missing(id_name)
    return types


def _read_atomic(path: Path, id_field: str | None = None) -> tuple[Table, dict[str, str]]:
    """A table with ``name:type`` header; returns it and ``{field: type}``."""
    table = read_table(path, strip_types=True, quoted_cells=True)
    types = _atomic_types(table, path)
    if id_field is not None:
        table.col(id_field, f"add a {id_field}:token column")
    return table, types


def _na_check(kind: str) -> Any:
    """check_not_missing of a chunk's ``kind`` ids, as an error (TokenCheck)."""

    def check(table: Table, values: list[str]) -> DataError | None:
        column = f"{kind}_id"
        try:
            check_not_missing(table, column, values, kind, "RecBole")
        except DataError as e:
            return e
        return None

    return check


class _InterFile:
    """One interaction file read in chunks: its columns as compact arrays (user and item
    ids as codes of the factorizers shared by the files), with every error
    :func:`_read_atomic` and the float checks of :func:`read_recbole` raise, in their order."""

    def __init__(self, path: Path, users: Factorizer, items: Factorizer, chunk_bytes: int | None):
        scan = TableScan(path, strip_types=True, quoted_cells=True, chunk_bytes=chunk_bytes)
        self.scan = scan
        # the checks the rows get, in the reader's order; a header that would be refused
        # later (_atomic_types) needs none of them, but is read to the end all the same
        declared = {raw.split(":", 1)[0]: raw.split(":", 1)[1] for raw in scan.header if ":" in raw}
        self.checks: dict[str, ColumnCheck] = {}
        for kind, codes in (("user", users), ("item", items)):
            if scan.has(f"{kind}_id"):
                self.checks[f"{kind}_id"] = TokenCheck(f"{kind}_id", codes, _na_check(kind))
        self.floats = [k for k in scan.keys if declared.get(k) == "float" and k != "timestamp" and k not in self.checks]
        for k in self.floats:
            self.checks[k] = FloatCheck(k, empty_nan=True, typed=True, store=False)
        if declared.get("timestamp") == "float" and scan.has("timestamp"):
            self.checks["timestamp"] = FloatCheck("timestamp", finite=True)
        run_checks(scan, list(self.checks.values()))
        self.table = scan.head()
        self.path = path
        self.types = _atomic_types(self.table, path, lambda id_name: self.checks[id_name].values())

    def __len__(self) -> int:
        return self.scan.rows

    def line(self, row: int) -> int:
        return self.scan.line(row)


def _unique_ids(table: Table, field: str, what: str) -> np.ndarray:
    ids = table.col(field)
    seen: dict[str, int] = {}
    for k, v in enumerate(ids):
        if v in seen:
            raise DataError(
                f"{table.path} line {table.line(k)}: {what} {v!r} is listed twice "
                f"(first on line {table.line(seen[v])}): keep one row per {what}"
            )
        seen[v] = k
    return np.asarray(ids, dtype=str)


def _float_seq_matrix(table: Table, field: str) -> np.ndarray | None:
    """A float32 matrix when all non-empty values have one length, else None."""
    values = table.col(field)
    parts = [v.split() for v in values]
    lengths = {len(p) for p in parts if p}
    if len(lengths) != 1:
        return None
    d = lengths.pop()
    filled = [k for k, p in enumerate(parts) if p]
    try:
        flat = np.array([x for k in filled for x in parts[k]], dtype=np.float32)
    except ValueError:
        for k in filled:
            bad = next((x for x in parts[k] if not is_number(x)), None)
            if bad is not None:
                raise DataError(
                    f"{table.path} line {table.line(k)}: {field} value {bad!r} is not a number: "
                    "fix the value"
                ) from None
        raise
    out = np.zeros((len(values), d), dtype=np.float32)
    out[filled] = flat.reshape(len(filled), d)
    return out


def _ragged_warning(table: Table, field: str) -> None:
    """Warn that float_seq ``field`` is read as text because its rows differ in length,
    naming the first row whose length is not the most common one."""
    lengths = [len(v.split()) for v in table.col(field)]
    filled = [n for n in lengths if n]
    if not filled:
        return
    counts = np.bincount(filled)
    d = int(counts.argmax())
    k = next(k for k, n in enumerate(lengths) if n and n != d)
    warnings.warn(
        f"{table.path} line {table.line(k)}: float_seq field {field!r} has {lengths[k]} values there but {d} "
        f"in {int(counts[d])} of its {len(filled)} non-empty rows, so it is read as a text field, not as "
        f"features {field!r}: give every row {d} values (an empty value marks a missing modality)",
        stacklevel=3,
    )


def _numeric_token_seq_note(table: Table, field: str) -> None:
    """A :class:`GraphrecNote` when token_seq ``field`` looks like features declared with
    the wrong type: every non-empty value is the same number of numbers, some of them not
    integers (integer tokens, such as category ids, are a real token_seq)."""
    values = table.col(field)
    parts = [v.split() for v in values if v.strip()]
    if not parts or len({len(p) for p in parts}) != 1:
        return
    if not all(is_number(x) for p in parts for x in p):
        return
    if all(is_int_text(x) for p in parts for x in p):
        return
    k = next(k for k, v in enumerate(values) if v.strip())
    warnings.warn(
        f"{table.path} line 1: token_seq field {field!r} holds {len(parts[0])} numbers in each row (line "
        f"{table.line(k)}: {one_line(values[k])[:60]!r}), so it is read as a text field, not as features: declare it "
        f"{field}:float_seq to read it as features {field!r}",
        GraphrecNote,
        stacklevel=3,
    )


def _side_fields(
    table: Table, types: Mapping[str, str], id_field: str, ids: np.ndarray, features: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(features, fields) of a ``.item``/``.user`` table, rows in file order."""
    feats: dict[str, np.ndarray] = {}
    fields: dict[str, np.ndarray] = {}
    for fname, ftype in types.items():
        if fname == id_field:
            continue
        if ftype == "float":
            fields[fname] = parse_float(table, fname, empty_nan=True, typed=True)
        elif ftype == "float_seq" and features:
            x = _float_seq_matrix(table, fname)
            if x is not None:
                check_modality_name(fname, f"{table.path} line 1: float_seq field {fname!r} is read as features")
                feats[fname] = check_feature_matrix(x, table.path, fname, ids, table.line)
            else:
                _ragged_warning(table, fname)
                fields[fname] = np.asarray(table.col(fname), dtype=str)
        else:
            if ftype == "token_seq" and features:
                _numeric_token_seq_note(table, fname)
            fields[fname] = np.asarray(table.col(fname), dtype=str)
    # write_recbole stores a field that shares its name with a modality as {name}_field
    for fname in list(fields):
        base = fname[: -len(FIELD_SUFFIX)]
        if fname.endswith(FIELD_SUFFIX) and base in feats and base not in fields:
            fields[base] = fields.pop(fname)
    return feats, fields


def _check_listed(values: IdColumn, table: Any, listed: np.ndarray, what: str, list_file: Path) -> None:
    """The first row of ``table`` (rows ``values``) whose id is not in ``listed`` is an error."""
    ok = values.rows_where(np.isin(values.values, listed))
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        raise DataError(
            f"{table.path} line {table.line(k)}: {what} {str(values[k])!r} is not in {list_file}: "
            f"add a row for it to {list_file.name} or remove its interactions"
        )


def _infer_name(root: Path) -> str:
    """The folder name when its files exist, else the only dataset prefix in ``root``."""
    if (root / f"{root.name}.inter").is_file() or (root / f"{root.name}.train.inter").is_file():
        return root.name
    prefixes = set()
    for p in root.glob("*.inter"):
        stem = p.name[: -len(".inter")]
        for s in SPLITS:
            if stem.endswith(f".{s}"):
                stem = stem[: -len(s) - 1]
                break
        prefixes.add(stem)
    if len(prefixes) == 1:
        return prefixes.pop()
    if not prefixes:
        guess = guess_format(root)
        raise DataError(f"{root}: no *.inter file found: this is not a RecBole dataset folder"
                        + (f"; it holds {guess[1]}: use --format {guess[0]}" if guess else ""))
    raise DataError(
        f"{root}: several datasets ({', '.join(sorted(prefixes))}) have .inter files: pass name= "
        "(CLI: --name) to choose one"
    )


def read_recbole(
    dir: PathLike,
    name: str | None = None,
    *,
    unseen: str = "error",
    split: str | None = None,
    chunk_bytes: int | None = None,
) -> Dataset:
    """Read RecBole atomic files (module doc) into a :class:`Dataset`.

    Args:
        dir: the folder ``{data_path}/{name}``.
        name: file prefix and dataset name; default: the folder name when
            ``{folder}.inter`` or ``{folder}.train.inter`` exists, else the only prefix.
        unseen: users/items in valid/test but never in train: ``"error"``, ``"drop"``,
            ``"keep"`` (only matters with a given split).
        split: ``None`` (default): use the benchmark files when ``{name}.train.inter``
            exists, else ``{name}.inter``; ``"given"``: require the benchmark files;
            ``"none"``: read ``{name}.inter`` into train even if benchmark files exist.
        chunk_bytes: the interaction files are read this many bytes at a time (default
            :data:`~graphrec.data.formats._common.CHUNK_BYTES`); only memory depends on it.
    """
    root = Path(dir)
    if split not in (None, "given", "none"):
        raise DataError(f"split={split!r} is not one of None, 'given', 'none'")
    if not root.is_dir():
        raise DataError(f"{root}: directory not found: pass the RecBole dataset folder")
    named = name is not None  # a name given is used as it is (a bad one is refused), an inferred one made valid
    if name is None:
        name = _infer_name(root)
    benchmark = (root / f"{name}.train.inter").is_file()
    orphans = [f"{name}.{s}.inter" for s in ("valid", "test") if (root / f"{name}.{s}.inter").is_file()]
    if not benchmark and orphans and split != "none":
        # a half benchmark layout: reading {name}.inter alone would drop those rows silently
        raise DataError(
            f"{root}: {' and '.join(orphans)} found but no {name}.train.inter: give all the benchmark files "
            f"({name}.train.inter, .valid.inter, .test.inter), or move them away to read {name}.inter "
            "(in Python, read_recbole(..., split='none') reads it alone)"
        )
    if split == "given" and not benchmark:
        raise DataError(
            f"{root / f'{name}.train.inter'}: benchmark train file not found: split='given' needs "
            f"{name}.train.inter (and .valid.inter/.test.inter)"
        )
    if split == "none":
        benchmark = False

    if benchmark:
        files = [(s, root / f"{name}.{s}.inter") for s in SPLITS]
        files = [(s, p) for s, p in files if s == "train" or p.is_file()]
        # RecBole's benchmark_filename takes any suffixes (val, dev, ...); graphrec reads train, valid, test
        others = sorted(p.name for p in root.glob(f"{name}.*.inter")
                        if p.is_file() and p.name[len(name) + 1:-len(".inter")] not in SPLITS)
        absent = [s for s in ("valid", "test") if s not in {f for f, _ in files}]
        if others and absent:
            raise DataError(
                f"{root}: {', '.join(others)} {'is' if len(others) == 1 else 'are'} not read: graphrec reads the "
                f"benchmark files {name}.train.inter, {name}.valid.inter and {name}.test.inter (in RecBole: "
                f"benchmark_filename: [train, valid, test]): rename {others[0]} to {name}.{absent[0]}.inter"
            )
    else:
        inter = root / f"{name}.inter"
        require_file(inter, "RecBole interaction file", f"expected {name}.inter or {name}.train.inter")
        files = [("train", inter)]

    tables: list[_InterFile] = []
    user_codes, item_codes = Factorizer(), Factorizer()
    users_l, items_l, ts_l = [], [], []
    has_ts: bool | None = None
    for s, path in files:
        table = _InterFile(path, user_codes, item_codes, chunk_bytes)
        types = table.types
        table.table.col("user_id", "add a user_id:token column")
        table.table.col("item_id", "add an item_id:token column")
        tables.append(table)
        users_l.append(table.checks["user_id"].values())
        items_l.append(table.checks["item_id"].values())
        t_here = "timestamp" in types
        if has_ts is None:
            has_ts = t_here
        elif has_ts != t_here:
            raise DataError(
                f"{path} line 1: timestamp column {'present' if t_here else 'missing'} unlike in "
                f"{tables[0].path}: give all split files the same columns"
            )
        if t_here and types["timestamp"] != "float":
            raise DataError(
                f"{path} line 1: field 'timestamp' has type {types['timestamp']!r}: RecBole would read it as a "
                "token (remapped to ids), not as a time to order by: declare it timestamp:float (numbers, e.g. "
                "unix seconds)"
            )
        for fname in table.floats:
            # not used here, but RecBole parses it as a number and fails on text
            table.checks[fname].values()
        if t_here:
            ts_l.append(table.checks["timestamp"].values())
        table.checks.clear()
    unread = [k for k in tables[0].types if k in ("rating", "label")]
    if unread:  # RecBole's RATING_FIELD / LABEL_FIELD: its threshold or label can make rows negatives
        warnings.warn(
            f"{tables[0].path}: field{'s' if len(unread) > 1 else ''} {', '.join(map(repr, unread))} not read: every "
            "row is an interaction (RecBole's threshold or label negatives are not applied): keep only the "
            "positive rows in the files", GraphrecNote, stacklevel=2)
    side = sorted(p.name for suffix in (".kg", ".link", ".net") for p in root.glob(f"{name}{suffix}") if p.is_file())
    if side:
        warnings.warn(f"{root}: {', '.join(side)} not read (graphrec builds its own item graphs; knowledge-graph "
                      "and social files have no counterpart)", GraphrecNote, stacklevel=2)
    users = id_column(users_l, user_codes)
    items = id_column(items_l, item_codes)
    del user_codes, item_codes
    sizes = [len(t) for t in tables]
    labels = np.repeat(np.array([SPLITS.index(s) for s, _ in files], dtype=np.int8), sizes)
    split_arr = IdColumn(labels, np.array(SPLITS))
    ts = np.concatenate(ts_l) if has_ts else None
    del ts_l
    offsets = np.cumsum([0] + sizes)

    def where(k: int) -> str:
        ti = int(np.searchsorted(offsets, k, side="right") - 1)
        return f"{tables[ti].path} line {tables[ti].line(k - offsets[ti])}"

    def rows_of(col: IdColumn, ti: int) -> IdColumn:
        return IdColumn(col.codes[offsets[ti]:offsets[ti + 1]], col.values)

    item_ids: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_features: dict[str, np.ndarray] = {}
    item_fields: dict[str, np.ndarray] = {}
    user_fields: dict[str, np.ndarray] = {}
    item_file = root / f"{name}.item"
    if item_file.is_file():
        itab, itypes = _read_atomic(item_file, "item_id")
        item_ids = _unique_ids(itab, "item_id", "item")
        for ti, t in enumerate(tables):
            _check_listed(rows_of(items, ti), t, item_ids, "item", item_file)
        item_features, item_fields = _side_fields(itab, itypes, "item_id", item_ids, True)
    user_file = root / f"{name}.user"
    if user_file.is_file():
        utab, utypes = _read_atomic(user_file, "user_id")
        user_ids = _unique_ids(utab, "user_id", "user")
        for ti, t in enumerate(tables):
            _check_listed(rows_of(users, ti), t, user_ids, "user", user_file)
        _, user_fields = _side_fields(utab, utypes, "user_id", user_ids, False)

    missing = [s for s in ("valid", "test") if benchmark and s not in {f for f, _ in files}]
    try:
        check_unseen(users, items, split_arr, unseen, LazyWhere(where, len(users)))
    except DataError as e:
        if len(missing) != 1:
            raise
        # a half benchmark layout is refused as a given split anyway (apply_split): say
        # that first, not that its rows have users/items unseen in train
        have = " and ".join(f"{name}.{s}.inter" for s in SPLITS if s != missing[0])
        raise DataError(
            f"{root}: {have} found but no {name}.{missing[0]}.inter, so the given split has no {missing[0]} part "
            f"(and its {'test' if missing[0] == 'valid' else 'valid'} rows have users or items never in train): add "
            f"{name}.{missing[0]}.inter, or re-split all interactions on purpose with --split random (or --split "
            "temporal) and --unseen keep (in Python: read_recbole(..., unseen='keep'), then random_split)"
        ) from e
    meta: dict[str, object] = {"format": "recbole", "source": str(root), "given_split": benchmark}
    file_of = np.repeat(np.arange(len(tables), dtype=np.int8), sizes)
    dups = duplicate_rows(users, items, split_arr, file_of, [str(t.path) for t in tables])
    del file_of
    if dups:
        meta["duplicate_rows"] = dups
    return build_dataset(
        users,
        items,
        split_arr,
        timestamps=ts,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        user_fields=user_fields,
        item_fields=item_fields,
        name=name if named else dataset_name_from(name),
        source=str(tables[0].path),
        meta=meta,
        unseen=unseen,
    )


# ---------------------------------------------------------------------- writing
def _fmt_float(x: float) -> str:
    """Shortest text that reads back as the same float64 (integers without ``.0``)."""
    if np.isfinite(x) and float(x).is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(float(x))


def check_recbole_name(name: str, where: str, fix: str) -> None:
    """A DataError when RecBole would not read files written under dataset name ``name``
    (:data:`RECBOLE_BUNDLED`); ``where`` starts the message, ``fix`` ends it."""
    if name in RECBOLE_BUNDLED:
        raise DataError(
            f"{where}{name!r} is a dataset RecBole ships: for the dataset name {name!r} RecBole reads its bundled "
            f"copy (recbole/dataset_example/{name}) whatever data_path says, so it would never read these files: {fix}"
        )


def _check_token(values: list[str], what: str, ids: list[str] | None = None, kind: str = "") -> None:
    """Refuse a value with a tab or line break; ``ids`` (of ``kind``) name the row it is in."""
    for k, v in enumerate(values):
        if "\t" in v or "\n" in v or "\r" in v:
            of = f" of {kind} {ids[k]!r}" if ids is not None else ""
            raise DataError(
                f"{what} {v!r}{of} contains a tab or line break, which RecBole atomic files cannot "
                "hold: replace it before writing"
            )


def _check_not_na(ids: list[str], kind: str) -> None:
    for v in ids:
        if v in PANDAS_NA:
            raise DataError(
                f"{kind} id {v!r} is read as a missing value by RecBole (pandas takes {v!r} for NaN), "
                f"so RecBole would not see this {kind}: rename the {kind} ids before preparing the dataset"
            )


def _field_column(field: str, values: np.ndarray, kind: str, ids: list[str]) -> tuple[str, list[str]]:
    """(header ``field:type``, cell texts) of one side field (``ids``: the rows' ids)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return f"{field}:float", [_fmt_float(v) for v in arr.astype(np.float64).tolist()]
    text = arr.astype(str).tolist()
    _check_token(text, f"{kind} field {field!r} value", ids, kind)
    ftype = "token_seq" if any(" " in v for v in text) else "token"
    return f"{field}:{ftype}", [quote_cell(v) for v in text]


def _feature_column(x: np.ndarray) -> list[str]:
    buf = io.StringIO()
    # %.9g prints every float32 exactly enough to read it back bit for bit
    np.savetxt(buf, np.asarray(x, dtype=np.float32), fmt="%.9g", delimiter=" ")
    return buf.getvalue().split("\n")[: len(x)]


def _write_table(path: Path, header: list[str], columns: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        if columns and columns[0]:
            f.write("\n".join("\t".join(row) for row in zip(*columns)) + "\n")


def write_recbole(
    dataset: Dataset, out_dir: PathLike, name: str | None = None, *, overwrite: bool = False
) -> Path:
    """Write ``dataset`` as RecBole atomic files into ``out_dir`` (atomically). An existing
    ``out_dir`` is refused without ``overwrite``, and with it unless it holds a ``.inter``
    file (``overwrite`` replaces an earlier export only, never another folder).

    Files (``name`` defaults to ``dataset.name``; RecBole expects
    ``out_dir == {data_path}/{name}``):

    * ``{name}.inter``: every interaction of every split, ``user_id:token
      item_id:token`` (+ ``timestamp:float`` when the dataset has timestamps);
    * ``{name}.train.inter``, ``{name}.valid.inter``, ``{name}.test.inter``: the same per
      split (RecBole ``benchmark_filename: [train, valid, test]``), written when the
      dataset has a valid or test split; an empty valid/test split is not written;
    * ``{name}.item``: ``item_id:token`` for every item in index order, each feature
      matrix as ``{modality}:float_seq`` (``%.9g``: float32 values read back exactly) and
      each item field (numbers as ``float``, strings as ``token``, or ``token_seq`` when a
      value contains a space). An item field named like a modality (UniSRec's ``text``
      field beside the ``text`` features) is written as ``{field}_field``;
      :func:`read_recbole` renames it back;
    * ``{name}.user``: ``user_id:token`` for every user in index order + user fields.

    ``name`` must not be one RecBole reads from its own package (:data:`RECBOLE_BUNDLED`:
    ``ml-100k``). Ids and string values must not contain tabs or line breaks, and ids must not be a
    value pandas reads as missing (``NA``, ``null``, ``nan``, empty, ...: :data:`PANDAS_NA`);
    one that starts with ``"`` is written CSV-quoted, which RecBole and
    :func:`read_recbole` both unquote.
    Cold-item marks are not part of the RecBole format and are not written.
    """
    out = Path(out_dir)
    name = name or dataset.name
    check_recbole_name(name, "dataset name ", "pass another name= (RecBole's dataset name, the file prefix)")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists: choose another output folder or pass overwrite=True")
    check_earlier_export(out)
    names = [*dataset.item_features, *dataset.item_fields, *dataset.user_fields]
    for n in names:
        if n in ("item_id", "user_id") or ":" in n or not n or any(c.isspace() for c in n):
            raise DataError(
                f"field or modality name {n!r} cannot be a RecBole field name (reserved, empty, "
                "or containing ':' or spaces): rename it before writing"
            )
    clash = [
        f for f in dataset.item_fields
        if f in dataset.item_features and f + FIELD_SUFFIX in dataset.item_fields
    ]
    if clash:
        raise DataError(
            f"item field {clash[0]!r} shares its name with a modality and {clash[0] + FIELD_SUFFIX!r} "
            "is taken too: rename one of the item fields before writing"
        )
    _check_token(dataset.user_ids.tolist(), "user id")
    _check_token(dataset.item_ids.tolist(), "item id")
    _check_not_na(dataset.user_ids.tolist(), "user")
    _check_not_na(dataset.item_ids.tolist(), "item")
    user_cells = [quote_cell(v) for v in dataset.user_ids.tolist()]
    item_cells = [quote_cell(v) for v in dataset.item_ids.tolist()]
    with atomic_dir(out, overwrite) as tmp:
        stamps = dataset.timestamps
        with_ts = stamps is not None and all(s in stamps for s in dataset.splits)
        head = ["user_id:token", "item_id:token"] + (["timestamp:float"] if with_ts else [])
        per_split: dict[str, list[list[str]]] = {}
        for s in SPLITS:
            if s not in dataset.splits:
                continue
            u, i = dataset.pairs(s)
            cols = [[user_cells[k] for k in u.tolist()], [item_cells[k] for k in i.tolist()]]
            if with_ts and stamps is not None:
                cols.append([_fmt_float(t) for t in stamps[s].tolist()])
            per_split[s] = cols
        all_cols = [[v for s in per_split for v in per_split[s][c]] for c in range(len(head))]
        _write_table(tmp / f"{name}.inter", head, all_cols)
        if any(s in per_split for s in ("valid", "test")):
            for s, cols in per_split.items():
                if s == "train" or cols[0]:
                    _write_table(tmp / f"{name}.{s}.inter", head, cols)

        ihead, icols = ["item_id:token"], [item_cells]
        for mod, x in dataset.item_features.items():
            ihead.append(f"{mod}:float_seq")
            icols.append(_feature_column(x))
        for field, values in dataset.item_fields.items():
            col = field + FIELD_SUFFIX if field in dataset.item_features else field
            h, c = _field_column(col, values, "item", dataset.item_ids.tolist())
            ihead.append(h)
            icols.append(c)
        _write_table(tmp / f"{name}.item", ihead, icols)

        uhead, ucols = ["user_id:token"], [user_cells]
        for field, values in dataset.user_fields.items():
            h, c = _field_column(field, values, "user", dataset.user_ids.tolist())
            uhead.append(h)
            ucols.append(c)
        _write_table(tmp / f"{name}.user", uhead, ucols)
    return out
