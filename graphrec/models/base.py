"""The contract every top-k ranking model of graphrec follows.

A model is a ``torch.nn.Module`` that

* stores its hyper-parameters in ``__init__`` and ends it with ``reset_parameters()``
  (re-seeding then calling ``reset_parameters()`` reproduces the same weights);
* receives graphs and features as tensors (buffers), never reads files or picks a
  device (the caller moves it with ``.to(device)``);
* returns the training loss of a batch of (user, positive, negative) triples with
  :meth:`loss`;
* exposes :meth:`embeddings` (final user and item representations) and :meth:`scorer`,
  which does the expensive propagation once and returns a closure scoring all items (or
  the given candidates only) for a batch of users (used by the evaluator and
  ``recommend``); a model that scores with other embeddings than it trains with
  (FREEDOM: the full user-item graph) overrides :meth:`scoring_embeddings`, not
  :meth:`scorer`;
* may override :meth:`start_epoch` (per-epoch work, called by the fit loop) and
  :meth:`log_values` (scalars recorded every epoch).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.nn import bpr_loss, l2_penalty

__all__ = ["FeatureTables", "ItemGraphRecommender", "Recommender", "Scorer", "candidate_index",
           "inner_product_scorer"]

Scorer = Callable[[Tensor], Tensor]


def candidate_index(candidates: Tensor, n_items: int, device: torch.device) -> Tensor:
    """``candidates`` as int64 item indices on ``device``, checked: a 1-D tensor of
    indices in ``[0, n_items)`` (a one-line :class:`ConfigError` otherwise)."""
    cand = torch.as_tensor(candidates, device=device)
    if cand.dim() != 1 or cand.dtype == torch.bool or cand.is_floating_point() or cand.is_complex():
        raise ConfigError(f"candidates must be a 1-D tensor of item indices, got {cand.dtype} of shape "
                          f"{tuple(cand.shape)}")
    cand = cand.long()
    if cand.numel() and (int(cand.min()) < 0 or int(cand.max()) >= n_items):
        raise ConfigError(f"candidates hold indices outside [0, {n_items}): pass item indices, not ids")
    return cand


def inner_product_scorer(user_emb: Tensor, item_emb: Tensor, candidates: Tensor | None = None) -> Scorer:
    """``users -> user_emb[users] @ item_emb.T`` (B x n_items), or of the ``candidates``'
    rows only (B x len(candidates), checked by :func:`candidate_index`), the item rows
    sliced and transposed once."""
    if candidates is not None:
        item_emb = item_emb.index_select(0, candidate_index(candidates, item_emb.shape[0], item_emb.device))
    item_t = item_emb.t().contiguous()
    return lambda users: user_emb[users] @ item_t


class Recommender(nn.Module):
    """Base class of the top-k ranking models (inner-product scores)."""

    n_users: int
    n_items: int
    #: whether :meth:`loss` couples the triples of a step (in-batch negatives, a norm over
    #: the whole batch, a dropout mask drawn for the batch), so that it is not the mean of
    #: per-triple terms. Under ``--nproc`` each rank then computes the whole step's loss
    #: (the same training as one process, without the per-triple saving) instead of its
    #: 1/N share (:func:`graphrec.train.fit.fit`). A property where a hyper-parameter decides.
    couples_batch: bool = False

    def reset_parameters(self) -> None:  # pragma: no cover - abstract
        """(Re-)initialise every trainable parameter as the model's paper does; the
        constructor calls it, so the same ``torch.manual_seed`` gives the same model."""
        raise NotImplementedError

    def embeddings(self) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Final user (n_users x d) and item (n_items x d) representations."""
        raise NotImplementedError

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:  # pragma: no cover
        """The training loss of a step's triples (user, positive item, sampled negative),
        each a LongTensor of the same length: a scalar, the model's objective (BPR plus
        its regularisers and auxiliary losses), the mean over the triples unless the model
        sets ``couples_batch``."""
        raise NotImplementedError

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores of (user, item) pairs: inner products of the final embeddings."""
        user_emb, item_emb = self.embeddings()
        return (user_emb[users] * item_emb[items]).sum(-1)

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        """Scores of (user, positive) and (user, negative) from one propagation."""
        user_emb, item_emb = self.embeddings()
        u = user_emb[users]
        return (u * item_emb[pos_items]).sum(-1), (u * item_emb[neg_items]).sum(-1)

    def start_epoch(self, epoch: int) -> None:
        """Called by the fit loop before each training epoch (``epoch`` counts from 1);
        models with per-epoch work (LATTICE rebuilds its learned graph) override it."""

    def log_values(self) -> dict[str, float]:
        """Scalars worth recording every epoch in the run record (e.g. learned
        attention weights over graphs); none by default."""
        return {}

    def item_graphs(self) -> dict[str, Tensor]:
        r"""The item-item graphs the model propagates over, by name (one per view where
        it has several, e.g. one per modality): each the operator :math:`M` of
        :math:`h^t = M h^{t-1}` with the current (learned) weights applied, a detached
        torch sparse CSR tensor (n_items x n_items) on the model's device, for inspection
        and export (``graphrec export-graph``). None by default."""
        return {}

    def user_graphs(self) -> dict[str, Tensor]:
        """Likewise the user-user graphs (n_users x n_users) the model propagates over,
        by name (DRAGON's co-occurrence graph); none by default. Names are distinct from
        :meth:`item_graphs`'s."""
        return {}

    def graph_merges(self) -> dict[str, dict[str, Any]]:
        """How the graphs of :meth:`item_graphs` that merge several modality graphs with
        FIXED (not learned) weights do so, by view: ``{"fixed_weights": {modality:
        weight}}`` (a weighted sum: FREEDOM, DRAGON) or ``{"max_pooled": [modality,
        ...]}`` (an entry-wise maximum: SMORE's fusion graph). Recorded by ``graphrec
        export-graph`` beside the learned weights (:meth:`log_values`); none by default."""
        return {}

    def scoring_embeddings(self) -> tuple[Tensor, Tensor]:
        """The user and item representations whose inner products :meth:`scorer` serves:
        :meth:`embeddings` by default; a model that trains on other representations than
        it scores with (FREEDOM propagates over a pruned graph in training and over the
        full graph when scoring) overrides this."""
        return self.embeddings()

    @torch.no_grad()
    def scorer(self, candidates: Tensor | None = None) -> Scorer:
        """Propagate once; return ``users -> scores`` of every item (B x n_items) or, given
        ``candidates`` (item indices, a 1-D LongTensor), of those items only (B x
        len(candidates), in their order): the candidates' item rows are sliced once, so a
        batch costs len(candidates) columns, not n_items."""
        return inner_product_scorer(*self.scoring_embeddings(), candidates)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}"


class ItemGraphRecommender(Recommender):
    r"""LightGCN plus an item-item branch (LATTICE, MM-GEF): the subclass holds the
    LightGCN module as ``self.lightgcn`` and implements :meth:`item_propagate`
    (h^{L'} over its item graph, starting from LightGCN's layer-0 item embeddings).

    .. math::
        e_u = \mathrm{LightGCN}_u, \quad
        e_i = \mathrm{LightGCN}_i + h^{L'}_i / \|h^{L'}_i\|, \qquad
        \mathcal{L} = \mathrm{BPR} + \lambda\, \mathrm{L2}(e^{(0)}_u, e^{(0)}_{i^+}, e^{(0)}_{i^-})
    """

    lightgcn: nn.Module
    reg_weight: float

    def item_propagate(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_graph(self) -> Tensor:  # pragma: no cover - abstract
        r"""The item graph the branch propagates over, as one operator :math:`M` with the
        current (learned) weights applied, :math:`h^t = M h^{t-1}`: a detached torch
        sparse CSR tensor (n_items x n_items) on the model's device, for inspection and
        export (``graphrec export-graph``)."""
        raise NotImplementedError

    def item_graphs(self) -> dict[str, Tensor]:
        """``{"item": item_graph()}``."""
        return {"item": self.item_graph()}

    def embeddings(self) -> tuple[Tensor, Tensor]:
        user_emb, item_emb = self.lightgcn.embeddings()
        return user_emb, item_emb + F.normalize(self.item_propagate(), p=2, dim=1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        pos, neg = self.pairwise_scores(users, pos_items, neg_items)
        lg = self.lightgcn
        reg = l2_penalty(lg.user_embedding(users), lg.item_embedding(pos_items), lg.item_embedding(neg_items))
        return bpr_loss(pos, neg) + self.reg_weight * reg


class FeatureTables:
    """Mixin for models that read raw item feature tables, fine-tuned (LATTICE's, FREEDOM's
    and MGCN's reference codes train them as embeddings initialised with the features) or
    constant. Fine-tuned: ``self.feature_tables[m]`` (an ``nn.ParameterDict``, state-dict
    keys ``feature_tables.<m>``); constant: ``self.feature_tables`` is None and the table
    is the non-persistent buffer ``features_<m>``. Mix in before ``nn.Module``."""

    def _register_features(
        self, features: Mapping[str, Tensor], modalities: Iterable[str], n_items: int, fine_tune: bool
    ) -> dict[str, int]:
        """Store ``features[m]`` for every modality (shape-checked); returns their widths."""
        self._initial_features: dict[str, Tensor] = {}
        self.feature_tables = nn.ParameterDict() if fine_tune else None
        dims = {}
        for m in modalities:
            x = features[m]
            if x.dim() != 2 or x.shape[0] != n_items:
                raise ConfigError(f"features[{m!r}] have shape {tuple(x.shape)}, expected ({n_items}, d)")
            x = x.detach().float()
            dims[m] = int(x.shape[1])
            if self.feature_tables is not None:
                self._initial_features[m] = x.clone()
                self.feature_tables[m] = nn.Parameter(x.clone())
            else:
                self.register_buffer(f"features_{m}", x, persistent=False)  # type: ignore[attr-defined]
        return dims

    def _reset_features(self) -> None:
        """Fine-tuned tables back to the raw features."""
        if self.feature_tables is not None:
            with torch.no_grad():
                for m, table in self.feature_tables.items():
                    table.copy_(self._initial_features[m])

    def _features(self, m: str) -> Tensor:
        """The current table of modality ``m``."""
        if self.feature_tables is not None:
            return self.feature_tables[m]
        return getattr(self, f"features_{m}")
