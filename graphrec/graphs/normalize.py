"""Normalisation of sparse adjacency matrices, on the stored values only.

For a weighted adjacency A with degrees d_i = sum_j A_ij:

* ``"sym"``:  Â_ij = d_i^-1/2 A_ij d_j^-1/2   (GCN / LightGCN; symmetric if A is)
* ``"row"``:  Â_ij = A_ij / d_i               (random walk; rows sum to 1)
* ``"none"``: Â = A

Rows (and columns) of zero degree stay zero instead of producing inf/NaN. The result is
computed from the COO/CSR values, ``O(nnz)``; no diagonal matrix is ever formed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.errors import ConfigError

__all__ = ["NORMALIZATIONS", "normalize_adjacency", "degree_power", "nonpositive_rows"]

NORMALIZATIONS = ("sym", "row", "none")


def degree_power(degree: np.ndarray, power: float) -> np.ndarray:
    """``degree ** power`` with 0 where the degree is 0."""
    degree = np.asarray(degree, dtype=np.float64)
    out = np.zeros_like(degree)
    nz = degree > 0
    out[nz] = degree[nz] ** power
    return out


def normalize_adjacency(adj: sp.spmatrix | sp.sparray, mode: str = "sym") -> sp.csr_matrix:
    """Normalise a square (or rectangular, for ``row``) sparse matrix; returns float32 CSR."""
    if mode not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalisation {mode!r}: use one of {', '.join(NORMALIZATIONS)}")
    a = sp.csr_matrix(adj, dtype=np.float64, copy=True)
    a.sum_duplicates()
    if mode == "none":
        return a.astype(np.float32)
    row_deg = np.asarray(a.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    if mode == "row":
        a.data *= degree_power(row_deg, -1.0)[rows]
    else:
        if a.shape[0] != a.shape[1]:
            raise ConfigError(f"symmetric normalisation needs a square matrix, got {a.shape}")
        inv_sqrt = degree_power(row_deg, -0.5)
        a.data *= inv_sqrt[rows] * inv_sqrt[a.indices]
    a.eliminate_zeros()
    return a.astype(np.float32)


def nonpositive_rows(adj: sp.spmatrix | sp.sparray) -> int:
    """The rows holding entries whose sum is <= 0 (negative cosines): ``sym`` and ``row``
    normalisation leave them empty, as rows of zero degree."""
    a = sp.csr_matrix(adj)
    has = np.diff(a.indptr) > 0
    return int((has & (np.asarray(a.sum(axis=1)).ravel() <= 0)).sum())
