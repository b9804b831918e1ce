"""AUC, GAUC and logloss against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from graphrec.errors import ConfigError, DataError
from graphrec.metrics import auc, ctr_metrics, gauc, logloss


def test_auc_by_hand():
    # positives 0.8, 0.4; negatives 0.5, 0.1 -> pairs: (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert auc([1, 0, 1, 0], [0.8, 0.5, 0.4, 0.1]) == pytest.approx(0.75)
    # a tie counts one half
    assert auc([1, 0], [0.3, 0.3]) == pytest.approx(0.5)
    assert np.isnan(auc([1, 1], [0.2, 0.3]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500), 1)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_gauc_by_hand_and_against_sklearn():
    users = np.array([0, 0, 0, 1, 1, 2, 2])
    y = np.array([1, 0, 0, 1, 0, 1, 1])  # user 2 has one class: left out
    s = np.array([0.9, 0.95, 0.1, 0.2, 0.6, 0.5, 0.4])
    # user 0: pos 0.9 vs negs 0.95, 0.1 -> 1/2; user 1: 0.2 < 0.6 -> 0
    assert gauc(users, y, s) == pytest.approx(0.25)
    # impressions weighting: (3 * 0.5 + 2 * 0) / 5
    assert gauc(users, y, s, weighting="impressions") == pytest.approx(0.3)
    rng = np.random.default_rng(0)
    u = rng.integers(0, 40, 2000)
    yy = rng.integers(0, 2, 2000)
    ss = np.round(rng.random(2000), 2)
    per = [roc_auc_score(yy[u == k], ss[u == k]) for k in np.unique(u) if 0 < yy[u == k].sum() < (u == k).sum()]
    assert gauc(u, yy, ss) == pytest.approx(np.mean(per), abs=1e-12)
    with pytest.raises(ConfigError):
        gauc(u, yy, ss, weighting="clicks")


def test_gauc_weightings_differ_with_unequal_positives():
    # user 0: positives 0.9, 0.1 vs negative 0.5 -> 1/2 (2 positives, 3 samples);
    # user 1: positive 0.2 vs negative 0.6 -> 0 (1 positive, 2 samples)
    users, y, s = [0, 0, 0, 1, 1], [1, 1, 0, 1, 0], [0.9, 0.1, 0.5, 0.2, 0.6]
    assert gauc(users, y, s) == pytest.approx(0.25)  # GMMF eq. 18: users equally
    assert gauc(users, y, s, weighting="impressions") == pytest.approx(1.5 / 5)  # DIN: by samples
    assert gauc(users, y, s, weighting="positives") == pytest.approx(1 / 3)  # RecBole: by positives
    # graphrec's protocol (one positive, one negative per user): all three agree
    users, y, s = [0, 0, 1, 1, 2, 2], [1, 0, 1, 0, 0, 1], [0.7, 0.2, 0.1, 0.4, 0.3, 0.3]
    assert gauc(users, y, s) == gauc(users, y, s, weighting="impressions") == gauc(users, y, s, weighting="positives")


def test_logloss_against_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-9)
    assert np.isfinite(logloss([1, 0], [0.0, 1.0]))  # clipped, not inf


def test_bad_input():
    with pytest.raises(DataError, match="NaN"):
        auc([1, 0], [np.nan, 0.2])
    with pytest.raises(DataError, match="0 or 1"):
        auc([2, 0], [0.1, 0.2])
    # a logit is not a probability: refused, not clipped to 1e-7
    for probs in ([1.5, -0.2], [1.0, -0.2], [1.5, 0.0]):
        with pytest.raises(DataError, match=r"probabilities must be in \[0, 1\]"):
            logloss([1, 0], probs)
    m = ctr_metrics(np.array([0, 0]), np.array([1, 0]), np.array([0.7, 0.2]))
    assert m["auc"] == 1.0 and m["gauc"] == 1.0 and m["samples"] == 2 and m["positives"] == 1
