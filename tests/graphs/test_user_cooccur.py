"""The user-user co-occurrence graph (DRAGON's user graph) in the graph core: counts by
hand, ties, a brute-force comparison on random matrices, leakage, the stored record
(nodes, n_users, cold-start and fingerprint checks), build-graph / inspect / networkx."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset, build_dataset, cold_start
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.cooccur import user_cooccurrence_graph
from graphrec.graphs.export import to_networkx
from graphrec.graphs.store import load_graph, read_record, save_graph

runner = CliRunner()

# 4 users x 5 items (item 4 has no interaction):
#   u0: 0 1 2    u1: 0 1    u2: 1 3    u3: 0 1 3
R = sp.csr_matrix(
    np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 1, 0, 1, 0], [1, 1, 0, 1, 0]], dtype=np.float32)
)
# U_uv = items shared by users u and v:
#   (0,1): {0,1} = 2   (0,2): {1} = 1   (0,3): {0,1} = 2
#   (1,2): {1} = 1     (1,3): {0,1} = 2 (2,3): {1,3} = 2
U = np.array([[0, 2, 1, 2], [2, 0, 1, 2], [1, 1, 0, 2], [2, 2, 2, 0]], dtype=np.float32)


def brute(r: sp.spmatrix, top_k=None, min_count=1, symmetric=False) -> np.ndarray:
    """Dense reference, pair by pair: shared items, top-k per user with ties to the lower user."""
    rows = [set(np.flatnonzero(row)) for row in (r.toarray() != 0)]
    n = len(rows)
    c = np.zeros((n, n), np.int64)
    for u in range(n):
        for v in range(n):
            if u != v:
                c[u, v] = len(rows[u] & rows[v])
    c[c < min_count] = 0
    if top_k is not None:
        out = np.zeros_like(c)
        for u in range(n):
            ranked = sorted((-c[u, v], v) for v in range(n) if c[u, v] > 0)
            for _, v in ranked[:top_k]:
                out[u, v] = c[u, v]
        c = np.maximum(out, out.T) if symmetric else out
    return c.astype(np.float32)


def test_counts_by_hand():
    g = user_cooccurrence_graph(R)
    assert g.shape == (4, 4) and g.dtype == np.float32 and g.has_sorted_indices
    assert np.array_equal(g.toarray(), U)  # raw counts: not divided by the maximum
    assert np.allclose(user_cooccurrence_graph(R, normalize_max=True).toarray(), U / 2)


def test_top_k_by_hand_ties_to_the_lower_user():
    # top 1: u0 ties u1/u3 at 2 -> u1; u1 ties u0/u3 -> u0; u2 -> u3; u3 ties u0/u1/u2 -> u0
    one = np.zeros((4, 4), np.float32)
    for u, v in [(0, 1), (1, 0), (2, 3), (3, 0)]:
        one[u, v] = 2
    assert np.array_equal(user_cooccurrence_graph(R, top_k=1).toarray(), one)
    # top 2: u2 keeps u3 (2) and then u0 over u1 (both 1); u3 keeps u0, u1 over u2
    two = np.zeros((4, 4), np.float32)
    for u, v, c in [(0, 1, 2), (0, 3, 2), (1, 0, 2), (1, 3, 2), (2, 3, 2), (2, 0, 1), (3, 0, 2), (3, 1, 2)]:
        two[u, v] = c
    assert np.array_equal(user_cooccurrence_graph(R, top_k=2).toarray(), two)
    # symmetric: the union of the top-1 lists
    sym = np.maximum(one, one.T)
    assert np.array_equal(user_cooccurrence_graph(R, top_k=1, symmetric=True).toarray(), sym)
    # min_count 2 drops the single-item pairs (u0,u2) and (u1,u2)
    assert np.array_equal(user_cooccurrence_graph(R, min_count=2).toarray(), np.where(U >= 2, U, 0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 41, 23
    dense = (rng.random((n_users, n_items)) < rng.uniform(0.05, 0.3)).astype(np.float32)
    dense[3] = 0  # a user with no training item: an empty row and column
    r = sp.csr_matrix(dense * rng.integers(1, 4, dense.shape))  # values are binarised
    for opts in ({}, {"top_k": 1}, {"top_k": 5}, {"top_k": 5, "symmetric": True}, {"min_count": 2},
                 {"top_k": 3, "min_count": 2}):
        want = brute(r, **opts)
        for block_size in (None, 1, 7):
            got = user_cooccurrence_graph(r, block_size=block_size, **opts)
            assert np.array_equal(got.toarray(), want), (opts, block_size)
    assert not user_cooccurrence_graph(r).toarray()[3].any()


def test_never_dense_on_many_users():
    # 3 million users, two items: a dense user matrix would need 36 TB
    n = 3_000_000
    r = sp.csr_matrix((np.ones(4, np.float32), ([0, 1, n - 2, n - 1], [0, 0, 1, 1])), shape=(n, 2))
    g = user_cooccurrence_graph(r, top_k=40)
    assert g.shape == (n, n) and g.nnz == 4
    assert g[0, 1] == 1 and g[n - 1, n - 2] == 1


def test_bad_input_is_one_clear_error():
    with pytest.raises(DataError, match="scipy sparse user-item matrix"):
        user_cooccurrence_graph(np.ones((3, 3)))
    with pytest.raises(ConfigError, match="top_k must be"):
        user_cooccurrence_graph(R, top_k=0)


def _dataset():
    rows = [
        ("a", "i0", "train"), ("a", "i1", "train"), ("b", "i0", "train"), ("b", "i2", "train"),
        ("c", "i2", "train"), ("c", "i3", "train"), ("d", "i3", "train"),
        ("a", "i3", "valid"), ("d", "i0", "valid"), ("c", "i1", "test"), ("d", "i1", "test"),
    ]  # fmt: skip
    users, items, split = zip(*rows)
    return build_dataset(users, items, split, user_ids=["a", "b", "c", "d"], name="toy")


def test_only_training_interactions_link_users():
    ds = _dataset()
    g = user_cooccurrence_graph(ds.train).toarray()
    want = np.zeros((4, 4), np.float32)
    for u, v in [(0, 1), (1, 2), (2, 3)]:  # a-b share i0, b-c share i2, c-d share i3
        want[u, v] = want[v, u] = 1
    assert np.array_equal(g, want)
    # a-c, a-d, c-d (via i1) and b-d (via i0) share items only in valid/test
    everything = user_cooccurrence_graph(ds.train + ds.valid + ds.test).toarray()
    assert (everything != g).any()


def test_cold_items_never_link_users():
    rng = np.random.default_rng(5)
    n_users, n_items = 50, 30
    u, i = rng.integers(0, n_users, 700), rng.integers(0, n_items, 700)
    split = rng.choice(["train", "valid", "test"], size=700, p=[0.8, 0.1, 0.1])
    ds = build_dataset(u, i, split, user_ids=np.arange(n_users), item_ids=np.arange(n_items), unseen="keep")
    cold = cold_start(ds, 0.3, seed=2)
    warm = np.setdiff1d(np.arange(n_items), cold.cold_items)
    r = (cold.train.toarray() > 0).astype(np.int64)
    assert not r[:, cold.cold_items].any()
    ref = r[:, warm] @ r[:, warm].T
    np.fill_diagonal(ref, 0)
    assert np.array_equal(user_cooccurrence_graph(cold.train).toarray(), ref)


# ------------------------------------------------------------------ stored, with provenance


def test_built_and_stored_as_a_user_graph(tmp_path):
    ds = _dataset()
    built = build_item_graph(ds, GraphSpec(kind="user-cooccur", cooccur_top_k=1))
    rec = built.record
    assert rec.kind == "user-cooccur" and rec.nodes == "users" and rec.n_users == 4 and rec.n_nodes == 4
    assert rec.k == 1 and rec.weighting == "count" and rec.split == "train"
    assert built.graph.shape == (4, 4)
    save_graph(tmp_path / "u", built.graph, rec)
    stored = json.loads((tmp_path / "u" / "graph.json").read_text())
    assert stored["nodes"] == "users" and stored["n_users"] == 4
    g, back = load_graph(tmp_path / "u", dataset=ds, expect={"kind": "user-cooccur", "k": 1})
    assert back.nodes == "users" and np.array_equal(g.toarray(), built.graph.toarray())
    # item graphs keep their record: nodes "items", no n_users
    item = build_item_graph(ds, GraphSpec(kind="cooccur")).record
    assert item.nodes == "items" and item.n_users is None and item.n_nodes == ds.n_items


def test_stale_user_graphs_are_refused(tmp_path):
    ds = _dataset()
    built = build_item_graph(ds, GraphSpec(kind="user-cooccur"))
    save_graph(tmp_path / "user-cooccur", built.graph, built.record)
    # other data with the same users: the fingerprint differs
    rows = [("a", "i0", "train"), ("b", "i0", "train"), ("c", "i1", "train"), ("d", "i1", "train"),
            ("a", "i2", "train"), ("b", "i3", "train"), ("c", "i0", "test")]  # fmt: skip
    users, items, split = zip(*rows)
    other = build_dataset(users, items, split, user_ids=["a", "b", "c", "d"], name="toy")
    with pytest.raises(DataError, match="dataset_fingerprint .*--kind user-cooccur"):
        load_graph(tmp_path / "user-cooccur", dataset=other)
    # a dataset with another number of users (and the same items)
    fewer = build_dataset(["a", "b"], ["i0", "i1"], ["train", "train"], item_ids=["i0", "i1", "i2", "i3"])
    with pytest.raises(DataError, match="n_users is 4 but dataset .* has 2 users"):
        load_graph(tmp_path / "user-cooccur", dataset=fewer)
    # a record and a matrix that do not belong together
    with pytest.raises(DataError, match="record says n_users=4"):
        save_graph(tmp_path / "bad", sp.csr_matrix((5, 5), dtype=np.float32), built.record)


def test_cold_start_split_is_checked_for_user_graphs(tmp_path):
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=1)
    cold = cold_start(ds, 0.2, 3)
    built = build_item_graph(cold, GraphSpec(kind="user-cooccur", cooccur_top_k=5))
    assert built.record.n_cold_items == len(cold.cold_items) and built.record.n_users == 60
    save_graph(tmp_path / "user-cooccur", built.graph, built.record)
    load_graph(tmp_path / "user-cooccur", dataset=cold)
    with pytest.raises(DataError, match="cold_start differs.*--kind user-cooccur"):
        load_graph(tmp_path / "user-cooccur", dataset=ds)


def test_networkx_export_of_a_user_graph():
    ds = _dataset()
    g = user_cooccurrence_graph(ds.train)
    nxg = to_networkx(g, ds, nodes="users")
    assert not nxg.is_directed() and nxg.number_of_nodes() == 4 and nxg.number_of_edges() == 3
    assert nxg.nodes[0]["user_id"] == "a" and nxg.nodes[2]["n_train_items"] == 2
    assert nxg.edges[1, 2]["weight"] == 1.0
    # a user graph passed as an item graph: the message says which nodes it has
    with pytest.raises(DataError, match=r"graph has 4 nodes, as many as dataset .* has users, not items \(3\): a "
                                        r"graph of users takes nodes='users'"):
        to_networkx(g, build_dataset(["a", "b"], ["x", "y"], ["train"] * 2, user_ids=["a", "b", "c", "d"],
                                     item_ids=["x", "y", "z"]))


# ------------------------------------------------------------------ command line


def test_build_graph_and_inspect_a_user_graph(tmp_path):
    data = tmp_path / "syn"
    synthetic_catalogue(n_users=80, n_items=50, n_clusters=3, seed=0).save(data)
    out = tmp_path / "g"
    res = runner.invoke(app, ["build-graph", "--data", str(data), "--kind", "user-cooccur", "--cooccur-top-k", "5",
                              "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "user-cooccur: 80 nodes" in res.output and "isolated users" in res.output
    ds = Dataset.load(data)
    g, rec = load_graph(out / "user-cooccur", dataset=ds, expect={"k": 5})
    assert np.array_equal(g.toarray(), user_cooccurrence_graph(ds.train, top_k=5).toarray())
    assert read_record(out / "user-cooccur").nodes == "users"
    user = str(ds.user_ids[0])
    res = runner.invoke(app, ["inspect", str(out / "user-cooccur"), "--user", user, "--top", "3",
                              "--graphml", str(tmp_path / "u.graphml")])
    assert res.exit_code == 0, res.output
    assert "80 user nodes" in res.output and f"neighbours of user {user}" in res.output
    assert "edges whose two items share" not in res.output
    assert "user_id" in (tmp_path / "u.graphml").read_text()
    res = runner.invoke(app, ["inspect", str(out / "user-cooccur"), "--item", str(ds.item_ids[0])])
    assert res.exit_code == 1 and "is a user graph: pass --user" in res.output
    res = runner.invoke(app, ["build-graph", "--data", str(data), "--kind", "users", "--out", str(tmp_path / "h")])
    assert res.exit_code == 1 and "is not one of knn, cooccur, both, user-cooccur" in res.output


def test_baby_user_graph_matches_scipy(shared_data):
    from graphrec.data.formats import read_lattice

    ds = read_lattice(shared_data / "amazon-baby", unseen="keep")
    assert ds.n_users == 19445
    g = user_cooccurrence_graph(ds.train)
    b = sp.csr_matrix(ds.train, dtype=np.float32)
    b.data[:] = 1
    full = (b @ b.T).tocoo()
    off = full.row != full.col
    ref = sp.csr_matrix((full.data[off], (full.row[off], full.col[off])), shape=full.shape)
    assert g.nnz == ref.nnz and abs(g - ref).max() == 0
    top = user_cooccurrence_graph(ds.train, top_k=40)
    deg = np.diff(top.indptr)
    assert deg.max() == 40 and np.array_equal(deg, np.minimum(np.diff(ref.indptr), 40))
    # each kept row holds that user's 40 largest counts
    u = int(np.argmax(np.diff(ref.indptr)))
    kept = np.sort(top[u].data)[::-1]
    assert np.array_equal(kept, np.sort(ref[u].data)[::-1][:40])
