r"""Click-through-rate metrics: AUC, GAUC and logloss (pure NumPy, no model, no dataset).

AUC is the probability that a random positive is scored above a random negative, ties
counting one half. It is computed from ranks (Mann-Whitney U), with tied scores given
their average rank:

.. math::
    \mathrm{AUC} = \frac{\sum_{i \in I^+} r_i - |I^+|(|I^+| + 1)/2}{|I^+|\,|I^-|},

where :math:`r_i` is the 1-based (average) rank of sample :math:`i` among all scores.
This equals ``sklearn.metrics.roc_auc_score`` (a test checks it).

GAUC is GMMF's eq. 18 (Xiao et al., ACM MM 2022, section 4.3), the per-user AUC averaged over users:

.. math::
    \mathrm{GAUC} = \frac{1}{|U|} \sum_{u \in U} \frac{1}{|I_u^+||I_u^-|}
        \sum_{i \in I_u^+} \sum_{j \in I_u^-} \delta(p_i > p_j),

over the users :math:`U` that have both a positive and a negative sample (the AUC of a
user with one class is undefined). Ties count one half here too (eq. 18's
:math:`\delta(p_i > p_j)` would count them as misses, rewarding nothing for a constant
scorer either way; one half makes a constant scorer exactly 0.5). The paper weights
every user equally (``weighting="uniform"``, the default, what training reports); DIN's
variant weights each user by its number of samples (``weighting="impressions"``) and
RecBole's ``GAUC`` by its number of positives (``weighting="positives"``, equal to
RecBole's value). The three agree when every user has as many samples and positives,
as under graphrec's CTR protocol (one positive and one negative per user and split);
on other data they differ, so compare a GAUC with RecBole's only with ``"positives"``.

Logloss is the mean binary cross-entropy of probabilities clipped to
:math:`[\epsilon, 1 - \epsilon]`, :math:`\epsilon = 10^{-7}`; a value outside
:math:`[0, 1]` (a logit, say) is refused, not clipped.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from graphrec.errors import ConfigError, DataError

__all__ = ["CTR_METRICS", "GAUC_WEIGHTINGS", "auc", "gauc", "logloss", "ctr_metrics"]

CTR_METRICS: tuple[str, ...] = ("auc", "gauc", "logloss")
_EPS = 1e-7
#: how :func:`gauc` weights users: equally (GMMF eq. 18), by samples (DIN), by positives (RecBole)
GAUC_WEIGHTINGS: tuple[str, ...] = ("uniform", "impressions", "positives")


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise DataError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or inf: the model diverged; lower the learning rate")
    return y.astype(bool), s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (module doc); NaN when only one class is present."""
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(s)  # average ranks for ties
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray, weighting: str = "uniform") -> float:
    """Per-user AUC averaged over users with both classes (GMMF eq. 18; module doc).

    ``weighting``: each user's weight in the average: ``"uniform"`` (GMMF eq. 18),
    ``"impressions"`` (its samples, DIN) or ``"positives"`` (its positives, RecBole).
    Vectorised: one sort by (user, score) gives within-user average ranks.
    """
    if weighting not in GAUC_WEIGHTINGS:
        raise ConfigError(f"weighting {weighting!r} is not one of {', '.join(GAUC_WEIGHTINGS)}")
    y, s = _check(labels, scores)
    u = np.asarray(users).reshape(-1)
    if u.shape != y.shape:
        raise DataError(f"users ({u.size}) and labels ({y.size}) differ in length")
    if y.size == 0:
        return float("nan")
    _, uid = np.unique(u, return_inverse=True)
    order = np.lexsort((s, uid))
    uo, so, yo = uid[order], s[order], y[order]
    n = uo.size
    # runs of equal (user, score): average of their positions
    new_group = np.ones(n, bool)
    new_group[1:] = (uo[1:] != uo[:-1]) | (so[1:] != so[:-1])
    gid = np.cumsum(new_group) - 1
    pos = np.arange(n, dtype=np.float64)
    g_sum = np.bincount(gid, weights=pos)
    g_cnt = np.bincount(gid)
    avg_pos = (g_sum / g_cnt)[gid]
    n_users = int(uo.max()) + 1
    start = np.zeros(n_users, np.float64)
    counts = np.bincount(uo, minlength=n_users)
    start[1:] = np.cumsum(counts)[:-1]
    rank = avg_pos - start[uo] + 1.0  # 1-based rank inside the user's samples
    n_pos = np.bincount(uo, weights=yo.astype(np.float64), minlength=n_users)
    n_neg = counts - n_pos
    rank_sum = np.bincount(uo, weights=np.where(yo, rank, 0.0), minlength=n_users)
    ok = (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        return float("nan")
    per_user = (rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2.0) / (n_pos[ok] * n_neg[ok])
    w = {"uniform": np.ones(per_user.size), "impressions": counts[ok].astype(np.float64), "positives": n_pos[ok]}
    return float((per_user * w[weighting]).sum() / w[weighting].sum())


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [1e-7, 1 - 1e-7]); a
    probability outside [0, 1] is a :class:`DataError`."""
    y, p = _check(labels, probs)
    if y.size == 0:
        return float("nan")
    if p.min() < 0.0 or p.max() > 1.0:
        raise DataError(
            f"probabilities must be in [0, 1], got values from {p.min():.6g} to {p.max():.6g}: "
            "pass click probabilities (e.g. the sigmoid of logits), not scores"
        )
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def ctr_metrics(users: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """``{"auc", "gauc", "logloss", "samples", "positives"}`` of one evaluated split."""
    y = np.asarray(labels)
    return {
        "auc": auc(y, probs),
        "gauc": gauc(users, y, probs),
        "logloss": logloss(y, probs),
        "samples": int(y.size),
        "positives": int(np.asarray(y).sum()),
    }
