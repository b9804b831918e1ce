"""Degree-sensitive edge sampling (FREEDOM) and the torch-built normalised bipartite
graph: kept-edge counts, sampling probabilities against exact values computed by
enumeration, reproducibility, and the re-normalisation against scipy's formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.errors import ConfigError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.prune import (
    degree_sensitive_sample,
    degree_sensitive_weights,
    edge_degrees,
    n_kept,
    normalized_bipartite_csr,
)

# 4 users x 4 items, 8 edges; user degrees 4, 2, 1, 1; item degrees 3, 2, 1, 2
ROWS = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3])
COLS = torch.tensor([0, 1, 2, 3, 0, 1, 0, 3])
DU = np.array([4, 2, 1, 1], dtype=np.float64)
DI = np.array([3, 2, 1, 2], dtype=np.float64)
W = 1.0 / np.sqrt(DU[ROWS.numpy()] * DI[COLS.numpy()])  # by hand: 1/sqrt(d_u d_i)


def _exact_inclusion(w: np.ndarray, m: int) -> np.ndarray:
    """P(edge kept) when m edges are drawn one after another without replacement, each
    draw proportional to w among the remaining ones: sum over all ordered draws."""
    total = w.sum()
    p = np.zeros(len(w))
    for seq in itertools.permutations(range(len(w)), m):
        prob, left = 1.0, total
        for e in seq:
            prob *= w[e] / left
            left -= w[e]
        p[list(seq)] += prob
    return p


def _frequencies(m_dropout: float, n_draws: int, seed: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(len(ROWS))
    for _ in range(n_draws):
        counts[degree_sensitive_sample(ROWS, COLS, m_dropout, generator=gen).numpy()] += 1
    return counts / n_draws


def test_weights_are_inverse_sqrt_degree_products():
    du, di = edge_degrees(ROWS, COLS, 4, 4)
    assert du.tolist() == DU.tolist() and di.tolist() == DI.tolist()
    w = degree_sensitive_weights(ROWS, COLS, du, di)
    assert w.dtype == torch.float64
    np.testing.assert_allclose(w.numpy(), W, rtol=1e-12)
    # the same numbers as the edges' values in the full normalised graph D^-1/2 A D^-1/2
    r = sp.csr_matrix((np.ones(8), (ROWS.numpy(), COLS.numpy())), shape=(4, 4))
    a = normalized_bipartite(r).toarray()
    np.testing.assert_allclose(a[ROWS.numpy(), 4 + COLS.numpy()], W, rtol=1e-6)
    with pytest.raises(ConfigError, match="positive degree"):
        degree_sensitive_weights(ROWS, COLS, torch.zeros(4), di)


@pytest.mark.parametrize(
    "n,dropout,want",
    [(8, 0.0, 8), (8, 0.8, 2), (10, 0.8, 2), (44327, 0.8, 8865), (44327, 0.9, 4433), (3, 0.9, 1), (0, 0.5, 0)],
)
def test_kept_edge_count(n, dropout, want):
    assert n_kept(n, dropout) == want


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5])
def test_dropout_outside_range_is_an_error(dropout):
    with pytest.raises(ConfigError, match="dropout"):
        n_kept(8, dropout)


@pytest.mark.parametrize("dropout", [0.0, 0.5, 0.8, 0.9])
def test_sample_keeps_the_right_number_of_distinct_sorted_edges(dropout):
    rng = np.random.default_rng(0)
    r = sp.random(50, 40, density=0.2, random_state=1, format="csr")
    coo = r.tocoo()
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    kept = degree_sensitive_sample(rows, cols, dropout, n_rows=50, n_cols=40, seed=int(rng.integers(1000)))
    assert kept.dtype == torch.int64 and kept.numel() == n_kept(len(rows), dropout)
    assert torch.equal(kept, torch.unique(kept))  # sorted, no repeats
    assert int(kept.min()) >= 0 and int(kept.max()) < len(rows)


def test_same_seed_same_edges_other_seed_other_edges():
    a = degree_sensitive_sample(ROWS, COLS, 0.5, seed=7)
    b = degree_sensitive_sample(ROWS, COLS, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    draws = {tuple(degree_sensitive_sample(ROWS, COLS, 0.5, seed=s).tolist()) for s in range(20)}
    assert len(draws) > 5
    # degrees passed in or computed from the edges: the same weights, the same draw
    du, di = edge_degrees(ROWS, COLS, 4, 4)
    c = degree_sensitive_sample(ROWS, COLS, 0.5, row_degree=du, col_degree=di, seed=7)
    assert torch.equal(a, c)
    with pytest.raises(ConfigError, match="generator or a seed"):
        degree_sensitive_sample(ROWS, COLS, 0.5, seed=1, generator=torch.Generator())


def test_one_draw_picks_each_edge_with_probability_proportional_to_its_weight():
    """Keep 1 of 8 edges: P(e) = w_e / sum w exactly (empirical, 5 standard errors)."""
    n_draws = 6000
    freq = _frequencies(0.875, n_draws, seed=0)  # round(8 * 0.125) = 1
    want = W / W.sum()
    se = np.sqrt(want * (1 - want) / n_draws)
    assert np.all(np.abs(freq - want) < 5 * se), (freq, want)
    # the test can fail: uniform sampling would be far off for the extreme weights
    assert np.abs(want - 1 / 8).max() > 10 * se.max()


def test_several_draws_keep_edges_with_the_successive_sampling_probabilities():
    """Keep 3 of 8: inclusion frequencies match the exact probabilities of drawing 3
    edges one by one without replacement proportionally to 1/sqrt(d_u d_i)."""
    n_draws = 6000
    freq = _frequencies(0.625, n_draws, seed=1)  # round(8 * 0.375) = 3
    want = _exact_inclusion(W, 3)
    assert want.sum() == pytest.approx(3.0)
    se = np.sqrt(want * (1 - want) / n_draws)
    assert np.all(np.abs(freq - want) < 5 * se), (freq, want)
    # higher weight, kept more often (edge (0,2) has w 0.5 > edge (0,0)'s 0.29)
    assert want[2] > want[0] + 10 * se.max() and freq[2] > freq[0]
    # and not the uniform 3/8 nor plain proportionality 3 w / sum w
    assert np.abs(want - 3 / 8).max() > 10 * se.max()
    assert np.abs(want - 3 * W / W.sum()).max() > 4 * se.max()


def _dense_sym(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """D^-1/2 [[0,R],[R^T,0]] D^-1/2 by hand, densely."""
    n = n_rows + n_cols
    a = np.zeros((n, n))
    a[rows, n_rows + cols] = 1
    a[n_rows + cols, rows] = 1
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    return inv[:, None] * a * inv[None, :]


def test_normalized_bipartite_csr_matches_the_dense_formula_and_scipy():
    r = sp.random(30, 20, density=0.15, random_state=4, format="csr")
    r.data[:] = 1
    coo = r.tocoo()
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    got = normalized_bipartite_csr(rows, cols, 30, 20)
    assert got.layout == torch.sparse_csr and tuple(got.shape) == (50, 50) and got.dtype == torch.float32
    dense = got.to_dense().double().numpy()
    np.testing.assert_allclose(dense, _dense_sym(coo.row, coo.col, 30, 20), atol=1e-7)
    np.testing.assert_allclose(dense, normalized_bipartite(r).toarray(), atol=1e-7)
    np.testing.assert_allclose(dense, dense.T, atol=0)
    # the edge order does not matter
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    again = normalized_bipartite_csr(rows[perm], cols[perm], 30, 20)
    assert torch.equal(again.crow_indices(), got.crow_indices())
    assert torch.equal(again.col_indices(), got.col_indices())
    assert torch.equal(again.values(), got.values())


def test_kept_graph_is_renormalised_with_its_own_degrees():
    """After pruning, every value is 1/sqrt(d'_u d'_i) with the KEPT degrees; nodes that
    lost all their edges have empty rows; the weighted row sums of the normalised graph
    equal sum_j 1/sqrt(d'_i d'_j) (checked against the dense formula)."""
    r = sp.random(40, 30, density=0.2, random_state=2, format="csr")
    coo = r.tocoo()
    rows, cols = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    kept = degree_sensitive_sample(rows, cols, 0.8, n_rows=40, n_cols=30, seed=3)
    kr, kc = rows[kept], cols[kept]
    g = normalized_bipartite_csr(kr, kc, 40, 30)
    dense = g.to_dense().double().numpy()
    np.testing.assert_allclose(dense, _dense_sym(kr.numpy(), kc.numpy(), 40, 30), atol=1e-7)
    du = np.bincount(kr.numpy(), minlength=40)
    di = np.bincount(kc.numpy(), minlength=30)
    want = 1 / np.sqrt(du[kr.numpy()] * di[kc.numpy()])
    np.testing.assert_allclose(dense[kr.numpy(), 40 + kc.numpy()], want, rtol=1e-6)
    crow = g.crow_indices().numpy()
    assert np.array_equal(np.diff(crow), np.concatenate([du, di]))  # row lengths = kept degrees
    assert g.values().numel() == 2 * kept.numel()
    # differs from the full graph's values wherever a degree changed
    full = normalized_bipartite(r).toarray()
    assert not np.allclose(dense[kr.numpy(), 40 + kc.numpy()], full[kr.numpy(), 40 + kc.numpy()])
