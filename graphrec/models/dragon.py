r"""DRAGON: "Enhancing Dyadic Relations with Homogeneous Graphs for Multimodal
Recommendation" (Zhou, Zhou, Shen; ECAI 2023, arXiv 2301.12097).

DRAGON learns DUAL representations of users and items: one from a heterogeneous
(user-item) graph per modality, one from homogeneous graphs (item-item and user-user)
propagating the first.

Heterogeneous graphs (one per modality m). Users have a learned preference embedding
:math:`P_m` (n_users x d); items enter through their raw features, projected to d by a
two-layer perceptron :math:`f_m(x) = W_2\,\mathrm{LeakyReLU}(W_1 x + b_1) + b_2`
(hidden width 4d, as the reference code). Every node's layer-0 vector is L2-normalised,
and L rounds of the normalised bipartite propagation :math:`\hat A` (``adjacency``: the
symmetric :math:`D^{-1/2} A D^{-1/2}` of :math:`A = [[0, R], [R^T, 0]]` for
``aggregation="add"``; :math:`D^{-1} A` for ``"mean"``) are SUMMED (the paper's readout;
default L = 2):

.. math::
    x^{(0)}_m = \mathrm{normalize}\big([P_m;\ f_m(X_m)]\big), \qquad
    x^{(l+1)}_m = \hat A x^{(l)}_m, \qquad
    \tilde x_m = \sum_{l=0}^{L} x^{(l)}_m .

Attentive concatenation. Items concatenate their modality representations; users
concatenate them scaled by learned per-user, per-modality weights :math:`w_{u,m}`
(initialised by a softmax over the modalities of random normal draws, then trained
freely), so both live in :math:`\mathbb R^{Md}`:

.. math::
    e_u = \big\Vert_m\, w_{u,m}\, \tilde x_{m,u}, \qquad e_i = \big\Vert_m\, \tilde x_{m,i}.

Homogeneous graphs (both FROZEN, built by
:func:`graphrec.train.builders.dragon.build_dragon` from the training data and the raw
features, never here):

* item-item ``item_graph`` :math:`S`: FREEDOM's merged modality kNN graph,
  :math:`S = \sum_m \alpha_m D_m^{-1/2} S_m D_m^{-1/2}` over binary top-k cosine graphs
  (k = 10, :math:`\alpha` = 0.1 image / 0.9 text);
* user-user ``user_graph`` :math:`U`: each user's ``user_k`` (40) users sharing the most
  TRAINING items (:func:`graphrec.graphs.user_cooccurrence_graph`), weighted by a
  softmax of the shared-item counts :math:`c_{uv}` over those neighbours:

.. math::
    U_{uv} = \frac{\exp c_{uv}}{\sum_{v' \in \mathcal N_k(u)} \exp c_{uv'}}
    \quad (v \in \mathcal N_k(u)), \qquad U_{uv} = 0 \text{ otherwise}.

Dual representations and score (``item_layers`` = ``user_layers`` = 1 by default):

.. math::
    \hat e_u = e_u + U^{L_u} e_u, \qquad \hat e_i = e_i + S^{L_i} e_i, \qquad
    \hat y_{ui} = \hat e_u^\top \hat e_i .

Loss: BPR plus λ (``reg_weight``) times the mean square of the batch users' preference
embeddings (each modality) and of all attention weights (as the reference code):

.. math::
    \mathcal L = -\frac1B \sum \ln\sigma(\hat y_{ui^+} - \hat y_{ui^-})
      + λ \Big( \sum_m \overline{P_{m,u}^2} + \overline{w^2} \Big).

The feature tables are constant (the perceptrons are trained). Everything is a sparse
product or a dense row operation: no n x n dense matrix; CPU and CUDA run the same code.

Shapes: ``adjacency`` (n_users + n_items) square, torch sparse; ``item_graph``
(n_items square) and ``user_graph`` (n_users square), torch sparse; ``features[m]``
(n_items x d_m).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import FeatureTables, Recommender
from graphrec.nn import SparseOperator, bpr_loss

__all__ = ["DRAGON"]

#: the reference's perceptron widens to 4 d before projecting to d
HIDDEN_FACTOR = 4


class DRAGON(FeatureTables, Recommender):
    """DRAGON: per-modality user-item graphs over projected features, attentive
    concatenation, and frozen item-item and user-user graphs for dual representations.

    Args:
        n_users: number of users.
        n_items: number of items.
        adjacency: the normalised bipartite graph :math:`\\hat A` ((n_users + n_items)
            square, torch sparse; module doc).
        item_graph: the frozen item-item graph S (n_items square, torch sparse).
        user_graph: the frozen user-user aggregation U (n_users square, torch sparse;
            rows are softmax weights, an empty row for a user who shares no item).
        features: ``{modality: raw item features (n_items x d_m)}``, one or more.
        embedding_dim: d, per modality (the final representations have M d columns).
        num_layers: L, rounds over the user-item graph (reference: 2).
        item_layers: rounds over S (MMRec n_mm_layers: 1).
        user_layers: rounds over U (reference: 1).
        reg_weight: λ (MMRec reg_weight).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adjacency: Tensor,
        item_graph: Tensor,
        user_graph: Tensor,
        features: Mapping[str, Tensor],
        *,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        user_layers: int = 1,
        reg_weight: float = 1e-3,
        graph_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        features = dict(features or {})
        if not features:
            raise ConfigError("DRAGON needs item features (at least one modality): prepare the data with --feature")
        if embedding_dim < 1:
            raise ConfigError(f"embedding_dim must be at least 1, got {embedding_dim}")
        if num_layers < 0:
            raise ConfigError(f"num_layers must be >= 0, got {num_layers}")
        if item_layers < 0 or user_layers < 0:
            raise ConfigError(f"item_layers and user_layers must be >= 0, got {item_layers} and {user_layers}")
        if not reg_weight >= 0:
            raise ConfigError(f"reg_weight must be >= 0, got {reg_weight}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.user_layers = user_layers
        self.reg_weight = float(reg_weight)

        self.adj_op = SparseOperator(adjacency, "adjacency", n_users + n_items)
        self.item_op = SparseOperator(item_graph, "item_graph", n_items)
        # the fixed modality weights item_graph was merged with (recorded, not applied here)
        self.graph_weights = {str(m): float(w) for m, w in (graph_weights or {}).items()}
        self.user_op = SparseOperator(user_graph, "user_graph", n_users)
        self.modalities: tuple[str, ...] = tuple(features)
        dims = self._register_features(features, self.modalities, n_items, fine_tune=False)
        hidden = HIDDEN_FACTOR * embedding_dim
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(dims[m], hidden), nn.LeakyReLU(), nn.Linear(hidden, embedding_dim))
                for m in self.modalities
            }
        )
        self.preferences = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(n_users, embedding_dim)) for m in self.modalities}
        )
        self.modality_weights = nn.Parameter(torch.empty(n_users, len(self.modalities)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modalities:
            for layer in self.projections[m]:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
            nn.init.xavier_normal_(self.preferences[m])
        with torch.no_grad():
            # softmax over the modalities of xavier-normal draws, trained freely afterwards
            draw = nn.init.xavier_normal_(torch.empty(self.n_users, len(self.modalities), 1)).squeeze(-1)
            self.modality_weights.copy_(torch.softmax(draw, dim=1))

    # ------------------------------------------------------------ the graphs
    def item_graph(self) -> Tensor:
        """The frozen item-item graph S (torch sparse CSR, on the model's device)."""
        return self.item_op.matrix().detach()

    def user_graph(self) -> Tensor:
        """The frozen user-user aggregation U (torch sparse CSR, on the model's device)."""
        return self.user_op.matrix().detach()

    def item_graphs(self) -> dict[str, Tensor]:
        """``{"item": S}``."""
        return {"item": self.item_graph()}

    def user_graphs(self) -> dict[str, Tensor]:
        """``{"user": U}``."""
        return {"user": self.user_graph()}

    def graph_merges(self) -> dict[str, dict[str, Any]]:
        """``{"item": {"fixed_weights": ...}}``: the weights S was merged with, when given."""
        return {"item": {"fixed_weights": dict(self.graph_weights)}} if self.graph_weights else {}

    def modality_representation(self, m: str) -> Tensor:
        r""":math:`\tilde x_m` ((n_users + n_items) x d): the summed layers of the
        modality's user-item graph."""
        x = self._features(m)
        x = F.normalize(torch.cat([self.preferences[m], self.projections[m](x)], dim=0), p=2, dim=1)
        total = x
        for _ in range(self.num_layers):
            x = self.adj_op(x)
            total = total + x
        return total

    def heterogeneous(self) -> tuple[Tensor, Tensor]:
        """:math:`(e_u, e_i)`: the attentively concatenated representations of the
        user-item graphs, before the homogeneous graphs (n_users x M d, n_items x M d)."""
        users, items = [], []
        for j, m in enumerate(self.modalities):
            rep = self.modality_representation(m)
            users.append(self.modality_weights[:, j : j + 1] * rep[: self.n_users])
            items.append(rep[self.n_users :])
        return torch.cat(users, dim=1), torch.cat(items, dim=1)

    def user_aggregate(self, e_u: Tensor) -> Tensor:
        r""":math:`U^{L_u} e_u`: each user's co-occurring users' representations,
        softmax-weighted (one sparse product per layer)."""
        h = e_u
        for _ in range(self.user_layers):
            h = self.user_op(h)
        return h

    def item_aggregate(self, e_i: Tensor) -> Tensor:
        r""":math:`S^{L_i} e_i` over the frozen item-item graph."""
        h = e_i
        for _ in range(self.item_layers):
            h = self.item_op(h)
        return h

    # ------------------------------------------------------------ representations, loss
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """The dual representations :math:`(\\hat e_u, \\hat e_i)` (n x M d)."""
        e_u, e_i = self.heterogeneous()
        return e_u + self.user_aggregate(e_u), e_i + self.item_aggregate(e_i)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        pos, neg = self.pairwise_scores(users, pos_items, neg_items)
        reg = self.modality_weights.pow(2).mean()
        for m in self.modalities:
            reg = reg + self.preferences[m].index_select(0, users).pow(2).mean()
        return bpr_loss(pos, neg) + self.reg_weight * reg

    def log_values(self) -> dict[str, float]:
        """Mean attention weight of each modality over users."""
        with torch.no_grad():
            means = self.modality_weights.mean(dim=0).tolist()
        return {f"modality_weight_{m}": float(w) for m, w in zip(self.modalities, means)}

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, "
            f"dim={self.embedding_dim}x{len(self.modalities)}, layers={self.num_layers}, "
            f"item_layers={self.item_layers}, user_layers={self.user_layers}, reg_weight={self.reg_weight}"
        )
