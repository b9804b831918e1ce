r"""MM-GEF: "MM-GEF: Multi-modal representation meet collaborative filtering" (Wu,
Ariza-Casabona, Twardowski, Wijaya; paper 002 in ``shared/papers``).

MM-GEF puts an item-item branch beside LightGCN. Two item graphs over the same items
are built from data (by :func:`graphrec.train.builders.mmgef.build_mmgef`, never here):

* the content graph :math:`E^m` (section 3.2, eq. 1-2): top-k cosine neighbours of the
  early-fused features :math:`x_i = \mathrm{mean}_m\, x_{i,m} / \|x_{i,m}\|` (section 3.1);
* the co-interaction graph :math:`E^c` (section 3.3, eq. 3-4): :math:`C_{ij}` = number of
  users who consumed both i and j in the TRAINING interactions, :math:`E^c = C / C_{max}`.

Each graph is normalised, :math:`\hat E_g = D_g^{-1/2} E_g D_g^{-1/2}` with the row
degrees :math:`D_g` (as LATTICE normalises its graphs), and the two are merged with a
soft attention of one learnable logit per graph (eq. 5):

.. math::
    E^u = \sum_g \alpha_g \hat E_g, \qquad \alpha = \mathrm{softmax}(a), \quad
    g \in \{m, c\}.

The item GCN (eq. 6) starts from the item ID embeddings, which are LightGCN's layer-0
item embeddings (shared, as in LATTICE), and keeps the last layer:

.. math::
    h^{0} = E_i^{(0)}, \qquad h^{t} = E^u h^{t-1} = \sum_g \alpha_g \hat E_g h^{t-1}
    \quad (t = 1 .. L').

By linearity each layer is computed as :math:`\sum_g \alpha_g (\hat E_g h)` (one sparse
product per graph), so no merged sparse matrix is formed and the gradient reaches the
logits :math:`a` through the scalar weights. Joining with LightGCN (section 3.5):

.. math::
    e_u = \mathrm{LightGCN}_u, \qquad
    e_i = \mathrm{LightGCN}_i + \frac{h^{L'}_i}{\|h^{L'}_i\|}, \qquad
    \hat y_{ui} = e_u^\top e_i,

trained with BPR plus L2 on the batch's layer-0 user/item embeddings
(:func:`graphrec.nn.bpr_loss`, :func:`graphrec.nn.l2_penalty`), as LightGCN.

Feature modes (section 3.2: "the CLIP feature will be transformed into the
low-dimensional latent space with a trainable linear layer", then the graph is built
from the cosine similarity of the content feature):

* ``"fixed"``: :math:`E^m` is the top-k cosine graph of the stored fused features,
  normalised once; the model holds no feature parameters.
* ``"projected"``: a trainable linear layer (:math:`W \in \mathbb{R}^{d \times d_{feat}}`
  Xavier-initialised, bias :math:`b` zero-initialised) compresses the fused features,
  :math:`p_i = W x_i + b`, and the VALUES of :math:`E^m` are the cosines of the
  projections on the kNN PATTERN of the fused features, recomputed (and re-normalised)
  at every forward pass: :math:`E^m_{ij} = \max(0, \cos(p_i, p_j))` for
  :math:`j \in \mathrm{topk}(x_i)`. The neighbour sets are not re-searched over the
  projections (LATTICE rebuilds its learned graph once per epoch); negative cosines are
  clipped so the degrees stay positive. The value gradient is sampled per edge,
  O(nnz d) (:func:`graphrec.nn.pattern_dot`, :func:`graphrec.nn.pattern_spmm`), never through a dense n x n product.

Reading of the ambiguous points (documented in ``docs/models/mmgef.md``):

* eq. 5 gives no form for SoftAttn; DESIGN.md asks for one softmax weight per graph.
  The paper does not say whether the item graphs are normalised; we normalise each
  graph before the merge (LATTICE does so for its modality graphs), which makes the
  weights comparable (E^c = C / C_max has
  values ~1/C_max while the kNN cosines are ~0.5-0.9) and keeps propagation linear in
  the weights. Symmetric normalisation is invariant to a global scale, so the division
  by C_max of eq. 4 does not change :math:`\hat E^c`.
* with ``use_cf_graph=False`` only :math:`E^m` remains, the softmax over one graph is 1
  and ``attention`` has no effect (the paper reports different numbers for "w/o CF" and
  "w/o CF+Att", which this reading cannot reproduce).
* ``attention=False`` ("w/o Att"): fixed equal weights 1/2, 1/2, not trainable.
* ``knn_graph=None`` drops the content graph: only :math:`\hat E^c` remains (a pure
  collaborative item branch for data without content, or to time the model on
  interactions alone); as with one graph above, the softmax is 1.

Shapes: ``adj`` (n_users + n_items) square, ``knn_graph`` and ``cooccur_graph``
(n_items x n_items), torch sparse (CSR or COO); ``features`` (n_items x d_feat).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import ItemGraphRecommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import (
    FactoredCooccurrence,
    SparseOperator,
    SparsePattern,
    as_sparse_csr,
    cooccurrence_operator,
    csr_transpose,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    propagate,
    register_pattern,
    sym_normalized_values,
    weighted_sparse_sum,
)

__all__ = ["MMGEF", "FEATURE_MODES", "GRAPH_NAMES"]

FEATURE_MODES = ("fixed", "projected")

#: names of the item graphs, in the order of the attention logits
GRAPH_NAMES = ("knn", "cooccur")


class MMGEF(ItemGraphRecommender):
    """MM-GEF: LightGCN plus a soft-attention merge of a content kNN graph and a
    co-interaction graph over items.

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised user-item bipartite adjacency (as for :class:`LightGCN`).
        knn_graph: the content graph E^m, (n_items x n_items) torch sparse. ``fixed``
            mode: already normalised (its values are used as they are). ``projected``
            mode: only its pattern (the top-k neighbours) is used. ``None``: no content
            graph (co-interaction graph only; needs ``use_cf_graph`` and ``fixed`` mode).
        cooccur_graph: the normalised co-interaction graph Ê^c of the training data,
            explicit (torch sparse) or as its factors (:class:`graphrec.nn.FactoredCooccurrence`,
            what the builder passes for the unpruned graph: same values, 2 nnz(R) instead
            of nnz(C) work per product); required with ``use_cf_graph``, ignored (not
            stored) without.
        features: fused item features (n_items x d_feat), required by ``projected``
            mode, ignored in ``fixed`` mode.
        embedding_dim: d of the ID embeddings, the item GCN and the projection (paper: 64).
        num_layers: LightGCN layers L.
        item_layers: item-graph layers L' (LATTICE and our default: 1).
        reg_weight: L2 coefficient on the batch's layer-0 embeddings.
        use_cf_graph: merge E^c with E^m (False: the paper's "w/o CF" ablation).
        attention: learnable softmax weights (False: fixed equal weights, "w/o Att").
        feature_mode: ``fixed`` or ``projected`` (see the module doc).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        knn_graph: Tensor | None,
        cooccur_graph: Tensor | FactoredCooccurrence | None = None,
        *,
        features: Tensor | None = None,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        reg_weight: float = 1e-4,
        use_cf_graph: bool = True,
        attention: bool = True,
        feature_mode: str = "fixed",
    ) -> None:
        super().__init__()
        if feature_mode not in FEATURE_MODES:
            raise ConfigError(f"feature_mode {feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
        if item_layers < 1:
            raise ConfigError(f"item_layers must be at least 1, got {item_layers}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.reg_weight = reg_weight
        self.use_cf_graph = use_cf_graph
        self.attention = attention
        self.feature_mode = feature_mode
        # The CF branch: LightGCN itself (its layer-0 item embeddings are also h^0).
        self.lightgcn = LightGCN(
            n_users, n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=reg_weight
        )

        # Graphs and features are data, not parameters: non-persistent buffers.
        self.feature_proj = None
        if knn_graph is None:
            if not use_cf_graph:
                raise ConfigError("MM-GEF needs at least one item graph: knn_graph is None and use_cf_graph is False")
            if feature_mode != "fixed":
                raise ConfigError("feature_mode 'projected' projects the content graph, and knn_graph is None")
        elif feature_mode == "fixed":
            knn = as_sparse_csr(knn_graph, "knn_graph", n_items)
            self.register_buffer("knn_adj", knn, persistent=False)
            self.register_buffer("knn_adj_t", csr_transpose(knn), persistent=False)
        else:
            if features is None:
                raise ConfigError("feature_mode 'projected' needs the fused item features (features=...)")
            if features.dim() != 2 or features.shape[0] != n_items:
                raise ConfigError(f"features have shape {tuple(features.shape)}, expected ({n_items}, d_feat)")
            register_pattern(self, "knn", SparsePattern.from_csr(as_sparse_csr(knn_graph, "knn_graph", n_items)))
            self.register_buffer("features", features.detach().float(), persistent=False)
            self.feature_proj = nn.Linear(features.shape[1], embedding_dim)

        self.cooccur_op: FactoredCooccurrence | SparseOperator | None = None
        if use_cf_graph:
            if cooccur_graph is None:
                raise ConfigError("use_cf_graph=True needs the co-interaction graph (cooccur_graph=...)")
            self.cooccur_op = cooccurrence_operator(cooccur_graph, n_items)
        #: the item graphs in use, in the order of the attention logits
        self.graph_names = tuple(
            name for name, used in zip(GRAPH_NAMES, (knn_graph is not None, use_cf_graph)) if used
        )
        self.n_graphs = len(self.graph_names)

        # One logit per graph; with a single graph the softmax is 1 and nothing is learned.
        if attention and self.n_graphs > 1:
            self.attention_logits: nn.Parameter | None = nn.Parameter(torch.zeros(self.n_graphs))
        else:
            self.attention_logits = None
            self.register_buffer("fixed_weights", torch.full((self.n_graphs,), 1.0 / self.n_graphs), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()
        if self.attention_logits is not None:
            nn.init.zeros_(self.attention_logits)  # equal weights at the start
        if self.feature_proj is not None:
            nn.init.xavier_uniform_(self.feature_proj.weight)
            nn.init.zeros_(self.feature_proj.bias)

    # ------------------------------------------------------------------ item graphs
    def graph_weights(self) -> Tensor:
        """The merge weights alpha (n_graphs,), differentiable when learned."""
        if self.attention_logits is not None:
            return torch.softmax(self.attention_logits, dim=0)
        return self.fixed_weights

    def attention_weights(self) -> dict[str, float]:
        """Current weights as ``{"knn": w, "cooccur": w}`` (0.0 for a graph not used)."""
        w = dict(zip(self.graph_names, self.graph_weights().detach().cpu().tolist()))
        return {name: float(w.get(name, 0.0)) for name in GRAPH_NAMES}

    def log_values(self) -> dict[str, float]:
        """Per-epoch record: the learned graph weights (nothing when they are fixed)."""
        if self.attention_logits is None:
            return {}
        return {f"attention_{name}": w for name, w in self.attention_weights().items()}

    def _projected_knn_values(self) -> Tensor:
        """Values of Ê^m in projected mode: max(0, cos(p_i, p_j)) on the kNN pattern, with
        p = W x + b, symmetrically normalised with the row degrees (differentiable)."""
        assert self.feature_proj is not None
        z = F.normalize(self.feature_proj(self.features), dim=1)
        pattern = module_pattern(self, "knn")
        v = pattern_dot(pattern, z, z).clamp_min(0.0)
        return sym_normalized_values(pattern, v)

    def projected_knn_graph(self) -> Tensor:
        """Ê^m of projected mode as a torch sparse CSR tensor (detached; for inspection)."""
        with torch.no_grad():
            return module_pattern(self, "knn").matrix(self._projected_knn_values())

    def _item_operators(self) -> list[Callable[[Tensor], Tensor]]:
        """``h -> Ê_g h`` for each graph, in the order of :data:`GRAPH_NAMES`."""
        ops: list[Callable[[Tensor], Tensor]] = []
        if "knn" in self.graph_names and self.feature_mode == "fixed":
            ops.append(lambda h: propagate(self.knn_adj, h, adj_t=self.knn_adj_t))
        elif "knn" in self.graph_names:
            vals = self._projected_knn_values()  # once per forward pass, shared by the layers
            pattern = module_pattern(self, "knn")
            ops.append(lambda h: pattern_spmm(pattern, vals, h))
        if self.cooccur_op is not None:
            ops.append(self.cooccur_op)
        return ops

    def cooccur_graph(self) -> Tensor:
        """Ê^c as a torch sparse CSR tensor (explicit even when the model holds its
        factors; for inspection)."""
        if not self.use_cf_graph:
            raise ConfigError("this MM-GEF has no co-interaction graph (use_cf_graph=False)")
        return self.cooccur_op.matrix()

    def item_graph(self) -> Tensor:
        """E^u = sum_g alpha_g Ê_g with the current weights (and, in projected mode, the
        current Ê^m), as one detached sparse CSR tensor; forms Ê^c explicitly."""
        with torch.no_grad():
            mats = []
            if "knn" in self.graph_names:
                mats.append(self.knn_adj if self.feature_mode == "fixed" else self.projected_knn_graph())
            if self.cooccur_op is not None:
                mats.append(self.cooccur_op.matrix())
            return weighted_sparse_sum(mats, self.graph_weights())

    def item_propagate(self, h: Tensor | None = None) -> Tensor:
        """h^{L'} = (sum_g alpha_g Ê_g)^{L'} h^0, with h^0 the layer-0 item embeddings."""
        h = self.lightgcn.item_embedding.weight if h is None else h
        ops = self._item_operators()
        w = self.graph_weights()
        for _ in range(self.item_layers):
            out = w[0] * ops[0](h)
            for g in range(1, len(ops)):
                out = out + w[g] * ops[g](h)
            h = out
        return h

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, item_layers={self.item_layers}, "
            f"graphs={','.join(self.graph_names)}, attention={self.attention}, feature_mode={self.feature_mode!r}"
        )
