r"""BM3: "Bootstrap Latent Representations for Multi-modal Recommendation" (Zhou, Zhou,
Liu, Zeng, Miao, Wang, You, Jiang; WWW 2023, arXiv 2207.05969).

A self-supervised recommender without negative samples and without a target network:
each training pair (u, i) is reconstructed by predicting, from the online representation
of one side, a dropout-perturbed, stop-gradient copy of the other side's representation
(a BYOL-style bootstrap whose "second view" is latent embedding dropout).

**Representations.** LightGCN over :math:`\hat A = D^{-1/2} A D^{-1/2}`,
:math:`A = [[0, R], [R^T, 0]]`, starting from the ID embeddings :math:`E^{(0)}`, the
layers averaged; the item representation also adds the item's raw ID embedding (a
residual, ``item_residual``):

.. math::
    E^{(l+1)} = \hat A E^{(l)}, \qquad
    h_u = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)}_u, \qquad
    h_i = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)}_i + E^{(0)}_i .

Each modality m of the item (any number: image, text, audio, ...) is projected to d by
its own linear layer, :math:`h^m_i = x^m_i W_m + b_m`.

**Views.** One predictor :math:`f_p(h) = h W_p + b_p` (a linear layer shared by the ID
and the modality representations) gives the online view :math:`\tilde h = f_p(h)`; the
target view is the representation itself, gradient stopped and perturbed by latent
embedding dropout of ratio :math:`p` (``dropout``):

.. math::
    \dot h = \mathrm{sg}(h) \odot \xi, \qquad \xi_k \sim \mathrm{Bernoulli}(1 - p)

(``F.dropout``'s :math:`1/(1-p)` rescaling is left out: the cosines below ignore it).

**Loss** of a batch of B (user, item) pairs, with
:math:`C(a, b) = 1 - \frac{1}{B}\sum_b \cos(a_b, b_b)` (the paper's negative cosine
similarity, shifted by 1 as the authors' code does; the constant changes no gradient):

.. math::
    \mathcal{L}_{rec} = C(\tilde h_u, \dot h_i) + C(\tilde h_i, \dot h_u), \qquad
    \mathcal{L}^m_{align} = C(\tilde h^m_i, \dot h_i), \qquad
    \mathcal{L}^m_{mask} = C(\tilde h^m_i, \dot h^m_i),

.. math::
    \mathcal{L} = \mathcal{L}_{rec}
      + \lambda_{cl} \sum_m \left(\mathcal{L}^m_{align} + \mathcal{L}^m_{mask}\right)
      + \lambda \, \mathcal{R}.

:math:`\mathcal{L}_{rec}` reconstructs the user-item graph, :math:`\mathcal{L}^m_{align}`
aligns each modality with the item's ID representation (inter-modality),
:math:`\mathcal{L}^m_{mask}` matches each modality with its own dropout-masked copy
(intra-modality); MMRec calls the two-modality terms ``loss_t, loss_v`` (align) and
``loss_tv, loss_vt`` (mask). The regulariser :math:`\mathcal{R}` (``reg_form``) is, over
the ONLINE representations :math:`H_U` (all users) and :math:`H_I` (all items):

.. math::
    \text{"tables" (the authors' code):}\quad \frac{\|H_U\|_F + \|H_I\|_F}{n_{items}}, \qquad
    \text{"batch":}\quad \frac{\|H_{U,B}\|_F^2 + \|H_{I,B}\|_F^2}{2B}

(Frobenius norms of the whole tables, not squared, divided by the number of items, in
the first form; squared L2 of the batch's rows in the second).

**Scores**: :math:`\hat y_{ui} = \tilde h_u^\top \tilde h_i = f_p(h_u)^\top f_p(h_i)`, the
predictor applied to the propagated representations (no dropout at evaluation).

**Readings** (the paper's method section was not retrievable here; the authors' code,
github enoche/BM3, is identical to MMRec's ``models/bm3.py``, and where the two
readings could differ graphrec follows that code):

* item residual :math:`+ E^{(0)}_i`: in the authors' code; ``item_residual=False``
  drops it (plain LightGCN item representation);
* the authors drop out the whole target tables and then take the batch's rows, so a user
  or item twice in a batch keeps one mask; here too, but the masks are drawn for the
  batch's distinct users and items only (the other rows never reach the loss). They
  come from torch's global CPU generator (16 random bits per entry, p rounded to a
  multiple of 1/65536) and are moved to the model's device, so a seed reproduces them
  and the loss is the same on CPU and CUDA;
* the four modality terms are weighted by ``cl_weight`` (authors' config: 2.0);
  :math:`\mathcal{L}_{rec}` is not weighted;
* :math:`\mathcal{R}` in the authors' form is on the full online tables (with the item
  residual), not the batch, and is the sum of unsquared norms over :math:`n_{items}`
  (MMRec's ``EmbLoss``); the reg_weight grid [0.1, 0.01] is calibrated to that form;
* the item features are fine-tuned (``nn.Embedding.from_pretrained(..., freeze=False)``
  in the authors' code): ``train_features``; the projections and the predictor have
  biases, Xavier-normal weights; ID embeddings are Xavier-uniform.

**Negatives**: BM3 needs none. :meth:`BM3.loss` takes the fit loop's ``neg_items`` for
the shared signature and ignores them: the loss does not depend on them.

Shapes: ``adj`` is the normalised bipartite graph, torch sparse (n_users + n_items)
square (user u is row u, item i row n_users + i); ``features[m]`` is (n_items, d_m).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import FeatureTables, Recommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import norm_penalty

__all__ = ["BM3", "REG_FORMS"]

#: the regulariser forms (see the module doc)
REG_FORMS = ("tables", "batch")


#: the norm floor of the cosines (``F.cosine_similarity``'s default)
_EPS = 1e-8


def _keep_mask(n: int, p: float) -> Tensor:
    """``n`` independent Bernoulli(1 - p) draws (True = kept), on the CPU, from torch's
    global CPU generator: a seed reproduces them, on every device the model runs on.

    Each draw compares 16 random bits with ``p`` rounded to a multiple of 1/65536 (four
    draws per 64-bit random number: several times cheaper than one float per entry).
    """
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    bits = words.view(torch.int16)[:n]  # uniform over [-32768, 32767]
    return bits >= round(p * 65536) - 32768


class BM3(FeatureTables, Recommender):
    """LightGCN ID representations plus projected modality features, trained by
    bootstrapping dropout-perturbed targets through one shared predictor (module doc).

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: normalised bipartite adjacency, torch sparse, symmetric.
        features: ``{modality: item features (n_items x d_m)}``, one or more.
        embedding_dim: size d of the ID embeddings, the projections and the predictor (64).
        num_layers: LightGCN layers L (authors' grid [1, 2]; default 1).
        dropout: latent embedding dropout ratio p of the targets, in [0, 1) (grid [0.3, 0.5]).
        cl_weight: weight of the inter- and intra-modality terms (authors: 2.0).
        reg_weight: coefficient lambda of the regulariser (grid [0.1, 0.01]).
        reg_form: ``"tables"`` (authors' form: unsquared norms of the full online tables
            over n_items) or ``"batch"`` (squared L2 of the batch's online rows over 2B).
        item_residual: add the raw item ID embedding to the item's LightGCN
            representation (authors' code).
        train_features: fine-tune the feature tables (authors' code); otherwise fixed.
    """

    #: the dropout mask of a step is drawn for all its pairs at once (Recommender.couples_batch)
    couples_batch = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        features: Mapping[str, Tensor],
        embedding_dim: int = 64,
        num_layers: int = 1,
        dropout: float = 0.3,
        cl_weight: float = 2.0,
        reg_weight: float = 0.1,
        reg_form: str = "tables",
        item_residual: bool = True,
        train_features: bool = True,
    ) -> None:
        super().__init__()
        if not features:
            raise ConfigError("BM3 needs at least one modality of item features")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"BM3 dropout must be in [0, 1), got {dropout}")
        if reg_form not in REG_FORMS:
            raise ConfigError(f"reg_form must be one of {', '.join(REG_FORMS)}, got {reg_form!r}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.cl_weight = cl_weight
        self.reg_weight = reg_weight
        self.reg_form = reg_form
        self.item_residual = item_residual
        self.train_features = train_features
        self.modalities: tuple[str, ...] = tuple(features)
        # LightGCN's propagation (its own loss and reg_weight are unused here)
        self.lightgcn = LightGCN(n_users, n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers)
        self.predictor = nn.Linear(embedding_dim, embedding_dim)
        self.projections = nn.ModuleDict()
        dims = self._register_features(features, self.modalities, n_items, train_features)
        for m in self.modalities:
            self.projections[m] = nn.Linear(dims[m], embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()  # Xavier-uniform ID embeddings
        for lin in (self.predictor, *self.projections.values()):
            lin.reset_parameters()  # nn.Linear's default bias
            nn.init.xavier_normal_(lin.weight)
        self._reset_features()

    # ------------------------------------------------------------------ representations

    def online(self) -> tuple[Tensor, Tensor]:
        """The online representations :math:`h_u` (n_users x d) and :math:`h_i`
        (n_items x d), before the predictor."""
        out = self.lightgcn.propagate()
        users, items = out[: self.n_users], out[self.n_users :]
        if self.item_residual:
            items = items + self.lightgcn.item_embedding.weight
        return users, items

    def modality(self, m: str, items: Tensor | None = None) -> Tensor:
        """:math:`h^m_i`: modality ``m`` of ``items`` (all items when None) projected to d."""
        x = self._features(m)
        return self.projections[m](x if items is None else x[items])

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """:math:`f_p(h_u)` and :math:`f_p(h_i)`: their inner products are the scores."""
        users, items = self.online()
        return self.predictor(users), self.predictor(items)

    def _targets(self, rows: Tensor) -> Tensor:
        """:math:`\\mathrm{sg}(h) \\odot \\xi`: latent embedding dropout of ``rows`` (no
        1/(1 - p) scaling, which the cosines ignore); see :func:`_keep_mask`."""
        rows = rows.detach()
        if self.dropout == 0.0:
            return rows
        keep = _keep_mask(rows.numel(), self.dropout).view(rows.shape)
        return rows * keep.to(device=rows.device, dtype=rows.dtype)

    # ------------------------------------------------------------------ training
    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """The BM3 loss of the batch's (user, item) pairs. ``neg_items`` is accepted for
        the fit loop's signature and ignored: BM3 trains without negatives.

        Every row-wise operation (predictor, projections, dropout, normalisation) runs
        once per DISTINCT user and item of the batch; the pairs then only gather rows.
        """
        del neg_items
        user_all, item_all = self.online()
        uu, u_inv = torch.unique(users, return_inverse=True)
        ui, i_inv = torch.unique(pos_items, return_inverse=True)
        h_u, h_i = user_all[uu], item_all[ui]
        online = torch.cat([h_u, h_i, *(self.modality(m, ui) for m in self.modalities)], dim=0)
        sizes = [uu.numel(), ui.numel()] + [ui.numel()] * len(self.modalities)
        b = users.shape[0]
        # unit rows: a cosine is then a dot product
        pred = F.normalize(self.predictor(online), dim=-1, eps=_EPS).split(sizes, dim=0)
        with torch.no_grad():
            target = F.normalize(self._targets(online), dim=-1, eps=_EPS).split(sizes, dim=0)
            # the targets each distinct user / item is matched with, summed over its pairs:
            # sum_b <f_p(h_u_b), t_i_b> = sum_j <f_p(h_u_j), sum_{b: u_b = j} t_i_b>
            to_user = torch.zeros_like(target[0]).index_add_(0, u_inv, target[1][i_inv])
            to_item = torch.zeros_like(target[1]).index_add_(0, i_inv, target[0][u_inv])
        # graph reconstruction: C(f_p(h_u), sg h_i) + C(f_p(h_i), sg h_u), means over the B pairs
        loss = 2.0 - ((pred[0] * to_user).sum() + (pred[1] * to_item).sum()) / b
        if len(self.modalities):
            # each distinct item weighs as often as it occurs in the batch
            weight = torch.bincount(i_inv, minlength=ui.numel()).to(online.dtype) / b
            for k in range(len(self.modalities)):
                # inter-modality (to the item's ID target) + intra-modality (to its own target)
                cos = (pred[2 + k] * (target[1] + target[2 + k])).sum(-1)
                loss = loss + self.cl_weight * (2.0 - (weight * cos).sum())
        if self.reg_form == "tables":
            reg = norm_penalty(user_all, item_all) / self.n_items
        else:  # squared L2 of the batch's rows (a row counted as often as it occurs) over 2B
            cu = torch.bincount(u_inv, minlength=uu.numel()).to(online.dtype)
            ci = torch.bincount(i_inv, minlength=ui.numel()).to(online.dtype)
            reg = ((cu * h_u.pow(2).sum(-1)).sum() + (ci * h_i.pow(2).sum(-1)).sum()) / (2.0 * b)
        return loss + self.reg_weight * reg

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={','.join(self.modalities)}, "
            f"d={self.embedding_dim}, layers={self.num_layers}, dropout={self.dropout}, "
            f"cl_weight={self.cl_weight}, reg={self.reg_weight} ({self.reg_form})"
        )
