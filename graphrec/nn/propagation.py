"""Sparse propagation: ``adj @ x`` with torch sparse CSR tensors, on CPU or CUDA.

Every graph model in graphrec propagates dense node embeddings over a fixed sparse
graph. :func:`to_torch_sparse` converts a scipy matrix once; :func:`propagate` then
computes ``Y = A X``. Its backward pass is ``dL/dX = A^T dL/dY``. Autograd's generic
rule for a sparse CSR product transposes ``A`` at every step; when the transpose is
known in advance (``adj_t``, and ``adj_t = adj`` for the symmetric normalised graphs
of LightGCN and of the item-item graphs) we reuse it, which makes a forward + backward
pass about 2-3x faster on CPU (measured in ``experiments/benchmarks/propagation.py``).
No gradient flows into the graph's values (they are constants here: learned graph
weights are applied outside the product, by linearity).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError

__all__ = ["SparseOperator", "as_sparse_csr", "csr_transpose", "propagate", "to_scipy_csr", "to_torch_sparse", "weighted_sparse_sum"]


def to_torch_sparse(
    matrix: sp.spmatrix | sp.sparray,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A scipy sparse matrix as a torch sparse CSR tensor (indices int64)."""
    m = sp.csr_matrix(matrix)
    m.sum_duplicates()
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta" on every call
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data).to(dtype),
            size=m.shape,
            device=device,
        )


def to_scipy_csr(t: Tensor) -> sp.csr_matrix:
    """A torch sparse CSR tensor as a scipy CSR matrix on the host (inverse of
    :func:`to_torch_sparse`)."""
    t = t.detach().to("cpu")
    return sp.csr_matrix((t.values().numpy(), t.col_indices().numpy(), t.crow_indices().numpy()), shape=tuple(t.shape))


class _SpMM(torch.autograd.Function):
    """``adj @ x`` whose backward multiplies by a precomputed ``adj_t``."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        gx = torch.sparse.mm(ctx.adj_t, grad) if ctx.needs_input_grad[2] else None
        ctx.adj_t = None
        return None, None, gx


def propagate(adj: Tensor, x: Tensor, adj_t: Tensor | None = None) -> Tensor:
    """``adj @ x`` for a sparse ``adj`` (n x m) and dense ``x`` (m x d).

    Args:
        adj: torch sparse CSR (or COO) tensor.
        x: dense features/embeddings.
        adj_t: the transpose of ``adj`` as a sparse tensor, used in the backward pass;
            pass ``adj`` itself for a symmetric graph. ``None`` uses autograd's rule.
    """
    if adj_t is None or not (x.requires_grad and torch.is_grad_enabled()):
        return torch.sparse.mm(adj, x)
    return _SpMM.apply(adj, adj_t, x)


def as_sparse_csr(t: Tensor, name: str, n: int) -> Tensor:
    """``t`` (torch sparse CSR or COO, shape (n, n)) as CSR; a one-line error naming
    ``name`` otherwise."""
    if not isinstance(t, Tensor) or t.layout not in (torch.sparse_csr, torch.sparse_coo):
        raise ConfigError(f"{name} must be a torch sparse tensor (graphrec.nn.to_torch_sparse)")
    if tuple(t.shape) != (n, n):
        raise ConfigError(f"{name} has shape {tuple(t.shape)}, expected {(n, n)}")
    if t.layout == torch.sparse_coo:
        t = t.coalesce().to_sparse_csr()
    return t


def csr_transpose(t: Tensor) -> Tensor:
    """The transpose of a sparse CSR tensor as CSR; ``t`` itself when it is symmetric."""
    tt = t.to_sparse_coo().t().coalesce().to_sparse_csr()
    same = (
        torch.equal(tt.crow_indices(), t.crow_indices())
        and torch.equal(tt.col_indices(), t.col_indices())
        and torch.equal(tt.values(), t.values())
    )
    return t if same else tt


def weighted_sparse_sum(mats: list[Tensor], weights: list[float] | Tensor) -> Tensor:
    """``sum_g w_g M_g`` of same-shape torch sparse matrices (CSR or COO) as CSR, without
    gradient (the explicit operator of a merged item graph, for inspection and export)."""
    if not mats or len(mats) != len(weights):
        raise ConfigError(f"weighted_sparse_sum needs one weight per matrix, got {len(mats)} and {len(weights)}")
    shape = tuple(mats[0].shape)
    if any(tuple(m.shape) != shape for m in mats):
        raise ConfigError(f"weighted_sparse_sum: shapes differ ({[tuple(m.shape) for m in mats]})")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        parts = [m.to_sparse_coo().coalesce() for m in mats]
        idx = torch.cat([p.indices() for p in parts], dim=1)
        val = torch.cat([float(w) * p.values() for p, w in zip(parts, weights)])
        return torch.sparse_coo_tensor(idx, val, shape, check_invariants=False).coalesce().to_sparse_csr()


class SparseOperator(nn.Module):
    """``h -> A h`` for a fixed sparse item graph A (n x n), its transpose precomputed for
    the backward pass. Same interface as :class:`graphrec.nn.FactoredCooccurrence`
    (``n_items``, ``forward``, ``matrix``); the graph is a non-persistent buffer."""

    def __init__(self, adj: Tensor, name: str, n: int) -> None:
        super().__init__()
        self.n_items = n
        csr = as_sparse_csr(adj, name, n)
        self.register_buffer("adj", csr, persistent=False)
        self.register_buffer("adj_t", csr_transpose(csr), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        return propagate(self.adj, h, adj_t=self.adj_t)

    def matrix(self) -> Tensor:
        """A as a torch sparse CSR tensor."""
        return self.adj
