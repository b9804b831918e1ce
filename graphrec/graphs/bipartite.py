"""The user-item bipartite graph of LightGCN-style models.

For the training matrix R (n_users x n_items):

    A = [[0, R], [R^T, 0]]      ((n_users + n_items) square, symmetric)

Node ``u`` is user ``u``; node ``n_users + i`` is item ``i``. Built directly from R's
COO indices (no dense blocks).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.errors import DataError
from graphrec.graphs.cooccur import binary_interactions
from graphrec.graphs.normalize import normalize_adjacency

__all__ = ["bipartite_adjacency", "normalized_bipartite"]


def bipartite_adjacency(interactions: sp.spmatrix) -> sp.csr_matrix:
    """``[[0, R], [R^T, 0]]`` as CSR, binary (duplicates collapse to 1; an entry stored as 0
    is no interaction, as in the co-interaction graph)."""
    if not (sp.issparse(interactions) or (isinstance(interactions, np.ndarray) and interactions.ndim == 2)):
        raise DataError(f"interactions must be a users x items matrix (scipy sparse), got {type(interactions).__name__}")
    r = binary_interactions(sp.csr_matrix(interactions)).tocoo()  # a 0/1 copy, the co-interaction graph's
    n_users, n_items = r.shape
    n = n_users + n_items
    rows = np.concatenate([r.row, r.col + n_users])  # distinct pairs: the two blocks never overlap
    cols = np.concatenate([r.col + n_users, r.row])
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))


def normalized_bipartite(interactions: sp.spmatrix, mode: str = "sym", self_loops: bool = False) -> sp.csr_matrix:
    """The normalised bipartite adjacency: D^-1/2 A D^-1/2 (LightGCN, eq. 7) by default;
    ``mode="row", self_loops=True`` gives D^-1 (A + I), the backbone of LATTICE's
    reference code (row-normalised, not symmetric)."""
    a = bipartite_adjacency(interactions)
    if self_loops:
        a = sp.csr_matrix(a + sp.eye(a.shape[0], dtype=np.float32, format="csr"))
    return normalize_adjacency(a, mode)
