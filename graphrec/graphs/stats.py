"""Descriptive statistics of item-item graphs (pure functions, sparse throughout).

A graph is a square sparse matrix A (n x n); its EDGES are the stored nonzero entries
(i, j), read as directed i -> j (a top-k kNN graph is directed: every row has k entries
but columns do not). Explicit zeros and duplicate entries are merged away first.

* :func:`degree_stats`: n, edges = nnz, self loops, whether A = A^T, the undirected
  edge count (nnz + self loops) / 2 when it is, out-degree (row entries) and in-degree
  (column entries) min / median / mean / max, and isolated nodes: nodes with no edge to
  or from another node.
* :func:`connected_components`: weakly connected components (edge direction ignored).
* :func:`overlap`: |E(a) ∩ E(b)| / |E(a)|, the share of a's edges that are b's edges.
* :func:`random_pair_overlap`: the share of uniformly drawn ordered pairs (i, j), i != j,
  that are edges of b; its expectation is b's density |E(b) \\ self loops| / (n (n - 1)),
  the chance level for :func:`overlap` (the overlap of a random graph with b).
* :func:`coconsumption_rate`: the share of a graph's edges (i, j), i != j, such that
  at least one training user consumed both i and j: 1[(R^T R)_ij > 0], evaluated per
  edge as a sparse row product R^T[i] . R^T[j], so R^T R is never formed.
* :func:`cold_item_stats`: under a cold-start split, how the cold items (which have no
  training interaction, hence no training user) sit in the graph: how many, how many are
  isolated (all of them in a co-interaction graph), how many edges touch one, and how
  many edges join two warm items. An edge touching a cold item is never co-consumed in
  training, so :func:`graph_report` gives the co-consumption rate of the warm-warm edges
  beside that of all edges.
* :func:`local_clustering` / :func:`clustering_sample`: the local clustering
  coefficient of the undirected simple graph S = 1[(A + A^T) != 0] without self loops:
  c_v = 2 T_v / (d_v (d_v - 1)) where d_v is v's neighbour count and T_v the number
  of edges among v's neighbours, T_v = (S[v] S S[v]^T) / 2; c_v = 0 when d_v < 2
  (networkx's ``clustering``). ``clustering_sample`` averages it over a random sample
  of nodes (networkx's ``average_clustering`` when the sample is all nodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from graphrec._checks import is_int
from graphrec.errors import ConfigError, DataError

__all__ = [
    "degree_stats",
    "nearly_symmetric",
    "connected_components",
    "overlap",
    "edge_agreement",
    "random_pair_overlap",
    "coconsumption_rate",
    "cold_item_stats",
    "local_clustering",
    "clustering_sample",
    "neighbours",
    "graph_report",
]

_BLOCK_ENTRIES = 1 << 23


def _square(graph: sp.spmatrix | sp.sparray, what: str = "graph") -> sp.csr_matrix:
    """Canonical CSR copy (duplicates summed, zeros dropped, sorted indices)."""
    if not sp.issparse(graph):
        raise DataError(f"{what} must be a scipy sparse matrix, got {type(graph).__name__}")
    g = sp.csr_matrix(graph, copy=True)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise DataError(f"{what} must be square (n_items x n_items), got shape {g.shape}")
    g.sum_duplicates()
    g.eliminate_zeros()
    g.sort_indices()
    return g


def _canonical(graph: sp.spmatrix | sp.sparray, what: str = "graph") -> sp.csr_matrix:
    """``graph`` itself (as a csr_matrix sharing its arrays, no copy) when it is already a
    canonical square CSR (sorted indices, no duplicates, no explicit zeros), else
    :func:`_square`'s canonical copy. Only for readers: the result may be the caller's."""
    if (sp.issparse(graph) and graph.format == "csr" and graph.ndim == 2 and graph.shape[0] == graph.shape[1]):
        g = graph if isinstance(graph, sp.csr_matrix) else sp.csr_matrix(graph)
        if g.has_canonical_format and np.asarray(g.data).all():  # scipy's C check of sorted, unique indices
            return g
    return _square(graph, what)


def _pattern(g: sp.csr_matrix) -> sp.csr_matrix:
    p = g.copy()
    p.data = np.ones(p.nnz, dtype=np.int8)
    return p


def _off_diagonal(g: sp.csr_matrix) -> sp.csr_matrix:
    """``g`` without its self loops (no explicit zeros left)."""
    coo = g.tocoo()
    keep = coo.row != coo.col
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=g.shape)


def _summary(values: np.ndarray, prefix: str) -> dict[str, float]:
    if values.size == 0:
        return {f"{prefix}_min": 0, f"{prefix}_median": 0.0, f"{prefix}_mean": 0.0, f"{prefix}_max": 0}
    return {
        f"{prefix}_min": int(values.min()),
        f"{prefix}_median": float(np.median(values)),
        f"{prefix}_mean": float(values.mean()),
        f"{prefix}_max": int(values.max()),
    }


def degree_stats(graph: sp.spmatrix | sp.sparray) -> dict[str, Any]:
    """Size and degree summary of a graph (module doc); plain Python numbers.

    Keys: ``nodes``, ``edges`` (nnz), ``self_loops``, ``symmetric`` (A == A^T, values
    included), ``undirected_edges`` ((edges + self_loops) / 2, None unless symmetric),
    ``degree_min/median/mean/max`` (out-degree: entries per row), ``in_degree_*``
    (entries per column), ``isolated`` (no edge to or from another node).
    """
    g = _canonical(graph)
    n = g.shape[0]
    out_deg = np.diff(g.indptr)
    in_deg = np.bincount(g.indices, minlength=n)
    loop = g.diagonal() != 0  # canonical: a stored diagonal entry is a self loop
    self_loops = int(np.count_nonzero(loop))
    if not np.array_equal(out_deg, in_deg):  # A = A^T needs every row as full as its column
        symmetric = False
    else:  # the transpose of a canonical CSR, in CSR: canonical, same indptr; compare its arrays
        t = g.T.tocsr()
        t.sort_indices()
        symmetric = np.array_equal(t.indices, g.indices) and np.array_equal(t.data, g.data)
        del t
    touched = (out_deg > loop) | (in_deg > loop)  # an edge to or from another node
    stats: dict[str, Any] = {
        "nodes": int(n),
        "edges": int(g.nnz),
        "self_loops": self_loops,
        "symmetric": bool(symmetric),
        "undirected_edges": int((g.nnz + self_loops) // 2) if symmetric else None,
    }
    stats.update(_summary(out_deg, "degree"))
    stats.update(_summary(in_deg, "in_degree"))
    stats["isolated"] = int(n - touched.sum())
    return stats


def nearly_symmetric(graph: sp.spmatrix | sp.sparray, rtol: float = 1e-5) -> bool:
    """Whether every entry has its mirror, equal to a relative ``rtol`` (float32 rounding of
    weights computed twice, e.g. a kNN graph's mirrored cosines), whatever the scale of the
    weights: :func:`~graphrec.graphs.export.to_networkx`'s rule for an undirected graph,
    where :func:`degree_stats`' ``symmetric`` asks for equal values."""
    g = _canonical(graph)
    gap, size = abs(g - g.T), abs(g).maximum(abs(g.T))
    return (gap > size.multiply(rtol)).nnz == 0


def connected_components(graph: sp.spmatrix | sp.sparray) -> tuple[int, np.ndarray]:
    """Weakly connected components: ``(n_components, labels)`` (labels 0..n-1 per node).

    Component sizes are ``np.bincount(labels)``; an isolated node is its own component.
    """
    g = _canonical(graph)
    n_comp, labels = csgraph.connected_components(g, directed=True, connection="weak", return_labels=True)
    return int(n_comp), labels


def overlap(a: sp.spmatrix | sp.sparray, b: sp.spmatrix | sp.sparray) -> float:
    """Share of ``a``'s edges (i, j) that are also edges of ``b`` (NaN when a has none)."""
    ga, gb = _canonical(a, "a"), _canonical(b, "b")
    if ga.shape != gb.shape:
        raise DataError(f"graphs of different sizes: a is {ga.shape}, b is {gb.shape}: compare graphs over the same "
                        "nodes (item graphs of one dataset with each other, user graphs with user graphs)")
    if ga.nnz == 0:
        return float("nan")
    both = _pattern(ga).multiply(_pattern(gb))
    return float(sp.csr_matrix(both).count_nonzero() / ga.nnz)


def edge_agreement(a: sp.spmatrix | sp.sparray, b: sp.spmatrix | sp.sparray) -> dict[str, float]:
    """How two graphs over the same nodes agree, beyond :func:`overlap`'s one direction:
    ``jaccard`` = |E(a) ∩ E(b)| / |E(a) ∪ E(b)| over the stored (directed) edges, self loops
    left out; ``shared`` = |E(a) ∩ E(b)|; ``weight_spearman`` = the rank correlation of the
    two graphs' weights on their shared edges (NaN with fewer than three, or constant weights):
    do the graphs rank the edges they share alike (a kNN graph's cosine against a
    co-interaction count)?"""
    ga, gb = _canonical(a, "a"), _canonical(b, "b")
    if ga.shape != gb.shape:
        raise DataError(f"graphs of different sizes: a is {ga.shape}, b is {gb.shape}: compare graphs over the same "
                        "nodes (item graphs of one dataset with each other, user graphs with user graphs)")
    pa, pb = _off_diagonal(_pattern(ga)), _off_diagonal(_pattern(gb))
    both = sp.csr_matrix(pa.multiply(pb))
    shared = int(both.nnz)
    union = int(pa.nnz + pb.nnz - shared)
    out = {"jaccard": shared / union if union else float("nan"), "shared": float(shared),
           "weight_spearman": float("nan")}
    if shared >= 3:
        coo = both.tocoo()
        wa = np.asarray(ga[coo.row, coo.col]).ravel()
        wb = np.asarray(gb[coo.row, coo.col]).ravel()
        if np.ptp(wa) > 0 and np.ptp(wb) > 0:
            from scipy.stats import spearmanr

            out["weight_spearman"] = float(spearmanr(wa, wb)[0])
    return out


def _has_edges(g: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Whether (i[t], j[t]) is a stored entry of canonical CSR ``g`` (no explicit zeros):
    scipy's per-pair binary search in each row's sorted indices, nothing of the graph's
    size (a lookup table of every entry took 589 MiB at 19M edges)."""
    if not len(i):
        return np.zeros(0, dtype=bool)
    return np.asarray(g[np.asarray(i), np.asarray(j)]).ravel() != 0


def random_pair_overlap(b: sp.spmatrix | sp.sparray, n_pairs: int, seed: int = 0) -> float:
    """Share of ``n_pairs`` random ordered item pairs (i, j), i != j, that are edges of b.

    Pairs are drawn uniformly with replacement; the expectation is b's off-diagonal
    density, the chance level of :func:`overlap` (module doc).
    """
    gb = _canonical(b, "b")
    n = gb.shape[0]
    if n < 2:
        raise DataError(f"random pairs need at least 2 items, the graph has {n}")
    if not is_int(n_pairs) or n_pairs < 1:
        raise ConfigError(f"n_pairs must be a positive integer, got {n_pairs!r}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = rng.integers(0, n - 1, size=n_pairs)
    j += j >= i  # uniform over the n - 1 items other than i
    return float(_has_edges(gb, i, j).mean())


def coconsumption_rate(knn: sp.spmatrix | sp.sparray, train: sp.spmatrix | sp.sparray) -> float:
    """Share of ``knn``'s edges (i, j), i != j, with a training user who consumed both.

    ``train`` is the user-item training matrix (n_users x n_items). For each edge the
    rows i and j of R^T (the items' user sets) are multiplied element-wise, in edge
    blocks of bounded size; cost O(sum over edges of |users(i)| + |users(j)|). Self
    loops are not counted. NaN when the graph has no such edge.
    """
    g = _canonical(knn, "knn")
    if not sp.issparse(train) or train.ndim != 2:
        raise DataError("train must be a 2-D scipy sparse user-item matrix (dataset.train)")
    if train.shape[1] != g.shape[0]:
        raise DataError(
            f"the graph has {g.shape[0]} items but train has {train.shape[1]} item columns: "
            "use the graph built from this dataset"
        )
    coo = g.tocoo()
    off = coo.row != coo.col
    ei, ej = coo.row[off].astype(np.int64), coo.col[off].astype(np.int64)
    if ei.size == 0:
        return float("nan")
    r = sp.csr_matrix(train, copy=True)
    r.eliminate_zeros()
    r.data = np.ones(r.nnz, dtype=np.int8)
    rt = r.T.tocsr()
    rt.sum_duplicates()
    item_deg = np.diff(rt.indptr).astype(np.int64)
    cost = np.cumsum(item_deg[ei] + item_deg[ej] + 1)
    hits = 0
    start = 0
    while start < ei.size:
        base = cost[start - 1] if start else 0
        end = max(int(np.searchsorted(cost, base + _BLOCK_ENTRIES, side="right")), start + 1)
        both = rt[ei[start:end]].multiply(rt[ej[start:end]])
        both = sp.csr_matrix(both)
        both.eliminate_zeros()
        hits += int(np.count_nonzero(np.diff(both.indptr)))
        start = end
    return float(hits / ei.size)


def _cold_mask(n: int, cold: np.ndarray) -> np.ndarray:
    """A boolean mask of the ``n`` nodes, True at the item indices ``cold``."""
    cold = np.asarray(cold)
    if cold.ndim != 1 or (cold.size and (not np.issubdtype(cold.dtype, np.integer)
                                         or cold.min() < 0 or cold.max() >= n)):
        raise DataError(f"cold items must be item indices in [0, {n}) (dataset.cold_items of this graph's data)")
    mask = np.zeros(n, dtype=bool)
    mask[cold] = True
    return mask


def _warm_part(g: sp.csr_matrix, is_cold: np.ndarray) -> sp.csr_matrix:
    """``g`` without the edges that touch a cold item."""
    coo = g.tocoo()
    keep = ~(is_cold[coo.row] | is_cold[coo.col])
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=g.shape)


def cold_item_stats(graph: sp.spmatrix | sp.sparray, cold: np.ndarray) -> dict[str, int]:
    """How the ``cold`` items (indices, ``dataset.cold_items``) sit in an item graph.

    Keys: ``cold_items`` (their number), ``cold_isolated`` (those with no edge to or
    from another item), ``cold_edges`` (edges i -> j, i != j, with i or j cold) and
    ``warm_edges`` (edges i -> j, i != j, between two warm items). Self loops are not
    counted, as in :func:`coconsumption_rate`."""
    g = _canonical(graph)
    is_cold = _cold_mask(g.shape[0], cold)
    coo = g.tocoo()
    off = coo.row != coo.col
    rows, cols = coo.row[off], coo.col[off]
    touches = is_cold[rows] | is_cold[cols]
    touched = np.zeros(g.shape[0], dtype=bool)
    touched[rows] = True
    touched[cols] = True
    return {
        "cold_items": int(is_cold.sum()),
        "cold_isolated": int((is_cold & ~touched).sum()),
        "cold_edges": int(touches.sum()),
        "warm_edges": int((~touches).sum()),
    }


def _simple_undirected(graph: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    g = _pattern(_canonical(graph))
    both = (g + g.T).tocoo()
    off = both.row != both.col
    s = sp.csr_matrix(
        (np.ones(int(off.sum()), dtype=np.float64), (both.row[off], both.col[off])), shape=g.shape
    )
    s.sort_indices()
    return s


def local_clustering(graph: sp.spmatrix | sp.sparray, nodes: np.ndarray | None = None) -> np.ndarray:
    """Local clustering coefficients (module doc) of ``nodes`` (default: all nodes)."""
    return _local_clustering(_simple_undirected(graph), nodes)


def _local_clustering(s: sp.csr_matrix, nodes: np.ndarray | None) -> np.ndarray:
    n = s.shape[0]
    nodes = np.arange(n) if nodes is None else np.asarray(nodes, dtype=np.int64)
    if nodes.size and (nodes.min() < 0 or nodes.max() >= n):
        raise DataError(f"node indices must lie in [0, {n}), got {int(nodes.min())}..{int(nodes.max())}")
    deg = np.diff(s.indptr).astype(np.float64)
    out = np.zeros(nodes.size, dtype=np.float64)
    # bound the work of S[v] S per chunk by the summed neighbour degrees
    cost = np.cumsum(np.asarray(s[nodes] @ deg).ravel() + 1) if nodes.size else np.zeros(0)
    start = 0
    while start < nodes.size:
        base = cost[start - 1] if start else 0
        end = max(int(np.searchsorted(cost, base + _BLOCK_ENTRIES, side="right")), start + 1)
        sv = s[nodes[start:end]]
        tri2 = np.asarray((sv @ s).multiply(sv).sum(axis=1)).ravel()  # 2 T_v
        d = deg[nodes[start:end]]
        ok = d >= 2
        out[start:end][ok] = tri2[ok] / (d[ok] * (d[ok] - 1))
        start = end
    return out


def clustering_sample(graph: sp.spmatrix | sp.sparray, n: int, seed: int = 0) -> float:
    """Mean local clustering coefficient over ``n`` distinct random nodes (all nodes,
    exactly, when ``n`` >= the node count); 0.0 for an empty graph."""
    if not is_int(n) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    s = _simple_undirected(graph)
    size = s.shape[0]
    if size == 0:
        return 0.0
    if n >= size:
        nodes = np.arange(size)
    else:
        nodes = np.sort(np.random.default_rng(seed).choice(size, size=n, replace=False))
    return float(_local_clustering(s, nodes).mean())


def neighbours(graph: sp.spmatrix | sp.sparray, item: int, top: int = 10) -> list[tuple[int, float]]:
    """The ``top`` strongest out-neighbours of ``item`` (ties: lower index first).

    Raises:
        ConfigError: ``item`` is not a node of the graph, or ``top`` is below 1."""
    g = _canonical(graph)
    if not is_int(item) or not 0 <= item < g.shape[0]:
        shown = item if isinstance(item, (int, np.integer)) else repr(item)  # numpy 2 reprs np.int64(3)
        raise ConfigError(f"node {shown} is not in the graph (nodes 0..{g.shape[0] - 1}): give a node index")
    if not is_int(top) or top < 1:
        raise ConfigError(f"top={top!r}: show at least one neighbour (an integer >= 1)")
    lo, hi = g.indptr[item], g.indptr[item + 1]
    cols, vals = g.indices[lo:hi], g.data[lo:hi]
    keep = cols != item
    cols, vals = cols[keep], vals[keep]
    order = np.lexsort((cols, -vals))[:top]
    return [(int(cols[o]), float(vals[o])) for o in order]


def graph_report(
    graph: sp.spmatrix | sp.sparray,
    *,
    other: sp.spmatrix | sp.sparray | None = None,
    train: sp.spmatrix | sp.sparray | None = None,
    sample: int = 1000,
    seed: int = 0,
    cold: np.ndarray | None = None,
) -> dict[str, Any]:
    """Everything `graphrec inspect` prints about a graph, as plain numbers.

    ``degree_stats`` plus the number of weak components and the largest one's size,
    the mean local clustering on a sample of ``sample`` nodes, a degree histogram
    (``degree_hist``: number of nodes with out-degree 0, 1, 2, ...), the in-degree from
    other nodes (self loops left out): its median (``in_degree_median_others``), the
    nodes no other node lists (``never_neighbour``) and the three most listed (``hubs``:
    ``(node, in-degree)``), and, when given, the overlap with ``other`` (share of this
    graph's edges that are edges of ``other``, and the same share for random pairs; and
    :func:`edge_agreement`'s entries as ``*_with_other``) and the co-consumption
    rate of the edges in ``train``. With ``cold`` (the cold items of the graph's
    cold-start split, ``dataset.cold_items``): :func:`cold_item_stats` and, with
    ``train`` and edges touching a cold item, ``coconsumption_rate_warm``, the rate of
    the warm-warm edges alone (a cold item has no training user, so an edge touching
    one is never co-consumed: the rate of all edges mixes in those zeros).
    """
    g = _canonical(graph)
    out: dict[str, Any] = dict(degree_stats(g))
    n_comp, labels = connected_components(g)
    out["components"] = int(n_comp)
    out["largest_component"] = int(np.bincount(labels).max()) if labels.size else 0
    out["clustering_sample"] = float(clustering_sample(g, min(sample, g.shape[0]), seed=seed))
    deg = np.diff(g.indptr)
    out["degree_hist"] = np.bincount(deg).tolist()
    # in-edges from other nodes: the items no row lists, and the hubs most rows list
    in_deg = np.bincount(g.indices, minlength=g.shape[0]) - (g.diagonal() != 0)
    out["in_degree_median_others"] = float(np.median(in_deg)) if in_deg.size else 0.0
    out["never_neighbour"] = int((in_deg == 0).sum())
    out["hubs"] = [(int(t), int(in_deg[t])) for t in np.argsort(-in_deg, kind="stable")[:3] if in_deg[t] > 0]
    if other is not None:
        out["overlap_with_other"] = overlap(g, other)
        out.update({f"{k}_with_other": v for k, v in edge_agreement(g, other).items()})
        out["random_pair_overlap_other"] = random_pair_overlap(other, 200_000, seed=seed)
    if train is not None:
        out["coconsumption_rate"] = coconsumption_rate(g, train)
    if cold is not None:
        out.update(cold_item_stats(g, cold))
        if train is not None and out["cold_edges"]:
            out["coconsumption_rate_warm"] = coconsumption_rate(_warm_part(g, _cold_mask(g.shape[0], cold)), train)
    return out
