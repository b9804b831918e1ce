"""MGCN: the model contract, the item-item view graphs against a dense top-k formula on 6
items, the purification gate and the behaviour-aware fuser by hand, the whole forward
pass against a dense computation, the contrastive term against its direct formula, the
loss, and a short real-data run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphrec.data import build_dataset
from graphrec.data.formats import read_mmrec
from graphrec.errors import ConfigError, DataError
from graphrec.models.mgcn import GATE_FLOOR, MGCN, _gate, batch_info_nce, info_nce
from graphrec.testing import DEVICE, RecommenderContract
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 16, "k": 5}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestMGCNContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("mgcn", dataset, SMALL)


class TestMGCNVariantContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model(
            "mgcn",
            dataset,
            dict(SMALL, weighting="binary", include_self=False, item_layers=2, train_features=False, cl_weight=0.1),
        )


class TestMGCNOneModalityContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("mgcn", dataset, dict(SMALL, modalities="text", num_layers=1))


# ----------------------------------------------------------- a 6-item example

N_USERS, N_ITEMS = 4, 6
R = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
R[[0, 0, 0, 1, 1, 2, 2, 2, 3, 3], [0, 1, 2, 1, 3, 2, 4, 5, 0, 5]] = 1


def _features() -> dict[str, np.ndarray]:
    """Positive features: every cosine is positive (no sign questions in the degrees)."""
    rng = np.random.default_rng(7)
    return {
        "image": rng.uniform(0.05, 1.0, size=(N_ITEMS, 3)).astype(np.float32),
        "text": rng.uniform(0.05, 1.0, size=(N_ITEMS, 4)).astype(np.float32),
    }


def _dataset():
    u, i = np.nonzero(R)
    return build_dataset(
        u, i, ["train"] * len(u), user_ids=np.arange(N_USERS), item_ids=np.arange(N_ITEMS),
        item_features=_features(), name="six",
    )


def _dense_topk(x: np.ndarray, k: int, weighting: str, include_self: bool) -> np.ndarray:
    """S_ij = cos(x_i, x_j) (or 1) for the k largest cosines of row i, the item itself
    included when include_self (its cosine, 1, is the largest), else excluded."""
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = z @ z.T
    out = np.zeros_like(s)
    for i in range(len(x)):
        row = s[i].copy()
        if not include_self:
            row[i] = -np.inf
        top = np.argsort(-row)[:k]
        out[i, top] = s[i, top] if weighting == "cosine" else 1.0
    return out


def _sym(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 with the row sums D (all positive here)."""
    inv = 1 / np.sqrt(a.sum(1))
    return inv[:, None] * a * inv[None, :]


def _build(params=None, seed: int = 0) -> MGCN:
    torch.manual_seed(seed)
    return build_model("mgcn", _dataset(), dict({"embedding_dim": 4, "k": 3}, **(params or {})))


@pytest.mark.parametrize("weighting", ["cosine", "binary"])
@pytest.mark.parametrize("include_self", [True, False])
def test_item_item_view_graphs_match_the_dense_topk_formula(weighting, include_self):
    model = _build({"weighting": weighting, "include_self": include_self})
    feats = _features()
    assert list(model.item_graphs()) == ["image", "text"]  # what export-graph --view offers
    for m in ("image", "text"):
        got = model.item_graphs()[m]
        assert got.layout == torch.sparse_csr and got.values().numel() == 3 * N_ITEMS  # k per row, nothing n x n
        want = _sym(_dense_topk(feats[m].astype(np.float64), 3, weighting, include_self))
        np.testing.assert_allclose(got.to_dense().double().numpy(), want, rtol=1e-5, atol=1e-7)
    if include_self:  # the item is its own nearest neighbour
        assert (model.item_ops["text"].matrix().to_dense().diagonal() > 0).all()


def test_cosine_and_binary_graphs_differ_and_default_is_cosine_with_self():
    default, cosine = _build(), _build({"weighting": "cosine", "include_self": True})
    binary = _build({"weighting": "binary"})
    a = default.item_ops["image"].matrix().to_dense()
    assert torch.equal(a, cosine.item_ops["image"].matrix().to_dense())
    assert not torch.allclose(a, binary.item_ops["image"].matrix().to_dense())


def test_purification_gate_by_hand():
    """Zero projection, gate weights and biases: f = 0, gate = sigmoid(0) = 1/2, the
    purified feature is half the ID embedding; then a general case from the formula."""
    model = _build()
    e_id = model.lightgcn.item_embedding.weight.detach().clone()
    with torch.no_grad():
        for mod in (model.projections["image"], model.purify_gates["image"]):
            mod.weight.zero_()
            mod.bias.zero_()
    torch.testing.assert_close(model.purified("image").detach(), e_id / 2)

    # general: purified = e_id * sigmoid(Wg (W x + b) + bg), elementwise by the formula
    torch.manual_seed(3)
    model.reset_parameters()
    x = _features()["text"].astype(np.float64)
    lin, gate = model.projections["text"], model.purify_gates["text"]
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    wg, bg = gate.weight.detach().double().numpy(), gate.bias.detach().double().numpy()
    e = model.lightgcn.item_embedding.weight.detach().double().numpy()
    want = np.zeros_like(e)
    for i in range(N_ITEMS):
        f = [sum(w[r, c] * x[i, c] for c in range(x.shape[1])) + b[r] for r in range(4)]
        for r in range(4):
            z = sum(wg[r, c] * f[c] for c in range(4)) + bg[r]
            want[i, r] = e[i, r] / (1 + np.exp(-z))
    np.testing.assert_allclose(model.purified("text").detach().double().numpy(), want, rtol=1e-5, atol=1e-7)


def _set_fuser(model: MGCN, wq, bq, q, wp: dict, bp: dict) -> None:
    with torch.no_grad():
        model.query[0].weight.copy_(torch.tensor(wq, dtype=torch.float32))
        model.query[0].bias.copy_(torch.tensor(bq, dtype=torch.float32))
        model.query[2].weight.copy_(torch.tensor([q], dtype=torch.float32))
        for m in model.modalities:
            model.prefer_gates[m].weight.copy_(torch.tensor(wp[m], dtype=torch.float32))
            model.prefer_gates[m].bias.copy_(torch.tensor(bp[m], dtype=torch.float32))


def test_behaviour_aware_fuser_by_hand():
    """d = 2, two modalities, two nodes, fixed parameters."""
    torch.manual_seed(0)
    r = torch.eye(2).to_sparse_csr()
    model = MGCN(
        1, 2, torch.zeros(3, 3).to_sparse_csr(), torch.ones(1, 2).to_sparse_csr(),
        {"a": r, "b": r}, {"a": torch.ones(2, 1), "b": torch.ones(2, 1)}, embedding_dim=2,
    )
    # case 1: zero query and zero preference gates -> alpha = 1/2, p = 1/2, so
    # e_mul = (c + (v_a - c)/2 + (v_b - c)/2) / 3 = c / 3 with c = (v_a + v_b) / 2
    _set_fuser(model, [[0, 0], [0, 0]], [0, 0], [0, 0], {"a": [[0, 0], [0, 0]], "b": [[0, 0], [0, 0]]},
               {"a": [0, 0], "b": [0, 0]})
    views = torch.tensor([[[1.0, 2.0], [0.0, -3.0]], [[3.0, 0.0], [6.0, 3.0]]])  # (M=2, n=2, d=2)
    behaviour = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    with torch.no_grad():
        out, alpha = model.fuse(behaviour, views)
    torch.testing.assert_close(alpha, torch.full((2, 2), 0.5))
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0], [3.0, 0.0]]) / 3)

    # case 2: q = (1, 0), W_q = I, b_q = 0: logit_m = tanh(v_m[0]); gate a from the behaviour
    # (p_a = sigmoid(e[0])), gate b saturated at 0 (bias -1000: only the common part and
    # a's specific part remain)
    _set_fuser(model, [[1, 0], [0, 1]], [0, 0], [1, 0], {"a": [[1, 0], [0, 1]], "b": [[0, 0], [0, 0]]},
               {"a": [0, 0], "b": [-1000, -1000]})
    with torch.no_grad():
        out, alpha = model.fuse(behaviour, views)
    sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    v = views.double().numpy()
    e = behaviour.double().numpy()
    for n in range(2):
        la, lb = np.tanh(v[0, n, 0]), np.tanh(v[1, n, 0])
        aa = np.exp(la) / (np.exp(la) + np.exp(lb))
        c = aa * v[0, n] + (1 - aa) * v[1, n]
        p_a = sig(e[n])
        want = (c + p_a * (v[0, n] - c)) / 3
        assert alpha[0, n].item() == pytest.approx(aa, rel=1e-6)
        np.testing.assert_allclose(out[n].double().numpy(), want, rtol=1e-6, atol=1e-7)
    # node 0: tanh(1) vs tanh(3): modality b weighs more
    assert alpha[1, 0] > alpha[0, 0]


def test_gate_floor():
    z = torch.tensor([-200.0, -60.0, -44.0, -40.0, 0.0, 5.0, 100.0], requires_grad=True)
    g = _gate(z)
    s = torch.sigmoid(z.detach())
    want = torch.where(s < GATE_FLOOR, torch.zeros(()), s)
    torch.testing.assert_close(g.detach(), want, rtol=0, atol=0)
    assert g[1] == 0 and g[3] > 0  # sigmoid(-60) ~ 9e-27 is floored, sigmoid(-40) ~ 4e-18 kept
    g.sum().backward()
    assert z.grad[1] == 0 and z.grad[4] == pytest.approx(0.25)


def _dense_forward(model: MGCN, weighting="cosine", include_self=True, item_layers=1):
    """All representations by a dense computation from the model's parameters."""
    P = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    n_users = N_USERS
    a = np.zeros((N_USERS + N_ITEMS,) * 2)
    a[:n_users, n_users:] = R
    a[n_users:, :n_users] = R.T
    a_hat = _sym(a)
    r_hat = a_hat[:n_users, n_users:]
    e0 = np.concatenate([P["lightgcn.user_embedding.weight"], P["lightgcn.item_embedding.weight"]])
    out, x = e0.copy(), e0.copy()
    for _ in range(model.num_layers):
        x = a_hat @ x
        out += x
    behaviour = out / (model.num_layers + 1)
    sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    views = []
    for m in model.modalities:
        x = P[f"feature_tables.{m}"]
        f = x @ P[f"projections.{m}.weight"].T + P[f"projections.{m}.bias"]
        h = P["lightgcn.item_embedding.weight"] * sig(f @ P[f"purify_gates.{m}.weight"].T + P[f"purify_gates.{m}.bias"])
        s = _sym(_dense_topk(_features()[m].astype(np.float64), 3, weighting, include_self))
        for _ in range(item_layers):
            h = s @ h
        views.append(np.concatenate([r_hat @ h, h]))
    logits = np.stack([np.tanh(v @ P["query.0.weight"].T + P["query.0.bias"]) @ P["query.2.weight"][0] for v in views])
    alpha = np.exp(logits) / np.exp(logits).sum(0)
    common = sum(alpha[k][:, None] * v for k, v in enumerate(views))
    fused = common.copy()
    for k, m in enumerate(model.modalities):
        p = sig(behaviour @ P[f"prefer_gates.{m}.weight"].T + P[f"prefer_gates.{m}.bias"])
        fused += p * (views[k] - common)
    fused /= len(views) + 1
    return behaviour, fused


@pytest.mark.parametrize("params", [{}, {"weighting": "binary", "include_self": False, "item_layers": 2}])
def test_forward_matches_a_dense_computation(params):
    model = _build(params, seed=4)
    behaviour, fused = _dense_forward(model, **params)
    b, f, alpha = model.representations()
    np.testing.assert_allclose(b.detach().double().numpy(), behaviour, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f.detach().double().numpy(), fused, rtol=1e-4, atol=1e-6)
    assert torch.allclose(alpha.sum(0), torch.ones(N_USERS + N_ITEMS))
    users, items = model.embeddings()
    final = behaviour + fused
    np.testing.assert_allclose(users.detach().double().numpy(), final[:N_USERS], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(items.detach().double().numpy(), final[N_USERS:], rtol=1e-4, atol=1e-6)
    scores = model.scorer()(torch.arange(N_USERS)).double().numpy()
    np.testing.assert_allclose(scores, final[:N_USERS] @ final[N_USERS:].T, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------- the contrastive task, the loss

def _direct_info_nce(a: np.ndarray, c: np.ndarray, tau: float) -> float:
    """-1/B sum_b log( exp(cos(a_b, c_b)/tau) / sum_b' exp(cos(a_b, c_b')/tau) )."""
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    total = 0.0
    for b in range(len(a)):
        num = np.exp(an[b] @ cn[b] / tau)
        den = sum(np.exp(an[b] @ cn[j] / tau) for j in range(len(c)))
        total += -np.log(num / den)
    return total / len(a)


def test_info_nce_against_its_direct_formula():
    rng = np.random.default_rng(0)
    a, c = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    got = info_nce(torch.tensor(a), torch.tensor(c), 0.2)
    assert float(got) == pytest.approx(_direct_info_nce(a, c, 0.2), rel=1e-10)
    # a hand case: a_b = c_b one-hot, 2 rows, orthogonal: each row -log(e^5 / (e^5 + e^0))
    eye = torch.eye(2, dtype=torch.float64)
    assert float(info_nce(eye, eye, 0.2)) == pytest.approx(np.log1p(np.exp(-5.0)), rel=1e-12)


def test_batch_info_nce_with_repeated_nodes_equals_the_batch_formula():
    """Repeated nodes (a user drawn twice) count in the mean and in every denominator
    exactly as the direct B x B formula has them: same value, same gradient."""
    rng = np.random.default_rng(1)
    anchor = torch.tensor(rng.normal(size=(7, 4)), requires_grad=True)
    other = torch.tensor(rng.normal(size=(7, 4)), requires_grad=True)
    index = torch.tensor([3, 0, 3, 5, 6, 3, 0, 2])
    got = batch_info_nce(anchor, other, index, 0.2)
    want = _direct_info_nce(anchor.detach()[index].numpy(), other.detach()[index].numpy(), 0.2)
    assert float(got.detach()) == pytest.approx(want, rel=1e-10)
    g1 = torch.autograd.grad(got, (anchor, other))
    g2 = torch.autograd.grad(info_nce(anchor[index], other[index], 0.2), (anchor, other))
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_loss_is_bpr_plus_l2_on_final_plus_weighted_contrastive_terms():
    lam_c, lam, tau = 0.3, 0.05, 0.5
    model = _build({"cl_weight": lam_c, "reg_weight": lam, "temperature": tau}, seed=2)
    users = torch.tensor([0, 1, 2, 3, 0, 2])  # user 0 and 2, and item 5, twice
    pos, neg = torch.tensor([1, 3, 4, 5, 2, 5]), torch.tensor([3, 0, 0, 1, 4, 3])
    behaviour, fused = _dense_forward(model)
    final = behaviour + fused
    u, p, n = final[users.numpy()], final[N_USERS + pos.numpy()], final[N_USERS + neg.numpy()]
    x = (u * p).sum(1) - (u * n).sum(1)
    bpr = np.mean(np.log1p(np.exp(-x)))
    l2 = ((u**2).sum() + (p**2).sum() + (n**2).sum()) / (2 * len(users))
    cl = _direct_info_nce(fused[users.numpy()], behaviour[users.numpy()], tau) + _direct_info_nce(
        fused[N_USERS + pos.numpy()], behaviour[N_USERS + pos.numpy()], tau
    )
    loss = model.loss(users, pos, neg)
    assert float(loss.detach()) == pytest.approx(bpr + lam * l2 + lam_c * cl, rel=1e-5)
    loss.backward()
    for name in ("query.0.weight", "prefer_gates.text.weight", "purify_gates.image.weight",
                 "projections.text.weight", "feature_tables.image", "lightgcn.user_embedding.weight"):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name
    # without the contrastive and L2 terms: BPR alone
    plain = _build({"cl_weight": 0.0, "reg_weight": 0.0}, seed=2)
    assert float(plain.loss(users, pos, neg).detach()) == pytest.approx(bpr, rel=1e-5)


def test_features_fixed_or_fine_tuned_and_graphs_frozen():
    model = _build()
    tables = dict(model.named_parameters())
    assert "feature_tables.image" in tables and "feature_tables.text" in tables
    before = model.item_ops["image"].matrix().to_dense().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model.loss(torch.tensor([0, 1, 2]), torch.tensor([1, 3, 4]), torch.tensor([3, 0, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model.item_ops["image"].matrix().to_dense(), before)
    assert not torch.allclose(model.feature_tables["text"].detach(), torch.from_numpy(_features()["text"]))
    model.reset_parameters()  # back to the raw features
    torch.testing.assert_close(model.feature_tables["text"].detach(), torch.from_numpy(_features()["text"]))
    fixed = _build({"train_features": False})
    assert not any("feature" in n for n, _ in fixed.named_parameters())


def test_log_values_are_mean_attention_weights():
    model = _build()
    logged = model.log_values()
    assert set(logged) == {f"attention_{g}_{m}" for g in ("users", "items") for m in ("image", "text")}
    assert logged["attention_users_image"] + logged["attention_users_text"] == pytest.approx(1.0, rel=1e-6)


def test_errors():
    g = torch.eye(3).to_sparse_csr()
    adj = torch.zeros(5, 5).to_sparse_csr()
    ui = torch.ones(2, 3).to_sparse_csr()
    x = {"image": torch.ones(3, 2)}
    with pytest.raises(ConfigError, match="same modalities"):
        MGCN(2, 3, adj, ui, {"text": g}, x)
    with pytest.raises(ConfigError, match="at least one modality"):
        MGCN(2, 3, adj, ui, {}, {})
    with pytest.raises(ConfigError, match="user_item has shape"):
        MGCN(2, 3, adj, torch.ones(3, 2).to_sparse_csr(), {"image": g}, x)
    with pytest.raises(ConfigError, match="temperature"):
        MGCN(2, 3, adj, ui, {"image": g}, x, temperature=0.0)
    with pytest.raises(ConfigError, match="expected"):
        MGCN(2, 3, adj, ui, {"image": g}, {"image": torch.ones(4, 2)})
    with pytest.raises(DataError, match="no video"):
        build_model("mgcn", _dataset(), {"modalities": "video"})
    with pytest.raises(ConfigError, match="weighting"):
        build_model("mgcn", _dataset(), {"weighting": "heat"})


# ----------------------------------------------------------- stored graphs (--graph)

def _store(ds, folder, modality, **spec) -> str:
    """Build a one-modality kNN graph of ``ds`` as ``graphrec build-graph`` does and store it."""
    from graphrec.testing import store_built_graph

    return store_built_graph(ds, folder, **{**dict(kind="knn", k=3, modalities=(modality,), weighting="cosine",
                                                   include_self=True), **spec})


def _same_graphs(a: dict, b: dict) -> bool:
    from graphrec.testing import same_sparse_tensors

    return same_sparse_tensors(a, b)


@pytest.mark.parametrize("normalization", ["none", "sym"])
@pytest.mark.parametrize("weighting", ["cosine", "binary"])
@pytest.mark.parametrize("include_self", [True, False])
def test_stored_graphs_give_the_graphs_the_builder_builds(normalization, weighting, include_self, tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 4, "k": 3, "weighting": weighting, "include_self": include_self}
    built = build_model("mgcn", ds, params).item_graphs()
    spec = dict(normalization=normalization, weighting=weighting, include_self=include_self)
    text = _store(ds, tmp_path / "text", "text", **spec)
    image = _store(ds, tmp_path / "image", "image", **spec)
    for graphs in ([text], [text, image]):  # one modality stored (the other built), or both
        got = build_model("mgcn", ds, dict(params, graphs=graphs)).item_graphs()
        assert _same_graphs(got, built)


def test_stored_graphs_are_checked(tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 4, "k": 3}
    cases = [
        (dict(weighting="binary"), "binary weights; mgcn's modality graphs are cosine: rebuild it with --weighting "
                                   "cosine, or train with --weighting binary"),
        (dict(symmetric=True), "symmetrised"),
        (dict(k=2), "k=2"),
        (dict(include_self=False), "include_self"),
        (dict(normalization="row"), "'row' normalisation"),
        (dict(kind="cooccur", modalities=None), "one-modality kNN"),
    ]
    for i, (spec, words) in enumerate(cases):
        path = _store(ds, tmp_path / f"g{i}", "text", **spec)
        with pytest.raises(DataError, match=words) as err:
            build_model("mgcn", ds, dict(params, graphs=[path]))
        assert path in str(err.value) and "\n" not in str(err.value)
    text = _store(ds, tmp_path / "text", "text")
    with pytest.raises(DataError, match="two stored graphs"):
        build_model("mgcn", ds, dict(params, graphs=[text, text]))
    with pytest.raises(DataError, match="not among --modalities image"):
        build_model("mgcn", ds, dict(params, modalities="image", graphs=[text]))
    with pytest.raises(DataError, match="cosine weights; mgcn's modality graphs are binary: rebuild it with "
                                        "--weighting binary, or train with --weighting cosine"):
        build_model("mgcn", ds, dict(params, weighting="binary", graphs=[text]))
    other = _dataset()
    other.item_features["text"] = other.item_features["text"][::-1].copy()  # other content: refused on load
    with pytest.raises(DataError, match="other item content"):
        build_model("mgcn", other, dict(params, graphs=[text]))


# ----------------------------------------------------------- real data

def test_mgcn_beats_most_popular_on_lastfm(shared_data):
    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "image": "vggish.npy"})
    config = TrainConfig(epochs=4, lr=5e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "mgcn", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
