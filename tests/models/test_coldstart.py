"""The cold-item path (graphrec/models/coldstart.py): a hand-computed case, the model
contract with the path around several models, the warm scores left exactly as the base
model's, new items scored as unseen catalogue items, and no cold item's interactions in
any training structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data import Dataset, cold_start
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.models import LightGCN
from graphrec.models.cb import ContentKNN
from graphrec.models.coldstart import ColdItemRecommender, unwrap
from graphrec.nn import to_torch_sparse
from graphrec.testing import RecommenderContract, contract_dataset
from graphrec.train import TrainConfig, run_training
from graphrec.train.builders import build_model
from graphrec.train.builders._cold import cold_path_features
from graphrec.train.record import learned_weights

PATH = {"cold_path": "content", "cold_k": 5}


def _cold_contract_dataset() -> Dataset:
    """The contract dataset with 20% of its items cold (hidden protocol: valid/test keep
    warm and cold positives)."""
    return cold_start(contract_dataset(), 0.2, 0, "hidden")


class _ColdContract:
    def _dataset(self) -> Dataset:
        if not hasattr(type(self), "_ds"):
            type(self)._ds = _cold_contract_dataset()
        return type(self)._ds


class TestLightGCNWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("lightgcn", dataset, PATH)


class TestMFWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("mf", dataset, PATH)


class TestVBPRWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("vbpr", dataset, PATH)


class TestMMGEFWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(PATH, k=5))


class TestMMGEFLearnedWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("mmgef", dataset, dict(PATH, k=5, structure="learned"))


class TestLATTICEWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("lattice", dataset, dict(PATH, k=5))


class TestFREEDOMWithPath(_ColdContract, RecommenderContract):
    def make_model(self, dataset):
        return build_model("freedom", dataset, dict(PATH, k=5))


def _tiny() -> tuple[ColdItemRecommender, LightGCN]:
    """3 users, 4 items; item 3 has no training interaction. Histories: u0 {0, 1},
    u1 {1}, u2 {2}. Content graph S (raw cosines, row j = j's neighbours):
    S_03 = 0.5, S_13 = 0.25, S_21 = 0.75, S_30 = 0.5."""
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    sim = sp.csr_matrix(
        (np.array([0.5, 0.25, 0.75, 0.5], dtype=np.float32), (np.array([0, 1, 2, 3]), np.array([3, 3, 1, 0]))),
        shape=(4, 4),
    )
    adj = torch.zeros(7, 7).to_sparse_csr()
    base = LightGCN(3, 4, adj, embedding_dim=2, num_layers=0)
    with torch.no_grad():
        base.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        base.item_embedding.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [9.0, 9.0]]))
    feats = torch.eye(4)
    knn = ContentKNN(3, 4, to_torch_sparse(train), to_torch_sparse(sim))
    model = ColdItemRecommender(base, feats, torch.tensor([True, True, True, False]), knn, embedding_dim=2, hidden_dim=3)
    with torch.no_grad():  # f(x) = W2 tanh(W1 x): W1 = first 3 rows of I4, W2 maps to (h0, h1)
        model.tower[0].weight.copy_(torch.eye(3, 4))
        model.tower[0].bias.zero_()
        model.tower[2].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        model.tower[2].bias.copy_(torch.tensor([0.5, -0.5]))
        model.gamma.fill_(2.0)
    return model, base


def test_hand_computed_scores_and_neighbour_term():
    model, base = _tiny()
    # neighbour term nb(u, 3) = sum_{j in R_u} S_j3: u0 -> 0.5 + 0.25, u1 -> 0.25, u2 -> 0
    users = torch.tensor([0, 1, 2])
    nb = model.neighbours.pair_scores(users, torch.tensor([3, 3, 3]))
    torch.testing.assert_close(nb, torch.tensor([0.75, 0.25, 0.0]))
    # the pair lookup equals CB's whole-row scores
    torch.testing.assert_close(model.neighbours.pair_scores(users.repeat(4), torch.arange(4).repeat_interleave(3)),
                               model.neighbours.user_scores(users).t().reshape(-1))
    # item 3 is unseen: f(x_3) = W2 tanh(W1 e_3) + b2 = (0.5, -0.5) (W1 e_3 = 0)
    scores = model.scorer()(users)
    want_cold = torch.tensor([1 * 0.5 + 0 * -0.5 + 2 * 0.75, 0 * 0.5 + 1 * -0.5 + 2 * 0.25, 0.5 - 0.5 + 0.0])
    torch.testing.assert_close(scores[:, 3], want_cold)
    # seen items keep the base model's scores exactly
    assert torch.equal(scores[:, :3], base.scorer()(users)[:, :3])
    # forward / pairwise agree with the scorer
    torch.testing.assert_close(model(users, torch.tensor([3, 3, 3])), want_cold)
    torch.testing.assert_close(model(users, torch.tensor([0, 1, 2])), scores[[0, 1, 2], [0, 1, 2]])
    # candidates [3, 1]: the path's column for the unseen item, the base model's for the seen one
    torch.testing.assert_close(model.scorer(torch.tensor([3, 1]))(users), torch.stack([want_cold, scores[:, 1]], 1))


def test_the_scorer_propagates_the_base_model_once(monkeypatch):
    """Both terms of the served scores (the base model's inner products and the path's
    e_u . f(x_i)) come from one propagation of the base model, with or without candidates."""
    model, base = _tiny()
    calls = []
    inner = base.embeddings
    monkeypatch.setattr(base, "embeddings", lambda: calls.append(1) or inner())
    model.scorer()
    model.scorer(torch.tensor([3, 0]))
    model.scorer(torch.tensor([3, 0]), new_items=model.features[[3, 1]])
    assert len(calls) == 3


def test_regression_objective_by_hand():
    """The path's loss (regress): mean over the batch's SEEN items of (c_ui - s_ui)^2,
    plus the base loss and reg * ||f||^2 / 2B."""
    model, base = _tiny()
    model.reg_weight = 0.0
    users, pos, neg = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    base_loss = base.loss(users, pos, neg)
    # c(0, 1) = f(x_1) . e_0 + 2 nb(0, 1); f(x_1) = W2 tanh(e_1[:3]) + b = (0.5, tanh(1) - 0.5); nb(0,1) = 0 (S_j1: j=2 only)
    c1 = 0.5 + 2 * 0.0
    c2 = 0.5 + 2 * 0.0  # f(x_2) = (0.5, -0.5); nb(0, 2) = 0
    s1, s2 = 3.0, 0.0
    want = base_loss + ((c1 - s1) ** 2 + (c2 - s2) ** 2) / 2
    torch.testing.assert_close(model.loss(users, pos, neg), want)


def test_path_leaves_the_base_models_training_and_warm_scores_unchanged():
    """Same seed, same epochs: the base model trained alone and inside the path end with the same
    weights, so every seen item's score is the base model's (the path costs no warm
    quality)."""
    ds = _cold_contract_dataset()
    cfg = TrainConfig(epochs=3, eval_every=3, progress=False)  # one evaluation: both keep epoch 3
    rec_alone, alone = run_training(ds, "lightgcn", {"cold_path": "none"}, cfg)
    rec_wrapped, wrapped = run_training(ds, "lightgcn", dict(PATH), cfg)
    # the record's loss adds the path's terms; its base_loss is the model's own, the loss alone
    for a, w in zip(rec_alone["history"], rec_wrapped["history"]):
        assert w["model"]["base_loss"] == pytest.approx(a["loss"], rel=1e-6) and w["loss"] > a["loss"]
        assert "base_loss" not in learned_weights(w) and "cold_gamma" in learned_weights(w)
    assert isinstance(wrapped, ColdItemRecommender) and unwrap(wrapped) is wrapped.base
    for (k, a), (k2, b) in zip(alone.state_dict().items(), wrapped.base.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    users = torch.arange(ds.n_users)
    seen = np.setdiff1d(np.arange(ds.n_items), ds.cold_items)
    assert torch.equal(wrapped.scorer()(users)[:, seen], alone.scorer()(users)[:, seen])
    cold = torch.as_tensor(ds.cold_items)
    assert not torch.allclose(wrapped.scorer()(users)[:, cold], alone.scorer()(users)[:, cold])


def test_new_item_scored_as_unseen_catalogue_item():
    """A cold item of the catalogue, scored from its features alone as if it arrived after
    training, gets the score it has in the catalogue."""
    ds = _cold_contract_dataset()
    cfg = TrainConfig(epochs=2, progress=False)
    _, model = run_training(ds, "mmgef", dict(PATH, k=5), cfg)
    x = torch.from_numpy(cold_path_features(ds))
    cold = torch.as_tensor(ds.cold_items)
    users = torch.arange(ds.n_users)
    with torch.no_grad():
        in_catalogue = model.scorer()(users)[:, cold]
        new = model.new_item_scores(users, x[cold])
    torch.testing.assert_close(new, in_catalogue, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="features of shape"):
        model.new_item_scores(users, x[cold][:, :3])
    # beside the catalogue (or candidates), on one propagation: their columns follow
    with torch.no_grad():
        both = model.scorer(new_items=x[cold])(users)
        some = model.scorer(torch.tensor([int(cold[0]), 0]), new_items=x[cold[:2]])(users)
    torch.testing.assert_close(both, torch.cat([model.scorer()(users), new], 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(some, both[:, [int(cold[0]), 0, ds.n_items, ds.n_items + 1]], rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="features of shape"):
        model.scorer(new_items=x[cold][:, :3])


def test_no_cold_interaction_reaches_a_training_structure():
    """Under both protocols the path's histories, its seen mask and the base model's
    user-item graph hold no interaction of a cold item."""
    for protocol in ("papers", "hidden"):
        ds = cold_start(contract_dataset(), 0.2, 1, protocol)
        model = build_model("lightgcn", ds, PATH)
        cold = torch.as_tensor(ds.cold_items)
        assert not model.seen[cold].any() and model.seen.sum() == ds.n_items - len(cold)
        assert not torch.isin(model.neighbours.history_cols, cold).any()
        adj = model.base.adj.to_sparse_coo().coalesce().indices()
        item_nodes = adj[1][adj[0] < ds.n_users] - ds.n_users
        assert not torch.isin(item_nodes, cold).any()


def test_record_and_reload(tmp_path):
    """The switch is recorded with the run, and the saved run reloads with the path."""
    from graphrec.train.run import cold_start_transforms, load_run

    path = tmp_path / "data"
    contract_dataset().save(path)
    ds = cold_start(Dataset.load(path), 0.2, 0, "hidden")
    rec, model = run_training(ds, "lightgcn", dict(PATH), TrainConfig(epochs=2, progress=False), out=tmp_path / "run",
                              data_path=path, transforms=cold_start_transforms(0.2, 0, "hidden"))
    assert rec["model_params"]["cold_path"] == "content" and rec["model_params"]["cold_k"] == 5
    _, _, again = load_run(tmp_path / "run")
    assert isinstance(again, ColdItemRecommender)
    users = torch.arange(ds.n_users)
    torch.testing.assert_close(again.scorer()(users), model.scorer()(users))


def test_cold_path_needs_features_and_embeddings():
    import dataclasses

    ds = contract_dataset()
    with pytest.raises(ConfigError, match="needs item content features.*--cold-path none"):
        build_model("lightgcn", dataclasses.replace(ds, item_features={}), PATH)
    with pytest.raises(ConfigError, match="cold_path"):
        build_model("lightgcn", ds, {"cold_path": "sometimes"})
    with pytest.raises(ConfigError, match="cb"):
        build_model("cb", ds, {"cold_path": "content"})


def test_base_model_reachable_through_the_path():
    """What the base model offers (item graphs, weights) is reachable through the wrapper,
    and export-graph's item graph is the base model's."""
    ds = _cold_contract_dataset()
    model = build_model("mmgef", ds, dict(PATH, k=5))
    assert model.attention_weights() == model.base.attention_weights()
    m, b = model.item_graph(), model.base.item_graph()
    assert torch.equal(m.to_dense(), b.to_dense())
    assert list(model.item_graphs()) == ["item"] and torch.equal(model.item_graphs()["item"].to_dense(), b.to_dense())
    dragon = build_model("dragon", ds, dict(PATH, k=5, user_k=5))
    assert torch.equal(dragon.user_graphs()["user"].to_dense(), dragon.base.user_graph().to_dense())


def test_off_by_default_and_on_for_any_registered_model(tmp_path):
    """The path is off unless asked for; `graphrec train MODEL --cold-path content` puts it
    around a model and records it."""
    import json

    from typer.testing import CliRunner

    from graphrec.cli import make_app

    cold = _cold_contract_dataset()
    assert isinstance(build_model("lightgcn", cold), LightGCN)
    data_dir = contract_dataset().save(tmp_path / "data")
    out = tmp_path / "run"
    res = CliRunner().invoke(make_app(), ["train", "mf", "--data", str(data_dir), "--epochs", "2", "--cold-start", "0.2",
                                          "--cold-path", "content", "--cold-k", "5", "--device", "cpu", "--out", str(out),
                                          "--quiet"])
    assert res.exit_code == 0, res.output
    params = json.loads((out / "record.json").read_text())["model_params"]
    assert params["cold_path"] == "content" and params["cold_k"] == 5


def test_records_from_before_the_path_rebuild_without_it():
    """A ranking run recorded before the cold-item path existed has no cold_path: it
    means none, so the model rebuilt for its checkpoint is the one it trained."""
    from graphrec.train.run import buildable_params

    ds = _cold_contract_dataset()
    old = {"model": "lightgcn", "model_params": {"embedding_dim": 64, "num_layers": 2, "reg_weight": 1e-4}}
    params = buildable_params(old, ds)
    assert params["cold_path"] == "none"
    assert isinstance(build_model("lightgcn", ds, params), LightGCN)
    new = {"model": "lightgcn", "model_params": dict(old["model_params"], cold_path="content")}
    assert buildable_params(new, ds)["cold_path"] == "content"


def test_path_on_real_data_reaches_new_items(shared_data):
    """amazon-scientific under the papers' protocol, a few epochs: LightGCN alone ranks
    the new items near zero, with the path it reaches them, within reach of content kNN
    computed in the same test (same split, same users)."""
    from graphrec.data.formats import read_unisrec

    ds = cold_start(read_unisrec(shared_data / "amazon-scientific", unseen="keep"), 0.2, 0, "papers")
    config = TrainConfig(epochs=3, lr=1e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    alone, _ = run_training(ds, "lightgcn", {"cold_path": "none"}, config)
    path, model = run_training(ds, "lightgcn", {"cold_path": "content"}, config)
    cb, _ = run_training(ds, "cb", {}, config)
    assert isinstance(model, ColdItemRecommender)
    lg, ours, content = (r["test"]["cold"] for r in (alone, path, cb))
    assert lg["users"] == ours["users"] == content["users"]
    assert lg["recall@20"] < 0.02
    assert ours["recall@20"] > max(5 * lg["recall@20"], 0.5 * content["recall@20"]), (lg, ours, content)
    assert ours["ndcg@20"] > 0.5 * content["ndcg@20"], (ours, content)


def test_recommend_ranks_new_items_as_unseen_catalogue_items(tmp_path):
    """`graphrec recommend --new-items`: the cold items of a run, given again as new items
    (features only, new ids), get the scores and ranks they have in the catalogue."""
    from typer.testing import CliRunner

    from graphrec.cli import make_app
    from graphrec.train.recommend import recommend_run
    from graphrec.train.run import cold_start_transforms

    path = tmp_path / "data"
    contract_dataset().save(path)
    ds = cold_start(Dataset.load(path), 0.2, 0, "hidden")
    run_training(ds, "mmgef", dict(PATH, k=5), TrainConfig(epochs=2, progress=False), out=tmp_path / "run",
                 data_path=path, transforms=cold_start_transforms(0.2, 0, "hidden"))
    cold = ds.cold_items
    new_ids = np.array([f"new-{i}" for i in cold])
    np.savez(tmp_path / "new.npz", item_id=new_ids, **{m: a[cold] for m, a in ds.item_features.items()})
    (tmp_path / "old.txt").write_text("\n".join(np.asarray(ds.item_ids)[cold]) + "\n")
    (tmp_path / "new.txt").write_text("\n".join(new_ids) + "\n")
    # (nothing excluded: the catalogue's copies of a user's removed hidden-split pairs are masked, new items never)
    old = recommend_run(tmp_path / "run", k=5, items=tmp_path / "old.txt", exclude_seen=False)
    new = recommend_run(tmp_path / "run", k=5, items=tmp_path / "new.txt", new_items=tmp_path / "new.npz",
                        exclude_seen=False)
    rename = dict(zip(np.asarray(ds.item_ids)[cold].astype(str), new_ids))
    assert [rename[i] for i in old.item_id] == list(new.item_id)
    np.testing.assert_allclose(new.score, old.score, rtol=1e-5, atol=1e-5)
    # beside the catalogue: new items compete with every item
    both = recommend_run(tmp_path / "run", k=20, new_items=tmp_path / "new.npz")
    assert set(both.item_id) & set(new_ids) and set(both.item_id) - set(new_ids)
    # candidates among both (the catalogue's warm items: a cold one ties with its new copy):
    # the lists of every item ranked, kept to the candidates
    warm = np.setdiff1d(np.arange(ds.n_items), cold)[:12]
    mixed = [*np.asarray(ds.item_ids)[warm].astype(str), *new_ids[::2]]
    (tmp_path / "mixed.txt").write_text("\n".join(mixed) + "\n")
    some = recommend_run(tmp_path / "run", k=5, items=tmp_path / "mixed.txt", new_items=tmp_path / "new.npz")
    every = recommend_run(tmp_path / "run", k=ds.n_items + len(new_ids), new_items=tmp_path / "new.npz")
    for u in np.unique(some.user_id):
        ranked = every.item_id[(every.user_id == u) & np.isin(every.item_id, mixed)][:5]
        assert list(some.item_id[some.user_id == u]) == list(ranked), u
    # the CLI: written, and bad inputs are one line
    runner = CliRunner()
    res = runner.invoke(make_app(), ["recommend", str(tmp_path / "run"), "--new-items", str(tmp_path / "new.npz"),
                                     "--out", str(tmp_path / "recs.csv"), "--quiet"])
    assert res.exit_code == 0, res.output
    np.savez(tmp_path / "bad.npz", item_id=new_ids)
    res = runner.invoke(make_app(), ["recommend", str(tmp_path / "run"), "--new-items", str(tmp_path / "bad.npz"),
                                     "--out", str(tmp_path / "recs2.csv"), "--quiet"])
    assert res.exit_code == 1 and "has no 'image' array" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "recs2.csv").exists()
    np.savez(tmp_path / "dup.npz", item_id=np.asarray(ds.item_ids)[cold].astype(str),
             **{m: a[cold] for m, a in ds.item_features.items()})
    with pytest.raises(DataError, match=f"new item id '{ds.item_ids[cold[0]]}' is already an item of the catalogue: "
                                        "give new items ids of their own"):
        recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "dup.npz")
    twice = new_ids.copy()
    twice[3] = twice[1]
    np.savez(tmp_path / "twice.npz", item_id=twice, **{m: a[cold] for m, a in ds.item_features.items()})
    with pytest.raises(DataError, match=f"new item id '{new_ids[1]}' is listed twice .rows 1 and 3 of item_id."):
        recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "twice.npz")
    np.savez(tmp_path / "extra.npz", item_id=new_ids, audio=np.zeros((len(new_ids), 3)),
             **{m: a[cold] for m, a in ds.item_features.items()})
    with pytest.warns(GraphrecNote, match="'audio' not used: the run's cold-item path fuses"):
        extra = recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "extra.npz")
    assert list(extra.item_id) == list(recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "new.npz").item_id)
    feats = {m: a[cold].copy() for m, a in ds.item_features.items()}
    for name, ids, message in (("blank", np.array(["", *new_ids[1:]]), "new item id '' is empty or has surrounding"),
                               ("spaced", np.array([" 5", *new_ids[1:]]), "new item id ' 5' is empty or has surrounding"),
                               ("flat", new_ids.reshape(1, -1), "item_id has shape")):
        np.savez(tmp_path / f"{name}.npz", item_id=ids, **feats)
        with pytest.raises(DataError, match=message):
            recommend_run(tmp_path / "run", k=5, new_items=tmp_path / f"{name}.npz")
    blank = {m: a.copy() for m, a in feats.items()}
    for a in blank.values():
        a[1] = 0.0  # one new item without any content
    np.savez(tmp_path / "blank_row.npz", item_id=new_ids, **blank)
    with pytest.warns(GraphrecNote, match=rf"1 new item\(s\) \('{new_ids[1]}'\) have no content \(zeros in every "
                                          r"modality of image, text\)"):
        recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "blank_row.npz")
    feats["image"][2, 0] = np.nan
    np.savez(tmp_path / "nan.npz", item_id=new_ids, **feats)
    with pytest.raises(DataError, match=f"'image' row 2 .new item '{new_ids[2]}'. contains NaN or inf"):
        recommend_run(tmp_path / "run", k=5, new_items=tmp_path / "nan.npz")


def test_recommend_new_items_needs_the_path(tmp_path):
    from graphrec.train.recommend import recommend_run

    path = tmp_path / "data"
    contract_dataset().save(path)
    ds = Dataset.load(path)
    run_training(ds, "lightgcn", {}, TrainConfig(epochs=1, progress=False), out=tmp_path / "run", data_path=path)
    np.savez(tmp_path / "new.npz", item_id=np.array(["x"]), **{m: a[:1] for m, a in ds.item_features.items()})
    with pytest.raises(ConfigError, match="without the cold-item path.*--cold-path content"):
        recommend_run(tmp_path / "run", new_items=tmp_path / "new.npz")
    # content kNN has no parameters, so no --cold-path to train with: the fix names another model
    run_training(ds, "cb", {}, TrainConfig(epochs=1, progress=False), out=tmp_path / "cb", data_path=path)
    with pytest.raises(ConfigError, match=r"is .* \(cb\), which ranks the catalogue's items only and has no cold-item "
                                          r"path: train a model with one for new items, e\.g\. graphrec train mmgef"):
        recommend_run(tmp_path / "cb", new_items=tmp_path / "new.npz")


def _trainable_ranking_models() -> list[str]:
    from graphrec.train.registry import registered_models

    return [e.name for e in registered_models("ranking") if e.trainable]


@pytest.mark.parametrize("name", _trainable_ranking_models())
def test_the_path_builds_around_every_trainable_ranking_model(name):
    """docs/models/cold-start.md: the path works around every trainable ranking model
    (VBPR's own ``features`` attribute once made the wrapper's buffer a KeyError)."""
    from graphrec.train.registry import get_model

    entry = get_model(name, "ranking")
    params = dict(PATH, **({"k": 5} if any(p.name == "k" for p in entry.params) else {}))
    model = build_model(name, _cold_contract_dataset(), params)
    assert isinstance(model, ColdItemRecommender) and unwrap(model) is model.base
    assert model.features.shape[0] == model.n_items  # the path's fused content, not the base's
    scores = model.scorer()(torch.arange(3))
    assert scores.shape == (3, model.n_items) and torch.isfinite(scores).all()


def test_a_path_with_no_item_to_score_is_noted():
    """Every item of the catalogue has training interactions: the path trains but scores
    none of them (it serves items that arrive later); a note says so, and not when some
    item is cold."""
    import warnings

    from graphrec.errors import GraphrecNote

    cfg = TrainConfig(epochs=1, progress=False)
    for ds, noted in ((contract_dataset(), True), (_cold_contract_dataset(), False)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            run_training(ds, "lightgcn", dict(PATH), cfg)
        notes = [str(w.message) for w in seen if issubclass(w.category, GraphrecNote)]
        assert any("every item has training interactions: the path scores none" in n for n in notes) == noted, notes
