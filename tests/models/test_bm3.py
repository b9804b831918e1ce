"""BM3: the model contract, the loss of a tiny example written out by hand (values and
gradients, so the stop-gradient targets are checked too), the ignored negatives, the
seeded dropout targets, the builder, and a short real-data run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data import build_dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.models.bm3 import BM3, _keep_mask
from graphrec.nn import to_torch_sparse
from graphrec.testing import DEVICE, RecommenderContract, contract_dataset
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestBM3Contract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("bm3", dataset, {"embedding_dim": 16})


class TestBM3VariantsContract(RecommenderContract):
    """Two layers, the batch regulariser, no item residual, fixed features, one modality."""

    def make_model(self, dataset):
        params = dict(embedding_dim=16, num_layers=2, dropout=0.5, reg_form="batch", item_residual=False,
                      train_features=False, modalities="text")
        return build_model("bm3", dataset, params)


# --------------------------------------------------------------- by hand

# 2 users, 3 items: user 0 had items 0 and 1, user 1 items 1 and 2.
R = np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32)
D = 2
EU = np.array([[0.5, -1.0], [1.0, 0.25]])
EI = np.array([[0.2, 0.4], [-0.6, 0.8], [1.0, -0.3]])
WP, BP = np.array([[1.0, 0.5], [-0.5, 2.0]]), np.array([0.1, -0.2])  # predictor: x W^T + b
X = {"image": np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 1.0, 1.0]]),
     "text": np.array([[1.0, 1.0], [-1.0, 2.0], [0.3, 0.0]])}
W = {"image": np.array([[1.0, -1.0, 0.5], [0.0, 2.0, 1.0]]), "text": np.array([[0.5, 1.5], [-1.0, 1.0]])}
B = {"image": np.array([0.0, 0.3]), "text": np.array([-0.1, 0.2])}
USERS, ITEMS = [0, 1, 1], [1, 1, 2]  # a repeated user and a repeated item


def _tiny(**kw) -> BM3:
    adj = to_torch_sparse(normalized_bipartite(sp.csr_matrix(R)))
    model = BM3(2, 3, adj, {m: torch.tensor(x, dtype=torch.float32) for m, x in X.items()}, embedding_dim=D, **kw)
    t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        model.lightgcn.user_embedding.weight.copy_(t(EU))
        model.lightgcn.item_embedding.weight.copy_(t(EI))
        model.predictor.weight.copy_(t(WP))
        model.predictor.bias.copy_(t(BP))
        for m in X:
            model.projections[m].weight.copy_(t(W[m]))
            model.projections[m].bias.copy_(t(B[m]))
    return model


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _representations(num_layers: int = 1, residual: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """h_u, h_i: LightGCN over D^-1/2 A D^-1/2 (degrees written out), the layer mean, plus
    the item's ID embedding."""
    a = np.zeros((5, 5))
    a[:2, 2:], a[2:, :2] = R, R.T
    deg = np.array([2, 2, 1, 2, 1])  # u0, u1, i0, i1, i2
    a_hat = a / np.sqrt(np.outer(deg, deg))
    e = np.vstack([EU, EI])
    layers, x = [e], e
    for _ in range(num_layers):
        x = a_hat @ x
        layers.append(x)
    mean = np.mean(layers, axis=0)
    return mean[:2], mean[2:] + (EI if residual else 0.0)


def _expected_loss(cl_weight: float, reg_weight: float, reg_form: str, num_layers: int = 1, residual: bool = True) -> float:
    """L_rec + cl_weight sum_m (L_align^m + L_mask^m) + reg_weight R, dropout 0: the targets
    are the representations themselves; C(a, b) = 1 - mean over the 3 pairs of cos."""
    hu, hi = _representations(num_layers, residual)
    pred = lambda h: h @ WP.T + BP  # noqa: E731
    u, i = hu[USERS], hi[ITEMS]
    loss = (1 - _cos(pred(u), i).mean()) + (1 - _cos(pred(i), u).mean())  # loss_ui + loss_iu
    for m in X:
        hm = (X[m] @ W[m].T + B[m])[ITEMS]
        loss += cl_weight * ((1 - _cos(pred(hm), i).mean()) + (1 - _cos(pred(hm), hm).mean()))  # align + mask
    if reg_form == "tables":  # (||H_U||_F + ||H_I||_F) / n_items, all users and items
        reg = (np.linalg.norm(hu) + np.linalg.norm(hi)) / 3
    else:  # squared L2 of the batch rows / 2B
        reg = ((u**2).sum() + (i**2).sum()) / (2 * 3)
    return float(loss + reg_weight * reg)


def _batch(neg=(0, 0, 0)):
    return torch.tensor(USERS), torch.tensor(ITEMS), torch.tensor(neg)


@pytest.mark.parametrize("reg_form", ["tables", "batch"])
@pytest.mark.parametrize("num_layers,residual", [(1, True), (2, True), (1, False)])
def test_loss_matches_the_formula_written_out(reg_form, num_layers, residual):
    model = _tiny(dropout=0.0, cl_weight=2.0, reg_weight=0.1, reg_form=reg_form, num_layers=num_layers,
                  item_residual=residual)
    got = float(model.loss(*_batch()).detach())
    assert got == pytest.approx(_expected_loss(2.0, 0.1, reg_form, num_layers, residual), rel=1e-5, abs=1e-6)
    # the weights enter linearly: cl_weight on the modality terms only
    other = _tiny(dropout=0.0, cl_weight=0.5, reg_weight=1.0, reg_form=reg_form, num_layers=num_layers,
                  item_residual=residual)
    assert float(other.loss(*_batch()).detach()) == pytest.approx(
        _expected_loss(0.5, 1.0, reg_form, num_layers, residual), rel=1e-5, abs=1e-6
    )


def test_gradients_stop_at_the_targets():
    """The model's gradients equal those of the formula with the targets detached, and
    differ from the formula with gradients through both sides."""
    import torch.nn.functional as F

    def dense(model: BM3, stop: bool) -> torch.Tensor:
        lg = model.lightgcn
        a = torch.from_numpy(np.block([[np.zeros((2, 2)), R], [R.T, np.zeros((3, 3))]])).float()
        deg = a.sum(1)
        a_hat = a / torch.sqrt(torch.outer(deg, deg))
        e = torch.cat([lg.user_embedding.weight, lg.item_embedding.weight])
        mean = (e + a_hat @ e) / 2
        hu, hi = mean[:2], mean[2:] + lg.item_embedding.weight
        sg = (lambda x: x.detach()) if stop else (lambda x: x)  # noqa: E731
        c = lambda a, b: 1 - F.cosine_similarity(a, sg(b), dim=-1).mean()  # noqa: E731
        u, i = hu[USERS], hi[ITEMS]
        p = model.predictor
        loss = c(p(u), i) + c(p(i), u)
        for m in model.modalities:
            hm = model.projections[m](model._features(m))[ITEMS]
            loss = loss + 2.0 * (c(p(hm), i) + c(p(hm), hm))
        return loss + 0.1 * (hu.norm() + hi.norm()) / 3

    model = _tiny(dropout=0.0)
    params = [p for p in model.parameters()]
    got = torch.autograd.grad(model.loss(*_batch()), params)
    want = torch.autograd.grad(dense(model, stop=True), params)
    through = torch.autograd.grad(dense(model, stop=False), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(g, t, atol=1e-4) for g, t in zip(got, through))


def test_scores_are_the_predicted_representations_inner_products():
    model = _tiny(dropout=0.3).eval()
    hu, hi = _representations()
    want = (hu @ WP.T + BP) @ (hi @ WP.T + BP).T
    with torch.no_grad():
        got = model.scorer()(torch.tensor([0, 1]))
    assert np.allclose(got.double().numpy(), want, atol=1e-5)
    # evaluation is deterministic: no dropout there
    with torch.no_grad():
        assert torch.equal(model.scorer()(torch.tensor([0, 1])), got)


# --------------------------------------------------------------- negatives, randomness


def test_negatives_do_not_change_the_loss_or_its_gradients():
    model = _tiny(dropout=0.5)
    results = []
    for neg in ((0, 0, 0), (2, 1, 0), (1, 2, 2)):
        torch.manual_seed(7)
        model.zero_grad()
        loss = model.loss(*_batch(neg))
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    for loss, grads in results[1:]:
        assert torch.equal(loss, results[0][0])
        assert all(torch.equal(g, g0) for g, g0 in zip(grads, results[0][1]))


def test_dropout_targets_come_from_the_global_seed():
    ds = contract_dataset()
    model = build_model("bm3", ds, {"embedding_dim": 16, "dropout": 0.5})
    u, i = ds.pairs("train")
    batch = (torch.as_tensor(u[:64]), torch.as_tensor(i[:64]), torch.as_tensor(i[:64]))
    losses = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        losses.append(float(model.loss(*batch).detach()))
    assert losses[0] == losses[1]  # same seed, same masks
    assert losses[0] != losses[2]  # another seed, other masks
    # without dropout the loss is deterministic whatever the generator's state
    plain = build_model("bm3", ds, {"embedding_dim": 16, "dropout": 0.0})
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(3)
    a = float(plain.loss(*batch).detach())
    torch.manual_seed(4)
    assert float(plain.loss(*batch).detach()) == a
    assert a != losses[0]  # and dropout does perturb the targets


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9])
def test_keep_mask_drops_a_fraction_p(p):
    torch.manual_seed(0)
    keep = _keep_mask(200_001, p)
    assert keep.shape == (200_001,) and keep.dtype == torch.bool
    assert abs(1 - keep.float().mean().item() - p) < 0.005
    if p == 0.0:
        assert keep.all()


def test_reset_restores_the_raw_features_after_training():
    model = _tiny(dropout=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model.loss(*_batch()).backward()
        opt.step()
    assert not torch.allclose(model.feature_tables["text"], torch.tensor(X["text"], dtype=torch.float32))
    model.reset_parameters()
    for m in X:
        assert torch.equal(model.feature_tables[m], torch.tensor(X[m], dtype=torch.float32))
    fixed = _tiny(train_features=False)
    assert fixed.feature_tables is None
    assert not any("feature" in name for name, _ in fixed.named_parameters())


# --------------------------------------------------------------- builder


def test_builder_modalities_and_errors():
    ds = contract_dataset()
    assert build_model("bm3", ds).modalities == ("image", "text")
    one = build_model("bm3", ds, {"modalities": "text"})
    assert one.modalities == ("text",) and set(one.projections) == {"text"}
    with pytest.raises(DataError, match="no audio features"):
        build_model("bm3", ds, {"modalities": "audio"})
    with pytest.raises(ConfigError, match="dropout"):
        build_model("bm3", ds, {"dropout": 1.0})
    with pytest.raises(ConfigError, match="reg_form"):
        build_model("bm3", ds, {"reg_form": "other"})
    plain = build_dataset([0, 0, 1, 1, 1], [0, 1, 1, 2, 0], ["train"] * 4 + ["test"])
    with pytest.raises(DataError, match="item content features"):
        build_model("bm3", plain)


def test_builder_graph_is_the_training_bipartite_graph():
    ds = contract_dataset()
    model = build_model("bm3", ds)
    want = normalized_bipartite(ds.train, "sym").toarray()
    assert np.allclose(model.lightgcn.adj.to_dense().numpy(), want, atol=1e-6)
    for m in model.modalities:
        # the fine-tuned tables start at the stored features
        assert np.array_equal(model._features(m).detach().numpy(), np.asarray(ds.item_features[m], dtype=np.float32))


# --------------------------------------------------------------- real data


def test_bm3_beats_most_popular_on_lfm2k(shared_data):
    from graphrec.data.formats import read_mmrec

    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"})
    config = TrainConfig(epochs=8, lr=1e-2, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, model = run_training(ds, "bm3", {"embedding_dim": 32}, config, device=DEVICE)
    assert model.modalities == ("text", "audio")
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
