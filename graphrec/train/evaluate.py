r"""Full-ranking evaluation of a scorer on a dataset split (RecBole-compatible).

For every evaluated user :math:`u` the scorer gives a score :math:`s_{ui}` to *every*
item (full ranking, no sampled negatives). Items the user already interacted with in
the splits the protocol masks get :math:`s_{ui} = -\infty`, except, under ``recbole``,
the user's positives in the evaluated split (RecBole masks a user's used items minus
its positives: an item interacted with in training and again in the test is ranked and
can be a hit there; under ``mmrec`` it stays masked, as MMRec does):

=============  ====================  ====================
protocol       split ``"valid"``     split ``"test"``
=============  ====================  ====================
``recbole``    train                 train + valid
``mmrec``      train                 train
=============  ====================  ====================

The top :math:`\max K` items (``torch.topk``) give the hit matrix
:math:`h_{uj} = \mathbb{1}[\text{item at rank } j \in P_u]`, with :math:`P_u` the user's
positives in the split; a masked item never counts as a hit. The per-user metrics of
:mod:`graphrec.metrics.ranking` are averaged over the users with :math:`|P_u| > 0`:

.. math::  \mathrm{metric@K} = \frac{1}{|U^+|} \sum_{u \in U^+} \mathrm{metric@K}(u),
           \qquad U^+ = \{u : |P_u| > 0\}

Subset evaluation (``items``, e.g. the cold-start items): :math:`P_u` is restricted to
the subset and :math:`U^+` to the users with a positive in it, while the ranking is
still over *all* items (the model is not told which items are evaluated).

Users are processed in batches of at most ``batch_size`` (fewer when the catalogue is large:
a batch's score block holds at most :data:`MAX_BATCH_SCORES` scores, so a million-item
catalogue does not need gigabytes per batch): scores ``[B, n_items]``, the mask and
the positives are built on the device from CSR indices (never an ``n_items x n_items``
or ``n_users x n_items`` dense matrix), and per-user metric sums are accumulated on the
device; the loop is over batches, never over users.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphrec import distributed
from graphrec._device import resolve_device
from graphrec._progress import tracked
from graphrec.data.dataset import Dataset
from graphrec.distributed import Shard
from graphrec.errors import ConfigError, GraphrecError
from graphrec.metrics.ranking import METRICS, check_metrics, ranking_sums
from graphrec.nn.csr import csr_row_entries

__all__ = [
    "MAX_BATCH_SCORES",
    "PROTOCOLS",
    "batch_scores",
    "Scorer",
    "evaluate_ranking",
    "evaluate_cold_start",
    "masked_splits",
    "most_popular_scorer",
]

PROTOCOLS: tuple[str, ...] = ("recbole", "mmrec")

#: the most scores one evaluation batch holds (2^25 float32 = 128 MiB): with a million
#: items a batch is 33 users; catalogues up to 65,536 items keep the default 512 users
MAX_BATCH_SCORES: int = 1 << 25

#: ``scorer(users) -> scores``: users a LongTensor on the evaluation device, scores a
#: float tensor ``[len(users), n_items]`` on that device. The evaluator overwrites the
#: masked entries of the returned tensor in place: return a fresh tensor.
Scorer = Callable[[torch.Tensor], torch.Tensor]


def masked_splits(split: str, protocol: str = "recbole") -> tuple[str, ...]:
    """The splits whose items are masked when ranking for ``split`` under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {protocol!r}: use recbole or mmrec")
    if split == "valid":
        return ("train",)
    if split == "test":
        return ("train", "valid") if protocol == "recbole" else ("train",)
    raise ConfigError(f"cannot evaluate split {split!r}: use valid or test")


def _without_pattern(mask: sp.csr_matrix, positives: sp.spmatrix) -> sp.csr_matrix:
    """``mask``'s entries outside ``positives``' pattern (both n_users x n_items): the
    items a user interacted with before that are not among its positives now."""
    both = sp.csr_matrix(mask.multiply(positives))
    both.eliminate_zeros()
    if not both.nnz:  # the usual case (no pair in two splits): the mask as it is
        return mask
    both.data[:] = 1
    out = sp.csr_matrix(mask.astype(bool).astype(np.int8) - both.astype(np.int8))
    out.eliminate_zeros()
    return out


def _csr_to_torch(m: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(m.indptr.astype(np.int64), device=device),
        torch.as_tensor(m.indices.astype(np.int64), device=device),
    )


def _gather_rows(
    indptr: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entries of CSR rows ``rows``: (batch row position, column, per-row count)."""
    pos, entry = csr_row_entries(indptr, rows)
    return pos, indices[entry], indptr[rows + 1] - indptr[rows]


def _indices(values: np.ndarray | Sequence[int], n: int, noun: str, example: str) -> np.ndarray:
    """``values`` as a sorted int64 array of distinct indices in ``[0, n)``; else a one-line
    :class:`ConfigError` naming the ``noun`` (``item``, ``user``)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(f"{noun}s must be a 1-D array of {noun} indices{example}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ConfigError(f"{noun} subset contains indices outside [0, {n}): pass {noun} indices, not ids")
    return np.unique(arr)


def _restrict(m: sp.csr_matrix, items: np.ndarray | None) -> sp.csr_matrix:
    """``m`` with only the columns in ``items`` kept (same shape)."""
    if items is None:
        return m
    keep = np.zeros(m.shape[1], dtype=np.float32)
    keep[items] = 1.0
    out = sp.csr_matrix(m @ sp.diags(keep))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _evaluate_groups(
    scorer: Scorer,
    dataset: Dataset,
    split: str,
    groups: Mapping[str, np.ndarray | None],
    *,
    protocol: str,
    ks: Sequence[int],
    metrics: Sequence[str],
    batch_size: int,
    device: str | torch.device,
    progress: bool | float,
    shard: Shard | None = None,
    users: np.ndarray | Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """Evaluate several item subsets (``None`` = all items) with one ranking pass, over
    the users with a positive in some subset (among ``users`` when given).

    With a ``shard`` (:mod:`graphrec.distributed`), this rank scores the user batches
    ``rank, rank + world, ...``; the per-batch sums are gathered and added in batch order,
    as one process adds them, so every rank returns exactly one process's metrics."""
    if hasattr(scorer, "scorer") and isinstance(scorer, torch.nn.Module):  # a model, not its scorer
        raise ConfigError(f"got the model {type(scorer).__name__}, not a scorer: pass model.scorer() "
                          "(in model.eval() and torch.no_grad(), as graphrec.train.evaluate_model does)")
    names, cutoffs = check_metrics(metrics, ks)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    masked = masked_splits(split, protocol)
    dev = resolve_device(device)
    n_items = dataset.n_items
    batch_size = max(1, min(int(batch_size), MAX_BATCH_SCORES // max(n_items, 1)))
    target = dataset.split(split)
    group_items = {g: (None if it is None else _indices(it, n_items, "item", " (e.g. dataset.cold_items)"))
                   for g, it in groups.items()}
    pos_mats = {g: _restrict(target, it) for g, it in group_items.items()}

    mask_mat = None
    for s in masked:
        if s in dataset.splits:  # a dataset without a valid split masks train only
            mask_mat = dataset.splits[s] if mask_mat is None else mask_mat + dataset.splits[s]
    assert mask_mat is not None  # train always exists
    if dataset.hidden is not None:  # training interactions a hidden cold-start split removed: seen, as train
        mask_mat = mask_mat + dataset.hidden
    mask_mat = sp.csr_matrix(mask_mat)
    if protocol == "recbole":  # RecBole masks a user's earlier items except the split's positives
        mask_mat = _without_pattern(mask_mat, target)
    mask_mat.sort_indices()

    # evaluate the union of the users with a positive in some group (among ``users``), in index order
    chosen = np.ones(dataset.n_users, dtype=bool)
    if users is not None:  # a subset (training's sampled validation, TrainConfig.valid_users)
        chosen[:] = False
        chosen[_indices(users, dataset.n_users, "user", "")] = True
    has_pos = np.zeros(dataset.n_users, dtype=bool)
    n_eval = {}
    for g, m in pos_mats.items():
        in_group = (np.diff(m.indptr) > 0) & chosen
        has_pos |= in_group
        n_eval[g] = int(in_group.sum())
    users = np.flatnonzero(has_pos)

    mask_ptr, mask_idx = _csr_to_torch(mask_mat, dev)
    pos_csr = {g: _csr_to_torch(m, dev) for g, m in pos_mats.items()}
    users_t = torch.as_tensor(users, dtype=torch.long, device=dev)
    k_max = cutoffs[-1]
    k_rank = min(k_max, n_items)  # topk cannot return more than n_items; pad with misses
    # per batch, per group: the metric sums (added up in batch order after the loop)
    batch_sums: list[dict[str, dict[str, torch.Tensor]]] = []
    nonfinite_seen = torch.zeros((), dtype=torch.bool, device=dev)

    starts = range(0, len(users), batch_size)
    n_batches = len(starts)
    if shard is not None:
        starts = starts[shard.rank :: shard.world]
    if progress:
        delay = 0.0 if progress is True else float(progress)  # a number: a bar shown once the evaluation ran so long
        starts = tracked(starts, True, f"evaluate {split}", unit="batch", leave=False, delay=delay)
    # no_grad, not inference_mode: a scorer may cache tensors that training reuses
    with torch.no_grad():
        for start in starts:
            batch = users_t[start : start + batch_size]
            b = len(batch)
            scores = batch_scores(scorer, batch, n_items, dev)
            # the scorer's own output must be finite (NaN, +inf or -inf: diverged), checked
            # before the masking below writes -inf; once after the loop (no per-batch
            # device synchronisation)
            nonfinite_seen = nonfinite_seen | any_nonfinite(scores)
            r, c, _ = _gather_rows(mask_ptr, mask_idx, batch)
            scores[r, c] = float("-inf")
            top_val, top_idx = torch.topk(scores, k_rank, dim=1)
            ranked = top_val > float("-inf")  # masked items never count as hits
            batch_sums.append({})
            for g, (ptr, idx) in pos_csr.items():
                pr, pc, n_pos = _gather_rows(ptr, idx, batch)
                pos = torch.zeros(b, n_items, dtype=torch.bool, device=dev)
                pos[pr, pc] = True
                hits = pos.gather(1, top_idx) & ranked
                if k_rank < k_max:
                    hits = torch.cat([hits, hits.new_zeros(b, k_max - k_rank)], dim=1)
                # users without a positive in this group have all-zero metrics: summing
                # them adds nothing, the mean divides by n_eval[g] only
                batch_sums[-1][g] = ranking_sums(hits, n_pos, cutoffs, names)

    if shard is not None:
        batch_sums, nonfinite_seen = _gather_batches(batch_sums, n_batches, shard, nonfinite_seen, dev)
    sums: dict[str, dict[str, torch.Tensor]] = {g: {} for g in groups}
    for per_group in batch_sums:
        for g, values in per_group.items():
            for key, val in values.items():
                sums[g][key] = sums[g][key] + val if key in sums[g] else val

    if bool(nonfinite_seen):
        raise GraphrecError(
            f"scorer returned NaN or infinite scores at {split}: the model diverged "
            "(lower the learning rate or check the input features)"
        )
    out: dict[str, dict[str, float]] = {}
    for g in groups:
        n = n_eval[g]
        res: dict[str, float] = {}
        for m in names:
            for k in cutoffs:
                key = f"{m}@{k}"
                res[key] = float(sums[g][key]) / n if n and key in sums[g] else float("nan")
        res["users"] = n
        out[g] = res
    return out


def _gather_batches(
    mine: list[dict[str, dict[str, torch.Tensor]]],
    n_batches: int,
    shard: Shard,
    nonfinite_seen: torch.Tensor,
    device: torch.device,
) -> tuple[list[dict[str, dict[str, torch.Tensor]]], torch.Tensor]:
    """Every rank's per-batch sums, in batch order (batch ``j`` was scored by rank
    ``j % world``), and whether any rank saw a NaN or infinite score. Each slot is filled by one
    rank and zero on the others, so the sum over ranks is that rank's value exactly."""
    if not mine and n_batches == 0:
        return [], nonfinite_seen
    # (group, [(metric, dtype), ...]) in order; a rank that scored no batch learns it from the others
    layout = [(g, [(k, v.dtype) for k, v in sums.items()]) for g, sums in mine[0].items()] if mine else None
    layout = next(lay for lay in distributed.all_gather_objects(layout) if lay is not None)
    width = sum(len(keys) for _, keys in layout)
    table = torch.zeros(n_batches + 1, width, dtype=torch.float64, device=device)
    for j, per_group in enumerate(mine):
        row = torch.stack([per_group[g][k].to(torch.float64) for g, keys in layout for k, _ in keys])
        table[shard.rank + j * shard.world] = row
    table[n_batches, 0] = float(nonfinite_seen)
    distributed.all_sum(table)
    out: list[dict[str, dict[str, torch.Tensor]]] = []
    for j in range(n_batches):
        col = 0
        per_group: dict[str, dict[str, torch.Tensor]] = {}
        for g, keys in layout:
            per_group[g] = {}
            for k, dtype in keys:
                per_group[g][k] = table[j, col].to(dtype)
                col += 1
        out.append(per_group)
    return out, table[n_batches, 0] > 0


def evaluate_ranking(
    scorer: Scorer,
    dataset: Dataset,
    split: str = "valid",
    *,
    protocol: str = "recbole",
    ks: Sequence[int] = (10, 20, 50),
    metrics: Sequence[str] = METRICS,
    items: np.ndarray | Sequence[int] | None = None,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool | float = False,
    shard: Shard | None = None,
    users: np.ndarray | Sequence[int] | None = None,
) -> dict[str, float]:
    """Full-ranking top-K metrics of ``scorer`` on ``split`` (see module doc).

    Args:
        scorer: ``scorer(users) -> [len(users), n_items]`` scores on ``device``.
        dataset: the dataset; ``split`` must be ``"valid"`` or ``"test"``.
        protocol: ``"recbole"`` (valid masks train, test masks train + valid) or
            ``"mmrec"`` (both mask train only).
        ks, metrics: cut-offs and names from :data:`graphrec.metrics.METRICS`.
        items: optional item indices (e.g. ``dataset.cold_items``): only these count as
            positives and only users with a positive among them are evaluated; the
            ranking is still over all items.
        batch_size: users per batch, at most (capped so a batch holds at most
            :data:`MAX_BATCH_SCORES` scores; results do not depend on it).
        device: where scores, masks and metrics live.
        progress: show a tqdm bar over the batches; a number of seconds shows it only once
            the evaluation has run that long (training's per-epoch validation: 2.0).
        shard: in a torch.distributed group (:func:`graphrec.distributed.current`), the
            ranks split the user batches and all return the same, exact metrics; every
            rank of the group must call.
        users: optional user indices: only these users are evaluated (those of them with
            a positive in ``split``), e.g. training's sampled validation
            (:func:`graphrec.train.fit.validation_users`).

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., ..., "users": n_evaluated_users}``; metric
        values are NaN when no user has a positive.
    """
    return _evaluate_groups(
        scorer,
        dataset,
        split,
        {"all": items},
        protocol=protocol,
        ks=ks,
        metrics=metrics,
        batch_size=batch_size,
        device=device,
        progress=progress,
        shard=shard,
        users=users,
    )["all"]


def evaluate_cold_start(
    scorer: Scorer,
    dataset: Dataset,
    split: str = "test",
    *,
    protocol: str = "recbole",
    ks: Sequence[int] = (10, 20, 50),
    metrics: Sequence[str] = METRICS,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool | float = False,
    shard: Shard | None = None,
    users: np.ndarray | Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """``{"all": ..., "warm": ..., "cold": ...}`` metrics of a cold-start dataset.

    ``cold`` counts only ``dataset.cold_items`` as positives, ``warm`` only the other
    items, ``all`` every item; each averages over its own users (``"users"`` key) and
    all three rank over all items (``users``: only those users, as :func:`evaluate_ranking`).
    One scoring pass serves the three. A group without
    any positive in ``split`` is left out (under the papers' cold-start protocol valid
    and test hold cold items only: there is no ``warm``). Raises :class:`ConfigError`
    when the dataset has no cold-start split.
    """
    if dataset.cold_items is None:
        raise ConfigError(
            f"dataset {dataset.name!r} has no cold-start items: prepare it with a cold-start "
            "split or use evaluate_ranking"
        )
    cold = np.asarray(dataset.cold_items, dtype=np.int64)
    warm = np.setdiff1d(np.arange(dataset.n_items, dtype=np.int64), cold)
    groups: dict[str, np.ndarray | None] = {"all": None}
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[cold] = True
    positives = dataset.split(split).indices
    if (~is_cold[positives]).any():
        groups["warm"] = warm
    if is_cold[positives].any():
        groups["cold"] = cold
    return _evaluate_groups(
        scorer,
        dataset,
        split,
        groups,
        protocol=protocol,
        ks=ks,
        metrics=metrics,
        batch_size=batch_size,
        device=device,
        progress=progress,
        shard=shard,
        users=users,
    )


def batch_scores(scorer: Scorer, users: torch.Tensor, n_items: int, device: torch.device) -> torch.Tensor:
    """``scorer(users)`` checked (a torch tensor of ``len(users) x n_items`` scores, else a
    one-line :class:`GraphrecError` naming what it returned: another type, a numpy array
    of any shape included, or a tensor of another shape) and made writable: floating
    point, contiguous, on ``device`` (an expanded view gets its own memory before scores
    are masked in place). Shared by the evaluator and :func:`graphrec.train.recommend.top_k`."""
    b = len(users)
    scores = scorer(users)
    if not isinstance(scores, torch.Tensor):
        kind = type(scores)
        got = f"a {kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else f"a {kind.__name__}"
        got = "None" if scores is None else got
        if isinstance(scores, np.ndarray):
            got += f" of shape {scores.shape}"
            fix = "return torch.from_numpy(scores) instead"
        else:
            fix = "return its scores as one tensor"
        raise GraphrecError(f"scorer returned {got} for {b} users, but it must return a torch.Tensor of "
                            f"({b}, {n_items}) scores: {fix}")
    if tuple(scores.shape) != (b, n_items):
        raise GraphrecError(f"scorer returned {tuple(scores.shape)} for {b} users, expected ({b}, {n_items}) scores")
    scores = scores.to(device)
    if not scores.is_floating_point():
        scores = scores.float()
    if not scores.is_contiguous():
        scores = scores.contiguous()
    return scores


def any_nonfinite(scores: torch.Tensor) -> torch.Tensor:
    """Whether ``scores`` hold a NaN, +inf or -inf (a 0-d bool tensor, on the scores'
    device: no synchronisation). One min/max pass (``torch.aminmax`` propagates NaN):
    about a fifth of ``torch.isfinite(scores).all()``'s time on the CPU, and no
    ``scores``-sized mask is allocated."""
    low, high = torch.aminmax(scores)
    return ~(torch.isfinite(low) & torch.isfinite(high))


def most_popular_scorer(dataset: Dataset, device: str | torch.device = "cpu") -> Scorer:
    """Baseline scorer: every user gets the items' training interaction counts."""
    pop = np.bincount(dataset.train.indices, minlength=dataset.n_items).astype(np.float32)
    pop_t = torch.as_tensor(pop, device=resolve_device(device))

    def score(users: torch.Tensor) -> torch.Tensor:
        return pop_t.repeat(len(users), 1)

    return score
