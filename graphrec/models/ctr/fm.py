r"""FM: factorization machine (Rendle 2010, "Factorization Machines"; baseline of GMMF
Table 2 and MARN Table 2).

Fields as for :mod:`~graphrec.models.ctr.lr`: by default, as in both papers, the
candidate item's ID fields only (its ID and categorical side fields; no user, no
history, no content). Every field :math:`f` contributes a weight :math:`w_f` and a
latent vector :math:`v_f \in \mathbb{R}^k`:

.. math::
    \hat y = \sigma\Big(b + \sum_f w_f + \sum_{f < f'} \langle v_f, v_{f'} \rangle\Big),
    \qquad \sum_{f<f'} \langle v_f, v_{f'}\rangle
      = \tfrac12 \big(\|\textstyle\sum_f v_f\|^2 - \sum_f \|v_f\|^2\big).

On a dataset whose items have no side field (amazon-scientific) the item ID is the only
field: there is no pair, the second-order term is 0 and FM is LR (a weight per item).
``user_fields=True`` (not in either paper) adds the user ID and the user's side fields
as fields, and with them the user x item factorisation :math:`\langle v_{user}, v_{item}\rangle`.

Graph enrichment applies to the item's latent vector :math:`v_{item}` (its ID
embedding), which enters the prediction only through its pairs: with the item ID the
only field, :func:`graphrec.train.ctr.build_ctr_model` refuses item graphs (they would
be recorded without effect).
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
    """Factorization machine over the candidate item's ID fields (and, as an option, the user's).

    Args:
        schema: data sizes and side-field codes.
        dim: latent dimension k (default 32, the papers' item ID size).
        item_graphs, graph_layers: graph enrichment of the item latent vectors.
        user_fields: also use the user ID and the user's side fields as fields (default
            False: the papers' item fields only).
    """

    def __init__(
        self, schema: CTRSchema, dim: int = 32, item_graphs: Sequence[Tensor] | None = None, graph_layers: int = 2,
        user_fields: bool = False,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        self.user_fields = bool(user_fields)
        self.item_vec = ItemIDEncoder(schema.n_items, dim, item_graphs, graph_layers)
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, dim)
        self.item_weight = nn.Embedding(schema.n_items, 1)
        self.item_side_w = SideEncoder(schema.item_side, schema.vocab_sizes, 1)
        if self.user_fields:
            self.user_vec = nn.Embedding(schema.n_users, dim)
            self.user_side = SideEncoder(schema.user_side, schema.vocab_sizes, dim)
            self.user_weight = nn.Embedding(schema.n_users, 1)
            self.user_side_w = SideEncoder(schema.user_side, schema.vocab_sizes, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # (this order draws the random numbers of the model before user_fields was an option)
        if self.user_fields:
            nn.init.normal_(self.user_vec.weight, std=0.1)
        self.item_vec.reset_parameters()
        user = (self.user_side, self.user_side_w) if self.user_fields else (None, None)
        for m in (user[0], self.item_side, user[1], self.item_side_w):
            if m is not None:
                m.reset_parameters()
        if self.user_fields:
            nn.init.zeros_(self.user_weight.weight)
        nn.init.zeros_(self.item_weight.weight)
        nn.init.zeros_(self.bias)

    @property
    def n_fields(self) -> int:
        """F: the item ID, the item side fields and (``user_fields``) the user ID and side fields."""
        user = 1 + len(self.user_side.names) if self.user_fields else 0
        return 1 + len(self.item_side.names) + user

    def field_vectors(self, batch: CTRBatch) -> Tensor:
        """``(B, F, k)``: the latent vectors of the sample's fields."""
        vecs = [self.user_vec(batch.users)] if self.user_fields else []
        vecs.append(self.item_vec.rows(batch.items))
        if self.user_fields:
            vecs += self.user_side.field_rows(batch.users)
        vecs += self.item_side.field_rows(batch.items)
        return torch.stack(vecs, 1)

    def first_order(self, batch: CTRBatch) -> Tensor:
        out = self.bias + self.item_weight(batch.items).squeeze(-1)
        if self.user_fields:
            out = out + self.user_weight(batch.users).squeeze(-1)
            us = self.user_side_w.rows(batch.users)
            if us is not None:
                out = out + us.sum(-1)
        it = self.item_side_w.rows(batch.items)
        if it is not None:
            out = out + it.sum(-1)
        return out

    def forward(self, batch: CTRBatch) -> Tensor:
        return self.first_order(batch) + fm_interaction(self.field_vectors(batch))

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.item_vec)
