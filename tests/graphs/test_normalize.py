"""Normalisation and the bipartite graph, on small graphs computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.errors import ConfigError
from graphrec.graphs import bipartite_adjacency, normalize_adjacency, normalized_bipartite


def test_symmetric_normalisation_by_hand():
    # path 0 - 1 - 2 with weights 1 and 4; node 3 isolated
    a = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 4, 0], [0, 4, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    n = normalize_adjacency(a, "sym").toarray()
    # degrees 1, 5, 4, 0
    assert n[0, 1] == pytest.approx(1 / np.sqrt(1 * 5))
    assert n[1, 2] == pytest.approx(4 / np.sqrt(5 * 4))
    assert np.allclose(n, n.T)
    assert not n[3].any() and np.isfinite(n).all()


def test_row_normalisation_rows_sum_to_one_and_zero_rows_stay_zero():
    a = sp.csr_matrix(np.array([[0, 2, 2], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    n = normalize_adjacency(a, "row").toarray()
    assert n.tolist() == [[0, 0.5, 0.5], [1, 0, 0], [0, 0, 0]]


def test_none_keeps_values_and_unknown_mode_raises():
    a = sp.csr_matrix(np.array([[0, 3], [3, 0]], dtype=np.float32))
    assert normalize_adjacency(a, "none").toarray().tolist() == [[0, 3], [3, 0]]
    with pytest.raises(ConfigError, match="unknown normalisation 'l1'"):
        normalize_adjacency(a, "l1")


def test_bipartite_layout():
    r = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    a = bipartite_adjacency(r).toarray()
    expected = np.zeros((5, 5))
    expected[0, 2] = expected[0, 4] = expected[1, 3] = 1
    expected = expected + expected.T
    assert np.array_equal(a, expected)
    n = normalized_bipartite(r).toarray()
    assert n[0, 2] == pytest.approx(1 / np.sqrt(2 * 1))


def test_a_stored_zero_is_no_interaction_in_the_bipartite_graph():
    """As in the co-interaction graph (cooccur): an explicit 0 of a raw matrix is no edge;
    duplicates still collapse to 1, and the caller's matrix is left as it was."""
    r = sp.coo_matrix(([1.0, 1.0, 0.0, 2.0, 2.0], ([0, 1, 1, 2, 2], [0, 1, 2, 3, 3])), shape=(3, 4))
    data = r.data.copy()
    a = bipartite_adjacency(r).toarray()
    want = np.zeros((7, 7), np.float32)
    for u, i in ((0, 0), (1, 1), (2, 3)):
        want[u, 3 + i] = want[3 + i, u] = 1.0
    np.testing.assert_array_equal(a, want)
    np.testing.assert_array_equal(r.data, data)
