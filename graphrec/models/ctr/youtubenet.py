r"""YouTubeNet (Covington et al. 2016, "Deep neural networks for YouTube
recommendations"), as the CTR papers use it: the user is the average of the item
vectors of the behaviour history (MARN section 4.2: "gets user representations by
simply averaging the item embeddings in the user behavior sequence"), and an MLP
predicts the click from the user and candidate vectors.

Item vectors concatenate ID, side fields and projected content
(:class:`~graphrec.models.ctr.base.ConcatItemEncoder`):

.. math::
    h_u = \frac{1}{|H_u|}\sum_{i \in H_u} v_i, \qquad
    \hat y = \sigma\big(\mathrm{MLP}([p_u;\ h_u;\ v_c])\big),

with :math:`p_u` the user ID and side embeddings and MLP hidden sizes [128, 64].
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from graphrec.models.ctr.base import (
    CTRBatch,
    CTRModel,
    CTRSchema,
    ConcatItemEncoder,
    MLP,
    UserEncoder,
    masked_mean,
)

__all__ = ["YouTubeNet"]


class YouTubeNet(CTRModel):
    """Mean-pooled history + MLP.

    Args:
        schema: data sizes, content features and side-field codes.
        id_dim, side_dim, modality_dim: item vector blocks (32 / 16 / 32).
        user_dim, user_side_dim: user ID and side embedding sizes (32 / 8).
        hidden: MLP hidden sizes.
        modalities: content modalities used (None: all).
        item_graphs, graph_layers: graph enrichment of the item ID embedding.
    """

    def __init__(
        self,
        schema: CTRSchema,
        id_dim: int = 32,
        side_dim: int = 16,
        modality_dim: int = 32,
        user_dim: int = 32,
        user_side_dim: int = 8,
        hidden: Sequence[int] = (128, 64),
        modalities: Sequence[str] | None = None,
        item_graphs: Sequence[Tensor] | None = None,
        graph_layers: int = 2,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        self.item_enc = ConcatItemEncoder(schema, id_dim, side_dim, modality_dim, modalities, item_graphs, graph_layers)
        self.user_enc = UserEncoder(schema, user_dim, user_side_dim)
        d = self.item_enc.out_dim
        self.head = MLP(self.user_enc.out_dim + 2 * d, hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.item_enc.reset_parameters()
        self.user_enc.reset_parameters()
        self.head.reset_parameters()

    def forward(self, batch: CTRBatch) -> Tensor:
        cand, hist = self.item_enc.encode(batch)  # the batch's items only
        return self._score(batch, cand, hist)

    def _score(self, batch: CTRBatch, cand: Tensor, hist: Tensor) -> Tensor:
        """Logits from the candidate ``(B, d)`` and history ``(B, L, d)`` item vectors."""
        pooled = masked_mean(hist, batch.mask)
        x = torch.cat([self.user_enc(batch.users), pooled, cand], -1)
        return self.head(x).squeeze(-1)

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.item_enc.ids)
