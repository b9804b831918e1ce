r"""FREEDOM: "A Tale of Two Graphs: Freezing and Denoising Graph Structures for
Multimodal Recommendation" (Zhou, Shen; ACM MM 2023, arXiv 2211.06924).

FREEDOM keeps LATTICE's two-branch shape (LightGCN over the user-item graph plus an item
branch over a modality item-item graph) but FREEZES the item graph (built once, before
training, from the raw features; nothing about it is learned) and DENOISES the user-item
graph by sampling a sparser copy of it every epoch.

Frozen item graph (built by :func:`graphrec.train.builders.freedom.build_freedom`, never
here). Per modality m with raw features :math:`X_m`, the top-k cosine neighbours of each
item (k = 10) form a BINARY graph, symmetrically normalised with its row sums
:math:`D_m` (each row has k entries, so this is :math:`S_m / k`), and the modalities
are merged with FIXED weights :math:`\alpha_m` (MMRec: 0.1 image, 0.9 text):

.. math::
    S_{m,ij} = \mathbb 1[j \in \mathrm{topk}_i \cos(x_{m,i}, x_{m,j})], \qquad
    \hat S_m = D_m^{-1/2} S_m D_m^{-1/2}, \qquad S = \sum_m \alpha_m \hat S_m .

Item branch: the item ID embeddings (LightGCN's layer-0 item embeddings) propagated
over S for :math:`L'` layers (default 1): :math:`h^{0} = E_i^{(0)}, h^{t} = S h^{t-1}`.

Denoised user-item graph. Before every training epoch (:meth:`FREEDOM.start_epoch`) a
fraction ``dropout`` (ρ, default 0.8) of the training edges is dropped by
degree-sensitive sampling: :math:`\mathrm{round}((1 - ρ)|E|)` edges are drawn without
replacement, each draw choosing edge (u, i) with probability proportional to
:math:`1/\sqrt{d_u d_i}` (degrees of the full graph), see
:func:`graphrec.graphs.prune.degree_sensitive_sample`; the kept graph is re-normalised
with ITS degrees, :math:`\hat A_ρ = D_ρ^{-1/2} A_ρ D_ρ^{-1/2}`. LightGCN propagates over
:math:`\hat A_ρ` in training and over the full :math:`\hat A` when scoring
(:meth:`FREEDOM.scoring_embeddings`, which :meth:`~graphrec.models.base.Recommender.scorer`
serves, always uses the full graph):

.. math::
    E^{(l+1)} = \hat A_ρ E^{(l)}, \quad E = \frac{1}{L+1}\sum_{l=0}^{L} E^{(l)}, \qquad
    e_u = E_u, \quad e_i = E_i + h^{L'}_i, \qquad \hat y_{ui} = e_u^\top e_i

(the item branch is ADDED as is, not L2-normalised as in LATTICE; as MMRec).

Loss: BPR on the final representations plus λ (``feature_weight``) times, per
modality, a BPR of the users' final embeddings against the items' PROJECTED raw
features :math:`f_m(x) = W_m x + b_m` (a linear layer to the embedding size):

.. math::
    \mathcal L = \mathrm{BPR}(e_u, e_{i^+}, e_{i^-})
      + λ \sum_m \mathrm{BPR}(e_u, f_m(x_{m,i^+}), f_m(x_{m,i^-})), \qquad
    \mathrm{BPR} = -\frac1B \sum \ln\sigma(e_u^\top a - e_u^\top b).

No L2 term (MMRec trains FREEDOM without weight decay). MMRec calls λ ``reg_weight``
and grid-searches it over [0.0, 1e-5, 1e-4, 1e-3]; its first point, 0.0, is our
default, and with λ = 0 the projections and feature tables are not created at all (they
would get no gradient). ``train_features`` fine-tunes the feature tables inside that
term, as MMRec does.

Reproducibility: the sampling generator of epoch t is seeded from (s, t), where s is
drawn from torch's global RNG in :meth:`FREEDOM.reset_parameters`; a model built after
``torch.manual_seed`` (the fit loop seeds before building) therefore prunes the same
edges in every run, and two copies built from the same seed prune identically on any
device (the uniforms are drawn on the CPU). Before the first :meth:`start_epoch`, a
model in training mode uses the full graph.

Shapes: ``interactions`` is the binary training matrix R (n_users x n_items, torch
sparse CSR or COO); ``item_graph`` the merged frozen graph S (n_items x n_items, torch
sparse, not symmetric: the kNN relation is directed); ``features[m]`` (n_items x d_m).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.graphs.prune import (
    degree_sensitive_sample,
    degree_sensitive_weights,
    edge_degrees,
    n_kept,
    normalized_bipartite_csr,
)
from graphrec.models.base import FeatureTables, ItemGraphRecommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import SparseOperator, bpr_loss

__all__ = ["FREEDOM"]

#: odd 64-bit constant (golden ratio) mixing the epoch into the sampling seed
_MIX = 0x9E3779B97F4A7C15


class FREEDOM(FeatureTables, ItemGraphRecommender):
    """FREEDOM: LightGCN over a degree-sensitively pruned user-item graph plus an item
    branch over a frozen, merged modality kNN graph.

    Args:
        n_users: number of users.
        n_items: number of items.
        interactions: the training matrix R (n_users x n_items), torch sparse; its
            pattern is used (values ignored).
        item_graph: the frozen merged item graph S (module doc), torch sparse.
        features: ``{modality: raw item features (n_items x d_m)}`` for the λ term;
            needed only when ``feature_weight > 0``.
        embedding_dim: d of the ID embeddings and of the feature projections (paper: 64).
        num_layers: LightGCN layers L (MMRec n_ui_layers: 2).
        item_layers: item-graph layers L' (MMRec n_mm_layers: 1).
        dropout: fraction ρ of the user-item edges dropped per epoch, in [0, 1)
            (MMRec grid [0.8, 0.9]); 0 trains on the full graph.
        feature_weight: λ of the users-vs-projected-features BPR terms (MMRec's
            ``reg_weight``, grid [0.0, 1e-5, 1e-4, 1e-3]).
        train_features: fine-tune the feature tables in the λ term (as MMRec).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        interactions: Tensor,
        item_graph: Tensor,
        features: Mapping[str, Tensor] | None = None,
        *,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        dropout: float = 0.8,
        feature_weight: float = 0.0,
        train_features: bool = True,
        graph_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if tuple(interactions.shape) != (n_users, n_items):
            raise ConfigError(f"interactions have shape {tuple(interactions.shape)}, expected {(n_users, n_items)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if item_layers < 1:
            raise ConfigError(f"item_layers must be at least 1, got {item_layers}")
        if feature_weight < 0:
            raise ConfigError(f"feature_weight must be >= 0, got {feature_weight}")
        features = dict(features or {})
        if feature_weight > 0 and not features:
            raise ConfigError("feature_weight > 0 needs item features for the projected-feature BPR terms")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.dropout = float(dropout)
        self.feature_weight = float(feature_weight)
        self.train_features = train_features
        self.reg_weight = 0.0  # no L2 term (ItemGraphRecommender's attribute)

        coo = interactions.detach().to_sparse_coo().coalesce()
        rows, cols = coo.indices()[0].to(torch.int64), coo.indices()[1].to(torch.int64)
        deg_u, deg_i = edge_degrees(rows, cols, n_users, n_items)
        # the graph is data, not a parameter: rebuilt from the dataset, never checkpointed
        self.register_buffer("edge_rows", rows, persistent=False)
        self.register_buffer("edge_cols", cols, persistent=False)
        self.register_buffer("edge_weights", degree_sensitive_weights(rows, cols, deg_u, deg_i), persistent=False)
        self.register_buffer("pruned_adj", None, persistent=False)
        self.n_edges = int(rows.numel())
        self.n_kept = n_kept(self.n_edges, self.dropout)
        full = normalized_bipartite_csr(rows, cols, n_users, n_items)
        self.lightgcn = LightGCN(
            n_users, n_items, full, embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=0.0
        )
        self.item_op = SparseOperator(item_graph, "item_graph", n_items)
        # the fixed modality weights item_graph was merged with (recorded, not applied here)
        self.graph_weights = {str(m): float(w) for m, w in (graph_weights or {}).items()}

        self.modalities: tuple[str, ...] = tuple(features) if feature_weight > 0 else ()
        dims = self._register_features(features, self.modalities, n_items, bool(self.modalities) and train_features)
        self.projections = nn.ModuleDict({m: nn.Linear(dims[m], embedding_dim) for m in self.modalities})
        self._prune_seed = 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()
        for lin in self.projections.values():
            lin.reset_parameters()
        self._reset_features()
        # the pruning stream: drawn from torch's global RNG, so seeding reproduces it
        self._prune_seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        self.pruned_adj = None

    # ------------------------------------------------------------ the user-item graph
    def epoch_generator(self, epoch: int) -> torch.Generator:
        """The CPU generator of epoch ``epoch``'s edge sampling (seeded from the model's
        pruning seed and the epoch)."""
        return torch.Generator().manual_seed((self._prune_seed + epoch * _MIX) % 2**63)

    def prune(self, generator: torch.Generator) -> Tensor:
        """Positions (into ``edge_rows`` / ``edge_cols``) of the edges kept by one
        degree-sensitive draw (sorted)."""
        return degree_sensitive_sample(
            self.edge_rows, self.edge_cols, self.dropout, weights=self.edge_weights, generator=generator
        )

    def start_epoch(self, epoch: int) -> None:
        """Sample this epoch's denoised user-item graph (module doc) and re-normalise it."""
        if self.dropout == 0.0:
            self.pruned_adj = None
            return
        kept = self.prune(self.epoch_generator(epoch))  # sorted: the kept edges stay in (user, item) order
        self.pruned_adj = normalized_bipartite_csr(
            self.edge_rows.index_select(0, kept), self.edge_cols.index_select(0, kept), self.n_users, self.n_items,
            dtype=self.lightgcn.user_embedding.weight.dtype,
        )

    def full_adj(self) -> Tensor:
        """The full normalised user-item graph (used for scoring)."""
        return self.lightgcn.adj

    def train_adj(self) -> Tensor:
        """The graph LightGCN propagates over now: this epoch's pruned graph in training
        mode (once :meth:`start_epoch` has sampled one), else the full graph."""
        if self.training and self.pruned_adj is not None:
            return self.pruned_adj
        return self.full_adj()

    # ------------------------------------------------------------ the item graph
    def graph_merges(self) -> dict[str, dict[str, Any]]:
        """``{"item": {"fixed_weights": ...}}``: the weights S was merged with, when given."""
        return {"item": {"fixed_weights": dict(self.graph_weights)}} if self.graph_weights else {}

    def item_graph(self) -> Tensor:
        """The frozen merged item graph S (torch sparse CSR, on the model's device)."""
        return self.item_op.matrix().detach()

    def item_propagate(self) -> Tensor:
        """h^{L'} = S^{L'} E_i^{(0)}."""
        h = self.lightgcn.item_embedding.weight
        for _ in range(self.item_layers):
            h = self.item_op(h)
        return h

    # ------------------------------------------------------------ representations, loss
    def _embeddings(self, adj: Tensor) -> tuple[Tensor, Tensor]:
        out = self.lightgcn.propagate(adj)
        return out[: self.n_users], out[self.n_users :] + self.item_propagate()

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final user and item representations over :meth:`train_adj` (the pruned graph
        while training, the full graph in evaluation mode)."""
        return self._embeddings(self.train_adj())

    def scoring_embeddings(self) -> tuple[Tensor, Tensor]:
        """The representations over the FULL user-item graph, whatever the mode: what
        :meth:`scorer` serves."""
        return self._embeddings(self.full_adj())


    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        user_emb, item_emb = self.embeddings()
        u = user_emb.index_select(0, users)
        pos, neg = item_emb.index_select(0, pos_items), item_emb.index_select(0, neg_items)
        loss = bpr_loss((u * pos).sum(-1), (u * neg).sum(-1))
        if not self.modalities:
            return loss
        # project each distinct item of the batch once (2 B rows hold at most n_items
        # distinct ones), then gather the positive and negative rows
        b = users.shape[0]
        uniq, inv = torch.unique(torch.cat([pos_items, neg_items]), return_inverse=True)
        for m in self.modalities:
            f = self.projections[m](self._features(m).index_select(0, uniq)).index_select(0, inv)
            loss = loss + self.feature_weight * bpr_loss((u * f[:b]).sum(-1), (u * f[b:]).sum(-1))
        return loss

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, dropout={self.dropout}, "
            f"kept_edges={self.n_kept}/{self.n_edges}, item_layers={self.item_layers}, "
            f"feature_weight={self.feature_weight}, feature_modalities={self.modalities}"
        )
