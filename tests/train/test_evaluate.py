"""Full-ranking evaluation: masking per protocol, hand-computed numbers, subsets,
batch invariance and agreement with RecBole's metrics on the same rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphrec.data import build_dataset
from graphrec.errors import ConfigError, GraphrecError
from graphrec.metrics import METRICS, metric_names
from graphrec.train.evaluate import (
    evaluate_cold_start,
    evaluate_ranking,
    masked_splits,
    most_popular_scorer,
)

# 4 users x 6 items.
#        train        valid   test
#   u0   i0 i1        i2      i3 i4
#   u1   i2           i3      i0
#   u2   i0           i4      i5
#   u3   i3 i4 i5     -       i1
PAIRS = {
    "train": [(0, 0), (0, 1), (1, 2), (2, 0), (3, 3), (3, 4), (3, 5)],
    "valid": [(0, 2), (1, 3), (2, 4)],
    "test": [(0, 3), (0, 4), (1, 0), (2, 5), (3, 1)],
}
# Scores: every user's training items are among its best-scored items.
SCORES = torch.tensor(
    [
        [10.0, 9, 8, 1, 7, 0],
        [5.0, 0, 9, 8, 1, 2],
        [9.0, 1, 2, 3, 0, 8],
        [0.0, 5, 1, 9, 8, 7],
    ]
)
A = 1 / math.log2(3)


def _tiny():
    users, items, labels = [], [], []
    for split, pairs in PAIRS.items():
        for u, i in pairs:
            users.append(f"u{u}")
            items.append(f"i{i}")
            labels.append(split)
    return build_dataset(
        users, items, labels, user_ids=[f"u{k}" for k in range(4)], item_ids=[f"i{k}" for k in range(6)]
    )


def _fixed(scores: torch.Tensor):
    return lambda users: scores[users.cpu()].clone().to(users.device)


def _random_dataset(n_users: int = 60, n_items: int = 50, seed: int = 0):
    """Random dataset without train/valid/test overlap; every item is in train."""
    rng = np.random.default_rng(seed)
    users, items, labels = [], [], []
    for u in range(n_users):
        chosen = rng.choice(n_items, size=rng.integers(3, 15), replace=False)
        lab = rng.choice(["train", "valid", "test"], size=len(chosen), p=[0.6, 0.2, 0.2])
        lab[0] = "train"
        users += [u] * len(chosen)
        items += list(chosen)
        labels += list(lab)
    users += [0] * n_items  # user 0 trains on nothing else: make every item known
    items += list(range(n_items))
    labels += ["train"] * n_items
    u = np.array(users)
    i = np.array(items)
    lab = np.array(labels)
    # one label per pair (the first), so splits never overlap
    _, first = np.unique(u * n_items + i, return_index=True)
    return build_dataset(
        u[first], i[first], lab[first], user_ids=np.arange(n_users), item_ids=np.arange(n_items)
    )


def _embedding_scorer(n_users: int, n_items: int, seed: int = 0, dim: int = 8):
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(n_users, dim, generator=gen, dtype=torch.float64)
    item_emb = torch.randn(n_items, dim, generator=gen, dtype=torch.float64)
    return (lambda users: user_emb[users.cpu()].to(users.device) @ item_emb.T.to(users.device)), (
        user_emb @ item_emb.T
    )


# ---------------------------------------------------------------- masking and numbers


def test_masked_splits_per_protocol():
    assert masked_splits("valid", "recbole") == ("train",)
    assert masked_splits("test", "recbole") == ("train", "valid")
    assert masked_splits("valid", "mmrec") == ("train",)
    assert masked_splits("test", "mmrec") == ("train",)
    with pytest.raises(ConfigError, match="unknown evaluation protocol 'lattice'"):
        masked_splits("test", "lattice")
    with pytest.raises(ConfigError, match="cannot evaluate split 'train'"):
        masked_splits("train")


def test_valid_masks_train_hand_computed():
    # after masking train, rankings: u0: i2 i4 i3 i5 (valid i2 at rank 1)
    # u1: i3 i0 i5 i4 i1 (valid i3 at rank 1); u2: i5 i3 i2 i1 i4 (valid i4 at rank 5)
    # u3 has no valid item: not evaluated
    res = evaluate_ranking(_fixed(SCORES), _tiny(), "valid", ks=(1, 3, 10))
    assert res["users"] == 3
    assert res["hit@1"] == pytest.approx(2 / 3)  # the train items scored 10 and 9 never rank
    assert res["recall@3"] == pytest.approx(2 / 3)
    assert res["recall@10"] == pytest.approx(1.0)
    assert res["mrr@10"] == pytest.approx((1 + 1 + 1 / 5) / 3)
    assert res["ndcg@10"] == pytest.approx((1 + 1 + 1 / math.log2(6)) / 3)
    assert res["map@10"] == pytest.approx((1 + 1 + 1 / 5) / 3)
    assert res["precision@10"] == pytest.approx(1 / 10)  # hits / K, also for K > n_items
    assert set(res) == set(metric_names(METRICS, (1, 3, 10))) | {"users"}


def test_test_recbole_masks_train_and_valid():
    # masked train + valid: every user's test items rank first
    # u0: i4 i3 i5 (2 positives); u1: i0 ..; u2: i5 ..; u3: i1 ..
    res = evaluate_ranking(_fixed(SCORES), _tiny(), "test", protocol="recbole", ks=(1, 2, 3))
    assert res["users"] == 4
    assert res["recall@1"] == pytest.approx((1 / 2 + 1 + 1 + 1) / 4)
    assert res["recall@2"] == pytest.approx(1.0)
    assert res["precision@2"] == pytest.approx((1 + 1 / 2 + 1 / 2 + 1 / 2) / 4)
    assert res["ndcg@2"] == pytest.approx(1.0)
    assert res["mrr@1"] == pytest.approx(1.0)
    assert res["map@2"] == pytest.approx(1.0)


def test_test_mmrec_masks_train_only():
    # valid items stay rankable: u0: i2 i4 i3 (test i4, i3 at ranks 2, 3);
    # u1: i3 i0 (test i0 at rank 2); u2: i5 first; u3: i1 first
    res = evaluate_ranking(_fixed(SCORES), _tiny(), "test", protocol="mmrec", ks=(1, 3))
    assert res["users"] == 4
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["hit@1"] == pytest.approx(0.5)
    assert res["recall@3"] == pytest.approx(1.0)
    assert res["mrr@3"] == pytest.approx((1 / 2 + 1 / 2 + 1 + 1) / 4)
    assert res["ndcg@3"] == pytest.approx(((A + 1 / 2) / (1 + A) + A + 1 + 1) / 4)
    assert res["map@3"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 2 + 1 + 1) / 4)
    assert res["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 3 + 1 / 3) / 4)


def test_train_item_scored_highest_never_ranked():
    ds = _random_dataset(seed=3)
    train = torch.as_tensor(ds.train.toarray())
    valid = torch.as_tensor(ds.split("valid").toarray())
    # train items far above everything, valid items next: a perfect ranking iff masked
    scores = train * 1000 + valid * 10 + torch.rand(train.shape, generator=torch.Generator().manual_seed(0))
    n_valid = valid.sum(1)
    k = int(n_valid.max())
    res = evaluate_ranking(_fixed(scores), ds, "valid", ks=(k,), metrics=("recall", "ndcg"))
    assert res[f"recall@{k}"] == pytest.approx(1.0)
    assert res[f"ndcg@{k}"] == pytest.approx(1.0)
    # at test, valid items (scored above test items) are masked only by the recbole protocol
    test = torch.as_tensor(ds.split("test").toarray())
    scores = train * 1000 + valid * 100 + test * 10
    k = 1
    rec = evaluate_ranking(_fixed(scores), ds, "test", protocol="recbole", ks=(k,), metrics=("hit",))
    mm = evaluate_ranking(_fixed(scores), ds, "test", protocol="mmrec", ks=(k,), metrics=("hit",))
    has_valid = (valid.sum(1) > 0)[ds.users_with("test")]
    assert rec["hit@1"] == pytest.approx(1.0)
    assert mm["hit@1"] == pytest.approx(1.0 - has_valid.float().mean().item())


def test_users_without_positives_are_excluded():
    ds = _tiny()
    res = evaluate_ranking(_fixed(SCORES), ds, "valid", ks=(1,))
    assert res["users"] == 3 == len(ds.users_with("valid"))
    assert res["hit@1"] == pytest.approx(2 / 3)  # not 2 / 4: u3 has no valid item


# ---------------------------------------------------------------- subsets / cold start


def test_item_subset_restricts_positives_not_ranking():
    ds = _tiny()
    # test ranking (recbole): u0: i4 i3 i5; u1: i0; u2: i5; u3: i1
    # subset {i3, i5}: u0 keeps i3 (rank 2), u2 keeps i5 (rank 1); u1, u3 have none
    res = evaluate_ranking(_fixed(SCORES), ds, "test", items=np.array([5, 3]), ks=(1, 3))
    assert res["users"] == 2
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert res["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    empty = evaluate_ranking(_fixed(SCORES), ds, "test", items=np.array([2]), ks=(1,))
    assert empty["users"] == 0 and math.isnan(empty["recall@1"])
    with pytest.raises(ConfigError, match="outside"):
        evaluate_ranking(_fixed(SCORES), ds, "test", items=np.array([6]))
    with pytest.raises(ConfigError, match="item indices"):
        evaluate_ranking(_fixed(SCORES), ds, "test", items=np.array(["i3"]))


def test_cold_start_all_warm_cold():
    ds = _tiny().replace(cold_items=np.array([3, 5]))
    out = evaluate_cold_start(_fixed(SCORES), ds, "test", ks=(1, 3))
    assert set(out) == {"all", "warm", "cold"}
    assert out["cold"]["users"] == 2 and out["cold"]["recall@1"] == pytest.approx(0.5)
    # warm items {0, 1, 2, 4}: u0 i4 (rank 1), u1 i0 (rank 1), u3 i1 (rank 1)
    assert out["warm"]["users"] == 3 and out["warm"]["recall@1"] == pytest.approx(1.0)
    assert out["all"] == evaluate_ranking(_fixed(SCORES), ds, "test", ks=(1, 3))
    for group, items in (("cold", [3, 5]), ("warm", [0, 1, 2, 4])):
        single = evaluate_ranking(_fixed(SCORES), ds, "test", ks=(1, 3), items=np.array(items))
        assert out[group] == pytest.approx(single)
    with pytest.raises(ConfigError, match="no cold-start items"):
        evaluate_cold_start(_fixed(SCORES), _tiny())


def test_a_hidden_cold_start_masks_the_interactions_it_removed_as_training_items():
    """Under the hidden protocol a cold item's training interactions are removed: ranking
    one of them for its user counted as a miss (content-based rankers that find it lost);
    they are masked as the training items are, and recommend excludes them likewise."""
    from graphrec.data import cold_start
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train.recommend import recommend_indices, seen_matrix

    ds = cold_start(synthetic_catalogue(n_users=40, n_items=30, n_clusters=3, seed=0), 0.2, seed=0, protocol="hidden")
    removed = ds.hidden.tocoo()
    # a user with a removed pair and a test item that is not that pair
    u, i = next((int(a), int(b)) for a, b in zip(removed.row, removed.col)
                if ds.test[a].nnz and b not in ds.test[a].indices)
    scores = torch.zeros((ds.n_users, ds.n_items))
    scores[u, i] = 10.0  # the removed pair first, one of the user's test items second
    scores[u, int(ds.test[u].indices[0])] = 5.0
    masked = evaluate_ranking(_fixed(scores), ds, "test", ks=(1,), metrics=("hit",), users=[u])
    assert masked["hit@1"] == pytest.approx(1.0)  # the test item is at rank 1
    unmasked = evaluate_ranking(_fixed(scores), ds.replace(hidden=None), "test", ks=(1,), metrics=("hit",), users=[u])
    assert unmasked["hit@1"] == pytest.approx(0.0)
    top, _ = recommend_indices(_fixed(scores), ds, np.array([u]), k=1)
    assert top[0, 0] != i and seen_matrix(ds, ("train",))[u, i] == 1


# ---------------------------------------------------------------- batching, errors


@pytest.mark.parametrize("split,protocol", [("valid", "recbole"), ("test", "recbole"), ("test", "mmrec")])
def test_batch_size_invariance(split, protocol):
    ds = _random_dataset(seed=1)
    scorer, _ = _embedding_scorer(ds.n_users, ds.n_items, seed=1)
    ref = evaluate_ranking(scorer, ds, split, protocol=protocol, ks=(1, 5, 20), batch_size=ds.n_users)
    for bs in (1, 7):
        got = evaluate_ranking(scorer, ds, split, protocol=protocol, ks=(1, 5, 20), batch_size=bs)
        assert got["users"] == ref["users"]
        for key in ref:
            assert got[key] == pytest.approx(ref[key], abs=1e-12), key


def test_large_catalogue_caps_the_batch(monkeypatch):
    """The score block of a batch stays under MAX_BATCH_SCORES, and metrics do not move."""
    import graphrec.train.evaluate as ev

    ds = _random_dataset(seed=2)
    scorer, _ = _embedding_scorer(ds.n_users, ds.n_items, seed=2)
    ref = evaluate_ranking(scorer, ds, "test", ks=(1, 5, 20), batch_size=ds.n_users)
    seen = []

    def counting(users):
        seen.append(len(users))
        return scorer(users)

    monkeypatch.setattr(ev, "MAX_BATCH_SCORES", 3 * ds.n_items + 1)  # room for 3 users
    got = evaluate_ranking(counting, ds, "test", ks=(1, 5, 20), batch_size=ds.n_users)
    assert max(seen) == 3 and sum(seen) == ref["users"]
    assert got == pytest.approx(ref, abs=1e-12)


def test_scorer_errors_and_options():
    ds = _tiny()
    with pytest.raises(GraphrecError, match="expected \\(2, 6\\)"):
        evaluate_ranking(lambda u: torch.zeros(len(u), 5), ds, "valid", batch_size=2)
    nan = SCORES.clone()
    nan[2, 3] = float("nan")
    with pytest.raises(GraphrecError, match="NaN or infinite scores"):
        evaluate_ranking(_fixed(nan), ds, "valid")
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate_ranking(_fixed(SCORES), ds, "valid", batch_size=0)
    with pytest.raises(ConfigError, match="unknown ranking metric"):
        evaluate_ranking(_fixed(SCORES), ds, "valid", metrics=("auc",))
    with pytest.raises(ConfigError, match="unknown evaluation protocol"):
        evaluate_ranking(_fixed(SCORES), ds, "valid", protocol="x")
    a = evaluate_ranking(_fixed(SCORES), ds, "valid", progress=True)
    b = evaluate_ranking(_fixed(SCORES), ds, "valid")
    assert a == b


def test_a_scorer_returning_another_type_is_told_to_return_a_tensor():
    """A numpy scorer of the right shape was told "returned ndarray for 3 users, expected
    (3, 6) scores": the shape was never the problem. The type is named, with the fix."""
    ds = _tiny()  # 3 users have a positive at valid
    with pytest.raises(GraphrecError) as e:
        evaluate_ranking(lambda u: SCORES[u].numpy(), ds, "valid")
    assert str(e.value) == ("scorer returned a numpy.ndarray of shape (3, 6) for 3 users, but it must return a "
                            "torch.Tensor of (3, 6) scores: return torch.from_numpy(scores) instead")
    with pytest.raises(GraphrecError, match=r"^scorer returned a list for 3 users, but it must return a "
                                            r"torch.Tensor of \(3, 6\) scores: return its scores as one tensor$"):
        evaluate_ranking(lambda u: SCORES[u].tolist(), ds, "valid")
    with pytest.raises(GraphrecError, match=r"^scorer returned None for 3 users, but it must return a torch"):
        evaluate_ranking(lambda u: None, ds, "valid")
    # a tensor of the wrong shape keeps the shape message
    with pytest.raises(GraphrecError, match=r"^scorer returned \(3, 5\) for 3 users, expected \(3, 6\) scores$"):
        evaluate_ranking(lambda u: torch.zeros(len(u), 5), ds, "valid")


def test_most_popular_scorer():
    ds = _tiny()
    scorer = most_popular_scorer(ds)
    s = scorer(torch.tensor([0, 2]))
    assert s.shape == (2, 6)
    np.testing.assert_array_equal(s[1].numpy(), [2, 1, 1, 1, 1, 1])
    # the scorer's tensor is the evaluator's to overwrite: fresh memory per call
    assert s.data_ptr() != scorer(torch.tensor([0, 2])).data_ptr()
    res = evaluate_ranking(scorer, ds, "test", ks=(1, 5))
    assert res["users"] == 4 and 0 <= res["recall@5"] <= 1


# ---------------------------------------------------------------- RecBole equivalence


def _recbole_reference(full_scores, ds, split, protocol, ks, monkeypatch):
    """Independent dense reference ranking fed to recbole.evaluator's metric classes."""
    monkeypatch.setattr(np, "float", float, raising=False)  # RecBole 1.2.1 vs numpy >= 1.24
    from recbole.evaluator.collector import DataStruct
    from recbole.evaluator.metrics import MAP, MRR, NDCG, Hit, Precision, Recall

    scores = full_scores.clone()
    history = ds.train.toarray() > 0
    if split == "test" and protocol == "recbole":
        history |= ds.split("valid").toarray() > 0
    scores[torch.as_tensor(history)] = float("-inf")
    pos = torch.as_tensor(ds.split(split).toarray() > 0)
    keep = pos.any(1)
    scores, pos = scores[keep], pos[keep]
    top = torch.topk(scores, max(ks), dim=1).indices
    data = DataStruct()
    data.set("rec.topk", torch.cat([pos.gather(1, top).int(), pos.sum(1, keepdim=True).int()], 1))
    config = {"topk": list(ks), "metric_decimal_place": 12}
    out: dict[str, float] = {}
    for cls in (Recall, NDCG, Precision, Hit, MRR, MAP):
        out.update(cls(config).calculate_metric(data))
    return out, int(keep.sum())


@pytest.mark.parametrize("split,protocol", [("valid", "recbole"), ("test", "recbole"), ("test", "mmrec")])
def test_matches_recbole_end_to_end(split, protocol, monkeypatch):
    pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")
    ds = _random_dataset(n_users=80, n_items=60, seed=2)
    scorer, full = _embedding_scorer(ds.n_users, ds.n_items, seed=5)
    ks = (1, 5, 10, 20)
    want, n_users = _recbole_reference(full, ds, split, protocol, ks, monkeypatch)
    got = evaluate_ranking(scorer, ds, split, protocol=protocol, ks=ks, batch_size=16)
    assert got["users"] == n_users
    assert set(got) == set(want) | {"users"}
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    ds = _random_dataset(seed=4)
    scorer, _ = _embedding_scorer(ds.n_users, ds.n_items, seed=4)
    cpu = evaluate_ranking(scorer, ds, "test", ks=(1, 10, 20))
    gpu = evaluate_ranking(scorer, ds, "test", ks=(1, 10, 20), device="cuda", batch_size=9)
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-9), key


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("everywhere", [True, False])
def test_non_finite_scores_are_refused_like_nan(value, everywhere):
    """+inf everywhere used to score recall/ndcg 1.0 (ties broken by item index) and -inf
    everywhere zeros (read as masked): the scorer's output is checked before masking."""
    ds = _tiny()
    scores = SCORES.clone()
    if everywhere:
        scores.fill_(value)
    else:
        scores[1, 4] = value  # item 4 is not masked for user 1 at valid
    with pytest.raises(GraphrecError, match="scorer returned NaN or infinite scores at valid: the model diverged"):
        evaluate_ranking(_fixed(scores), ds, "valid")


def test_user_subset_evaluates_those_users_only():
    ds = _tiny()
    # test ranking (recbole): u0: i4 i3 (recall@1 1/2); u1: i0 (1); u2: i5 (1); u3: i1 (1)
    res = evaluate_ranking(_fixed(SCORES), ds, "test", ks=(1,), users=np.array([0, 3]))
    assert res["users"] == 2 and res["recall@1"] == pytest.approx((1 / 2 + 1) / 2)
    # u3 has no validation positive: of {0, 3} only u0 is validated
    valid = evaluate_ranking(_fixed(SCORES), ds, "valid", ks=(1,), users=[3, 0])
    assert valid["users"] == 1
    assert evaluate_ranking(_fixed(SCORES), ds, "test", ks=(1, 3), users=np.arange(4)) == evaluate_ranking(
        _fixed(SCORES), ds, "test", ks=(1, 3))
    # the cold-start groups count the subset's users only: cold {i3, i5}: u0 (i3 at rank 2), u2 (i5 at rank 1)
    cold = evaluate_cold_start(_fixed(SCORES), ds.replace(cold_items=np.array([3, 5])), "test", ks=(1,), users=[2, 3])
    assert cold["cold"]["users"] == 1 and cold["cold"]["recall@1"] == pytest.approx(1.0)
    assert cold["warm"]["users"] == 1 and cold["all"]["users"] == 2
    with pytest.raises(ConfigError, match="outside"):
        evaluate_ranking(_fixed(SCORES), ds, "test", users=[4])
    with pytest.raises(ConfigError, match="user indices"):
        evaluate_ranking(_fixed(SCORES), ds, "test", users=np.array(["u0"]))
