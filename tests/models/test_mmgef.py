"""MM-GEF: the shared model contract for every variant, the learned structure (learned
graph, skip, attention, fixed weights) and the attention merge by hand, the paper's
Table 1 rows against LATTICE, the ablation flags, no cold-start leakage into the
co-interaction graph, and short real-data checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from graphrec.data import cold_start
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalize_adjacency, normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.cooccur import cooccurrence_graph
from graphrec.graphs.fuse import fuse_features
from graphrec.graphs.knn import knn_graph
from graphrec.models import LATTICE, MMGEF
from graphrec.nn import FactoredCooccurrence, to_torch_sparse
from graphrec.train.builders.mmgef import DEFAULT_STRUCTURE
from graphrec.testing import DEVICE, ItemGraphRecommenderContract, contract_dataset
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 16, "num_layers": 2, "k": 5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestMMGEFContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, SMALL)


class TestMMGEFLearnedContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, structure="learned", item_layers=2))


class TestMMGEFLearnedWithoutAttentionContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, structure="learned", attention=False, train_features=False))


class TestMMGEFLearnedWithoutCFContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, structure="learned", use_cf_graph=False))


class TestMMGEFFixedContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, structure="fixed"))


class TestMMGEFFixedWithoutAttentionContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, structure="fixed", attention=False, use_cf_graph=False))


class TestMMGEFProjectedContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(SMALL, feature_mode="projected", item_layers=2))


# --------------------------------------------------------------- a tiny hand-made case

# 3 users x 4 items; a directed content kNN graph and a symmetric co-interaction graph
R = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float32)
KNN = np.array(
    [[0, 0.9, 0.5, 0], [0.9, 0, 0, 0.2], [0, 0.7, 0, 0.6], [0.3, 0, 0.8, 0]], dtype=np.float32
)
CO = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32)


def _sym_dense(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 with the row degrees, computed densely."""
    d = a.sum(1).astype(np.float64)
    inv = np.zeros_like(d)
    inv[d > 0] = d[d > 0] ** -0.5
    return inv[:, None] * a * inv[None, :]


def _tiny(**kw) -> MMGEF:
    """The fixed structure over the hand-made graphs (``structure`` may be overridden)."""
    kw.setdefault("structure", "fixed")
    torch.manual_seed(0)
    return MMGEF(
        3,
        4,
        to_torch_sparse(normalized_bipartite(sp.csr_matrix(R))),
        to_torch_sparse(normalize_adjacency(sp.csr_matrix(KNN), "sym")),
        to_torch_sparse(normalize_adjacency(sp.csr_matrix(CO), "sym")),
        embedding_dim=3,
        num_layers=1,
        **kw,
    )


@pytest.mark.parametrize("item_layers", [1, 2])
def test_attention_merge_matches_the_dense_formula(item_layers):
    model = _tiny(item_layers=item_layers)
    with torch.no_grad():
        model.attention_logits.copy_(torch.tensor([0.7, -0.4]))
    w = np.exp([0.7, -0.4]) / np.exp([0.7, -0.4]).sum()
    a1, a2 = _sym_dense(KNN), _sym_dense(CO)
    h = model.lightgcn.item_embedding.weight.detach().double().numpy()
    for _ in range(item_layers):
        h = w[0] * (a1 @ h) + w[1] * (a2 @ h)
    got = model.item_propagate().detach().double().numpy()
    assert np.allclose(got, h, atol=1e-6)
    assert model.attention_weights() == pytest.approx({"knn": w[0], "cooccur": w[1]})
    assert model.log_values() == pytest.approx({"attention_knn": w[0], "attention_cooccur": w[1]})
    # final item embedding = LightGCN item embedding + normalize(h); users = LightGCN users
    users, items = model.embeddings()
    lg_users, lg_items = model.lightgcn.embeddings()
    expected = lg_items.detach().double().numpy() + h / np.linalg.norm(h, axis=1, keepdims=True)
    assert torch.equal(users, lg_users)
    assert np.allclose(items.detach().double().numpy(), expected, atol=1e-6)
    s = model(torch.tensor([2]), torch.tensor([1]))
    assert np.isclose(float(s.detach()), float(users[2].detach() @ items[1].detach()), atol=1e-6)


def test_loss_is_bpr_plus_l2_on_layer0():
    model = _tiny(reg_weight=0.5)
    u, p, n = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([3, 0])
    eu, ei = model.embeddings()
    bpr = F.softplus((eu[u] * ei[n]).sum(-1) - (eu[u] * ei[p]).sum(-1)).mean()
    lg = model.lightgcn
    ego = (lg.user_embedding.weight[u], lg.item_embedding.weight[p], lg.item_embedding.weight[n])
    l2 = sum(t.pow(2).sum() for t in ego)
    assert torch.allclose(model.loss(u, p, n), bpr + 0.5 * l2 / (2 * 2))


def test_gradients_reach_the_attention_logits():
    model = _tiny()
    loss = model.loss(torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([3, 0, 0]))
    loss.backward()
    g = model.attention_logits.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # the softmax gradient sums to zero over the logits
    assert abs(float(g.sum())) < 1e-6
    # and matches a finite difference of the loss in the first logit
    eps = 1e-3
    batch = (torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([3, 0, 0]))
    with torch.no_grad():
        model.attention_logits[0] += eps
        up = float(model.loss(*batch))
        model.attention_logits[0] -= 2 * eps
        down = float(model.loss(*batch))
    assert np.isclose(float(g[0]), (up - down) / (2 * eps), rtol=1e-2, atol=1e-5)


def test_without_attention_the_weights_are_fixed_halves():
    model = _tiny(attention=False)
    assert model.attention_weights() == {"knn": 0.5, "cooccur": 0.5}
    assert model.attention_logits is None and model.log_values() == {}
    assert not any("attention" in name for name, _ in model.named_parameters())
    assert not model.graph_weights().requires_grad
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model.loss(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 0])).backward()
        opt.step()
    assert model.attention_weights() == {"knn": 0.5, "cooccur": 0.5}
    h0 = model.lightgcn.item_embedding.weight.detach().double().numpy()
    expected = 0.5 * _sym_dense(KNN) @ h0 + 0.5 * _sym_dense(CO) @ h0
    assert np.allclose(model.item_propagate().detach().double().numpy(), expected, atol=1e-6)


def test_without_cf_graph_the_cooccurrence_graph_is_ignored():
    adj = to_torch_sparse(normalized_bipartite(sp.csr_matrix(R)))
    knn = to_torch_sparse(normalize_adjacency(sp.csr_matrix(KNN), "sym"))
    other = to_torch_sparse(normalize_adjacency(sp.csr_matrix(np.ones((4, 4), np.float32)), "sym"))
    outs = []
    for co in (None, other):
        torch.manual_seed(0)
        m = MMGEF(3, 4, adj, knn, co, embedding_dim=3, num_layers=1, use_cf_graph=False, structure="fixed")
        assert not hasattr(m, "cooccur_adj") and m.attention_logits is None
        assert m.attention_weights() == {"knn": 1.0, "cooccur": 0.0}
        outs.append(m.embeddings()[1].detach())
        h0 = m.lightgcn.item_embedding.weight.detach().double().numpy()
        assert np.allclose(m.item_propagate().detach().double().numpy(), _sym_dense(KNN) @ h0, atol=1e-6)
    assert torch.equal(outs[0], outs[1])


def test_without_knn_graph_only_the_cooccurrence_graph_propagates():
    adj = to_torch_sparse(normalized_bipartite(sp.csr_matrix(R)))
    co = to_torch_sparse(normalize_adjacency(sp.csr_matrix(CO), "sym"))
    torch.manual_seed(0)
    m = MMGEF(3, 4, adj, None, co, embedding_dim=3, num_layers=1, item_layers=2, structure="fixed")
    assert m.graph_names == ("cooccur",) and not hasattr(m, "knn_adj") and m.attention_logits is None
    assert m.attention_weights() == {"knn": 0.0, "cooccur": 1.0}
    h0 = m.lightgcn.item_embedding.weight.detach().double().numpy()
    e = _sym_dense(CO)
    assert np.allclose(m.item_propagate().detach().double().numpy(), e @ e @ h0, atol=1e-6)
    # e_i = LightGCN_i + h_i / ||h_i||
    users, items = m.embeddings()
    lu, li = m.lightgcn.embeddings()
    h = e @ e @ h0
    expected = li.detach().double().numpy() + h / np.linalg.norm(h, axis=1, keepdims=True)
    assert np.allclose(items.detach().double().numpy(), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="no item graph|at least one item graph"):
        MMGEF(3, 4, adj, None, co, use_cf_graph=False)
    with pytest.raises(ConfigError, match="projected"):
        MMGEF(3, 4, adj, None, co, feature_mode="projected", features=torch.randn(4, 5), structure="fixed")
    with pytest.raises(ConfigError, match="learned"):
        MMGEF(3, 4, adj, None, co, structure="learned")


def test_bad_arguments_are_clear_errors():
    adj = to_torch_sparse(normalized_bipartite(sp.csr_matrix(R)))
    knn = to_torch_sparse(sp.csr_matrix(KNN))
    with pytest.raises(ConfigError, match="cooccur_graph"):
        MMGEF(3, 4, adj, knn, None, structure="fixed")
    with pytest.raises(ConfigError, match="feature_mode"):
        MMGEF(3, 4, adj, knn, knn, feature_mode="learned")
    with pytest.raises(ConfigError, match="features"):
        MMGEF(3, 4, adj, knn, knn, feature_mode="projected", structure="fixed")
    with pytest.raises(ConfigError, match="features"):
        MMGEF(3, 4, adj, knn, knn, structure="learned")
    with pytest.raises(ConfigError, match="structure"):
        MMGEF(3, 4, adj, knn, knn, structure="dense")
    with pytest.raises(ConfigError, match="projected.*fixed structure"):
        MMGEF(3, 4, adj, knn, knn, structure="learned", feature_mode="projected", features=torch.randn(4, 5))
    with pytest.raises(ConfigError, match="shape"):
        MMGEF(3, 4, adj, to_torch_sparse(sp.eye(5, format="csr")), knn, structure="fixed")


def test_projected_mode_learns_the_edge_values_on_the_fixed_pattern():
    torch.manual_seed(0)
    feats = torch.randn(4, 6)
    model = MMGEF(
        3, 4, to_torch_sparse(normalized_bipartite(sp.csr_matrix(R))), to_torch_sparse(sp.csr_matrix(KNN)),
        to_torch_sparse(normalize_adjacency(sp.csr_matrix(CO), "sym")),
        features=feats, embedding_dim=3, num_layers=1, feature_mode="projected", structure="fixed",
    )
    p = model.feature_proj(feats).detach().double().numpy()
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    learned = np.where(KNN != 0, np.maximum(pn @ pn.T, 0.0), 0.0)  # cosines on the kNN pattern
    assert np.allclose(model.projected_knn_graph().to_dense().double().numpy(), _sym_dense(learned), atol=1e-6)
    h0 = model.lightgcn.item_embedding.weight.detach().double().numpy()
    expected = 0.5 * _sym_dense(learned) @ h0 + 0.5 * _sym_dense(CO) @ h0
    assert np.allclose(model.item_propagate().detach().double().numpy(), expected, atol=1e-5)
    model.loss(torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([3, 0, 0])).backward()
    g = model.feature_proj.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


# --------------------------------------------------------------- the learned structure, by hand

FEATS = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)


def _dense_topk_cos(x: np.ndarray, k: int) -> np.ndarray:
    """Top-k cosine graph by brute force, self excluded."""
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T
    out = np.zeros_like(s)
    for i in range(len(s)):
        row = s[i].copy()
        row[i] = -np.inf
        nb = np.argsort(-row)[:k]
        out[i, nb] = s[i, nb]
    return out


def _learned(lam: float = 0.9, **kw) -> tuple[MMGEF, np.ndarray]:
    """MM-GEF's learned structure on the 4 hand-made items: original graph = the
    normalised top-2 cosine graph of FEATS."""
    original = _sym_dense(_dense_topk_cos(FEATS.astype(np.float64), 2))
    torch.manual_seed(0)
    model = MMGEF(
        3, 4, to_torch_sparse(normalized_bipartite(sp.csr_matrix(R))), to_torch_sparse(sp.csr_matrix(original)),
        to_torch_sparse(normalize_adjacency(sp.csr_matrix(CO), "sym")), features=torch.from_numpy(FEATS),
        embedding_dim=3, num_layers=1, structure="learned", k=2, lambda_coeff=lam, **kw,
    )
    return model, original


def _expected_content(model: MMGEF, original: np.ndarray, lam: float) -> np.ndarray:
    """E^m = (1 - lambda) norm(top-2 max(0, cos) of W x + b) + lambda Ŝ, densely."""
    x = model._features("fused").detach().double().numpy()
    lin = model.projections["fused"]
    p = x @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
    learned = np.maximum(_dense_topk_cos(p, 2), 0.0)
    return (1 - lam) * _sym_dense(learned) + lam * original


@pytest.mark.parametrize("lam", [0.9, 0.3])
@pytest.mark.parametrize("item_layers", [1, 2])
def test_learned_structure_and_attention_match_the_dense_formula(lam, item_layers):
    model, original = _learned(lam, item_layers=item_layers)
    with torch.no_grad():
        model.projections["fused"].weight.mul_(-1.3).add_(0.2)  # away from the raw neighbours
        model.attention_logits.copy_(torch.tensor([0.7, -0.4]))
    model.eval()
    e_m = _expected_content(model, original, lam)
    learned_part = e_m - lam * original
    assert learned_part[learned_part != 0].size > 0  # the learned graph is not empty ...
    assert (np.abs(learned_part) > 1e-9).sum() <= 2 * 4  # ... and has at most k = 2 entries per row
    assert np.allclose(model.content_graph().to_dense().double().numpy(), e_m, atol=1e-6)
    assert np.allclose(model.knn_adj.to_dense().double().numpy(), original, atol=1e-6)
    w = np.exp([0.7, -0.4]) / np.exp([0.7, -0.4]).sum()
    step = w[0] * e_m + w[1] * _sym_dense(CO)
    assert np.allclose(model.item_graph().to_dense().double().numpy(), step, atol=1e-6)
    h0 = model.lightgcn.item_embedding.weight.detach().double().numpy()
    h = np.linalg.matrix_power(step, item_layers) @ h0
    assert np.allclose(model.item_propagate().detach().double().numpy(), h, atol=1e-5)
    assert model.attention_weights() == pytest.approx({"knn": w[0], "cooccur": w[1]})
    _, items = model.embeddings()
    _, lg_items = model.lightgcn.embeddings()
    expected = lg_items.detach().double().numpy() + h / np.linalg.norm(h, axis=1, keepdims=True)
    assert np.allclose(items.detach().double().numpy(), expected, atol=1e-5)


def test_learned_structure_is_rebuilt_once_per_epoch_and_the_attention_learns_every_batch():
    model, original = _learned()
    batch = (torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([3, 0, 0]))
    model.train()
    model.start_epoch(1)
    model.loss(*batch).backward()
    proj = model.projections["fused"]
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert model.feature_tables["fused"].grad is not None  # the fused table is fine-tuned (as LATTICE)
    assert model.attention_logits.grad is not None and model.attention_logits.grad.abs().sum() > 0
    before = model.content_graph().to_dense()
    with torch.no_grad():
        proj.weight.mul_(-1.5).add_(0.3)
    model.zero_grad(set_to_none=True)
    model.loss(*batch).backward()  # same epoch: the cached structure, a constant ...
    assert proj.weight.grad is None
    assert model.attention_logits.grad is not None  # ... while the merge weights still learn
    model.start_epoch(2)  # the next epoch rebuilds it from the current projection
    model.loss(*batch).backward()
    assert proj.weight.grad is not None
    after = model.content_graph().to_dense()
    assert not torch.allclose(before, after)
    assert np.allclose(after.double().numpy(), _expected_content(model, original, 0.9), atol=1e-6)


def test_without_attention_the_learned_structure_and_cf_graph_weigh_one_half_each():
    model, original = _learned(attention=False)
    assert model.attention_logits is None and model.log_values() == {}
    assert not any("attention" in name for name, _ in model.named_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    for epoch in (1, 2):
        model.start_epoch(epoch)
        opt.zero_grad()
        model.loss(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 0])).backward()
        opt.step()
    assert model.attention_weights() == {"knn": 0.5, "cooccur": 0.5}
    model.eval()
    h0 = model.lightgcn.item_embedding.weight.detach().double().numpy()
    e_m = _expected_content(model, original, 0.9)  # the trained projection's graph
    expected = 0.5 * e_m @ h0 + 0.5 * _sym_dense(CO) @ h0
    assert np.allclose(model.item_propagate().detach().double().numpy(), expected, atol=1e-5)


def test_fixed_structure_is_the_learned_one_with_lambda_one():
    learned, original = _learned(lam=1.0)
    fixed = MMGEF(
        3, 4, to_torch_sparse(normalized_bipartite(sp.csr_matrix(R))), to_torch_sparse(sp.csr_matrix(original)),
        to_torch_sparse(normalize_adjacency(sp.csr_matrix(CO), "sym")), embedding_dim=3, num_layers=1, structure="fixed",
    )
    fixed.lightgcn.load_state_dict(learned.lightgcn.state_dict())
    assert not any(n.startswith(("projections", "feature_tables")) for n, _ in fixed.named_parameters())
    for m in (learned, fixed):
        m.eval()
    assert torch.allclose(learned.item_propagate(), fixed.item_propagate(), atol=1e-6)
    assert np.allclose(fixed.content_graph().to_dense().double().numpy(), original, atol=1e-6)


def _fused(ds):
    """``ds`` with one modality: the early-fused features MM-GEF builds on."""
    return ds.replace(item_features={"fused": fuse_features(ds.item_features).x})


def _train_a_little(model, ds, epochs: int = 2):
    """Two epochs of two fixed batches each, Adam: the losses and the final scores."""
    gen = torch.Generator().manual_seed(7)
    batches = [tuple(torch.randint(0, n, (32,), generator=gen) for n in (ds.n_users, ds.n_items, ds.n_items))
               for _ in range(2)]
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    model.train()
    for epoch in range(1, epochs + 1):
        model.start_epoch(epoch)
        for b in batches:
            opt.zero_grad()
            loss = model.loss(*b)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    model.eval()
    return torch.stack(losses), model.scorer()(torch.arange(ds.n_users))


@pytest.mark.parametrize(
    "mmgef_params, lattice_params",
    [
        # Table 1 "w/o CF+Att" and "w/o CF" (one graph: the softmax over it is 1) = LATTICE
        ({"use_cf_graph": False, "attention": False}, {}),
        ({"use_cf_graph": False}, {}),
        # "w/o Att" = Table 2's "LATTICE with CF" (fixed equal weights)
        ({"attention": False}, {"use_cf_graph": True, "cf_weights": "fixed"}),
        # MM-GEF = LATTICE + CF with learned weights, on the early-fused feature
        ({}, {"use_cf_graph": True, "cf_weights": "learned"}),
        # both on LATTICE's reference code's backbone (the paper's runs): still one model
        ({"parity": "reference"}, {"use_cf_graph": True, "cf_weights": "learned", "parity": "reference"}),
        ({"use_cf_graph": False, "parity": "reference", "reg_weight": 1e-3}, {"parity": "reference", "reg_weight": 1e-3}),
    ],
)
def test_table1_rows_are_lattice_on_the_fused_feature(mmgef_params, lattice_params):
    """The paper's tables (module doc): the learned MM-GEF rows train exactly like
    LATTICE given one modality, the early-fused feature."""
    ds = contract_dataset()
    torch.manual_seed(0)
    mmgef = build_model("mmgef", ds, dict(SMALL, structure="learned", **mmgef_params))
    torch.manual_seed(0)
    lattice = build_model("lattice", _fused(ds), dict(SMALL, **lattice_params))
    assert isinstance(lattice, LATTICE) and lattice.modalities == ("fused",)
    loss_a, scores_a = _train_a_little(mmgef, ds)
    loss_b, scores_b = _train_a_little(lattice, ds)
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(scores_a, scores_b)
    # not vacuous: MM-GEF's fixed structure trains differently
    torch.manual_seed(0)
    fixed = build_model("mmgef", ds, dict(SMALL, structure="fixed", **mmgef_params))
    loss_c, _ = _train_a_little(fixed, ds)
    assert not torch.allclose(loss_a, loss_c)


# --------------------------------------------------------------- builder


def test_builder_parity_reference_sets_the_reference_code_choices(tmp_path, reference_backbone):
    ds = contract_dataset()
    model = build_model("mmgef", ds, dict(SMALL, parity="reference"))
    assert np.allclose(model.lightgcn.adj.to_dense().numpy(), reference_backbone(ds.train), atol=1e-6)
    assert model.reg_on == "final" and model.reg_weight == pytest.approx(1e-5) and model.include_self
    assert bool((model.knn_adj.to_dense().diagonal() > 0).all())  # each item in its own kNN list
    plain = build_model("mmgef", ds, SMALL)
    assert plain.reg_on == "layer0" and plain.reg_weight == 1e-4 and not plain.include_self
    assert bool((plain.knn_adj.to_dense().diagonal() == 0).all())
    # the final-embedding L2: reg / (2B) (|e_u|^2 + |e_i+|^2 + |e_i-|^2) on top of BPR
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    u, i = model.embeddings()
    eu, ep, en = u[users], i[pos], i[neg]
    bpr = -F.logsigmoid((eu * ep).sum(-1) - (eu * en).sum(-1)).mean()
    l2 = (eu.pow(2).sum() + ep.pow(2).sum() + en.pow(2).sum()) / (2 * 3)
    torch.testing.assert_close(model.loss(users, pos, neg), bpr + 1e-5 * l2)
    # a stored kNN graph must keep each item in its own list, as the reference's
    built = build_item_graph(ds, GraphSpec(kind="knn", k=5))
    from graphrec.graphs import save_graph

    save_graph(tmp_path / "knn", built.graph, built.record)
    with pytest.raises(DataError, match="built without include_self, and --parity reference"):
        build_model("mmgef", ds, dict(SMALL, parity="reference", graphs=[str(tmp_path / "knn")]))
    with pytest.raises(ConfigError, match="parity='exact' is not one of none, reference"):
        build_model("mmgef", ds, dict(SMALL, parity="exact"))


def test_run_record_names_the_values_the_builder_resolved():
    """``reg_weight`` left unset follows ``--parity``: the record keeps what was asked (None,
    a resume must match it) and names what trained."""
    ds = contract_dataset()
    config = TrainConfig(epochs=1, batch_size=64, ks=(5,), progress=False, seed=0)
    record, _ = run_training(ds, "mmgef", dict(SMALL, parity="reference"), config, device=DEVICE)
    assert record["model_params"]["reg_weight"] is None
    assert record["resolved_params"] == {"reg_weight": pytest.approx(1e-5), "feature_mode": "fixed"}
    given = dict(SMALL, reg_weight=3e-4, feature_mode="fixed")
    record, _ = run_training(ds, "mmgef", given, config, device=DEVICE)
    assert "resolved_params" not in record  # nothing left to the builder
    assert "graph_merges" not in record  # MM-GEF's merge attention is learned, not fixed


def test_builder_graphs_and_cold_items_never_in_the_cooccurrence_graph():
    ds = contract_dataset()
    cold = cold_start(ds, 0.2, 0)
    model = build_model("mmgef", cold, SMALL)
    co = model.cooccur_graph().to_dense().numpy()
    c_items = cold.cold_items
    assert len(c_items) == 12
    assert not co[c_items].any() and not co[:, c_items].any()
    # not vacuous: with the full training data those items do co-occur
    full = cooccurrence_graph(ds.train).toarray()
    assert full[c_items].any()
    # the graph is E^c of the cold-start training data, symmetrically normalised
    expected = normalize_adjacency(cooccurrence_graph(cold.train), "sym").toarray()
    assert np.allclose(co, expected, atol=1e-7)
    # cold items keep their content neighbours (k = 5 per row)
    knn = model.knn_adj.to_dense().numpy()
    assert ((knn[c_items] != 0).sum(1) == 5).all()
    assert np.isfinite(knn).all()
    assert model.cooccur_op is not None  # unpruned: kept as its factors
    assert isinstance(model.cooccur_op, FactoredCooccurrence)


def test_builder_ablations_and_errors():
    ds = contract_dataset()
    m = build_model("mmgef", ds, dict(SMALL, use_cf_graph=False, attention=False, modalities="text"))
    assert m.attention_weights() == {"knn": 1.0, "cooccur": 0.0}
    assert not hasattr(m, "cooccur_adj")
    with pytest.raises(DataError, match="content features"):
        build_model("mmgef", ds.replace(item_features={}), SMALL)
    with pytest.raises(ConfigError, match="feature_mode"):
        build_model("mmgef", ds, dict(SMALL, feature_mode="nope"))
    # co-interaction graph only: works on data without content, refuses content options
    co_only = build_model("mmgef", ds.replace(item_features={}), {"embedding_dim": 16, "use_knn_graph": False})
    assert co_only.graph_names == ("cooccur",)
    expected = normalize_adjacency(cooccurrence_graph(ds.train), "sym").toarray()
    assert np.allclose(co_only.cooccur_graph().to_dense().numpy(), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="--k.*--no-knn-graph"):
        build_model("mmgef", ds, dict(SMALL, use_knn_graph=False))
    with pytest.raises(ConfigError, match="no item graph"):
        build_model("mmgef", ds, {"use_knn_graph": False, "use_cf_graph": False})


def test_builder_structures():
    ds = contract_dataset()
    assert build_model("mmgef", ds, SMALL).structure == DEFAULT_STRUCTURE
    learned = build_model("mmgef", ds, dict(SMALL, structure="learned", lambda_coeff=0.5))
    fused = fuse_features(ds.item_features)
    # the original graph is the normalised kNN graph of the fused features, the learned
    # graph's input the fused features themselves
    want = normalize_adjacency(knn_graph(fused.x, 5), "sym").toarray()
    assert np.allclose(learned.knn_adj.to_dense().numpy(), want, atol=1e-6)
    assert np.allclose(learned._features("fused").detach().numpy(), fused.x)
    assert learned.k == 5 and learned.lambda_coeff == 0.5 and learned.modalities == ("fused",)
    fixed = build_model("mmgef", ds, dict(SMALL, structure="fixed"))
    assert fixed.structure == "fixed" and not list(fixed.projections or [])
    assert np.allclose(fixed.knn_adj.to_dense().numpy(), want, atol=1e-6)
    # --feature-mode alone keeps its meaning from before --structure existed: the fixed structure
    assert build_model("mmgef", ds, dict(SMALL, feature_mode="fixed")).structure == "fixed"
    assert build_model("mmgef", ds, dict(SMALL, feature_mode="projected")).feature_proj is not None
    assert build_model("mmgef", ds, {"use_knn_graph": False}).structure == "fixed"
    with pytest.raises(ConfigError, match="--feature-mode belongs to --structure fixed"):
        build_model("mmgef", ds, dict(SMALL, structure="learned", feature_mode="projected"))
    with pytest.raises(ConfigError, match="--lambda and --fixed-features"):
        build_model("mmgef", ds, dict(SMALL, structure="fixed", lambda_coeff=0.5))
    with pytest.raises(ConfigError, match="--no-knn-graph"):
        build_model("mmgef", ds, {"structure": "learned", "use_knn_graph": False})
    with pytest.raises(ConfigError, match="structure='dense' is not one of learned, fixed"):
        build_model("mmgef", ds, dict(SMALL, structure="dense"))


def test_builder_learned_structure_from_a_stored_graph(tmp_path):
    from graphrec.graphs.store import save_graph

    ds = contract_dataset()
    built = build_item_graph(ds, GraphSpec(kind="knn", k=5, modalities=("text",)))
    save_graph(tmp_path / "text", built.graph, built.record)
    model = build_model("mmgef", ds, {"embedding_dim": 16, "structure": "learned", "graphs": [str(tmp_path / "text")]})
    assert model.k == 5
    assert np.allclose(model.knn_adj.to_dense().numpy(), normalize_adjacency(built.graph, "sym").toarray(), atol=1e-6)
    assert np.allclose(model._features("fused").detach().numpy(), fuse_features(ds.item_features, ["text"]).x)


def test_builder_beside_a_stored_cooccurrence_graph_builds_its_own_knn_graph(tmp_path, monkeypatch):
    """--graph of a co-interaction graph alone: the content kNN graph is built here at
    the default k (10, what the record's resolved parameters say); two stored
    co-interaction graphs are refused before any kNN search."""
    from graphrec.graphs.store import save_graph
    from graphrec.train.builders.mmgef import resolve_params

    ds = contract_dataset()
    built = build_item_graph(ds, GraphSpec(kind="cooccur", normalization="sym"))
    save_graph(tmp_path / "co", built.graph, built.record)
    graphs = [str(tmp_path / "co")]
    model = build_model("mmgef", ds, {"embedding_dim": 8, "graphs": graphs})
    want = build_item_graph(ds, GraphSpec(kind="knn", k=10, normalization="sym")).graph
    assert model.k == 10
    assert np.allclose(model.knn_adj.to_dense().numpy(), want.toarray(), atol=1e-6)
    assert resolve_params({"graphs": graphs})["k"] == 10
    knn = build_item_graph(ds, GraphSpec(kind="knn", k=5))
    save_graph(tmp_path / "knn", knn.graph, knn.record)
    assert resolve_params({"graphs": [*graphs, str(tmp_path / "knn")]}).get("k") is None  # the stored graph's own
    import graphrec.train.builders.mmgef as builder

    def no_search(*args, **kwargs):
        raise AssertionError("a kNN graph was built before the stored graphs were checked")

    monkeypatch.setattr(builder, "build_item_graph", no_search)
    with pytest.raises(DataError, match="2 stored cooccur graphs given"):
        build_model("mmgef", ds, {"embedding_dim": 8, "graphs": graphs * 2})


def test_projected_mode_sees_the_same_pattern_built_in_the_run_or_stored(tmp_path):
    """Items of 20 one-hot classes: each kNN list (k=5) holds its 2 class mates and 3 items
    of cosine exactly 0. The stored graph dropped those entries, the in-run build kept them,
    so projected mode learned values on 300 edges in the run and on 120 from the stored
    graph; both now see the 120 nonzero edges."""
    from graphrec.graphs.store import save_graph

    ds = contract_dataset()
    onehot = np.eye(20, dtype=np.float32)[np.arange(ds.n_items) % 20]
    ds = ds.replace(item_features={"text": onehot})
    raw = knn_graph(onehot, 5)
    assert raw.nnz == 300 and (raw.data == 0).sum() == 180  # knn_graph's matrix keeps the zeros
    built = build_item_graph(ds, GraphSpec(kind="knn", k=5))
    assert built.graph.nnz == 120
    save_graph(tmp_path / "knn", built.graph, built.record)
    params = dict(SMALL, feature_mode="projected", structure="fixed", use_cf_graph=False)
    torch.manual_seed(0)
    in_run = build_model("mmgef", ds, params)
    torch.manual_seed(0)
    stored = build_model("mmgef", ds, dict(params, k=None, graphs=[str(tmp_path / "knn")]))
    a, b = in_run.projected_knn_graph(), stored.projected_knn_graph()
    assert a._nnz() == b._nnz() == 120
    assert torch.equal(a.to_dense(), b.to_dense())


# --------------------------------------------------------------- real data


def test_mmgef_beats_most_popular_on_amazon_scientific(shared_data):
    from graphrec.data.formats import read_unisrec

    ds = read_unisrec(shared_data / "amazon-scientific", unseen="keep")
    config = TrainConfig(epochs=5, lr=5e-3, batch_size=1024, ks=(20,), progress=False, seed=0)
    record, model = run_training(ds, "mmgef", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    weights = model.attention_weights()
    assert set(weights) == {"knn", "cooccur"} and sum(weights.values()) == pytest.approx(1.0)
    # the learned weights moved away from 1/2 (gradients reach the logits in training)
    assert weights["knn"] != pytest.approx(0.5, abs=1e-3)


def test_mmgef_ranks_cold_items_of_amazon_scientific_lightgcn_cannot(shared_data):
    """Cold start 0.2 on real data, the papers' protocol: valid and test hold only new
    items, which have no training interaction; LightGCN scores them with ID vectors that
    only ever served as negatives and ranks them below chance (20 / n_items); MM-GEF
    reaches them through their content neighbours."""
    from graphrec.data.formats import read_unisrec

    ds = cold_start(read_unisrec(shared_data / "amazon-scientific", unseen="keep"), 0.2, 0)
    config = TrainConfig(epochs=10, lr=1e-3, batch_size=1024, ks=(20,), progress=False, seed=0)
    lightgcn, _ = run_training(ds, "lightgcn", {"embedding_dim": 32}, config, device=DEVICE)
    mmgef, _ = run_training(ds, "mmgef", {"embedding_dim": 32}, config, device=DEVICE)
    chance = 20 / ds.n_items
    assert lightgcn["test"]["cold"]["recall@20"] < chance, lightgcn["test"]["cold"]
    assert mmgef["test"]["cold"]["recall@20"] > 3 * chance, mmgef["test"]["cold"]
    assert mmgef["test"]["cold"]["users"] == lightgcn["test"]["cold"]["users"] > 100

def test_a_grid_mixing_options_of_the_other_structure_fails_before_any_training(tmp_path):
    """lambda_coeff configures the learned structure only: a grid over structure x
    lambda_coeff would train the fixed structure once per lambda (the builder refuses each
    such trial). `graphrec tune --grid` stops before any study or trial exists, naming the
    point (the registry's ``check`` hook); a grid that keeps lambda with the learned
    structure passes, and so does one without features once the kNN graph is dropped."""
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train.registry import get_model
    from graphrec.train.space import grid_values, search_space
    from graphrec.train.tune import _check_grid, tune

    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    path = ds.save(tmp_path / "data")
    fixed = {"lr": 1e-3, "reg_weight": 1e-4, "num_layers": 1, "item_layers": 1, "k": 5}
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(ConfigError, match=r"^--grid point structure=fixed, lambda_coeff=0.5: --lambda and "
                                          r"--fixed-features configure --structure learned"):
        tune(path, "mmgef", None, storage, out=tmp_path / "out", grid=True, config=TrainConfig(epochs=1),
             space={**fixed, "structure": ["fixed", "learned"], "lambda_coeff": [0.5, 0.9]}, plots=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "study.db").exists()
    entry = get_model("mmgef")
    searched = search_space("mmgef", {**fixed, "structure": "learned", "lambda_coeff": [0.5, 0.9]})
    _check_grid(entry, searched, grid_values(searched), ds)
    with pytest.raises(DataError, match=r"^--grid point modalities=audio: .* has no audio features"):
        searched = search_space("mmgef", {**fixed, "modalities": ["image", "audio"]})
        _check_grid(entry, searched, grid_values(searched), ds)
    bare = ds.replace(item_features={})
    no_knn = {**fixed, "use_knn_graph": False, "reg_weight": [1e-4, 1e-3]}
    with pytest.raises(ConfigError, match=r"^--grid point reg_weight=0.0001: --k configure the content graph, "
                                          r"which --no-knn-graph drops"):
        searched = search_space("mmgef", no_knn)
        _check_grid(entry, searched, grid_values(searched), bare)
    searched = search_space("mmgef", {**no_knn, "k": None})  # null: k keeps its default, no graph to size
    _check_grid(entry, searched, grid_values(searched), bare)
    with pytest.raises(DataError, match="needs item content features"):
        searched = search_space("mmgef", {**fixed, "reg_weight": [1e-4, 1e-3]})
        _check_grid(entry, searched, grid_values(searched), bare)
