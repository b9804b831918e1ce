"""FREEDOM: the model contract, the frozen merged item graph against a dense formula on
5 items, the per-epoch degree-sensitive pruning (counts, re-normalisation, seeding),
scoring over the unpruned graph, the loss by hand, the modality-weight rule, and a
short real-data run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from graphrec.data import build_dataset
from graphrec.data.formats import read_mmrec
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.prune import n_kept
from graphrec.models.freedom import FREEDOM
from graphrec.testing import DEVICE, ItemGraphRecommenderContract
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.builders.freedom import freedom_modality_weights
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 16, "num_layers": 2, "k": 5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestFREEDOMContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("freedom", dataset, SMALL)


class TestFREEDOMFeatureTermContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model(
            "freedom", dataset, dict(SMALL, feature_weight=1e-2, include_self=False, item_layers=2, dropout=0.9)
        )


class TestFREEDOMFixedFeaturesContract(ItemGraphRecommenderContract):
    def make_model(self, dataset):
        return build_model("freedom", dataset, dict(SMALL, feature_weight=1e-3, train_features=False, dropout=0.0))


# ----------------------------------------------------------- a 5-item example, by hand

N_USERS, N_ITEMS = 4, 5
R = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
R[[0, 0, 0, 1, 1, 2, 2, 3, 3, 3], [0, 1, 2, 1, 3, 2, 4, 0, 3, 4]] = 1


def _features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    image = rng.normal(size=(N_ITEMS, 3)).astype(np.float32)
    image[4] = 0.0  # item 4 has no image: no image neighbours, nobody's image neighbour
    return {"image": image, "text": rng.normal(size=(N_ITEMS, 4)).astype(np.float32)}


def _dataset(features: dict[str, np.ndarray] | None = None):
    u, i = np.nonzero(R)
    return build_dataset(
        u, i, ["train"] * len(u), user_ids=np.arange(N_USERS), item_ids=np.arange(N_ITEMS),
        item_features=features or _features(), name="five",
    )


def _dense_binary_knn(x: np.ndarray, k: int, include_self: bool) -> np.ndarray:
    """Binary top-k cosine graph by brute force; zero rows have no neighbours and are
    nobody's neighbour; include_self: the item itself takes one of the k places."""
    norms = np.linalg.norm(x, axis=1)
    has = norms > 0
    z = np.where(has[:, None], x / np.where(has, norms, 1)[:, None], 0)
    s = z @ z.T
    out = np.zeros((len(x), len(x)))
    for i in np.flatnonzero(has):
        row = s[i].copy()
        row[~has] = -np.inf
        row[i] = -np.inf
        kk = k
        if include_self:
            out[i, i] = 1
            kk = k - 1
        out[i, np.argsort(-row)[:kk]] = 1
    return out


def _sym(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 with the row sums D (zero rows stay zero)."""
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return inv[:, None] * a * inv[None, :]


def _expected_item_graph(weights: dict[str, float], k: int, include_self: bool) -> np.ndarray:
    feats = _features()
    return sum(w * _sym(_dense_binary_knn(feats[m].astype(np.float64), k, include_self)) for m, w in weights.items())


def _full_bipartite(r: np.ndarray) -> np.ndarray:
    return _bipartite_sym(*np.nonzero(r), *r.shape)


def _bipartite_sym(rows, cols, n_users, n_items) -> np.ndarray:
    n = n_users + n_items
    a = np.zeros((n, n))
    a[rows, n_users + np.asarray(cols)] = 1
    a[n_users + np.asarray(cols), rows] = 1
    return _sym(a)


def _lightgcn(adj: np.ndarray, e0: np.ndarray, layers: int) -> np.ndarray:
    out, x = e0.copy(), e0.copy()
    for _ in range(layers):
        x = adj @ x
        out += x
    return out / (layers + 1)


def _build(params=None, seed: int = 0) -> FREEDOM:
    torch.manual_seed(seed)
    return build_model("freedom", _dataset(), dict({"embedding_dim": 6, "k": 2}, **(params or {})))


@pytest.mark.parametrize("include_self", [False, True])
def test_frozen_item_graph_matches_the_dense_formula(include_self):
    """S = 0.1 D^-1/2 S_image D^-1/2 + 0.9 D^-1/2 S_text D^-1/2, binary top-2 graphs."""
    model = _build({"include_self": include_self})
    got = model.item_graph().to_dense().double().numpy()
    want = _expected_item_graph({"image": 0.1, "text": 0.9}, 2, include_self)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # binary edges: a row's values are 0.1/2 (image), 0.9/2 (text) or their sum (both)
    assert set(np.round(got[got > 0], 6)) <= {0.05, 0.45, 0.5}
    # item 4 has no image: its row holds text neighbours only, and it is nobody's image neighbour
    np.testing.assert_allclose(got[4][got[4] > 0], 0.45)
    assert not np.isclose(got[:, 4], 0.05).any() and not np.isclose(got[:, 4], 0.5).any()
    assert model.item_graph().values().numel() <= 2 * 2 * N_ITEMS  # nothing n x n is stored


def test_item_graph_weights_option():
    model = _build({"modality_weights": "image=1,text=3", "include_self": False})
    want = _expected_item_graph({"image": 0.25, "text": 0.75}, 2, False)
    np.testing.assert_allclose(model.item_graph().to_dense().double().numpy(), want, atol=1e-6)
    text_only = _build({"modalities": "text"})  # include_self by default
    np.testing.assert_allclose(
        text_only.item_graph().to_dense().double().numpy(), _expected_item_graph({"text": 1.0}, 2, True), atol=1e-6
    )


def test_item_graph_is_frozen_by_training():
    model = _build()
    before = model.item_graph().to_dense().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    for epoch in range(1, 4):
        model.start_epoch(epoch)
        loss = model.loss(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 3, 4, 4]), torch.tensor([3, 0, 0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model.item_graph().to_dense(), before)
    assert not any("item_op" in name for name, _ in model.named_parameters())


def test_modality_weight_rule():
    feats = {"image": 0, "text": 0, "audio": 0}
    mmrec = {"image": pytest.approx(0.1), "text": pytest.approx(0.9)}
    assert freedom_modality_weights(feats, "image,text") == mmrec
    assert freedom_modality_weights({"image": 0, "text": 0}) == mmrec
    assert freedom_modality_weights(feats, "audio,text") == {"audio": 0.5, "text": 0.5}
    assert freedom_modality_weights(feats) == pytest.approx({"image": 1 / 3, "text": 1 / 3, "audio": 1 / 3})
    assert freedom_modality_weights(feats, None, "audio=0.2,text=0.6") == pytest.approx({"audio": 0.25, "text": 0.75})
    assert freedom_modality_weights(feats, None, {"text": 2.0}) == {"text": 1.0}
    with pytest.raises(ConfigError, match="name the same"):
        freedom_modality_weights(feats, "image,text", "audio=1,text=1")
    with pytest.raises(ConfigError, match=">= 0"):
        freedom_modality_weights(feats, None, "audio=-1,text=1")
    with pytest.raises(ConfigError, match="MODALITY=WEIGHT"):
        freedom_modality_weights(feats, None, "audio")
    with pytest.raises(DataError, match="no video"):
        freedom_modality_weights(feats, None, "video=1")


# ----------------------------------------------------------- the user-item graph

def test_pruned_graph_each_epoch_is_a_renormalised_degree_sensitive_sample():
    model = _build({"dropout": 0.5})
    n_edges = int(R.sum())
    assert model.n_kept == n_kept(n_edges, 0.5) == 5
    model.train()
    model.start_epoch(1)
    kept = model.prune(model.epoch_generator(1))
    assert kept.numel() == 5
    rows, cols = model.edge_rows[kept].numpy(), model.edge_cols[kept].numpy()
    assert R[rows, cols].all()  # kept edges are training edges
    got = model.pruned_adj
    assert got.layout == torch.sparse_csr and got.values().numel() == 2 * 5
    np.testing.assert_allclose(got.to_dense().double().numpy(), _bipartite_sym(rows, cols, N_USERS, N_ITEMS), atol=1e-6)
    # the same epoch gives the same edges; another epoch (almost surely) others
    model.start_epoch(1)
    torch.testing.assert_close(model.pruned_adj.to_dense(), got.to_dense(), rtol=0, atol=0)
    graphs = set()
    for epoch in range(2, 12):
        model.start_epoch(epoch)
        graphs.add(tuple(model.prune(model.epoch_generator(epoch)).tolist()))
    assert len(graphs) > 3


def test_pruning_is_reproducible_under_seeding():
    """Built after the same torch seed, two models prune the same edges at every epoch,
    whatever happens to the global RNG in between; another seed prunes others."""
    a, b, c = _build(seed=5), _build(seed=5), _build(seed=6)
    for epoch in (1, 2, 7):
        torch.rand(3)  # the global stream moves on between the calls
        ka = a.prune(a.epoch_generator(epoch))
        torch.rand(5)
        assert torch.equal(ka, b.prune(b.epoch_generator(epoch)))
    assert any(not torch.equal(a.prune(a.epoch_generator(e)), c.prune(c.epoch_generator(e))) for e in range(1, 6))
    a.reset_parameters()  # reset draws a new pruning seed from the global RNG, like the weights
    torch.manual_seed(9)
    a.reset_parameters()
    torch.manual_seed(9)
    b.reset_parameters()
    assert torch.equal(a.prune(a.epoch_generator(1)), b.prune(b.epoch_generator(1)))


def test_loss_uses_the_pruned_graph_and_scoring_the_full_graph():
    model = _build({"dropout": 0.5})
    model.train()
    model.start_epoch(3)
    kept = model.prune(model.epoch_generator(3))
    pruned = _bipartite_sym(model.edge_rows[kept].numpy(), model.edge_cols[kept].numpy(), N_USERS, N_ITEMS)
    full = _full_bipartite(R)
    s = _expected_item_graph({"image": 0.1, "text": 0.9}, 2, True)  # include_self: the default
    e_u = model.lightgcn.user_embedding.weight.detach().double().numpy()
    e_i = model.lightgcn.item_embedding.weight.detach().double().numpy()
    e0 = np.concatenate([e_u, e_i])

    def final(adj):
        out = _lightgcn(adj, e0, 2)
        return out[:N_USERS], out[N_USERS:] + s @ e_i  # item branch added as is (not normalised)

    users, pos, neg = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 3, 4, 0, 2]), torch.tensor([3, 0, 0, 1, 4])
    pu, pi = final(pruned)
    x = (pu[users] * pi[pos]).sum(1) - (pu[users] * pi[neg]).sum(1)
    want_loss = np.mean(np.log1p(np.exp(-x)))
    assert float(model.loss(users, pos, neg).detach()) == pytest.approx(want_loss, rel=1e-5)
    fu, fi = final(full)
    # scoring uses the unpruned graph, in training mode too
    np.testing.assert_allclose(model.scorer()(torch.arange(N_USERS)).double().numpy(), fu @ fi.T, atol=1e-5)
    model.eval()
    u_emb, i_emb = model.embeddings()
    np.testing.assert_allclose(u_emb.detach().double().numpy(), fu, atol=1e-6)
    np.testing.assert_allclose(i_emb.detach().double().numpy(), fi, atol=1e-6)
    assert not np.allclose(fu, pu)  # the two graphs do differ
    # before any start_epoch, and with dropout 0, training runs on the full graph
    fresh = _build({"dropout": 0.0})
    fresh.train()
    fresh.start_epoch(1)
    assert fresh.pruned_adj is None and fresh.train_adj() is fresh.full_adj()


def test_feature_term_is_bpr_of_users_against_projected_features():
    lam = 0.3
    model = _build({"feature_weight": lam, "dropout": 0.0})
    assert set(model.projections) == {"image", "text"} and model.feature_tables is not None
    model.train()
    users, pos, neg = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 3, 4, 0]), torch.tensor([3, 0, 0, 1])
    with torch.no_grad():
        u_emb, i_emb = model.embeddings()
        u = u_emb[users]
        want = F.softplus(-((u * i_emb[pos]).sum(1) - (u * i_emb[neg]).sum(1))).mean()
        for m, x in _features().items():
            lin = model.projections[m]
            proj = torch.from_numpy(x) @ lin.weight.t() + lin.bias
            want = want + lam * F.softplus(-((u * proj[pos]).sum(1) - (u * proj[neg]).sum(1))).mean()
    loss = model.loss(users, pos, neg)
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)
    # the gradients too (repeated items in the batch: each distinct one is projected once)
    u_emb, i_emb = model.embeddings()
    u = u_emb[users]
    ref = F.softplus(-((u * i_emb[pos]).sum(1) - (u * i_emb[neg]).sum(1))).mean()
    for m in ("image", "text"):
        f = model.projections[m](model.feature_tables[m])
        ref = ref + lam * F.softplus(-((u * f[pos]).sum(1) - (u * f[neg]).sum(1))).mean()
    params = [model.projections["text"].weight, model.feature_tables["image"], model.lightgcn.user_embedding.weight]
    want_grads = torch.autograd.grad(ref, params)
    loss.backward()
    for p, g in zip(params, want_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
    assert model.projections["text"].weight.grad.abs().sum() > 0
    assert model.feature_tables["image"].grad.abs().sum() > 0  # fine-tuned, as MMRec
    # lambda 0 (the default): no projections, no feature parameters at all
    plain = _build()
    assert len(plain.projections) == 0 and plain.feature_tables is None
    fixed = _build({"feature_weight": lam, "train_features": False})
    assert fixed.feature_tables is None and not any("feature" in n for n, _ in fixed.named_parameters())


def test_constructor_errors():
    r = torch.eye(3).to_sparse_csr()
    g = torch.eye(3).to_sparse_csr()
    with pytest.raises(ConfigError, match="dropout"):
        FREEDOM(3, 3, r, g, dropout=1.0)
    with pytest.raises(ConfigError, match="needs item features"):
        FREEDOM(3, 3, r, g, feature_weight=0.1)
    with pytest.raises(ConfigError, match="interactions have shape"):
        FREEDOM(3, 4, r, torch.eye(4).to_sparse_csr())
    with pytest.raises(ConfigError, match="dropout must be < 1"):
        build_model("freedom", _dataset(), {"dropout": 1.0})


# ----------------------------------------------------------- real data

def test_freedom_beats_most_popular_on_lastfm(shared_data):
    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "image": "vggish.npy"})
    config = TrainConfig(epochs=8, lr=5e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "freedom", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    # modality_weights left unset: the record names the weights the data gave (MMRec's 0.1 / 0.9)
    assert record["model_params"]["modality_weights"] is None
    assert record["graph_merges"] == {"item": {"fixed_weights": {"image": pytest.approx(0.1),
                                                                 "text": pytest.approx(0.9)}}}
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])


def _store(ds, folder, modality, **spec):
    from graphrec.testing import store_built_graph

    return store_built_graph(ds, folder, **{**dict(kind="knn", k=2, modalities=(modality,), weighting="binary",
                                                   include_self=True), **spec})


@pytest.mark.parametrize("normalization", ["none", "sym"])
def test_stored_graphs_give_the_graph_the_builder_builds(normalization, tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 6, "k": 2}
    built = build_model("freedom", ds, params).item_graph().to_dense()
    text = _store(ds, tmp_path / "text", "text", normalization=normalization)
    image = _store(ds, tmp_path / "image", "image", normalization=normalization)
    for graphs in ([text], [text, image]):  # one modality stored (the other built), or both
        got = build_model("freedom", ds, dict(params, graphs=graphs)).item_graph().to_dense()
        assert torch.equal(got, built)  # bit for bit


def test_stored_graphs_are_checked(tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 6, "k": 2}
    cases = [
        (dict(weighting="cosine"), "binary"),
        (dict(symmetric=True), "symmetrised"),
        (dict(k=3), "k=3"),
        (dict(include_self=False), "include_self"),
        (dict(kind="cooccur", modalities=None), "one-modality kNN"),
    ]
    for i, (spec, words) in enumerate(cases):
        path = _store(ds, tmp_path / f"g{i}", "text", **spec)
        with pytest.raises(DataError, match=words):
            build_model("freedom", ds, dict(params, graphs=[path]))
    text = _store(ds, tmp_path / "text", "text")
    with pytest.raises(DataError, match="two stored graphs"):
        build_model("freedom", ds, dict(params, graphs=[text, text]))
    with pytest.raises(DataError, match="not among the merged"):
        build_model("freedom", ds, dict(params, modalities="image", graphs=[text]))
