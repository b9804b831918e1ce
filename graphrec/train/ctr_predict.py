"""Click probabilities of arbitrary (user, item) pairs for a trained CTR model, given by
their original ids (``graphrec predict RUN --pairs FILE --out FILE.csv``).

>>> from graphrec.train.ctr_eval import load_ctr_run                                # doctest: +SKIP
>>> record, model = load_ctr_run("runs/din-sci", data)   # data: the run's CTRData   # doctest: +SKIP
>>> pred = predict_pairs(model, data, ["A1B2", "C3D4"], ["B0001", "B0002"])          # doctest: +SKIP
>>> pred.probability                    # in the order of the pairs                  # doctest: +SKIP

The model scores a pair from the user, the candidate item and the user's behaviour
history (:class:`~graphrec.models.ctr.CTRBatch`). A stored sample carries its own
history; a new pair is scored with the history the model sees when serving now
(:func:`serving_histories`), which follows how :mod:`graphrec.data.ctr` makes the
samples' histories:

* **the behaviours**: all of the user's known behaviours up to the last, x_1 .. x_N,
  of which the most recent ``max_history`` are kept (oldest first, left-aligned, padded
  with ``-1``), exactly as a sample keeps the ``max_history`` behaviours before its
  target. A user with samples (N >= 3) gets the history of its test sample (the
  ``max_history`` behaviours before x_N) with x_N appended: the history the next
  behaviour after x_N would have, taken from the samples themselves (so repeat
  behaviours on an item, and the positional order of timestamp ties, are as in the
  samples). A user without samples (fewer than 3 behaviours, or under the cold-start
  protocol no warm behaviour before the last two) has all of its behaviours in the
  dataset's train split, which gives them: ordered by (timestamp, item index) as
  :func:`~graphrec.data.ctr.sequences_from_dataset` orders sequences; without
  timestamps (UniSRec folders) by item index, the order being unknown; a repeated
  (user, item) behaviour there counts once, at its latest time.
* **the time properties**: the candidate's time is the time of the user's last
  behaviour in that history, t_N (the latest the data know of the user), so
  ``hist_delta`` of behaviour j is t_N - t_j (x_N itself: 0), as a sample's deltas are
  taken to its candidate's time; :func:`~graphrec.data.ctr.property_codes` makes the
  behaviour properties from them as for every batch (without timestamps: the recency
  rank, x_N the most recent).
* **cold-start runs**: the histories leave out the cold-start items, as every sample's
  history does (the model never conditioned on them; they occur only as candidates),
  and so does the serving history (x_N included, when it is a cold item: the time
  gaps are then taken to the last warm behaviour, the last one the history holds).
* **a user without any known behaviour** (possible only under the cold-start protocol:
  all of the user's items are cold) gets an empty history (one padding column). Every
  model takes it: the history pooling of DIN, YouTubeNet and GMMF is then zero and
  MARN's attention is zero (its ``nan_to_num``), LR, FM and DeepFM use no history. The
  probability rests on the user's embedding and the candidate only, a case no training
  sample shows (each has at least one behaviour): such pairs are counted in
  :attr:`PairPredictions.no_history`.

Unknown ids (not a user or item of the run's data) are a one-line
:class:`~graphrec.errors.DataError` naming the first one, how many pairs have one, and
the fix, or (``unknown="drop"``) those pairs are left out (:attr:`PairPredictions.index`
says which input pairs were scored). :func:`score_pairs` scores (user, item) index pairs
with explicit histories, in batches, through :func:`graphrec.train.ctr.predict_ctr`
(the evaluation path), so stored samples scored through it give their
``predict_ctr`` probabilities.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from graphrec._checks import counted, is_int
from graphrec._device import model_device
from graphrec.data.ctr import CTRData
from graphrec.errors import ConfigError, DataError
from graphrec.models.ctr import CTRModel
from graphrec.models.ctr.base import item_tables_once
from graphrec.train.ctr import predict_ctr

__all__ = ["PAIR_COLUMNS", "UNKNOWN_CHOICES", "PairPredictions", "predict_pairs", "read_pairs", "score_pairs",
           "serving_histories"]

#: what ``unknown=`` (``--unknown``) takes
UNKNOWN_CHOICES: tuple[str, ...] = ("error", "drop")
#: the columns of :meth:`PairPredictions.columns` (and of ``graphrec predict``'s CSV)
PAIR_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "probability")


@dataclass
class PairPredictions:
    """The scored pairs, in the order given (the pairs left out by ``unknown="drop"``
    removed). Columns are numpy arrays of equal length."""

    user_id: np.ndarray  #: original user ids (str)
    item_id: np.ndarray  #: original item ids (str)
    probability: np.ndarray  #: the model's click probability (float64 of the model's float32)
    index: np.ndarray  #: each row's position in the pairs given (int64; all of them unless dropped)
    dropped: int = 0  #: pairs left out for an unknown id (``unknown="drop"``)
    no_history: int = 0  #: scored pairs whose user has no known behaviour (an empty history)

    def __len__(self) -> int:
        return len(self.user_id)

    def columns(self) -> dict[str, np.ndarray]:
        """``{"user_id": ..., "item_id": ..., "probability": ...}``."""
        return {c: getattr(self, c) for c in PAIR_COLUMNS}


# ---------------------------------------------------------------------- histories
def _last_k(slot: np.ndarray, items: np.ndarray, times: np.ndarray | None, n_slots: int,
            k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Left-aligned ``(n_slots, w)`` histories (``-1`` padding) holding the last ``k``
    entries of each slot (``slot`` sorted, a slot's entries oldest first; ``w`` the
    longest history, at least 1) and, with ``times``, the seconds from each kept entry
    to the slot's last entry (float32, NaN at padding)."""
    counts = np.bincount(slot, minlength=n_slots)
    first = np.zeros(n_slots, np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    rank = np.arange(len(slot)) - first[slot]
    skip = np.maximum(counts - k, 0)[slot]
    keep = rank >= skip
    col = (rank - skip)[keep]
    width = max(min(int(counts.max(initial=0)), k), 1)
    hist = np.full((n_slots, width), -1, np.int32)
    hist[slot[keep], col] = items[keep]
    if times is None:
        return hist, None
    last = np.zeros(n_slots)
    is_last = rank == counts[slot] - 1
    last[slot[is_last]] = times[is_last]
    delta = np.full((n_slots, width), np.nan, np.float32)
    delta[slot[keep], col] = (last[slot] - times)[keep]  # seconds in float64, stored as float32 (as samples are)
    return hist, delta


def _from_train_split(data: CTRData, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(slot, item, time)`` of the behaviours of ``users`` in the dataset's train split,
    slots sorted, each user's ordered by (timestamp, item index) (item index without
    timestamps; ``time`` None then)."""
    train = data.dataset.train
    starts = train.indptr[users].astype(np.int64)
    counts = train.indptr[users + 1].astype(np.int64) - starts
    slot = np.repeat(np.arange(len(users), dtype=np.int64), counts)
    offsets = np.zeros(len(users), np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    entry = np.arange(int(counts.sum()), dtype=np.int64) - offsets[slot] + starts[slot]
    items = train.indices[entry].astype(np.int64)
    stamps = (data.dataset.timestamps or {}).get("train")
    if stamps is None:
        order = np.lexsort((items, slot))
        return slot[order], items[order], None
    times = np.asarray(stamps, np.float64)[entry]
    order = np.lexsort((items, times, slot))
    return slot[order], items[order], times[order]


def serving_histories(data: CTRData, users: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The history each user index of ``users`` has when the model serves now (module
    doc): ``(history, hist_delta)``, ``history`` ``(len(users), w)`` int32 item indices,
    oldest first, left-aligned, ``-1`` padding, at most ``data.max_history`` behaviours
    (``w``: the longest, at least 1); ``hist_delta`` float32 seconds before the user's
    last behaviour in the history (0 there, NaN at padding), None when the samples have
    no timestamps."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    if len(users) and (users.min() < 0 or users.max() >= data.n_users):
        bad = users[(users < 0) | (users >= data.n_users)]
        raise DataError(f"user index {int(bad[0])} is not one of the data's {data.n_users} users "
                        f"(0..{data.n_users - 1})")
    test = data.samples["test"]
    positives = np.flatnonzero(test.labels == 1)
    row_of = np.full(data.n_users, -1, np.int64)
    row_of[test.users[positives]] = positives
    rows = row_of[users]
    has_time = data.has_time
    # users with samples: the test sample's history, then its target x_N; times relative to x_N's
    a = np.flatnonzero(rows >= 0)
    hist_a = test.history[rows[a]]
    r, c = np.nonzero(hist_a >= 0)  # row-major: each row's behaviours oldest first
    targets = test.items[rows[a]].astype(np.int64)
    cold = data.dataset.cold_items
    warm = np.ones(len(a), bool) if cold is None else ~np.isin(targets, cold)
    slots = [a[r], a[warm]]
    items = [hist_a[r, c].astype(np.int64), targets[warm]]
    times: list[np.ndarray] = []
    if has_time:
        assert test.hist_delta is not None
        times = [-test.hist_delta[rows[a]][r, c].astype(np.float64), np.zeros(int(warm.sum()))]
    # users without samples: their behaviours in the train split
    b = np.flatnonzero(rows < 0)
    slot_b, items_b, times_b = _from_train_split(data, users[b])
    slots.append(b[slot_b])
    items.append(items_b)
    if has_time:
        times.append(times_b if times_b is not None else np.zeros(len(items_b)))
    slot = np.concatenate(slots)
    order = np.argsort(slot, kind="stable")  # a user's history entries before its target
    when = np.concatenate(times)[order] if has_time else None
    return _last_k(slot[order], np.concatenate(items)[order], when, len(users), data.max_history)


# ---------------------------------------------------------------------- scoring
def _check_indices(name: str, values: np.ndarray, n: int, what: str, pad: bool = False) -> None:
    """A one-line :class:`DataError` at the first index of ``values`` outside ``0..n-1``
    (``pad``: ``-1`` allowed too)."""
    low = -1 if pad else 0
    bad = (values < low) | (values >= n)
    if bad.any():
        k = tuple(int(x) for x in np.unravel_index(int(np.argmax(bad)), bad.shape))
        at = ", ".join(str(x) for x in k)
        allowed = f"0..{n - 1}" + (", or the padding -1" if pad else "")
        raise DataError(f"{name}[{at}] = {int(values[k])} is not {what} ({allowed}; "
                        f"{counted(int(bad.sum()), 'such value')}): index the model's data")


@torch.no_grad()
def score_pairs(
    model: CTRModel,
    users: np.ndarray,
    items: np.ndarray,
    history: np.ndarray,
    hist_delta: np.ndarray | None = None,
    *,
    rows: np.ndarray | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 4096,
) -> np.ndarray:
    """Click probabilities (float32, in order) of the (user index, item index) pairs
    ``users``, ``items`` with explicit histories: pair ``k`` has history row
    ``rows[k]`` of ``history`` (``(m, w)`` item indices, oldest first, ``-1`` padding;
    ``rows`` None: row ``k``) and ``hist_delta`` (seconds before the candidate, same
    shape; None: recency properties). Scored ``batch_size`` pairs at a time through
    :func:`~graphrec.train.ctr.predict_ctr` on ``device`` (default: the model's); a
    batch's history rows are gathered when it is cut, so a user's row is stored once.
    An index outside the model's users or items is a one-line :class:`DataError`."""
    if not is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    dev = model_device(model, device)
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    history = np.asarray(history)
    n = len(users)
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(items) != n or len(rows) != n:
        raise ConfigError(f"{n} users, {len(items)} items and {len(rows)} history rows: give one of each per pair")
    if history.ndim != 2 or history.dtype.kind not in "iu":
        raise ConfigError(f"history must be a 2-D integer array (pairs x behaviours), got shape {history.shape} "
                          f"and dtype {history.dtype}")
    if hist_delta is not None and np.shape(hist_delta) != history.shape:
        raise ConfigError(f"hist_delta has shape {np.shape(hist_delta)}, history {history.shape}: give one time "
                          "gap per history entry")
    _check_indices("users", users, model.n_users, "a user index of the model")
    _check_indices("items", items, model.n_items, "an item index of the model")
    _check_indices("rows", rows, len(history), "a row of history")
    _check_indices("history", history, model.n_items, "an item index of the model", pad=True)
    delta = None if hist_delta is None else np.asarray(hist_delta, dtype=np.float32)  # converted once
    out = np.empty(n, np.float32)
    with item_tables_once(model):  # the graph-propagated item tables: once, not per batch (no_grad: above)
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            r = rows[s:e]
            t = {
                "users": torch.from_numpy(users[s:e]),
                "items": torch.from_numpy(items[s:e]),
                "history": torch.from_numpy(history[r].astype(np.int32, copy=False)),
                "labels": torch.zeros(e - s),  # unused by predict
            }
            if delta is not None:
                t["hist_delta"] = torch.from_numpy(delta[r])
            out[s:e] = predict_ctr(model, t, dev, batch_size)
    return out


def _lookup(known: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """The position of each ``asked`` id among ``known`` (both str arrays), -1 when absent."""
    if not len(known) or not len(asked):
        return np.full(len(asked), -1, np.int64)
    order = np.argsort(known, kind="stable")
    ranked = known[order]
    pos = np.minimum(np.searchsorted(ranked, asked), len(ranked) - 1)
    return np.where(ranked[pos] == asked, order[pos], -1).astype(np.int64)


def _as_ids(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D array of str ids."""
    if isinstance(values, (str, bytes)):
        raise ConfigError(f"{name}={values!r}: pass a list (or array) of original ids, one per pair")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one id per pair (1-D), got shape {arr.shape}")
    return arr.astype(str)


def predict_pairs(
    model: CTRModel,
    data: CTRData,
    user_ids: Sequence[Any] | np.ndarray,
    item_ids: Sequence[Any] | np.ndarray,
    *,
    unknown: str = "error",
    device: str | torch.device | None = None,
    batch_size: int = 4096,
    source: str | None = None,
    lines: np.ndarray | None = None,
) -> PairPredictions:
    """Click probabilities of the pairs ``(user_ids[k], item_ids[k])`` (original ids, as
    text) for ``model`` trained on ``data`` (:func:`~graphrec.train.ctr_eval.load_ctr_run`),
    in the order given, each user with its serving history (:func:`serving_histories`,
    module doc), scored ``batch_size`` pairs at a time on ``device`` (default: the
    model's).

    ``unknown``: ``"error"`` (an id that is not a user or item of ``data`` is a one-line
    :class:`DataError` naming the first and counting the pairs with one) or ``"drop"``
    (those pairs are left out; when that leaves none, the error). ``source`` and
    ``lines`` only word the messages: where the pairs came from (a file) and the line of
    each pair in it.
    """
    if unknown not in UNKNOWN_CHOICES:
        raise ConfigError(f"unknown={unknown!r} is not one of {', '.join(UNKNOWN_CHOICES)}")
    users_asked = _as_ids(user_ids, "user_ids")
    items_asked = _as_ids(item_ids, "item_ids")
    if len(users_asked) != len(items_asked):
        raise ConfigError(f"{len(users_asked)} user ids and {len(items_asked)} item ids: give one of each per pair")
    if (model.n_users, model.n_items) != (data.n_users, data.n_items):
        raise ConfigError(f"the model has {model.n_users} users and {model.n_items} items, the data "
                          f"{data.n_users} and {data.n_items}: pass the data the model was trained on")
    ds = data.dataset
    u = _lookup(np.asarray(ds.user_ids).astype(str), users_asked)
    i = _lookup(np.asarray(ds.item_ids).astype(str), items_asked)
    bad = (u < 0) | (i < 0)
    n = len(u)
    if bad.any() and (unknown == "error" or bad.all()):
        k = int(np.argmax(bad))
        is_user = u[k] < 0
        kind = "user" if is_user else "item"
        value = str((users_asked if is_user else items_asked)[k])  # repr of a str, not of numpy 2's np.str_
        if source is not None and lines is not None:
            where = f"{source} line {int(lines[k])}: {kind} id {value!r}"
        else:
            where = f"{kind}_ids[{k}] = {value!r}"
        n_users_bad = len(np.unique(users_asked[u < 0]))
        n_items_bad = len(np.unique(items_asked[i < 0]))
        counts = (f"{counted(int(bad.sum()), 'pair')} of {n} with an unknown id: "
                  f"{counted(n_users_bad, 'unknown user id')}, {counted(n_items_bad, 'unknown item id')}")
        if unknown == "drop":
            raise DataError(f"every pair has an unknown id, nothing is left to score ({counts}; the first, {where}): "
                            "pass ids of the data the run trained on")
        raise DataError(f"{where} is not {'a user' if is_user else 'an item'} of the run's data ({counts}): pass ids "
                        "of the data the run trained on, or --unknown drop (in Python unknown='drop') to leave "
                        "such pairs out")
    keep = np.flatnonzero(~bad)
    u, i = u[keep], i[keep]
    asked, inverse = np.unique(u, return_inverse=True)
    history, delta = serving_histories(data, asked)
    empty = (history >= 0).sum(1) == 0
    probs = score_pairs(model, u, i, history, delta, rows=inverse.reshape(-1), device=device, batch_size=batch_size)
    return PairPredictions(
        user_id=users_asked[keep],
        item_id=items_asked[keep],
        probability=probs.astype(np.float64),
        index=keep.astype(np.int64),
        dropped=int(bad.sum()),
        no_history=int(empty[inverse].sum()),
    )


# ---------------------------------------------------------------------- files
def read_pairs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user_ids, item_ids, lines)`` of a pairs CSV: a header with ``user_id`` and
    ``item_id`` columns (others ignored), one pair a row, ids as text (surrounding spaces
    removed), ``lines`` each pair's line number. Blank lines are skipped; a missing or
    empty id, a file without pairs or that is no UTF-8 text is a one-line
    :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}: give a CSV with a user_id,item_id header and one pair a row")
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next((row for row in reader if row), None)
            if header is None:
                raise DataError(f"{path} is empty: give a CSV with a user_id,item_id header and one pair a row")
            names = [h.strip() for h in header]
            missing = [c for c in ("user_id", "item_id") if c not in names]
            if missing:
                raise DataError(f"{path}: the CSV header ({', '.join(names)}) has no {' and no '.join(missing)} "
                                "column: name the columns user_id and item_id")
            cu, ci = names.index("user_id"), names.index("item_id")
            need = max(cu, ci)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) <= need:
                    col = "user_id" if len(row) <= cu else "item_id"
                    raise DataError(f"{path} line {reader.line_num}: no {col} value (the row has "
                                    f"{counted(len(row), 'column')}, the header {len(names)})")
                uid, iid = row[cu].strip(), row[ci].strip()
                if not uid or not iid:
                    raise DataError(f"{path} line {reader.line_num}: empty {'user_id' if not uid else 'item_id'}: "
                                    "give both ids of every pair")
                users.append(uid)
                items.append(iid)
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({e})") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if not users:
        raise DataError(f"{path} lists no pairs: give one user_id,item_id pair a row below the header")
    return np.asarray(users, dtype=str), np.asarray(items, dtype=str), np.asarray(lines, dtype=np.int64)
