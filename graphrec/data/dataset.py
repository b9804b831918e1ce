"""The dataset object every graphrec model and command works on.

A :class:`Dataset` holds

* ``user_ids`` / ``item_ids``: the original ids (strings), position = contiguous index;
* ``splits``: ``{"train": R_train, "valid": R_valid, "test": R_test}``, each a canonical
  ``scipy.sparse.csr_matrix`` of shape ``(n_users, n_items)`` with ones as values
  (sorted indices, no duplicates; one entry per distinct user-item pair);
* ``timestamps``: optional ``{split: array}``, aligned with ``splits[split].data``
  (entry ``k`` is the time of the pair stored at ``indices[k]``; for a pair seen several
  times, the latest time);
* ``item_features``: ``{modality: float32 array (n_items, dim)}`` (e.g. ``image``,
  ``text``), row ``i`` belongs to item index ``i``;
* ``user_fields`` / ``item_fields``: optional side information, one 1-D array per field
  (numbers or strings; token sequences are space-joined strings);
* ``cold_items``: sorted item indices whose training interactions were removed by
  :func:`graphrec.data.splits.cold_start` (``None`` when no cold-start split applies).

Pure data: no device, no model. Datasets are built by the importers in
:mod:`graphrec.data.formats`, saved with :meth:`Dataset.save` and read back with
:meth:`Dataset.load` (format documented in ``docs/data-formats.md``).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_dir, is_stale_temporary
from graphrec._checks import counted, is_int_text
from graphrec.errors import ARRAY_FILE_ERRORS, ConfigError, DataError

__all__ = ["Dataset", "IdColumn", "SPLITS", "build_dataset", "interactions_matrix", "check_modality_name", "MODALITY_RULE",
           "check_dataset_name", "dataset_name_from"]

SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: the files :meth:`Dataset.save` writes into a dataset directory, beside the folder
#: :data:`FEATURES_DIR` of ``{modality}.npy`` files: nothing else (a test checks it)
DATASET_FILES: tuple[str, ...] = ("dataset.json", "ids.npz", "interactions.npz", "fields.npz", "cold_items.npy")
FEATURES_DIR = "features"
FORMAT_NAME = "graphrec-dataset"
FORMAT_VERSION = 1
#: a modality name is also a file name (``features/{name}.npy`` of a dataset directory)
_MODALITY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
MODALITY_RULE = "1 to 100 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def check_modality_name(name: Any, where: str = "", error: type[Exception] = DataError) -> str:
    """``name`` if it is a valid modality name (:data:`MODALITY_RULE`), else ``error``
    with a one-line message (``where``, e.g. ``"--feature 'a/b=x.npy'"``, says where it
    came from). Modality names become file names (``features/{name}.npy``), so a name
    with a path separator or ``..`` would write outside the dataset directory."""
    if not isinstance(name, str) or not _MODALITY_NAME.fullmatch(name):
        at = f"{where}: " if where else ""
        raise error(
            f"{at}modality name {name!r} is not allowed: a modality name is also a file name "
            f"(features/NAME.npy), so it must be {MODALITY_RULE}: rename it"
        )
    return name


def check_dataset_name(name: Any, where: str = "", error: type[Exception] = DataError) -> str:
    """``name`` if it is a valid dataset name (the characters of :data:`MODALITY_RULE`),
    else ``error`` with a one-line message (``where``, e.g. ``"--name"``, says where it
    came from). A dataset name becomes part of file and folder names (``NAME.inter`` of
    export-mmrec and export-recbole, ``graphs/NAME``, ``runs/MODEL-NAME-...``), so a name
    with a path separator, ``..`` or a space would write elsewhere or need quoting."""
    if not isinstance(name, str) or not _MODALITY_NAME.fullmatch(name):
        at = f"{where}: " if where else ""
        raise error(
            f"{at}dataset name {name!r} is not allowed: a dataset name becomes part of file names (NAME.inter, "
            f"graphs/NAME), so it must be {MODALITY_RULE}: choose another name, e.g. "
            f"{dataset_name_from(str(name))!r}"
        )
    return name


def dataset_name_from(text: str) -> str:
    """A valid dataset name made of ``text`` (a source folder or file name, the default
    name of an imported dataset): ``text`` itself when it is valid, else with every run of
    other characters as ``_``, without leading ``.``, ``-`` or ``_``, at most 100
    characters; ``"dataset"`` when nothing is left."""
    if _MODALITY_NAME.fullmatch(text):
        return text
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip("._-")[:100]
    return name or "dataset"


def interactions_matrix(
    users: np.ndarray,
    items: np.ndarray,
    shape: tuple[int, int],
    timestamps: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Canonical binary CSR of ``(users, items)`` pairs, duplicates merged.

    Returns the matrix and, when ``timestamps`` is given, the per-entry timestamps
    aligned with ``matrix.data`` (latest time of each pair).
    """
    users = np.asarray(users)
    items = np.asarray(items)
    # integer indices are used as they are (int32 ones take half the memory of a copy);
    # anything else, and uint64 (which numpy does not add to int64), as int64
    if users.dtype.kind not in "iu" or users.dtype == np.uint64:
        users = users.astype(np.int64)
    if items.dtype.kind not in "iu" or items.dtype == np.uint64:
        items = items.astype(np.int64)
    n_users, n_items = shape
    if users.size:
        if users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items:
            raise DataError(f"interaction indices out of range for shape {shape}")
    # the key user * n_items + item of every pair, built in place in one int64 array
    keys = users.astype(np.int64)
    keys *= n_items
    keys += items
    if timestamps is not None:
        ts = np.asarray(timestamps, dtype=np.float64)
        order = np.lexsort((ts, keys))  # by key, then time: the last of a run is the latest
        keys = keys[order]
        last = np.ones(keys.size, dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        keys_u = keys[last]
        del keys
        ts_u = ts[order[last]]
        del order
    else:
        keys_u = np.unique(keys)
        del keys
        ts_u = None
    return sorted_pairs_matrix(keys_u // n_items, (keys_u % n_items).astype(np.int32), shape), ts_u


def sorted_pairs_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """The binary CSR of ``(users, items)`` pairs that are distinct and in CSR order
    already (by user, then item): no sort; ``items`` int32 are used as they are."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=shape[0]), out=indptr[1:])
    mat = sp.csr_matrix((np.ones(len(items), dtype=np.float32), items.astype(np.int32, copy=False), indptr),
                        shape=shape)
    mat.has_sorted_indices = True
    return mat


def index_dtype(n: int) -> type:
    """int32 for indices (or codes) below ``n`` while they fit, else int64: half the memory
    of int64 for the ids and indices of any dataset of fewer than 2^31 users or items."""
    return np.int32 if n < 2**31 else np.int64


class IdColumn:
    """A column of ids stored as codes into its distinct values: row ``k`` holds
    ``values[codes[k]]``. What the importers that read files in chunks hand
    :func:`build_dataset` (and :func:`~graphrec.data.formats._common.check_unseen`,
    :func:`~graphrec.data.formats._common.duplicate_rows`) instead of one string per
    row: a few bytes per interaction, each distinct id once. ``values`` are distinct."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: np.ndarray):
        self.codes = np.asarray(codes)
        self.values = np.asarray(values)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, k: int) -> Any:
        return self.values[self.codes[k]]

    @classmethod
    def of(cls, column: Any) -> "IdColumn":
        """``column`` itself, or a column of values (any 1-d array) as codes into its
        distinct values (sorted)."""
        if isinstance(column, IdColumn):
            return column
        values, codes = np.unique(np.asarray(column), return_inverse=True)
        return cls(codes.reshape(-1), values)

    def used(self) -> np.ndarray:
        """The values some row holds (``values`` may list more)."""
        if not len(self.values):
            return self.values
        return self.values[np.bincount(self.codes, minlength=len(self.values)) > 0]

    def rows_where(self, mask_of_values: np.ndarray) -> np.ndarray:
        """Per row, ``mask_of_values`` (one bool per value) of the row's value."""
        return np.asarray(mask_of_values, dtype=bool)[self.codes]


def _as_str_column(x: Any) -> IdColumn:
    """Ids compared as strings (:func:`build_dataset`): an :class:`IdColumn` with string
    values, made distinct as strings (two int values never print alike, but be safe)."""
    if isinstance(x, IdColumn):
        values = x.values.astype(str)
        if len(values) < 2 or x.values.dtype.kind == "U":
            return IdColumn(x.codes, values)
        uniq, inverse = np.unique(values, return_inverse=True)
        return IdColumn(inverse.reshape(-1)[x.codes], uniq)
    return IdColumn.of(np.asarray(x).astype(str))


def _natural_unique(raw: np.ndarray) -> np.ndarray:
    """Distinct ids in natural order: numeric order when all ids are integers (digits
    0-9, an optional ``-``) that fit int64, else lexicographic (string) order."""
    uniq = np.unique(raw.astype(str))
    try:
        if not all(is_int_text(v) for v in uniq.tolist()):  # int() would read '1_0' as 10
            raise ValueError("not all integers")
        as_int = uniq.astype(np.int64)
    except (ValueError, OverflowError):  # not all integers, or one beyond int64: string order
        return uniq
    return uniq[np.argsort(as_int, kind="stable")]


def _index_of(raw: IdColumn, ids: np.ndarray, what: str, source: str) -> np.ndarray:
    """Positions of the ``raw`` ids (one per row) in ``ids`` (int32 while they fit); a
    clear error naming the first row's id that is not there."""
    values = raw.values.astype(str)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, values)
    pos_clipped = np.minimum(pos, max(len(ids) - 1, 0))
    ok = (pos < len(ids)) & (sorted_ids[pos_clipped] == values) if len(ids) else np.zeros(len(values), bool)
    if not np.all(ok):
        bad_rows = raw.rows_where(~ok)
        if bad_rows.any():
            bad = values[raw.codes[int(np.argmax(bad_rows))]]
            raise DataError(
                f"{what} id {str(bad)!r} in {source} is not in the {what} id list: "
                f"add it to the {what} mapping or remove its rows"
            )
    where = order[pos_clipped].astype(index_dtype(len(ids)), copy=False)
    return where[raw.codes]


def build_dataset(
    users: Sequence | np.ndarray | IdColumn,
    items: Sequence | np.ndarray | IdColumn,
    split: Sequence | np.ndarray | IdColumn,
    *,
    timestamps: Sequence | np.ndarray | None = None,
    user_ids: Sequence | np.ndarray | None = None,
    item_ids: Sequence | np.ndarray | None = None,
    item_features: Mapping[str, np.ndarray] | None = None,
    user_fields: Mapping[str, np.ndarray] | None = None,
    item_fields: Mapping[str, np.ndarray] | None = None,
    name: str = "dataset",
    source: str = "input",
    meta: Mapping[str, Any] | None = None,
    unseen: str = "error",
) -> "Dataset":
    """Build a :class:`Dataset` from raw (original-id) interaction columns.

    Args:
        users, items: original ids per interaction (any type; compared as strings), or an
            :class:`IdColumn` of them (codes into the distinct ids: what the importers
            that read large files pass, a few bytes per interaction).
        split: per interaction, one of ``"train"``, ``"valid"``, ``"test"`` (or an
            :class:`IdColumn` of them).
        timestamps: optional time per interaction.
        user_ids, item_ids: the complete id lists in index order (e.g. when feature rows
            follow a given item order). Inferred from the interactions when omitted
            (numeric order when all ids are integers, else lexicographic).
        source: how to name the input in error messages (a file name).
        unseen: what to do with users/items that occur in valid/test but never in train:
            ``"error"`` (default), ``"drop"`` their valid/test rows, or ``"keep"``. Rows
            dropped are counted in ``meta["unseen_dropped"]`` (``{split: [dropped, given]}``).

    A (user, item) pair given again in the same split is one interaction (the later
    timestamp); how many rows were merged so is ``meta["duplicate_rows"]``
    (``{source: rows}``) when no ``meta`` is given (the file readers pass theirs, with the
    rows they count per file; a UniSRec history repeats its pairs by design).
    """
    users = _as_str_column(users)
    items = _as_str_column(items)
    split = _as_str_column(split)
    n = len(users)
    if not (n == len(items) == len(split)):
        raise DataError(f"{source}: user, item and split columns differ in length")
    # the split of every row as 0 train, 1 valid, 2 test (-1: not a split name)
    label_of = np.full(len(split.values), -1, dtype=np.int8)
    for k, s in enumerate(SPLITS):
        label_of[split.values == s] = k
    label = label_of[split.codes]
    bad_split = label < 0
    if bad_split.any():
        raise DataError(
            f"{source}: unknown split label {str(split[int(np.argmax(bad_split))])!r}: use train, valid or test"
        )
    del bad_split
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    if ts is not None:
        if ts.shape != (n,):
            raise DataError(f"{source}: {ts.size} timestamps for {n} interactions: give one per interaction")
        bad_ts = ~np.isfinite(ts)
        if bad_ts.any():
            k = int(np.flatnonzero(bad_ts)[0])
            raise DataError(
                f"{source}: the timestamp of interaction {k} (user {str(users[k])!r}, item {str(items[k])!r}) is "
                f"{ts[k]} ({int(bad_ts.sum())} such): timestamps must be finite numbers (a temporal split orders by them)"
            )
        del bad_ts
    uids = _natural_unique(users.used()) if user_ids is None else np.asarray(user_ids).astype(str)
    iids = _natural_unique(items.used()) if item_ids is None else np.asarray(item_ids).astype(str)
    for ids, what in ((uids, "user"), (iids, "item")):
        u, c = np.unique(ids, return_counts=True)
        if (c > 1).any():
            raise DataError(f"{source}: {what} id {str(u[c > 1][0])!r} is listed twice in the {what} id list")
    u_idx = _index_of(users, uids, "user", source)
    i_idx = _index_of(items, iids, "item", source)

    if unseen not in ("error", "drop", "keep"):
        raise DataError(f"unseen={unseen!r} (--unseen) is not one of error, drop, keep")
    in_train = label == 0
    if not in_train.any():
        raise DataError(f"{source}: the train split is empty: check the split column or files")
    seen_u = np.zeros(len(uids), bool)
    seen_u[u_idx[in_train]] = True
    seen_i = np.zeros(len(iids), bool)
    seen_i[i_idx[in_train]] = True
    orphan = ~seen_u[u_idx]
    orphan |= ~seen_i[i_idx]
    orphan &= ~in_train
    del in_train
    if orphan.any() and unseen == "error":
        k = np.flatnonzero(orphan)[0]
        who = f"user {str(users[k])!r}" if not seen_u[u_idx[k]] else f"item {str(items[k])!r}"
        raise DataError(
            f"{source}: {who} appears in {SPLITS[label[k]]} but never in train "
            f"({counted(int(orphan.sum()), 'such interaction')}): pass unseen='drop' (CLI: --unseen drop) "
            "to remove them or unseen='keep' (--unseen keep) to keep them"
        )
    counts_merged = meta is None  # the readers (who pass meta) count repeated rows per file themselves
    meta = dict(meta or {})
    drop = unseen == "drop" and orphan.any()
    if drop:
        # {split: [rows dropped, rows given]}: apply_split tells a split emptied here from one never given
        meta["unseen_dropped"] = {
            s: [int((orphan & (label == k)).sum()), int((label == k).sum())]
            for k, s in enumerate(SPLITS) if (orphan & (label == k)).any()
        }

    shape = (len(uids), len(iids))
    mats: dict[str, sp.csr_matrix] = {}
    stamps: dict[str, np.ndarray] | None = {} if ts is not None else None
    merged = 0  # rows repeating a (user, item) pair of their split: one interaction each
    for k, s in enumerate(SPLITS):
        sel = label == k
        if s != "train" and not sel.any():
            continue
        if drop:
            sel &= ~orphan
        m, t = interactions_matrix(u_idx[sel], i_idx[sel], shape, None if ts is None else ts[sel])
        merged += int(sel.sum()) - int(m.nnz)
        del sel
        mats[s] = m
        if stamps is not None:
            stamps[s] = t
    if merged and counts_merged:
        meta["duplicate_rows"] = {source: merged}
    del u_idx, i_idx, label, orphan
    return Dataset(
        user_ids=uids,
        item_ids=iids,
        splits=mats,
        timestamps=stamps,
        item_features=dict(item_features or {}),
        user_fields=dict(user_fields or {}),
        item_fields=dict(item_fields or {}),
        name=name,
        meta=meta,
    )


def _hash_array(h: Any, tag: str, arr: np.ndarray) -> None:
    """Feed ``arr`` to the hash ``h`` under ``tag``, with its dtype and shape."""
    arr = np.ascontiguousarray(arr)
    h.update(f"{tag}:{arr.dtype.str}:{arr.shape}".encode())
    h.update(array_bytes(arr))


def array_bytes(arr: np.ndarray) -> memoryview | bytes:
    """The bytes of the C-contiguous array ``arr`` for a hash, as ``arr.tobytes()`` gives
    them but without the copy (a feature matrix of 1M x 512 float32 is 2 GB): a uint8
    view of the memory. Object arrays (pointers, no buffer) still go through tobytes."""
    if arr.dtype.hasobject or not arr.flags.c_contiguous:
        return arr.tobytes()
    return memoryview(arr.reshape(-1).view(np.uint8))


def max_abs(x: np.ndarray) -> float:
    """:math:`\\max_{ij} |x_{ij}|` (0 for an empty array), from the largest and smallest
    entries: no array-sized copy (``np.abs(x)`` would make one of the whole feature matrix)."""
    x = np.asarray(x)
    return float(max(x.max(initial=0.0), -x.min(initial=0.0))) + 0.0 if x.size else 0.0  # + 0.0: never -0.0


def nonfinite_rows(x: np.ndarray) -> np.ndarray | None:
    """The rows of a 2-D float array holding NaN or inf (a bool mask), or None when it has
    none: the usual answer comes from its smallest and largest entries (NaN and inf reach
    one of them), with no array-sized temporary (``np.isfinite(x)`` is an n x d bool
    array: 512 MB for a million items x 512); the mask only where something is wrong."""
    if not x.size or (np.isfinite(x.min()) and np.isfinite(x.max())):
        return None
    return ~np.isfinite(x).all(axis=1)


@dataclass(eq=False)
class Dataset:
    """Users, items, split interactions, features and side fields (see module doc).

    Compared by identity (``==`` of two datasets is ``is``; compare
    :meth:`fingerprint` for content); ``repr`` is a one-line summary."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    splits: dict[str, sp.csr_matrix]
    timestamps: dict[str, np.ndarray] | None = None
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    user_fields: dict[str, np.ndarray] = field(default_factory=dict)
    item_fields: dict[str, np.ndarray] = field(default_factory=dict)
    cold_items: np.ndarray | None = None
    name: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)
    #: where the data came from, when it was read by :meth:`load` or written by
    #: :meth:`save` (not itself saved, not part of the fingerprint): ``{"path": the
    #: directory, "cold": whether it was stored with a cold-start split}``. :meth:`replace` and :func:`~graphrec.data.cold_start` keep it
    #: (a run trained on the dataset then records the path and the cold-start split that
    #: reproduce it); a re-split drops it.
    source: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: the training interactions a ``"hidden"`` cold-start split removed (the cold items'
    #: ones: n_users x n_items CSR; :func:`~graphrec.data.cold_start`), or None. No model
    #: sees them; ranking masks them as it masks training items (the user consumed them:
    #: ranking one is no miss) and ``recommend`` excludes them with the training items.
    #: Saved and loaded with the dataset, not part of its fingerprint (the cold-start
    #: split it comes from is: :attr:`cold_items`).
    hidden: sp.csr_matrix | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_dataset_name(self.name)
        checked = _CHECKED_IDS.get()  # replace(): ids it did not change were checked already
        for kind in ("user", "item"):
            given = getattr(self, f"{kind}_ids")
            ids = _compact_str(given)
            if not any(given is c for c in checked):
                _check_unique_ids(self.name, kind, ids)
            setattr(self, f"{kind}_ids", ids)
        shape = (len(self.user_ids), len(self.item_ids))
        if "train" not in self.splits:
            raise DataError(f"dataset {self.name!r} has no train split")
        splits = {}
        stamps = dict(self.timestamps) if self.timestamps is not None else None
        for s, m in self.splits.items():
            if s not in SPLITS:
                raise DataError(f"dataset {self.name!r}: unknown split {s!r} (use train/valid/test)")
            if m.shape != shape:
                raise DataError(f"split {s!r} has shape {m.shape}, expected {shape}")
            t = None if stamps is None else stamps.get(s)
            if t is not None and len(t) == m.nnz:
                stamps[s] = _canonical_order(m, np.asarray(t), s)  # before the entries move
            m = sp.csr_matrix(m).astype(np.float32, copy=True)
            bad = ~np.isfinite(m.data) | (m.data < 0)
            if bad.any():
                raise DataError(
                    f"split {s!r} holds {counted(int(bad.sum()), 'negative or non-finite value')} (first "
                    f"{float(m.data[bad][0])!r}): a split marks each interaction with a positive value (stored "
                    "zeros are dropped); keep only the interactions, e.g. m.multiply(m > 0)"
                )
            m.eliminate_zeros()
            m.sum_duplicates()
            m.sort_indices()
            m.data[:] = 1.0
            splits[s] = m
        self.splits = splits
        if stamps is not None:
            for s, t in stamps.items():
                if s not in self.splits or len(t) != self.splits[s].nnz:
                    raise DataError(f"timestamps of split {s!r} do not align with its interactions")
            self.timestamps = stamps
        feats = {}
        for mod, x in self.item_features.items():
            check_modality_name(mod, f"dataset {self.name!r}")
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[0] != shape[1] or x.shape[1] == 0:
                raise DataError(
                    f"features {mod!r} have shape {x.shape}, expected ({shape[1]}, dim) with dim >= 1: "
                    "one row per item, in item index order"
                )
            x = x.astype(np.float32, copy=False)
            bad = nonfinite_rows(x)
            if bad is not None:
                r = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"features {mod!r} row {r} (item {str(self.item_ids[r])!r}) contains NaN or inf "
                    f"({int(bad.sum())} rows): replace them with zeros to mark the item's "
                    "modality as missing"
                )
            feats[mod] = x
        self.item_features = feats
        for kind, fields, n in (("user", self.user_fields, shape[0]), ("item", self.item_fields, shape[1])):
            for k, v in fields.items():
                if len(v) != n:
                    raise DataError(f"{kind} field {k!r} has {len(v)} values, expected {n}")
            # object arrays (a pandas column's .values) as strings, as save() writes them: the
            # fingerprint hashes values, never addresses
            converted = {k: _field_array(v) for k, v in fields.items()}
            if kind == "user":
                self.user_fields = converted
            else:
                self.item_fields = converted
        if self.cold_items is not None:
            cold = np.asarray(self.cold_items)
            if cold.size and (not np.issubdtype(cold.dtype, np.integer) or cold.min() < 0 or cold.max() >= shape[1]):
                shown = ", ".join(repr(v) for v in cold.ravel()[:3].tolist())
                raise DataError(f"dataset {self.name!r}: cold_items must be item indices in [0, {shape[1]}), got "
                                f"{shown}{', ...' if cold.size > 3 else ''}: pass indices, not ids")
            self.cold_items = np.unique(cold.astype(np.int64))
        if self.hidden is not None:
            hidden = sp.csr_matrix(self.hidden, dtype=np.float32)
            if hidden.shape != shape:
                raise DataError(f"dataset {self.name!r}: hidden interactions have shape {hidden.shape}, expected {shape}")
            hidden.sum_duplicates()
            hidden.sort_indices()
            hidden.data[:] = 1.0
            self.hidden = hidden
        self._fingerprint: str | None = None
        self._content_fingerprints: dict[tuple[str, ...], str] = {}

    def __repr__(self) -> str:
        splits = " / ".join(f"{s} {self.splits[s].nnz}" for s in SPLITS if s in self.splits)
        feats = ", ".join(f"{m} ({x.shape[1]}-d)" for m, x in self.item_features.items()) or "none"
        extra = f", {len(self.cold_items)} cold items" if self.cold_items is not None else ""
        return (f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, {splits}; "
                f"features {feats}{extra})")

    # ------------------------------------------------------------------ basic views
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def train(self) -> sp.csr_matrix:
        return self.splits["train"]

    @property
    def valid(self) -> sp.csr_matrix:
        return self.split("valid")

    @property
    def test(self) -> sp.csr_matrix:
        return self.split("test")

    @property
    def modalities(self) -> list[str]:
        return list(self.item_features)

    def split(self, name: str) -> sp.csr_matrix:
        """The interaction matrix of split ``name``; a clear error when it is absent."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}: one of {', '.join(SPLITS)}")
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no {name} split: re-run `graphrec prepare` with "
                "--split random or --split temporal (in Python: graphrec.data.random_split(dataset) or "
                "temporal_split(dataset))"
            )
        return self.splits[name]

    def replace(self, **changes: Any) -> "Dataset":
        """A copy with some fields replaced (the fingerprint is recomputed)."""
        token = _CHECKED_IDS.set((self.user_ids, self.item_ids))
        try:
            return dataclasses.replace(self, **changes)
        finally:
            _CHECKED_IDS.reset(token)

    # ------------------------------------------------------------------ identity
    def fingerprint(self, fresh: bool = False) -> str:
        """SHA-256 of the content (ids, splits, features, fields, cold items); not the name.

        Computed once and cached; ``fresh=True`` computes it again, for the arrays as they
        are now (a run record does: an array changed in place after loading, e.g. features
        normalised by the caller, must not be recorded under the fingerprint of the data on
        disk)."""
        if self._fingerprint is None or fresh:
            h = hashlib.sha256()

            def put(tag: str, arr: np.ndarray) -> None:
                _hash_array(h, tag, arr)

            put("users", self.user_ids)
            put("items", self.item_ids)
            for s in SPLITS:
                if s in self.splits:
                    m = self.splits[s]
                    put(f"{s}.indptr", m.indptr.astype(np.int64))
                    put(f"{s}.indices", m.indices.astype(np.int64))
                    if self.timestamps is not None and s in self.timestamps:
                        put(f"{s}.ts", self.timestamps[s])
            for mod in sorted(self.item_features):
                put(f"feat.{mod}", self.item_features[mod])
            for kind, fields in (("user", self.user_fields), ("item", self.item_fields)):
                for k in sorted(fields):
                    put(f"{kind}.{k}", np.asarray(fields[k]))
            if self.cold_items is not None:
                put("cold", self.cold_items)
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def content_fingerprint(self, modalities: Sequence[str]) -> str:
        """SHA-256 of the item ids and the features of ``modalities`` (in sorted order):
        all that a graph built from item content alone reads (a kNN graph), so equal for
        every split of the same items, a cold-start split included. A modality the dataset
        lacks hashes as absent. Computed once per set of modalities (a build records it, a
        load of the graph compares it)."""
        key = tuple(sorted(set(modalities)))
        if key not in self._content_fingerprints:
            h = hashlib.sha256()
            _hash_array(h, "items", self.item_ids)
            for mod in key:
                if mod in self.item_features:
                    _hash_array(h, f"feat.{mod}", self.item_features[mod])
                else:
                    h.update(f"feat.{mod}:absent".encode())
            self._content_fingerprints[key] = h.hexdigest()
        return self._content_fingerprints[key]

    def stats(self) -> dict[str, Any]:
        """Counts that `graphrec info` prints."""
        out: dict[str, Any] = {"name": self.name, "users": self.n_users, "items": self.n_items}
        total = 0
        for s in SPLITS:
            if s in self.splits:
                out[f"{s}_interactions"] = int(self.splits[s].nnz)
                total += int(self.splits[s].nnz)
        out["interactions"] = total
        out["density"] = total / max(self.n_users * self.n_items, 1)
        tr = self.train
        out["users_without_train"] = int((np.diff(tr.indptr) == 0).sum())
        out["items_without_train"] = int((np.bincount(tr.indices, minlength=self.n_items) == 0).sum())
        out["modalities"] = {m: int(x.shape[1]) for m, x in self.item_features.items()}
        # the content's scale (features of a huge or tiny scale are what a diverged
        # training's message points to) and the items with no content (zero rows)
        out["feature_max_abs"] = {m: max_abs(x) for m, x in self.item_features.items()}
        out["items_without_content"] = {m: int((~np.asarray(x).any(axis=1)).sum())
                                        for m, x in self.item_features.items()}
        out["user_fields"] = sorted(self.user_fields)
        out["item_fields"] = sorted(self.item_fields)
        out["timestamps"] = self.timestamps is not None
        out["cold_items"] = None if self.cold_items is None else int(len(self.cold_items))
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the dataset directory atomically (temporary folder, then rename).

        With ``overwrite`` an existing ``path`` is replaced as a whole: refused first
        (:func:`check_replaceable`) when it holds anything a dataset does not write (a run
        folder, stored graphs, notes), which the replacement would delete.

        Raises:
            DataError: a user or item id that appears twice (an id array changed in place
                after the dataset was made; the constructor refuses them).
            ConfigError: ``path`` holds entries a dataset does not write."""
        path = Path(path)
        for kind in ("user", "item"):
            _check_unique_ids(self.name, kind, getattr(self, f"{kind}_ids"))
        if overwrite:
            check_replaceable(path)
        with atomic_dir(path, overwrite) as tmp:
            np.savez(tmp / "ids.npz", user_ids=self.user_ids, item_ids=self.item_ids)
            arrays = {}
            for s, m in self.splits.items():
                arrays[f"{s}_indptr"] = m.indptr.astype(np.int64)
                arrays[f"{s}_indices"] = m.indices.astype(np.int64)
                if self.timestamps is not None and s in self.timestamps:
                    arrays[f"{s}_timestamps"] = self.timestamps[s]
            if self.hidden is not None:
                arrays["hidden_indptr"] = self.hidden.indptr.astype(np.int64)
                arrays["hidden_indices"] = self.hidden.indices.astype(np.int64)
            np.savez_compressed(tmp / "interactions.npz", **arrays)
            if self.item_features:
                (tmp / "features").mkdir()
                for mod, x in self.item_features.items():
                    np.save(tmp / "features" / f"{mod}.npy", x)
            fields = {f"user__{k}": _field_array(v) for k, v in self.user_fields.items()}
            fields.update({f"item__{k}": _field_array(v) for k, v in self.item_fields.items()})
            if fields:
                np.savez_compressed(tmp / "fields.npz", **fields)
            if self.cold_items is not None:
                np.save(tmp / "cold_items.npy", self.cold_items)
            header = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "name": self.name,
                "n_users": self.n_users,
                "n_items": self.n_items,
                "splits": [s for s in SPLITS if s in self.splits],
                "timestamps": self.timestamps is not None,
                "modalities": {m: int(x.shape[1]) for m, x in self.item_features.items()},
                "user_fields": list(self.user_fields),
                "item_fields": list(self.item_fields),
                "cold_items": self.cold_items is not None,
                **({"hidden": True} if self.hidden is not None else {}),
                "fingerprint": self.fingerprint(),
                "meta": self.meta,
            }
            (tmp / "dataset.json").write_text(json.dumps(header, indent=2, default=str))
        # the folder now holds this content: a run trained on it records the folder (load_run reads it back)
        self.source = {"path": str(path.resolve()), "cold": self.cold_items is not None}
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dataset":
        """Read a directory written by :meth:`save` (no pickles are ever loaded)."""
        path = Path(path)
        head_file = path / "dataset.json"
        if not head_file.is_file():
            raise DataError(
                f"{path} is not a graphrec dataset directory (no dataset.json): "
                "create one with `graphrec prepare`"
            )
        try:
            header = json.loads(head_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{head_file}: invalid JSON ({e}): re-run `graphrec prepare`") from None
        if not isinstance(header, dict):
            raise DataError(f"{head_file}: not a graphrec dataset header (a JSON object): re-run `graphrec prepare`")
        if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
            raise DataError(
                f"{head_file}: format {header.get('format')!r} version {header.get('version')!r} "
                f"is not {FORMAT_NAME} v{FORMAT_VERSION}: re-run `graphrec prepare`"
            )
        _check_header(header, head_file)
        check_dataset_name(header["name"], f"{head_file}: entry 'name'")
        for m in header["modalities"]:  # names become paths features/{m}.npy: none may leave the directory
            check_modality_name(m, f"{head_file}")
        try:
            with np.load(path / "ids.npz", allow_pickle=False) as z:
                user_ids, item_ids = z["user_ids"], z["item_ids"]
            shape = (len(user_ids), len(item_ids))
            splits: dict[str, sp.csr_matrix] = {}
            stamps: dict[str, np.ndarray] | None = {} if header["timestamps"] else None
            with np.load(path / "interactions.npz", allow_pickle=False) as z:
                for s in header["splits"]:
                    indptr, indices = z[f"{s}_indptr"], z[f"{s}_indices"]
                    t = z[f"{s}_timestamps"] if stamps is not None else None
                    _check_stored_split(path / "interactions.npz", s, indptr, indices, t, shape)
                    splits[s] = sp.csr_matrix(
                        (np.ones(len(indices), np.float32), indices, indptr), shape=shape
                    )
                    if stamps is not None:
                        stamps[s] = t
                hidden = None
                if header.get("hidden") is True:  # a hidden cold-start split's removed interactions
                    indptr, indices = z["hidden_indptr"], z["hidden_indices"]
                    _check_stored_split(path / "interactions.npz", "hidden", indptr, indices, None, shape)
                    hidden = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=shape)
            from graphrec.data.formats._common import read_npy  # (it imports this module)

            damaged = "the dataset directory is damaged: re-run `graphrec prepare`"
            feats = {
                m: read_npy(path / "features" / f"{m}.npy", damaged, damaged)
                for m in header["modalities"]
            }
            user_fields: dict[str, np.ndarray] = {}
            item_fields: dict[str, np.ndarray] = {}
            if header["user_fields"] or header["item_fields"]:
                with np.load(path / "fields.npz", allow_pickle=False) as z:
                    user_fields = {k: z[f"user__{k}"] for k in header["user_fields"]}
                    item_fields = {k: z[f"item__{k}"] for k in header["item_fields"]}
            cold = read_npy(path / "cold_items.npy", damaged, damaged) if header["cold_items"] else None
        except DataError:  # a check's own message (a DataError is also a ValueError)
            raise
        except ARRAY_FILE_ERRORS as e:
            raise DataError(f"{path}: dataset directory is incomplete or corrupt ({e}): re-run `graphrec prepare`") from None
        ds = cls(
            user_ids=user_ids,
            item_ids=item_ids,
            splits=splits,
            timestamps=stamps,
            item_features=feats,
            user_fields=user_fields,
            item_fields=item_fields,
            cold_items=cold,
            hidden=hidden,
            name=header["name"],
            meta=header.get("meta", {}),
            source={"path": str(path.resolve()), "cold": cold is not None},
        )
        if ds.fingerprint() != header["fingerprint"]:
            raise DataError(
                f"{path}: content does not match the fingerprint in dataset.json (files were "
                "modified): re-run `graphrec prepare`"
            )
        return ds

    # ------------------------------------------------------------------ helpers
    def pairs(self, split: str = "train", dtype: type = np.int64) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) index arrays of a split, in CSR order, as ``dtype``."""
        m = self.split(split)
        users = np.repeat(np.arange(self.n_users, dtype=dtype), np.diff(m.indptr))
        return users, m.indices.astype(dtype, copy=False)

    def users_with(self, split: str) -> np.ndarray:
        """Indices of users with at least one interaction in ``split``."""
        return np.flatnonzero(np.diff(self.split(split).indptr) > 0)


def foreign_entries(path: str | os.PathLike) -> list[str]:
    """What the folder ``path`` holds that :meth:`Dataset.save` does not write (sorted;
    ``run/``, ``notes.txt``, ``features/notes.txt``), which replacing the folder by a new
    save would delete; ``[]`` when it is missing or not a folder. Not counted: the files of
    :data:`DATASET_FILES`, the folder :data:`FEATURES_DIR` with its ``.npy`` files, and
    the stale temporaries of an interrupted graphrec write
    (:func:`~graphrec._atomic.is_stale_temporary`, garbage graphrec removes anyway)."""
    path = Path(path)
    if not path.is_dir():
        return []

    def shown(entry: Path, prefix: str = "") -> str:
        return prefix + entry.name + ("/" if entry.is_dir() and not entry.is_symlink() else "")

    foreign = []
    for entry in sorted(path.iterdir()):
        if is_stale_temporary(entry):
            continue
        if entry.name in DATASET_FILES and entry.is_file():
            continue
        if entry.name == FEATURES_DIR and entry.is_dir() and not entry.is_symlink():
            foreign += [shown(f, f"{FEATURES_DIR}/") for f in sorted(entry.iterdir())
                        if not (f.suffix == ".npy" and f.is_file() and not f.name.startswith("."))
                        and not is_stale_temporary(f)]
            continue
        foreign.append(shown(entry))
    return foreign


def check_replaceable(path: str | os.PathLike, where: str | None = None) -> Path:
    """``path``, when a dataset may be saved over it with ``overwrite``: missing, or a
    folder holding only what a dataset writes (:func:`foreign_entries`). Anything else is
    a one-line :class:`ConfigError` naming up to three foreign entries (``where``, e.g.
    ``"OUT data/ml"``, names the folder; default its path): the save replaces the folder
    as a whole, and would delete them. Called by :meth:`Dataset.save` and, before any
    work, by ``graphrec prepare``."""
    path = Path(path)
    foreign = foreign_entries(path)
    if foreign:
        names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(
            f"{where or path} holds {names}, which a dataset does not write: move "
            f"{'it' if len(foreign) == 1 else 'them'} out of the dataset folder first (replacing it would delete "
            f"{'it' if len(foreign) == 1 else 'them'})"
        )
    return path


#: the counts :func:`stats_difference` compares, in the order it names them
_COMPARED_STATS = ("users", "items", "train_interactions", "valid_interactions", "test_interactions",
                   "cold_items", "modalities")


def stats_difference(recorded: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str:
    """What differs between two :meth:`Dataset.stats` (a run's recorded one and a
    dataset's now), for a fingerprint mismatch's message: up to three counts
    (``"train interactions 44100, was 44327"``), or, where every count is the same, that
    the split, the ids or the feature values differ."""
    diffs = [f"{key.replace('_', ' ')} {now.get(key)}, was {recorded.get(key)}" for key in _COMPARED_STATS
             if recorded and key in recorded and recorded.get(key) != now.get(key)]
    if diffs:
        return "; ".join(diffs[:3])
    return "the same counts: another split, other ids or other feature values"


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


#: what :meth:`Dataset.load` needs of each ``dataset.json`` entry: (test, description)
_HEADER_TYPES: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "splits": (lambda v: _is_str_list(v) and set(v) <= set(SPLITS) and "train" in v,
               "a list of split names (train, valid, test) with train"),
    "timestamps": (lambda v: isinstance(v, bool), "true or false"),
    "modalities": (lambda v: isinstance(v, dict) and all(isinstance(d, int) and not isinstance(d, bool)
                                                         for d in v.values()),
                   "an object {modality: dim}"),
    "user_fields": (_is_str_list, "a list of field names"),
    "item_fields": (_is_str_list, "a list of field names"),
    "cold_items": (lambda v: isinstance(v, bool), "true or false"),
    "fingerprint": (lambda v: isinstance(v, str), "a string"),
    "meta": (lambda v: isinstance(v, dict), "an object"),
}


def _check_header(header: dict[str, Any], head_file: Path) -> None:
    """A one-line DataError for an entry of ``dataset.json`` that is missing or of the wrong
    type (a hand edit), instead of a TypeError/KeyError deep in :meth:`Dataset.load`."""
    for key, (ok, desc) in _HEADER_TYPES.items():
        if key not in header:
            if key == "meta":
                continue
            raise DataError(f"{head_file}: entry {key!r} is missing: the header is damaged: re-run `graphrec prepare`")
        if not ok(header[key]):
            shown = json.dumps(header[key])[:60]  # one line: json.dumps adds no line breaks
            raise DataError(
                f"{head_file}: entry {key!r} is {shown}, expected {desc}: the header was edited or damaged: "
                "re-run `graphrec prepare`"
            )


#: id arrays a Dataset.replace() passes on unchanged (checked when that dataset was made)
_CHECKED_IDS: contextvars.ContextVar[tuple[np.ndarray, ...]] = contextvars.ContextVar("checked_ids", default=())


def _check_unique_ids(name: str, kind: str, ids: np.ndarray) -> None:
    """A :class:`DataError` for an id listed twice: recommendations and every lookup by
    id would reach only one of the two users (items)."""
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        twice = values[counts > 1]
        raise DataError(f"dataset {name!r}: {kind} id {str(twice[0])!r} appears {int(counts[counts > 1][0])} "
                        f"times ({twice.size} such ids): every {kind} needs its own id")


def _compact_str(values: Iterable) -> np.ndarray:
    """Strings at their minimal fixed width, so equal ids always hash equally
    (``np.arange(3).astype(str)`` is ``<U21``; the same ids read from text are ``<U1``)."""
    arr = np.asarray(values).astype(str)
    width = int(np.char.str_len(arr).max()) if arr.size else 1
    return arr.astype(f"<U{max(width, 1)}")


def _check_stored_split(file: Path, split: str, indptr: np.ndarray, indices: np.ndarray,
                        stamps: np.ndarray | None, shape: tuple[int, int]) -> None:
    """What :meth:`Dataset.save` writes for a split, checked as :meth:`Dataset.load` reads it
    (vectorised, a few passes over the arrays): ``indptr`` of ``n_users + 1`` integers from
    0, non-decreasing, ending at ``len(indices)``; item ``indices`` in ``[0, n_items)``,
    strictly increasing within each user's row; one timestamp per entry. Anything else is
    a damaged file (a truncated or hand-made copy), a one-line :class:`DataError` naming
    ``file`` and ``split`` instead of scipy's traceback or a misleading message later."""
    n_users, n_items = shape

    def damaged(what: str) -> DataError:
        return DataError(f"{file}: split {split!r}: {what}: the dataset directory is damaged: re-run `graphrec prepare`")

    for name, arr in (("indptr", indptr), ("indices", indices)):
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise damaged(f"{split}_{name} has shape {arr.shape} dtype {arr.dtype}, expected a 1-d integer array")
    if len(indptr) != n_users + 1:
        raise damaged(f"{split}_indptr has {len(indptr)} entries, expected {n_users + 1} (one more than the "
                      f"{n_users} users of ids.npz)")
    if indptr[0] != 0:
        raise damaged(f"{split}_indptr starts at {int(indptr[0])}, not 0")
    if indptr[-1] != len(indices):
        raise damaged(f"{split}_indptr ends at {int(indptr[-1])}, but {split}_indices has {len(indices)} entries")
    falls = np.flatnonzero(indptr[1:] < indptr[:-1])
    if falls.size:
        u = int(falls[0])
        raise damaged(f"{split}_indptr decreases at user {u} ({int(indptr[u])} then {int(indptr[u + 1])}; "
                      f"{falls.size} such)")
    if indices.size:
        out = (indices < 0) | (indices >= n_items)
        if out.any():
            k = int(np.argmax(out))
            raise damaged(f"{split}_indices[{k}] is {int(indices[k])}, outside 0..{n_items - 1} (the {n_items} items "
                          f"of ids.npz; {int(out.sum())} such)")
        del out
        # within a row, items strictly increase; a new row may start anywhere
        steps = np.diff(indices.astype(np.int64, copy=False)) <= 0
        starts = indptr[1:-1]
        steps[starts[(starts > 0) & (starts < len(indices))] - 1] = False
        if steps.any():
            k = int(np.argmax(steps)) + 1
            u = int(np.searchsorted(indptr, k, side="right")) - 1
            raise damaged(f"the items of user {u} are not strictly increasing ({split}_indices[{k}] is "
                          f"{int(indices[k])} after {int(indices[k - 1])}): each pair is stored once, in item order")
    if stamps is not None and (stamps.ndim != 1 or len(stamps) != len(indices)):
        raise damaged(f"{split}_timestamps has shape {stamps.shape}, expected ({len(indices)},): one per interaction")


def _canonical_order(m: sp.spmatrix, t: np.ndarray, split: str) -> np.ndarray:
    """The timestamps ``t`` of the entries of ``m`` (any scipy sparse matrix, in its stored
    order) in the order of the canonical CSR the constructor makes of it (stored zeros
    dropped, indices sorted within each row): the times move with their pairs. A pair
    stored twice is refused (its time would be ambiguous: give one entry per pair, as
    :func:`build_dataset` does with the latest time)."""
    if m.format == "csr" and m.has_canonical_format and np.asarray(m.data).all():  # scipy's C checks
        return t
    c = m.tocoo(copy=False)  # the stored order (a CSR's row by row)
    key = c.row.astype(np.int64) * m.shape[1] + c.col.astype(np.int64)
    keep = np.asarray(c.data) != 0
    if keep.all() and (np.diff(key) > 0).all():
        return t
    order = np.argsort(key, kind="stable")
    order = order[keep[order]]
    dup = np.flatnonzero(np.diff(key[order]) == 0)
    if dup.size:
        r, c = divmod(int(key[order][dup[0]]), m.shape[1])
        raise DataError(
            f"split {split!r} stores the pair (user {r}, item {c}) more than once and has timestamps: give one "
            "entry per pair with its time (build_dataset keeps the latest)"
        )
    return t[order]


def _field_array(v: Iterable) -> np.ndarray:
    arr = np.asarray(v)
    if arr.dtype == object:
        arr = arr.astype(str)
    return arr
