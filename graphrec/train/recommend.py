"""Top-k recommendation lists: for a saved run (original ids in, original ids out) and,
underneath, for any scorer on a dataset (item indices).

>>> import graphrec
>>> recs = graphrec.recommend("runs/lightgcn-baby", users=["A1B2", "C3D4"], k=10)  # doctest: +SKIP
>>> recs.user_id[:3], recs.item_id[:3], recs.rank[:3], recs.score[:3]               # doctest: +SKIP
>>> recs.to_pandas()                    # with pandas installed                       # doctest: +SKIP
>>> write_recommendations(recs, "recs.csv")                                         # doctest: +SKIP

:func:`recommend_run` (exported as ``graphrec.recommend``; the CLI is
``graphrec recommend``) loads a run written by ``graphrec train`` (record, weights and
the dataset after the recorded transforms, e.g. a cold-start split), maps the requested
original user ids to the dataset's indices, scores the candidate items in batches of
users on the model's device with the model's scorer, masks each user's seen items and
keeps the top ``k`` with ``torch.topk`` per batch (the loop is over batches, never over
users), and maps the items back to their original ids.

The rules (``docs/recommend.md``):

* seen items: with ``exclude_seen=True`` the items of the user's TRAINING interactions,
  i.e. everything the model was trained on, are never recommended; a tuple of split
  names (``("train", "valid", "test")``) masks those splits instead (validation and test
  interactions are history the model never trained on: masked only when asked), and
  ``False`` masks nothing;
* candidates: every item of the dataset, or the original item ids in ``items``;
* a user with fewer than ``k`` candidates left after masking gets fewer rows (never a
  masked item);
* an unknown user id is a :class:`~graphrec.errors.DataError` naming the id and where it
  came from, unless ``unknown="popular"``: such users get the candidates with the most
  TRAINING interactions (ties by item index), with that count as the score, and are
  listed in :attr:`Recommendations.popular_users`. Users of the dataset without training
  interactions are known users: the model scores them.
"""

from __future__ import annotations

import csv
import inspect
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphrec import _csv
from graphrec._checks import is_int, renamed
from graphrec._atomic import atomic_file, check_output
from graphrec._device import resolve_device
from graphrec._progress import counter, tracked
from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError, GraphrecError, GraphrecNote
from graphrec.models.base import Scorer
from graphrec.train.evaluate import any_nonfinite, batch_scores

__all__ = [
    "FORMATS",
    "Recommendations",
    "check_recommendations_output",
    "read_id_list",
    "recommend_indices",
    "recommend_model",
    "recommend_run",
    "top_k",
    "write_recommendations",
]

#: output file suffixes :func:`write_recommendations` writes
FORMATS: tuple[str, ...] = (".csv", ".parquet")
COLUMNS: tuple[str, ...] = ("user_id", "item_id", "rank", "score")
UNKNOWN_CHOICES: tuple[str, ...] = ("error", "popular")


# --------------------------------------------------------------------------- index level
def _check_top_k_inputs(
    users: Sequence[int] | np.ndarray, n_items: int, exclude: sp.csr_matrix | None, candidates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`top_k`'s ``users`` (int64, order and repeats kept) and ``candidates`` (int64),
    checked: a one-line :class:`ConfigError` for ids or fractions instead of indices, an
    index out of range (users: below ``exclude``'s rows, when given), candidates that are
    not sorted and distinct, or an ``exclude`` of another width than ``n_items``."""
    arr = np.asarray(users)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(f"users must be a 1-D array of user indices, got {arr.dtype} of shape {arr.shape}: "
                          "graphrec.recommend takes original ids")
    arr = arr.astype(np.int64)
    if exclude is not None and exclude.shape[1] != n_items:
        raise ConfigError(f"exclude has {exclude.shape[1]} columns but n_items is {n_items}: one column per item")
    n_users = exclude.shape[0] if exclude is not None else None
    if arr.size and (arr.min() < 0 or (n_users is not None and arr.max() >= n_users)):
        bad = int(arr[(arr < 0) | (arr >= (n_users if n_users is not None else np.iinfo(np.int64).max))][0])
        span = f"in [0, {n_users})" if n_users is not None else "(0 or more)"
        raise ConfigError(f"users holds the index {bad}, not a user index {span}: pass user indices, not ids")
    if candidates is None:
        return arr, None
    cand = np.asarray(candidates)
    if cand.ndim != 1 or (cand.size and not np.issubdtype(cand.dtype, np.integer)):
        raise ConfigError(f"candidates must be a 1-D array of item indices, got {cand.dtype} of shape {cand.shape}")
    cand = cand.astype(np.int64)
    if cand.size and (cand.min() < 0 or cand.max() >= n_items):
        raise ConfigError(f"candidates hold indices outside [0, {n_items}): pass item indices, not ids")
    if cand.size > 1 and not (np.diff(cand) > 0).all():
        raise ConfigError("candidates must be sorted and distinct: pass np.unique(candidates)")
    return arr, cand


@torch.no_grad()
def top_k(
    scorer: Scorer,
    users: Sequence[int] | np.ndarray,
    k: int,
    n_items: int,
    *,
    exclude: sp.csr_matrix | None = None,
    candidates: np.ndarray | None = None,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``min(k, n_candidates)`` best items of each user, best first.

    Args:
        scorer: ``scorer(users) -> [len(users), n_items]`` scores (a fresh tensor; masked
            entries are overwritten in place), users a LongTensor on ``device``.
        users: user indices.
        exclude: ``n_users x n_items`` CSR whose entries are never returned (seen items).
        candidates: sorted, distinct item indices to rank (default: all items).
        batch_size: users per batch, a memory setting: the lists are the same up to float
            rounding (a matrix product blocks its sums differently by batch, so scores can
            differ in the last bits and a near tie swap). At most
            :data:`~graphrec.train.evaluate.MAX_BATCH_SCORES` scores per batch, as in
            evaluation: a million-item catalogue scores 33 users at a time, not 1,024
            (8 GB of scores).

    Returns:
        item indices and scores, each ``len(users) x min(k, n_candidates)``, best first; a
        slot a user has no candidate for (everything masked) has score ``-inf``: callers
        drop those. Ties are broken by ``torch.topk``.
    """
    if not is_int(k) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    if not is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    from graphrec.train.evaluate import MAX_BATCH_SCORES, _csr_to_torch, _gather_rows

    users_np, candidates = _check_top_k_inputs(users, n_items, exclude, candidates)
    dev = resolve_device(device)
    n_cols = n_items if candidates is None else len(candidates)
    kk = min(int(k), n_cols)
    out_idx = np.zeros((len(users_np), kk), dtype=np.int64)
    out_val = np.full((len(users_np), kk), -np.inf, dtype=np.float32)
    if kk == 0 or len(users_np) == 0:
        return out_idx, out_val
    cand_t = None
    if candidates is not None:
        cand_t = torch.as_tensor(candidates, device=dev)
        if exclude is not None:
            exclude = sp.csr_matrix(exclude[:, candidates])  # columns renumbered to candidate positions
    mask = None
    if exclude is not None and exclude.nnz:
        exclude = sp.csr_matrix(exclude)
        exclude.sort_indices()
        mask = _csr_to_torch(exclude, dev)
    users_t = torch.as_tensor(users_np, device=dev)
    nonfinite_seen = torch.zeros((), dtype=torch.bool, device=dev)
    batch_size = max(1, min(int(batch_size), MAX_BATCH_SCORES // max(n_items, 1)))  # the scorer's [B, n_items]
    starts: Any = range(0, len(users_np), batch_size)
    starts = tracked(starts, progress, "recommend", unit="batch", leave=False)
    for start in starts:
        batch = users_t[start : start + batch_size]
        b = len(batch)
        scores = batch_scores(scorer, batch, n_items, dev)
        if cand_t is not None:
            scores = scores.index_select(1, cand_t)  # a new tensor of the candidates' scores
        # the scorer's own scores must be finite (NaN, +inf or -inf: diverged), checked
        # before the masking writes -inf, once at the end (no per-batch synchronisation)
        nonfinite_seen = nonfinite_seen | any_nonfinite(scores)
        if mask is not None:
            r, c, _ = _gather_rows(mask[0], mask[1], batch)
            scores[r, c] = float("-inf")
        val, idx = torch.topk(scores, kk, dim=1)
        if cand_t is not None:
            idx = cand_t[idx]
        out_idx[start : start + b] = idx.cpu().numpy()
        out_val[start : start + b] = val.float().cpu().numpy()
    if bool(nonfinite_seen):
        raise GraphrecError("the model returned NaN or infinite scores: it diverged; train it again (lower the "
                            "learning rate)")
    return out_idx, out_val


@torch.no_grad()
def recommend_indices(
    scorer: Scorer,
    dataset: Dataset,
    users: Sequence[int] | np.ndarray,
    k: int = 20,
    exclude: Sequence[str] = ("train",),
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (``len(users) x k``) and scores of each user's top-``k`` items, for user
    INDICES of ``dataset`` (the model contract suite's check; for a saved run and
    original ids use :func:`recommend_run`).

    Items the user has in any split named in ``exclude`` are never returned, unless
    fewer than ``k`` items are left (their slots have score ``-inf``).
    """
    if isinstance(exclude, str):  # one split, not its letters
        exclude = (exclude,)
    if not isinstance(exclude, (list, tuple)) or not all(isinstance(s, str) for s in exclude):
        raise ConfigError(f"exclude must name splits, e.g. ('train',) or ('train', 'valid'), got {exclude!r}")
    return top_k(scorer, users, k, dataset.n_items, exclude=seen_matrix(dataset, exclude), device=device)


def seen_matrix(dataset: Dataset, splits: Sequence[str]) -> sp.csr_matrix | None:
    """The union of the interactions of ``splits`` (a split the dataset lacks is an error);
    with ``train``, the training interactions a hidden cold-start split removed too
    (:attr:`~graphrec.data.Dataset.hidden`: the user consumed them)."""
    mat = None
    for s in splits:
        m = dataset.split(s)
        mat = m if mat is None else mat + m
    if mat is not None and "train" in splits and dataset.hidden is not None:
        mat = mat + dataset.hidden
    return None if mat is None else sp.csr_matrix(mat)


# --------------------------------------------------------------------------- result
@dataclass
class Recommendations:
    """One row per (user, rank), users in the order asked, ranks ``1..k`` (fewer when a
    user has fewer candidates). Columns are numpy arrays of equal length."""

    user_id: np.ndarray  #: original user ids (str)
    item_id: np.ndarray  #: original item ids (str)
    rank: np.ndarray  #: 1 = best (int32)
    score: np.ndarray  #: the model's score; the training interaction count for popular_users (float32)
    k: int = 20
    #: ids of the unknown users that got the most popular items (``unknown="popular"``)
    popular_users: list[str] = field(default_factory=list)
    #: splits whose interactions were masked (empty: none)
    excluded: tuple[str, ...] = ("train",)

    def __len__(self) -> int:
        return len(self.user_id)

    @property
    def n_users(self) -> int:
        """The users with rows: a user's rows are consecutive and the users distinct, so the
        places where the id changes are counted (a set or ``np.unique`` of every row's id
        took 1-2 s at 10M rows)."""
        ids = self.user_id
        return int((ids[1:] != ids[:-1]).sum()) + 1 if len(ids) else 0

    def __repr__(self) -> str:
        return (f"Recommendations({len(self)} rows, {self.n_users} users, k={self.k}, "
                f"excluded={self.excluded!r}; .columns() or .to_pandas() for the rows)")

    def columns(self) -> dict[str, np.ndarray]:
        """``{"user_id": ..., "item_id": ..., "rank": ..., "score": ...}``."""
        return {c: getattr(self, c) for c in COLUMNS}

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the four columns (pandas is not a dependency of
        graphrec: install it to use this)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("to_pandas needs pandas: pip install pandas (or use .columns())") from None
        return pd.DataFrame(self.columns())


# --------------------------------------------------------------------------- ids
def read_id_list(path: str | os.PathLike, column: str, also: Sequence[str] = ()) -> list[str]:
    """Original ids from ``path``: one id per line (no header), or a CSV file whose header
    has a ``column`` column, or one of ``also`` (the id column a csv-imported dataset was
    read from, e.g. ``customer_id``; other columns are ignored). Blank lines are skipped,
    surrounding spaces removed, repeated ids kept once (first place)."""
    names_ok = (column, *[a for a in also if a and a != column])
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}: give one id per line or a CSV with a {column} column")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({e})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DataError(f"{path} lists no ids: give one id per line or a CSV with a {column} column")
    header = next(csv.reader([lines[0][1]]))
    ids: list[str]
    if len(header) > 1 or header[0].strip() in names_ok:
        names = [h.strip() for h in header]
        found = next((c for c in names_ok if c in names), None)
        if found is None:
            raise DataError(
                f"{path}: the CSV header ({', '.join(names)}) has no {' or '.join(names_ok)} column: "
                f"name the id column {column}, or give one id per line"
            )
        col = names.index(found)
        column = found
        ids = []
        for (n, _), row in zip(lines[1:], csv.reader([line for _, line in lines[1:]])):
            if len(row) <= col:
                raise DataError(f"{path}, line {n}: no {column} value (the row has {len(row)} columns)")
            if row[col].strip():
                ids.append(row[col].strip())
        if not ids:
            raise DataError(f"{path}: the {column} column is empty")
    else:
        ids = [line.strip() for _, line in lines]
    return list(dict.fromkeys(ids))


def _ids_arg(value: Any, column: str, what: str, also: Sequence[str] = ()) -> tuple[list[str], str]:
    """``(ids, where they came from)`` for a ``users=`` / ``items=`` argument (a file's id
    column: ``column`` or one of ``also``, :func:`read_id_list`)."""
    if isinstance(value, os.PathLike):
        return read_id_list(value, column, also), str(value)
    if isinstance(value, (str, bytes)):
        raise ConfigError(
            f"{what}={value!r}: pass a list of original {what[:-1]} ids, or a pathlib.Path to a file of them"
        )
    try:
        ids = [str(v) for v in list(value)]
    except TypeError:
        raise ConfigError(
            f"{what} must be a list of original ids or a pathlib.Path, got {type(value).__name__}"
        ) from None
    if not ids:
        raise ConfigError(f"{what} is empty: pass at least one id ({what}=None for all)")
    return list(dict.fromkeys(ids)), f"the {what} argument"


def _check_no_header_read_as_id(first: str, known: bool, where: str, column: str) -> None:
    """A file's first id that is no id of the dataset but reads as a column name
    (``userid``, ``users``, ``user_id:token``: a header other than ``column``, which
    :func:`read_id_list` would have taken as one) is a one-line :class:`DataError`
    naming the header, whatever ``unknown`` says: it would otherwise be recommended to
    (``--unknown popular``) or reported as an unknown id."""
    kind = column.split("_")[0]  # user, item
    name = re.sub(r"[^a-z0-9]", "", first.split(":")[0].lower())  # user_id:token -> userid; user9 stays
    if known or not name or name not in {kind, kind + "s", kind + "id", kind + "ids", kind[0] + "id", "id", "ids"}:
        return
    raise DataError(f"{where}: its first line, {first!r}, is no {kind} of the run's dataset and reads as a column "
                    f"name: name the header {column} (or drop it and give one id per line)")


def _positions(all_ids: np.ndarray) -> dict[str, int]:
    return {str(v): i for i, v in enumerate(all_ids.tolist())}


# --------------------------------------------------------------------------- run level
def _excluded_splits(exclude_seen: bool | Sequence[str]) -> tuple[str, ...]:
    from graphrec.data.dataset import SPLITS

    if exclude_seen is True:
        return ("train",)
    if exclude_seen is False or exclude_seen is None:
        return ()
    if isinstance(exclude_seen, str):
        exclude_seen = [s.strip() for s in exclude_seen.split(",") if s.strip()]
    splits = tuple(dict.fromkeys(exclude_seen))
    if not splits:
        raise ConfigError(f"exclude_seen={exclude_seen!r} names no split (CLI: --seen): give True (train), False, "
                          f"or split names among {', '.join(SPLITS)}")
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(
            f"unknown split {bad[0]!r} in exclude_seen (CLI: --seen): give True (train), False, "
            f"or split names among {', '.join(SPLITS)}"
        )
    return splits


@renamed("graphrec.recommend", run="run_dir", data="data_path")
def recommend_run(
    run_dir: str | os.PathLike,
    users: Sequence[Any] | os.PathLike | None = None,
    k: int = 20,
    exclude_seen: bool | Sequence[str] = True,
    items: Sequence[Any] | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    *,
    unknown: str = "error",
    batch_size: int = 1024,
    data_path: str | os.PathLike | None = None,
    progress: bool = False,
    new_items: str | os.PathLike | None = None,
) -> Recommendations:
    """Top-``k`` items for users of a saved run, with original ids (module doc).

    Exported as ``graphrec.recommend``.

    Args:
        run_dir: a run directory written by ``graphrec train`` (record.json + model.pt).
        users: original user ids (a list, or a :class:`pathlib.Path` to a file of them,
            see :func:`read_id_list`); ``None``: every user of the dataset, index order.
        k: items per user.
        exclude_seen: ``True`` masks the user's training interactions, ``False`` nothing,
            a tuple of split names those splits.
        items: original ids of the candidate items (list or Path); ``None``: all items.
        device: ``cpu`` (default), ``auto`` (CUDA when available), ``cuda``, ``cuda:N``.
        unknown: ``error`` (an unknown user id is a :class:`DataError`) or ``popular``
            (unknown users get the most popular training items).
        batch_size: users scored per batch.
        data_path: the dataset directory (``--data``), when the path in the run record no
            longer points to it.
        progress: a tqdm bar over the batches.
        new_items: an ``.npz`` of items that arrived after training (:func:`read_new_items`),
            ranked beside the catalogue's; the run must have the cold-item path.
    """
    from graphrec.train.run import load_run

    excluded = _check_recommend_args(unknown, k, batch_size, exclude_seen)
    dev = resolve_device(device)
    # the id lists (files) first: a wrong file fails before the run is loaded
    columns = _recorded_id_columns(run_dir, data_path)
    user_list = None if users is None else _ids_arg(users, "user_id", "users", columns[:1])
    item_list = None if items is None else _ids_arg(items, "item_id", "items", columns[1:])
    record, dataset, model = load_run(run_dir, dev, data_path)  # a CTR run is refused there
    return _recommend(model, dataset, users, user_list, items, item_list, k, excluded, dev, unknown, batch_size,
                      progress, new_items, run_dir, record.get("model"))


def recommend_model(
    model: Any,
    dataset: Dataset,
    users: Sequence[Any] | os.PathLike | None = None,
    k: int = 20,
    exclude_seen: bool | Sequence[str] = True,
    items: Sequence[Any] | os.PathLike | None = None,
    *,
    unknown: str = "error",
    batch_size: int = 1024,
    progress: bool = False,
    new_items: str | os.PathLike | None = None,
) -> Recommendations:
    """Top-``k`` items with original ids for users of ``dataset`` from a ranking model in
    memory (``run_training``'s or ``fit``'s, trained on ``dataset``), on the model's own
    device: what :func:`recommend_run` (``graphrec.recommend``) gives for a saved run, with
    the same arguments (``users``, ``items``: original ids, lists or files; ``unknown``,
    ``exclude_seen``, ``new_items``, ...). Exported as ``graphrec.recommend_model``."""
    from graphrec._device import model_device
    from graphrec.train.fit import check_model_fits

    excluded = _check_recommend_args(unknown, k, batch_size, exclude_seen)
    check_model_fits(model, dataset)  # a model of other data: one line, not wrong ids
    columns = _id_columns(dataset.meta)
    user_list = None if users is None else _ids_arg(users, "user_id", "users", columns[:1])
    item_list = None if items is None else _ids_arg(items, "item_id", "items", columns[1:])
    training = model.training
    try:
        return _recommend(model, dataset, users, user_list, items, item_list, k, excluded, model_device(model, None),
                          unknown, batch_size, progress, new_items, "the model", None)
    finally:
        model.train(training)  # scored in eval mode; the caller's model is left as it was


def _id_columns(meta: Mapping[str, Any] | None) -> tuple[str, str]:
    """The user and item id columns a csv-imported dataset was read from (``meta["columns"]``,
    :func:`graphrec.data.formats.read_table`), ``""`` where none is recorded."""
    cols = (meta or {}).get("columns") if isinstance(meta, Mapping) else None
    cols = cols if isinstance(cols, Mapping) else {}
    return tuple(str(cols.get(k) or "").strip() for k in ("user", "item"))  # type: ignore[return-value]


def _recorded_id_columns(run_dir: str | os.PathLike, data_path: str | os.PathLike | None) -> tuple[str, str]:
    """:func:`_id_columns` of a run's dataset, read from its ``dataset.json`` alone (before
    the run is loaded); ``("", "")`` when that cannot be read (the load says why)."""
    import json

    from graphrec.train.record import load_record

    try:
        folder = data_path if data_path is not None else load_record(run_dir)["dataset"].get("path")
        header = json.loads((Path(folder) / "dataset.json").read_text()) if folder else {}
    except (GraphrecError, OSError, ValueError, TypeError, KeyError, AttributeError):
        return "", ""
    return _id_columns(header.get("meta") if isinstance(header, dict) else None)


def _check_recommend_args(unknown: str, k: int, batch_size: int,
                          exclude_seen: bool | Sequence[str]) -> tuple[str, ...]:
    """The options of :func:`recommend_run` and :func:`recommend_model`, checked (one-line
    ConfigError); returns the splits whose items are excluded."""
    if unknown not in UNKNOWN_CHOICES:
        raise ConfigError(f"unknown={unknown!r} is not one of {', '.join(UNKNOWN_CHOICES)}")
    if not is_int(k) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    if not is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return _excluded_splits(exclude_seen)


def _recommend(model: Any, dataset: Dataset, users: Any, user_list: Any, items: Any, item_list: Any, k: int,
               excluded: tuple[str, ...], dev: torch.device, unknown: str, batch_size: int, progress: bool,
               new_items: str | os.PathLike | None, run_dir: Any, model_name: str | None) -> Recommendations:
    """:func:`recommend_run`'s and :func:`recommend_model`'s work, on a model loaded or
    in memory (``user_list`` / ``item_list``: the parsed ``users`` / ``items``)."""
    for s in excluded:
        dataset.split(s)  # a clear error when the dataset lacks the split
    item_ids = dataset.item_ids
    n_total = dataset.n_items
    new = None
    if new_items is not None:
        new_ids, new_x = read_new_items(new_items, model, dataset, run_dir, model_name)
        new = new_x.to(dev)
        item_ids = np.concatenate([np.asarray(item_ids).astype(str), new_ids])
        n_total += len(new_ids)

    candidates = None
    if item_list is not None:
        ids, where = item_list
        pos = _positions(item_ids)
        if isinstance(items, os.PathLike):
            _check_no_header_read_as_id(ids[0], ids[0] in pos, where, "item_id")
        missing = [i for i in ids if i not in pos]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            new = ("" if new_items is not None else "; items that arrived after training are scored from their "
                   "content with --new-items FILE (in Python new_items=FILE), given a run with the cold-item path")
            raise DataError(
                f"item id {missing[0]!r} in {where} is not an item of the run's dataset{more}: "
                f"candidates must be items the model knows{new}"
            )
        candidates = np.unique(np.fromiter((pos[i] for i in ids), dtype=np.int64, count=len(ids)))

    if user_list is None:
        user_idx = np.arange(dataset.n_users, dtype=np.int64)
        asked = dataset.user_ids
        known = np.ones(len(user_idx), dtype=bool)
    else:
        ids, where = user_list
        pos = _positions(dataset.user_ids)
        if isinstance(users, os.PathLike):
            _check_no_header_read_as_id(ids[0], ids[0] in pos, where, "user_id")
        missing = [u for u in ids if u not in pos]
        if missing and unknown == "error":
            more = f" (and {len(missing) - 1} more unknown ids)" if len(missing) > 1 else ""
            raise DataError(
                f"user id {missing[0]!r} in {where} is not a user of the run's dataset{more}: check the id, or "
                "pass --unknown popular (in Python unknown='popular') to give unknown users the most popular items"
            )
        asked = np.asarray(ids)
        known = np.fromiter((u in pos for u in ids), dtype=bool, count=len(ids))
        user_idx = np.fromiter((pos.get(u, -1) for u in ids), dtype=np.int64, count=len(ids))

    seen = seen_matrix(dataset, excluded)
    if seen is not None and new is not None:  # nobody has seen a new item: empty columns
        seen = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], n_total))
    n_cols = n_total if candidates is None else len(candidates)
    kk = min(int(k), n_cols)
    idx = np.zeros((len(asked), kk), dtype=np.int64)
    val = np.full((len(asked), kk), -np.inf, dtype=np.float32)
    if known.any():
        model.eval()
        # candidates and a model whose scorer takes them: only the candidates' columns are
        # scored (a batch costs len(candidates) columns, not n_items); new items: their
        # columns follow the catalogue's, on the same propagation
        scorer = _run_scorer(model, candidates, new, dataset.n_items)
        if scorer is not None:  # scores n_cols columns: the candidates' (or every column)
            if seen is not None and candidates is not None:
                seen = seen[:, candidates]
            at, val[known] = top_k(scorer, user_idx[known], kk, n_cols, exclude=seen,
                                   batch_size=batch_size, device=dev, progress=progress)
            idx[known] = at if candidates is None else candidates[at]
        else:  # a scorer of every item; top_k keeps the candidates' columns
            with torch.no_grad():
                scorer = model.scorer()
            idx[known], val[known] = top_k(
                scorer, user_idx[known], kk, n_total, exclude=seen, candidates=candidates,
                batch_size=batch_size, device=dev, progress=progress,
            )
    if not known.all():
        pop_idx, pop_val = _most_popular(dataset, candidates, kk, n_total)
        idx[~known] = pop_idx
        val[~known] = pop_val

    keep = val > -np.inf  # masked slots are at the end of a row: ranks stay 1..n
    per_user = keep.sum(axis=1)
    return Recommendations(
        user_id=np.repeat(np.asarray(asked).astype(str), per_user),
        item_id=np.asarray(item_ids)[idx[keep]],
        rank=np.broadcast_to(np.arange(1, kk + 1, dtype=np.int32), idx.shape)[keep],
        score=val[keep],
        k=int(k),
        popular_users=[str(u) for u in np.asarray(asked)[~known]],
        excluded=excluded,
    )


@torch.no_grad()
def _run_scorer(model: Any, candidates: np.ndarray | None, new: torch.Tensor | None, n_items: int) -> Scorer | None:
    """The scorer :func:`recommend_run` ranks with: ``users -> scores`` of the
    ``candidates`` (positions in the catalogue followed by the ``new`` items, sorted), or
    of every column (catalogue, then new items) when there are none. ``new``: the
    early-fused features of the items that arrived after training (the run has the
    cold-item path, :func:`read_new_items`); the new items' columns come from
    ``scorer(new_items=...)`` on the same propagation as the catalogue's.

    Without new items, ``None`` for a model whose
    :meth:`~graphrec.models.base.Recommender.scorer` does not take ``candidates`` (one
    registered by another package that overrides ``scorer()``): the caller then scores
    every item and keeps the candidates' columns. Every graphrec ranking model takes
    them (inner-product models slice the candidates' item rows once, the content kNN
    baseline and the cold path take the candidates' columns of their graph)."""
    if new is not None:
        if candidates is None:
            return model.scorer(new_items=new)
        catalogue = torch.as_tensor(candidates[candidates < n_items])
        fresh = torch.as_tensor(candidates[candidates >= n_items] - n_items, device=new.device)
        return model.scorer(catalogue, new_items=new.index_select(0, fresh))
    if candidates is None:
        return None
    from graphrec.models.base import Recommender

    if not isinstance(model, Recommender):
        return None
    try:
        takes = "candidates" in inspect.signature(model.scorer).parameters
    except (TypeError, ValueError):
        takes = False
    if not takes:
        return None
    return model.scorer(torch.as_tensor(candidates))


def _most_popular(
    dataset: Dataset, candidates: np.ndarray | None, k: int, n_total: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates with the most training interactions (ties: lower index first)
    and their counts; ``n_total`` counts new items (none) after the catalogue's."""
    n_total = dataset.n_items if n_total is None else n_total
    counts = np.bincount(dataset.train.indices, minlength=n_total)
    cand = np.arange(n_total) if candidates is None else candidates
    order = np.lexsort((cand, -counts[cand]))[:k]
    return cand[order], counts[cand[order]].astype(np.float32)


# --------------------------------------------------------------------------- files
def read_new_items(
    path: str | os.PathLike, model: Any, dataset: Dataset, run: Any = "the run", model_name: str | None = None
) -> tuple[np.ndarray, torch.Tensor]:
    """The ids and early-fused features of items that arrived after training, from an
    ``.npz`` holding ``item_id`` (m ids) and one (m x d) array per modality the run's
    cold-item path fuses (the names of the dataset's features, e.g. ``image``, ``text``),
    fused as the catalogue's. One-line errors for a run without the path, a missing or
    malformed array, or an id the catalogue already has."""
    from graphrec.graphs.fuse import default_modalities, fuse_features
    from graphrec.models.coldstart import ColdItemRecommender

    if not isinstance(model, ColdItemRecommender):
        from graphrec.train.registry import get_model

        entry = None if model_name is None else get_model(model_name, "ranking")
        if entry is not None and not entry.trainable:  # no parameters, so no --cold-path (content kNN)
            raise ConfigError(
                f"run {run} is {entry.title} ({model_name}), which ranks the catalogue's items only and has no "
                "cold-item path: train a model with one for new items, e.g. graphrec train mmgef --cold-path content"
            )
        raise ConfigError(
            f"run {run} was trained without the cold-item path, which scores new items from their features: "
            "train it with --cold-path content"
        )
    mods = tuple(model.cold_modalities or default_modalities(dataset.item_features))
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz of new items ({' '.join(str(e).split())[:120]})") from None
    if "item_id" not in arrays:
        raise DataError(f"{path} has no item_id array: save the new items' ids as item_id=[...]")
    raw = np.asarray(arrays["item_id"])
    if raw.ndim != 1:
        raise DataError(f"{path}: item_id has shape {raw.shape}: save the new items' ids as one list, item_id=[...]")
    ids = raw.astype(str)
    blank = [i for i in ids.tolist() if i.strip() != i or not i]
    if blank:  # the catalogue's id files strip spaces: ' 5' would be another item than '5'
        raise DataError(f"{path}: new item id {blank[0]!r} is empty or has surrounding spaces: save the ids as written "
                        "in the catalogue")
    missing = [m for m in mods if m not in arrays]
    if missing:
        raise DataError(
            f"{path} has no {missing[0]!r} array: the run's cold-item path fuses {', '.join(mods)}; "
            f"save one ({len(ids)} x d) array per modality"
        )
    for m in mods:
        a = arrays[m]
        want = dataset.item_features[m].shape[1]
        if a.ndim != 2 or a.shape != (len(ids), want) or not np.issubdtype(a.dtype, np.number):
            raise DataError(f"{path}: {m!r} has shape {a.shape} ({a.dtype}), expected ({len(ids)}, {want}) numbers")
        bad_rows = ~np.isfinite(a).all(axis=1)
        if bad_rows.any():
            r = int(np.flatnonzero(bad_rows)[0])
            raise DataError(f"{path}: {m!r} row {r} (new item {str(ids[r])!r}) contains NaN or inf: replace the row with "
                            "zeros to mark the modality as missing")
    known = np.isin(ids, np.asarray(dataset.item_ids).astype(str))
    if known.any():
        raise DataError(f"{path}: new item id {str(ids[known][0])!r} is already an item of the catalogue: give new items "
                        "ids of their own (the catalogue's items are scored without --new-items)")
    _, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        twice = first[counts > 1].min()
        again = int(np.flatnonzero(ids == ids[twice])[1])
        raise DataError(f"{path}: new item id {str(ids[twice])!r} is listed twice (rows {twice} and {again} of item_id): "
                        "list each new item once")
    empty = ~np.any([np.asarray(arrays[m]).any(axis=1) for m in mods], axis=0)
    if empty.any():  # zeros mark a missing modality; every modality missing leaves nothing to score from
        shown = ", ".join(repr(str(i)) for i in ids[empty][:3]) + (" ..." if empty.sum() > 3 else "")
        warnings.warn(f"{path}: {int(empty.sum())} new item(s) ({shown}) have no content (zeros in every modality "
                      f"of {', '.join(mods)}): they are scored as an item without content, the same for all of them",
                      GraphrecNote, stacklevel=2)
    unused = sorted(set(arrays) - {"item_id", *mods})
    if unused:
        warnings.warn(f"{path}: {', '.join(map(repr, unused))} not used: the run's cold-item path fuses "
                      f"{', '.join(mods)} (--cold-modalities when it trained)", GraphrecNote, stacklevel=2)
    x = fuse_features({m: arrays[m] for m in mods}, list(mods)).x
    return ids, torch.from_numpy(x)


def _parquet_module() -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"writing .parquet needs pyarrow, which cannot be imported ({why}): pip install 'graphrec[parquet]', "
            "or write a .csv file"
        ) from None
    return pq


def check_recommendations_output(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: an existing file
    without ``overwrite``, a folder, an unwritable parent (:func:`graphrec._atomic.check_output`),
    a suffix other than ``.csv`` / ``.parquet``, ``.parquet`` without pyarrow."""
    out = Path(out)
    check_output(out, overwrite, option="--out", kind="file", suffixes=tuple(FORMATS))
    if out.suffix.lower() == ".parquet":
        _parquet_module()
    return out


def write_recommendations(
    recs: Recommendations, out: str | os.PathLike, overwrite: bool = False, progress: bool = False
) -> Path:
    """Write ``recs`` to ``out`` (``.csv``: header ``user_id,item_id,rank,score``, ids as
    text, CSV-quoted when needed, scores with 9 significant digits, exact for float32;
    ``.parquet``: string, string, int32, float32 columns) through a temporary file in the
    same folder, renamed into place at the end: an interrupted write leaves no partial
    file and never destroys an existing one. ``progress``: a tqdm bar over the rows of a
    CSV file of more than one block of :data:`graphrec._csv.CHUNK_ROWS` rows (10M rows
    take 15-20 s)."""
    out = check_recommendations_output(out, overwrite)
    with atomic_file(out) as tmp:  # after removing the temporaries of killed writes
        if out.suffix.lower() == ".csv":
            _write_csv(recs, str(tmp), progress)
        else:
            _write_parquet(recs, str(tmp))
        if out.exists() and not overwrite:  # created meanwhile by someone else
            raise ConfigError(f"{out} already exists: choose another output or pass overwrite=True (CLI: --overwrite)")
    return out


def _write_csv(recs: Recommendations, path: str, progress: bool = False) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        if not progress or len(recs) <= _csv.CHUNK_ROWS:  # one block: nothing to follow
            _csv.write_columns(f, recs.columns())
            return
        with counter(True, "write", total=len(recs), unit="row", unit_scale=True, leave=False) as bar:
            _csv.write_columns(f, recs.columns(), progress=bar.update)


def _write_parquet(recs: Recommendations, path: str) -> None:
    pq = _parquet_module()
    import pyarrow as pa

    table = pa.table({
        "user_id": _arrow_strings(pa, recs.user_id),
        "item_id": _arrow_strings(pa, recs.item_id),
        "rank": pa.array(recs.rank.astype(np.int32)),
        "score": pa.array(recs.score.astype(np.float32)),
    })
    pq.write_table(table, path)


def _arrow_strings(pa: Any, column: np.ndarray) -> Any:
    """``column`` as an Arrow string array. numpy's fixed-width unicode converts in C++,
    without a Python ``str`` per row (``.tolist()``: 10M ids made 10M str objects). pyarrow
    ends an id at a NUL character: a column where fewer characters arrived than were sent,
    or a column of objects, goes through its Python strings as before."""
    import pyarrow.compute as pc

    col = np.ascontiguousarray(column)
    if col.dtype.kind == "U" and col.dtype.itemsize:
        arr = pa.array(col, type=pa.string())
        if (pc.sum(pc.utf8_length(arr)).as_py() or 0) == np.count_nonzero(col.view(np.uint32)):
            return arr
    return pa.array(col.tolist(), type=pa.string())
