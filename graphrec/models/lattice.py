r"""LATTICE: "Mining Latent Structures for Multimedia Recommendation" (Zhang, Zhu, Liu,
Wu, Wang, Wang; ACM MM 2021). MM-GEF's main baseline (MM-GEF's Tables 1-3).

For every content view m (LATTICE: every modality, raw item features :math:`X_m`;
MM-GEF: the one early-fused feature) LATTICE keeps two item graphs.

* The ORIGINAL graph (section 3.1.1, fixed; built from data by
  :func:`graphrec.train.builders.lattice.build_lattice`, never here): the top-k cosine graph of
  :math:`X_m`, :math:`\hat S_m = D^{-1/2} S_m D^{-1/2}` with the row sums :math:`D`.
* The LEARNED graph (section 3.1.2): the features are projected by a trainable linear
  layer, :math:`\tilde x_{i,m} = W_m x_{i,m} + b_m`, and the top-k cosine graph
  :math:`\tilde S_m` of the projections is rebuilt (values :math:`\max(0, \cos)` on the
  k nearest neighbours).

Views are combined with softmax weights of one learnable logit each (eq. 7), the
learned part is normalised after the combination, and the learned and original graphs
are mixed with the skip coefficient :math:`\lambda` (eq. 8-9, default 0.9):

.. math::
    \alpha = \mathrm{softmax}(a), \qquad
    A = (1 - \lambda)\, \mathrm{norm}\Big(\sum_m \alpha_m \tilde S_m\Big)
        + \lambda \sum_m \alpha_m \hat S_m .

The item branch (eq. 10) propagates the item ID embeddings, which are LightGCN's
layer-0 item embeddings (shared), over :math:`A` for :math:`L'` layers (default 1), and
the result is added, L2-normalised, to LightGCN's item embeddings (eq. 11-12):

.. math::
    h^{0} = E_i^{(0)}, \quad h^{t} = A h^{t-1}, \qquad
    e_u = \mathrm{LightGCN}_u, \quad e_i = \mathrm{LightGCN}_i + \frac{h^{L'}_i}{\|h^{L'}_i\|},
    \quad \hat y_{ui} = e_u^\top e_i ,

trained with BPR plus L2 on the batch's layer-0 embeddings (as LightGCN).

LATTICE with the co-interaction graph (``cooccur_graph``; MM-GEF's Table 2 runs
"LATTICE" with CF, and its cold-start Table 3 uses that row): the normalised
co-interaction graph :math:`\hat E^c` of MM-GEF (training interactions only) joins A,
one weight per graph (our reading; the paper does not say how CF enters LATTICE):

.. math::
    h^{t} = \beta_A\, A h^{t-1} + \beta_c\, \hat E^c h^{t-1}, \qquad
    \beta = \mathrm{softmax}(b) \ (\texttt{cf\_weights="learned"}) \ \text{or}\
    \beta = (\tfrac12, \tfrac12) \ (\texttt{"fixed"}).

MM-GEF's tables settle the paper's form: its Table 1 row "MM-GEF w/o Att" (fixed equal
weights) has exactly the numbers of its Table 2 row "LATTICE with CF" (Sports 9.41 / 4.25,
Clothing 7.71 / 0.39 / 3.50), so the paper's "LATTICE + CF" is the fixed form.

Schedule (as the authors' code): the learned graph is rebuilt at the first training
batch of every epoch (:meth:`LATTICE.start_epoch` marks it stale; the fit loop calls
it), with gradients into the projections, the view logits and (``train_features``)
the feature tables; the other batches of the epoch reuse it as a constant. For
evaluation the graph is rebuilt from the current parameters, so a saved model scores
the same after reloading.

The machinery above (views, original and learned graphs, the skip, the schedule, the
merge with :math:`\hat E^c`) is :class:`LatentStructureRecommender`, which MM-GEF
(:mod:`graphrec.models.mmgef`) subclasses with its single early-fused view.

Differences from the authors' code (github CRIPAC-DIG/LATTICE, ``codes/``). For scale, not
changing the model: everything is sparse and chunked (the reference forms dense n x n
similarity matrices: at 60,000 items one such matrix is 14 GB); the neighbour search runs
without gradient, blocked, on the model's device (:func:`graphrec.graphs.knn.knn_neighbours`)
and only the O(n k) edge values are differentiable (:func:`graphrec.nn.pattern_dot`,
:func:`graphrec.nn.pattern_spmm`); negative cosines on the kNN pattern are clipped to 0 so
every degree stays positive (the reference keeps them; among the k NEAREST items they are
rare). These CHANGE results, and graphrec's defaults follow LightGCN instead:

* backbone adjacency: the reference propagates LightGCN over the row-normalised
  :math:`D^{-1}(A + I)` (self loops; MMRec's LATTICE too), graphrec over
  :math:`D^{-1/2} A D^{-1/2}` (LightGCN's eq. 7);
* L2: the reference penalises the batch's FINAL embeddings,
  :math:`10^{-5}/(2B) \sum (\|e_u\|^2 + \|e_{i^+}\|^2 + \|e_{i^-}\|^2)` with
  :math:`e` the outputs above, graphrec the layer-0 embeddings with 1e-4 (LightGCN's);
* self in the kNN lists: the reference keeps each item as one of its own k neighbours
  (cosine 1) in the original and learned graphs; ``include_self=True`` does so;
* training (not the model's business): Adam lr 5e-4 decayed by :math:`0.96^{t/50}` at
  epoch t, batches of 1,024 users sampled uniformly, one positive and one negative each.
  graphrec's fit loop shuffles the training INTERACTIONS (a user weighs as many triples
  as she has interactions); it has no user sampler.

The builder's ``parity="reference"`` (``graphrec train lattice --parity reference``)
sets the first three: ``adj`` = :math:`D^{-1}(A + I)`, ``reg_on="final"`` with weight
1e-5, ``include_self=True``; the training part is ``--lr 5e-4 --lr-decay 0.96
--batch-size 1024`` (``docs/models/lattice.md``). A non-symmetric ``adj`` is propagated
with its transpose in the backward pass (the model detects it).

Shapes: ``adj`` (n_users + n_items) square torch sparse; ``original_graphs[m]``
(n_items x n_items) torch sparse, already normalised; ``features[m]`` (n_items x d_m).
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.graphs.knn import knn_neighbours
from graphrec.models.base import FeatureTables, ItemGraphRecommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import (
    FactoredCooccurrence,
    SparseOperator,
    SparsePattern,
    as_sparse_csr,
    bpr_loss,
    cooccurrence_operator,
    csr_transpose,
    inv_sqrt_degree,
    l2_penalty,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    propagate,
    register_pattern,
    unit_rows,
    weighted_sparse_sum,
)

__all__ = ["LATTICE", "LatentStructureRecommender", "CF_WEIGHTS", "REG_ON"]

#: how the content structure and the co-interaction graph are weighted
CF_WEIGHTS = ("learned", "fixed")

#: which embeddings the L2 penalty reads: LightGCN's layer-0 ones or the final ones
REG_ON = ("layer0", "final")


class _TransposedLightGCN(LightGCN):
    """LightGCN over a NON-symmetric normalised graph (e.g. :math:`D^{-1}(A + I)`): the
    backward pass multiplies by the stored transpose (LightGCN reuses ``adj`` itself,
    which is right only for a symmetric graph). Same parameters, same state dict."""

    def __init__(self, n_users: int, n_items: int, adj: Tensor, adj_t: Tensor, **kw) -> None:
        super().__init__(n_users, n_items, adj, **kw)
        self.register_buffer("adj_t", adj_t, persistent=False)

    def propagate(self, adj: Tensor | None = None) -> Tensor:
        if adj is not None:
            raise ConfigError("this LightGCN propagates over its own non-symmetric graph only")
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)
        out = x
        for _ in range(self.num_layers):
            x = propagate(self.adj, x, adj_t=self.adj_t)
            out = out + x
        return out / (self.num_layers + 1)


def _backbone(n_users: int, n_items: int, adj: Tensor, embedding_dim: int, num_layers: int, reg_weight: float) -> LightGCN:
    """LightGCN over ``adj``; with the stored transpose when ``adj`` is not symmetric."""
    kw = dict(embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=reg_weight)
    if isinstance(adj, Tensor) and adj.layout in (torch.sparse_csr, torch.sparse_coo):
        csr = as_sparse_csr(adj, "adj", n_users + n_items)
        t = csr_transpose(csr)
        if t is not csr:
            return _TransposedLightGCN(n_users, n_items, csr, t, **kw)
    return LightGCN(n_users, n_items, adj, **kw)


class LatentStructureRecommender(FeatureTables, ItemGraphRecommender):
    r"""LightGCN plus an item branch over LATTICE's latent item structure, optionally
    merged with a co-interaction graph: the machinery LATTICE and MM-GEF share.

    Content views (``original_graphs``; LATTICE: one per modality, MM-GEF: ``"fused"``)
    give the content structure A of the module doc: with ``learned`` the original graphs
    plus the learned graphs of the projected ``features`` (rebuilt once per epoch, mixed
    by the skip ``lambda_coeff``); without, the constant :math:`\sum_m \alpha_m \hat S_m`
    (fixed equal view weights, no parameter). A subclass may instead provide the content
    operator itself (``external_content``: override :meth:`_content_step` and
    :meth:`_content_matrix`). The item graphs in use (content, then
    ``cooccur_graph``) are merged per layer, :math:`h^t = \sum_g w_g G_g h^{t-1}`, with
    :math:`w = \mathrm{softmax}` of learnable logits (``merge_weights="learned"``, the
    parameter named ``merge_logits_name``) or equal fixed weights; one graph: w = 1.
    ``reg_on``: where the L2 of :meth:`loss` goes, the batch's layer-0 embeddings
    (``"layer0"``, LightGCN's) or its final ones (``"final"``, LATTICE's reference code).

    Subclasses call ``reset_parameters()`` at the end of their ``__init__``.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        original_graphs: Mapping[str, Tensor],
        features: Mapping[str, Tensor] | None,
        *,
        embedding_dim: int,
        num_layers: int,
        item_layers: int,
        reg_weight: float,
        k: int,
        lambda_coeff: float,
        include_self: bool,
        train_features: bool,
        learned: bool,
        view_logits: bool,
        cooccur_graph: Tensor | FactoredCooccurrence | None,
        merge_weights: str,
        merge_logits_name: str,
        external_content: bool = False,
        reg_on: str = "layer0",
    ) -> None:
        super().__init__()
        if reg_on not in REG_ON:
            raise ConfigError(f"reg_on {reg_on!r} is not one of {', '.join(REG_ON)}")
        if learned and set(features or {}) != set(original_graphs):
            raise ConfigError(
                f"features ({', '.join(features or {})}) and original_graphs ({', '.join(original_graphs)}) "
                "must name the same modalities"
            )
        if not 0.0 <= lambda_coeff <= 1.0:
            raise ConfigError(f"lambda_coeff must be in [0, 1], got {lambda_coeff}")
        if item_layers < 1:
            raise ConfigError(f"item_layers must be at least 1, got {item_layers}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if merge_weights not in CF_WEIGHTS:
            raise ConfigError(f"merge weights {merge_weights!r} are not one of {', '.join(CF_WEIGHTS)}")
        if view_logits and not learned:
            raise ConfigError("learnable view weights need the learned structure (a fixed structure has fixed weights)")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.reg_weight = reg_weight
        self.reg_on = reg_on
        self.k = k
        self.lambda_coeff = lambda_coeff
        self.include_self = include_self
        self.learned = learned
        self.train_features = train_features and learned
        #: the content views (LATTICE: modalities; MM-GEF: "fused")
        self.modalities: tuple[str, ...] = tuple(original_graphs)
        self.lightgcn = _backbone(n_users, n_items, adj, embedding_dim, num_layers, reg_weight)

        self.projections = nn.ModuleDict() if learned else None
        if learned:
            dims = self._register_features(features or {}, self.modalities, n_items, self.train_features)
            for m in self.modalities:
                self.projections[m] = nn.Linear(dims[m], embedding_dim)  # type: ignore[index]
        else:
            self.feature_tables = None
        for m in self.modalities:
            g = original_graphs[m]
            if tuple(g.shape) != (n_items, n_items):
                raise ConfigError(f"original_graphs[{m!r}] has shape {tuple(g.shape)}, expected {(n_items, n_items)}")
            if learned:
                coo = g.to_sparse_coo().coalesce()
                pattern = SparsePattern.from_indices(coo.indices()[0], coo.indices()[1], n_items)
                register_pattern(self, f"original_{m}", pattern)
                # from_indices keeps the coalesced (row-major) order: values align
                self.register_buffer(f"original_{m}_values", coo.values().float(), persistent=False)
        if self.modalities and not learned:  # the constant content graph, sum_m Ŝ_m / V
            mats = [as_sparse_csr(original_graphs[m], f"original_graphs[{m!r}]", n_items) for m in self.modalities]
            content = mats[0] if len(mats) == 1 else weighted_sparse_sum(mats, [1.0 / len(mats)] * len(mats))
            self.register_buffer("content_adj", content, persistent=False)
            self.register_buffer("content_adj_t", csr_transpose(content), persistent=False)
        self.modality_logits = nn.Parameter(torch.zeros(len(self.modalities))) if view_logits else None
        self.has_content = bool(self.modalities) or external_content
        self.cooccur_op: FactoredCooccurrence | SparseOperator | None = (
            None if cooccur_graph is None else cooccurrence_operator(cooccur_graph, n_items)
        )
        self.n_graphs = int(self.has_content) + int(self.cooccur_op is not None)
        if self.n_graphs == 0:
            raise ConfigError("the item branch needs at least one item graph (content or co-interaction)")
        self.merge_weighting = merge_weights
        self._merge_logits_name = merge_logits_name
        if merge_weights == "learned" and self.n_graphs > 1:
            setattr(self, merge_logits_name, nn.Parameter(torch.zeros(self.n_graphs)))
        else:
            setattr(self, merge_logits_name, None)
            self.register_buffer("fixed_weights", torch.full((self.n_graphs,), 1.0 / self.n_graphs), persistent=False)
        self._cached: tuple[Tensor, Tensor] | None = None  # (graph, its transpose), constants
        self._stale = True

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()
        if self.projections is not None:
            for m, lin in self.projections.items():
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
            self._reset_features()
        if self.modality_logits is not None:
            nn.init.zeros_(self.modality_logits)  # equal view weights at the start
        logits = getattr(self, self._merge_logits_name)
        if logits is not None:
            nn.init.zeros_(logits)  # equal graph weights at the start
        self._cached, self._stale = None, True

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        self._cached, self._stale = None, True  # the learned graph follows the parameters
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def start_epoch(self, epoch: int) -> None:
        """Rebuild the learned graph at the next training forward pass."""
        self._stale = True

    # ------------------------------------------------------------------ weights
    def view_weights(self) -> Tensor:
        """alpha over the content views: softmax of the view logits, or equal (constant)."""
        if self.modality_logits is not None:
            return torch.softmax(self.modality_logits, 0)
        n = max(len(self.modalities), 1)
        dev = self.lightgcn.item_embedding.weight.device
        return torch.full((n,), 1.0 / n, device=dev)

    def modality_weights(self) -> dict[str, float]:
        """Current weights of the content views (LATTICE: modalities)."""
        w = self.view_weights().detach().cpu().tolist()
        return {m: float(v) for m, v in zip(self.modalities, w)}

    def merge_weights(self) -> Tensor:
        """w over the item graphs in use (content first, then co-interaction),
        differentiable when learned; ``[1.]`` for a single graph."""
        logits = getattr(self, self._merge_logits_name)
        if logits is not None:
            return torch.softmax(logits, 0)
        return self.fixed_weights


    # ------------------------------------------------------------------ the content structure
    def build_item_graph(self) -> tuple[SparsePattern, Tensor]:
        r"""The learned content structure A of the module doc from the current
        parameters: its pattern and its values (differentiable when gradients are enabled).

        By linearity the normalisation of the learned part is applied per entry before
        the graphs are summed, so one union of all patterns (learned and original)
        gives A directly: :math:`D^{-1/2}(\sum_m \alpha_m \tilde S_m)D^{-1/2} =
        \sum_m \alpha_m D^{-1/2} \tilde S_m D^{-1/2}` with the degrees D of the sum.
        """
        if not self.learned:
            raise ConfigError("build_item_graph: this model's content structure is fixed (learned=False)")
        assert self.projections is not None
        w = self.view_weights()
        n = self.n_items
        rows, cols, vals = [], [], []
        deg = None
        for g, m in enumerate(self.modalities):
            z = unit_rows(self.projections[m](self._features(m)))  # exact at any feature scale
            pattern = SparsePattern.from_indices(*knn_neighbours(z.detach(), self.k, include_self=self.include_self), n)
            v = w[g] * pattern_dot(pattern, z, z).clamp_min(0.0)
            part = torch.zeros(n, dtype=v.dtype, device=v.device).index_add(0, pattern.rows, v)
            deg = part if deg is None else deg + part
            rows.append(pattern.rows)
            cols.append(pattern.cols)
            vals.append(v)
        assert deg is not None
        inv = inv_sqrt_degree(deg)
        vals = [(1.0 - self.lambda_coeff) * v * inv[r] * inv[c] for v, r, c in zip(vals, rows, cols)]
        for g, m in enumerate(self.modalities):
            op = module_pattern(self, f"original_{m}")
            rows.append(op.rows)
            cols.append(op.cols)
            vals.append(self.lambda_coeff * w[g] * getattr(self, f"original_{m}_values"))
        merged, pos = SparsePattern.from_union(torch.cat(rows), torch.cat(cols), n)
        values = torch.zeros(merged.nnz, dtype=vals[0].dtype, device=w.device).index_add(0, pos, torch.cat(vals))
        return merged, values

    def _content_step(self) -> Callable[[Tensor], Tensor]:
        """``h -> A h`` for this forward pass (see the module doc for when A is rebuilt)."""
        if not self.learned:
            return lambda x: propagate(self.content_adj, x, adj_t=self.content_adj_t)
        if self.training and (self._stale or self._cached is None):
            pattern, values = self.build_item_graph()
            const = values.detach()
            self._cached = (pattern.matrix(const), pattern.transpose(const))
            self._stale = False
            return lambda x: pattern_spmm(pattern, values, x)
        if self.training:
            adj, adj_t = self._cached  # type: ignore[misc]
        else:
            with torch.no_grad():
                pattern, values = self.build_item_graph()
            adj, adj_t = pattern.matrix(values), pattern.transpose(values)
        return lambda x: propagate(adj, x, adj_t=adj_t)

    def _content_matrix(self) -> Tensor:
        """A from the current parameters as a detached torch sparse CSR tensor."""
        if not self.learned:
            return self.content_adj
        with torch.no_grad():
            pattern, values = self.build_item_graph()
            return pattern.matrix(values)

    # ------------------------------------------------------------------ the item branch
    def item_graph(self) -> Tensor:
        """The graph the item branch propagates over, from the current parameters, as a
        detached torch sparse CSR tensor: A, Ê^c, or w_A A + w_c Ê^c (Ê^c formed
        explicitly). For inspection and export."""
        with torch.no_grad():
            mats = []
            if self.has_content:
                mats.append(self._content_matrix())
            if self.cooccur_op is not None:
                mats.append(self.cooccur_op.matrix())
            return mats[0] if len(mats) == 1 else weighted_sparse_sum(mats, self.merge_weights())

    def item_propagate(self, h: Tensor | None = None) -> Tensor:
        """h^{L'}: h^t = A h^{t-1}, Ê^c h^{t-1} or w_A A h^{t-1} + w_c Ê^c h^{t-1}, from
        h^0 = LightGCN's layer-0 item embeddings (or ``h``)."""
        h = self.lightgcn.item_embedding.weight if h is None else h
        ops: list[Callable[[Tensor], Tensor]] = []
        if self.has_content:
            ops.append(self._content_step())
        if self.cooccur_op is not None:
            ops.append(self.cooccur_op)
        if len(ops) == 1:
            for _ in range(self.item_layers):
                h = ops[0](h)
            return h
        w = self.merge_weights()
        for _ in range(self.item_layers):
            h = w[0] * ops[0](h) + w[1] * ops[1](h)
        return h

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """BPR + L2: on the layer-0 embeddings (``reg_on="layer0"``) or, as the reference
        code, on the batch's final embeddings: reg / (2B) sum(|e_u|^2 + |e_i+|^2 + |e_i-|^2)."""
        if self.reg_on == "layer0":
            return super().loss(users, pos_items, neg_items)
        user_emb, item_emb = self.embeddings()
        u, p, n = user_emb[users], item_emb[pos_items], item_emb[neg_items]
        return bpr_loss((u * p).sum(-1), (u * n).sum(-1)) + self.reg_weight * l2_penalty(u, p, n)


class LATTICE(LatentStructureRecommender):
    """LATTICE: LightGCN plus an item branch over learned + original modality graphs.

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised user-item bipartite adjacency (as for :class:`LightGCN`; may be
            non-symmetric, e.g. the reference's D^-1 (A + I)).
        original_graphs: ``{modality: normalised top-k cosine graph of its raw features}``.
        features: ``{modality: raw item features (n_items x d_m)}``, same keys.
        embedding_dim: d of the ID embeddings and of the projections (paper: 64).
        num_layers: LightGCN layers L.
        item_layers: item-graph layers L' (paper: 1).
        reg_weight: L2 coefficient (on the embeddings ``reg_on`` names).
        k: neighbours per item of the learned graphs (paper: 10).
        lambda_coeff: weight of the original graphs in the skip mix (paper: 0.9).
        include_self: each item is one of its own k neighbours in the learned graphs
            (reference-code parity; build the original graphs the same way).
        train_features: fine-tune the feature tables (the reference does); otherwise
            they are constants.
        cooccur_graph: the normalised co-interaction graph Ê^c (n_items x n_items torch
            sparse, or its factors as :class:`graphrec.nn.FactoredCooccurrence`): merged
            with A (module doc); None: LATTICE as published.
        cf_weights: ``"learned"`` (softmax of two logits) or ``"fixed"`` (1/2, 1/2: the
            "LATTICE with CF" of MM-GEF's tables) weights of A and Ê^c.
        reg_on: ``"layer0"``: L2 on the batch's layer-0 embeddings (LightGCN's);
            ``"final"``: on its final embeddings e_u, e_i (the reference code's).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        original_graphs: Mapping[str, Tensor],
        features: Mapping[str, Tensor],
        *,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        reg_weight: float = 1e-4,
        k: int = 10,
        lambda_coeff: float = 0.9,
        include_self: bool = False,
        train_features: bool = True,
        cooccur_graph: Tensor | FactoredCooccurrence | None = None,
        cf_weights: str = "learned",
        reg_on: str = "layer0",
    ) -> None:
        if not features:
            raise ConfigError("LATTICE needs at least one modality of item features")
        if cf_weights not in CF_WEIGHTS:
            raise ConfigError(f"cf_weights {cf_weights!r} is not one of {', '.join(CF_WEIGHTS)}")
        super().__init__(
            n_users, n_items, adj, original_graphs, features,
            embedding_dim=embedding_dim, num_layers=num_layers, item_layers=item_layers, reg_weight=reg_weight,
            k=k, lambda_coeff=lambda_coeff, include_self=include_self, train_features=train_features,
            learned=True, view_logits=True, cooccur_graph=cooccur_graph, merge_weights=cf_weights,
            merge_logits_name="cf_logits", reg_on=reg_on,
        )
        self.reset_parameters()

    def cf_graph_weights(self) -> Tensor | None:
        """beta over (A, Ê^c): softmax(b), differentiable, or the fixed (1/2, 1/2); None
        without the co-interaction graph."""
        return None if self.cooccur_op is None else self.merge_weights()

    def cf_weights(self) -> dict[str, float] | None:
        """Current weights of LATTICE's graph and the co-interaction graph
        (``{"lattice": w, "cooccur": w}``), None without the co-interaction graph."""
        beta = self.cf_graph_weights()
        if beta is None:
            return None
        w = beta.detach().cpu().tolist()
        return {"lattice": float(w[0]), "cooccur": float(w[1])}

    def log_values(self) -> dict[str, float]:
        out = {f"modality_weight_{m}": w for m, w in self.modality_weights().items()}
        if self.cf_logits is not None:  # fixed weights are not logged
            out["cf_weight"] = self.cf_weights()["cooccur"]  # type: ignore[index]
        return out

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, k={self.k}, "
            f"lambda_coeff={self.lambda_coeff}, item_layers={self.item_layers}, include_self={self.include_self}, "
            f"cooccur_graph={self.cooccur_op is not None}, cf_weights={self.merge_weighting!r}, reg_on={self.reg_on!r}"
        )
