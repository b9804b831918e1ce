"""Splitting interactions into train / valid / test, and the cold-start protocol.

All functions are pure: they take a :class:`~graphrec.data.dataset.Dataset` and return a
new one; the input is never modified. Randomness comes only from the ``seed`` argument.

* :func:`random_split`: the LATTICE / MMRec rule, per user. A user with ``n`` distinct
  items and ``n < 10`` gives 1 item to valid and 1 to test; otherwise
  ``m = round(0.2 n)`` items are held out, ``m // 2`` to valid and the rest to test.
  Users with fewer than 3 items keep everything in train (at least one training item
  is needed to learn the user at all).
* :func:`temporal_split`: leave-last-out by time: per user the latest item goes to test,
  the one before it to valid (ties broken by item index); users with < 3 items: train.
* :func:`cold_start`: a random ``fraction`` of the items becomes cold (never seen in
  training), under one of two protocols (``COLD_PROTOCOLS``):

  - ``"papers"`` (the default): LATTICE's ``data/cold_start.py``, which MM-GEF's Table 3
    follows (its footnote 2). Of the drawn items the first half are the TEST items and
    the second half the VALIDATION items (disjoint); EVERY interaction of a validation
    item (whatever split it was in) goes to valid, every interaction of a test item to
    test, and train keeps all the interactions of the other items (also those that were
    in valid/test). Valid and test therefore hold cold items only.
  - ``"hidden"``: graphrec's earlier protocol. The training interactions of the drawn
    items are removed (kept in ``Dataset.hidden``: ranking masks them as training items,
    since the user consumed them); valid/test stay as they are (the per-user split), so
    they mix warm and cold items and evaluation reports warm, cold and all.

  Both draw the same items for the same ``fraction`` and ``seed``; both record them in
  ``Dataset.cold_items`` and the protocol in ``meta["cold_start"]``. Content features
  are kept: the item graphs reach cold items only through them.
* :func:`apply_split`: the decision ``graphrec prepare --split`` (and a recipe's
  ``source``) makes: keep the split a source gives, or re-split. A given split with an
  empty part (e.g. an MMRec ``.inter`` whose ``x_label`` has test rows but no
  validation rows) is an error unless a re-split is asked for explicitly: re-splitting
  silently would discard the given test split.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from graphrec._checks import is_int
from graphrec.data.dataset import SPLITS, Dataset, index_dtype, interactions_matrix, sorted_pairs_matrix
from graphrec.errors import ConfigError, DataError, GraphrecNote

__all__ = [
    "apply_split",
    "random_split",
    "temporal_split",
    "cold_start",
    "cold_start_items",
    "all_interactions",
    "SPLIT_CHOICES",
    "COLD_PROTOCOLS",
]

SPLIT_CHOICES = ("auto", "keep", "random", "temporal")
#: the cold-start protocols of :func:`cold_start` (module doc); the first is the default
COLD_PROTOCOLS = ("papers", "hidden")
# where each format keeps the valid / test part of a given split (for the messages)
_PART_WHERE: dict[str, dict[str, str]] = {
    "mmrec": {"valid": "x_label 1", "test": "x_label 2"},
    "lattice": {"valid": "val.json", "test": "test.json"},
    "unisrec": {"valid": ".valid.inter", "test": ".test.inter"},
    "recbole": {"valid": ".valid.inter", "test": ".test.inter"},
}


def apply_split(dataset: Dataset, split: str = "auto", seed: int = 0, source: object = None,
                option: str = "--split") -> Dataset:
    """Keep the split ``dataset`` was read with, or re-split it, as ``split`` says.

    * ``auto``: keep a given split (valid and test both non-empty); with no valid and no
      test interactions at all (nothing given), re-split at random (:func:`random_split`);
    * ``keep``: keep the given split; none given is an error;
    * ``random`` / ``temporal``: re-split all interactions (the given split is discarded).

    A given split with one empty part (valid or test) is a :class:`DataError` under
    ``auto`` and ``keep``, naming the source file, the empty part and the fix (``option``
    ``random`` re-splits on purpose); so is, under ``auto`` and ``keep``, a given valid or
    test split that reading with ``unseen="drop"`` emptied, or that UniSRec's earliest-split-wins
    rule emptied (``meta["repeats_dropped"]``). ``source`` names the data in messages when the
    dataset's ``meta["source"]`` does not.
    """
    if split not in SPLIT_CHOICES:
        raise ConfigError(f"{option} {split!r} is not one of {', '.join(SPLIT_CHOICES)}")
    where = dataset.meta.get("source") or source or f"dataset {dataset.name!r}"
    have = {s: s in dataset.splits and dataset.splits[s].nnz > 0 for s in ("valid", "test")}
    dropped = dataset.meta.get("unseen_dropped") or {}
    repeats = dataset.meta.get("repeats_dropped") or {}  # UniSRec: earliest split wins
    emptied = [s for s in ("valid", "test") if not have[s] and (s in dropped or s in repeats)]
    unseen = "--unseen" if option.startswith("--") else "unseen:"
    if split in ("auto", "keep") and any(s in repeats for s in emptied):
        parts = []
        for s in emptied:
            if s in repeats:
                parts.append(f"{repeats[s][0]} of {repeats[s][1]} {s} rows repeat a pair of an earlier split")
            if s in dropped:
                parts.append(f"{dropped[s][0]} {s} rows dropped by {unseen} drop")
        raise DataError(
            f"{where}: the given {' and '.join(emptied)} split{'s are' if len(emptied) > 1 else ' is'} empty after "
            f"reading ({'; '.join(parts)}): a pair already in an earlier split is kept there only (earliest split "
            "wins), so nothing is left to evaluate on: give other valid/test targets, or re-split all interactions "
            f"on purpose with {option} random"
        )
    if split in ("auto", "keep") and emptied:
        counts = " and ".join(f"{dropped[s][0]} of {dropped[s][1]} {s} rows dropped" for s in emptied)
        raise DataError(
            f"{where}: after {unseen} drop the given {' and '.join(emptied)} split{'s are' if len(emptied) > 1 else ' is'} "
            f"empty ({counts}: their user or item is never in train): use {unseen} keep to keep them, or "
            f"re-split all interactions on purpose with {option} random"
        )
    if split in ("auto", "keep") and have["valid"] != have["test"]:
        empty, other = ("valid", "test") if have["test"] else ("test", "valid")
        part = _PART_WHERE.get(str(dataset.meta.get("format")), {}).get(empty)
        raise DataError(
            f"{where}: the given split has no {empty} interactions{f' ({part})' if part else ''} but "
            f"{dataset.splits[other].nnz} {other} ones: add the {empty} interactions, or re-split all "
            f"interactions on purpose with {option} random (or {option} temporal), which discards the given "
            f"{other} split"
        )
    if split == "keep" and not have["valid"]:
        raise ConfigError(f"{where} has no given valid/test split: use {option} random or {option} temporal")
    if split == "random" or (split == "auto" and not have["valid"]):
        return random_split(dataset, seed=seed)
    if split == "temporal":
        return temporal_split(dataset)
    return dataset


def all_interactions(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(users, items, timestamps) of the union of all splits, one row per distinct pair, in
    CSR order (by user, then item); indices int32 where they fit (:func:`index_dtype`)."""
    dtype = index_dtype(max(dataset.n_users, dataset.n_items))
    present = [s for s in SPLITS if s in dataset.splits]
    stamps = dataset.timestamps
    if len(present) == 1:  # one canonical matrix: its pairs are distinct and in order already
        u, i = dataset.pairs(present[0], dtype)
        return u, i, None if stamps is None else stamps[present[0]]
    parts = [dataset.pairs(s, dtype) for s in present]
    u = np.concatenate([p[0] for p in parts])
    i = np.concatenate([p[1] for p in parts])
    t = None if stamps is None else np.concatenate([stamps[s] for s in present])
    del parts
    m, t_u = interactions_matrix(u, i, (dataset.n_users, dataset.n_items), t)
    del u, i, t
    return np.repeat(np.arange(dataset.n_users, dtype=dtype), np.diff(m.indptr)), m.indices, t_u


def _assemble(dataset: Dataset, u, i, t, label: np.ndarray, how: str) -> Dataset:
    """``dataset`` with the pairs ``(u, i)`` (distinct, in CSR order: :func:`all_interactions`)
    of ``label`` 0, 1, 2 as its train, valid and test splits."""
    shape = (dataset.n_users, dataset.n_items)
    splits, stamps = {}, ({} if t is not None else None)
    for k, s in enumerate(SPLITS):
        sel = label == k
        splits[s] = sorted_pairs_matrix(u[sel], i[sel], shape)
        if stamps is not None:
            stamps[s] = t[sel]
        del sel
    meta = {k: v for k, v in dataset.meta.items() if k != "cold_start"}  # re-splitting ends a cold start
    meta["split"] = how
    # another split of the interactions: no longer the stored dataset (cold_start restores it)
    return dataset.replace(splits=splits, timestamps=stamps, cold_items=None, meta=meta, source=None)


def _check_seed(seed: object) -> None:
    """A seed numpy's generators take: an integer >= 0 (a one-line ConfigError otherwise)."""
    if not is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")


def random_split(dataset: Dataset, seed: int = 0) -> Dataset:
    """Re-split all interactions per user with the LATTICE/MMRec rule (module doc)."""
    _check_seed(seed)
    u, i, t = all_interactions(dataset)
    rng = np.random.default_rng(seed)
    counts = np.bincount(u, minlength=dataset.n_users)
    # random rank of every interaction inside its user's list, vectorised:
    # sort by (user, random key); position within the user's run is the rank.
    order = np.lexsort((rng.random(len(u)), u))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dtype = index_dtype(len(u))
    position = np.arange(len(u), dtype=dtype)
    position -= np.repeat(starts.astype(dtype), counts)
    rank = np.empty(len(u), dtype)
    rank[order] = position
    del order, position
    # per user: n items, held out, of them to valid
    n = counts
    held = np.where(n < 10, 2, np.rint(0.2 * n).astype(np.int64))
    held = np.where(n < 3, 0, held)
    n_valid = np.where(n < 10, np.minimum(held, 1), held // 2)
    label = np.zeros(len(u), np.int8)  # 0 train, 1 valid, 2 test
    label[rank < held.astype(dtype)[u]] = 2
    label[rank < n_valid.astype(dtype)[u]] = 1
    del rank
    return _assemble(dataset, u, i, t, label, f"random(seed={seed})")


def temporal_split(dataset: Dataset) -> Dataset:
    """Leave-last-out by timestamp: last item to test, the one before to valid."""
    if dataset.timestamps is None:
        raise DataError(
            f"dataset {dataset.name!r} has no timestamps: a temporal split needs them "
            "(use --split random instead)"
        )
    u, i, t = all_interactions(dataset)
    counts = np.bincount(u, minlength=dataset.n_users)
    order = np.lexsort((i, t, u))  # per user by time, ties by item index
    ends = np.cumsum(counts)
    rank_from_end = np.empty(len(u), np.int64)
    rank_from_end[order] = np.repeat(ends, counts) - 1 - np.arange(len(u))
    n = counts[u]
    label = np.zeros(len(u), np.int64)
    label[(rank_from_end == 0) & (n >= 3)] = 2
    label[(rank_from_end == 1) & (n >= 3)] = 1
    return _assemble(dataset, u, i, t, label, "temporal(leave-last-out)")


def cold_start_items(n_items: int, fraction: float, seed: int = 0) -> np.ndarray:
    """The items drawn cold: ``round(fraction * n_items)`` distinct indices, in the order
    drawn (:func:`cold_start` of the papers' protocol makes the first half test items)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.integer, np.floating)) \
            or not 0.0 < fraction < 1.0:
        raise DataError(f"cold-start fraction must be a number in (0, 1), got {fraction!r}")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    n_cold = int(round(fraction * n_items))
    if n_cold < 1:
        raise DataError(f"cold-start fraction {fraction} of {n_items} items selects no item: use a larger fraction")
    return rng.choice(n_items, size=n_cold, replace=False).astype(np.int64)


#: a cold-start fraction above this is noted (:func:`note_cold_fraction`): most items unseen in training
LARGE_COLD_FRACTION = 0.5


def note_cold_fraction(fraction: float, n_cold: int, n_items: int, train: int | None = None,
                       before: int | None = None) -> None:
    """A :class:`GraphrecNote` for a cold-start fraction above :data:`LARGE_COLD_FRACTION`:
    most of the catalogue is never seen in training (``--cold-start 0.999`` trained on a
    handful of interactions without a word); ``train`` of ``before`` interactions are left
    to train on, when known. The papers' protocol makes 20% of the items cold."""
    if fraction <= LARGE_COLD_FRACTION:
        return
    left = "" if train is None else (f" and {train:,} training interactions"
                                     + (f" of {before:,} ({train / before:.1%})" if before else ""))
    warnings.warn(
        f"--cold-start {fraction} makes {n_cold:,} of the {n_items:,} items cold: training keeps "
        f"{n_items - n_cold:,} items{left}, so the model learns from a small part of the data; the papers' "
        "protocol makes 20% of the items cold (MM-GEF Table 3, LATTICE)",
        GraphrecNote, stacklevel=3)


def _check_train_left(train: sp.csr_matrix, fraction: float, n_items: int, n_cold: int) -> None:
    """Refuse a cold-start split that leaves no training interaction (nothing to train on)."""
    if train.nnz == 0:
        raise DataError(
            f"cold-start fraction {fraction} makes {n_cold} of {n_items} items cold and leaves no training "
            "interaction: use a smaller fraction (the warm items must have training interactions)"
        )


def cold_start(dataset: Dataset, fraction: float, seed: int = 0, protocol: str = "papers") -> Dataset:
    """A cold-start split: a random ``fraction`` of the items never seen in training,
    under ``protocol`` ``"papers"`` (default) or ``"hidden"`` (module doc).

    The cold items (sorted) are stored in ``cold_items`` and ``meta["cold_start"]``
    records ``fraction``, ``seed``, ``protocol`` and (papers) the numbers of validation
    and test items. Everything downstream that reads ``dataset.train`` (graphs, negative
    sampling, the model) never sees a cold item's interactions.
    """
    if protocol not in COLD_PROTOCOLS:
        raise ConfigError(f"cold-start protocol {protocol!r} is not one of {', '.join(COLD_PROTOCOLS)}")
    if dataset.cold_items is not None:
        info = dataset.meta.get("cold_start") if isinstance(dataset.meta, dict) else None
        how = (f", fraction {info.get('fraction')} seed {info.get('seed')} protocol {info.get('protocol', 'papers')}"
               if isinstance(info, dict) else "")
        raise DataError(
            f"dataset {dataset.name!r} already has a cold-start split ({len(dataset.cold_items)} cold items{how}; "
            "a dataset folder saved after cold_start() keeps its split): drop --cold-start (or this cold_start() "
            "call) to use that split, or draw another from the dataset without one"
        )
    drawn = cold_start_items(dataset.n_items, fraction, seed)
    if protocol == "papers" and len(drawn) < 2:  # half test, half valid: one item leaves test empty
        raise DataError(f"cold-start fraction {fraction} of {dataset.n_items} items selects {len(drawn)} item; the "
                        "papers protocol splits the cold items between valid and test: use a larger fraction")
    cold = np.sort(drawn)
    info: dict[str, object] = {"fraction": fraction, "seed": seed, "protocol": protocol}
    if protocol == "papers":
        test_items, valid_items = drawn[: len(drawn) // 2], drawn[len(drawn) // 2 :]
        u, i, t = all_interactions(dataset)
        where = np.zeros(dataset.n_items, np.int64)  # 0 train, 1 valid, 2 test (SPLITS order)
        where[valid_items] = 1
        where[test_items] = 2
        out = _assemble(dataset, u, i, t, where[i], dataset.meta.get("split", "given"))
        _check_train_left(out.train, fraction, dataset.n_items, len(drawn))
        note_cold_fraction(fraction, len(drawn), dataset.n_items, int(out.train.nnz), int(len(u)))
        meta = dict(out.meta, cold_start=dict(info, valid_items=int(len(valid_items)), test_items=int(len(test_items))))
        return out.replace(cold_items=cold, meta=meta, source=dataset.source)
    keep_col = np.ones(dataset.n_items, np.float32)
    keep_col[cold] = 0.0
    train = dataset.train
    mask = keep_col[train.indices] > 0
    indptr = np.zeros(dataset.n_users + 1, np.int64)
    rows = np.repeat(np.arange(dataset.n_users), np.diff(train.indptr))
    np.cumsum(np.bincount(rows[mask], minlength=dataset.n_users), out=indptr[1:])
    new_train = sp.csr_matrix(
        (train.data[mask], train.indices[mask], indptr), shape=train.shape
    )
    _check_train_left(new_train, fraction, dataset.n_items, len(drawn))
    note_cold_fraction(fraction, len(drawn), dataset.n_items, int(new_train.nnz), int(train.nnz))
    # the removed interactions: masked when ranking as training items are (the user consumed them)
    removed = sp.csr_matrix((np.ones(int((~mask).sum()), np.float32), (rows[~mask], train.indices[~mask])),
                            shape=train.shape)
    splits = dict(dataset.splits, train=new_train)
    stamps = None
    if dataset.timestamps is not None:
        stamps = dict(dataset.timestamps, train=dataset.timestamps["train"][mask])
    meta = dict(dataset.meta, cold_start=info)
    return dataset.replace(splits=splits, timestamps=stamps, cold_items=cold, meta=meta, hidden=removed)
