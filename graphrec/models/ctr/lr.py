r"""LR: logistic regression on one-hot ID fields (McMahan et al. 2013, "Ad click
prediction: a view from the trenches"; the first baseline of GMMF Table 2 and MARN
Table 2).

As in both papers, LR sees the ID fields only (GMMF section 4.2: "LR and FM use
recommended item ID information only"; MARN: "the inputs of LR and FM contain the IDs
feature"): the user, the candidate item and the categorical side fields of both. With
one weight per value of every field,

.. math::
    \hat y = \sigma\Big(b + w^{user}_u + w^{item}_c + \sum_{f} w^{f}_{u_f}
        + \sum_{g} \frac{1}{|c_g|}\sum_{v \in c_g} w^{g}_{v}\Big),

where multi-valued item fields (genres) average their values' weights. The behaviour
history is not used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, SideEncoder

__all__ = ["LR"]


class LR(CTRModel):
    """Logistic regression over user, item and side-field IDs.

    Args:
        schema: data sizes and side-field codes (:class:`CTRSchema`).
    """

    def __init__(self, schema: CTRSchema) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        self.user_weight = nn.Embedding(schema.n_users, 1)
        self.item_weight = nn.Embedding(schema.n_items, 1)
        self.user_side = SideEncoder(schema.user_side, schema.vocab_sizes, 1)
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.user_weight.weight)
        nn.init.normal_(self.item_weight.weight, std=0.01)
        self.user_side.reset_parameters()
        self.item_side.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, batch: CTRBatch) -> Tensor:
        out = self.bias + self.user_weight(batch.users).squeeze(-1) + self.item_weight(batch.items).squeeze(-1)
        us = self.user_side.rows(batch.users)
        if us is not None:
            out = out + us.sum(-1)
        it = self.item_side.rows(batch.items)
        if it is not None:
            out = out + it.sum(-1)
        return out
