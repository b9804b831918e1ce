r"""MF-BPR: matrix factorisation trained with Bayesian Personalized Ranking (Rendle,
Freudenthaler, Gantner, Schmidt-Thieme; UAI 2009), the collaborative baseline without a
graph.

.. math::
    \hat y_{ui} = e_u^\top e_i, \qquad
    \mathcal{L} = -\frac{1}{B}\sum \ln \sigma(\hat y_{ui^+} - \hat y_{ui^-})
      + \frac{\lambda}{2B} \sum \left(\|e_u\|^2 + \|e_{i^+}\|^2 + \|e_{i^-}\|^2\right)

with free ID embeddings :math:`e_u, e_i \in \mathbb{R}^d` (Xavier-initialised, as the
LightGCN embeddings, so the two differ only by the propagation).
"""

from __future__ import annotations

from torch import Tensor, nn

from graphrec.models.base import Recommender
from graphrec.nn import bpr_loss, l2_penalty

__all__ = ["MF"]


class MF(Recommender):
    """Matrix factorisation with BPR.

    Args:
        n_users: number of users.
        n_items: number of items.
        embedding_dim: size d of the embeddings.
        reg_weight: L2 coefficient on the batch's embeddings.
    """

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, reg_weight: float = 1e-4) -> None:
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.reg_weight = reg_weight
        self.user_embedding = nn.Embedding(n_users, embedding_dim)
        self.item_embedding = nn.Embedding(n_items, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        u = self.user_embedding(users)  # only the batch's rows: no full-table product
        return (u * self.item_embedding(pos_items)).sum(-1), (u * self.item_embedding(neg_items)).sum(-1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        pos, neg = self.pairwise_scores(users, pos_items, neg_items)
        reg = l2_penalty(self.user_embedding(users), self.item_embedding(pos_items), self.item_embedding(neg_items))
        return bpr_loss(pos, neg) + self.reg_weight * reg
