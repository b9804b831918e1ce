r"""LATTICE: "Mining Latent Structures for Multimedia Recommendation" (Zhang, Zhu, Liu,
Wu, Wang, Wang; ACM MM 2021). MM-GEF's main baseline (paper 002, Tables 1-3).

For every modality m with raw item features :math:`X_m`, LATTICE keeps two item graphs.

* The ORIGINAL graph (section 3.1.1, fixed; built from data by
  :func:`graphrec.train.builders.lattice.build_lattice`, never here): the top-k cosine graph of
  :math:`X_m`, :math:`\hat S_m = D^{-1/2} S_m D^{-1/2}` with the row sums :math:`D`.
* The LEARNED graph (section 3.1.2): the features are projected by a trainable linear
  layer, :math:`\tilde x_{i,m} = W_m x_{i,m} + b_m`, and the top-k cosine graph
  :math:`\tilde S_m` of the projections is rebuilt (values :math:`\max(0, \cos)` on the
  k nearest neighbours).

Modalities are combined with softmax weights of one learnable logit each (eq. 7), the
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

LATTICE with the co-interaction graph (``cooccur_graph``; MM-GEF's Tables 2 and 3 run
"LATTICE" with CF, and its cold-start comparison uses that row): the normalised
co-interaction graph :math:`\hat E^c` of MM-GEF (training interactions only) joins A
through MM-GEF's soft attention, one learnable logit per graph (our reading; the paper
does not say how CF enters LATTICE):

.. math::
    \beta = \mathrm{softmax}(b), \qquad h^{t} = \beta_A\, A h^{t-1} + \beta_c\, \hat E^c h^{t-1} .

Schedule (as the authors' code): the learned graph is rebuilt at the first training
batch of every epoch (:meth:`LATTICE.start_epoch` marks it stale; the fit loop calls
it), with gradients into the projections, the modality logits and (``train_features``)
the feature tables; the other batches of the epoch reuse it as a constant. For
evaluation the graph is rebuilt from the current parameters, so a saved model scores
the same after reloading.

Differences from the authors' code, all for scale and none changing the model:
everything is sparse and chunked (the reference forms dense n x n similarity matrices:
at 60,000 items one such matrix is 14 GB); the neighbour search runs without gradient, blocked, on the model's device
(:func:`graphrec.graphs.knn.knn_neighbours`) and only the O(n k) edge values are
differentiable (:func:`graphrec.nn.pattern_dot`, :func:`graphrec.nn.pattern_spmm`);
negative cosines on the kNN pattern are clipped to 0 so every degree stays positive.
The reference keeps each item as its own nearest neighbour; ``include_self=True``
reproduces that (one of the k slots is the item itself, value 1), the default excludes it.

Shapes: ``adj`` (n_users + n_items) square torch sparse; ``original_graphs[m]``
(n_items x n_items) torch sparse, already normalised; ``features[m]`` (n_items x d_m).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.graphs.knn import knn_neighbours
from graphrec.models.base import ItemGraphRecommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import (
    FactoredCooccurrence,
    SparsePattern,
    cooccurrence_operator,
    inv_sqrt_degree,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    propagate,
    register_pattern,
    weighted_sparse_sum,
)

__all__ = ["LATTICE"]


class LATTICE(ItemGraphRecommender):
    """LATTICE: LightGCN plus an item branch over learned + original modality graphs.

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised user-item bipartite adjacency (as for :class:`LightGCN`).
        original_graphs: ``{modality: normalised top-k cosine graph of its raw features}``.
        features: ``{modality: raw item features (n_items x d_m)}``, same keys.
        embedding_dim: d of the ID embeddings and of the projections (paper: 64).
        num_layers: LightGCN layers L.
        item_layers: item-graph layers L' (paper: 1).
        reg_weight: L2 coefficient on the batch's layer-0 embeddings.
        k: neighbours per item of the learned graphs (paper: 10).
        lambda_coeff: weight of the original graphs in the skip mix (paper: 0.9).
        include_self: each item is one of its own k neighbours in the learned graphs
            (reference-code parity; build the original graphs the same way).
        train_features: fine-tune the feature tables (the reference does); otherwise
            they are constants.
        cooccur_graph: the normalised co-interaction graph Ê^c (n_items x n_items torch
            sparse, or its factors as :class:`graphrec.nn.FactoredCooccurrence`): merged
            with A by learned softmax weights (module doc); None: LATTICE as published.
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
    ) -> None:
        super().__init__()
        if not features:
            raise ConfigError("LATTICE needs at least one modality of item features")
        if set(features) != set(original_graphs):
            raise ConfigError(
                f"features ({', '.join(features)}) and original_graphs ({', '.join(original_graphs)}) "
                "must name the same modalities"
            )
        if not 0.0 <= lambda_coeff <= 1.0:
            raise ConfigError(f"lambda_coeff must be in [0, 1], got {lambda_coeff}")
        if item_layers < 1:
            raise ConfigError(f"item_layers must be at least 1, got {item_layers}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.reg_weight = reg_weight
        self.k = k
        self.lambda_coeff = lambda_coeff
        self.include_self = include_self
        self.train_features = train_features
        self.modalities: tuple[str, ...] = tuple(features)
        self.lightgcn = LightGCN(
            n_users, n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=reg_weight
        )

        self._initial_features: dict[str, Tensor] = {}
        self.feature_tables = nn.ParameterDict() if train_features else None
        self.projections = nn.ModuleDict()
        for m in self.modalities:
            x = features[m]
            if x.dim() != 2 or x.shape[0] != n_items:
                raise ConfigError(f"features[{m!r}] have shape {tuple(x.shape)}, expected ({n_items}, d)")
            x = x.detach().float()
            if self.feature_tables is not None:
                self._initial_features[m] = x.clone()
                self.feature_tables[m] = nn.Parameter(x.clone())
            else:
                self.register_buffer(f"features_{m}", x, persistent=False)
            self.projections[m] = nn.Linear(x.shape[1], embedding_dim)
            g = original_graphs[m]
            if tuple(g.shape) != (n_items, n_items):
                raise ConfigError(f"original_graphs[{m!r}] has shape {tuple(g.shape)}, expected {(n_items, n_items)}")
            coo = g.to_sparse_coo().coalesce()
            pattern = SparsePattern.from_indices(coo.indices()[0], coo.indices()[1], n_items)
            register_pattern(self, f"original_{m}", pattern)
            # from_indices keeps the coalesced (row-major) order: values align
            self.register_buffer(f"original_{m}_values", coo.values().float(), persistent=False)
        self.modality_logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.cooccur_op = None if cooccur_graph is None else cooccurrence_operator(cooccur_graph, n_items)
        self.cf_logits = nn.Parameter(torch.zeros(2)) if cooccur_graph is not None else None  # (A, Ê^c)
        self._cached: tuple[Tensor, Tensor] | None = None  # (graph, its transpose), constants
        self._stale = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()
        for m, lin in self.projections.items():
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
            if self.feature_tables is not None:
                with torch.no_grad():
                    self.feature_tables[m].copy_(self._initial_features[m])
        nn.init.zeros_(self.modality_logits)  # equal modality weights at the start
        if self.cf_logits is not None:
            nn.init.zeros_(self.cf_logits)
        self._cached, self._stale = None, True

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        self._cached, self._stale = None, True  # the learned graph follows the parameters
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def start_epoch(self, epoch: int) -> None:
        """Rebuild the learned graph at the next training forward pass."""
        self._stale = True

    # ------------------------------------------------------------------ the item graph
    def modality_weights(self) -> dict[str, float]:
        """Current softmax weights of the modalities."""
        w = torch.softmax(self.modality_logits.detach(), 0).cpu().tolist()
        return {m: float(v) for m, v in zip(self.modalities, w)}

    def cf_graph_weights(self) -> Tensor | None:
        """beta = softmax(b) over (A, Ê^c), differentiable; None without the co-interaction graph."""
        return None if self.cf_logits is None else torch.softmax(self.cf_logits, 0)

    def cf_weights(self) -> dict[str, float] | None:
        """Current softmax weights of LATTICE's graph and the co-interaction graph
        (``{"lattice": w, "cooccur": w}``), None without the co-interaction graph."""
        beta = self.cf_graph_weights()
        if beta is None:
            return None
        w = beta.detach().cpu().tolist()
        return {"lattice": float(w[0]), "cooccur": float(w[1])}

    def log_values(self) -> dict[str, float]:
        out = {f"modality_weight_{m}": w for m, w in self.modality_weights().items()}
        cf = self.cf_weights()
        if cf is not None:
            out["cf_weight"] = cf["cooccur"]
        return out

    def _features(self, m: str) -> Tensor:
        if self.feature_tables is not None:
            return self.feature_tables[m]
        return getattr(self, f"features_{m}")

    def build_item_graph(self) -> tuple[SparsePattern, Tensor]:
        r"""The item graph A of the module doc from the current parameters: its pattern
        and its values (differentiable when gradients are enabled).

        By linearity the normalisation of the learned part is applied per entry before
        the graphs are summed, so one union of all patterns (learned and original)
        gives A directly: :math:`D^{-1/2}(\sum_m \alpha_m \tilde S_m)D^{-1/2} =
        \sum_m \alpha_m D^{-1/2} \tilde S_m D^{-1/2}` with the degrees D of the sum.
        """
        w = torch.softmax(self.modality_logits, 0)
        n = self.n_items
        rows, cols, vals = [], [], []
        deg = None
        for g, m in enumerate(self.modalities):
            z = F.normalize(self.projections[m](self._features(m)), dim=1)
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

    def item_graph(self) -> Tensor:
        """The graph the item branch propagates over, from the current parameters, as a
        detached torch sparse CSR tensor: A, or beta_A A + beta_c Ê^c with the
        co-interaction graph (Ê^c formed explicitly). For inspection and export."""
        with torch.no_grad():
            pattern, values = self.build_item_graph()
            a = pattern.matrix(values)
            beta = self.cf_graph_weights()
            return a if beta is None else weighted_sparse_sum([a, self.cooccur_op.matrix()], beta)

    def item_propagate(self) -> Tensor:
        """h^{L'} = A^{L'} h^0, or with the co-interaction graph (beta_A A + beta_c Ê^c)^{L'} h^0
        (see the module doc for when A is rebuilt)."""
        h = self.lightgcn.item_embedding.weight
        if self.training and (self._stale or self._cached is None):
            pattern, values = self.build_item_graph()
            const = values.detach()
            self._cached = (pattern.matrix(const), pattern.transpose(const))
            self._stale = False

            def step(x: Tensor) -> Tensor:
                return pattern_spmm(pattern, values, x)
        else:
            if self.training:
                adj, adj_t = self._cached  # type: ignore[misc]
            else:
                with torch.no_grad():
                    pattern, values = self.build_item_graph()
                adj, adj_t = pattern.matrix(values), pattern.transpose(values)

            def step(x: Tensor) -> Tensor:
                return propagate(adj, x, adj_t=adj_t)
        beta = self.cf_graph_weights()
        for _ in range(self.item_layers):
            h = step(h) if beta is None else beta[0] * step(h) + beta[1] * self.cooccur_op(h)
        return h

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, k={self.k}, "
            f"lambda_coeff={self.lambda_coeff}, item_layers={self.item_layers}, include_self={self.include_self}, "
            f"cooccur_graph={self.cf_logits is not None}"
        )
