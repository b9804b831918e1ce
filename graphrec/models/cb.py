r"""CB: the content-only item-kNN recommender, the "content alone" baseline of
multimodal recommendation (item-based kNN as in Sarwar, Karypis, Konstan, Riedl; WWW
2001, with content cosines in place of rating similarities).

Every item j keeps its k most similar items by the cosine of its (early-fused) content
features, :math:`S_{ji} = \cos(x_j, x_i)` for :math:`i \in \mathrm{topk}(j)`, 0
otherwise (the graph of :func:`graphrec.graphs.knn_graph`). A user's score for an item
sums the similarities from the items in the user's training history:

.. math::
    \hat y_{ui} = \sum_{j \in R_u} S_{ji}, \qquad \hat y_{u\cdot} = R_u S .

Nothing is learned (the fit loop skips training and validates once); an item never
interacted with in training still gets a score from its content, which makes CB the
reference point for cold-start items. Scores are computed per batch of users as
:math:`(S^\top R_B^\top)^\top`, one sparse product, never an n x n matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.errors import ConfigError
from graphrec.models.base import Recommender, Scorer

__all__ = ["ContentKNN"]


class ContentKNN(Recommender):
    """Item-kNN over a content similarity graph.

    Args:
        n_users: number of users.
        n_items: number of items.
        history: training interactions, (n_users x n_items) torch sparse CSR (ones).
        similarity: the content kNN graph S (n_items x n_items) torch sparse, row j
            holding j's neighbours and their cosines.
    """

    def __init__(self, n_users: int, n_items: int, history: Tensor, similarity: Tensor) -> None:
        super().__init__()
        if tuple(history.shape) != (n_users, n_items):
            raise ConfigError(f"history has shape {tuple(history.shape)}, expected {(n_users, n_items)}")
        if tuple(similarity.shape) != (n_items, n_items):
            raise ConfigError(f"similarity has shape {tuple(similarity.shape)}, expected {(n_items, n_items)}")
        self.n_users = n_users
        self.n_items = n_items
        h = history.to_sparse_csr()
        self.register_buffer("history_crow", h.crow_indices().long(), persistent=False)
        self.register_buffer("history_cols", h.col_indices().long(), persistent=False)
        self.register_buffer("similarity_t", similarity.to_sparse_coo().t().coalesce().to_sparse_csr(), persistent=False)

    def reset_parameters(self) -> None:
        """Nothing to reset: the model has no parameters."""

    def history_rows(self, users: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Dense (B x n_items) 0/1 rows of the users' training histories."""
        crow, cols = self.history_crow, self.history_cols
        users = users.to(crow.device).long()
        start, count = crow[users], crow[users + 1] - crow[users]
        owner = torch.repeat_interleave(torch.arange(users.numel(), device=crow.device), count)
        offset = torch.arange(int(count.sum()), device=crow.device) - torch.repeat_interleave(
            torch.cumsum(count, 0) - count, count
        )
        items = cols[torch.repeat_interleave(start, count) + offset]
        rows = torch.zeros(users.numel(), self.n_items, device=crow.device, dtype=dtype)
        rows[owner, items] = 1
        return rows

    def user_scores(self, users: Tensor) -> Tensor:
        """R_B S as (B x n_items)."""
        return torch.sparse.mm(self.similarity_t, self.history_rows(users).t()).t()

    def pair_scores(self, users: Tensor, items: Tensor) -> Tensor:
        r"""Scores of (user, item) pairs, :math:`\sum_{j \in R_u} S_{ji}`, without forming
        the rows of S: each item's in-neighbours (a row of :math:`S^\top`) are looked up
        in a boolean mask of the batch's distinct users' histories (distinct users x
        n_items bytes). O(P k) for P pairs with k in-neighbours each."""
        st = self.similarity_t
        crow, col, val = st.crow_indices(), st.col_indices(), st.values()
        users, items = users.long(), items.long()
        start, count = crow[items], crow[items + 1] - crow[items]
        owner = torch.repeat_interleave(torch.arange(items.numel(), device=items.device), count)
        offset = torch.arange(int(count.sum()), device=items.device) - torch.repeat_interleave(
            torch.cumsum(count, 0) - count, count
        )
        entry = torch.repeat_interleave(start, count) + offset
        distinct, row = torch.unique(users, return_inverse=True)
        hit = self.history_rows(distinct, dtype=torch.bool)[row[owner], col[entry]].to(val.dtype)
        return torch.zeros(items.numel(), dtype=val.dtype, device=items.device).index_add(0, owner, val[entry] * hit)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("ContentKNN scores are R S, not inner products of embeddings: use scorer()")

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.user_scores(users).gather(1, items.view(-1, 1).to(self.history_crow.device)).view(-1)

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        s = self.user_scores(users)
        return s.gather(1, pos_items.view(-1, 1)).view(-1), s.gather(1, neg_items.view(-1, 1)).view(-1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        raise NotImplementedError("ContentKNN has nothing to train")

    @torch.no_grad()
    def scorer(self) -> Scorer:
        return self.user_scores
