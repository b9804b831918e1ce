r"""MGCN: "Multi-View Graph Convolutional Network for Multimedia Recommendation" (Yu,
Tan, Lu, Bao; ACM MM 2023, arXiv 2308.03588).

MGCN keeps the ID (behaviour) embeddings and the modality features in SEPARATE views:
the behaviour embeddings propagate over the user-item graph, the modality features
(first purified by the item's behaviour embedding) over per-modality item-item graphs,
and a behaviour-aware fuser merges the modalities per node before they are added to the
behaviour representation. A contrastive auxiliary task ties the fused multimodal
representation to the behaviour representation.

Notation: :math:`e^{id}_u, e^{id}_i \in \mathbb R^d` the ID embeddings (LightGCN's layer
0), :math:`x_{m,i}` item i's feature of modality :math:`m \in \mathcal M`, :math:`\sigma`
the logistic function, :math:`\odot` the element-wise product.

**Behaviour-guided purifier.** The feature is projected to :math:`d` and turned into a
gate on the item's ID embedding (the purification gate):

.. math::
    f_{m,i} = W_m x_{m,i} + b_m, \qquad
    \dot e_{m,i} = e^{id}_i \odot \sigma(W^{g}_m f_{m,i} + b^{g}_m).

**User-item view** (LightGCN): :math:`\hat A = D^{-1/2} A D^{-1/2}` of the bipartite
graph, :math:`\bar E = \frac1{L+1} \sum_{l=0}^{L} \hat A^l E^{(0)}` (L = 2); its rows
:math:`\bar e_u, \bar e_i` are the behaviour representations.

**Item-item views.** Per modality a frozen top-k graph of the RAW features (built by
:func:`graphrec.train.builders.mgcn.mgcn_item_graphs`, never here; k = 10):
:math:`S_{m,ij} = \cos(x_{m,i}, x_{m,j})` if j is among the k most similar items of i
(the item itself included: its cosine is 1), else 0;
:math:`\hat S_m = D_m^{-1/2} S_m D_m^{-1/2}` with the row sums :math:`D_m`. The purified
features propagate over it (:math:`L'` = 1 layer) and users aggregate their items over
the user-item graph:

.. math::
    \ddot E_{m,I} = \hat S_m^{L'} \dot E_m, \qquad
    \ddot e_{m,u} = \sum_{i \in N_u} \frac{1}{\sqrt{|N_u||N_i|}} \ddot e_{m,i}
    \quad (\ddot E_{m,U} = \hat R \ddot E_{m,I},\ \hat R = D_U^{-1/2} R D_I^{-1/2}).

**Behaviour-aware fuser**, for every node n (users and items alike): attention over the
modalities with one shared query network gives the common part; what each modality adds
beyond it is gated by the node's preference for that modality, read from its behaviour
representation:

.. math::
    \alpha_{m,n} = \mathrm{softmax}_m\big(q^\top \tanh(W_q \ddot e_{m,n} + b_q)\big), \quad
    c_n = \sum_m \alpha_{m,n} \ddot e_{m,n}, \quad
    p_{m,n} = \sigma(W^{p}_m \bar e_n + b^{p}_m),

.. math::
    e^{mul}_n = \frac{1}{|\mathcal M| + 1}\Big(c_n + \sum_m p_{m,n} \odot (\ddot e_{m,n} - c_n)\Big),
    \qquad e_n = \bar e_n + e^{mul}_n, \qquad \hat y_{ui} = e_u^\top e_i .

**Loss** on a batch of B triples :math:`(u_b, i^+_b, i^-_b)`: BPR, the self-supervised
task (InfoNCE between the fused multimodal and the behaviour representations of the
batch's users and of its positive items, in-batch negatives, temperature
:math:`\tau` = 0.2, weight :math:`\lambda_c`) and L2 on the batch's FINAL representations:

.. math::
    \mathcal L = \mathrm{BPR}
      + \lambda_c \big(\mathrm{NCE}(e^{mul}_{U_B}, \bar e_{U_B}) + \mathrm{NCE}(e^{mul}_{I^+_B}, \bar e_{I^+_B})\big)
      + \frac{\lambda}{2B} \sum_b \big(\|e_{u_b}\|^2 + \|e_{i^+_b}\|^2 + \|e_{i^-_b}\|^2\big),

.. math::
    \mathrm{NCE}(A, C) = -\frac1B \sum_{b} \log
      \frac{\exp(\cos(a_b, c_b)/\tau)}{\sum_{b'} \exp(\cos(a_b, c_{b'})/\tau)}

(rows taken as the batch gives them: a user or item drawn twice is also its own
negative, as in the reference implementations).

**Readings.** The paper's full text was not available here; the abstract fixes the
structure (purification by behaviour information, separate user-item and item-item
views, a behaviour-aware fuser learning the modalities' relative importance, an
auxiliary task maximising the mutual information between the fused multimodal and the
behaviour features). Everything finer follows the authors' code (github
demonph10/MGCN) and MMRec's copy of it, which agree except where noted:

* the feature tables are fine-tuned (``train_features``, as both codes: trainable
  embeddings initialised with the raw features); the kNN graphs stay those of the raw
  features, frozen;
* the item-item graph keeps the cosine values (``weighting="cosine"``) and each item in
  its own top-k (``include_self``), symmetric normalisation with the weighted row sums;
  ``weighting="binary"`` gives FREEDOM's binary graph instead;
* attention softmax over the MODALITIES (MMRec); the authors' released code normalises
  over the nodes (``Softmax(dim=0)``), which makes every weight about 1/N: read as a slip;
* :math:`e^{mul}` divides by :math:`|\mathcal M| + 1` (both codes: ``/3`` for two
  modalities); the codes hard-wire image and text, here any number of modalities;
* L2 on the final (fused) representations, squared, halved, over the batch
  (MMRec divides by the configured batch size, so its last, smaller batch is weighted
  a little less); BPR as a mean;
* training (the fit loop's business, not the model's): both codes use Adam 1e-3 decayed
  per epoch t to 1e-3 * 0.96^(t/50) (``learning_rate_scheduler: [0.96, 50]``), i.e.
  ``TrainConfig(lr_decay=0.96, lr_decay_every=50)``.

Beyond the reference codes, without changing the results: the InfoNCE terms are
computed over the batch's distinct nodes (:func:`batch_info_nce`, exact), and gate
values below 2^-64 are set to 0 (:func:`_gate`: no subnormal numbers on CPU).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import FeatureTables, Recommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import SparseOperator, bpr_loss, l2_penalty, propagate

__all__ = ["MGCN", "batch_info_nce", "info_nce"]


#: gate values below this are set to 0 (see :func:`_gate`)
GATE_FLOOR = 2.0**-64


def _gate(z: Tensor) -> Tensor:
    """``sigmoid(z)``, with values below :data:`GATE_FLOOR` (5.4e-20, z < -44) set to 0
    (and no gradient through them).

    Raw features of a large scale (Last.fm's VGGish vectors) saturate the purification
    gate: sigmoid(z) itself is a subnormal float32 number for z < -87, and so are the
    products of small gates with embeddings and gradients. Every product touching
    subnormals runs several times slower on CPU (here the whole epoch 2x; a process-wide
    flush-to-zero mode would do the same as this floor). The change is invisible: a term
    below 5.4e-20 |e| beside embeddings of order 1e-2, and a gradient that small moves an
    Adam parameter by about lr * grad / eps (eps 1e-8), i.e. nothing."""
    g = torch.sigmoid(z)
    return torch.where(g < GATE_FLOOR, torch.zeros((), dtype=g.dtype, device=g.device), g)


def info_nce(anchor: Tensor, other: Tensor, temperature: float) -> Tensor:
    r"""Mean InfoNCE of row b of ``anchor`` against row b of ``other`` (positive) and
    every row of ``other`` (denominator), on cosine similarities over ``temperature``
    (module doc, :math:`\mathrm{NCE}`); computed with a log-sum-exp."""
    a = F.normalize(anchor, dim=1) / temperature  # dividing the (B x d) side, not the B x B logits
    c = F.normalize(other, dim=1)
    logits = a @ c.t()
    return (torch.logsumexp(logits, dim=1) - (a * c).sum(1)).mean()


def batch_info_nce(anchor: Tensor, other: Tensor, index: Tensor, temperature: float) -> Tensor:
    r""":func:`info_nce` of ``anchor[index]`` against ``other[index]``, computed over the
    DISTINCT rows of ``index`` (exactly the same value and gradient).

    A node drawn :math:`n_w` times gives :math:`n_w` identical loss rows, and in every
    denominator its column appears :math:`n_w` times. So, with :math:`s_{wv}` the
    cosine of distinct nodes w, v over :math:`\tau`:
    :math:`\frac1B \sum_w n_w \big(\log \sum_v n_v e^{s_{wv}} - s_{ww}\big)`: a
    (distinct x distinct) product instead of B x B (about 3x fewer operations for a batch
    of 2048 users of Last.fm's 1,858)."""
    nodes, counts = torch.unique(index, return_counts=True)
    a = F.normalize(anchor.index_select(0, nodes), dim=1) / temperature
    c = F.normalize(other.index_select(0, nodes), dim=1)
    weights = counts.to(a.dtype)
    logits = torch.addmm(weights.log().unsqueeze(0), a, c.t())  # log n_v + s_wv
    rows = torch.logsumexp(logits, dim=1) - (a * c).sum(1)
    return (weights * rows).sum() / index.numel()


class MGCN(FeatureTables, Recommender):
    """MGCN: LightGCN behaviour view plus purified per-modality item-item views merged by
    a behaviour-aware fuser (module doc).

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: the normalised bipartite graph :math:`\\hat A` ((n_users + n_items) square,
            torch sparse, symmetric).
        user_item: its user-item block :math:`\\hat R = D_U^{-1/2} R D_I^{-1/2}`
            (n_users x n_items, torch sparse).
        item_graphs: ``{modality: normalised top-k graph of the raw features}``
            (n_items square, torch sparse; directed).
        features: ``{modality: raw item features (n_items x d_m)}``, same modalities.
        embedding_dim: d (paper: 64).
        num_layers: LightGCN layers L (MMRec n_ui_layers: 2).
        item_layers: item-item layers L' (MMRec n_layers: 1).
        cl_weight: :math:`\\lambda_c` of the contrastive task (MMRec ``cl_loss``, grid
            [0.001, 0.01, 0.1]; the authors' config 0.01).
        temperature: :math:`\\tau` of the InfoNCE terms (0.2 in both codes).
        reg_weight: :math:`\\lambda` of the L2 term on the final representations (1e-4).
        train_features: fine-tune the feature tables (as the reference codes).
    """

    #: the contrastive loss takes its negatives from the step's batch (Recommender.couples_batch)
    couples_batch = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        user_item: Tensor,
        item_graphs: Mapping[str, Tensor],
        features: Mapping[str, Tensor],
        *,
        embedding_dim: int = 64,
        num_layers: int = 2,
        item_layers: int = 1,
        cl_weight: float = 1e-3,
        temperature: float = 0.2,
        reg_weight: float = 1e-4,
        train_features: bool = True,
    ) -> None:
        super().__init__()
        if not features:
            raise ConfigError("MGCN needs at least one modality of item features")
        if set(item_graphs) != set(features):
            raise ConfigError(
                f"item_graphs ({', '.join(item_graphs)}) and features ({', '.join(features)}) "
                "must name the same modalities"
            )
        if tuple(user_item.shape) != (n_users, n_items):
            raise ConfigError(f"user_item has shape {tuple(user_item.shape)}, expected {(n_users, n_items)}")
        if item_layers < 0:
            raise ConfigError(f"item_layers must be >= 0, got {item_layers}")
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        if cl_weight < 0 or reg_weight < 0:
            raise ConfigError(f"cl_weight and reg_weight must be >= 0, got {cl_weight} and {reg_weight}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.cl_weight = float(cl_weight)
        self.temperature = float(temperature)
        self.reg_weight = float(reg_weight)
        self.train_features = train_features
        self.modalities: tuple[str, ...] = tuple(features)

        # user-item view: LightGCN's embeddings and propagation (its own L2 unused)
        self.lightgcn = LightGCN(
            n_users, n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=0.0
        )
        ui = user_item if user_item.layout == torch.sparse_csr else user_item.to_sparse_coo().coalesce().to_sparse_csr()
        self.register_buffer("user_item", ui, persistent=False)
        self.register_buffer("user_item_t", ui.to_sparse_coo().t().coalesce().to_sparse_csr(), persistent=False)

        # item-item views
        self.item_ops = nn.ModuleDict(
            {m: SparseOperator(item_graphs[m], f"item_graphs[{m!r}]", n_items) for m in self.modalities}
        )

        # purifier: projection W_m and purification gate W^g_m per modality
        dims = self._register_features(features, self.modalities, n_items, train_features)
        self.projections = nn.ModuleDict({m: nn.Linear(dims[m], embedding_dim) for m in self.modalities})
        self.purify_gates = nn.ModuleDict({m: nn.Linear(embedding_dim, embedding_dim) for m in self.modalities})

        # fuser: one attention query shared by the modalities, a preference gate per modality
        self.query = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim), nn.Tanh(), nn.Linear(embedding_dim, 1, bias=False)
        )
        self.prefer_gates = nn.ModuleDict({m: nn.Linear(embedding_dim, embedding_dim) for m in self.modalities})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()
        for m in self.modalities:
            self.projections[m].reset_parameters()
            self.purify_gates[m].reset_parameters()
            self.prefer_gates[m].reset_parameters()
        self._reset_features()
        for layer in self.query:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    # ------------------------------------------------------------ the parts
    def purified(self, m: str) -> Tensor:
        r""":math:`\dot E_m = E^{id}_I \odot \sigma(W^g_m (W_m X_m + b_m) + b^g_m)`, (n_items x d)."""
        gate = _gate(self.purify_gates[m](self.projections[m](self._features(m))))
        return self.lightgcn.item_embedding.weight * gate

    def modality_view(self, m: str) -> Tensor:
        r"""Modality m's representations of all nodes, users first:
        :math:`[\hat R \ddot E_{m,I};\ \ddot E_{m,I}]` with :math:`\ddot E_{m,I} = \hat S_m^{L'} \dot E_m`."""
        h = self.purified(m)
        for _ in range(self.item_layers):
            h = self.item_ops[m](h)
        users = propagate(self.user_item, h, adj_t=self.user_item_t)
        return torch.cat([users, h], dim=0)

    def item_graphs(self) -> dict[str, Tensor]:
        r"""``{m: }`` :math:`\hat S_m`, the frozen item graph of each modality (torch sparse CSR)."""
        return {m: self.item_ops[m].matrix().detach() for m in self.modalities}

    def fuse(self, behaviour: Tensor, views: Tensor) -> tuple[Tensor, Tensor]:
        r"""The behaviour-aware fuser (module doc) for a set of nodes.

        Args:
            behaviour: :math:`\bar e_n`, shape (n, d).
            views: :math:`\ddot e_{m,n}` stacked over the modalities, shape (M, n, d), in
                the order of :attr:`modalities`.

        Returns:
            :math:`e^{mul}_n` (n, d) and the attention weights :math:`\alpha` (M, n).
        """
        alpha = torch.softmax(self.query(views).squeeze(-1), dim=0)  # (M, n)
        common = (alpha.unsqueeze(-1) * views).sum(0)
        out = common
        for k, m in enumerate(self.modalities):
            out = out + _gate(self.prefer_gates[m](behaviour)) * (views[k] - common)
        return out / (len(self.modalities) + 1), alpha

    def representations(self) -> tuple[Tensor, Tensor, Tensor]:
        r"""For all nodes (users first): the behaviour representations :math:`\bar E`, the
        fused multimodal ones :math:`E^{mul}` and the attention weights (M, n_nodes)."""
        behaviour = self.lightgcn.propagate()
        views = torch.stack([self.modality_view(m) for m in self.modalities])
        fused, alpha = self.fuse(behaviour, views)
        return behaviour, fused, alpha

    # ------------------------------------------------------------ contract
    def embeddings(self) -> tuple[Tensor, Tensor]:
        behaviour, fused, _ = self.representations()
        final = behaviour + fused
        return final[: self.n_users], final[self.n_users :]

    def contrastive_loss(self, behaviour: Tensor, fused: Tensor, users: Tensor, pos_items: Tensor) -> Tensor:
        """The auxiliary task's two InfoNCE terms (unweighted) for a batch: the batch's
        users and positive items, fused multimodal against behaviour representations."""
        return batch_info_nce(fused, behaviour, users, self.temperature) + batch_info_nce(
            fused, behaviour, pos_items + self.n_users, self.temperature
        )

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        behaviour, fused, _ = self.representations()
        final = behaviour + fused
        u = final.index_select(0, users)
        pos = final.index_select(0, pos_items + self.n_users)
        neg = final.index_select(0, neg_items + self.n_users)
        loss = bpr_loss((u * pos).sum(-1), (u * neg).sum(-1))
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_penalty(u, pos, neg)
        if self.cl_weight > 0:
            loss = loss + self.cl_weight * self.contrastive_loss(behaviour, fused, users, pos_items)
        return loss

    @torch.no_grad()
    def log_values(self) -> dict[str, float]:
        """Mean attention weight of each modality over the users and over the items."""
        _, _, alpha = self.representations()
        out = {}
        for k, m in enumerate(self.modalities):
            out[f"attention_users_{m}"] = float(alpha[k, : self.n_users].mean())
            out[f"attention_items_{m}"] = float(alpha[k, self.n_users :].mean())
        return out

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, "
            f"item_layers={self.item_layers}, cl_weight={self.cl_weight}, temperature={self.temperature}, "
            f"reg_weight={self.reg_weight}, train_features={self.train_features}"
        )
