r"""FM: factorization machine (Rendle 2010, "Factorization Machines"; baseline of GMMF
Table 2 and MARN Table 2).

Fields as for :mod:`~graphrec.models.ctr.lr` (user, candidate item, categorical side
fields; no history, no content). Every field :math:`f` contributes a weight
:math:`w_f` and a latent vector :math:`v_f \in \mathbb{R}^k`:

.. math::
    \hat y = \sigma\Big(b + \sum_f w_f + \sum_{f < f'} \langle v_f, v_{f'} \rangle\Big),
    \qquad \sum_{f<f'} \langle v_f, v_{f'}\rangle
      = \tfrac12 \big(\|\textstyle\sum_f v_f\|^2 - \sum_f \|v_f\|^2\big).

Graph enrichment applies to the item's latent vector :math:`v_{item}` (its ID embedding).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, ItemIDEncoder, SideEncoder

__all__ = ["FM", "fm_interaction"]


def fm_interaction(fields: Tensor) -> Tensor:
    """Second-order FM term of ``fields`` (B, F, k): sum over pairs of inner products."""
    s = fields.sum(1)
    return 0.5 * (s.pow(2).sum(-1) - fields.pow(2).sum((1, 2)))


class FM(CTRModel):
    """Factorization machine over user, item and side-field IDs.

    Args:
        schema: data sizes and side-field codes.
        dim: latent dimension k (default 32, the papers' item ID size).
        item_graphs, graph_layers: graph enrichment of the item latent vectors.
    """

    def __init__(
        self, schema: CTRSchema, dim: int = 32, item_graphs: Sequence[Tensor] | None = None, graph_layers: int = 2
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        self.user_vec = nn.Embedding(schema.n_users, dim)
        self.item_vec = ItemIDEncoder(schema.n_items, dim, item_graphs, graph_layers)
        self.user_side = SideEncoder(schema.user_side, schema.vocab_sizes, dim)
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, dim)
        self.user_weight = nn.Embedding(schema.n_users, 1)
        self.item_weight = nn.Embedding(schema.n_items, 1)
        self.user_side_w = SideEncoder(schema.user_side, schema.vocab_sizes, 1)
        self.item_side_w = SideEncoder(schema.item_side, schema.vocab_sizes, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_vec.weight, std=0.1)
        self.item_vec.reset_parameters()
        for m in (self.user_side, self.item_side, self.user_side_w, self.item_side_w):
            m.reset_parameters()
        nn.init.zeros_(self.user_weight.weight)
        nn.init.zeros_(self.item_weight.weight)
        nn.init.zeros_(self.bias)

    def field_vectors(self, batch: CTRBatch) -> Tensor:
        """``(B, F, k)``: the latent vectors of the sample's fields."""
        vecs = [self.user_vec(batch.users), self.item_vec.rows(batch.items)]
        vecs += self.user_side.field_rows(batch.users)
        vecs += self.item_side.field_rows(batch.items)
        return torch.stack(vecs, 1)

    def first_order(self, batch: CTRBatch) -> Tensor:
        out = self.bias + self.user_weight(batch.users).squeeze(-1) + self.item_weight(batch.items).squeeze(-1)
        us, it = self.user_side_w.rows(batch.users), self.item_side_w.rows(batch.items)
        if us is not None:
            out = out + us.sum(-1)
        if it is not None:
            out = out + it.sum(-1)
        return out

    def forward(self, batch: CTRBatch) -> Tensor:
        return self.first_order(batch) + fm_interaction(self.field_vectors(batch))

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.item_vec)
