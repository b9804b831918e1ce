r"""DeepFM (Guo et al. 2017, "DeepFM: a factorization-machine based neural network for
CTR prediction"; baseline of GMMF Table 2).

An FM component and a deep component share the field embeddings. Fields: user ID,
item ID, categorical side fields and, as GMMF's setting asks ("DeepFM ... concatenate ID,
visual, and text features"), one dense field per content modality, the linear
projection :math:`W_m x_{m,c}` of the candidate's normalised features to the field size
:math:`k`. DeepFM "does not utilize historical behavior sequences" (GMMF section 4.2).

.. math::
    \hat y = \sigma\big(y_{FM} + \mathrm{MLP}([v_1; \dots; v_F])\big), \qquad
    y_{FM} = b + \sum_f w_f + \sum_{f<f'} \langle v_f, v_{f'}\rangle,

with first-order weights on the ID fields only, and an MLP of hidden sizes ``hidden``
(default [128, 64], the prediction layers MARN fixes for all models on Amazon).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, MLP, normalized_features
from graphrec.models.ctr.fm import FM, fm_interaction

__all__ = ["DeepFM"]


class DeepFM(CTRModel):
    """FM + MLP over shared field embeddings, content modalities as dense fields.

    Args:
        schema: data sizes, content features and side-field codes.
        dim: field embedding size k.
        hidden: MLP hidden sizes.
        modalities: content modalities used (None: all in the schema).
        item_graphs, graph_layers: graph enrichment of the item ID embedding.
    """

    def __init__(
        self,
        schema: CTRSchema,
        dim: int = 32,
        hidden: Sequence[int] = (128, 64),
        modalities: Sequence[str] | None = None,
        item_graphs: Sequence[Tensor] | None = None,
        graph_layers: int = 2,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        # shares its field embeddings; DeepFM keeps the user fields (GMMF: "ID" features, not item ID only)
        self.fm = FM(schema, dim, item_graphs, graph_layers, user_fields=True)
        mods = schema.chosen_modalities(modalities)
        self.modalities = mods
        self.proj = nn.ModuleDict()
        for m in mods:
            self.register_buffer(f"feat_{m}", normalized_features(schema.item_features[m]), persistent=False)
            self.proj[m] = nn.Linear(schema.item_features[m].shape[1], dim)
        n_fields = 2 + len(schema.user_side) + len(schema.item_side) + len(mods)
        self.deep = MLP(n_fields * dim, hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.fm.reset_parameters()
        for p in self.proj.values():
            p.reset_parameters()
        self.deep.reset_parameters()

    def forward(self, batch: CTRBatch) -> Tensor:
        fields = self.fm.field_vectors(batch)
        dense = [self.proj[m](getattr(self, f"feat_{m}")[batch.items]) for m in self.modalities]
        if dense:
            fields = torch.cat([fields, torch.stack(dense, 1)], 1)
        deep = self.deep(fields.flatten(1)).squeeze(-1)
        return self.fm.first_order(batch) + fm_interaction(fields) + deep

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.fm.item_vec)
