r"""DIN: Deep Interest Network (Zhou et al. 2018, "Deep interest network for
click-through rate prediction"; baseline of GMMF Table 2 and the protocol of both
papers).

The history is pooled with a local activation unit: each behaviour :math:`v_i` gets a
weight from an MLP of the behaviour, the candidate :math:`v_c`, their difference and
their product (no softmax: DIN keeps the intensity of the interest),

.. math::
    a_i = \mathrm{MLP}_a([v_i;\ v_c;\ v_i - v_c;\ v_i \odot v_c]), \qquad
    h_u = \sum_{i \in H_u} a_i v_i, \qquad
    \hat y = \sigma\big(\mathrm{MLP}([p_u;\ h_u;\ v_c])\big),

with activation-unit hidden sizes [80, 40] (DIN's) and prediction MLP [128, 64]. Item
vectors concatenate ID, side and projected content as in
:class:`~graphrec.models.ctr.base.ConcatItemEncoder`. (DIN's Dice activation and
mini-batch-aware regulariser are replaced by ReLU and early stopping.)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, ConcatItemEncoder, MLP, UserEncoder

__all__ = ["DIN", "ActivationUnit"]


class ActivationUnit(MLP):
    """DIN's local activation unit: a weight per (behaviour, candidate) pair."""

    def __init__(self, dim: int, hidden: Sequence[int] = (80, 40)) -> None:
        super().__init__(4 * dim, hidden, 1)

    def weights(self, hist: Tensor, cand: Tensor, mask: Tensor) -> Tensor:
        """``(B, L)`` weights (0 at padding) for ``hist`` (B, L, d), ``cand`` (B, d)."""
        c = cand.unsqueeze(1).expand_as(hist)
        a = super().forward(torch.cat([hist, c, hist - c, hist * c], -1)).squeeze(-1)
        return a * mask.to(a.dtype)


class DIN(CTRModel):
    """Candidate attention over the behaviour history.

    Args:
        schema: data sizes, content features and side-field codes.
        id_dim, side_dim, modality_dim: item vector blocks (32 / 16 / 32).
        user_dim, user_side_dim: user ID and side embedding sizes.
        attention_hidden: activation unit hidden sizes.
        hidden: prediction MLP hidden sizes.
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
        attention_hidden: Sequence[int] = (80, 40),
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
        self.attention = ActivationUnit(d, attention_hidden)
        self.head = MLP(self.user_enc.out_dim + 2 * d, hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.item_enc.reset_parameters()
        self.user_enc.reset_parameters()
        self.attention.reset_parameters()
        self.head.reset_parameters()

    def forward(self, batch: CTRBatch) -> Tensor:
        cand, hist = self.item_enc.encode(batch)  # the batch's items only
        return self._score(batch, cand, hist)

    def _score(self, batch: CTRBatch, cand: Tensor, hist: Tensor) -> Tensor:
        """Logits from the candidate ``(B, d)`` and history ``(B, L, d)`` item vectors."""
        a = self.attention.weights(hist, cand, batch.mask)
        pooled = (a.unsqueeze(-1) * hist).sum(1)
        x = torch.cat([self.user_enc(batch.users), pooled, cand], -1)
        return self.head(x).squeeze(-1)

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.item_enc.ids)
