r"""The contract every click-through-rate (CTR) model of graphrec follows, and the
encoders the models share.

A CTR model is a ``torch.nn.Module`` that

* takes a :class:`CTRSchema` (sizes, item content features and side-feature codes as
  tensors) plus plain typed hyper-parameters, and ends ``__init__`` with
  ``reset_parameters()`` (re-seeding then resetting reproduces the same weights);
* never reads files or picks a device (the caller moves it with ``.to(device)``);
* maps a :class:`CTRBatch` (user, candidate item, behaviour history) to one logit per
  sample with :meth:`CTRModel.forward`; :meth:`CTRModel.losses` returns the training
  loss (``"loss"``: BCE plus the model's own auxiliary terms) and its parts, which the
  fit loop logs per epoch;
* may expose a generator/discriminator pair trained by its own optimiser
  (:meth:`CTRModel.gan_parameters`, :meth:`CTRModel.discriminator_loss`,
  :meth:`CTRModel.generator_loss`; GMMF's Algorithm 1), a training-progress hook
  (:meth:`CTRModel.set_progress`, MARN's lambda schedule) and per-sample modality
  weights (:meth:`CTRModel.modality_attention`, the papers' Figure 4).

Graph enrichment (:class:`ItemGraphPropagation`): every model with an item ID embedding
table :math:`E \in \mathbb{R}^{n \times d}` can replace it by its propagation over
normalised item-item graphs :math:`\hat A_g` (content kNN, co-interaction, or both,
built from TRAINING data only), LightGCN-style with the layer mean keeping each item's
own embedding:

.. math::
    \hat A = \sum_g \alpha_g \hat A_g, \quad \alpha = \mathrm{softmax}(a), \qquad
    E' = \frac{1}{L + 1} \sum_{l=0}^{L} \hat A^{l} E .

By linearity :math:`\hat A h = \sum_g \alpha_g (\hat A_g h)`: one sparse product per
graph and layer (:func:`graphrec.nn.propagate`), no merged matrix, and the logits
:math:`a` are learned through the scalar weights. The propagated table is computed once
per forward pass; items enter the models through it (candidates and histories alike).

Only the batch's items are encoded: a forward pass computes the representations of the
batch's distinct candidate and history items (:func:`distinct_items`, then the
encoders' ``rows``) and gathers them, never a table over every item. The exception is
the propagated ID table: :math:`\hat A^{l} E` mixes every item's embedding, so it is
computed over all items (one sparse product per graph and layer, cheap next to the
content projections) and its rows gathered.

Item content features :math:`x_m` (frozen, e.g. CLIP) are rescaled to
:math:`\sqrt{d_m}\, x_m / \|x_m\|` (unit mean square per dimension, so reconstruction
losses and projections see the same scale for every encoder); an all-zero row (missing
content) stays zero.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.nn import propagate, unit_rows

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.data.ctr import CTRData, CTRSplit

__all__ = [
    "CTRBatch",
    "CTRSchema",
    "CTRModel",
    "MLP",
    "ItemGraphPropagation",
    "ItemIDEncoder",
    "item_tables_once",
    "SideEncoder",
    "ConcatItemEncoder",
    "UserEncoder",
    "distinct_items",
    "masked_mean",
    "normalized_features",
]


@dataclass
class CTRBatch:
    """A batch of CTR samples as tensors.

    Attributes:
        users: ``(B,)`` user indices.
        items: ``(B,)`` candidate item indices.
        history: ``(B, L)`` behaviour item indices, oldest first, ``-1`` at padding.
        props: ``(B, L)`` behaviour-property codes (time buckets or recency), 0 at padding.
        labels: ``(B,)`` float 0/1 (``None`` when predicting).
    """

    users: Tensor
    items: Tensor
    history: Tensor
    props: Tensor
    labels: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        return self.history >= 0

    @property
    def hist_index(self) -> Tensor:
        return self.history.clamp_min(0)

    def to(self, device: torch.device | str) -> "CTRBatch":
        return CTRBatch(
            self.users.to(device), self.items.to(device), self.history.to(device), self.props.to(device),
            None if self.labels is None else self.labels.to(device),
        )

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @classmethod
    def from_split(cls, split: "CTRSplit", index: np.ndarray | slice | None = None) -> "CTRBatch":
        """Samples ``index`` of a :class:`~graphrec.data.ctr.CTRSplit` (all by default)."""
        from graphrec.data.ctr import behaviour_properties

        s = split if index is None else split.subset(np.arange(len(split))[index])
        return cls(
            torch.from_numpy(s.users.astype(np.int64)),
            torch.from_numpy(s.items.astype(np.int64)),
            torch.from_numpy(s.history.astype(np.int64)),
            torch.from_numpy(behaviour_properties(s)),
            torch.from_numpy(s.labels.astype(np.float32)),
        )


@dataclass
class CTRSchema:
    """What a CTR model needs to know about the data (all tensors, no files).

    Attributes:
        n_users, n_items: sizes.
        item_features: ``{modality: (n_items, d_m) float}`` frozen content features.
        user_side: ``{field: (n_users,) long}`` categorical codes (0 = unknown).
        item_side: ``{field: (n_items, k) long}`` multi-valued codes, ``-1`` padding.
        vocab_sizes: ``{field: number of codes}`` for every side field.
        n_properties: number of behaviour-property codes (padding 0 included).
    """

    n_users: int
    n_items: int
    item_features: dict[str, Tensor] = field(default_factory=dict)
    user_side: dict[str, Tensor] = field(default_factory=dict)
    item_side: dict[str, Tensor] = field(default_factory=dict)
    vocab_sizes: dict[str, int] = field(default_factory=dict)
    n_properties: int = 25

    @property
    def modalities(self) -> list[str]:
        return list(self.item_features)

    def chosen_modalities(self, modalities: str | Sequence[str] | None, *, with_id: bool = False) -> list[str]:
        """The modalities a model uses: ``modalities`` checked against the data, or (None)
        every content modality, after ``"id"`` when ``with_id`` (MARN, whose item ID is a
        modality). A string is a comma-separated list, as ``--modalities`` takes it
        (``"image,text"``). An empty or repeated name, and a name the data lack, is a
        one-line :class:`ConfigError`, the last listing those they have (the one check of
        every CTR model)."""
        from graphrec.graphs.build import parse_modalities

        have = (["id"] if with_id else []) + self.modalities
        if modalities is None:
            return have
        mods = list(parse_modalities(modalities) if isinstance(modalities, str) else modalities)
        for m in mods:
            if m not in have:
                hint = "; the item ID is always used, list content modalities only" if m == "id" else ""
                raise ConfigError(f"modality {m!r} is not in the data (has {', '.join(have) or 'none'}{hint}): "
                                  "choose --modalities among those")
        return mods

    @classmethod
    def from_data(cls, data: "CTRData") -> "CTRSchema":
        """The schema of :class:`~graphrec.data.ctr.CTRData` (features, side codes, sizes)."""
        from graphrec.data.ctr import N_PROPERTY_BUCKETS

        return cls(
            n_users=data.n_users,
            n_items=data.n_items,
            item_features={m: torch.from_numpy(np.ascontiguousarray(x)) for m, x in data.dataset.item_features.items()},
            user_side={k: torch.from_numpy(v) for k, v in data.user_side.items()},
            item_side={k: torch.from_numpy(v) for k, v in data.item_side.items()},
            vocab_sizes=dict(data.vocab_sizes),
            n_properties=N_PROPERTY_BUCKETS + 1,
        )


def normalized_features(x: Tensor) -> Tensor:
    r""":math:`\sqrt{d}\, x / \|x\|` per row; zero rows stay zero. Exact at any scale of
    the features (:func:`graphrec.nn.unit_rows`): rows of 1e30 or 1e-30 are not lost."""
    x = x.detach().float()
    return unit_rows(x, scale=math.sqrt(x.shape[1]))


def distinct_items(batch: CTRBatch) -> tuple[Tensor, Tensor, Tensor]:
    """The batch's distinct items and where its candidates and history steps find them.

    Returns ``(items, cand, hist)``: ``items`` the sorted distinct indices among the
    candidates and the history steps (padding reads item 0, as ``hist_index`` does),
    ``cand`` ``(B,)`` and ``hist`` ``(B, L)`` positions in ``items``. A model encodes
    ``items`` once and gathers: ``reps[cand]`` equals ``table[batch.items]`` and
    ``reps[hist]`` equals ``table[batch.hist_index]`` for the table over all items.
    """
    flat = torch.cat([batch.items, batch.hist_index.reshape(-1)])
    items, inverse = torch.unique(flat, return_inverse=True)
    b = len(batch)
    return items, inverse[:b], inverse[b:].reshape(batch.history.shape)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` (B, L, d) over the valid steps of ``mask`` (B, L); zeros when none."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class MLP(nn.Sequential):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int | None = 1, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        if out_dim is not None:
            layers.append(nn.Linear(d, out_dim))
            d = out_dim
        super().__init__(*layers)
        self.out_dim = d

    def reset_parameters(self) -> None:
        for m in self:
            if isinstance(m, nn.Linear):
                m.reset_parameters()


class ItemGraphPropagation(nn.Module):
    """Propagation of item embeddings over item-item graphs (module doc).

    Args:
        graphs: normalised ``(n_items, n_items)`` torch sparse tensors (CSR or COO); kept
            as non-persistent buffers (data, not parameters).
        num_layers: L (``0`` returns the embeddings unchanged).
        learn_weights: learn one softmax logit per graph (else equal fixed weights).
    """

    def __init__(self, graphs: Sequence[Tensor], num_layers: int = 2, learn_weights: bool = True) -> None:
        super().__init__()
        if not graphs:
            raise ConfigError("graph enrichment needs at least one item graph")
        if num_layers < 0:
            raise ConfigError(f"graph layers (--graph-layers) must be >= 0, got {num_layers}")
        n = graphs[0].shape[0]
        for k, g in enumerate(graphs):
            if not isinstance(g, Tensor) or g.layout not in (torch.sparse_csr, torch.sparse_coo):
                raise ConfigError("item graphs must be torch sparse tensors (graphrec.nn.to_torch_sparse)")
            if tuple(g.shape) != (n, n):
                raise ConfigError(f"item graph {k} has shape {tuple(g.shape)}, expected {(n, n)}")
            if g.layout == torch.sparse_coo:
                g = g.coalesce().to_sparse_csr()
            gt = g.to_sparse_coo().t().coalesce().to_sparse_csr()
            self.register_buffer(f"graph_{k}", g, persistent=False)
            self.register_buffer(f"graph_t_{k}", gt, persistent=False)
        self.n_graphs = len(graphs)
        self.num_layers = num_layers
        self.logits = nn.Parameter(torch.zeros(self.n_graphs)) if learn_weights and self.n_graphs > 1 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.logits is not None:
            nn.init.zeros_(self.logits)

    def weights(self) -> Tensor:
        if self.logits is not None:
            return torch.softmax(self.logits, 0)
        return torch.full((self.n_graphs,), 1.0 / self.n_graphs, device=self.graph_0.device)

    def forward(self, emb: Tensor) -> Tensor:
        w = self.weights()
        h, acc = emb, emb
        for _ in range(self.num_layers):
            out = w[0] * propagate(self.graph_0, h, adj_t=self.graph_t_0)
            for g in range(1, self.n_graphs):
                out = out + w[g] * propagate(getattr(self, f"graph_{g}"), h, adj_t=getattr(self, f"graph_t_{g}"))
            h = out
            acc = acc + h
        return acc / (self.num_layers + 1)


class ItemIDEncoder(nn.Module):
    """Item ID embedding table, optionally graph-enriched (:class:`ItemGraphPropagation`).

    :meth:`table` returns the ``(n_items, dim)`` table (propagated when graphs are
    given); :meth:`rows` the vectors of some items only (an embedding lookup, or rows of
    the propagated table, which depends on every item). Inside :meth:`table_once`, with
    gradients off, the propagated table is computed once and served to every call.
    """

    def __init__(
        self, n_items: int, dim: int, graphs: Sequence[Tensor] | None = None, graph_layers: int = 2,
        learn_graph_weights: bool = True,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items, dim)
        self.propagation = ItemGraphPropagation(graphs, graph_layers, learn_graph_weights) if graphs else None
        self.dim = dim
        self._once_depth = 0  # open table_once contexts
        self._once: Tensor | None = None  # the table they share
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        if self.propagation is not None:
            self.propagation.reset_parameters()

    @contextlib.contextmanager
    def table_once(self) -> Iterator[None]:
        """Inside (nestable), while gradients are off, :meth:`table` and :meth:`rows`
        serve one propagated table, computed at the first call and dropped when the
        outermost context ends: prediction's table is a constant, and propagating it
        again per batch (a sparse product over every item per graph and layer) is the
        cost of a batch. With gradients on (training) every call propagates afresh."""
        self._once_depth += 1
        try:
            yield
        finally:
            self._once_depth -= 1
            if not self._once_depth:
                self._once = None

    def table(self) -> Tensor:
        if self.propagation is None:
            return self.embedding.weight
        if self._once_depth and not torch.is_grad_enabled():
            if self._once is None:
                self._once = self.propagation(self.embedding.weight)
            return self._once
        return self.propagation(self.embedding.weight)

    def rows(self, items: Tensor) -> Tensor:
        """The vectors of ``items`` (any shape): ``table()[items]``, without a table when
        nothing is propagated."""
        if self.propagation is None:
            return self.embedding(items)
        return self.table()[items]


@contextlib.contextmanager
def item_tables_once(model: nn.Module) -> Iterator[None]:
    """:meth:`ItemIDEncoder.table_once` for every item ID encoder of ``model``: inside,
    under ``torch.no_grad``, each graph-propagated item table is computed once."""
    with contextlib.ExitStack() as stack:
        for m in model.modules():
            if isinstance(m, ItemIDEncoder):
                stack.enter_context(m.table_once())
        yield


class SideEncoder(nn.Module):
    """Embeddings of categorical side fields, concatenated (one ``dim`` block per field).

    Single-valued fields (``(n,)`` codes) are looked up; multi-valued ones (``(n, k)``
    codes with ``-1`` padding, e.g. genres) are mean-pooled over their codes.
    """

    def __init__(self, codes: dict[str, Tensor], vocab_sizes: dict[str, int], dim: int) -> None:
        super().__init__()
        self.names = list(codes)
        self.tables = nn.ModuleDict()
        for name, c in codes.items():
            if name not in vocab_sizes:
                raise ConfigError(f"side field {name!r} has no vocabulary size")
            self.register_buffer(f"codes_{name}", c.detach().long(), persistent=False)
            self.tables[name] = nn.Embedding(int(vocab_sizes[name]), dim)
        self.dim = dim
        self.out_dim = dim * len(self.names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=0.1)

    def table(self) -> Tensor | None:
        """``(n, out_dim)`` side embedding of every user/item, or None without fields."""
        return self._embed(None)

    def rows(self, index: Tensor) -> Tensor | None:
        """``(len(index), out_dim)``: the side embedding of the users/items ``index`` (1-D)
        only, equal to ``table()[index]``; None without fields."""
        return self._embed(index)

    def _embed(self, index: Tensor | None) -> Tensor | None:
        if not self.names:
            return None
        parts = []
        for name in self.names:
            c = getattr(self, f"codes_{name}")
            if index is not None:
                c = c[index]
            emb = self.tables[name]
            if c.dim() == 1:
                parts.append(emb(c))
            else:
                m = c >= 0
                parts.append(masked_mean(emb(c.clamp_min(0)), m))
        return torch.cat(parts, -1)

    def field_tables(self) -> list[Tensor]:
        """One ``(n, dim)`` embedding per field (FM-style models)."""
        t = self.table()
        if t is None:
            return []
        return list(t.split(self.dim, dim=-1))

    def field_rows(self, index: Tensor) -> list[Tensor]:
        """One ``(len(index), dim)`` embedding per field of the users/items ``index``:
        ``[t[index] for t in field_tables()]`` without the tables."""
        t = self.rows(index)
        if t is None:
            return []
        return list(t.split(self.dim, dim=-1))


class ConcatItemEncoder(nn.Module):
    r"""The item vector of the concatenation baselines (GMMF section 4.2: "DeepFM,
    YoutubeNet, and DIN concatenate ID, visual, and text features into a large vector"):

    .. math:: v_i = [E_i;\ S_i;\ W_V x_{V,i};\ W_T x_{T,i}]

    with the (optionally graph-enriched) item ID embedding :math:`E_i`, the side-field
    embeddings :math:`S_i` and one linear projection per modality to ``modality_dim``
    (``modality_dim=0``: the normalised features themselves, unprojected).
    """

    def __init__(
        self,
        schema: CTRSchema,
        id_dim: int = 32,
        side_dim: int = 16,
        modality_dim: int = 32,
        modalities: Sequence[str] | None = None,
        item_graphs: Sequence[Tensor] | None = None,
        graph_layers: int = 2,
    ) -> None:
        super().__init__()
        self.ids = ItemIDEncoder(schema.n_items, id_dim, item_graphs, graph_layers)
        self.side = SideEncoder(schema.item_side, schema.vocab_sizes, side_dim)
        mods = schema.chosen_modalities(modalities)
        self.modalities = mods
        self.proj = nn.ModuleDict()
        out = id_dim + self.side.out_dim
        for m in mods:
            x = schema.item_features[m]
            self.register_buffer(f"feat_{m}", normalized_features(x), persistent=False)
            if modality_dim > 0:
                self.proj[m] = nn.Linear(x.shape[1], modality_dim)
                out += modality_dim
            else:
                out += x.shape[1]
        self.out_dim = out
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.ids.reset_parameters()
        self.side.reset_parameters()
        for p in self.proj.values():
            p.reset_parameters()

    def table(self) -> Tensor:
        """``(n_items, out_dim)``: every item's vector (the reference :meth:`encode` equals;
        a forward pass needs only the batch's items)."""
        return self._vectors(None)

    def rows(self, items: Tensor) -> Tensor:
        """``(len(items), out_dim)``: the vectors of ``items`` (1-D) only, their content
        rows gathered before the projection."""
        return self._vectors(items)

    def _vectors(self, items: Tensor | None) -> Tensor:
        parts = [self.ids.table() if items is None else self.ids.rows(items)]
        s = self.side.table() if items is None else self.side.rows(items)
        if s is not None:
            parts.append(s)
        for m in self.modalities:
            x = getattr(self, f"feat_{m}")
            if items is not None:
                x = x[items]
            parts.append(self.proj[m](x) if m in self.proj else x)
        return torch.cat(parts, -1)

    def encode(self, batch: CTRBatch) -> tuple[Tensor, Tensor]:
        """``(candidates (B, out_dim), history (B, L, out_dim))``: ``table()[batch.items]``
        and ``table()[batch.hist_index]``, each distinct item of the batch encoded once."""
        items, cand, hist = distinct_items(batch)
        reps = self.rows(items)
        return reps[cand], reps[hist]


class UserEncoder(nn.Module):
    """User ID embedding concatenated with the user side-field embeddings."""

    def __init__(self, schema: CTRSchema, id_dim: int = 32, side_dim: int = 8) -> None:
        super().__init__()
        self.embedding = nn.Embedding(schema.n_users, id_dim)
        self.side = SideEncoder(schema.user_side, schema.vocab_sizes, side_dim)
        self.out_dim = id_dim + self.side.out_dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.side.reset_parameters()

    def forward(self, users: Tensor) -> Tensor:
        u = self.embedding(users)
        s = self.side.rows(users)
        return u if s is None else torch.cat([u, s], -1)


class CTRModel(nn.Module):
    """Base class of the CTR models (module doc)."""

    n_users: int
    n_items: int

    def reset_parameters(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: CTRBatch) -> Tensor:  # pragma: no cover - abstract
        """One logit per sample, shape ``(B,)``."""
        raise NotImplementedError

    def predict(self, batch: CTRBatch) -> Tensor:
        """Click probabilities ``(B,)``."""
        return torch.sigmoid(self.forward(batch))

    def losses(self, batch: CTRBatch) -> dict[str, Tensor]:
        """``{"loss": total, "ctr": BCE, ...}``: the backbone's training loss and parts."""
        if batch.labels is None:
            raise ConfigError("training needs labels in the batch")
        bce = F.binary_cross_entropy_with_logits(self.forward(batch), batch.labels.float())
        return {"loss": bce, "ctr": bce}

    def loss(self, batch: CTRBatch) -> Tensor:
        return self.losses(batch)["loss"]

    # optional hooks ---------------------------------------------------------
    def gan_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]] | None:
        """``(generator params, discriminator params)`` trained by the GAN optimiser,
        outside the backbone's; None for models without a GAN."""
        return None

    def gan_condition(self, batch: CTRBatch) -> Any:
        """What the discriminator and generator steps of one training batch share (computed
        once, without gradient, and passed to both: the D step does not change it); None
        for models without a GAN."""
        return None

    def discriminator_loss(self, batch: CTRBatch, condition: Any = None) -> Tensor:  # pragma: no cover - optional
        """The discriminator's loss; ``condition`` from :meth:`gan_condition` (computed
        here when None)."""
        raise NotImplementedError

    def generator_loss(self, batch: CTRBatch, condition: Any = None) -> Tensor:  # pragma: no cover - optional
        """The generator's loss; ``condition`` as in :meth:`discriminator_loss`."""
        raise NotImplementedError

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] (called before every step); unused by default."""

    def log_values(self) -> dict[str, float]:
        """Scalars worth recording every epoch (e.g. learned graph weights)."""
        return {}

    def modality_attention(self, batch: CTRBatch) -> tuple[list[str], Tensor] | None:
        """``(modality names, (B, M) weights)`` per sample, for the Figure 4 heat map;
        None for models without modality weights."""
        return None

    def _graph_log(self, encoder: ItemIDEncoder | None) -> dict[str, float]:
        if encoder is None or encoder.propagation is None or encoder.propagation.logits is None:
            return {}
        w = encoder.propagation.weights().detach().cpu().tolist()
        return {f"graph_weight_{k}": float(v) for k, v in enumerate(w)}

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}"
