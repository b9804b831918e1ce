r"""The normalised co-interaction graph as an operator that never forms the graph.

With R the binarised training matrix (n_users x n_items), s_i = |users(i)| and
D_ii = sum_{j != i} (R^T R)_ij (see :mod:`graphrec.graphs.cooccur`, "Factored form"):

.. math::
    \hat E^c h = D^{-1/2}\big(R^\top (R\, x) - s \odot x\big), \qquad x = D^{-1/2} h,

two sparse products with R (and R^T) per application: O(nnz(R) d) instead of the
O(nnz(C) d) of the explicit graph C = R^T R - diag(s), which is typically several times
denser than R. The operator is symmetric, so its backward pass is the same two
products applied to the incoming gradient (each :func:`graphrec.nn.propagate` reuses
the precomputed transpose). The factors are non-persistent buffers: they move with
``.to(device)`` and are not part of a state dict.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.graphs.cooccur import CooccurrenceFactors
from graphrec.nn.propagation import SparseOperator, propagate, to_scipy_csr, to_torch_sparse

__all__ = ["FactoredCooccurrence", "cooccurrence_operator"]


class FactoredCooccurrence(nn.Module):
    """``h -> Ê^c h`` from :func:`graphrec.graphs.cooccur.cooccurrence_factors`.

    Args:
        factors: R, s and D^{-1/2} of the TRAINING interactions.
    """

    def __init__(self, factors: CooccurrenceFactors) -> None:
        super().__init__()
        self.n_items = factors.n_items
        r = factors.interactions
        self.register_buffer("r", to_torch_sparse(r), persistent=False)
        self.register_buffer("r_t", to_torch_sparse(r.T), persistent=False)
        self.register_buffer("self_counts", torch.from_numpy(factors.self_counts).unsqueeze(1), persistent=False)
        self.register_buffer("inv_sqrt_degree", torch.from_numpy(factors.inv_sqrt_degree).unsqueeze(1), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        x = self.inv_sqrt_degree * h
        y = propagate(self.r_t, propagate(self.r, x, adj_t=self.r_t), adj_t=self.r) - self.self_counts * x
        return self.inv_sqrt_degree * y

    @torch.no_grad()
    def matrix(self) -> Tensor:
        """The explicit Ê^c as a torch sparse CSR tensor on the operator's device (forms
        C = R^T R: for inspection and tests, not for training)."""
        factors = CooccurrenceFactors(
            to_scipy_csr(self.r),
            self.self_counts.squeeze(1).cpu().numpy(),
            self.inv_sqrt_degree.squeeze(1).cpu().numpy().astype(np.float32),
        )
        return to_torch_sparse(factors.matrix(), device=self.r.device)

    def extra_repr(self) -> str:
        return f"n_items={self.n_items}, interactions={self.r.values().numel()}"


def cooccurrence_operator(graph: Tensor | FactoredCooccurrence, n_items: int) -> FactoredCooccurrence | SparseOperator:
    """``h -> Ê^c h`` for a model: the factored operator as it is (its size checked), or an
    explicit normalised graph (torch sparse, e.g. pruned or stored) as a
    :class:`graphrec.nn.SparseOperator`."""
    if isinstance(graph, FactoredCooccurrence):
        if graph.n_items != n_items:
            raise ConfigError(f"cooccur_graph has {graph.n_items} items, expected {n_items}")
        return graph
    return SparseOperator(graph, "cooccur_graph", n_items)
