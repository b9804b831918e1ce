r"""MM-GEF: "MM-GEF: Multi-modal representation meet collaborative filtering" (Wu,
Ariza-Casabona, Twardowski, Wijaya; arXiv:2308.07222, 2023).

MM-GEF puts an item-item branch beside LightGCN, built on LATTICE (section 3.2:
"Following [21]", the LATTICE paper; section 3.5: "we follow [21] and combine them
with Light-GCN"). Inputs built from data (by :func:`graphrec.train.builders.mmgef.build_mmgef`,
never here):

* the early-fused content feature (section 3.1): :math:`x_i = \mathrm{mean}_m\,
  x_{i,m} / \|x_{i,m}\|` (CLIP image and text in the paper) and its top-k cosine graph
  :math:`\hat S` (eq. 1-2), normalised :math:`D^{-1/2} S D^{-1/2}`;
* the co-interaction graph :math:`E^c` (section 3.3, eq. 3-4): :math:`C_{ij}` = number of
  users who consumed both i and j in the TRAINING interactions, :math:`E^c = C / C_{max}`,
  normalised :math:`\hat E^c = D^{-1/2} E^c D^{-1/2}` (scale-free: the division by
  :math:`C_{max}` has no effect).

**Content structure** (``structure``):

* ``"learned"`` (the paper's, under our reading): LATTICE's machinery on ONE view, the
  fused feature (:class:`graphrec.models.lattice.LatentStructureRecommender`): "the CLIP
  feature will be transformed into the low-dimensional latent space with a trainable
  linear layer" (section 3.2), :math:`\tilde x_i = W x_i + b`, the top-k cosine graph
  :math:`\tilde S` of the projections is rebuilt once per epoch, and mixed with the
  original graph by LATTICE's skip :math:`\lambda` (0.9):

  .. math::
      E^m = (1 - \lambda)\, \mathrm{norm}(\tilde S) + \lambda \hat S .

  The fused feature table is fine-tuned as LATTICE's reference fine-tunes its feature
  tables (``train_features``).
* ``"fixed"`` (the default: validation prefers it on amazon-scientific and lfm2k,
  ``docs/models/mmgef.md``): :math:`E^m = \hat S`, no parameter (LATTICE with
  :math:`\lambda = 1`); cheaper at scale (no per-epoch kNN search over the projections). With
  ``feature_mode="projected"`` the VALUES of :math:`E^m` are the cosines of a trainable
  projection :math:`p_i = W x_i + b` on the FIXED kNN pattern of the fused features,
  recomputed (and re-normalised) at every forward pass,
  :math:`E^m_{ij} = \max(0, \cos(p_i, p_j))` for :math:`j \in \mathrm{topk}(x_i)`: an
  earlier reading of section 3.2, kept as a variant. The value gradient is sampled per
  edge, O(nnz d) (:func:`graphrec.nn.pattern_dot`, :func:`graphrec.nn.pattern_spmm`).

**Merge** (eq. 5, SoftAttn): one learnable logit per graph, :math:`\alpha =
\mathrm{softmax}(a)` (``attention=False``: fixed 1/2, 1/2), and the item GCN (eq. 6)
from the item ID embeddings (LightGCN's layer-0 item embeddings, shared, as LATTICE),
keeping the last layer:

.. math::
    h^{0} = E_i^{(0)}, \qquad h^{t} = \alpha_m E^m h^{t-1} + \alpha_c \hat E^c h^{t-1}
    \quad (t = 1 .. L').

Joining with LightGCN (section 3.5):

.. math::
    e_u = \mathrm{LightGCN}_u, \qquad
    e_i = \mathrm{LightGCN}_i + \frac{h^{L'}_i}{\|h^{L'}_i\|}, \qquad
    \hat y_{ui} = e_u^\top e_i,

trained with BPR plus L2 on the batch's layer-0 user/item embeddings, as LightGCN.

Reading of the ambiguous points (documented in ``docs/models/mmgef.md``):

* MM-GEF's tables say what it is built on: Table 1's "w/o Att" has exactly the numbers of
  Table 2's "LATTICE with CF", "w/o CF+Att" is within rounding of Table 2's plain LATTICE
  row (Baby 8.12 vs 8.13 recall), and section 4.3 reads "w/o CF+Att vs LATTICE" as the
  gain of CLIP features. Hence ``structure="learned"``; "w/o CF+Att" (``use_cf_graph=False``)
  is exactly LATTICE on the fused feature (tested), "w/o Att" (``attention=False``) is
  LATTICE with CF at fixed equal weights.
* eq. 5 gives no form for SoftAttn; we use one softmax weight per graph.
  Each graph is normalised before the merge (LATTICE normalises its graphs), which makes
  the weights comparable and keeps propagation linear in them.
* "w/o CF" vs "w/o CF+Att": with only the content structure the softmax over one graph is
  1 and ``attention`` has no effect, so the two rows are one model here; the paper
  reports different numbers (Clothing 8.78 vs 6.93). Attention acting inside the content
  structure (e.g. a learned weight in place of the skip's fixed :math:`\lambda`) would
  make them differ; the paper does not describe it and we do not invent it.
* ``knn_graph=None`` drops the content graph: only :math:`\hat E^c` remains (a pure
  collaborative item branch for data without content; fixed structure only).

Shapes: ``adj`` (n_users + n_items) square, ``knn_graph`` and ``cooccur_graph``
(n_items x n_items), torch sparse (CSR or COO); ``features`` (n_items x d_feat).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.lattice import LatentStructureRecommender
from graphrec.nn import (
    FactoredCooccurrence,
    SparsePattern,
    as_sparse_csr,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    register_pattern,
    sym_normalized_values,
    unit_rows,
)

__all__ = ["MMGEF", "FEATURE_MODES", "GRAPH_NAMES", "STRUCTURES"]

#: the content structures: LATTICE's learned graph on the fused feature, or its fixed kNN graph
STRUCTURES = ("learned", "fixed")

#: edge values of the fixed structure's content graph
FEATURE_MODES = ("fixed", "projected")

#: names of the item graphs, in the order of the attention logits
GRAPH_NAMES = ("knn", "cooccur")

#: the name of MM-GEF's single content view (the early-fused feature)
VIEW = "fused"


class MMGEF(LatentStructureRecommender):
    """MM-GEF: LightGCN plus a soft-attention merge of a content structure of the
    early-fused features and a co-interaction graph over items.

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised user-item bipartite adjacency (as for :class:`LightGCN`; may be
            non-symmetric, e.g. LATTICE's reference D^-1 (A + I)).
        knn_graph: the top-k cosine graph of the fused features, (n_items x n_items)
            torch sparse. ``learned`` and ``fixed`` structures: already normalised (the
            original graph Ŝ; its values are used as they are). ``projected`` mode: only
            its pattern is used. ``None``: no content graph (co-interaction graph only;
            fixed structure).
        cooccur_graph: the normalised co-interaction graph Ê^c of the training data,
            explicit (torch sparse) or as its factors (:class:`graphrec.nn.FactoredCooccurrence`);
            required with ``use_cf_graph``, ignored (not stored) without.
        features: fused item features (n_items x d_feat), required by the ``learned``
            structure and by ``projected`` mode, ignored otherwise.
        embedding_dim: d of the ID embeddings, the item GCN and the projection (paper: 64).
        num_layers: LightGCN layers L.
        item_layers: item-graph layers L' (LATTICE and our default: 1).
        reg_weight: L2 coefficient (on the embeddings ``reg_on`` names).
        use_cf_graph: merge E^c with E^m (False: the paper's "w/o CF").
        attention: learnable softmax weights (False: fixed equal weights, "w/o Att").
        structure: ``learned`` or ``fixed`` (module doc).
        feature_mode: ``fixed`` or ``projected`` edge values of the ``fixed`` structure.
        k: neighbours per item of the learned graph (``learned``; paper: 10).
        lambda_coeff: weight of the original graph in the skip mix (``learned``; LATTICE: 0.9).
        include_self: each item is one of its own k neighbours in the learned graph.
        train_features: fine-tune the fused feature table (``learned``; as LATTICE).
        reg_on: ``"layer0"``: L2 on the batch's layer-0 embeddings (LightGCN's);
            ``"final"``: on its final embeddings (LATTICE's reference code, on which the
            paper's tables were run).
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
        structure: str = "fixed",
        feature_mode: str = "fixed",
        k: int = 10,
        lambda_coeff: float = 0.9,
        include_self: bool = False,
        train_features: bool = True,
        reg_on: str = "layer0",
    ) -> None:
        if structure not in STRUCTURES:
            raise ConfigError(f"structure {structure!r} is not one of {', '.join(STRUCTURES)}")
        if feature_mode not in FEATURE_MODES:
            raise ConfigError(f"feature_mode {feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
        learned = structure == "learned"
        projected = feature_mode == "projected"
        if learned and projected:
            raise ConfigError("feature_mode 'projected' belongs to the fixed structure; the learned structure projects anyway")
        if knn_graph is None:
            if not use_cf_graph:
                raise ConfigError("MM-GEF needs at least one item graph: knn_graph is None and use_cf_graph is False")
            if projected:
                raise ConfigError("feature_mode 'projected' projects the content graph, and knn_graph is None")
            if learned:
                raise ConfigError("structure 'learned' learns the content graph, and knn_graph is None: use structure 'fixed'")
        if use_cf_graph and cooccur_graph is None:
            raise ConfigError("use_cf_graph=True needs the co-interaction graph (cooccur_graph=...)")
        if (learned or projected) and knn_graph is not None:
            if features is None:
                raise ConfigError(f"{'structure learned' if learned else 'feature_mode projected'} needs the fused item features (features=...)")
            if features.dim() != 2 or features.shape[0] != n_items:
                raise ConfigError(f"features have shape {tuple(features.shape)}, expected ({n_items}, d_feat)")
        views: dict[str, Tensor] = {}
        if knn_graph is not None and not projected:
            views[VIEW] = as_sparse_csr(knn_graph, "knn_graph", n_items)
        super().__init__(
            n_users, n_items, adj, views, {VIEW: features} if learned else None,  # type: ignore[dict-item]
            embedding_dim=embedding_dim, num_layers=num_layers, item_layers=item_layers, reg_weight=reg_weight,
            k=k, lambda_coeff=lambda_coeff if learned else 1.0, include_self=include_self,
            train_features=train_features, learned=learned, view_logits=False,
            cooccur_graph=cooccur_graph if use_cf_graph else None,
            merge_weights="learned" if attention else "fixed", merge_logits_name="attention_logits",
            external_content=projected and knn_graph is not None, reg_on=reg_on,
        )
        self.structure = structure
        self.use_cf_graph = use_cf_graph
        self.attention = attention
        self.feature_mode = feature_mode
        #: the item graphs in use, in the order of the attention logits
        self.graph_names = tuple(name for name, used in zip(GRAPH_NAMES, (self.has_content, use_cf_graph)) if used)
        self.feature_proj: nn.Linear | None = None
        if projected and knn_graph is not None:
            assert features is not None
            register_pattern(self, "knn", SparsePattern.from_csr(as_sparse_csr(knn_graph, "knn_graph", n_items)))
            self.register_buffer("features", features.detach().float(), persistent=False)
            self.feature_proj = nn.Linear(features.shape[1], embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.feature_proj is not None:
            nn.init.xavier_uniform_(self.feature_proj.weight)
            nn.init.zeros_(self.feature_proj.bias)

    # ------------------------------------------------------------------ item graphs
    def graph_weights(self) -> Tensor:
        """The merge weights alpha (n_graphs,), differentiable when learned."""
        return self.merge_weights()

    def attention_weights(self) -> dict[str, float]:
        """Current weights as ``{"knn": w, "cooccur": w}`` (0.0 for a graph not used);
        "knn" is the content structure E^m."""
        w = dict(zip(self.graph_names, self.graph_weights().detach().cpu().tolist()))
        return {name: float(w.get(name, 0.0)) for name in GRAPH_NAMES}

    def log_values(self) -> dict[str, float]:
        """Per-epoch record: the learned graph weights (nothing when they are fixed)."""
        if self.attention_logits is None:
            return {}
        return {f"attention_{name}": w for name, w in self.attention_weights().items()}

    @property
    def knn_adj(self) -> Tensor:
        """The normalised kNN graph Ŝ of the fused features as given (the learned
        structure's original graph; the fixed structure's E^m). Not in projected mode."""
        if not self.modalities:
            raise AttributeError("this MM-GEF has no fixed content kNN graph")
        if self.learned:
            return module_pattern(self, f"original_{VIEW}").matrix(getattr(self, f"original_{VIEW}_values"))
        return self.content_adj

    def _projected_knn_values(self) -> Tensor:
        """Values of Ê^m in projected mode: max(0, cos(p_i, p_j)) on the kNN pattern, with
        p = W x + b, symmetrically normalised with the row degrees (differentiable)."""
        assert self.feature_proj is not None
        z = unit_rows(self.feature_proj(self.features))  # exact at any feature scale
        pattern = module_pattern(self, "knn")
        v = pattern_dot(pattern, z, z).clamp_min(0.0)
        return sym_normalized_values(pattern, v)

    def projected_knn_graph(self) -> Tensor:
        """Ê^m of projected mode as a torch sparse CSR tensor (detached; for inspection)."""
        with torch.no_grad():
            return module_pattern(self, "knn").matrix(self._projected_knn_values())

    def _content_step(self) -> Callable[[Tensor], Tensor]:
        if self.feature_proj is None:
            return super()._content_step()
        vals = self._projected_knn_values()  # once per forward pass, shared by the layers
        pattern = module_pattern(self, "knn")
        return lambda h: pattern_spmm(pattern, vals, h)

    def _content_matrix(self) -> Tensor:
        if self.feature_proj is None:
            return super()._content_matrix()
        return self.projected_knn_graph()

    def content_graph(self) -> Tensor:
        """E^m from the current parameters (learned: rebuilt now), detached sparse CSR."""
        if not self.has_content:
            raise ConfigError("this MM-GEF has no content graph (knn_graph=None)")
        return self._content_matrix()

    def cooccur_graph(self) -> Tensor:
        """Ê^c as a torch sparse CSR tensor (explicit even when the model holds its
        factors; for inspection)."""
        if self.cooccur_op is None:
            raise ConfigError("this MM-GEF has no co-interaction graph (use_cf_graph=False)")
        return self.cooccur_op.matrix()

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, structure={self.structure!r}, "
            f"item_layers={self.item_layers}, graphs={','.join(self.graph_names)}, attention={self.attention}, "
            f"feature_mode={self.feature_mode!r}"
            + (f", k={self.k}, lambda_coeff={self.lambda_coeff}" if self.learned else "")
        )
