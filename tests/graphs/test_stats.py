"""Graph statistics on small graphs computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.errors import ConfigError, DataError
from graphrec.graphs import stats
from graphrec.graphs.stats import (
    clustering_sample,
    coconsumption_rate,
    connected_components,
    degree_stats,
    local_clustering,
    overlap,
    random_pair_overlap,
)


def graph(n: int, edges: list[tuple[int, int]], weights=None, symmetric: bool = False) -> sp.csr_matrix:
    rows = [i for i, _ in edges]
    cols = [j for _, j in edges]
    vals = list(weights) if weights is not None else [1.0] * len(edges)
    if symmetric:
        rows, cols, vals = rows + cols, cols + rows, vals + vals
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, n))


def test_degree_stats_of_a_directed_graph():
    # 0 -> 1, 0 -> 2, 1 -> 0, 2 -> 2 (self loop); 3 and 4 have no edges; an explicit zero 3 -> 4
    g = graph(5, [(0, 1), (0, 2), (1, 0), (2, 2), (3, 4)], weights=[1, 1, 1, 1, 0])
    s = degree_stats(g)
    assert s == {
        "nodes": 5,
        "edges": 4,
        "self_loops": 1,
        "symmetric": False,
        "undirected_edges": None,
        "degree_min": 0,  # out-degrees 2 1 1 0 0
        "degree_median": 1.0,
        "degree_mean": 0.8,
        "degree_max": 2,
        "in_degree_min": 0,  # in-degrees 1 1 2 0 0
        "in_degree_median": 1.0,
        "in_degree_mean": 0.8,
        "in_degree_max": 2,
        "isolated": 2,  # nodes 3 and 4 (the zero-weight entry is no edge)
    }


def test_degree_stats_of_a_symmetric_graph():
    # triangle 0-1-2, edge 2-3, node 4 with only a self loop
    g = graph(5, [(0, 1), (1, 2), (0, 2), (2, 3)], weights=[1, 2, 3, 4], symmetric=True)
    g = g + graph(5, [(4, 4)])
    s = degree_stats(g)
    assert s["symmetric"] is True and s["edges"] == 9 and s["self_loops"] == 1
    assert s["undirected_edges"] == 5  # 4 pairs + 1 self loop
    assert (s["degree_min"], s["degree_median"], s["degree_max"]) == (1, 2.0, 3)
    assert s["degree_mean"] == pytest.approx(9 / 5) and s["in_degree_mean"] == pytest.approx(9 / 5)
    assert s["isolated"] == 1  # node 4: a self loop is no neighbour


def test_asymmetric_values_on_a_symmetric_pattern_are_not_symmetric():
    g = graph(2, [(0, 1), (1, 0)], weights=[1, 2])
    assert degree_stats(g)["symmetric"] is False
    assert degree_stats(graph(2, [(0, 1), (1, 0)], weights=[2, 2]))["undirected_edges"] == 1


def test_degree_stats_of_an_empty_graph():
    s = degree_stats(sp.csr_matrix((3, 3)))
    assert s["edges"] == 0 and s["isolated"] == 3 and s["symmetric"] and s["undirected_edges"] == 0
    assert degree_stats(sp.csr_matrix((0, 0)))["nodes"] == 0


def test_weak_connected_components():
    # 0 -> 1 <- 2 (weakly one component), 3 alone, 4 -> 5
    g = graph(6, [(0, 1), (2, 1), (4, 5)])
    n, labels = connected_components(g)
    assert n == 3
    assert labels[0] == labels[1] == labels[2] and labels[4] == labels[5]
    assert len({labels[0], labels[3], labels[4]}) == 3
    assert sorted(np.bincount(labels).tolist()) == [1, 2, 3]


def test_overlap_by_hand():
    a = graph(4, [(0, 1), (1, 2), (2, 0), (3, 3)], weights=[0.5, 1, 2, 3])
    b = graph(4, [(0, 1), (2, 0), (2, 1)], weights=[9, 9, 9])
    assert overlap(a, b) == 0.5  # (0,1) and (2,0) of a's four edges
    assert overlap(b, a) == pytest.approx(2 / 3)
    assert overlap(a, a) == 1.0
    assert math.isnan(overlap(sp.csr_matrix((4, 4)), b))
    with pytest.raises(DataError, match="graphs of different sizes"):
        overlap(a, sp.csr_matrix((3, 3)))


def test_random_pair_overlap_chance_level():
    n = 6
    complete = sp.csr_matrix(np.ones((n, n)) - np.eye(n))
    assert random_pair_overlap(complete, 1000, seed=1) == 1.0
    # only self loops: pairs are never (i, i), so never an edge
    assert random_pair_overlap(sp.identity(n, format="csr"), 1000, seed=1) == 0.0
    # 4 nodes, 6 of the 12 ordered off-diagonal pairs: expectation 1/2
    half = graph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    share = random_pair_overlap(half, 200_000, seed=3)
    assert share == pytest.approx(0.5, abs=0.01)
    assert random_pair_overlap(half, 5000, seed=3) == random_pair_overlap(half, 5000, seed=3)
    with pytest.raises(ConfigError, match="n_pairs must be a positive integer"):
        random_pair_overlap(half, 0)
    with pytest.raises(DataError, match="at least 2 items"):
        random_pair_overlap(sp.csr_matrix((1, 1)), 10)


def test_random_pair_overlap_is_unbiased_on_a_random_graph():
    rng = np.random.default_rng(0)
    g = sp.random(50, 50, density=0.2, random_state=rng, format="csr")
    g = sp.csr_matrix(g - sp.diags(g.diagonal()))
    g.eliminate_zeros()
    density = g.nnz / (50 * 49)
    assert random_pair_overlap(g, 400_000, seed=2) == pytest.approx(density, abs=0.005)


def test_coconsumption_rate_by_hand(monkeypatch):
    # users: u0 consumed 0 and 1; u1 consumed 1 and 2; u2 consumed 3
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    # edges: (0,1) yes, (1,0) yes, (0,2) no, (2,1) yes, (3,0) no; the self loop (3,3) is ignored
    knn = graph(4, [(0, 1), (1, 0), (0, 2), (2, 1), (3, 0), (3, 3)])
    assert coconsumption_rate(knn, train) == pytest.approx(3 / 5)
    monkeypatch.setattr(stats, "_BLOCK_ENTRIES", 1)  # one edge per block: same answer
    assert coconsumption_rate(knn, train) == pytest.approx(3 / 5)
    assert math.isnan(coconsumption_rate(sp.identity(4, format="csr"), train))
    with pytest.raises(DataError, match="the graph has 4 items but train has 3 item columns"):
        coconsumption_rate(knn, train[:, :3])


def test_coconsumption_rate_of_the_cooccurrence_graph_is_one():
    from graphrec.graphs.cooccur import cooccurrence_graph

    rng = np.random.default_rng(5)
    train = sp.random(40, 30, density=0.1, random_state=rng, format="csr")
    c = cooccurrence_graph(train)
    assert coconsumption_rate(c, train) == 1.0
    # and the dense reference on a random graph
    g = sp.random(30, 30, density=0.3, random_state=rng, format="csr")
    b = (train.toarray() != 0).astype(int)
    co = (b.T @ b) > 0
    gi, gj = g.nonzero()
    off = gi != gj
    assert coconsumption_rate(g, train) == pytest.approx(co[gi[off], gj[off]].mean())


def test_cold_item_stats_and_the_warm_coconsumption_rate_by_hand():
    """Under a cold-start split, graph_report counts the cold items (isolated ones, edges
    touching one) and gives the co-consumption rate of the warm-warm edges beside that
    of all edges: a cold item has no training user, so its edges are never co-consumed."""
    from graphrec.graphs.stats import cold_item_stats, graph_report

    # items 0..4, item 3 and 4 cold (no training column); u0 consumed 0, 1; u1 consumed 1, 2
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0]], dtype=np.float32))
    # warm-warm: (0,1) yes, (1,2) yes, (0,2) no; touching cold 3: (3,0), (1,3); self loop (3,3) ignored; 4 isolated
    g = graph(5, [(0, 1), (1, 2), (0, 2), (3, 0), (1, 3), (3, 3)])
    cold = np.array([3, 4])
    assert cold_item_stats(g, cold) == {"cold_items": 2, "cold_isolated": 1, "cold_edges": 2, "warm_edges": 3}
    rep = graph_report(g, train=train, cold=cold, sample=5)
    assert rep["coconsumption_rate"] == pytest.approx(2 / 5)
    assert rep["coconsumption_rate_warm"] == pytest.approx(2 / 3)
    assert rep["cold_isolated"] == 1 and rep["cold_edges"] == 2
    # no edge touches a cold item (a co-interaction graph): one rate, nothing to separate
    co = graph(5, [(0, 1), (1, 2)], symmetric=True)
    rep = graph_report(co, train=train, cold=cold, sample=5)
    assert rep["cold_isolated"] == 2 and rep["cold_edges"] == 0 and "coconsumption_rate_warm" not in rep
    # without a split nothing changes
    assert "cold_items" not in graph_report(g, train=train, sample=5)
    with pytest.raises(DataError, match=r"cold items must be item indices in \[0, 5\)"):
        cold_item_stats(g, np.array([5]))


def test_local_clustering_by_hand():
    # triangle 0-1-2 plus 3 hanging on 2; given one direction per edge and a self loop
    g = graph(5, [(0, 1), (1, 2), (2, 0), (3, 2), (2, 2)])
    c = local_clustering(g)
    # c0 = c1 = 1; node 2 has neighbours {0,1,3} with one edge among them: 2*1/(3*2); 3 and 4 < 2 neighbours
    assert c.tolist() == pytest.approx([1, 1, 1 / 3, 0, 0])
    assert local_clustering(g, np.array([2, 0])).tolist() == pytest.approx([1 / 3, 1])
    assert clustering_sample(g, 10) == pytest.approx((1 + 1 + 1 / 3) / 5)
    with pytest.raises(DataError, match="node indices must lie in"):
        local_clustering(g, np.array([5]))


def test_clustering_sample_is_a_seeded_sample_mean():
    g = graph(5, [(0, 1), (1, 2), (2, 0), (3, 2)])
    c = local_clustering(g)
    a = clustering_sample(g, 2, seed=4)
    assert a == clustering_sample(g, 2, seed=4)
    pair_means = {round((c[i] + c[j]) / 2, 12) for i in range(5) for j in range(i + 1, 5)}
    assert round(a, 12) in pair_means
    assert clustering_sample(sp.csr_matrix((0, 0)), 3) == 0.0
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        clustering_sample(g, 0)


def test_clustering_matches_networkx(monkeypatch):
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(8)
    g = sp.random(60, 60, density=0.08, random_state=rng, format="csr")
    monkeypatch.setattr(stats, "_BLOCK_ENTRIES", 50)  # several chunks
    nxg = nx.from_scipy_sparse_array(((g + g.T) != 0).astype(int))
    nxg.remove_edges_from(list(nx.selfloop_edges(nxg)))
    ref = nx.clustering(nxg)
    assert local_clustering(g).tolist() == pytest.approx([ref[i] for i in range(60)])
    assert clustering_sample(g, 1000) == pytest.approx(nx.average_clustering(nxg))


def test_inputs_must_be_square_sparse():
    with pytest.raises(DataError, match="must be square"):
        degree_stats(sp.csr_matrix((2, 3)))
    with pytest.raises(DataError, match="must be a scipy sparse matrix, got ndarray"):
        connected_components(np.eye(2))


def test_neighbours_and_the_bipartite_graph_check_their_inputs():
    import scipy.sparse as sp

    from graphrec.errors import ConfigError, DataError
    from graphrec.graphs.bipartite import bipartite_adjacency
    from graphrec.graphs.stats import neighbours

    g = sp.csr_matrix(np.array([[0, 0.5, 0.2], [0.5, 0, 0], [0.2, 0, 0]], np.float32))
    assert neighbours(g, 0, 2) == [(1, 0.5), (2, pytest.approx(0.2))]
    for item, top, message in ((-1, 2, "node -1 is not in the graph"), (3, 2, "node 3 is not in the graph"),
                               (0, 0, "top=0: show at least one neighbour"), (0, -1, "top=-1")):
        with pytest.raises(ConfigError, match=message):
            neighbours(g, item, top)
    with pytest.raises(DataError, match="interactions must be a users x items matrix"):
        bipartite_adjacency(None)


# ----------------------------------------------------------------------- no-copy path
def _reference_degree_stats(dense: np.ndarray) -> dict:
    """degree_stats from a dense matrix, by definition (module doc)."""
    a = dense != 0
    n = a.shape[0]
    loops = int(np.trace(a)) if n else 0
    sym = bool(np.array_equal(np.where(a, dense, 0), np.where(a, dense, 0).T))
    off = a & ~np.eye(n, dtype=bool)
    out_deg, in_deg = a.sum(1), a.sum(0)
    s = {"nodes": n, "edges": int(a.sum()), "self_loops": loops, "symmetric": sym,
         "undirected_edges": int((a.sum() + loops) // 2) if sym else None}
    for name, d in (("degree", out_deg), ("in_degree", in_deg)):
        s.update({f"{name}_min": int(d.min()), f"{name}_median": float(np.median(d)), f"{name}_mean": float(d.mean()),
                  f"{name}_max": int(d.max())})
    s["isolated"] = int(n - (off.any(0) | off.any(1)).sum())
    return s


def _variants(g: sp.csr_matrix) -> list:
    """``g`` canonical, as csr_array, as COO, and non-canonical (unsorted, duplicated, zeros)."""
    coo = g.tocoo()
    order = np.random.default_rng(0).permutation(coo.nnz)
    half = coo.data[order] / 2  # each entry as two halves, plus an explicit zero, unsorted
    messy = sp.csr_matrix((np.r_[half, half, 0.0], (np.r_[coo.row[order], coo.row[order], 0],
                                                    np.r_[coo.col[order], coo.col[order], 1])), shape=g.shape)
    messy.has_sorted_indices = False
    return [g, sp.csr_array(g), coo, messy]


@pytest.mark.parametrize("sym", [False, True])
def test_degree_stats_equals_the_dense_reference_on_any_input_form(sym):
    rng = np.random.default_rng(1)
    d = (rng.random((30, 30)) < 0.15) * rng.integers(1, 4, (30, 30)).astype(np.float64)
    d[:5] = 0
    d[:, :5] = 0  # isolated nodes
    if sym:
        d = np.maximum(d, d.T)
    g = sp.csr_matrix(d)
    ref = _reference_degree_stats(d)
    assert ref["symmetric"] is sym
    for v in _variants(g):
        before = v.copy()
        assert degree_stats(v) == ref
        assert (v != before).nnz == 0  # the caller's matrix is read only
    # same degrees in and out, different values or pattern: not symmetric
    ring = graph(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    assert degree_stats(ring) == _reference_degree_stats(ring.toarray()) and not degree_stats(ring)["symmetric"]


def test_canonical_input_is_read_without_a_copy():
    g = graph(4, [(0, 1), (1, 2), (2, 0)])
    g.sort_indices()
    assert stats._canonical(g).indices is g.indices  # shared, not copied
    arr = sp.csr_array(g)
    assert np.shares_memory(stats._canonical(arr).data, arr.data)
    z = g.copy()
    z.data[0] = 0  # an explicit zero: the copy drops it
    assert stats._canonical(z).nnz == 2 and z.nnz == 3


def test_random_pair_overlap_equals_a_dense_lookup_of_the_same_pairs():
    rng = np.random.default_rng(4)
    d = (rng.random((200, 200)) < 0.05) * rng.random((200, 200))
    d[7] = 0  # an empty row
    d[9, :] = rng.random(200) + 0.1  # a full row
    g = sp.csr_matrix(d)
    draw = np.random.default_rng(5)
    i = draw.integers(0, 200, size=50_000)
    j = draw.integers(0, 199, size=50_000)
    j += j >= i
    ref = float((d[i, j] != 0).mean())
    for v in _variants(g):
        assert random_pair_overlap(v, 50_000, seed=5) == ref
    assert np.array_equal(stats._has_edges(g, i, j), d[i, j] != 0)
    assert not stats._has_edges(sp.csr_matrix((3, 3)), np.array([0, 1]), np.array([1, 2])).any()


def test_nearly_symmetric_takes_float_rounding_of_mirrored_weights():
    """A complete kNN graph's mirrored cosines differ in their last bits (computed twice):
    degree_stats says symmetric False (values equal), nearly_symmetric True, as to_networkx
    decides undirected; a missing mirror or a real difference is not symmetric either way."""
    import numpy as np

    from graphrec.graphs.stats import nearly_symmetric

    a = np.array([[0, 0.5, 0.25], [0.5 + 1e-7, 0, 0.75], [0.25, 0.75, 0]], dtype=np.float32)
    g = sp.csr_matrix(a)
    assert degree_stats(g)["symmetric"] is False and nearly_symmetric(g) is True
    a[1, 0] = 0.6
    assert nearly_symmetric(sp.csr_matrix(a)) is False
    a[1, 0] = 0.0  # no mirror
    assert nearly_symmetric(sp.csr_matrix(a)) is False
    assert nearly_symmetric(sp.csr_matrix(a * 1e-9 + a.T * 1e-9)) is True  # scale-free


def test_edge_agreement_by_hand():
    """Jaccard over the directed off-diagonal edges and the rank correlation of the shared
    edges' weights, on two 4-node graphs worked out by hand."""
    import numpy as np

    from graphrec.graphs.stats import edge_agreement

    a = graph(4, [(0, 1), (1, 2), (2, 3), (0, 3), (1, 1)], weights=[0.9, 0.8, 0.1, 0.5, 1.0])
    b = graph(4, [(0, 1), (1, 2), (2, 3), (3, 0), (2, 2)], weights=[3, 2, 1, 7, 4])
    got = edge_agreement(a, b)
    # shared (0,1), (1,2), (2,3); union adds (0,3) and (3,0): 3 / 5; self loops left out
    assert got["shared"] == 3 and got["jaccard"] == 3 / 5
    assert got["weight_spearman"] == 1.0  # 0.9 > 0.8 > 0.1 and 3 > 2 > 1
    c = graph(4, [(0, 1), (1, 2), (2, 3)], weights=[1, 2, 3])
    assert edge_agreement(a, c)["weight_spearman"] == -1.0
    assert np.isnan(edge_agreement(a, graph(4, [(3, 2)]))["weight_spearman"])  # nothing shared
