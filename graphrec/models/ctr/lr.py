r"""LR: logistic regression on one-hot ID fields (McMahan et al. 2013, "Ad click
prediction: a view from the trenches"; the first baseline of GMMF Table 2 and MARN
Table 2).

As in both papers, LR sees the candidate item's ID fields only: GMMF section 4.2, "LR
and FM use recommended item ID information only"; MARN section 4.2, "the inputs of LR
and FM contains the IDs feature (item ID, shop ID, brand ID and category ID)", all of
them fields of the item. So by default the candidate item and its categorical side
fields (genres; shop, brand, category where a dataset has them) get one weight per
value:

.. math::
    \hat y = \sigma\Big(b + w^{item}_c + \sum_{g} \frac{1}{|c_g|}\sum_{v \in c_g} w^{g}_{v}\Big),

where multi-valued item fields (genres) average their values' weights. Neither the user
nor the behaviour history is used: the model scores an item the same for every user.
``user_fields=True`` (not in either paper) adds the user ID and the user's side fields,
:math:`+\, w^{user}_u + \sum_f w^{f}_{u_f}`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, SideEncoder

__all__ = ["LR"]


class LR(CTRModel):
    """Logistic regression over the candidate item's ID fields (and, as an option, the user's).

    Args:
        schema: data sizes and side-field codes (:class:`CTRSchema`).
        user_fields: also weigh the user ID and the user's side fields (default False:
            the papers' item fields only).
    """

    def __init__(self, schema: CTRSchema, user_fields: bool = False) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        self.user_fields = bool(user_fields)
        self.item_weight = nn.Embedding(schema.n_items, 1)
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, 1)
        if self.user_fields:
            self.user_weight = nn.Embedding(schema.n_users, 1)
            self.user_side = SideEncoder(schema.user_side, schema.vocab_sizes, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.user_fields:
            nn.init.zeros_(self.user_weight.weight)
        nn.init.normal_(self.item_weight.weight, std=0.01)
        if self.user_fields:
            self.user_side.reset_parameters()
        self.item_side.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, batch: CTRBatch) -> Tensor:
        out = self.bias + self.item_weight(batch.items).squeeze(-1)
        if self.user_fields:
            out = out + self.user_weight(batch.users).squeeze(-1)
            us = self.user_side.rows(batch.users)
            if us is not None:
                out = out + us.sum(-1)
        it = self.item_side.rows(batch.items)
        if it is not None:
            out = out + it.sum(-1)
        return out
