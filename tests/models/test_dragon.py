"""DRAGON: the model contract, the user-user aggregation operator by hand (top-k
co-occurring users, softmax of the shared-item counts, ties, a lonely user), the item
graph is FREEDOM's frozen graph, the whole forward pass against a dense computation,
the loss by hand, frozen graphs and features, errors, cold start through the registry,
and a short real-data run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset, build_dataset, cold_start
from graphrec.data.formats import read_mmrec
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.models.dragon import DRAGON
from graphrec.nn import to_scipy_csr, to_torch_sparse
from graphrec.testing import DEVICE, RecommenderContract
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.builders.dragon import user_aggregation_graph
from graphrec.train.builders.freedom import frozen_item_graph
from graphrec.train.evaluate import most_popular_scorer

SMALL = {"embedding_dim": 8, "k": 5, "user_k": 5}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestDRAGONContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("dragon", dataset, SMALL)


class TestDRAGONVariantContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model(
            "dragon",
            dataset,
            dict(SMALL, aggregation="mean", include_self=False, item_layers=2, user_layers=2, num_layers=1, reg_weight=0.1),
        )


class TestDRAGONOneModalityContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("dragon", dataset, dict(SMALL, modalities="text", user_layers=0, item_layers=0))


# ----------------------------------------------------------- 5 users, 5 items, by hand

#   u0: 0 1 2    u1: 0 1    u2: 1 3    u3: 0 1 3    u4: 4 (nobody else has item 4)
N_USERS, N_ITEMS = 5, 5
R = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
R[[0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4], [0, 1, 2, 0, 1, 1, 3, 0, 1, 3, 4]] = 1
# shared items: (0,1) 2, (0,2) 1, (0,3) 2, (1,2) 1, (1,3) 2, (2,3) 2; u4 shares none
E = math.e


def _features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "image": rng.uniform(0.05, 1.0, size=(N_ITEMS, 3)).astype(np.float32),
        "text": rng.uniform(0.05, 1.0, size=(N_ITEMS, 4)).astype(np.float32),
    }


def _dataset(features: dict[str, np.ndarray] | None = None) -> Dataset:
    u, i = np.nonzero(R)
    return build_dataset(
        u, i, ["train"] * len(u), user_ids=np.arange(N_USERS), item_ids=np.arange(N_ITEMS),
        item_features=features or _features(), name="five",
    )


def test_user_aggregation_operator_by_hand():
    u = user_aggregation_graph(sp.csr_matrix(R), k=2).toarray()
    want = np.zeros((5, 5))
    want[0, [1, 3]] = 0.5  # counts 2 and 2 (u2's 1 is cut)
    want[1, [0, 3]] = 0.5
    # u2: u3 shares 2 items; u0 and u1 share 1 each, the tie goes to the lower user u0
    want[2, 3], want[2, 0] = E**2 / (E**2 + E), E / (E**2 + E)
    want[3, [0, 1]] = 0.5  # u0, u1 and u2 all share 2 items with u3: the two lowest are kept
    # u4 shares no item with anyone: an empty row (no neighbour term)
    assert np.allclose(u, want, atol=1e-6)
    u3 = user_aggregation_graph(sp.csr_matrix(R), k=3).toarray()
    assert np.allclose(u3[0, [1, 2, 3]], np.array([E**2, E, E**2]) / (2 * E**2 + E), atol=1e-6)
    assert np.allclose(u3[2, [0, 1, 3]], np.array([E, E, E**2]) / (2 * E + E**2), atol=1e-6)
    assert np.allclose(u3[3, [0, 1, 2]], 1 / 3, atol=1e-6)
    assert np.allclose(u3.sum(axis=1), [1, 1, 1, 1, 0], atol=1e-6)


def test_user_aggregation_is_stable_for_large_counts():
    # 300 shared items against 1: exp(300) overflows float64 without the row maximum
    r = np.zeros((3, 301), np.float32)
    r[:2, :300] = 1
    r[0, 300] = r[2, 300] = 1
    u = user_aggregation_graph(sp.csr_matrix(r), k=2).toarray()
    assert np.isfinite(u).all()
    assert np.isclose(u[0, 1], 1 / (1 + math.exp(-299)), atol=1e-6) and u[0, 2] < 1e-100 + 1e-30
    assert np.isclose(u[2, 0], 1.0)


def test_model_aggregates_users_with_the_operator():
    ds = _dataset()
    model = build_model("dragon", ds, {"embedding_dim": 4, "user_k": 2, "k": 2})
    e = torch.arange(5 * 3, dtype=torch.float32).reshape(5, 3)
    h = model.user_aggregate(e)
    want = torch.zeros(5, 3)
    want[0] = 0.5 * (e[1] + e[3])
    want[1] = 0.5 * (e[0] + e[3])
    want[2] = (E**2 * e[3] + E * e[0]) / (E**2 + E)
    want[3] = 0.5 * (e[0] + e[1])
    assert torch.allclose(h, want, atol=1e-5)
    assert torch.equal(h[4], torch.zeros(3))


def test_item_graph_is_freedoms_frozen_graph():
    ds = _dataset()
    for include_self in (True, False):
        model = build_model("dragon", ds, {"embedding_dim": 4, "k": 2, "include_self": include_self})
        want = frozen_item_graph(ds, {"image": 0.1, "text": 0.9}, k=2, include_self=include_self)
        assert list(model.item_graphs()) == ["item"] and list(model.user_graphs()) == ["user"]
        got = to_scipy_csr(model.item_graphs()["item"])
        assert abs(got - want).max() < 1e-7


def _dense_forward(model: DRAGON, adj: np.ndarray, s: np.ndarray, u: np.ndarray, features) -> tuple[np.ndarray, np.ndarray]:
    """The module doc's formulas with dense numpy matrices and the model's parameters."""
    users, items = [], []
    for j, m in enumerate(model.modalities):
        lin1, _, lin2 = model.projections[m]
        x = features[m].astype(np.float64)
        h1 = x @ lin1.weight.detach().double().numpy().T + lin1.bias.detach().double().numpy()
        h1 = np.where(h1 > 0, h1, 0.01 * h1)
        f = h1 @ lin2.weight.detach().double().numpy().T + lin2.bias.detach().double().numpy()
        x0 = np.concatenate([model.preferences[m].detach().double().numpy(), f])
        x0 = x0 / np.linalg.norm(x0, axis=1, keepdims=True)
        total, cur = x0.copy(), x0
        for _ in range(model.num_layers):
            cur = adj @ cur
            total += cur
        w = model.modality_weights.detach().double().numpy()[:, j : j + 1]
        users.append(w * total[:N_USERS])
        items.append(total[N_USERS:])
    e_u, e_i = np.concatenate(users, 1), np.concatenate(items, 1)
    h_u, h_i = e_u, e_i
    for _ in range(model.user_layers):
        h_u = u @ h_u
    for _ in range(model.item_layers):
        h_i = s @ h_i
    return e_u + h_u, e_i + h_i


@pytest.mark.parametrize(
    "params",
    [{}, {"aggregation": "mean", "num_layers": 1, "item_layers": 2, "user_layers": 2}, {"modalities": "image"}],
)
def test_forward_matches_a_dense_computation(params):
    feats = _features()
    ds = _dataset(feats)
    torch.manual_seed(0)
    model = build_model("dragon", ds, dict({"embedding_dim": 4, "k": 2, "user_k": 2}, **params))
    # the user-item graph by hand: A = [[0, R], [R^T, 0]], degrees = interactions
    a = np.zeros((10, 10))
    a[:5, 5:], a[5:, :5] = R, R.T
    deg = a.sum(1)
    if params.get("aggregation") == "mean":
        adj = a / deg[:, None]
    else:
        adj = a / np.sqrt(deg)[:, None] / np.sqrt(deg)[None, :]
    s = to_scipy_csr(model.item_graph()).toarray()
    u = user_aggregation_graph(sp.csr_matrix(R), k=2).toarray()
    want_u, want_i = _dense_forward(model, adj, s, u, feats)
    got_u, got_i = model.embeddings()
    d = 4 * len(model.modalities)
    assert got_u.shape == (5, d) and got_i.shape == (5, d)
    assert np.allclose(got_u.detach().numpy(), want_u, atol=1e-5)
    assert np.allclose(got_i.detach().numpy(), want_i, atol=1e-5)


def test_loss_is_bpr_plus_mean_squares_of_preferences_and_weights():
    ds = _dataset()
    torch.manual_seed(1)
    model = build_model("dragon", ds, {"embedding_dim": 4, "k": 2, "reg_weight": 0.3})
    users, pos, neg = torch.tensor([0, 2, 2, 4]), torch.tensor([1, 3, 1, 4]), torch.tensor([4, 0, 2, 0])
    eu, ei = model.embeddings()
    diff = (eu[users] * ei[pos]).sum(1) - (eu[users] * ei[neg]).sum(1)
    bpr = -torch.log(torch.sigmoid(diff)).mean()
    reg = model.modality_weights.pow(2).mean()
    for m in ("image", "text"):
        reg = reg + model.preferences[m][users].pow(2).mean()  # the batch's users, repeats counted
    assert torch.allclose(model.loss(users, pos, neg), bpr + 0.3 * reg, atol=1e-6)


def test_attention_weights_start_as_a_softmax_and_are_logged():
    model = build_model("dragon", _dataset(), {"embedding_dim": 4, "k": 2})
    w = model.modality_weights.detach()
    assert w.shape == (5, 2) and torch.allclose(w.sum(1), torch.ones(5)) and (w > 0).all()
    logged = model.log_values()
    assert set(logged) == {"modality_weight_image", "modality_weight_text"}
    assert math.isclose(logged["modality_weight_image"], float(w[:, 0].mean()), rel_tol=1e-6)


def test_graphs_and_features_stay_frozen_while_training():
    ds = _dataset()
    torch.manual_seed(0)
    model = build_model("dragon", ds, {"embedding_dim": 4, "k": 2, "user_k": 2})
    before = {name: t.clone() for name, t in (("item", model.item_graph().values()),
                                               ("user", model.user_graph().values()),
                                               ("text", model._features("text")))}
    pref = model.preferences["text"].detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model.loss(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.tensor([4, 3, 2])).backward()
        opt.step()
    assert torch.equal(before["item"], model.item_graph().values())
    assert torch.equal(before["user"], model.user_graph().values())
    assert torch.equal(before["text"], model._features("text"))
    assert not torch.equal(pref, model.preferences["text"].detach())
    # features are data (rebuilt from the dataset), not checkpointed
    assert not any(k.startswith("features_") for k in model.state_dict())


def test_errors():
    adj = torch.eye(10).to_sparse_csr()
    s, u = torch.eye(5).to_sparse_csr(), torch.eye(5).to_sparse_csr()
    x = {"text": torch.ones(5, 3)}
    with pytest.raises(ConfigError, match="needs item features"):
        DRAGON(5, 5, adj, s, u, {})
    with pytest.raises(ConfigError, match="user_graph has shape"):
        DRAGON(5, 5, adj, s, torch.eye(4).to_sparse_csr(), x)
    with pytest.raises(ConfigError, match="adjacency has shape"):
        DRAGON(5, 5, torch.eye(9).to_sparse_csr(), s, u, x)
    with pytest.raises(ConfigError, match=r"features\['text'\] have shape"):
        DRAGON(5, 5, adj, s, u, {"text": torch.ones(4, 3)})
    with pytest.raises(ConfigError, match="reg_weight"):
        DRAGON(5, 5, adj, s, u, x, reg_weight=-1.0)
    with pytest.raises(ConfigError, match="aggregation"):
        build_model("dragon", _dataset(), {"aggregation": "max"})
    with pytest.raises(DataError, match="no audio features"):
        build_model("dragon", _dataset(), {"modalities": "audio"})
    no_features = build_dataset(*np.nonzero(R), ["train"] * int(R.sum()))
    with pytest.raises((ConfigError, DataError), match="features"):
        build_model("dragon", no_features)


# ----------------------------------------------------------- stored graphs (--graph)


def _store(ds, folder, modality, **spec) -> str:
    """Build a graph of ``ds`` as ``graphrec build-graph`` does and store it: a binary
    one-modality kNN graph by default, or ``kind="user-cooccur"``."""
    from graphrec.testing import store_built_graph

    if spec.get("kind") == "user-cooccur":
        opts = dict(cooccur_top_k=2)
    else:
        opts = dict(kind="knn", k=2, modalities=(modality,), weighting="binary", include_self=True)
    return store_built_graph(ds, folder, **{**opts, **spec})


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two sparse CSR tensors equal bit for bit (pattern and values)."""
    return (torch.equal(a.crow_indices(), b.crow_indices()) and torch.equal(a.col_indices(), b.col_indices())
            and torch.equal(a.values(), b.values()))


@pytest.mark.parametrize("normalization", ["none", "sym"])
@pytest.mark.parametrize("include_self", [True, False])
def test_stored_graphs_give_the_graphs_the_builder_builds(normalization, include_self, tmp_path):
    """Stored modality graphs feed the frozen merged item graph as FREEDOM's do; a stored
    user-cooccur graph of the top user_k counts gives the softmax user operator: both bit for bit."""
    ds = _dataset()
    params = {"embedding_dim": 4, "k": 2, "user_k": 2, "include_self": include_self}
    built = build_model("dragon", ds, params)
    spec = dict(normalization=normalization, include_self=include_self)
    text = _store(ds, tmp_path / "text", "text", **spec)
    image = _store(ds, tmp_path / "image", "image", **spec)
    users = _store(ds, tmp_path / "users", None, kind="user-cooccur")
    for graphs in ([text], [text, image], [users], [image, users, text]):
        got = build_model("dragon", ds, dict(params, graphs=graphs))
        assert _same(got.item_graph(), built.item_graph())
        assert _same(got.user_graph(), built.user_graph())
    # the user graph really is the stored one: a top-3 graph with --user-k 3
    users3 = _store(ds, tmp_path / "users3", None, kind="user-cooccur", cooccur_top_k=3)
    got = build_model("dragon", ds, dict(params, user_k=3, graphs=[users3]))
    assert _same(got.user_graph(), build_model("dragon", ds, dict(params, user_k=3)).user_graph())
    assert not torch.equal(got.user_graph().to_dense(), built.user_graph().to_dense())


def test_stored_graphs_are_checked(tmp_path):
    ds = _dataset()
    params = {"embedding_dim": 4, "k": 2, "user_k": 2}
    cases = [
        (dict(weighting="cosine"), "cosine weights; dragon's modality graphs are binary"),
        (dict(symmetric=True), "symmetrised"),
        (dict(k=3), "k=3"),
        (dict(include_self=False), "include_self"),
        (dict(normalization="row"), "'row' normalisation"),
        (dict(kind="cooccur", modalities=None), "one-modality kNN graphs and a user-cooccur graph"),
        (dict(kind="user-cooccur", cooccur_top_k=3), "top 3 co-occurring users per user but --user-k is 2"),
        (dict(kind="user-cooccur", cooccur_top_k=None), "every co-occurring user per user"),
        (dict(kind="user-cooccur", cooccur_min_count=2), "fewer than 2 items"),
        (dict(kind="user-cooccur", symmetric=True), "symmetrised"),
        (dict(kind="user-cooccur", normalization="row"), "'row' normalisation; DRAGON takes the raw counts"),
        (dict(kind="user-cooccur", normalization="sym"), "'sym' normalisation; DRAGON takes the raw counts"),
    ]
    for i, (spec, words) in enumerate(cases):
        path = _store(ds, tmp_path / f"g{i}", "text", **spec)
        with pytest.raises(DataError, match=words) as err:
            build_model("dragon", ds, dict(params, graphs=[path]))
        message = str(err.value)
        assert path in message and "\n" not in message
        if spec.get("kind") == "user-cooccur":
            assert "build-graph --kind user-cooccur --cooccur-top-k 2" in message
    text = _store(ds, tmp_path / "text", "text")
    users = _store(ds, tmp_path / "users", None, kind="user-cooccur")
    with pytest.raises(DataError, match="two stored graphs"):
        build_model("dragon", ds, dict(params, graphs=[text, text]))
    with pytest.raises(DataError, match="2 stored user-cooccur graphs"):
        build_model("dragon", ds, dict(params, graphs=[users, users]))
    with pytest.raises(DataError, match="not among the merged modalities image"):
        build_model("dragon", ds, dict(params, modalities="image", graphs=[text]))
    r = R.copy()
    r[4, 4], r[4, 2] = 0, 1  # other interactions, as many users and items
    other = build_dataset(*np.nonzero(r), ["train"] * int(r.sum()), user_ids=np.arange(N_USERS),
                          item_ids=np.arange(N_ITEMS), item_features=_features(), name="five")
    with pytest.raises(DataError, match="the data differ"):  # refused on load
        build_model("dragon", other, dict(params, graphs=[users]))


# ----------------------------------------------------------- cold start through the registry


def test_cold_start_through_the_registry(tmp_path):
    data = tmp_path / "syn"
    ds = synthetic_catalogue(n_users=90, n_items=60, n_clusters=3, seed=2)
    ds.save(data)
    cold = cold_start(ds, 0.2, 0)
    model = build_model("dragon", cold, {"embedding_dim": 4, "user_k": 5})
    # the user graph sees training interactions only: no cold item links two users
    want = user_aggregation_graph(cold.train, k=5)
    assert abs(to_scipy_csr(model.user_graphs()["user"]) - want).max() < 1e-7
    everything = user_aggregation_graph(ds.train + ds.valid + ds.test, k=5)
    assert abs(want - everything).max() > 0
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "dragon", "--data", str(data), "--dim", "4", "--user-k", "5",
                                   "--epochs", "2", "--cold-start", "0.2", "--device", "cpu", "--out", str(out),
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "modality_weight_text" in res.output


# ----------------------------------------------------------- real data


def test_dragon_beats_most_popular_on_lastfm(shared_data):
    ds = read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "image": "vggish.npy"})
    config = TrainConfig(epochs=6, lr=1e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "dragon", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
