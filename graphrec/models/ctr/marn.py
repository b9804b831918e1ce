r"""MARN: "Adversarial Multimodal Representation Learning for Click-Through Rate
Prediction" (Li, Wang, Tan, Zeng, Ou, Zheng; WWW'20; arXiv:2003.07162),
layered on graphrec's graph-enriched item ID encoder.

Modalities :math:`m = 1..M`: ``id`` (the item ID embedding, graph-enriched when
``item_graphs`` are given, with the side-field embeddings appended) and every content
modality (frozen features). Each is first projected to the same size :math:`d`
(:math:`x_m = P_m\,\mathrm{input}_m`, the modality embedding layer), then split
(section 3.2) into

.. math::
    s_m = \tanh(W^s_m x_m) \ \text{(modality-specific, own projection)}, \qquad
    z_m = \tanh(W^{inv} x_m) \ \text{(modality-invariant, shared projection)}.

**MAF** (eq. 2-3), vector attention over the specific features, per dimension:

.. math::
    a_m = \mathrm{softmax}_m\big(V \tanh(W s_m + b)\big) \in \mathbb{R}^d, \qquad
    s = \sum_m a_m \odot s_m .

**DDMA** (section 3.3.2). The first discriminator :math:`D_1` (an M-class classifier)
learns on :math:`z_m` with the gradient stopped into :math:`W^{inv}`; its confidence
gives the weight :math:`w_m = 1 - D_1(z_m)_m` (detached). The second discriminator
:math:`D_2` classifies the weighted features :math:`w_m z_m` behind a gradient reversal
layer (Ganin & Lempitsky 2015), so :math:`D_2` minimises its cross-entropy while
:math:`W^{inv}` maximises it (the min-max game of eq. 7). The invariant representation
is the max-pool :math:`z = \max_m w_m z_m`. The modality-specific discriminator
(section 3.3.3) shares :math:`D_2`'s matrix and classifies :math:`s_m` computed from
:math:`x_m` detached (its gradient trains :math:`W^s_m`, not the embedding layer), which
pushes the specific features of different modalities apart. Item representation:
:math:`v = s + z`.

**APGRU** (section 3.4.1), a GRU over the history whose update gate also sees the
behaviour property :math:`p_t` (time bucket, or recency rank without timestamps),
followed by candidate attention over the hidden states:

.. math::
    u_t &= \sigma(W_u v_t + U_u h_{t-1} + V_u p_t + b_u), \quad
    r_t = \sigma(W_r v_t + U_r h_{t-1} + b_r), \\
    h_t &= (1 - u_t) \odot h_{t-1} + u_t \odot \tanh(W_h v_t + U_h (r_t \odot h_{t-1}) + b_h), \\
    \alpha_t &= \mathrm{softmax}_t\, \mathrm{MLP}([h_t; v_c; h_t \odot v_c]), \qquad
    h_u = \sum_t \alpha_t h_t .

(The exact update-gate formula is lost in the paper's text; adding the property
embedding to the gate's pre-activation is our reading.) Prediction: MLP [128, 64] on
:math:`[p_u; h_u; v_c]`. Loss (eq. 10):

.. math::
    \mathcal L = \mathcal L_{CTR} + \lambda_0 (\mathcal L_{D_2} + \mathcal L_{s}) + \mathcal L_{D_1},

with the reversal coefficient ramped :math:`\lambda_p = 2 / (1 + e^{-\gamma p}) - 1`,
:math:`\gamma = 10`, :math:`p` the training progress from 0 to 1 (section 4.1), set by the
fit loop through :meth:`MARN.set_progress`.

Training (section 4.1): AdaGrad, learning rate 0.1, batches of 32 on Amazon, i.e.
``CTRConfig(optimizer="adagrad", lr=0.1, batch_size=32)`` (``--optimizer adagrad --lr 0.1
--batch-size 32``); graphrec's default is Adam 1e-3, batches of 256, for every model. The
paper names no starting accumulator: AdaGrad's starts at TensorFlow's 0.1
(:data:`graphrec.train.ctr.ADAGRAD_INITIAL_ACCUMULATOR`), not PyTorch's 0, from which
the first step moves every parameter by about +-lr.

Ablations (Table 3): ``fusion="concat"`` (BaseModel+CONC: the sum of the projected
modality features), ``adversarial="none" | "adv" | "ddma"`` (``adv``: the original
one-to-one adversarial transfer, unweighted features, no :math:`D_1`, no
modality-specific discriminator), ``sequence="gru" | "apgru"`` (BaseModel: a plain GRU
whose last state is the user interest), ``modalities`` (``["id"]``: BaseModel+IDs,
``["image"]``: BaseModel+IMAGE).

Modality weights for the Figure 4 heat map (:meth:`MARN.modality_attention`): the L2
norm of the candidate's vector attention :math:`\|a_m\|` per modality (section 4.7),
normalised to sum to one.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.ctr.base import (
    CTRBatch,
    CTRModel,
    CTRSchema,
    ItemIDEncoder,
    MLP,
    SideEncoder,
    UserEncoder,
    distinct_items,
    normalized_features,
)
from graphrec.nn.reversal import GradientReversal, grad_reverse

__all__ = ["MARN", "GradientReversal", "grad_reverse", "lambda_schedule", "APGRU"]

FUSIONS = ("maf", "concat")
ADVERSARIAL = ("ddma", "adv", "none")
SEQUENCES = ("apgru", "gru")


def lambda_schedule(progress: float, gamma: float = 10.0) -> float:
    """MARN section 4.1: 2 / (1 + exp(-gamma p)) - 1, from 0 at p = 0 towards 1."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class APGRU(nn.Module):
    """Attentional property GRU (module doc); ``use_property=False`` is a plain GRU cell."""

    def __init__(self, dim: int, n_properties: int, property_dim: int = 8, use_property: bool = True,
                 attention_hidden: Sequence[int] = (32,)) -> None:
        super().__init__()
        self.dim = dim
        self.use_property = use_property
        self.x_gates = nn.Linear(dim, 3 * dim)
        self.h_gates = nn.Linear(dim, 3 * dim, bias=False)
        self.prop = nn.Embedding(n_properties, property_dim)
        self.prop_gate = nn.Linear(property_dim, dim, bias=False)
        self.attention = MLP(3 * dim, attention_hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.x_gates.reset_parameters()
        self.h_gates.reset_parameters()
        nn.init.normal_(self.prop.weight, std=0.1)
        self.prop_gate.reset_parameters()
        self.attention.reset_parameters()

    def states(self, seq: Tensor, props: Tensor, mask: Tensor) -> Tensor:
        """Hidden states ``(B, L, d)``; padding steps keep the previous state."""
        b, length, _ = seq.shape
        h = seq.new_zeros(b, self.dim)
        xg = self.x_gates(seq)
        pg = self.prop_gate(self.prop(props)) if self.use_property else None
        out = []
        m = mask.to(seq.dtype).unsqueeze(-1)
        # unbind once: indexing xg[:, t] in the loop would make autograd allocate and
        # zero a full (B, L, 3d) gradient per step (O(L^2) memory traffic)
        steps_x = xg.unbind(1)
        steps_p = pg.unbind(1) if pg is not None else (None,) * length
        steps_m = m.unbind(1)
        for x_t, p_t, m_t in zip(steps_x, steps_p, steps_m):
            xr, xu, xh = x_t.chunk(3, -1)
            hr, hu, hh = self.h_gates(h).chunk(3, -1)
            r = torch.sigmoid(xr + hr)
            pre_u = xu + hu if p_t is None else xu + hu + p_t
            u = torch.sigmoid(pre_u)
            cand = torch.tanh(xh + r * hh)
            h_new = (1 - u) * h + u * cand
            h = m_t * h_new + (1 - m_t) * h
            out.append(h)
        return torch.stack(out, 1)

    def attend(self, states: Tensor, cand: Tensor, mask: Tensor) -> Tensor:
        c = cand.unsqueeze(1).expand_as(states)
        score = self.attention(torch.cat([states, c, states * c], -1)).squeeze(-1)
        score = score.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(score, 1)
        alpha = torch.nan_to_num(alpha, nan=0.0)  # a sample without history
        return (alpha.unsqueeze(-1) * states).sum(1)


class MARN(CTRModel):
    """Multimodal adversarial representation network (module doc).

    Args:
        schema: data sizes, content features, side-field codes, property codes.
        dim: modality embedding / item representation size d.
        id_dim, side_dim: item ID (paper: 32) and side-field (category, 16) sizes.
        user_dim, user_side_dim: user ID and side sizes.
        fusion: ``maf`` or ``concat``.
        adversarial: ``ddma``, ``adv`` or ``none``.
        sequence: ``apgru`` or ``gru``.
        adv_weight: lambda_0 of the adversarial terms.
        gamma: steepness of the lambda schedule (paper: 10).
        property_dim: behaviour-property embedding size.
        hidden: prediction MLP hidden sizes (paper, Amazon: [128, 64]).
        modalities: ``"id"`` and/or content modality names (None: id + all content).
        item_graphs, graph_layers: graph enrichment of the item ID embedding.
    """

    def __init__(
        self,
        schema: CTRSchema,
        dim: int = 32,
        id_dim: int = 32,
        side_dim: int = 16,
        user_dim: int = 32,
        user_side_dim: int = 8,
        fusion: str = "maf",
        adversarial: str = "ddma",
        sequence: str = "apgru",
        adv_weight: float = 0.1,
        gamma: float = 10.0,
        property_dim: int = 8,
        hidden: Sequence[int] = (128, 64),
        modalities: Sequence[str] | None = None,
        item_graphs: Sequence[Tensor] | None = None,
        graph_layers: int = 2,
    ) -> None:
        super().__init__()
        for name, value, choices in (("fusion", fusion, FUSIONS), ("adversarial", adversarial, ADVERSARIAL),
                                     ("sequence", sequence, SEQUENCES)):
            if value not in choices:
                raise ConfigError(f"{name} {value!r} is not one of {', '.join(choices)}")
        self.n_users, self.n_items = schema.n_users, schema.n_items
        mods = schema.chosen_modalities(modalities, with_id=True)
        if not mods:
            raise ConfigError("MARN needs at least one modality")
        if adversarial != "none" and len(mods) < 2:
            raise ConfigError("the adversarial network needs at least two modalities: use adversarial='none' "
                              "(CLI: --adversarial none)")
        self.modalities = mods
        self.fusion, self.adversarial, self.sequence = fusion, adversarial, sequence
        self.adv_weight, self.gamma = adv_weight, gamma
        self.progress = 0.0
        self.dim = dim

        self.ids = ItemIDEncoder(schema.n_items, id_dim, item_graphs, graph_layers) if "id" in mods else None
        self.item_side = SideEncoder(schema.item_side, schema.vocab_sizes, side_dim) if "id" in mods else None
        self.embed = nn.ModuleDict()
        for m in mods:
            if m == "id":
                assert self.item_side is not None
                self.embed[m] = nn.Linear(id_dim + self.item_side.out_dim, dim)
            else:
                self.register_buffer(f"feat_{m}", normalized_features(schema.item_features[m]), persistent=False)
                self.embed[m] = nn.Linear(schema.item_features[m].shape[1], dim)
        self.specific = nn.ModuleDict({m: nn.Linear(dim, dim) for m in mods})
        self.invariant = nn.Linear(dim, dim) if adversarial != "none" else None
        self.att_w = nn.Linear(dim, dim)
        self.att_v = nn.Linear(dim, dim, bias=False)
        n_mod = len(mods)
        self.d1 = nn.Linear(dim, n_mod) if adversarial == "ddma" else None
        self.d2 = nn.Linear(dim, n_mod) if adversarial != "none" else None
        self.user_enc = UserEncoder(schema, user_dim, user_side_dim)
        self.gru = APGRU(dim, schema.n_properties, property_dim, use_property=sequence == "apgru")
        self.head = MLP(self.user_enc.out_dim + 2 * dim, hidden, 1)
        self._aux: dict[str, Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.ids is not None:
            self.ids.reset_parameters()
        if self.item_side is not None:
            self.item_side.reset_parameters()
        for lin in list(self.embed.values()) + list(self.specific.values()):
            lin.reset_parameters()
        for lin in (self.invariant, self.att_w, self.att_v, self.d1, self.d2):
            if lin is not None:
                lin.reset_parameters()
        self.user_enc.reset_parameters()
        self.gru.reset_parameters()
        self.head.reset_parameters()

    def set_progress(self, progress: float) -> None:
        self.progress = float(progress)

    def lam(self) -> float:
        return lambda_schedule(self.progress, self.gamma)

    # ------------------------------------------------------------------ item representation
    def _modality_embeddings(self, items: Tensor | None = None) -> Tensor:
        """``(n, M, d)``: the projected modality embeddings x_m of ``items`` (1-D; every
        item when None), each row computed from that item's inputs alone."""
        out = []
        for m in self.modalities:
            if m == "id":
                assert self.ids is not None and self.item_side is not None
                if items is None:
                    s, e = self.item_side.table(), self.ids.table()
                else:
                    s, e = self.item_side.rows(items), self.ids.rows(items)
                inp = e if s is None else torch.cat([e, s], -1)
            else:
                inp = getattr(self, f"feat_{m}")
                if items is not None:
                    inp = inp[items]
            out.append(self.embed[m](inp))
        return torch.stack(out, 1)

    def _specific(self, x: Tensor) -> Tensor:
        return torch.stack([torch.tanh(self.specific[m](x[:, k])) for k, m in enumerate(self.modalities)], 1)

    def _attention(self, s: Tensor) -> Tensor:
        """MAF vector attention ``(n, M, d)``, softmax over modalities per dimension."""
        return torch.softmax(self.att_v(torch.tanh(self.att_w(s))), dim=1)

    def item_table(self, aux_items: Tensor | None = None) -> Tensor:
        """``(n_items, d)`` representations of every item; with ``aux_items``, the
        adversarial losses of those items are stored for :meth:`losses`. The reference
        :meth:`item_reps` equals; training and prediction need only the batch's items."""
        return self.item_reps(None, aux_items)

    def item_reps(self, items: Tensor | None = None, aux: Tensor | None = None) -> Tensor:
        """``(len(items), d)`` representations v = s + z of ``items`` (1-D; every item
        when None), each computed from the item's own modality embeddings: the rows of
        :meth:`item_table`. With ``aux`` (positions in ``items``), the adversarial losses
        (D2, D1, the specific discriminator) of those items are stored for
        :meth:`losses`. No term needs other items: D1's weights w_m are per item, and its
        loss, like D2's, is a mean over the batch's distinct candidates."""
        x = self._modality_embeddings(items)
        s = self._specific(x)
        spec = (self._attention(s) * s).sum(1) if self.fusion == "maf" else s.sum(1)
        if self.adversarial == "none":
            return spec
        assert self.invariant is not None and self.d2 is not None
        z = torch.tanh(self.invariant(x))  # (n, M, d)
        n_mod = len(self.modalities)
        if self.adversarial == "ddma":
            assert self.d1 is not None
            with torch.no_grad():
                p1 = torch.softmax(self.d1(z), -1)  # (n, M, M)
                w = 1.0 - torch.diagonal(p1, dim1=1, dim2=2)  # (n, M): 1 - D1(z_m)[m]
            zw = w.unsqueeze(-1) * z
        else:
            zw = z
        inv = zw.max(1).values
        if aux is not None:
            target = torch.arange(n_mod, device=x.device).expand(len(aux), n_mod).reshape(-1)
            za = zw[aux]
            adv = F.cross_entropy(self.d2(grad_reverse(za, self.lam())).reshape(-1, n_mod), target)
            self._aux = {"adv": adv}
            if self.adversarial == "ddma":
                assert self.d1 is not None
                d1 = F.cross_entropy(self.d1(z[aux].detach()).reshape(-1, n_mod), target)
                s_det = self._specific(x[aux].detach())
                spec_loss = F.cross_entropy(self.d2(s_det).reshape(-1, n_mod), target)
                self._aux.update({"d1": d1, "spec": spec_loss})
        return spec + inv

    # ------------------------------------------------------------------ forward
    def _encode(self, batch: CTRBatch, with_aux: bool = False) -> tuple[Tensor, Tensor]:
        """``(candidates (B, d), history (B, L, d))``: ``item_table()[batch.items]`` and
        ``item_table()[batch.hist_index]``, each distinct item of the batch computed once.
        ``with_aux``: store the adversarial losses of the batch's distinct candidates (the
        ``aux_items=torch.unique(batch.items)`` of :meth:`item_table`)."""
        items, cand, hist = distinct_items(batch)
        aux = None
        if with_aux:  # the distinct candidates, sorted, as positions in the sorted ``items``
            aux = torch.searchsorted(items, torch.unique(batch.items))
        reps = self.item_reps(items, aux)
        return reps[cand], reps[hist]

    def _logits(self, batch: CTRBatch, cand: Tensor, hist: Tensor) -> Tensor:
        """Logits from the candidate ``(B, d)`` and history ``(B, L, d)`` representations."""
        states = self.gru.states(hist, batch.props, batch.mask)
        if self.sequence == "apgru":
            interest = self.gru.attend(states, cand, batch.mask)
        else:
            interest = states[:, -1]  # padding keeps the last valid state
        x = torch.cat([self.user_enc(batch.users), interest, cand], -1)
        return self.head(x).squeeze(-1)

    def forward(self, batch: CTRBatch) -> Tensor:
        return self._logits(batch, *self._encode(batch))

    def losses(self, batch: CTRBatch) -> dict[str, Tensor]:
        assert batch.labels is not None
        self._aux = {}
        cand, hist = self._encode(batch, with_aux=self.adversarial != "none")
        bce = F.binary_cross_entropy_with_logits(self._logits(batch, cand, hist), batch.labels.float())
        out = {"ctr": bce}
        total = bce
        if self._aux:
            adv = self._aux["adv"] + self._aux.get("spec", torch.zeros_like(bce))
            total = total + self.adv_weight * adv + self._aux.get("d1", torch.zeros_like(bce))
            out.update(self._aux)
            out["lambda"] = torch.tensor(self.lam())
        out["loss"] = total
        return out

    def modality_attention(self, batch: CTRBatch) -> tuple[list[str], Tensor] | None:
        if self.fusion != "maf":
            return None
        x = self._modality_embeddings(batch.items)
        a = self._attention(self._specific(x)).norm(dim=-1)  # (B, M)
        return list(self.modalities), a / a.sum(-1, keepdim=True)

    def log_values(self) -> dict[str, float]:
        return self._graph_log(self.ids)

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={self.modalities}, fusion={self.fusion!r}, "
            f"adversarial={self.adversarial!r}, sequence={self.sequence!r}"
        )
