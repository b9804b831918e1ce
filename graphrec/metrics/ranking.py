r"""Top-K ranking metrics with RecBole 1.2.1's definitions and result names.

All functions take the *hit matrix* of a ranking, never the scores:

* ``hits``: ``[n_users, M]`` (bool or 0/1 float); ``hits[u, j] = 1`` when the item the
  model ranked at position ``j + 1`` for user ``u`` is a positive of ``u``;
* ``n_pos``: ``[n_users]``, the number of positives :math:`|P_u|` of each user in the
  evaluated split (also those ranked below position ``M``).

Several cut-offs are computed at once from one top-``max(K)`` hit matrix (``M >= max(K)``).
With :math:`h_{uj} \in \{0, 1\}` the hit at rank :math:`j` (1-based) and
:math:`c_{uK} = \sum_{j \le K} h_{uj}` the number of hits in the top :math:`K`:

.. math::

    \mathrm{recall@K}(u)    &= c_{uK} / |P_u| \\
    \mathrm{precision@K}(u) &= c_{uK} / K \\
    \mathrm{hit@K}(u)       &= \mathbb{1}[c_{uK} > 0] \\
    \mathrm{ndcg@K}(u)      &= \frac{\sum_{j \le K} h_{uj} / \log_2(j + 1)}
                                     {\sum_{j \le \min(|P_u|, K)} 1 / \log_2(j + 1)} \\
    \mathrm{mrr@K}(u)       &= 1 / r_u \text{ if } r_u \le K \text{ else } 0,
                               \quad r_u = \min\{j : h_{uj} = 1\} \\
    \mathrm{map@K}(u)       &= \frac{1}{\min(|P_u|, K)} \sum_{j \le K} h_{uj} \, c_{uj} / j

These are exactly the per-user values of ``recbole.evaluator.metrics`` (``Recall``,
``NDCG``, ``Precision``, ``Hit``, ``MRR``, ``MAP``); the reported metric is the mean over
users, named ``"<metric>@<K>"`` (e.g. ``"recall@20"``). A test compares both on random
rankings. A user with :math:`|P_u| = 0` gets 0 for every metric (RecBole would divide
by zero); evaluators exclude such users before averaging.

Everything is vectorised torch code that runs on the device of ``hits``; the per-user
values are computed in float64 (float32 on devices without float64, e.g. MPS).
:func:`ranking_sums` returns per-user *sums* so that an evaluator can accumulate over
user batches and divide by the number of users at the end; :func:`ranking_metrics`
returns the averages directly.
"""

from __future__ import annotations

import operator
from typing import Iterable, Sequence

import torch

from graphrec.errors import ConfigError

__all__ = [
    "METRICS",
    "check_metrics",
    "metric_names",
    "ranking_per_user",
    "ranking_sums",
    "ranking_metrics",
]

METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit", "mrr", "map")


def check_metrics(
    metrics: Iterable[str] | str = METRICS, ks: Iterable[int] | int = (10, 20, 50)
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Validate and normalise metric names and cut-offs.

    Returns ``(metrics, ks)``: names lower-cased, duplicates removed (first occurrence
    kept), cut-offs as sorted distinct ints. Raises :class:`ConfigError` for an unknown
    metric, an empty list or a cut-off that is not an integer >= 1.
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    if not hasattr(ks, "__iter__"):
        ks = [ks]  # a single cut-off
    names: list[str] = []
    for m in metrics:
        name = str(m).strip().lower()
        if name not in METRICS:
            raise ConfigError(f"unknown ranking metric {m!r}: use some of {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError(f"no ranking metric given: use some of {', '.join(METRICS)}")
    cutoffs: set[int] = set()
    for k in ks:
        try:
            if isinstance(k, bool):
                raise TypeError
            k = operator.index(k)  # int or numpy integer; not float / str
        except TypeError:
            raise ConfigError(
                f"cut-off K={k!r} is not an integer: use integers >= 1, e.g. 10,20,50"
            ) from None
        if k < 1:
            raise ConfigError(f"cut-off K={k} is invalid: use integers >= 1, e.g. 10,20,50")
        cutoffs.add(k)
    if not cutoffs:
        raise ConfigError("no cut-off K given: use integers >= 1, e.g. 10,20,50")
    return tuple(names), tuple(sorted(cutoffs))


def metric_names(metrics: Iterable[str] | str = METRICS, ks: Iterable[int] | int = (10, 20, 50)) -> list[str]:
    """Result names (``"recall@10"``, ...) in the order the functions here return them."""
    names, cutoffs = check_metrics(metrics, ks)
    return [f"{m}@{k}" for m in names for k in cutoffs]


def _value_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def ranking_per_user(
    hits: torch.Tensor,
    n_pos: torch.Tensor,
    ks: Sequence[int] | int,
    metrics: Sequence[str] | str = METRICS,
) -> dict[str, torch.Tensor]:
    """Per-user metric values: ``{"recall@10": tensor [n_users], ...}``.

    Args:
        hits: ``[n_users, M]`` bool / 0-1 tensor, ``M >= max(ks)`` (see module doc).
        n_pos: ``[n_users]`` number of positives of each user.
        ks: cut-offs (each ``1 <= K <= M``).
        metrics: names from :data:`METRICS`.
    """
    names, cutoffs = check_metrics(metrics, ks)
    if hits.dim() != 2:
        raise ValueError(f"hits must be a 2-D [n_users, K] tensor, got shape {tuple(hits.shape)}")
    n_users, width = hits.shape
    if cutoffs[-1] > width:
        raise ConfigError(
            f"cut-off K={cutoffs[-1]} exceeds the {width} ranked positions given: "
            f"rank at least {cutoffs[-1]} items"
        )
    n_pos = torch.as_tensor(n_pos, device=hits.device).reshape(-1)
    if n_pos.numel() != n_users:
        raise ValueError(f"n_pos has {n_pos.numel()} entries for {n_users} users")
    dtype = _value_dtype(hits.device)
    dev = hits.device
    h = hits[:, : cutoffs[-1]].to(dtype)
    width = h.shape[1]
    npos = n_pos.to(dtype)
    npos_safe = npos.clamp_min(1.0)  # |P_u| = 0 -> every metric is 0 (hits are 0 too)
    ranks = torch.arange(1, width + 1, device=dev, dtype=dtype)  # j = 1..M
    k_idx = torch.tensor(cutoffs, device=dev, dtype=torch.long) - 1  # columns of the cut-offs
    k_val = ranks[k_idx]  # [nK]

    cum = h.cumsum(dim=1)  # c_uj
    c_k = cum[:, k_idx]  # [n, nK]
    out: dict[str, torch.Tensor] = {}
    # min(|P_u|, K) as [n, nK]; at least 1 (users without positives give 0 anyway)
    min_pos_k = torch.minimum(npos_safe[:, None], k_val[None, :])
    for name in names:
        if name == "recall":
            val = c_k / npos_safe[:, None]
        elif name == "precision":
            val = c_k / k_val[None, :]
        elif name == "hit":
            val = (c_k > 0).to(dtype)
        elif name == "ndcg":
            disc = 1.0 / torch.log2(ranks + 1.0)  # 1 / log2(j + 1)
            dcg = (h * disc).cumsum(dim=1)[:, k_idx]
            idcg_table = disc.cumsum(dim=0)  # IDCG for j = 1..M ideal hits
            idcg = idcg_table[min_pos_k.long() - 1]
            val = dcg / idcg
        elif name == "mrr":
            # first hit position (argmax returns the first maximal entry); 0 if no hit
            first = h.argmax(dim=1)
            has = h.gather(1, first[:, None]).squeeze(1) > 0
            rank1 = (first + 1).to(dtype)
            rr = torch.where(has, 1.0 / rank1, torch.zeros_like(rank1))
            val = torch.where(rank1[:, None] <= k_val[None, :], rr[:, None], torch.zeros_like(c_k))
        else:  # map
            ap = (h * cum / ranks).cumsum(dim=1)[:, k_idx]
            val = ap / min_pos_k
        for col, k in enumerate(cutoffs):
            out[f"{name}@{k}"] = val[:, col]
    return out


def ranking_sums(
    hits: torch.Tensor,
    n_pos: torch.Tensor,
    ks: Sequence[int] | int,
    metrics: Sequence[str] | str = METRICS,
) -> dict[str, torch.Tensor]:
    """Per-user metric values summed over the users of ``hits``.

    Returns ``{"recall@10": 0-d tensor, ...}`` on the device of ``hits`` (no host
    synchronisation), to be accumulated over user batches and divided by the total
    number of users (see :func:`graphrec.train.evaluate.evaluate_ranking`).
    """
    return {k: v.sum() for k, v in ranking_per_user(hits, n_pos, ks, metrics).items()}


def ranking_metrics(
    hits: torch.Tensor,
    n_pos: torch.Tensor,
    ks: Sequence[int] | int,
    metrics: Sequence[str] | str = METRICS,
) -> dict[str, float]:
    """Metric averages over the users of ``hits``: ``{"recall@10": float, ...}``.

    Every user in ``hits`` counts in the mean (pass only users with positives, as
    RecBole does). With zero users the values are NaN.
    """
    n = hits.shape[0]
    sums = ranking_sums(hits, n_pos, ks, metrics)
    return {k: (float(v) / n if n else float("nan")) for k, v in sums.items()}
