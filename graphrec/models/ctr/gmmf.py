r"""GMMF: "From Abstract to Details: A Generative Multimodal Fusion Framework for
Recommendation" (Xiao, Deng, Chen, Ji, Yang, Ding, Long; ACM MM 2022), layered on graphrec's graph-enriched item ID encoder.

Each item is a tuple :math:`(E, I_V, I_T)`: the item ID embedding :math:`E` (with the
side-field embeddings, e.g. genres, appended; propagated over the item graph when
``item_graphs`` are given, :class:`~graphrec.models.ctr.base.ItemIDEncoder`) and frozen
content features :math:`I_m` of every modality :math:`m` (CLIP image/text, MiniLM text).

**Difference-Set Network** (section 3.2):

* auto-encoders (eq. 1-2, 14): :math:`H_m = f_m(I_m)`, :math:`\hat I_m = \phi_m(H_m)`
  (two-layer MLPs, :math:`d_H` = the item ID size), reconstruction loss
  :math:`\mathcal L_r = \sum_m \lambda_m \mathrm{MSE}(\hat I_m, I_m)` over the items of the
  batch. Without the auto-encoder (ablation) :math:`H_m = I_m`.
* cross-modal GAN (eq. 3-7, 16-17): a generator :math:`\hat H_m = \mathcal G_m(E)` and a
  discriminator :math:`\mathcal D_m(E, H) \in (0, 1)` on (ID, modality) pairs,

  .. math::
      \mathcal L_{\mathcal D} = \sum_m \mathrm{BCE}(\mathcal D_m(E, H_m), 1)
          + \mathrm{BCE}(\mathcal D_m(E, \hat H_m), 0), \qquad
      \mathcal L_{\mathcal G} = \sum_m \mathrm{BCE}(\mathcal D_m(E, \hat H_m), 1),

  trained by their own optimiser after epoch K (Algorithm 1; the fit loop,
  :func:`graphrec.train.ctr.fit_ctr`, alternates one D and one G step per batch). The
  GAN sees :math:`E` and :math:`H_m` detached: it moves only the generator and the
  discriminator, and the backbone sees :math:`\hat H_m` detached (Algorithm 1 updates
  the backbone with :math:`\mathcal L_r + \mathcal L_{CTR}` only).
* auto-difference (eq. 8-9): :math:`W^s_m = W_m [H_m; \hat H_m; H_m \odot \hat H_m;
  H_m - \hat H_m]`, :math:`H'_m = H_m - W^s_m \odot \hat H_m` for :math:`m \in \{V, T\}`,
  :math:`H'_E = E`.

**Modal-Interest Network** (section 3.3): per modality, attention pooling of the
history w.r.t. the candidate :math:`c` (eq. 10) and a user gate (eq. 11),

.. math::
    \tilde H_m = \sum_{i} \mathrm{ReLU}\Big(\frac{s_i}{D}\Big) H'^{\,i}_m, \quad
    s_i = H'^{\,c}_m \cdot H'^{\,i}_m, \quad D = \sum_j s_j, \qquad
    C_m = d_m\,\mathrm{softmax}(\rho_m(U)),

and the prediction (eq. 12) from :math:`[C_E \odot \tilde H_E; C_V \odot \tilde H_V;
C_T \odot \tilde H_T; U]`. Without MIN (ablation) :math:`\tilde H_m` is the mean of the
history and :math:`C_m = 1`.

Readings of points the paper leaves open (``docs/models/ctr.md``):

* eq. 10's normaliser :math:`D` can approach 0 (scores of both signs), which makes the
  weights explode; it is kept away from zero, :math:`|D| \ge \delta \sum_j |s_j|`
  (``min_delta``, default 0.1), with its sign kept, so weights are bounded by
  :math:`1/\delta`.
* eq. 12 feeds only the pooled history and the user to a linear layer; Figure 2 says
  "all features are merged and sent into the downstream network". By default the
  candidate's :math:`H'^{\,c}_m` join the concatenation (``candidate_in_head``) and the
  downstream network is the MLP [128, 64] that MARN fixes for all models on Amazon
  (``hidden=()`` gives eq. 12's single linear layer; ``candidate_in_head=False,
  hidden=()`` is eq. 12 as printed, ``graphrec train gmmf --eq12-head``).
* eq. 11's gate is a softmax over the :math:`d_m` dimensions, whose entries average
  :math:`1/d_m`: it shrinks every pooled vector about :math:`d_m`-fold. We scale it by
  :math:`d_m` (a uniform gate is then the identity; the proportions between dimensions
  are the paper's). Measured on amazon-scientific (seed 0, 20 epochs): validation AUC
  0.779 with the unscaled gate, 0.822 with the scaled one.
* U is the user ID embedding with the user side fields appended.

Ablation flags (Table 3): ``use_autoencoder`` (AE), ``use_cgan`` (CGAN + auto-difference,
which the paper always combines), ``use_min`` (MIN). All off is the paper's "Base"
(concatenation of ID embedding and original features).

Modality weights for the Figure 4 heat map (:meth:`GMMF.modality_attention`): the share
of each modality in the gated user representation,
:math:`\|C_m \odot \tilde H_m\| / \sum_{m'} \|C_{m'} \odot \tilde H_{m'}\|`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError, DataError
from graphrec.models.ctr.base import (
    CTRBatch,
    CTRModel,
    CTRSchema,
    ItemIDEncoder,
    MLP,
    SideEncoder,
    UserEncoder,
    masked_mean,
    normalized_features,
)

__all__ = ["GMMF", "min_pooling"]


def min_pooling(cand: Tensor, hist: Tensor, mask: Tensor, delta: float = 0.1) -> tuple[Tensor, Tensor]:
    """Eq. 10: ReLU(s_i / D) weights and the pooled history (module doc).

    Args:
        cand: ``(B, d)``; hist: ``(B, L, d)``; mask: ``(B, L)`` valid steps.
    Returns:
        ``(pooled (B, d), weights (B, L))``.
    """
    m = mask.to(hist.dtype)
    s = (hist * cand.unsqueeze(1)).sum(-1) * m
    d = s.sum(1, keepdim=True)
    floor = delta * s.abs().sum(1, keepdim=True) + 1e-6
    sign = torch.where(d >= 0, torch.ones_like(d), -torch.ones_like(d))
    d_safe = sign * torch.maximum(d.abs(), floor)
    w = F.relu(s / d_safe) * m
    return (w.unsqueeze(-1) * hist).sum(1), w


class GMMF(CTRModel):
    """Generative multimodal fusion for CTR (module doc).

    Args:
        schema: data sizes, content features, side-field codes.
        id_dim: item ID size (paper: 32); also the size modalities are reduced to.
        side_dim: item side-field (category) size (paper: 16).
        user_dim, user_side_dim: user ID (paper: 32) and user side sizes.
        ae_hidden: hidden width of the auto-encoders.
        gan_hidden: hidden width of generators and discriminators.
        recon_weight: lambda_m of eq. 14 (same for every modality).
        use_autoencoder, use_cgan, use_min: ablation flags (Table 3).
        candidate_in_head: add the candidate's representations to the prediction input.
        hidden: downstream MLP hidden sizes (``()``: eq. 12's linear layer).
        min_delta: floor of eq. 10's normaliser (module doc).
        modalities: content modalities used (None: all).
        item_graphs, graph_layers: graph enrichment of the item ID embedding.
    """

    def __init__(
        self,
        schema: CTRSchema,
        id_dim: int = 32,
        side_dim: int = 16,
        user_dim: int = 32,
        user_side_dim: int = 8,
        ae_hidden: int = 256,
        gan_hidden: int = 64,
        recon_weight: float = 1.0,
        use_autoencoder: bool = True,
        use_cgan: bool = True,
        use_min: bool = True,
        candidate_in_head: bool = True,
        hidden: Sequence[int] = (128, 64),
        min_delta: float = 0.1,
        modalities: Sequence[str] | None = None,
        item_graphs: Sequence[Tensor] | None = None,
        graph_layers: int = 2,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = schema.n_users, schema.n_items
        mods = schema.chosen_modalities(modalities)
        if not schema.modalities:
            raise DataError(
                "GMMF needs item content features, and these data have none: train it on data with features (a "
                "UniSRec folder with its PREFIX.feat1CLS/.feat3CLS files, a MovieLens folder with text_minilm.npy), or "
                "add them to a graphrec dataset with `graphrec features` or `graphrec prepare --feature MODALITY=FILE`"
            )
        if not mods:
            raise ConfigError(f"GMMF needs at least one content modality: choose modalities among "
                              f"{', '.join(schema.modalities)} (None: all)")
        self.modalities = mods
        self.use_autoencoder, self.use_cgan, self.use_min = use_autoencoder, use_cgan, use_min
        self.candidate_in_head = candidate_in_head
        self.recon_weight = recon_weight
        self.min_delta = min_delta

        self.ids = ItemIDEncoder(schema.n_items, id_dim, item_graphs, graph_layers)
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, side_dim)
        self.user_enc = UserEncoder(schema, user_dim, user_side_dim)
        d_e = id_dim + self.item_side.out_dim
        self.e_dim = d_e
        self.encoders, self.decoders = nn.ModuleDict(), nn.ModuleDict()
        self.generators, self.discriminators, self.autodiff = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        self.gates = nn.ModuleDict()
        self.h_dims: dict[str, int] = {}
        for m in mods:
            x = schema.item_features[m]
            self.register_buffer(f"feat_{m}", normalized_features(x), persistent=False)
            d_in = x.shape[1]
            if use_autoencoder:
                self.encoders[m] = MLP(d_in, (ae_hidden,), id_dim)
                self.decoders[m] = MLP(id_dim, (ae_hidden,), d_in)
                d_h = id_dim
            else:
                d_h = d_in
            self.h_dims[m] = d_h
            if use_cgan:
                self.generators[m] = MLP(d_e, (gan_hidden,), d_h)
                self.discriminators[m] = MLP(d_e + d_h, (gan_hidden,), 1)
                self.autodiff[m] = nn.Linear(4 * d_h, d_h)
            if use_min:
                self.gates[m] = nn.Linear(self.user_enc.out_dim, d_h)
        if use_min:
            self.gates["id"] = nn.Linear(self.user_enc.out_dim, d_e)
        pooled = d_e + sum(self.h_dims.values())
        head_in = self.user_enc.out_dim + pooled + (pooled if candidate_in_head else 0)
        self.head = MLP(head_in, hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.ids.reset_parameters()
        self.item_side.reset_parameters()
        self.user_enc.reset_parameters()
        for group in (self.encoders, self.decoders, self.generators, self.discriminators):
            for mlp in group.values():
                mlp.reset_parameters()
        for lin in list(self.autodiff.values()) + list(self.gates.values()):
            lin.reset_parameters()
        self.head.reset_parameters()

    # ------------------------------------------------------------------ item parts
    def _e_table(self) -> Tensor:
        """E of every item: the (graph-enriched) ID embedding with the side fields."""
        s = self.item_side.table()
        e = self.ids.table()
        return e if s is None else torch.cat([e, s], -1)

    def _e_rows(self, items: Tensor) -> Tensor:
        """E of ``items`` (1-D) only: ``_e_table()[items]``."""
        s = self.item_side.rows(items)
        e = self.ids.rows(items)
        return e if s is None else torch.cat([e, s], -1)

    def _h(self, m: str, items: Tensor) -> Tensor:
        x = getattr(self, f"feat_{m}")[items]
        return self.encoders[m](x) if self.use_autoencoder else x

    def _item_reps(self, items: Tensor, e: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``({"id": H'_E, m: H'_m}, {m: H_m})`` of ``items`` (any shape) with their E
        ``e``, eq. 1 and 8."""
        reps, encoded = {"id": e}, {}
        for m in self.modalities:
            h = encoded[m] = self._h(m, items)
            if self.use_cgan:
                h_hat = self.generators[m](e.detach()).detach()
                w_s = self.autodiff[m](torch.cat([h, h_hat, h * h_hat, h - h_hat], -1))
                h = h - w_s * h_hat
            reps[m] = h
        return reps, encoded

    # ------------------------------------------------------------------ forward
    def _user_parts(
        self, batch: CTRBatch
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], tuple[Tensor, Tensor, dict[str, Tensor]]]:
        """User vector, gated pooled histories, candidate representations, and the batch's
        encoding ``(distinct items, inverse index, {m: H_m})`` that eq. 14 reuses."""
        # representations of the batch's distinct items, computed once and gathered
        flat = torch.cat([batch.items, batch.hist_index.reshape(-1)])
        uniq, inv = torch.unique(flat, return_inverse=True)
        reps, encoded = self._item_reps(uniq, self._e_rows(uniq))
        b = len(batch)
        cand = {m: r[inv[:b]] for m, r in reps.items()}
        hist = {m: r[inv[b:]].reshape(*batch.history.shape, -1) for m, r in reps.items()}
        u = self.user_enc(batch.users)
        gated: dict[str, Tensor] = {}
        for m in ["id"] + self.modalities:
            if self.use_min:
                pooled, _ = min_pooling(cand[m], hist[m], batch.mask, self.min_delta)
                gated[m] = torch.softmax(self.gates[m](u), -1) * pooled * pooled.shape[-1]
            else:
                gated[m] = masked_mean(hist[m], batch.mask)
        return u, gated, cand, (uniq, inv, encoded)

    def _logits(self, u: Tensor, gated: dict[str, Tensor], cand: dict[str, Tensor]) -> Tensor:
        names = ["id"] + self.modalities
        parts = [gated[m] for m in names] + [u]
        if self.candidate_in_head:
            parts += [cand[m] for m in names]
        return self.head(torch.cat(parts, -1)).squeeze(-1)

    def forward(self, batch: CTRBatch) -> Tensor:
        u, gated, cand, _ = self._user_parts(batch)
        return self._logits(u, gated, cand)

    def reconstruction_loss(self, batch: CTRBatch, encoding: tuple[Tensor, Tensor, dict[str, Tensor]]) -> Tensor:
        """Eq. 14 over the items the batch holds (candidates and unpadded behaviours), from
        the H_m the forward pass computed (``encoding`` of :meth:`_user_parts`)."""
        uniq, inv, encoded = encoding
        loss = torch.zeros((), device=uniq.device)
        if not self.use_autoencoder:
            return loss
        b = len(batch)
        used = torch.zeros(len(uniq), dtype=torch.bool, device=uniq.device)
        used[inv[:b]] = True
        used[inv[b:][batch.mask.reshape(-1)]] = True  # padding (clamped to item 0) is not an item
        for m in self.modalities:
            x = getattr(self, f"feat_{m}")[uniq[used]]
            loss = loss + self.recon_weight * F.mse_loss(self.decoders[m](encoded[m][used]), x)
        return loss

    def losses(self, batch: CTRBatch) -> dict[str, Tensor]:
        assert batch.labels is not None
        u, gated, cand, encoding = self._user_parts(batch)
        bce = F.binary_cross_entropy_with_logits(self._logits(u, gated, cand), batch.labels.float())
        rec = self.reconstruction_loss(batch, encoding)
        return {"loss": bce + rec, "ctr": bce, "recon": rec}

    # ------------------------------------------------------------------ GAN
    def gan_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]] | None:
        if not self.use_cgan:
            return None
        return list(self.generators.parameters()), list(self.discriminators.parameters())

    def gan_condition(self, batch: CTRBatch) -> tuple[Tensor, Tensor]:
        """The batch's distinct candidates and their E, the GAN's condition (no gradient:
        the D and G steps train only D and G). With an item graph E is a propagation over
        all items; the fit loop computes it once for both steps."""
        items = torch.unique(batch.items)
        with torch.no_grad():
            e = self._e_rows(items)
        return items, e

    def discriminator_loss(self, batch: CTRBatch, condition: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Eq. 17: real pairs (E, H_m) -> 1, generated pairs (E, G_m(E)) -> 0."""
        items, e = self.gan_condition(batch) if condition is None else condition
        loss = torch.zeros((), device=e.device)
        for m in self.modalities:
            d = self.discriminators[m]
            with torch.no_grad():
                h = self._h(m, items)
            real = d(torch.cat([e, h], -1)).squeeze(-1)
            fake = d(torch.cat([e, self.generators[m](e).detach()], -1)).squeeze(-1)
            loss = loss + F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            loss = loss + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return loss

    def generator_loss(self, batch: CTRBatch, condition: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Eq. 16: generated pairs (E, G_m(E)) should look real to D_m (needs no H_m)."""
        _, e = self.gan_condition(batch) if condition is None else condition
        loss = torch.zeros((), device=e.device)
        for m in self.modalities:
            fake = self.discriminators[m](torch.cat([e, self.generators[m](e)], -1)).squeeze(-1)
            loss = loss + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        return loss

    # ------------------------------------------------------------------ inspection
    def modality_attention(self, batch: CTRBatch) -> tuple[list[str], Tensor] | None:
        _, gated, _, _ = self._user_parts(batch)
        names = ["id"] + self.modalities
        norms = torch.stack([gated[m].norm(dim=-1) for m in names], -1)
        return names, norms / norms.sum(-1, keepdim=True).clamp_min(1e-12)

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.ids)

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, "
            f"use_autoencoder={self.use_autoencoder}, use_cgan={self.use_cgan}, use_min={self.use_min}"
        )
