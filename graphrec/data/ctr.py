r"""Click-through-rate samples from time-ordered behaviour sequences (DIN's protocol).

Both CTR papers (GMMF: Xiao et al., ACM MM 2022, section 4.1; MARN: Li et al., WWW 2020,
arXiv:2003.07162, section 4.1) build their Amazon samples as Zhou et al. (DIN) do. For a user with behaviour sequence
:math:`x_1 .. x_N` (oldest first):

* **train**: for every :math:`t = 2 .. N-2`, a positive sample "history
  :math:`x_1 .. x_{t-1}`, candidate :math:`x_t`, label 1" and a negative sample with the
  same history and a sampled item, label 0;
* **valid**: history :math:`x_1 .. x_{N-2}`, candidate :math:`x_{N-1}`, plus a negative;
* **test**: history :math:`x_1 .. x_{N-1}`, candidate :math:`x_N`, plus a negative.

Histories keep the most recent ``max_history`` behaviours (chronological order,
left-aligned, padded with ``-1``). A negative is drawn uniformly from the items that are
never a positive of that user (no item of the user's whole sequence), one per positive,
from ``numpy.random.default_rng(seed)``: the same seed gives the same samples, and
:meth:`CTRData.save` / :meth:`CTRData.load` store them (``.npz`` without pickles, written
atomically) so every model of an experiment sees exactly the same samples. Users with
fewer than 3 behaviours give no samples (their behaviours stay in the training
interactions). Histories are strict prefixes by position (the behaviours before the
candidate's): the candidate's own behaviour is never in them, but an earlier behaviour on
the same item is (a repeat purchase: 93 train, 26 valid and 25 test positives of
amazon-scientific at max history 20); a negative never is.

Timestamp ties (the protocol's reading): a sequence is ordered by (timestamp, item
index) (:func:`sequences_from_dataset`) and histories are positional prefixes, so a
behaviour in the same second as the target but ordered before it is in the target's
history, and a tie between the validation and the test target is broken by item index.
On full ml100k (second timestamps, rating bursts; max history 50) the test target shares
its second with the validation target for 415 of 943 users, 422 validation histories
and 49,724 of 97,171 training positives' histories hold a behaviour of the target's
second (docs/models/ctr.md).

Alongside the samples, :class:`CTRData` holds a :class:`~graphrec.data.Dataset` whose
splits are the same leave-two-out partition (train = :math:`x_1 .. x_{N-2}`, valid =
:math:`x_{N-1}`, test = :math:`x_N`), so item graphs built from it
(:func:`graphrec.graphs.build_item_graph`) see the training behaviours only, and its
fingerprint is the provenance of such graphs.

Behaviour properties (MARN section 3.1.2, "seconds from the time it happens to the
current recommendation time"): with timestamps, ``hist_delta`` holds the seconds between
each history behaviour and the candidate's time; :func:`behaviour_properties` turns them
into log-scaled buckets. Without timestamps the property is the recency rank.

Side features become integer codes (``0`` = unknown): user fields (MovieLens age group,
gender, occupation) one code per user, multi-valued item fields (genres, comma- or
``|``-separated) a ``(n_items, k)`` code matrix padded with ``-1``.

Cold-start protocol (``cold_start=F``, ``cold_seed=S``; the CTR analogue of
:func:`graphrec.data.splits.cold_start`, which picks the same items for the same ``F``,
``S`` and item count): :func:`select_cold_items` draws ``round(F * n_items)`` items, and
every interaction with them is hidden from everything the model learns from or
conditions on. The split positions stay those of the full sequence (valid = :math:`x_{N-1}`,
test = :math:`x_N`, cold or not), and then

* **train**: the training part :math:`x_1 .. x_{N-2}` with the cold items removed,
  :math:`w_1 .. w_M`; samples predict :math:`w_t` from :math:`w_1 .. w_{t-1}`, t = 2..M;
  their negatives are warm items; the dataset's train split (hence the co-interaction
  graph and popularity) holds warm items only;
* **valid / test histories** drop cold items too (a cold item is new: nobody has a
  recorded behaviour on it before the candidate's time), so cold items occur ONLY as
  valid/test candidates;
* **valid / test negatives** come from the target's own group: a cold target's negative
  is a cold item, a warm target's a warm item (never a positive of the user). The cold
  slice therefore asks "which cold item does the user click", not "cold or warm";
* a user gives samples when :math:`N \ge 3` and at least one of :math:`x_1 .. x_{N-2}`
  is warm (so every valid/test history is non-empty).

Cold items keep their content features, so the kNN content graph still links them to
warm items; ``dataset.cold_items`` and ``meta["cold_start"]`` record the split (stored
graphs are refused across different splits).

Evaluation slices: :func:`item_popularity` (train frequency of each item, i.e. how many
training users consumed it), :func:`popularity_levels` (MARN Table 4: the candidate items
of a split divided into equal-size popularity levels, 0 = least popular) and cold
candidates (:func:`cold_mask`: the cold-start items under the cold-start protocol,
otherwise train frequency below a threshold, by default never seen in training).

Sources: :func:`sequences_from_dataset` (any dataset with timestamps, e.g. MovieLens
ratings ordered by time, ties broken by item index) and :func:`read_unisrec_sequences`
(UniSRec ``.inter`` files: a user's full sequence is ``item_id_list`` + ``item_id`` of
the test row, checked against the train and valid rows); :func:`load_ctr_source` reads
a source folder (UniSRec or MovieLens) into a :class:`CTRData`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec._checks import counted
from graphrec._atomic import atomic_dir
from graphrec.data.dataset import Dataset, array_bytes, interactions_matrix
from graphrec.data.sampling import NegativeSampler
from graphrec.errors import ARRAY_FILE_ERRORS, ConfigError, DataError, GraphrecNote

__all__ = [
    "CTR_SPLITS",
    "Sequences",
    "CTRSplit",
    "CTRData",
    "sequences_from_dataset",
    "read_unisrec_sequences",
    "build_ctr_data",
    "load_ctr_source",
    "encode_side_fields",
    "behaviour_properties",
    "property_codes",
    "item_popularity",
    "popularity_levels",
    "cold_mask",
    "select_cold_items",
    "N_PROPERTY_BUCKETS",
]

CTR_SPLITS: tuple[str, ...] = ("train", "valid", "test")
FORMAT_NAME = "graphrec-ctr"
FORMAT_VERSION = 1
#: property codes are 1..N_PROPERTY_BUCKETS (0 = padding)
N_PROPERTY_BUCKETS = 24
_MIN_LENGTH = 3


# ---------------------------------------------------------------------- sequences
@dataclass
class Sequences:
    """Every user's behaviour sequence, oldest first, in CSR layout.

    ``items[indptr[u]:indptr[u + 1]]`` is the sequence of user index ``u`` (all users of
    the dataset, possibly empty); ``times`` (optional) aligns with ``items``.
    """

    indptr: np.ndarray
    items: np.ndarray
    times: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.indptr = np.asarray(self.indptr, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        if self.indptr[-1] != len(self.items):
            raise DataError("sequence offsets do not match the number of items")
        if self.times is not None:
            self.times = np.asarray(self.times, dtype=np.float64)
            if len(self.times) != len(self.items):
                raise DataError("sequence times do not align with the sequence items")

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]


def sequences_from_dataset(dataset: Dataset) -> Sequences:
    """Per-user sequences of all interactions of ``dataset`` (every split), ordered by
    timestamp, ties broken by item index (deterministic)."""
    if dataset.timestamps is None:
        raise DataError(
            f"dataset {dataset.name!r} has no timestamps: behaviour sequences need the time of "
            "each interaction (MovieLens ratings.csv has them; UniSRec folders give ordered lists)"
        )
    users, items, times = [], [], []
    for s in CTR_SPLITS:
        if s in dataset.splits:
            u, i = dataset.pairs(s)
            users.append(u)
            items.append(i)
            times.append(np.asarray(dataset.timestamps[s], dtype=np.float64))
    u = np.concatenate(users)
    i = np.concatenate(items)
    t = np.concatenate(times)
    order = np.lexsort((i, t, u))
    indptr = np.zeros(dataset.n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=dataset.n_users), out=indptr[1:])
    return Sequences(indptr, i[order], t[order])


def read_unisrec_sequences(directory: str | os.PathLike, dataset: Dataset, name: str | None = None) -> Sequences:
    """Full sequences from UniSRec ``.inter`` files, in the index space of ``dataset``
    (read by :func:`graphrec.data.formats.read_unisrec` from the same folder).

    A user's sequence is ``item_id_list`` + ``item_id`` of its test row. Every valid row
    must be that sequence without its last item, and every train row a prefix of it;
    otherwise the files disagree and a :class:`DataError` names the line.
    """
    from graphrec.data.formats._common import find_prefix, read_table, require_file

    root = Path(directory)
    prefix = find_prefix(root, ".train.inter", name, "UniSRec")
    tables = {}
    for s in CTR_SPLITS:
        path = require_file(root / f"{prefix}.{s}.inter", f"UniSRec {s} file", f"expected {prefix}.{s}.inter")
        tables[s] = read_table(path, strip_types=True, quoted_cells=True)
        for col in ("user_id", "item_id_list", "item_id"):
            tables[s].col(col, "UniSRec files need user_id:token, item_id_list:token_seq, item_id:token")
    has_user_map = (root / f"{prefix}.user2index").is_file()
    has_item_map = (root / f"{prefix}.item2index").is_file()
    user_pos = {u: k for k, u in enumerate(dataset.user_ids.tolist())}
    item_pos = {v: k for k, v in enumerate(dataset.item_ids.tolist())}

    def user_index(tok: str, table: Any, row: int) -> int:
        if has_user_map:
            k = int(tok) if tok.isdigit() and int(tok) < dataset.n_users else None
        else:
            k = user_pos.get(tok)
        if k is None:
            raise DataError(f"{table.path} line {table.line(row)}: user {tok!r} is not in the dataset: use the folder the dataset was read from")
        return k

    def item_indices(toks: list[str], table: Any, row: int) -> list[int]:
        out = []
        for tok in toks:
            if has_item_map:
                if not tok.isdigit() or int(tok) >= dataset.n_items:
                    raise DataError(f"{table.path} line {table.line(row)}: item index {tok!r} is outside the item map: fix the row")
                out.append(int(tok))
            else:
                k = item_pos.get(tok)
                if k is None:
                    raise DataError(f"{table.path} line {table.line(row)}: item {tok!r} is not in the dataset: use the folder the dataset was read from")
                out.append(k)
        return out

    test = tables["test"]
    seqs: dict[int, list[int]] = {}
    longest = 0  # the longest history of any row: the cut of files that truncate histories
    for r, (u, hist, tgt) in enumerate(zip(test.col("user_id"), test.col("item_id_list"), test.col("item_id"))):
        uk = user_index(u, test, r)
        if uk in seqs:
            raise DataError(f"{test.path} line {test.line(r)}: user {u!r} has two test rows: keep one row per user")
        seqs[uk] = item_indices(hist.split() + [tgt], test, r)
        longest = max(longest, len(seqs[uk]) - 1)
    rows: dict[str, list[tuple[int, str, list[int], int]]] = {}  # per split: (user, its cell, history + target, row)
    kept: dict[str, dict[int, list[list[int]]]] = {"valid": {}, "train": {}}  # per split and user: its rows' windows
    for s in ("valid", "train"):
        t = tables[s]
        rows[s] = []
        for r, (u, hist, tgt) in enumerate(zip(t.col("user_id"), t.col("item_id_list"), t.col("item_id"))):
            uk = user_index(u, t, r)
            row = item_indices(hist.split() + [tgt], t, r)
            if uk not in seqs:
                raise DataError(f"{t.path} line {t.line(r)}: user {u!r} has no test row: every user needs one")
            rows[s].append((uk, u, row, r))
            kept[s].setdefault(uk, []).append(row)
            longest = max(longest, len(row) - 1)
    windowed: set[int] = set()  # users whose sequence was put together from cut histories
    for s in ("valid", "train"):
        t = tables[s]
        for uk, u, row, r in rows[s]:
            if uk in windowed:
                continue
            full = seqs[uk]
            ok = row == full[:-1] if s == "valid" else (len(row) < len(full) and row == full[: len(row)])
            if ok:
                continue
            valid = kept["valid"].get(uk, [])
            joined = _join_windows(kept["train"].get(uk, []), valid[0] if len(valid) == 1 else None, full, longest)
            if joined is not None:  # histories cut to their last `longest` items
                seqs[uk] = joined
                windowed.add(uk)
                continue
            what = "the test sequence without its last item" if s == "valid" else "a prefix of the test sequence"
            raise DataError(
                f"{t.path} line {t.line(r)}: history + target of user {u!r} is not {what}, nor (histories cut to "
                f"their last {longest} items) a window of the sequence its rows make: the .inter files do not "
                "belong together"
            )
    lengths = np.zeros(dataset.n_users, np.int64)
    for uk, sq in seqs.items():
        lengths[uk] = len(sq)
    indptr = np.zeros(dataset.n_users + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.zeros(indptr[-1], np.int64)
    for uk, sq in seqs.items():
        items[indptr[uk] : indptr[uk + 1]] = sq
    return Sequences(indptr, items, None)


def _join_windows(train: list[list[int]], valid: list[int] | None, test: list[int], cut: int) -> list[int] | None:
    """A user's whole sequence from UniSRec rows whose histories keep only their last
    ``cut`` items (each row as history + target: the ``train`` rows in any order, the
    ``valid`` row, the ``test`` row), or None where the rows do not make one sequence.

    A row whose history is shorter than ``cut`` is uncut: a prefix of the sequence (the
    longest such starts it). A cut row (``cut`` items + target) continues the sequence
    from its last ``cut`` items, so the sequence grows one target at a time, whatever
    order the rows are stored in. It must end with the test row's window, the valid row's
    just before it, and every row must be one of its windows; two rows continuing the same
    ``cut`` items differently (a repeat the cut cannot tell apart) leave it undecided."""
    windows = [*train, *([valid] if valid is not None else []), test]
    uncut = sorted((w for w in windows if len(w) - 1 < cut), key=len)
    follows: dict[tuple[int, ...], int] = {}
    for w in windows:
        if len(w) - 1 == cut and follows.setdefault(tuple(w[:-1]), w[-1]) != w[-1]:
            return None
    if uncut:
        seq = list(uncut[-1])
        if any(w != seq[: len(w)] for w in uncut):
            return None
    else:  # every history cut: the sequence starts with the one row no other row continues into
        continued = {tuple(w[1:]) for w in windows}
        starts = [w for w in windows if tuple(w[:-1]) not in continued]
        if len(starts) != 1:
            return None
        seq = list(starts[0])
    while len(seq) >= cut and len(seq) <= len(windows) + cut and tuple(seq[len(seq) - cut:]) in follows:
        seq.append(follows[tuple(seq[len(seq) - cut:])])
    made = {tuple(seq[max(0, t - cut): t + 1]) for t in range(1, len(seq))}
    if seq[len(seq) - len(test):] != test or not all(tuple(w) in made for w in windows):
        return None
    if valid is not None and seq[len(seq) - 1 - len(valid): len(seq) - 1] != valid:
        return None
    return seq


# ---------------------------------------------------------------------- side fields
_AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M age groups: <18, 18-24, ..., 56+


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes of string values, 0 for empty, 1.. in sorted vocabulary order."""
    vals = np.asarray(values).astype(str)
    vocab = sorted(set(v for v in vals.tolist() if v.strip()))
    pos = {v: k + 1 for k, v in enumerate(vocab)}
    return np.array([pos.get(v, 0) for v in vals.tolist()], dtype=np.int64), vocab


def _multi_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``(n, k)`` codes of comma/pipe-separated tokens (padded with -1), vocabulary."""
    rows = []
    for v in np.asarray(values).astype(str).tolist():
        toks = [t.strip() for t in v.replace("|", ",").split(",")]
        rows.append([t for t in toks if t and t != "(no genres listed)"])
    vocab = sorted(set(t for r in rows for t in r))
    pos = {v: k + 1 for k, v in enumerate(vocab)}
    width = max([len(r) for r in rows] + [1])
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for k, r in enumerate(rows):
        if r:
            out[k, : len(r)] = [pos[t] for t in r]
        else:
            out[k, 0] = 0  # unknown
    return out, vocab


def encode_side_fields(dataset: Dataset) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
    """Categorical side features as integer codes.

    Returns ``(user_side, item_side, vocab_sizes)``: ``user_side[name]`` is ``(n_users,)``
    (MovieLens ``age`` is bucketed into the ML-1M age groups); ``item_side[name]`` is
    ``(n_items, k)`` padded with ``-1`` (``genres``); ``vocab_sizes[name]`` counts code 0.
    Free text fields (titles, plots, UniSRec ``text``) are not categorical and are skipped.
    """
    user_side: dict[str, np.ndarray] = {}
    item_side: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for name in ("age", "gender", "occupation"):
        if name not in dataset.user_fields:
            continue
        v = np.asarray(dataset.user_fields[name]).astype(str)
        if name == "age":
            ok = np.char.isdigit(v)
            age = np.where(ok, np.where(ok, v, "0"), "0").astype(np.int64)
            codes = np.where(ok, np.searchsorted(np.asarray(_AGE_EDGES), age, side="right") + 1, 0)
            user_side["age"] = codes.astype(np.int64)
            sizes["age"] = len(_AGE_EDGES) + 2
        else:
            codes, vocab = _codes(v)
            user_side[name] = codes
            sizes[name] = len(vocab) + 1
    for name in ("genres", "category", "categories"):
        if name in dataset.item_fields:
            codes, vocab = _multi_codes(dataset.item_fields[name])
            item_side[name] = codes
            sizes[name] = len(vocab) + 1
    return user_side, item_side, sizes


# ---------------------------------------------------------------------- samples
@dataclass
class CTRSplit:
    """The samples of one split (aligned arrays, one row per sample).

    ``history`` is ``(n, w)`` int32 item indices, oldest first, padded with ``-1``;
    ``hist_delta`` (optional) the float32 seconds from each history behaviour to the
    candidate's time (NaN at padding). The width ``w`` is the longest history of the
    split (:func:`build_ctr_data` stores no all-padding column; samples stored before
    did, ``w = max_history``): columns beyond ``w`` would be padding only, so both
    layouts are the same samples, batches and fingerprint (:meth:`CTRData.fingerprint`
    hashes the histories padded to ``max_history``). ``position`` the 1-based position ``t`` of the target in its
    user's sequence (both the positive and its negative carry it; under the cold-start
    protocol, in the sequence without cold items that the history is taken from).
    """

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    history: np.ndarray
    position: np.ndarray
    hist_delta: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def lengths(self) -> np.ndarray:
        return (self.history >= 0).sum(1)

    def subset(self, index: np.ndarray) -> "CTRSplit":
        return CTRSplit(
            self.users[index],
            self.items[index],
            self.labels[index],
            self.history[index],
            self.position[index],
            None if self.hist_delta is None else self.hist_delta[index],
        )


@dataclass
class CTRData:
    """Samples of the three splits, the leave-two-out :class:`Dataset`, side features."""

    dataset: Dataset
    samples: dict[str, CTRSplit]
    user_side: dict[str, np.ndarray] = field(default_factory=dict)
    item_side: dict[str, np.ndarray] = field(default_factory=dict)
    vocab_sizes: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    @property
    def max_history(self) -> int:
        return int(self.meta["max_history"])

    @property
    def has_time(self) -> bool:
        return self.samples["train"].hist_delta is not None

    def fingerprint(self) -> str:
        """SHA-256 of the samples, side features and the dataset's fingerprint.

        Histories are hashed as ``(n, max_history)`` arrays, padded with ``-1`` / NaN
        beyond their stored width (:class:`CTRSplit`), so the fingerprint does not depend
        on how many padding columns are stored."""
        h = hashlib.sha256()
        h.update(self.dataset.fingerprint().encode())
        width = int(self.meta.get("max_history", 0))
        for s in CTR_SPLITS:
            sp_ = self.samples[s]
            for k, a in _split_arrays(sp_).items():
                if k in _PADDED and a.ndim == 2 and a.shape[1] < width:
                    _hash_padded(h, f"{s}.{k}", a, width, _PADDED[k])
                    continue
                a = np.ascontiguousarray(a)
                h.update(f"{s}.{k}:{a.dtype.str}:{a.shape}".encode())
                h.update(array_bytes(a))
        for kind, side in (("user", self.user_side), ("item", self.item_side)):
            for k in sorted(side):
                a = np.ascontiguousarray(side[k])
                h.update(f"{kind}.{k}:{a.dtype.str}:{a.shape}".encode())
                h.update(array_bytes(a))
        return h.hexdigest()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.dataset.name, "users": self.n_users, "items": self.n_items}
        for s in CTR_SPLITS:
            sp_ = self.samples[s]
            out[f"{s}_samples"] = len(sp_)
            out[f"{s}_positives"] = int(sp_.labels.sum())
        out["mean_history"] = float(self.samples["test"].lengths().mean()) if len(self.samples["test"]) else 0.0
        out["max_history"] = self.max_history
        out["modalities"] = {m: int(x.shape[1]) for m, x in self.dataset.item_features.items()}
        out["user_side"] = list(self.user_side)
        out["item_side"] = list(self.item_side)
        out["timestamps"] = self.has_time
        return out

    # ------------------------------------------------------------------ storage
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``ctr.json``, ``samples.npz``, ``side.npz`` and ``dataset/`` atomically."""
        path = Path(path)
        with atomic_dir(path, overwrite) as tmp:
            self.dataset.save(tmp / "dataset")
            arrays = {}
            for s in CTR_SPLITS:
                for k, a in _split_arrays(self.samples[s]).items():
                    arrays[f"{s}__{k}"] = a
            np.savez_compressed(tmp / "samples.npz", **arrays)
            side = {f"user__{k}": v for k, v in self.user_side.items()}
            side.update({f"item__{k}": v for k, v in self.item_side.items()})
            np.savez_compressed(tmp / "side.npz", **side)
            header = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "meta": self.meta,
                "vocab_sizes": self.vocab_sizes,
                "user_side": list(self.user_side),
                "item_side": list(self.item_side),
                "has_time": self.has_time,
                "fingerprint": self.fingerprint(),
                "stats": self.stats(),
            }
            (tmp / "ctr.json").write_text(json.dumps(header, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CTRData":
        """Read a directory written by :meth:`save` (no pickles), checking its fingerprint.

        The fingerprint only shows that the files were not changed since it was computed
        (anyone can compute it), so the arrays are checked too, in O(size): ``ctr.json``'s
        entries have their types, labels are 0 or 1, user / item / history indices lie in
        the dataset's ranges (history padding ``-1`` at the end of a row, ``min(position - 1,
        max_history)`` behaviours a row, at most ``max_history`` columns), the arrays of a
        split align, index arrays are integral and side codes lie within their vocabulary
        sizes (:func:`_check_stored_arrays`). Any failure is a one-line
        :class:`DataError` naming the file, the array, the first bad row and the fix."""
        path = Path(path)
        head = path / "ctr.json"
        if not head.is_file():
            raise DataError(f"{path} is not a CTR samples directory (no ctr.json): create it with --samples {path}")
        try:
            header = json.loads(head.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{head}: invalid JSON ({e}): delete the folder and build the samples again") from None
        _check_ctr_header(head, header)
        dataset = Dataset.load(path / "dataset")
        try:
            samples = {}
            with np.load(path / "samples.npz", allow_pickle=False) as z:
                for s in CTR_SPLITS:
                    delta = z[f"{s}__hist_delta"] if header["has_time"] else None
                    samples[s] = CTRSplit(
                        z[f"{s}__users"], z[f"{s}__items"], z[f"{s}__labels"],
                        z[f"{s}__history"], z[f"{s}__position"], delta,
                    )
            with np.load(path / "side.npz", allow_pickle=False) as z:
                user_side = {k: z[f"user__{k}"] for k in header["user_side"]}
                item_side = {k: z[f"item__{k}"] for k in header["item_side"]}
        except ARRAY_FILE_ERRORS as e:
            raise DataError(f"{path}: CTR samples are incomplete or corrupt ({e}): delete the folder and build again") from None
        data = cls(dataset, samples, user_side, item_side, dict(header["vocab_sizes"]), dict(header["meta"]))
        _check_stored_arrays(path, data, bool(header["has_time"]))  # a home-made or edited, re-fingerprinted folder
        if data.fingerprint() != header["fingerprint"]:
            raise DataError(f"{path}: content does not match the fingerprint in ctr.json (files were modified): build the samples again")
        return data


#: the per-step arrays of a split and their padding value
_PADDED: dict[str, float] = {"history": -1, "hist_delta": np.nan}


def _hash_padded(h: Any, name: str, a: np.ndarray, width: int, fill: float, chunk: int = 1 << 16) -> None:
    """Feed ``h`` what hashing ``a`` padded on the right to ``width`` columns with
    ``fill`` would (the header and then the bytes, ``chunk`` rows at a time, so the
    padded array is never built whole)."""
    n = a.shape[0]
    h.update(f"{name}:{a.dtype.str}:{(n, width)}".encode())
    buf = np.full((min(chunk, n), width), fill, dtype=a.dtype)
    w = a.shape[1]
    for s in range(0, n, chunk):
        part = buf[: min(chunk, n - s)]
        part[:, :w] = a[s : s + len(part)]
        h.update(array_bytes(part))


def _split_arrays(s: CTRSplit) -> dict[str, np.ndarray]:
    out = {"users": s.users, "items": s.items, "labels": s.labels, "history": s.history, "position": s.position}
    if s.hist_delta is not None:
        out["hist_delta"] = s.hist_delta
    return out


def _make_split(
    seqs: Sequences,
    users: np.ndarray,
    pos: np.ndarray,
    max_history: int,
    negatives: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> CTRSplit:
    """Positive samples (user, 0-based position ``pos`` in its sequence) and one negative
    each, ``negatives(users, targets)``.

    The history columns stop at the longest real history of the split (the stored layout
    of :class:`CTRSplit`), and are filled one column at a time straight into the int32 /
    float32 arrays, so no ``(n, max_history)`` int64 index array is ever built."""
    starts = seqs.indptr[users]
    flat = starts + pos  # index of the target in seqs.items
    # history: the max_history items before the target, oldest first, left-aligned
    n_hist = np.minimum(pos, max_history)
    first = flat - n_hist
    n = len(users)
    width = _stored_width(n_hist)
    # rows 2k (the positive) and 2k + 1 (its negative) share the history
    hist = np.full((2 * n, width), -1, np.int32)
    delta = None if seqs.times is None else np.full((2 * n, width), np.nan, np.float32)
    t_target = None if seqs.times is None else seqs.times[flat]
    for j in range(width):
        rows = np.flatnonzero(n_hist > j)
        src = first[rows] + j
        hist[2 * rows, j] = seqs.items[src]
        if delta is not None:
            assert t_target is not None and seqs.times is not None
            # seconds in float64, stored as float32 (as the full-width layout did)
            delta[2 * rows, j] = t_target[rows] - seqs.times[src]
    hist[1::2] = hist[0::2]
    if delta is not None:
        delta[1::2] = delta[0::2]
    items = seqs.items[flat]
    negs = negatives(users, items)
    # interleave: positive then its negative
    order_users = np.repeat(users, 2)
    order_items = np.empty(2 * n, np.int64)
    order_items[0::2] = items
    order_items[1::2] = negs
    labels = np.tile(np.array([1.0, 0.0], np.float32), n)
    return CTRSplit(
        users=order_users.astype(np.int64),
        items=order_items,
        labels=labels,
        history=hist,
        position=np.repeat(pos + 1, 2).astype(np.int32),
        hist_delta=delta,
    )


def _stored_width(n_hist: np.ndarray) -> int:
    """History columns stored for histories of lengths ``n_hist``: the longest, at least
    one (so that a batch always has a column)."""
    return max(int(n_hist.max(initial=0)), 1)


def _all(n: int, noun: str) -> str:
    """``all 3 items``, ``the only item``."""
    return f"the only {noun}" if n == 1 else f"all {n} {noun}s"


def _check_negatives(dataset: Dataset, sampler: NegativeSampler, users: np.ndarray, pool: str, consequence: str,
                     fix: str) -> None:
    """A one-line :class:`DataError` when a user of ``users`` interacted with every item
    of ``sampler``'s candidates, so that no negative exists for them: it names the user's
    id, the candidates (``pool``, e.g. "all 3 cold-start items (...)"), what cannot be
    sampled (``consequence``) and ``fix``."""
    full = sampler.full_users
    if not len(full) or not len(users):
        return
    hit = np.asarray(users)[np.isin(users, full)]
    if len(hit):
        raise DataError(f"user {dataset.user_ids[int(hit[0])]} of {dataset.name!r} interacted with {pool}, so "
                        f"{consequence}: {fix}")


def select_cold_items(n_items: int, fraction: float, seed: int = 0) -> np.ndarray:
    """The sorted cold-start items: ``round(fraction * n_items)`` items drawn without
    replacement by ``numpy.random.default_rng(seed)`` (the same draw as
    :func:`graphrec.data.splits.cold_start`)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"cold-start fraction must be in (0, 1), got {fraction}")
    n_cold = int(round(fraction * n_items))
    if n_cold < 1:
        raise ConfigError(f"cold-start fraction {fraction} of {n_items} items selects no item: use a larger fraction")
    from graphrec.data.splits import note_cold_fraction

    note_cold_fraction(fraction, n_cold, n_items)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_items, size=n_cold, replace=False)).astype(np.int64)


def _compact(seqs: Sequences, keep: np.ndarray) -> tuple[Sequences, np.ndarray]:
    """The sequences restricted to the entries ``keep`` (order kept), and for every kept
    entry its 0-based position in its user's restricted sequence."""
    user_of = np.repeat(np.arange(seqs.n_users, dtype=np.int64), seqs.lengths())
    indptr = np.zeros(seqs.n_users + 1, np.int64)
    np.cumsum(np.bincount(user_of[keep], minlength=seqs.n_users), out=indptr[1:])
    out = Sequences(indptr, seqs.items[keep], None if seqs.times is None else seqs.times[keep])
    rank = np.arange(int(keep.sum())) - indptr[user_of[keep]]
    return out, rank


#: the largest timestamp read as seconds (year 5138): one above it is milliseconds or finer
LARGEST_SECONDS = 1e11


def _note_millisecond_times(sequences: Sequences, name: str) -> None:
    """A :class:`GraphrecNote` when the behaviours' timestamps look like milliseconds
    (beyond :data:`LARGEST_SECONDS`): the samples' ``hist_delta`` and MARN's time-gap
    buckets (:func:`property_codes`) read seconds, so such gaps land 1000 times too far."""
    times = sequences.times
    if times is None or not len(times):
        return
    largest = float(np.nanmax(np.abs(times)))
    if largest > LARGEST_SECONDS:
        warnings.warn(f"dataset {name!r}: timestamps up to {largest:.4g} look like milliseconds, and CTR samples read "
                      "seconds (the gaps MARN buckets would be 1000 times too long): divide the timestamp column by "
                      "1000 before graphrec prepare", GraphrecNote, stacklevel=3)


def build_ctr_data(
    dataset: Dataset,
    sequences: Sequences,
    *,
    max_history: int = 50,
    seed: int = 0,
    source: str = "",
    cold_start: float | None = None,
    cold_seed: int = 0,
) -> CTRData:
    """Samples of the module doc from ``sequences`` (index space of ``dataset``).

    The returned :class:`CTRData` carries ``dataset`` with its splits replaced by the
    leave-two-out partition of the sequences (timestamps kept when the sequences have
    them). ``cold_start`` (a fraction in (0, 1)) applies the cold-start protocol of the
    module doc with the items of :func:`select_cold_items` (``cold_seed``); without it
    the dataset's own cold-start marks are dropped.
    """
    if max_history < 1:
        raise ConfigError(f"max_history must be at least 1, got {max_history}")
    if sequences.n_users != dataset.n_users:
        raise DataError(f"sequences cover {sequences.n_users} users but the dataset has {dataset.n_users}")
    if len(sequences.items) and (sequences.items.min() < 0 or sequences.items.max() >= dataset.n_items):
        raise DataError("a sequence item index is outside the dataset's items")
    _note_millisecond_times(sequences, dataset.name)
    n_users, n_items = dataset.n_users, dataset.n_items
    cold = None if not cold_start else select_cold_items(n_items, float(cold_start), int(cold_seed))
    is_cold = np.zeros(n_items, bool)
    if cold is not None:
        is_cold[cold] = True
    lengths = sequences.lengths()
    user_of = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    rank = np.arange(len(sequences.items)) - sequences.indptr[user_of]
    n_of = lengths[user_of]
    cold_entry = is_cold[sequences.items]
    eligible = lengths >= _MIN_LENGTH
    if cold is not None:  # at least one warm behaviour before the validation target
        warm_before = np.bincount(user_of[(rank <= n_of - 3) & ~cold_entry], minlength=n_users)
        eligible &= warm_before > 0
    if not eligible.any():
        raise DataError(
            f"no user of {dataset.name!r} has {_MIN_LENGTH} or more behaviours"
            + (" with a warm one before the last two" if cold is not None else "")
            + f" ({n_users} users, at most {int(lengths.max()) if n_users else 0} behaviours each)"
            + ": CTR samples need a history, a validation and a test behaviour per user: give the users more "
            "interactions"
        )
    label = np.zeros(len(sequences.items), np.int64)  # 0 train, 1 valid, 2 test
    label[(rank == n_of - 2) & eligible[user_of]] = 1
    label[(rank == n_of - 1) & eligible[user_of]] = 2

    # all positives of a user (any split): negatives are drawn outside them
    all_pos, _ = interactions_matrix(user_of, sequences.items, (n_users, n_items))
    rng = np.random.default_rng(seed)
    samples = {}
    if cold is None:
        sampler = NegativeSampler(all_pos)

        def draw(users: np.ndarray, targets: np.ndarray) -> np.ndarray:
            _check_negatives(dataset, sampler, users, _all(n_items, "item"),
                             "no negative exists (an item the user never interacted with)",
                             "remove the user from the source data")
            return sampler.sample(users, rng)

        # train: t = 2 .. N-2 (1-based), i.e. 0-based positions 1 .. N-3
        train_sel = eligible[user_of] & (rank >= 1) & (rank <= n_of - 3)
        samples["train"] = _make_split(sequences, user_of[train_sel], rank[train_sel], max_history, draw)
        for k, s in ((1, "valid"), (2, "test")):
            sel = label == k
            samples[s] = _make_split(sequences, user_of[sel], rank[sel], max_history, draw)
    else:
        warm_sampler = NegativeSampler(all_pos, exclude_items=cold)
        cold_sampler = NegativeSampler(all_pos, exclude_items=np.flatnonzero(~is_cold))
        chosen = f"--cold-start {cold_start} --cold-seed {cold_seed}"
        fix = "pass another --cold-seed (or --cold-start) to draw other cold-start items"
        n_cold = len(cold)

        def draw(users: np.ndarray, targets: np.ndarray) -> np.ndarray:
            negs = np.empty(len(users), np.int64)
            c = is_cold[targets]
            _check_negatives(dataset, warm_sampler, users[~c],
                             f"{_all(n_items - n_cold, 'warm item')} (those {chosen} leaves warm)",
                             "a warm target of theirs has no warm negative (one they never interacted with)", fix)
            negs[~c] = warm_sampler.sample(users[~c], rng)
            if c.any():
                _check_negatives(dataset, cold_sampler, users[c], f"{_all(n_cold, 'cold-start item')} ({chosen})",
                                 "a cold target of theirs has no cold negative (a cold target's negative is a "
                                 "cold-start item the user never interacted with)", fix)
                negs[c] = cold_sampler.sample(users[c], rng)
            return negs

        warm_train = (label == 0) & ~cold_entry
        seq_tr, rank_tr = _compact(sequences, warm_train)
        user_tr = user_of[warm_train]
        sel = eligible[user_tr] & (rank_tr >= 1)
        samples["train"] = _make_split(seq_tr, user_tr[sel], rank_tr[sel], max_history, draw)
        for k, s in ((1, "valid"), (2, "test")):
            keep = ((label < k) & ~cold_entry) | (label == k)  # warm history + the target
            seq_k, rank_k = _compact(sequences, keep)
            tgt = label[keep] == k
            samples[s] = _make_split(seq_k, user_of[keep][tgt], rank_k[tgt], max_history, draw)

    splits, stamps = {}, ({} if sequences.times is not None else None)
    for k, s in enumerate(CTR_SPLITS):
        sel = (label == k) & ~cold_entry if k == 0 else label == k
        m, t = interactions_matrix(
            user_of[sel], sequences.items[sel], (n_users, n_items),
            None if sequences.times is None else sequences.times[sel],
        )
        splits[s] = m
        if stamps is not None:
            stamps[s] = t
    meta = {k: v for k, v in dataset.meta.items() if k not in ("cold_start", "split")}
    meta["split"] = "ctr-leave-two-out"
    if cold is not None:
        meta["cold_start"] = {"fraction": float(cold_start), "seed": int(cold_seed)}
    ctr_dataset = dataset.replace(splits=splits, timestamps=stamps, cold_items=cold, meta=meta)
    user_side, item_side, sizes = encode_side_fields(dataset)
    info = {
        "protocol": "din",
        "max_history": int(max_history),
        "seed": int(seed),
        "negatives_per_positive": 1,
        "min_length": _MIN_LENGTH,
        "source": str(source),
        "source_fingerprint": dataset.fingerprint(),
        "users_with_samples": int(eligible.sum()),
    }
    if cold is not None:
        info["cold_start"] = {"fraction": float(cold_start), "seed": int(cold_seed), "n_cold_items": int(len(cold))}
    return CTRData(ctr_dataset, samples, user_side, item_side, sizes, info)


def load_ctr_source(
    path: str | os.PathLike,
    *,
    max_history: int = 50,
    seed: int = 0,
    cold_start: float | None = None,
    cold_seed: int = 0,
) -> CTRData:
    """Build CTR samples from a source folder: a UniSRec folder (``*.train.inter``; CLIP
    ``image``/``text`` features), a MovieLens folder or ratings file (``ratings.csv`` /
    ``u.data``, with ``text_minilm.npy`` text features and user/item side files), or a
    graphrec dataset directory with timestamps (``dataset.json``). ``cold_start`` and
    ``cold_seed``: the cold-start protocol of the module doc. ``meta["source"]`` is the
    folder's absolute path, so a stored sample set names it from any directory."""
    p = Path(path)
    if p.is_dir() and (p / "dataset.json").is_file():
        ds = Dataset.load(p)
        if ds.timestamps is None:
            raise DataError(f"{p}: the dataset holds no timestamps, and CTR samples order each user's behaviours by "
                            "time: prepare it from interactions with a timestamp column, or pass the source folder")
        seqs = sequences_from_dataset(ds)
    elif p.is_dir() and any(p.glob("*.train.inter")):
        from graphrec.data.formats import read_unisrec

        ds = read_unisrec(p, unseen="keep")
        seqs = read_unisrec_sequences(p, ds)
    elif (p.is_dir() and ((p / "ratings.csv").is_file() or (p / "u.data").is_file())) or p.name in ("ratings.csv", "u.data"):
        from graphrec.data.formats import read_movielens

        ds = read_movielens(p)
        if ds.timestamps is None:
            ratings = p if not p.is_dir() else (p / "ratings.csv" if (p / "ratings.csv").is_file() else p / "u.data")
            raise DataError(f"{ratings}: no timestamp column, and CTR samples order each user's behaviours by time: "
                            "add it (MovieLens ratings carry userId,movieId,rating,timestamp)")
        seqs = sequences_from_dataset(ds)
    elif not p.exists():
        raise DataError(f"{p}: not found: pass a UniSRec folder, a MovieLens folder or a graphrec dataset directory")
    else:
        raise DataError(
            f"{p}: not a CTR source (no *.train.inter, ratings.csv, u.data or dataset.json): pass a "
            "UniSRec folder, a MovieLens folder or a graphrec dataset directory with timestamps"
        )
    return build_ctr_data(
        ds, seqs, max_history=max_history, seed=seed, source=str(p.resolve()), cold_start=cold_start,
        cold_seed=cold_seed,
    )


# ---------------------------------------------------------------------- properties and slices
def behaviour_properties(split: CTRSplit, n_buckets: int = N_PROPERTY_BUCKETS) -> np.ndarray:
    """Integer behaviour-property codes ``(n, w)`` of a split's histories, 0 at padding
    (:func:`property_codes`)."""
    return property_codes(split.history, split.hist_delta, n_buckets)


def property_codes(history: np.ndarray, hist_delta: np.ndarray | None,
                   n_buckets: int = N_PROPERTY_BUCKETS) -> np.ndarray:
    """Integer behaviour-property codes of ``history`` (``(n, w)``, ``-1`` padding, left
    aligned), 0 at padding; elementwise per row, so the codes of some rows (a batch) are
    those rows of the codes of all rows, whatever the padding width.

    With times (``hist_delta``, seconds): ``1 + min(floor(log2(1 + minutes before the
    candidate)), n_buckets - 1)`` (MARN's behaviour time, log-bucketed). Without: the
    recency rank, ``1 + min(steps back - 1, n_buckets - 1)`` (1 = the most recent
    behaviour).
    """
    mask = history >= 0
    if hist_delta is not None:
        minutes = np.nan_to_num(np.maximum(hist_delta, 0.0), nan=0.0) / 60.0
        code = 1 + np.minimum(np.floor(np.log2(1.0 + minutes)), n_buckets - 1).astype(np.int64)
    else:
        lengths = mask.sum(1, keepdims=True)
        steps_back = lengths - np.arange(history.shape[1])[None, :]
        code = 1 + np.minimum(np.maximum(steps_back - 1, 0), n_buckets - 1)
    return np.where(mask, code, 0).astype(np.int64)


def item_popularity(data: CTRData) -> np.ndarray:
    """Train frequency of every item: number of users with the item among their training
    behaviours (:math:`x_1 .. x_{N-2}`)."""
    return np.asarray(data.dataset.train.sum(axis=0)).ravel().astype(np.int64)


def popularity_levels(data: CTRData, split: str = "test", n_levels: int = 10) -> np.ndarray:
    """Popularity level of each sample's candidate (MARN Table 4): the distinct candidate
    items of ``split`` sorted by train frequency (ties by item index) and cut into
    ``n_levels`` equal-size groups, 0 = least popular."""
    if n_levels < 1:
        raise ConfigError(f"n_levels must be at least 1, got {n_levels}")
    pop = item_popularity(data)
    items = data.samples[split].items
    uniq = np.unique(items)
    order = np.lexsort((uniq, pop[uniq]))
    level_of = np.empty(data.n_items, np.int64)
    level_of[uniq[order]] = (np.arange(len(uniq)) * n_levels) // max(len(uniq), 1)
    return level_of[items]


def cold_mask(data: CTRData, split: str = "test", threshold: int = 1) -> np.ndarray:
    """Samples whose candidate is cold: one of the cold-start items when the samples
    follow the cold-start protocol (``threshold`` is then unused), else an item with
    train frequency below ``threshold`` (default: never seen in training)."""
    if data.dataset.cold_items is not None:
        return np.isin(data.samples[split].items, data.dataset.cold_items)
    pop = item_popularity(data)
    return pop[data.samples[split].items] < threshold


# ---------------------------------------------------------------------- stored samples checks
def _rebuild(path: Path, meta: Any) -> str:
    """The fix for a samples directory ``path`` whose content cannot be right (``meta``:
    its ``ctr.json`` meta, naming the source folder when it can)."""
    src = meta.get("source") if isinstance(meta, dict) else None
    again = f"--data {src} --samples {path}" if isinstance(src, str) and src else f"--samples {path}"
    return (f"the samples were edited or not written by graphrec: delete {path} and build them again "
            f"(graphrec train MODEL {again})")


def _such(bad: np.ndarray, noun: str = "value") -> str:
    """``1 such value``, ``3 such values``."""
    n = int(bad.sum())
    return counted(n, f"such {noun}")


def _is_count(v: Any) -> bool:
    """Whether ``v`` is a JSON whole number (not a boolean) of at least 1."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _is_names(v: Any) -> bool:
    """Whether ``v`` is a JSON list of strings."""
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


#: what :meth:`CTRData.load` needs of each ``ctr.json`` entry: (test, description)
_CTR_HEADER_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "meta": (lambda v: isinstance(v, dict) and _is_count(v.get("max_history")),
             "an object with max_history (a whole number >= 1)"),
    "vocab_sizes": (lambda v: isinstance(v, dict) and all(_is_count(n) for n in v.values()),
                    "an object {field: number of codes >= 1}"),
    "user_side": (_is_names, "a list of field names"),
    "item_side": (_is_names, "a list of field names"),
    "has_time": (lambda v: isinstance(v, bool), "true or false"),
    "fingerprint": (lambda v: isinstance(v, str), "a string"),
}


def _check_ctr_header(head: Path, header: Any) -> None:
    """A one-line :class:`DataError` when ``ctr.json`` (parsed as ``header``) is not a
    graphrec-ctr header whose entries have the types :meth:`CTRData.load` relies on (an
    edit would otherwise end in a KeyError or TypeError)."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        raise DataError(f"{head}: not {FORMAT_NAME} v{FORMAT_VERSION}: delete the folder and build the samples again")
    fix = _rebuild(head.parent, header.get("meta"))
    for key, (ok, desc) in _CTR_HEADER_TYPES.items():
        if key not in header:
            raise DataError(f"{head}: entry {key!r} is missing: {fix}")
        if not ok(header[key]):
            shown = json.dumps(header[key])[:60]  # one line: json.dumps adds no line breaks
            raise DataError(f"{head}: entry {key!r} is {shown}, expected {desc}: {fix}")
    for kind in ("user_side", "item_side"):
        missing = [k for k in header[kind] if k not in header["vocab_sizes"]]
        if missing:
            raise DataError(f"{head}: {kind} field {missing[0]!r} has no entry in vocab_sizes: {fix}")


def _first(bad: np.ndarray) -> tuple[int, ...]:
    """The index (row, or row and column) of the first True of ``bad``, row-major."""
    return tuple(int(k) for k in np.unravel_index(int(np.argmax(bad)), bad.shape))


def _at(name: str, index: tuple[int, ...]) -> str:
    """``train__users[3]``, ``train__history[3, 5]``."""
    return f"{name}[{', '.join(str(k) for k in index)}]"


def _check_array(file: Path, name: str, a: np.ndarray, *, shape: tuple[int | None, ...], kinds: str,
                 what: str, fix: str) -> None:
    """``a`` (array ``name`` of ``file``) has ``len(shape)`` dimensions, the sizes of
    ``shape`` (None: any) and a dtype of one of the numpy ``kinds`` (``"iu"``: integers)."""
    if a.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = " x ".join("any" if n is None else str(n) for n in shape)
        raise DataError(f"{file}: array {name} has shape {a.shape}, expected {want} ({what}): {fix}")
    if a.dtype.kind not in kinds:
        need = "an integer" if kinds == "iu" else "a numeric" if "f" in kinds and "i" in kinds else "a float"
        raise DataError(f"{file}: array {name} has dtype {a.dtype}, expected {need} dtype ({what}): {fix}")


def _check_range(file: Path, name: str, a: np.ndarray, low: int, high: int, what: str, allowed: str, fix: str) -> None:
    """The values of integer array ``a`` lie in ``[low, high)``; else the first that does not."""
    bad = (a < low) | (a >= high)
    if bad.any():
        k = _first(bad)
        span = f"{low}..{high - 1}" if high > low else "there are none"
        raise DataError(
            f"{file}: {_at(name, k)} = {int(a[k])} is not {what} ({span}{allowed}) "
            f"({_such(bad)}): {fix}"
        )


def _check_stored_arrays(path: Path, data: CTRData, has_time: bool) -> None:
    """The checks of :meth:`CTRData.load`'s doc on the arrays of ``data``, read from the
    samples directory ``path``: a one-line :class:`DataError` at the first failure."""
    file, side_file = path / "samples.npz", path / "side.npz"
    fix = _rebuild(path, data.meta)
    n_users, n_items, width = data.n_users, data.n_items, data.max_history

    def of(n: int, noun: str) -> str:
        return f", the {n} {noun}s of {path / 'dataset'}"

    for s in CTR_SPLITS:
        sp_ = data.samples[s]
        n = len(sp_.users) if sp_.users.ndim == 1 else None
        _check_array(file, f"{s}__users", sp_.users, shape=(None,), kinds="iu", what="one user index per sample",
                     fix=fix)
        for key, a, shape, kinds, what in (
            ("items", sp_.items, (n,), "iu", f"one candidate item per sample, {n} samples as {s}__users"),
            ("labels", sp_.labels, (n,), "biuf", f"one label per sample, {n} samples as {s}__users"),
            ("position", sp_.position, (n,), "iu", f"one target position per sample, {n} samples as {s}__users"),
            ("history", sp_.history, (n, None), "iu",
             f"{n} samples as {s}__users x at most max history {width} of ctr.json"),
        ):
            _check_array(file, f"{s}__{key}", a, shape=shape, kinds=kinds, what=what, fix=fix)
        # stored up to the split's longest history (CTRSplit), full width in folders written before
        if not 1 <= sp_.history.shape[1] <= width:
            raise DataError(f"{file}: array {s}__history has {sp_.history.shape[1]} columns, expected 1 to max "
                            f"history {width} of ctr.json: {fix}")
        if has_time:
            if sp_.hist_delta is None:
                raise DataError(f"{file}: array {s}__hist_delta is missing (ctr.json says has_time): {fix}")
            _check_array(file, f"{s}__hist_delta", sp_.hist_delta, shape=sp_.history.shape, kinds="f",
                         what=f"seconds before the candidate, shaped as {s}__history", fix=fix)
        if s != "train" and n == 0:
            raise DataError(f"{file}: split {s} has no samples (nothing to evaluate on): {fix}")
        _check_range(file, f"{s}__users", sp_.users, 0, n_users, "a user index",
                     of(n_users, "user"), fix)
        _check_range(file, f"{s}__items", sp_.items, 0, n_items, "an item index",
                     of(n_items, "item"), fix)
        labels = sp_.labels
        bad = ~((labels == 0) | (labels == 1))  # NaN and infinities included
        if bad.any():
            k = _first(bad)
            raise DataError(
                f"{file}: {_at(f'{s}__labels', k)} = {float(labels[k]):g} is not a label (0 or 1; "
                f"{_such(bad)}): {fix}"
            )
        _check_range(file, f"{s}__history", sp_.history, -1, n_items, "an item index or the padding -1",
                     of(n_items, "item"), fix)
        valid = sp_.history >= 0
        gap = valid[:, 1:] & ~valid[:, :-1]  # a behaviour after padding: histories are left-aligned
        if gap.any():
            r, c = _first(gap)
            raise DataError(
                f"{file}: {_at(f'{s}__history', (r, c + 1))} = {int(sp_.history[r, c + 1])} follows the padding "
                f"-1 at column {c}: a history holds its behaviours first, then the padding: {fix}"
            )
        bad = sp_.position < 1
        if bad.any():
            k = _first(bad)
            raise DataError(
                f"{file}: {_at(f'{s}__position', k)} = {int(sp_.position[k])} is not a target position (1-based, "
                f"1 or more): {fix}"
            )
        # a history holds the min(position - 1, max history) behaviours before its target (a
        # narrower or wider array than that was cut or padded by hand)
        want = np.minimum(sp_.position.astype(np.int64) - 1, width)
        bad = valid.sum(1) != want
        if bad.any():
            r = _first(bad)[0]
            raise DataError(
                f"{file}: {s}__history row {r} holds {int(valid[r].sum())} behaviours, but {s}__position[{r}] = "
                f"{int(sp_.position[r])} gives {int(want[r])} (position - 1, at most max history {width}; "
                f"{_such(bad, 'row')}): {fix}"
            )
        if has_time:
            delta = sp_.hist_delta
            bad = valid & ~np.isfinite(delta)
            if bad.any():
                k = _first(bad)
                raise DataError(
                    f"{file}: {_at(f'{s}__hist_delta', k)} = {float(delta[k]):g} at a history behaviour is not a "
                    f"finite number of seconds: {fix}"
                )
    for kind, side, n, low in (("user", data.user_side, n_users, 0), ("item", data.item_side, n_items, -1)):
        for key, codes in side.items():
            name = f"{kind}__{key}"
            shape: tuple[int | None, ...] = (n,) if kind == "user" else (n, None)
            _check_array(side_file, name, codes, shape=shape, kinds="iu",
                         what=f"codes of the {n} {kind}s of {path / 'dataset'}", fix=fix)
            size = int(data.vocab_sizes[key])
            pad = ", or the padding -1" if low < 0 else ""
            bad = (codes < low) | (codes >= size)
            if bad.any():
                k = _first(bad)
                raise DataError(
                    f"{side_file}: {_at(name, k)} = {int(codes[k])} is not a code of field {key!r} "
                    f"(0..{size - 1}, vocab_sizes[{key!r}] = {size} in ctr.json{pad}): {fix}"
                )


# ---------------------------------------------------------------------- no training samples
def check_training_samples(data: CTRData, what: str) -> None:
    """A one-line :class:`DataError` when ``data`` has no training sample, naming the data
    (``what``: the source folder or samples directory as the user gave it) and its counts:
    how many users gave samples and the most behaviours one of them has (training
    samples need a user with at least 4: the last two are the validation and the test
    target), or under the cold-start protocol the most warm training behaviours."""
    if len(data.samples["train"]):
        return
    test = data.samples["test"]
    positives = test.labels == 1
    users = np.unique(test.users[positives]) if len(test) else np.zeros(0, np.int64)
    n_with, n_all = len(users), data.n_users
    lead = f"{what} ({data.dataset.name!r}) gives no training samples"
    cold = data.meta.get("cold_start")
    if cold:
        warm = int(np.diff(data.dataset.train.indptr).max()) if data.n_users else 0
        raise DataError(
            f"{lead}: with --cold-start {cold.get('fraction')} --cold-seed {cold.get('seed')} a user's training "
            f"behaviours (all but the last two) keep their warm items only, and none of the {n_with} users with "
            f"samples has the 2 a training sample needs (at most {warm}): pass a smaller --cold-start, or use data "
            "with longer behaviour sequences"
        )
    longest = int(test.position[positives].max()) if positives.any() else 0
    shortest = int(test.position[positives].min()) if positives.any() else 0
    have = (f"all {n_with} users that give samples have exactly {longest} behaviours" if shortest == longest
            else f"the {n_with} users that give samples have at most {longest} behaviours")
    rest = f" ({n_all - n_with} of its {n_all} users have fewer than 3 and give none)" if n_all > n_with else ""
    raise DataError(
        f"{lead}: {have}{rest}, and a training sample needs a user with at least 4 (a history and a target "
        "before the validation and the test behaviour): use data with longer behaviour sequences"
    )


# ---------------------------------------------------------------------- merged rows
def note_merged_rows(data: CTRData) -> None:
    """A :class:`~graphrec.errors.GraphrecNote` per source file whose repeated (user,
    item) rows the reader merged into one behaviour (``meta["duplicate_rows"]``, e.g. a
    MovieLens rating listed twice: one behaviour at its latest timestamp), as ``graphrec
    prepare`` notes them: the sequences are shorter than the file's row count says.
    For data read from a source file (a graphrec dataset directory's note was printed
    when it was prepared)."""
    for path, n in (data.dataset.meta.get("duplicate_rows") or {}).items():
        warnings.warn(
            f"{n} duplicate row{'s' if n != 1 else ''} of {path} merged (a (user, item) pair listed again is one "
            "behaviour, at its latest timestamp)", GraphrecNote, stacklevel=2,
        )
