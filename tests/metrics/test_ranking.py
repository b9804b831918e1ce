"""Top-K ranking metrics: hand-computed cases and agreement with RecBole 1.2.1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.metrics import (
    METRICS,
    check_metrics,
    metric_names,
    ranking_metrics,
    ranking_per_user,
    ranking_sums,
)

# Three users, K = 1, 2, 3:
#   u0: hits at ranks 1 and 3, 2 positives
#   u1: hits at ranks 2 and 3, 4 positives (more than K)
#   u2: no hit, 1 positive
HITS = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 0]], dtype=torch.bool)
NPOS = torch.tensor([2, 4, 1])
A = 1 / math.log2(3)  # discount of rank 2; rank 3 discounts by 1/log2(4) = 1/2

EXPECTED_PER_USER = {
    "recall@1": [1 / 2, 0, 0],
    "recall@2": [1 / 2, 1 / 4, 0],
    "recall@3": [1, 2 / 4, 0],
    "precision@1": [1, 0, 0],
    "precision@2": [1 / 2, 1 / 2, 0],
    "precision@3": [2 / 3, 2 / 3, 0],
    "hit@1": [1, 0, 0],
    "hit@2": [1, 1, 0],
    "hit@3": [1, 1, 0],
    "mrr@1": [1, 0, 0],
    "mrr@2": [1, 1 / 2, 0],
    "mrr@3": [1, 1 / 2, 0],
    # IDCG over min(|P|, K) ideal positions
    "ndcg@1": [1, 0, 0],
    "ndcg@2": [1 / (1 + A), A / (1 + A), 0],
    "ndcg@3": [(1 + 1 / 2) / (1 + A), (A + 1 / 2) / (1 + A + 1 / 2), 0],
    # sum of precision@j at hit positions j <= K, over min(|P|, K)
    "map@1": [1, 0, 0],
    "map@2": [1 / 2, (1 / 2) / 2, 0],
    "map@3": [(1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 3, 0],
}


def test_hand_computed_per_user():
    got = ranking_per_user(HITS, NPOS, [1, 2, 3])
    assert set(got) == set(EXPECTED_PER_USER)
    for key, want in EXPECTED_PER_USER.items():
        np.testing.assert_allclose(got[key].numpy(), want, rtol=0, atol=1e-12, err_msg=key)


def test_hand_computed_means_and_sums():
    means = ranking_metrics(HITS, NPOS, [1, 2, 3])
    sums = ranking_sums(HITS, NPOS, [1, 2, 3])
    assert means["recall@3"] == pytest.approx(0.5)
    assert means["map@3"] == pytest.approx(11 / 27)
    assert means["mrr@2"] == pytest.approx(0.5)
    assert means["precision@3"] == pytest.approx(4 / 9)
    for key, want in EXPECTED_PER_USER.items():
        assert means[key] == pytest.approx(sum(want) / 3, abs=1e-12), key
        assert float(sums[key]) == pytest.approx(sum(want), abs=1e-12), key
        assert sums[key].dim() == 0


def test_float_hits_and_wider_matrix_give_same_values():
    wide = torch.cat([HITS, torch.ones(3, 4, dtype=torch.bool)], dim=1).float()
    a = ranking_metrics(HITS, NPOS, [1, 2, 3])
    b = ranking_metrics(wide, NPOS.numpy(), [1, 2, 3])
    assert a == b


def test_sums_accumulate_over_batches():
    gen = torch.Generator().manual_seed(1)
    hits = torch.rand(40, 10, generator=gen) < 0.3
    npos = hits.sum(1) + torch.randint(1, 4, (40,), generator=gen)
    whole = ranking_sums(hits, npos, [1, 5, 10])
    parts = [ranking_sums(hits[i : i + 7], npos[i : i + 7], [1, 5, 10]) for i in range(0, 40, 7)]
    for key, val in whole.items():
        assert float(val) == pytest.approx(sum(float(p[key]) for p in parts), abs=1e-12)


def test_users_without_positives_score_zero():
    got = ranking_per_user(torch.zeros(2, 3, dtype=torch.bool), torch.tensor([0, 0]), [1, 3])
    for key, val in got.items():
        assert torch.all(val == 0), key
        assert torch.isfinite(val).all()


def test_names_order_and_validation():
    assert METRICS == ("recall", "ndcg", "precision", "hit", "mrr", "map")
    assert metric_names(["NDCG", "recall"], [20, 10, 20]) == [
        "ndcg@10",
        "ndcg@20",
        "recall@10",
        "recall@20",
    ]
    assert check_metrics("Recall", np.int64(5)) == (("recall",), (5,))
    assert list(ranking_metrics(HITS, NPOS, 2, ["hit"])) == ["hit@2"]
    with pytest.raises(ConfigError, match="unknown ranking metric 'auc'"):
        ranking_metrics(HITS, NPOS, [1], ["recall", "auc"])
    with pytest.raises(ConfigError, match="K=0"):
        check_metrics(METRICS, [0, 10])
    with pytest.raises(ConfigError, match="not an integer"):
        check_metrics(METRICS, [2.5])
    with pytest.raises(ConfigError, match="no ranking metric"):
        check_metrics([], [1])
    with pytest.raises(ConfigError, match="exceeds the 3 ranked positions"):
        ranking_metrics(HITS, NPOS, [5])


# ---------------------------------------------------------------- RecBole equivalence


def _recbole_results(pos_index: torch.Tensor, pos_len: torch.Tensor, ks: list[int], monkeypatch):
    """Averages and per-user values from recbole.evaluator's own metric classes."""
    # RecBole 1.2.1 still uses np.float (removed in numpy 1.24) in NDCG, MRR and MAP
    monkeypatch.setattr(np, "float", float, raising=False)
    from recbole.evaluator.collector import DataStruct
    from recbole.evaluator.metrics import MAP, MRR, NDCG, Hit, Precision, Recall

    config = {"topk": ks, "metric_decimal_place": 12}
    data = DataStruct()
    # exactly what recbole's Collector stores for full ranking: hit flags, then |P_u|
    data.set("rec.topk", torch.cat([pos_index.int(), pos_len.int().view(-1, 1)], dim=1))
    means: dict[str, float] = {}
    per_user: dict[str, np.ndarray] = {}
    for cls, name in [(Recall, "recall"), (NDCG, "ndcg"), (Precision, "precision"),
                      (Hit, "hit"), (MRR, "mrr"), (MAP, "map")]:
        metric = cls(config)
        means.update(metric.calculate_metric(data))
        idx, plen = metric.used_info(data)
        values = metric.metric_info(idx, plen) if name in ("recall", "ndcg", "map") else metric.metric_info(idx)
        for k in ks:
            per_user[f"{name}@{k}"] = np.asarray(values, dtype=np.float64)[:, k - 1]
    return means, per_user


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_recbole_on_random_rankings(seed, monkeypatch):
    pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")
    ks = [1, 5, 10, 20]
    n_users, n_items = 400, 60
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(n_users, n_items, generator=gen, dtype=torch.float64)  # no ties
    # 1 .. 40 positives per user: many users have more positives than K
    n_pos = torch.randint(1, 41, (n_users,), generator=gen)
    order = torch.rand(n_users, n_items, generator=gen).argsort(dim=1)
    pos = torch.zeros(n_users, n_items, dtype=torch.bool)
    pos.scatter_(1, order, torch.arange(n_items).expand(n_users, -1) < n_pos[:, None])
    assert torch.equal(pos.sum(1), n_pos)
    top = torch.topk(scores, max(ks), dim=1).indices
    hits = pos.gather(1, top)

    want_means, want_per_user = _recbole_results(hits, n_pos, ks, monkeypatch)
    got_means = ranking_metrics(hits, n_pos, ks)
    got_per_user = ranking_per_user(hits, n_pos, ks)
    assert set(got_means) == set(want_means) == set(metric_names(METRICS, ks))
    for key in want_means:
        assert got_means[key] == pytest.approx(want_means[key], abs=1e-6), key
        np.testing.assert_allclose(
            got_per_user[key].numpy(), want_per_user[key], rtol=0, atol=1e-9, err_msg=key
        )


def test_matches_recbole_on_hand_case(monkeypatch):
    pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")
    want, _ = _recbole_results(HITS, NPOS, [1, 2, 3], monkeypatch)
    got = ranking_metrics(HITS, NPOS, [1, 2, 3])
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(3)
    hits = torch.rand(100, 20, generator=gen) < 0.2
    npos = hits.sum(1) + torch.randint(0, 5, (100,), generator=gen)
    cpu = ranking_metrics(hits, npos, [1, 10, 20])
    gpu = ranking_metrics(hits.cuda(), npos.cuda(), [1, 10, 20])
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-12)
