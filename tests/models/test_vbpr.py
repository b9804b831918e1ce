"""VBPR: the model contract (with and without biases), the predictor and both
regulariser forms computed by hand on 2 users x 3 items, the content path scoring cold
items, the builder's features, and a short real-data run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphrec.data import cold_start
from graphrec.errors import ConfigError, DataError
from graphrec.models.vbpr import VBPR
from graphrec.testing import DEVICE, RecommenderContract, contract_dataset
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestVBPRContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("vbpr", dataset, SMALL)


class TestVBPRBiasesContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("vbpr", dataset, dict(SMALL, biases=True, visual_dim=8, reg_form="squared", feature_norm="none"))


class TestVBPRColdStartContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("vbpr", cold_start(dataset, 0.2, 0), dict(SMALL, biases=True))


# --------------------------------------------------------------- by hand

# 2 users, 3 items, K = 2 ID factors, K' = 1 content factor, F = 2 feature entries.
FEATURES = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
USER = [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]  # [gamma_u (2); theta_u (1)]
ITEM_GAMMA = [[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]]
E = [[1.0, -1.0]]  # theta_i = E f_i = 1, -2, 0
ITEM_BIAS = [0.5, -0.5, 0.0]
FEATURE_BIAS = [0.1, 0.2]  # beta'^T f_i = 0.1, 0.4, 0.3


def _hand_model(biases: bool, reg_form: str = "norm", reg_weight: float = 1.0) -> VBPR:
    model = VBPR(2, 3, torch.tensor(FEATURES), embedding_dim=2, visual_dim=1, biases=biases,
                 reg_weight=reg_weight, reg_form=reg_form)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor(USER))
        model.item_embedding.weight.copy_(torch.tensor(ITEM_GAMMA))
        model.projection.weight.copy_(torch.tensor(E))
        if biases:
            model.item_bias.copy_(torch.tensor(ITEM_BIAS))
            model.feature_bias.copy_(torch.tensor(FEATURE_BIAS))
    return model.to(DEVICE)


@pytest.mark.parametrize("biases", [True, False])
def test_scores_match_the_hand_computed_predictor(biases):
    # x_ui = gamma_u.gamma_i + theta_u (E f_i) [+ beta_i + beta'.f_i], e.g. user 0, item 0:
    # 1*1 + 0*2 + 2*1 [+ 0.5 + 0.1] = 3 [3.6]
    want = [[3.6, -4.1, 3.3], [1.6, 2.9, -0.7]] if biases else [[3.0, -4.0, 3.0], [1.0, 3.0, -1.0]]
    want = torch.tensor(want, device=DEVICE)
    model = _hand_model(biases)
    with torch.no_grad():
        torch.testing.assert_close(model.scorer()(torch.arange(2, device=DEVICE)), want)
        users = torch.tensor([0, 0, 0, 1, 1, 1], device=DEVICE)
        items = torch.tensor([0, 1, 2, 0, 1, 2], device=DEVICE)
        torch.testing.assert_close(model(users, items), want.flatten())
        pos, neg = model.pairwise_scores(users[:3], items[:3], items[3:])
        torch.testing.assert_close(pos, want[0])
        torch.testing.assert_close(neg, want[0])
    # the MMRec reading without biases: a (K + K') user vector against [gamma_i; E f_i]
    if not biases:
        u, i = model.embeddings()
        assert u.shape == (2, 3) and i.shape == (3, 3)


@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("reg_form", ["norm", "squared"])
def test_loss_is_bpr_plus_the_hand_computed_regulariser(biases, reg_form):
    model = _hand_model(biases, reg_form, reg_weight=0.5)
    users = torch.tensor([0, 1], device=DEVICE)
    pos = torch.tensor([0, 1], device=DEVICE)
    neg = torch.tensor([2, 2], device=DEVICE)
    # scores: (u0, i0) vs (u0, i2); (u1, i1) vs (u1, i2)
    diffs = [3.6 - 3.3, 2.9 - (-0.7)] if biases else [3.0 - 3.0, 3.0 - (-1.0)]
    bpr = sum(math.log1p(math.exp(-d)) for d in diffs) / 2
    # squared norms of the batch matrices: U rows [gamma_u; theta_u]: 5 + 2;
    # P rows [gamma_i; E f_i (; beta_i)]: (1+4+1 [+0.25]) + (0+1+4 [+0.25]);
    # N rows (item 2 twice): 2 * (9+1+0 [+0])
    u2, p2, n2 = 7.0, (11.5 if biases else 11.0), 20.0
    if reg_form == "norm":  # MMRec's EmbLoss: Frobenius norms (not squared) over B
        reg = (math.sqrt(u2) + math.sqrt(p2) + math.sqrt(n2)) / 2
    else:
        reg = (u2 + p2 + n2) / (2 * 2)
    got = model.loss(users, pos, neg)
    torch.testing.assert_close(got.cpu(), torch.tensor(bpr + 0.5 * reg), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("reg_form", ["norm", "squared"])
def test_loss_of_a_batch_projecting_only_its_distinct_items(biases, reg_form):
    # one triple against 3 items: more items than the batch's 2 item slots, so the loss
    # projects the batch's distinct items only (two triples above project all 3)
    model = _hand_model(biases, reg_form, reg_weight=0.5)
    got = model.loss(*(torch.tensor([x], device=DEVICE) for x in (1, 1, 2)))
    # (u1, i1) vs (u1, i2): 2.9 - (-0.7) [biases] or 3 - (-1)
    bpr = math.log1p(math.exp(-(3.6 if biases else 4.0)))
    # U: [0, 1, -1] -> 2; P: item 1 [0, 1, -2 (, -0.5)] -> 5 [5.25]; N: item 2 [3, -1, 0 (, 0)] -> 10
    u2, p2, n2 = 2.0, (5.25 if biases else 5.0), 10.0
    reg = math.sqrt(u2) + math.sqrt(p2) + math.sqrt(n2) if reg_form == "norm" else (u2 + p2 + n2) / 2
    torch.testing.assert_close(got.cpu(), torch.tensor(bpr + 0.5 * reg), rtol=1e-5, atol=1e-6)
    # and the gradient is the one of the same loss over all items' rows
    got.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    u, i = model.embeddings()
    diff = (u[1] * (i[1] - i[2])).sum()
    rows = model._item_parts(None)[0]
    ref_u, ref_p, ref_n = model.user_embedding.weight[1:2], rows[1:2], rows[2:3]
    ref_reg = (ref_u.norm() + ref_p.norm() + ref_n.norm()) if reg_form == "norm" else \
        (ref_u.pow(2).sum() + ref_p.pow(2).sum() + ref_n.pow(2).sum()) / 2
    (F.softplus(-diff) + 0.5 * ref_reg).backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_projection_bias_shifts_scores_per_user_and_moves_only_through_the_penalty():
    # MMRec's projection E f_i + b, b = 0.5 (K' = 1): theta_i = 1.5, -1.5, 0.5; every score
    # of user u moves by theta_u * b (u0: 2 * 0.5 = 1, u1: -1 * 0.5 = -0.5)
    model = VBPR(2, 3, torch.tensor(FEATURES), embedding_dim=2, visual_dim=1, projection_bias=True,
                 reg_weight=0.5, reg_form="norm")
    assert torch.count_nonzero(model.projection.bias) == 0  # MMRec initialises it to 0
    plain = _hand_model(False, "norm", reg_weight=0.5)
    with torch.no_grad():
        for name in ("user_embedding.weight", "item_embedding.weight", "projection.weight"):
            model.get_parameter(name).copy_(plain.get_parameter(name))
        model.projection.bias.fill_(0.5)
    model = model.to(DEVICE)
    with torch.no_grad():
        got = model.scorer()(torch.arange(2, device=DEVICE))
    want = torch.tensor([[3.0 + 1.0, -4.0 + 1.0, 3.0 + 1.0], [1.0 - 0.5, 3.0 - 0.5, -1.0 - 0.5]], device=DEVICE)
    torch.testing.assert_close(got, want)
    # loss: the same BPR as without b (the shift cancels), the penalty over rows
    # [gamma_i; E f_i + b]: P = (1+4+1.5^2) + (0+1+1.5^2) = 10.5, N = 2 * (9+1+0.25) = 20.5
    users, pos, neg = (torch.tensor(v, device=DEVICE) for v in ([0, 1], [0, 1], [2, 2]))
    bpr = (math.log1p(math.exp(-0.0)) + math.log1p(math.exp(-4.0))) / 2
    reg = (math.sqrt(7.0) + math.sqrt(10.5) + math.sqrt(20.5)) / 2
    loss = model.loss(users, pos, neg)
    torch.testing.assert_close(loss.cpu(), torch.tensor(bpr + 0.5 * reg), rtol=1e-5, atol=1e-6)
    # b's gradient comes from the penalty alone: zero without it, nonzero with it
    loss.backward()
    assert model.projection.bias.grad.abs().sum() > 0
    model.zero_grad()
    model.reg_weight = 0.0
    model.loss(users, pos, neg).backward()
    torch.testing.assert_close(model.projection.bias.grad.cpu(), torch.zeros(1), atol=1e-7, rtol=0)
    assert build_model("vbpr", contract_dataset(), dict(SMALL, projection_bias=True)).projection.bias is not None
    assert build_model("vbpr", contract_dataset(), SMALL).projection.bias is None


def test_biases_switch_adds_exactly_the_two_bias_parameters():
    ds = contract_dataset()
    plain = dict(build_model("vbpr", ds, dict(SMALL, biases=False)).named_parameters())
    full = dict(build_model("vbpr", ds, dict(SMALL, biases=True)).named_parameters())
    assert set(full) - set(plain) == {"item_bias", "feature_bias"}
    assert full["feature_bias"].shape == (sum(x.shape[1] for x in ds.item_features.values()),)


def test_default_sizes_match_mmrec():
    """--dim 64: gamma_i and E f_i of 64 each, a 128-entry user vector (MMRec's sizes)."""
    model = build_model("vbpr", contract_dataset())
    assert model.user_embedding.weight.shape[1] == 128
    assert model.item_embedding.weight.shape[1] == 64 and model.projection.weight.shape[0] == 64
    assert model.reg_weight == 2.0 and model.reg_form == "norm"
    assert build_model("vbpr", contract_dataset(), {"embedding_dim": 8, "visual_dim": 3}).user_embedding.weight.shape[1] == 11


# --------------------------------------------------------------- cold items


def test_cold_items_are_scored_from_their_features():
    ds = cold_start(contract_dataset(), 0.2, 0)
    torch.manual_seed(0)
    model = build_model("vbpr", ds, dict(SMALL, biases=True)).to(DEVICE)
    cold = torch.as_tensor(ds.cold_items, device=DEVICE)
    warm = np.setdiff1d(np.arange(ds.n_items), ds.cold_items)
    assert not model.warm_items[cold].any() and model.warm_items[torch.as_tensor(warm, device=DEVICE)].all()
    with torch.no_grad():
        model.item_bias.fill_(0.7)
        model.feature_bias.copy_(torch.randn(model.feature_dim, generator=torch.Generator().manual_seed(1)).to(DEVICE))
    users = torch.arange(ds.n_users, device=DEVICE)
    c = int(cold[0])
    with torch.no_grad():
        before = model.scorer()(users)
        # the untrained ID part (gamma_i, beta_i) of a cold item plays no role...
        theta_u = model.user_embedding.weight[:, model.embedding_dim:]
        f = model.features[c]
        want = theta_u @ model.projection(f) + f @ model.feature_bias
        torch.testing.assert_close(before[:, c], want)
        model.item_embedding.weight[c] += 10.0
        torch.testing.assert_close(model.scorer()(users)[:, c], before[:, c])
        # ...its features do (the content path is live), and only its own column moves
        model.features[c] = model.features[int(cold[1])]
        after = model.scorer()(users)
    assert not torch.allclose(after[:, c], before[:, c])
    torch.testing.assert_close(after[:, c], before[:, int(cold[1])])
    others = torch.arange(ds.n_items, device=DEVICE) != c
    torch.testing.assert_close(after[:, others], before[:, others])


def test_trains_and_evaluates_on_a_cold_start_split():
    ds = cold_start(contract_dataset(), 0.2, 0)
    config = TrainConfig(epochs=3, lr=1e-2, batch_size=256, ks=(20,), progress=False, seed=0)
    record, model = run_training(ds, "vbpr", SMALL, config, device=DEVICE)
    cold = record["test"]["cold"]
    assert cold["users"] > 0 and 0.0 <= cold["recall@20"] <= 1.0
    # no cold item ever received a training gradient: its gamma_i is still its initial value
    torch.manual_seed(config.seed)
    fresh = build_model("vbpr", ds, SMALL)
    idx = torch.as_tensor(ds.cold_items)
    torch.testing.assert_close(model.item_embedding.weight[idx].cpu(), fresh.item_embedding.weight[idx])


# --------------------------------------------------------------- the builder


def test_builder_features_are_the_chosen_modalities_raw_or_each_l2_normalised():
    ds = contract_dataset()
    image, text = ds.item_features["image"], ds.item_features["text"]
    f = build_model("vbpr", ds, dict(SMALL, feature_norm="l2")).features
    assert f.shape == (ds.n_items, image.shape[1] + text.shape[1])
    torch.testing.assert_close(f[:, : image.shape[1]], F.normalize(torch.as_tensor(image), dim=1))
    torch.testing.assert_close(f[:, image.shape[1]:], F.normalize(torch.as_tensor(text), dim=1))
    raw = build_model("vbpr", ds, dict(SMALL, modalities="text,image")).features  # the default: raw, as MMRec
    torch.testing.assert_close(raw, torch.as_tensor(np.concatenate([text, image], axis=1)))
    only = build_model("vbpr", ds, dict(SMALL, modalities="text", feature_norm="l2")).features
    torch.testing.assert_close(only, F.normalize(torch.as_tensor(text), dim=1))


def test_invalid_arguments():
    ds = contract_dataset()
    with pytest.raises(DataError, match="no audio features"):
        build_model("vbpr", ds, dict(SMALL, modalities="audio"))
    with pytest.raises(DataError, match="needs item content features"):
        build_model("vbpr", ds.replace(item_features={}), SMALL)
    with pytest.raises(ConfigError, match="feature_norm"):
        build_model("vbpr", ds, dict(SMALL, feature_norm="zscore"))
    with pytest.raises(ConfigError, match="reg_form"):
        build_model("vbpr", ds, dict(SMALL, reg_form="l1"))
    with pytest.raises(ValueError, match="features has shape"):
        VBPR(2, 3, torch.zeros(4, 2))


# --------------------------------------------------------------- real data


def test_vbpr_beats_most_popular_on_amazon_scientific(shared_data):
    """The default model (raw CLIP image + text features concatenated, as MMRec)."""
    from graphrec.data.formats import read_unisrec

    ds = read_unisrec(shared_data / "amazon-scientific", unseen="keep")
    config = TrainConfig(epochs=10, lr=5e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "vbpr", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])


def test_vbpr_with_normalised_features_beats_most_popular_on_lfm2k(shared_data):
    """lfm2k's VGGish vectors have norm ~1,477 against MiniLM's 1: feature_norm="l2"."""
    from graphrec.data.formats import read_mmrec

    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"})
    config = TrainConfig(epochs=8, lr=5e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "vbpr", {"embedding_dim": 32, "feature_norm": "l2"}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
