r"""The cold-item path: scores for items without training interactions, for any ranking
model whose scores are inner products of final embeddings (LightGCN, MF, MM-GEF,
LATTICE, FREEDOM, ...). Beyond the papers: MM-GEF and LATTICE stop at propagating
untrained ID embeddings of such items over the content graph.

An item without training interactions ("unseen": the cold-start items, items that arrive
after training) has an ID embedding that no positive pair ever trained; graph models
reach it only through propagation, and BPR keeps pushing it down as a negative. The
path gives such items a representation built from what they do have, their content,
in two parts:

* a content tower (DropoutNet: Volkovs, Yu, Poutanen, "DropoutNet: Addressing Cold
  Start in Recommender Systems", NeurIPS 2017): an MLP :math:`f(x_i) =
  W_2 \tanh(W_1 x_i + b_1) + b_2` from the item's early-fused content feature to the
  model's embedding space, trained on items with their ID representation dropped
  (DropoutNet's input dropout, here over every pair of the sample, see below): the
  training positives are warm items; sampled negatives may be cold items unless
  ``--negatives warm`` (their content then shapes the tower through the negative's
  pair and the L2 term; no interaction of theirs is used);
* the item-graph neighbour term: the user's training items :math:`R_u` among the
  item's in-neighbours on the content kNN graph S (raw cosines, top-k of every item),
  :math:`\mathrm{nb}(u, i) = \sum_{j \in R_u} S_{ji}` (the content item-kNN of
  :class:`graphrec.models.cb.ContentKNN`: item-based kNN, Sarwar et al. WWW 2001),
  weighted by a learned scalar :math:`\gamma`.

Scores:

.. math::
    \hat y_{ui} = e_u^\top e_i \ \text{(item seen in training)}, \qquad
    \hat y_{ui} = e_u^\top f(x_i) + \gamma\, \mathrm{nb}(u, i) \ \text{(unseen)},

with :math:`e_u, e_i` the base model's final embeddings. Training (``objective``) adds a
loss on a uniform sample of every ``path_every``-th batch (its first ``path_triples``
triples; batches are shuffled), with the base model's scores :math:`s_{ui} = e_u^\top e_i` as constants:

* ``"regress"`` (default; DropoutNet's objective, which reconstructs the preference
  model's scores from content): :math:`\mathcal L_{path} = \mathrm{mean}_{(u,i)}
  (c_{ui} - s_{ui})^2` over the sample's (user, positive) and (user, negative) pairs of
  seen items, :math:`c` the path's score. The path learns the model's own scale, so unseen
  items compete with seen ones on equal terms.
* ``"rank"``: BPR over the three pairs of a triple in which at least one item is
  represented by the path (the expectation of DropoutNet's dropout of the ID input over
  the pair's two items), :math:`\tfrac13[\ell(c_{ui^+}, c_{ui^-}) + \ell(c_{ui^+},
  s_{ui^-}) + \ell(s_{ui^+}, c_{ui^-})]`, :math:`\ell(a, b) = -\log\sigma(a - b)`, with
  :math:`s = c` for unseen negatives (docs/models/cold-start.md compares the two).

Both add :math:`\lambda \frac{1}{2B}\sum \|f(x)\|^2`. The base model's own loss is
unchanged and the path's loss does not reach its parameters (``detach``), so the warm
items' scores are exactly the base model's (tested).

A NEW item (after training; features only) gets the same score as an unseen catalogue
item: :math:`f(x)` needs nothing else, and its in-neighbours on S are the catalogue items
j whose k-th neighbour similarity it reaches, :math:`\cos(x_j, x) \ge \min_l S_{jl}`
(:meth:`ColdItemRecommender.new_item_scorer`).

Cost per trained batch (every ``path_every``-th): the tower on ``2 path_triples`` items and the neighbour term of as many
pairs (in-neighbours looked up in a boolean mask of the sampled users' histories); per
batch of users scored, the batch's sparse histories times the unseen columns of S
(O(batch x history x k), extracted once per scorer); new items: their neighbour lists once
per scorer (slices of catalogue rows), then the same sparse product. Nothing n x n, no
(batch x n_items) history rows, no dense (n_items x new items) matrix.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import Recommender, Scorer, candidate_index, inner_product_scorer
from graphrec.models.cb import ContentKNN, SparseRows
from graphrec.nn import bpr_loss, l2_penalty, unit_rows

__all__ = ["COLD_PATHS", "OBJECTIVES", "ColdItemRecommender", "unwrap"]

#: ``none``: the base model alone; ``content``: the path of the module doc
COLD_PATHS = ("none", "content")

#: how the path is trained: ``regress`` its scores onto the model's (DropoutNet), or
#: ``rank`` them with BPR against the model's (see the module doc)
OBJECTIVES = ("regress", "rank")


#: cosines recomputed here may differ from the stored graph's in the last float32 bits
_COSINE_TOLERANCE = 1e-5

#: cosines of new items computed at once (catalogue rows x new items) for their neighbour
#: lists: 16 MB of float32, whatever the catalogue's size
_SIMILARITY_SLICE = 1 << 22


def unwrap(model: Recommender) -> Recommender:
    """The base model of a :class:`ColdItemRecommender`, else ``model``."""
    return model.base if isinstance(model, ColdItemRecommender) else model


@contextmanager
def _captured_embeddings(model: Recommender, out: list) -> Iterator[None]:
    """Record the outputs of ``model.embeddings()`` while the block runs (the base loss's
    propagation is reused by the path instead of computed twice)."""
    original = model.embeddings

    def recording() -> tuple[Tensor, Tensor]:
        res = original()
        out.append(res)
        return res

    model.__dict__["embeddings"] = recording
    try:
        yield
    finally:
        del model.__dict__["embeddings"]


class ColdItemRecommender(Recommender):
    """A ranking model plus the cold-item path (module doc).

    Args:
        base: the model (scores = inner products of ``base.scoring_embeddings()``).
        features: early-fused content features of the catalogue (n_items x d_feat),
            the tower's input (the builder's early fusion, :func:`graphrec.graphs.fuse.fuse_features`).
        seen: boolean (n_items,): the item has training interactions.
        neighbours: the content item-kNN (:class:`ContentKNN`: training histories and
            the raw-cosine top-k graph S of ``features``).
        embedding_dim: width of the base model's final embeddings.
        hidden_dim: the tower's hidden width.
        reg_weight: L2 on the tower's outputs for the batch.
        objective: ``regress`` (DropoutNet's) or ``rank`` (module doc).
        path_triples: the path trains on the first this-many triples of a batch
            (batches are shuffled: a uniform sample), which bounds its cost per step.
        path_every: the path trains on every this-many-th batch (1: all), likewise.
        modalities: the modalities fused into ``features`` (provenance, for new items).
    """

    #: the path trains on the first ``path_triples`` triples of the step, and ``regress``
    #: averages over the seen items among them (Recommender.couples_batch)
    couples_batch = True

    def __init__(
        self,
        base: Recommender,
        features: Tensor,
        seen: Tensor,
        neighbours: ContentKNN,
        *,
        embedding_dim: int,
        hidden_dim: int = 64,
        reg_weight: float = 1e-4,
        objective: str = "regress",
        path_triples: int = 128,
        path_every: int = 2,
        modalities: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(f"cold path objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
        self.objective = objective
        if path_triples < 1:
            raise ConfigError(f"cold path: path_triples must be at least 1, got {path_triples}")
        self.path_triples = path_triples
        if path_every < 1:
            raise ConfigError(f"cold path: path_every must be at least 1, got {path_every}")
        self.path_every = path_every
        self._steps = 0  # training batches of this epoch (start_epoch resets it), for path_every
        self._base_loss_sum: Tensor = torch.zeros(())  # the base model's loss over them (log_values)
        #: the modalities fused into ``features`` (what new items must bring), when known
        self.cold_modalities = modalities
        n = base.n_items
        if features.dim() != 2 or features.shape[0] != n:
            raise ConfigError(f"cold path: features have shape {tuple(features.shape)}, expected ({n}, d)")
        if seen.shape != (n,):
            raise ConfigError(f"cold path: seen has shape {tuple(seen.shape)}, expected ({n},)")
        if neighbours.n_items != n or neighbours.n_users != base.n_users:
            raise ConfigError("cold path: the content item-kNN is for another catalogue")
        self.n_users = base.n_users
        self.n_items = n
        self.embedding_dim = embedding_dim
        self.reg_weight = reg_weight
        self.neighbours = neighbours
        self.register_buffer("features", features.detach().float(), persistent=False)
        self.register_buffer("seen", seen.bool(), persistent=False)
        self.register_buffer("unseen_items", torch.nonzero(~seen.bool()).view(-1), persistent=False)
        self.tower = nn.Sequential(nn.Linear(features.shape[1], hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, embedding_dim))
        self.gamma = nn.Parameter(torch.ones(()))
        # the k-th neighbour similarity of every item (the threshold a new item must reach
        # to enter its list); -inf for an item with fewer than k neighbours
        self.register_buffer("entry_threshold", _row_minimum(neighbours), persistent=False)
        # last: once set, unknown names resolve on the base model (__getattr__), and
        # register_buffer would take the base's own attributes (VBPR's ``features``) for ours
        self.base = base
        self._reset_path()  # the base model keeps the initialisation it was built with

    def reset_parameters(self) -> None:
        """The base model's parameters, then the path's."""
        self.base.reset_parameters()
        self._reset_path()

    def _reset_path(self) -> None:
        for layer in self.tower:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.gamma.fill_(1.0)

    # ------------------------------------------------------------------ the path
    def content_embeddings(self, x: Tensor) -> Tensor:
        """f(x): the tower on content features (m x d_feat) -> (m x d)."""
        return self.tower(x)

    def _path_scores(self, user_emb: Tensor, users: Tensor, items: Tensor) -> Tensor:
        """c_ui for pairs: e_u . f(x_i) + gamma nb(u, i)."""
        f = self.content_embeddings(self.features[items])
        nb = self.neighbours.pair_scores(users, items)
        return (user_emb * f).sum(-1) + self.gamma * nb, f

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        captured: list = []
        with _captured_embeddings(self.base, captured):
            base_loss = self.base.loss(users, pos_items, neg_items)
        self._steps += 1
        self._base_loss_sum = self._base_loss_sum + base_loss.detach()  # no host sync per step
        if (self._steps - 1) % self.path_every:
            return base_loss
        if captured:
            user_emb, item_emb = captured[0]
        else:  # a model whose loss does not call embeddings(): one more propagation
            with torch.no_grad():
                user_emb, item_emb = self.base.embeddings()
        # the path trains on the first path_triples triples of the (shuffled) batch:
        # its cost stays a small fraction of the base model's step
        b = min(users.numel(), self.path_triples)
        users, pos_items, neg_items = users[:b], pos_items[:b], neg_items[:b]
        u = user_emb[users].detach().repeat(2, 1)
        users2, items = users.repeat(2), torch.cat([pos_items, neg_items])
        c, f = self._path_scores(u, users2, items)
        s = (u * item_emb[items].detach()).sum(-1)
        seen = self.seen[items]
        if self.objective == "regress":
            # DropoutNet's objective: the path reproduces the model's scores of seen items
            err = (c - s).pow(2)
            path = (err * seen).sum() / seen.sum().clamp_min(1)
        else:
            s = torch.where(seen, s, c)  # what the model serves
            c_pos, c_neg, s_pos, s_neg = c[:b], c[b:], s[:b], s[b:]
            path = (bpr_loss(c_pos, c_neg) + bpr_loss(c_pos, s_neg) + bpr_loss(s_pos, c_neg)) / 3.0
        return base_loss + path + self.reg_weight * l2_penalty(f)

    # ------------------------------------------------------------------ serving
    def embeddings(self) -> tuple[Tensor, Tensor]:
        """The base model's embeddings with the unseen items' rows replaced by f(x_i).
        (The neighbour term is not an inner product of these: use :meth:`scorer`,
        ``forward`` or ``pairwise_scores`` for the served scores.)"""
        user_emb, item_emb = self.base.embeddings()
        idx = self.unseen_items
        if idx.numel():
            item_emb = item_emb.index_copy(0, idx, self.content_embeddings(self.features[idx]))
        return user_emb, item_emb

    def scoring_embeddings(self) -> tuple[Tensor, Tensor]:
        """Not defined: the served scores add the neighbour term to inner products (use
        :meth:`scorer`, ``forward`` or ``pairwise_scores``)."""
        raise NotImplementedError("the cold-item path's scores are not inner products of embeddings: use scorer()")

    def _served(self, user_emb: Tensor, item_emb: Tensor, users: Tensor, items: Tensor) -> Tensor:
        """Scores of (user, item) pairs as served: the model's for seen items, the path's otherwise."""
        s = (user_emb[users] * item_emb[items]).sum(-1)
        c, _ = self._path_scores(user_emb[users], users, items)
        return torch.where(self.seen[items], s, c)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self._served(*self.base.embeddings(), users, items)

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        user_emb, item_emb = self.base.embeddings()  # one propagation for both
        return (self._served(user_emb, item_emb, users, pos_items),
                self._served(user_emb, item_emb, users, neg_items))

    @torch.no_grad()
    def scorer(self, candidates: Tensor | None = None, new_items: Tensor | None = None) -> Scorer:
        """Scores of every item (or of the ``candidates`` only, B x len(candidates) in
        their order) for a batch of users: the base model's, with the unseen items'
        columns replaced by the path's. The base model propagates once (its
        :meth:`~graphrec.models.base.Recommender.scoring_embeddings` serve both terms).
        The neighbour term is computed for the unseen columns only: the batch's sparse
        histories times :math:`S_{:, unseen}` (extracted here, once per scorer),
        O(batch x history x k), never a (batch x n_items) history row times the whole
        graph.

        ``new_items``: the early-fused features (m x d) of items that are not in the
        catalogue; their m columns follow the catalogue's (or the candidates'), scored as
        :meth:`new_item_scorer` scores them, on the same propagation."""
        # the builder wraps models that score by inner products of their embeddings only
        # (attach_cold_path): one propagation serves both terms
        user_emb, item_emb = self.base.scoring_embeddings()
        catalogue = self._catalogue_scorer(user_emb, item_emb, candidates)
        if new_items is None:
            return catalogue
        fresh = self._new_item_scorer(user_emb, new_items)
        return lambda users: torch.cat([catalogue(users), fresh(users)], dim=1)

    def _catalogue_scorer(self, user_emb: Tensor, item_emb: Tensor, candidates: Tensor | None) -> Scorer:
        """:meth:`scorer` of the catalogue's items (or ``candidates``) on given embeddings."""
        cand = None if candidates is None else candidate_index(candidates, self.n_items, item_emb.device)
        base = inner_product_scorer(user_emb, item_emb, cand)
        if cand is None:
            idx = at = self.unseen_items  # the unseen items' columns
        else:
            at = torch.nonzero(~self.seen[cand]).view(-1)  # positions of the unseen candidates
            idx = cand[at]
        if not idx.numel():
            return base
        f_t = self.content_embeddings(self.features[idx]).t().contiguous()
        gamma = float(self.gamma)
        columns = self.neighbours.similarity_columns(idx)

        def score(users: Tensor) -> Tensor:
            s = base(users)
            cold = self.neighbours.history_product(users, columns, out=user_emb[users] @ f_t, scale=gamma)
            return s.index_copy_(1, at, cold)  # in place, without s[:, at]'s index temporaries

        return score

    @torch.no_grad()
    def new_item_scorer(self, features: Tensor) -> Scorer:
        r"""``users -> scores (B x m)`` of m items that are not in the catalogue, from their
        early-fused content features alone (fused as the catalogue's):
        the same scores they would get as unseen catalogue items (module doc). To rank
        them beside the catalogue's items, ``scorer(new_items=features)`` serves both on
        one propagation.

        Everything that does not depend on the users is computed here, once: the base
        model's user embeddings (one propagation), the tower's outputs f(x) and the new
        items' in-neighbours on S as a sparse (n_items x m) matrix (catalogue item j ->
        new item x where :math:`\cos(x_j, x) \ge \min_l S_{jl}`), from the cosines of
        slices of catalogue rows, so no dense (n_items x m) matrix is held. A batch then
        costs B x d x m for the inner products plus its histories' sparse product."""
        user_emb, _ = self.base.scoring_embeddings()  # as scorer()'s: new items score as unseen ones
        return self._new_item_scorer(user_emb, features)

    def _new_item_scorer(self, user_emb: Tensor, features: Tensor) -> Scorer:
        """:meth:`new_item_scorer` on given user embeddings."""
        if features.dim() != 2 or features.shape[1] != self.features.shape[1]:
            raise ConfigError(
                f"new items have features of shape {tuple(features.shape)}, expected (m, {self.features.shape[1]})"
            )
        x = features.to(self.features).float()
        f_t = self.content_embeddings(x).t().contiguous()
        gamma = float(self.gamma)
        in_neighbours = self._new_item_neighbours(x)

        def score(users: Tensor) -> Tensor:
            return self.neighbours.history_product(users, in_neighbours, out=user_emb[users] @ f_t, scale=gamma)

        return score

    @torch.no_grad()
    def new_item_scores(self, users: Tensor, features: Tensor) -> Tensor:
        """Scores (B x m) of m items that are not in the catalogue (:meth:`new_item_scorer`;
        to score several batches against the same items, build that once)."""
        return self.new_item_scorer(features)(users)

    def _new_item_neighbours(self, x: Tensor) -> SparseRows:
        r"""The new items (rows of ``x``) among the catalogue items' neighbour lists: the
        sparse (n_items x m) matrix of :math:`\cos(x_j, x)` where it reaches j's entry
        threshold, computed over slices of catalogue rows (at most
        :data:`_SIMILARITY_SLICE` cosines at a time)."""
        n, m = self.n_items, x.shape[0]
        target = unit_rows(x).t()
        # catalogue item j lists the new item when the similarity reaches its k-th neighbour's
        # (within the rounding of the stored cosines: the k-th neighbour's own value must pass)
        threshold = self.entry_threshold - _COSINE_TOLERANCE
        step = max(1, _SIMILARITY_SLICE // max(m, 1))
        rows, cols, vals = [], [], []
        for a in range(0, n, step):
            sim = unit_rows(self.features[a:a + step]) @ target
            r, c = torch.nonzero(sim >= threshold[a:a + step].unsqueeze(1), as_tuple=True)
            rows.append(r + a)
            cols.append(c)
            vals.append(sim[r, c])
        return SparseRows.from_entries(torch.cat(rows), torch.cat(cols), torch.cat(vals), n, m)

    def log_values(self) -> dict[str, float]:
        """The base model's values, the path's γ, and ``base_loss``: the base model's own
        loss this epoch (mean per batch), which the training loss adds the path's terms to,
        so that runs with and without the path compare on it."""
        out = dict(self.base.log_values())
        out["cold_gamma"] = float(self.gamma.detach())
        if self._steps:
            out["base_loss"] = float(self._base_loss_sum) / self._steps
        return out

    def start_epoch(self, epoch: int) -> None:
        # per epoch, so a run resumed at an epoch start trains the path on the same batches
        self._steps = 0
        self._base_loss_sum = torch.zeros(())
        self.base.start_epoch(epoch)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        # through the base model's own load_state_dict, so that caches following its
        # parameters are dropped (LATTICE's learned graph)
        self.base.load_state_dict(self.base.state_dict())
        return result

    def item_graphs(self) -> dict[str, Tensor]:
        """The base model's item graphs (the content path propagates over none)."""
        return self.base.item_graphs()

    def user_graphs(self) -> dict[str, Tensor]:
        """The base model's user graphs."""
        return self.base.user_graphs()

    def __getattr__(self, name: str) -> Any:
        # nn.Module keeps parameters, buffers and modules apart; everything else the base
        # model offers (item_graph(), attention_weights(), ...) is reachable through the wrapper
        try:
            return super().__getattr__(name)
        except AttributeError:
            base = self._modules.get("base")
            if base is None:
                raise
            return getattr(base, name)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}, unseen={int(self.unseen_items.numel())}"


def _row_minimum(knn: ContentKNN) -> Tensor:
    """Per item j, the smallest similarity in its kNN list S_j (rows of S, held
    transposed by ContentKNN); -inf for rows with fewer entries than the longest."""
    s = knn.similarity_t.to_sparse_coo().coalesce()
    cols, vals = s.indices()[1], s.values()  # S^T (i, j): entry S_ji; row j of S = column j here
    n = knn.n_items
    count = torch.bincount(cols, minlength=n)
    out = torch.full((n,), float("inf"), dtype=vals.dtype).scatter_reduce(0, cols, vals, reduce="amin")
    full = int(count.max()) if count.numel() else 0
    out[count < full] = -float("inf")
    return out
