r"""LightGCN: "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation" (He, Deng, Wang, Li, Zhang, Wang; SIGIR 2020).

Users and items are nodes of the bipartite graph :math:`A = [[0, R], [R^T, 0]]` built
from the training matrix :math:`R`; :math:`\hat A = D^{-1/2} A D^{-1/2}`. Starting from
free ID embeddings :math:`E^{(0)} = [E_u; E_i]`, each layer is a parameter-free
propagation, and the final representation averages all layers (paper eq. 8-9):

.. math::
    E^{(l+1)} = \hat A E^{(l)}, \qquad
    E = \frac{1}{L + 1} \sum_{l=0}^{L} E^{(l)}, \qquad
    \hat y_{ui} = e_u^\top e_i.

Training minimises BPR with L2 on the layer-0 embeddings of the batch (eq. 15;
``reg_form="squared"``, the default):

.. math::
    \mathcal{L} = -\frac{1}{B}\sum \ln \sigma(\hat y_{ui^+} - \hat y_{ui^-})
      + \frac{\lambda}{2B} \sum \left(\|e^{(0)}_u\|^2 + \|e^{(0)}_{i^+}\|^2 + \|e^{(0)}_{i^-}\|^2\right)

MMRec's LightGCN (and RecBole's with its default ``require_pow: False``) regularises the
same rows with ``EmbLoss``, the Frobenius norms of the batch's three row blocks, not
squared, over B (``reg_form="norm"``): with :math:`U, P, N` the batch's layer-0 user,
positive and negative rows,

.. math::
    \frac{\lambda}{B} \left(\|U\|_F + \|P\|_F + \|N\|_F\right),

a different penalty at the same :math:`\lambda` (its gradient scales each block by the
inverse of its norm): MMRec's grid values of ``reg_weight`` mean this form.

Shapes: ``adj`` is a sparse (n_users + n_items) square tensor (see
:func:`graphrec.graphs.normalized_bipartite` and :func:`graphrec.nn.to_torch_sparse`);
user node ``u`` is row ``u``, item ``i`` is row ``n_users + i``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.base import Recommender
from graphrec.nn import bpr_loss, l2_penalty, norm_penalty, propagate

__all__ = ["LightGCN", "REG_FORMS"]

#: the regulariser forms: ``squared`` (the paper's eq. 15), ``norm`` (MMRec's ``EmbLoss``)
REG_FORMS = ("squared", "norm")


class LightGCN(Recommender):
    """LightGCN over a fixed normalised user-item graph.

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised bipartite adjacency, torch sparse, symmetric.
        embedding_dim: size d of the ID embeddings (paper: 64).
        num_layers: number of propagation layers L (paper: 3; RecBole default 2).
        reg_weight: L2 coefficient lambda on the batch's layer-0 embeddings (paper: 1e-4).
        reg_form: ``"squared"`` (sum of squares over 2B, the paper's) or ``"norm"`` (sum of
            the Frobenius norms over B, MMRec's ``EmbLoss``).
    """

    @property
    def couples_batch(self) -> bool:
        """``reg_form="norm"`` penalises norms over the whole batch, not a mean of per-triple
        terms (Recommender.couples_batch); ``"squared"`` does not."""
        return self.reg_form == "norm"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        embedding_dim: int = 64,
        num_layers: int = 2,
        reg_weight: float = 1e-4,
        reg_form: str = "squared",
    ) -> None:
        super().__init__()
        if adj.shape != (n_users + n_items, n_users + n_items):
            raise ValueError(f"adj has shape {tuple(adj.shape)}, expected {(n_users + n_items,) * 2}")
        if reg_form not in REG_FORMS:
            raise ValueError(f"reg_form must be one of {', '.join(REG_FORMS)}, got {reg_form!r}")
        self.reg_form = reg_form
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.reg_weight = reg_weight
        self.user_embedding = nn.Embedding(n_users, embedding_dim)
        self.item_embedding = nn.Embedding(n_items, embedding_dim)
        # The graph is data, not a parameter: rebuilt from the dataset, not checkpointed.
        self.register_buffer("adj", adj, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)

    def propagate(self, adj: Tensor | None = None) -> Tensor:
        """Layer-averaged embeddings of all nodes, shape (n_users + n_items, d)."""
        adj = self.adj if adj is None else adj
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)
        out = x
        for _ in range(self.num_layers):
            x = propagate(adj, x, adj_t=adj)  # symmetric: the backward reuses adj
            out = out + x
        return out / (self.num_layers + 1)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        out = self.propagate()
        return out[: self.n_users], out[self.n_users :]

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        pos, neg = self.pairwise_scores(users, pos_items, neg_items)
        rows = (self.user_embedding(users), self.item_embedding(pos_items), self.item_embedding(neg_items))
        reg = norm_penalty(*rows) / users.shape[0] if self.reg_form == "norm" else l2_penalty(*rows)
        return bpr_loss(pos, neg) + self.reg_weight * reg
