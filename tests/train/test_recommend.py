"""graphrec.recommend (a saved run, original ids) and top_k (indices) against a brute-force
argsort of the model's full score matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import graphrec
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.train import TrainConfig, load_run, run_training
from graphrec.train.recommend import Recommendations, read_id_list, recommend_run, top_k, write_recommendations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LightGCN run (2 epochs) on a catalogue whose ids are strings in shuffled order."""
    root = tmp_path_factory.mktemp("recommend")
    ds = synthetic_catalogue(n_users=90, n_items=50, n_clusters=4, seed=3)
    rng = np.random.default_rng(0)
    ds = ds.replace(
        user_ids=np.array([f"u{n}" for n in rng.choice(10_000, ds.n_users, replace=False)]),
        item_ids=np.array([f"i{n}" for n in rng.choice(10_000, ds.n_items, replace=False)]),
    )
    ds.save(root / "data")
    torch.manual_seed(0)
    run_training(ds, "lightgcn", {"embedding_dim": 8}, TrainConfig(epochs=2, progress=False),
                 out=root / "run", data_path=root / "data")
    _, dataset, model = load_run(root / "run")
    with torch.no_grad():
        u, i = model.embeddings()
        full = (u @ i.T).numpy()
    return {"run": root / "run", "dataset": dataset, "scores": full, "root": root}


def brute_force(scores: np.ndarray, mask: np.ndarray, k: int, candidates: np.ndarray | None = None):
    """Per user: the k best unmasked candidates by a full argsort (descending)."""
    s = np.where(mask, -np.inf, scores.astype(np.float64))
    if candidates is not None:
        keep = np.zeros(s.shape[1], bool)
        keep[candidates] = True
        s[:, ~keep] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(s, order, 1)
    return [(o[v > -np.inf], v[v > -np.inf]) for o, v in zip(order, vals)]


def per_user(recs: Recommendations) -> dict[str, tuple[list[str], np.ndarray]]:
    out: dict[str, tuple[list[str], list[float]]] = {}
    for u, i, s in zip(recs.user_id, recs.item_id, recs.score):
        out.setdefault(str(u), ([], []))
        out[str(u)][0].append(str(i))
        out[str(u)][1].append(float(s))
    return {u: (i, np.array(s)) for u, (i, s) in out.items()}


def assert_matches(recs: Recommendations, ds, expected, users: np.ndarray) -> None:
    got = per_user(recs)
    for u, (items, vals) in zip(users, expected):
        g_items, g_vals = got.get(str(ds.user_ids[u]), ([], np.array([])))
        assert g_items == [str(x) for x in ds.item_ids[items]], ds.user_ids[u]
        np.testing.assert_allclose(g_vals, vals, rtol=1e-5, atol=1e-6)


def test_graphrec_recommend_is_the_run_level_function():
    assert graphrec.recommend is recommend_run


def test_recommend_takes_run_dir_and_data_path_and_their_old_names(trained):
    """run_dir and data_path as load_run, reevaluate and export_item_graph name them
    (`data` is a loaded CTRData elsewhere); run= and data= still work, with a warning."""
    new = graphrec.recommend(run_dir=trained["run"], k=3, data_path=trained["root"] / "data")
    with pytest.warns(FutureWarning) as caught:
        old = graphrec.recommend(run=trained["run"], k=3, data=trained["root"] / "data")
    assert sorted(str(w.message).split(": ")[1].split(";")[0] for w in caught) == [
        "the argument data= is renamed data_path=", "the argument run= is renamed run_dir="]
    np.testing.assert_array_equal(old.item_id, new.item_id)
    with pytest.raises(ConfigError, match=r"^graphrec\.recommend\(\) got both data_path= and its old name data=: "):
        graphrec.recommend(trained["run"], data=trained["root"], data_path=trained["root"])
    with pytest.raises(ConfigError, match="got both run_dir= and its old name run="):
        graphrec.recommend(trained["run"], run=trained["run"])


def test_a_model_in_memory_recommends_as_its_saved_run(trained):
    """graphrec.recommend refused a model in memory and pointed at recommend_indices
    (indices only); recommend_model gives the saved run's lists, ids and all, with the same
    arguments, and leaves the model's mode as it was."""
    _, dataset, model = load_run(trained["run"])
    model.train()
    users = [str(u) for u in dataset.user_ids[[5, 0, 7]]] + ["nobody"]
    items = [str(i) for i in dataset.item_ids[:30]]
    kw = dict(users=users, k=5, items=items, unknown="popular")
    mine = graphrec.recommend_model(model, dataset, **kw)
    saved = graphrec.recommend(trained["run"], **kw)
    assert mine.user_id.tolist() == saved.user_id.tolist() and mine.item_id.tolist() == saved.item_id.tolist()
    np.testing.assert_allclose(mine.score, saved.score, rtol=1e-6)
    assert mine.popular_users == ["nobody"] and model.training
    with pytest.raises(ConfigError, match="built for 90 users and 50 items"):
        graphrec.recommend_model(model, synthetic_catalogue(n_users=20, n_items=10, seed=0))


def test_top_k_equals_a_brute_force_argsort(trained):
    ds, scores = trained["dataset"], trained["scores"]
    recs = graphrec.recommend(trained["run"], k=10, device="cpu")
    users = np.arange(ds.n_users)
    assert_matches(recs, ds, brute_force(scores, ds.train.toarray() > 0, 10), users)
    assert len(recs) == 10 * ds.n_users and recs.excluded == ("train",)
    assert set(recs.rank.tolist()) == set(range(1, 11)) and recs.rank.dtype == np.int32
    again = graphrec.recommend(trained["run"], k=10, device="cpu", batch_size=7)  # results do not depend on it
    assert again.item_id.tolist() == recs.item_id.tolist()


def test_seen_splits_and_no_masking(trained):
    ds, scores = trained["dataset"], trained["scores"]
    users = np.arange(ds.n_users)
    every = (ds.train + ds.valid + ds.test).toarray() > 0
    recs = graphrec.recommend(trained["run"], k=8, exclude_seen=("train", "valid", "test"), device="cpu")
    assert_matches(recs, ds, brute_force(scores, every, 8), users)
    recs = graphrec.recommend(trained["run"], k=8, exclude_seen=False, device="cpu")
    assert_matches(recs, ds, brute_force(scores, np.zeros_like(every), 8), users)
    assert recs.excluded == ()


def test_candidates_and_users_as_original_ids(trained):
    ds, scores = trained["dataset"], trained["scores"]
    cand = np.array([1, 4, 9, 16, 25, 36, 49])
    users = np.array([5, 0, 77, 5])  # a repeated user is listed once
    recs = graphrec.recommend(trained["run"], users=list(ds.user_ids[users]), items=list(ds.item_ids[cand]),
                              k=20, device="cpu")
    assert list(dict.fromkeys(recs.user_id.tolist())) == list(ds.user_ids[[5, 0, 77]])
    assert set(recs.item_id.tolist()) <= set(ds.item_ids[cand].tolist())
    assert_matches(recs, ds, brute_force(scores[users[:3]], ds.train[users[:3]].toarray() > 0, 20, cand), users[:3])
    # an id the catalogue lacks: the message names the way to score new items
    with pytest.raises(DataError, match=r"item id 'new-1' in the items argument is not an item of the run's dataset: "
                                        r"candidates must be items the model knows; .* --new-items FILE"):
        graphrec.recommend(trained["run"], items=["new-1", *ds.item_ids[:2]], k=5)


def spy_top_k(monkeypatch) -> list[dict]:
    """Record each top_k call of recommend_run: its n_items and candidates, and the shape
    of every score batch its scorer returns."""
    import graphrec.train.recommend as rec

    calls: list[dict] = []
    real = rec.top_k

    def spy(scorer, users, k, n_items, **kw):
        shapes: list[tuple[int, int]] = []

        def counted(u):
            s = scorer(u)
            shapes.append(tuple(s.shape))
            return s

        calls.append({"n_items": n_items, "candidates": kw.get("candidates"), "shapes": shapes})
        return real(counted, users, k, n_items, **kw)

    monkeypatch.setattr(rec, "top_k", spy)
    return calls


def test_candidates_of_an_inner_product_model_score_their_columns_only(trained, monkeypatch):
    """--items scored every item and kept the candidates' columns (1,000 candidates of
    200,000 items cost 84% of the whole catalogue), in batches capped by n_items: for a
    model whose scores are inner products of its embeddings (LightGCN), only the
    candidates' columns are scored, batches capped by the candidate count. The lists are
    brute force's, with any seen splits, unknown users mixed in, and the generic path's."""
    import graphrec.train.evaluate as evaluate
    import graphrec.train.recommend as rec

    ds, scores = trained["dataset"], trained["scores"]
    cand = np.arange(2, ds.n_items, 3)  # 16 of 50 items
    users = np.arange(ds.n_users)
    calls = spy_top_k(monkeypatch)
    monkeypatch.setattr(evaluate, "MAX_BATCH_SCORES", 4 * len(cand))  # 4 users of 16 columns (1 of 50)
    recs = graphrec.recommend(trained["run"], items=list(ds.item_ids[cand]), k=6, device="cpu")
    assert_matches(recs, ds, brute_force(scores, ds.train.toarray() > 0, 6, cand), users)
    (call,) = calls
    assert call["n_items"] == len(cand) and call["candidates"] is None
    assert {s[1] for s in call["shapes"]} == {len(cand)} and max(s[0] for s in call["shapes"]) == 4
    assert sum(s[0] for s in call["shapes"]) == ds.n_users
    monkeypatch.undo()

    every = (ds.train + ds.valid + ds.test).toarray() > 0
    for seen, mask in ((("train", "valid", "test"), every), (False, np.zeros_like(every))):
        recs = graphrec.recommend(trained["run"], items=list(ds.item_ids[cand]), k=20, exclude_seen=seen)
        assert_matches(recs, ds, brute_force(scores, mask, 20, cand), users)
        assert (recs.rank <= 16).all()
    asked = ["ghost", ds.user_ids[7], ds.user_ids[3]]
    fast = graphrec.recommend(trained["run"], users=asked, items=list(ds.item_ids[cand]), k=5, unknown="popular")
    assert fast.popular_users == ["ghost"]
    counts = np.bincount(ds.train.indices, minlength=ds.n_items)[cand]
    assert fast.item_id[fast.user_id == "ghost"].tolist() == ds.item_ids[cand[np.lexsort((cand, -counts))[:5]]].tolist()
    assert_matches(fast, ds, brute_force(scores[[7, 3]], ds.train[[7, 3]].toarray() > 0, 5, cand), np.array([7, 3]))
    monkeypatch.setattr(rec, "_run_scorer", lambda model, candidates, new, n_items: None)  # the generic path
    generic = graphrec.recommend(trained["run"], users=asked, items=list(ds.item_ids[cand]), k=5, unknown="popular")
    assert generic.user_id.tolist() == fast.user_id.tolist() and generic.item_id.tolist() == fast.item_id.tolist()
    np.testing.assert_allclose(generic.score, fast.score, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("model, params", [("cb", {"k": 5}),
                                           ("lightgcn", {"embedding_dim": 8, "cold_path": "content", "cold_k": 5})],
                         ids=["content-knn", "cold-item-path"])
def test_candidates_of_other_scorers_score_their_columns_only(tmp_path, monkeypatch, model, params):
    """Content kNN (scores R S) and the cold-item path (the path's scores for unseen items)
    are not inner products of embeddings: their ``scorer(candidates)`` scores the
    candidates' columns only (of S; of the base model and the path), and the lists are
    those of a brute-force argsort of the full scorer's matrix."""
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=3, seed=1)
    ds.save(tmp_path / "data")
    torch.manual_seed(0)
    run_training(ds, model, params, TrainConfig(epochs=1, progress=False), out=tmp_path / "run",
                 data_path=tmp_path / "data")
    _, dataset, loaded = load_run(tmp_path / "run")
    with torch.no_grad():
        full = loaded.scorer()(torch.arange(ds.n_users)).numpy()
    cand = np.array([0, 3, 4, 10, 17, 22, 29])
    calls = spy_top_k(monkeypatch)
    recs = graphrec.recommend(tmp_path / "run", items=list(dataset.item_ids[cand]), k=4)
    (call,) = calls
    assert call["n_items"] == len(cand) and call["candidates"] is None
    assert {s[1] for s in call["shapes"]} == {len(cand)}
    # content kNN scores many items 0 (no neighbour in the history): ties may come in any order
    got, seen, pos = per_user(recs), dataset.train.toarray() > 0, {str(i): n for n, i in enumerate(dataset.item_ids)}
    for u in range(ds.n_users):
        left = [c for c in cand if not seen[u, c]]
        items, vals = got.get(str(dataset.user_ids[u]), ([], np.array([])))
        idx = [pos[i] for i in items]
        assert len(set(idx)) == len(idx) == min(4, len(left)) and set(idx) <= set(left)
        np.testing.assert_allclose(vals, full[u, idx], rtol=1e-5, atol=1e-6)
        rest = [c for c in left if c not in idx]
        assert (np.diff(vals) <= 0).all() and (not rest or vals.min() >= full[u, rest].max())


def test_unknown_users(trained, tmp_path):
    ds = trained["dataset"]
    with pytest.raises(DataError, match=r"user id 'ghost' in the users argument .*--unknown popular \(in Python unknown='popular'\)"):
        graphrec.recommend(trained["run"], users=[ds.user_ids[0], "ghost"], device="cpu")
    f = tmp_path / "users.txt"
    f.write_text("ghost\nghost2\n")
    with pytest.raises(DataError, match=rf"user id 'ghost' in {f} .*and 1 more unknown ids"):
        graphrec.recommend(trained["run"], users=f, device="cpu")
    recs = graphrec.recommend(trained["run"], users=["ghost", ds.user_ids[3]], k=5, unknown="popular", device="cpu")
    assert recs.popular_users == ["ghost"]
    counts = np.bincount(ds.train.indices, minlength=ds.n_items)
    ghost = recs.user_id == "ghost"
    expected = np.lexsort((np.arange(ds.n_items), -counts))[:5]  # most popular, ties by index
    assert recs.item_id[ghost].tolist() == ds.item_ids[expected].tolist()
    assert recs.score[ghost].tolist() == counts[expected].astype(float).tolist()
    with pytest.raises(ConfigError, match="pathlib.Path"):
        graphrec.recommend(trained["run"], users="users.txt")


def test_to_pandas_and_write(trained, tmp_path):
    recs = graphrec.recommend(trained["run"], k=3, device="cpu")
    write_recommendations(recs, tmp_path / "r.csv")
    with pytest.raises(ConfigError, match="already exists"):
        write_recommendations(recs, tmp_path / "r.csv")
    pd = pytest.importorskip("pandas")
    df = recs.to_pandas()
    assert list(df.columns) == ["user_id", "item_id", "rank", "score"] and len(df) == len(recs)
    back = pd.read_csv(tmp_path / "r.csv", dtype={"user_id": str, "item_id": str})
    assert back["user_id"].tolist() == recs.user_id.tolist() and back["item_id"].tolist() == recs.item_id.tolist()
    np.testing.assert_array_equal(back["score"].to_numpy(np.float32), recs.score)


def test_top_k_by_hand():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1], [1.0, 2.0, 3.0, 4.0]])
    scorer = lambda users: scores[users].clone()  # noqa: E731
    import scipy.sparse as sp

    seen = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 0]], dtype=np.float32))
    idx, val = top_k(scorer, [0, 1, 2], 2, 4, exclude=seen, batch_size=2)
    assert idx[0].tolist() == [3, 2] and idx[2].tolist() == [3, 1]
    assert np.isneginf(val[1]).all()  # everything seen: no candidate left
    idx, val = top_k(scorer, [2, 0], 5, 4, exclude=seen, candidates=np.array([0, 1, 2]))
    assert idx.shape == (2, 3) and idx[0, :2].tolist() == [1, 0] and np.isneginf(val[0, 2])
    assert idx[1, :2].tolist() == [2, 0]
    with pytest.raises(ConfigError, match="k must be"):
        top_k(scorer, [0], 0, 4)


def test_top_k_takes_a_scorer_that_tracks_gradients():
    """top_k runs without autograd, as it did before its input checks were split out (the
    decorator stayed on the helper): a scorer built from trainable weights, e.g.
    ``lambda u: user_emb[u] @ item_emb.T`` on a model in training, was a RuntimeError."""
    gen = torch.Generator().manual_seed(0)
    users, items = torch.randn(5, 4, generator=gen), torch.randn(7, 4, generator=gen, requires_grad=True)
    idx, val = top_k(lambda u: users[u] @ items.T, np.arange(5), 3, 7)
    expected = (users @ items.T).detach().numpy()
    np.testing.assert_array_equal(idx, np.argsort(-expected, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(val, np.take_along_axis(expected, idx, 1), rtol=1e-6)


def test_read_id_list(tmp_path: Path):
    f = tmp_path / "ids.csv"
    f.write_text('\ufeffname,user_id\n"Smith, J",a\nDoe,"b,c"\n\nX,a\n')
    assert read_id_list(f, "user_id") == ["a", "b,c"]
    f.write_text("user_id\n x \ny\n")
    assert read_id_list(f, "user_id") == ["x", "y"]
    f.write_text("17\n4\n17\n")
    assert read_id_list(f, "user_id") == ["17", "4"]
    f.write_text("\n\n")
    with pytest.raises(DataError, match="lists no ids"):
        read_id_list(f, "user_id")
    f.write_text("name,item_id\nx\n")
    with pytest.raises(DataError, match="line 2: no item_id value"):
        read_id_list(f, "item_id")


def test_load_run_gives_the_model_in_evaluation_mode(trained):
    """A loaded model scored in training mode (FREEDOM's pruned graph, LATTICE's graph
    rebuild, SMORE's dropout) unless the caller knew to call ``eval()``."""
    _, _, model = load_run(trained["run"])
    assert not any(m.training for m in model.modules())


def test_index_level_recommend_keeps_its_contract(trained):
    """``graphrec.train.recommend.recommend_indices`` (used by the model contract suite):
    user indices in, ``len(users) x k`` item indices out, training items never among them."""
    from graphrec.train.recommend import recommend_indices

    ds = trained["dataset"]
    _, _, model = load_run(trained["run"])
    users = np.arange(ds.n_users)
    top, vals = recommend_indices(model.scorer(), ds, users, k=20)
    assert top.shape == vals.shape == (ds.n_users, 20)
    assert not (ds.train.toarray() > 0)[users[:, None], top].any()
    np.testing.assert_allclose(vals, np.take_along_axis(trained["scores"], top, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_top_k_refuses_scores_that_are_not_finite(bad):
    """A diverged scorer's NaN / inf scores are an error, not a ranking: +inf everywhere
    would list items by index, -inf would read as masked items (nothing recommended)."""
    import scipy.sparse as sp

    def scorer(users: torch.Tensor) -> torch.Tensor:
        scores = torch.arange(6, dtype=torch.float32).repeat(len(users), 1)
        scores[0, 4] = bad  # one cell of an unmasked item
        return scores

    seen = sp.csr_matrix(([1.0], ([0], [5])), shape=(2, 6))
    idx, _ = top_k(lambda u: torch.arange(6, dtype=torch.float32).repeat(len(u), 1), [0, 1], 2, 6, exclude=seen)
    assert idx.tolist() == [[4, 3], [5, 4]]  # finite scores: the masked item 5 skipped for user 0
    with pytest.raises(graphrec.errors.GraphrecError, match="NaN or infinite scores"):
        top_k(scorer, [0, 1], 2, 6, exclude=seen)


def test_top_k_caps_a_batch_at_the_evaluation_score_budget(monkeypatch):
    """recommend scored 1,024 users x every item per batch: 8 GB of scores for a million
    items (evaluation caps its batches at MAX_BATCH_SCORES). The same cap, the same lists."""
    import graphrec.train.evaluate as evaluate

    scores = torch.randn(10, 30, generator=torch.Generator().manual_seed(0))
    seen = []

    def scorer(users):
        seen.append(len(users))
        return scores[users].clone()

    full = top_k(scorer, np.arange(10), 5, 30, batch_size=1024)
    assert seen == [10]
    monkeypatch.setattr(evaluate, "MAX_BATCH_SCORES", 100)  # 3 users of 30 items
    seen.clear()
    capped = top_k(scorer, np.arange(10), 5, 30, batch_size=1024)
    assert seen == [3, 3, 3, 1]
    np.testing.assert_array_equal(capped[0], full[0])
    np.testing.assert_array_equal(capped[1], full[1])


def test_csv_written_in_chunks_has_the_same_bytes(tmp_path, monkeypatch):
    """The CSV is formatted and written ~1M rows at a time (one string of all rows took 11x
    the file size in memory): the file is byte for byte the one-piece file, quoted ids
    (commas, quotes, line breaks) and chunk boundaries included."""
    import csv

    import graphrec._csv as rec

    rng = np.random.default_rng(0)
    pool = np.array(["a,b", 'q"uote', "line\nbreak", "cr\rx", "ünï", "plain", "", '"', ","])
    n, k = 40, 5
    recs = Recommendations(
        user_id=pool[rng.integers(0, len(pool), n * k)],
        item_id=np.where(rng.random(n * k) < 0.5, pool[rng.integers(0, len(pool), n * k)], rng.integers(0, 99, n * k).astype(str)),
        rank=np.tile(np.arange(1, k + 1, dtype=np.int32), n),
        score=rng.standard_normal(n * k).astype(np.float32),
        k=k,
    )
    whole = tmp_path / "whole.csv"
    write_recommendations(recs, whole)
    rows = ["user_id,item_id,rank,score\n"] + [
        f"{rec.csv_cells([u])[0]},{rec.csv_cells([i])[0]},{r},{s:.9g}\n"
        for u, i, r, s in zip(recs.user_id.tolist(), recs.item_id.tolist(), recs.rank.tolist(), recs.score.tolist())
    ]
    assert whole.read_bytes() == "".join(rows).encode()
    for chunk in (1, 3, 7, n * k, n * k + 1):
        monkeypatch.setattr(rec, "CHUNK_ROWS", chunk)
        part = tmp_path / f"c{chunk}.csv"
        write_recommendations(recs, part)
        assert part.read_bytes() == whole.read_bytes()
    with open(whole, newline="", encoding="utf-8") as f:
        back = list(csv.reader(f))[1:]
    assert [r[0] for r in back] == recs.user_id.tolist() and [r[1] for r in back] == recs.item_id.tolist()


def test_parquet_ids_go_to_arrow_without_python_strings(tmp_path):
    """Parquet's id columns were one Python str per row (.tolist()); numpy's fixed-width
    unicode now converts in C++, except a column of objects or one with an id holding a
    NUL before its end (pyarrow would cut the id there): every id reads back as written."""
    import graphrec.train.recommend as rec

    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    ids = np.array(["plain", "ünï-✓", "", "a,b", 'q"', "x" * 40, "z"])
    nul = ids.copy()
    nul[-1] = "a\x00b"

    class Spy:  # pyarrow, recording whether each array is made from numpy or from a list
        string = staticmethod(pa.string)
        lists: list[bool] = []

        def array(self, values, **kw):
            self.lists.append(isinstance(values, list))
            return pa.array(values, **kw)

    for column, lists in ((ids, [False]), (ids[:0], [False]), (np.array(["", ""]), [False]), (nul, [False, True]),
                          (np.array(["\x00x"]), [False, True]), (ids.astype(object), [True])):
        Spy.lists = []
        arrow = rec._arrow_strings(Spy(), column)
        assert arrow.to_pylist() == column.tolist() and arrow.type == pa.string() and Spy.lists == lists
    n = len(ids)
    recs = Recommendations(user_id=np.array(["u\x00v", "w"] * 4)[:n], item_id=ids,
                           rank=np.arange(1, n + 1, dtype=np.int32), score=np.linspace(1, 0, n, dtype=np.float32), k=n)
    write_recommendations(recs, tmp_path / "r.parquet")
    back = pq.read_table(tmp_path / "r.parquet")
    assert [f.type for f in back.schema] == [pa.string(), pa.string(), pa.int32(), pa.float32()]
    assert back.to_pydict() == {c: v.tolist() for c, v in recs.columns().items()}


def test_a_csv_of_several_blocks_shows_its_progress(tmp_path, monkeypatch, capsys):
    """Writing 10M rows took ~15 s without a sign of life: write_columns reports each block
    written (progress(n)), and write_recommendations(progress=True) shows a tqdm bar over
    the rows of a file of more than one block; the bytes are the same with or without it."""
    import io

    import graphrec._csv as out

    recs = Recommendations(user_id=np.repeat(np.array(["u1", "u,2"]), 5), item_id=np.array(list("abcdefghij")),
                           rank=np.tile(np.arange(1, 6, dtype=np.int32), 2),
                           score=np.linspace(2, 1, 10, dtype=np.float32))
    monkeypatch.setattr(out, "CHUNK_ROWS", 3)
    blocks: list[int] = []
    f, g = io.StringIO(newline=""), io.StringIO(newline="")
    out.write_columns(f, recs.columns(), progress=blocks.append)
    out.write_columns(g, recs.columns())
    assert blocks == [3, 3, 3, 1] and f.getvalue() == g.getvalue()
    write_recommendations(recs, tmp_path / "quiet.csv")
    assert capsys.readouterr().err == ""
    write_recommendations(recs, tmp_path / "bar.csv", progress=True)
    bar = capsys.readouterr().err
    assert "write: " in bar and "/10" in bar and "row/s" in bar
    assert (tmp_path / "bar.csv").read_bytes() == (tmp_path / "quiet.csv").read_bytes() == g.getvalue().encode()
    monkeypatch.setattr(out, "CHUNK_ROWS", 10)  # one block: no bar
    write_recommendations(recs, tmp_path / "one.csv", progress=True)
    assert capsys.readouterr().err == "" and (tmp_path / "one.csv").read_bytes() == g.getvalue().encode()


def test_write_columns_formats_each_kind_of_column(tmp_path):
    """graphrec._csv.write_columns (recommendations and CTR predictions): text quoted as
    the csv module quotes it, integers as they print, floats to 9 significant digits,
    any chunk size; columns of unequal lengths are refused."""
    import csv
    import io

    import graphrec._csv as out

    cols = {
        "split": np.array(["valid", "test", "test"], dtype=object),
        "user": np.array(["u,1", 'say "hi"', "plain"]),
        "label": np.array([1, 0, 1], dtype=np.int64),
        "p": np.array([0.1, 1 / 3, 2.5e-12]),
    }
    f = io.StringIO(newline="")
    out.write_columns(f, cols)
    assert f.getvalue() == (
        "split,user,label,p\n"
        'valid,"u,1",1,0.1\n'
        'test,"say ""hi""",0,0.333333333\n'
        "test,plain,1,2.5e-12\n"
    )
    ref = io.StringIO(newline="")
    w = csv.writer(ref, lineterminator="\n")
    w.writerow(list(cols))
    w.writerows(zip(cols["split"], cols["user"], cols["label"], [f"{v:.9g}" for v in cols["p"]]))
    assert f.getvalue() == ref.getvalue()
    with pytest.raises(ValueError, match="unequal lengths"):
        out.write_columns(io.StringIO(), {"a": np.zeros(2), "b": np.zeros(3)})


def test_top_k_refuses_what_is_not_an_index():
    """top_k took user -1 as the last user, ids '0' and fractions 1.7 as indices, repeated
    candidates twice and an exclude matrix of another width silently; recommend_indices
    read exclude='train' letter by letter."""
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.errors import ConfigError
    from graphrec.train.recommend import recommend_indices, seen_matrix

    ds = synthetic_catalogue(n_users=12, n_items=9, n_clusters=3, seed=0)

    def scorer(users):
        return torch.arange(ds.n_items, dtype=torch.float32).repeat(len(users), 1)

    seen = seen_matrix(ds, ("train",))
    for users, message in (([-1], "users holds the index -1"), ([12], r"users holds the index 12, not a user index in \[0, 12\)"),
                           (["0", "1"], "users must be a 1-D array of user indices"),
                           ([1.7], "users must be a 1-D array of user indices")):
        with pytest.raises(ConfigError, match=message):
            top_k(scorer, users, 3, ds.n_items, exclude=seen)
    with pytest.raises(ConfigError, match="candidates must be sorted and distinct"):
        top_k(scorer, [0], 3, ds.n_items, candidates=np.array([2, 2, 5]))
    with pytest.raises(ConfigError, match=r"candidates hold indices outside \[0, 9\)"):
        top_k(scorer, [0], 3, ds.n_items, candidates=np.array([2, 9]))
    with pytest.raises(ConfigError, match="exclude has 8 columns but n_items is 9"):
        top_k(scorer, [0], 3, ds.n_items, exclude=seen[:, :8])
    idx, _ = top_k(scorer, [3, 3, 0], 2, ds.n_items)  # order and repeats kept
    assert idx.tolist() == [[8, 7], [8, 7], [8, 7]]
    a = recommend_indices(scorer, ds, [0, 1], 3, exclude="train")
    b = recommend_indices(scorer, ds, [0, 1], 3, exclude=("train",))
    assert np.array_equal(a[0], b[0])
    with pytest.raises(ConfigError, match="exclude must name splits"):
        recommend_indices(scorer, ds, [0], 3, exclude=True)


def test_recommendations_print_as_a_summary():
    recs = Recommendations(user_id=np.array(["u", "u", "v"]), item_id=np.array(["a", "b", "a"]),
                           rank=np.array([1, 2, 1], dtype=np.int32), score=np.zeros(3, np.float32), k=2)
    assert repr(recs) == ("Recommendations(3 rows, 2 users, k=2, excluded=('train',); .columns() or .to_pandas() "
                          "for the rows)")
    empty = Recommendations(user_id=np.array([], dtype=str), item_id=np.array([], dtype=str),
                            rank=np.zeros(0, np.int32), score=np.zeros(0, np.float32), k=2)
    assert (recs.n_users, empty.n_users) == (2, 0)


def test_plausible_mistakes_from_python_are_one_line_errors():
    """A model where a run folder or a scorer is expected, the arguments of build_model
    swapped, a kind name where build_item_graph takes a GraphSpec, a BuiltGraph or a
    model's torch graph given to to_networkx: raw TypeErrors / AttributeErrors before."""
    import graphrec
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.errors import ConfigError, DataError
    from graphrec.graphs.build import GraphSpec, build_item_graph
    from graphrec.graphs.export import to_networkx
    from graphrec.train import build_model
    from graphrec.train.evaluate import evaluate_ranking

    ds = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0)
    model = build_model("freedom", ds, {"embedding_dim": 8})
    with pytest.raises(ConfigError, match="got a FREEDOM, not a run folder"):
        graphrec.recommend(model)
    with pytest.raises(ConfigError, match="got the model FREEDOM, not a scorer: pass model.scorer()"):
        evaluate_ranking(model, ds)
    with pytest.raises(ConfigError, match="build_model\\(name, dataset, params\\) takes the name first"):
        build_model(ds, "lightgcn")
    with pytest.raises(ConfigError, match="spec must be a GraphSpec, got 'knn'"):
        build_item_graph(ds, "knn")
    built = build_item_graph(ds, GraphSpec(kind="knn", k=3))
    assert to_networkx(built).number_of_edges() == to_networkx(built.graph).number_of_edges() == built.graph.nnz
    (name, tensor), *_ = model.item_graphs().items()
    assert to_networkx(tensor).number_of_edges() == tensor.values().numel()
    with pytest.raises(DataError, match="got a dict, not a graph"):
        to_networkx({"a": 1})
