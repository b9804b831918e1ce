r"""SMORE: "Spectrum-based Modality Representation Fusion Graph Convolutional Network for
Multimodal Recommendation" (Ong, Khong; WSDM 2025, arXiv 2412.14978).

SMORE denoises and fuses the item modalities in the FREQUENCY domain of their projected
feature vectors, uses the results to gate the item ID embeddings on one item-item graph
per modality plus a fused item graph, and lets each user (and item) weigh the modal views
by its collaborative (LightGCN) representation.

**Spectrum modality fusion.** Each modality m of M (image, text, audio, ...) has raw item
features :math:`X_m` (fine-tuned) projected to d: :math:`P_m = X_m W_m + b_m`. Along the
feature dimension, :math:`\mathcal F` is the real FFT with orthonormal scaling
(``torch.fft.rfft(..., norm="ortho")``, bins :math:`k = 0..\lfloor d/2 \rfloor`);
:math:`W^c_m` (one per modality) and :math:`W^c_f` (fusion) are learnable complex filters
of one value per bin:

.. math::
    \dot H_m = \mathcal F^{-1}\big(\mathcal F(P_m) \odot W^c_m\big), \qquad
    \dot H_f = \mathcal F^{-1}\Big(W^c_f \odot \prod_{m=1}^{M} \mathcal F(P_m)\Big).

By the convolution theorem these are circular convolutions along the feature dimension,
:math:`\dot H_m = P_m \circledast w_m` and
:math:`\dot H_f = d^{-(M-1)/2}\, P_1 \circledast \dots \circledast P_M \circledast w_f`
(:math:`w = \mathrm{DFT}^{-1}(W^c)`, the filter's real kernel; the scale comes from the
orthonormal transforms). ``irfft`` reads the half spectrum as Hermitian, so the imaginary
parts of the DC bin (and of the Nyquist bin when d is even) of a filter have no effect.

**Item graphs** (built by :func:`graphrec.train.builders.smore.build_smore`, passed in).
Per modality, the top-:math:`k_m` cosine neighbours of each item's raw features, with the
cosine as edge value and the item itself kept (as MMRec's dense top-k), normalised with
the row sums :math:`D_m`; the fused graph takes, edge by edge, the largest normalised
value over the modality graphs (max-pooling over the union of their edges):

.. math::
    \hat S_m = D_m^{-1/2} S_m D_m^{-1/2}, \qquad
    \hat S_f[i, j] = \max_{m:\,(i,j) \in \hat S_m} \hat S_m[i, j].

**Views.** Every view v in {1..M, f} gates the item ID embeddings :math:`E_i` with its
spectral representation, propagates over its item graph for :math:`L'` layers, and
gives users the normalised sum of their items, with
:math:`\hat R = D_u^{-1/2} R D_i^{-1/2}` (the user-item block of the normalised
bipartite graph :math:`\hat A`):

.. math::
    h^{(0)}_v = E_i \odot \sigma(\dot H_v G_v + g_v), \qquad
    h_v = \hat S_v^{L'} h^{(0)}_v, \qquad
    H_v = [\hat R h_v ;\ h_v].

**Behavioural view**: LightGCN over :math:`\hat A`, layers 0..L averaged,
:math:`\bar E = \frac{1}{L+1}\sum_{l=0}^{L} \hat A^l [E_u; E_i]`.

**Modality-aware preference module**, row by row (user or item node n): the fused view
sets a per-dimension attention over each modal view (softmax over the d dimensions of the
row), and the node's behavioural representation gates every view:

.. math::
    a_m = \mathrm{softmax}_d\big(\tanh(H_f Q_m + q_m)\, Q'_m\big), \qquad
    \rho_v = \sigma(\bar E U_v + u_v),

.. math::
    \mathrm{side} = \frac{1}{M+1}\Big(\sum_{m=1}^{M} \rho_m \odot a_m \odot H_m
      + \rho_f \odot H_f\Big), \qquad
    e = \bar E + \mathrm{side}, \qquad \hat y_{ui} = e_u^\top e_i.

While training, dropout of rate ``dropout`` (scaled by :math:`1/(1-p)`) is applied to the
preference gates :math:`\rho_v`; scores never use dropout.

**Loss** of a batch of B triples, with the InfoNCE of two row-aligned tables over the
batch's rows (in-batch negatives, cosine similarities, temperature τ):

.. math::
    \mathcal L = \mathrm{BPR}(e_u, e_{i^+}, e_{i^-})
      + \frac{\lambda}{2B}\sum \big(\|e_u\|^2 + \|e_{i^+}\|^2 + \|e_{i^-}\|^2\big)
      + \lambda_{cl}\big(\mathrm{NCE}(\mathrm{side}_{i^+}, \bar E_{i^+})
                       + \mathrm{NCE}(\mathrm{side}_u, \bar E_u)\big),

.. math::
    \mathrm{NCE}(A, B) = \frac1B \sum_r -\ln
      \frac{\exp(\cos(a_r, b_r)/τ)}{\sum_s \exp(\cos(a_r, b_s)/τ)} .

**Readings.** Only the abstract, the official repository's README and framework figure
(github kennethorq/SMORE) could be read here, not the paper's method section. The figure
fixes the structure above (FFT of the text and visual embeddings, filters
:math:`W^c_T, W^c_V`, the product of both spectra with :math:`W^c_F`, inverse FFT; text,
visual and max-pooled fusion views gating the raw item ID embeddings; user-item
behavioural view; modality-aware preference module; :math:`\mathcal L_{cl}` and
:math:`\mathcal L_{bpr}`). The details follow the authors' code (identical to MMRec's
``models/smore.py``; read, not copied): the filters' real and imaginary parts are drawn
from N(0, 1); the projections, attention and gates are linear layers with PyTorch's
default initialisation, ID embeddings Xavier-uniform; the features are fine-tuned; the
L2 term is on the batch's FINAL representations; the InfoNCE pairs the side and
behavioural representations of the batch's users and of its positive items. With
modality names other than image/text the model is the same for any M >= 1 (one filter,
graph, gate and attention per modality; the fused spectrum is the product of all M).

Computational reading: the row-wise preference module (attention, gates, dropout) runs
in :meth:`SMORE.loss` for the batch's DISTINCT users and items only (one dropout mask per
node and batch, as the reference's whole-table dropout); the rows never reaching the loss
are not computed. Dropout masks are drawn on the CPU from the model's own generator,
seeded from torch's global RNG in :meth:`SMORE.reset_parameters`: a model built after
``torch.manual_seed`` draws the same masks in every run, and two copies built from one
seed draw the same masks on any device.

Shapes: ``adj`` is the normalised bipartite graph :math:`\hat A` (n_users + n_items
square, torch sparse; user u is row u, item i row n_users + i); ``item_graphs[m]`` and
``fusion_graph`` are (n_items x n_items) torch sparse; ``features[m]`` is (n_items, d_m).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.models.base import Recommender
from graphrec.models.lightgcn import LightGCN
from graphrec.nn import SparseOperator, bpr_loss, csr_transpose, l2_penalty, propagate

__all__ = ["SMORE", "FUSION", "spectrum_fusion", "info_nce"]

#: the name of the fused view (not a modality name)
FUSION = "fusion"


def spectrum_fusion(
    projected: Sequence[Tensor], filters: Sequence[Tensor], fusion_filter: Tensor
) -> tuple[list[Tensor], Tensor]:
    r"""SMORE's spectrum modality fusion (module doc).

    Args:
        projected: M real tensors (n, d), the projected modality features :math:`P_m`.
        filters: M complex tensors (d // 2 + 1,), the per-modality filters :math:`W^c_m`.
        fusion_filter: complex (d // 2 + 1,), :math:`W^c_f`.

    Returns:
        the denoised :math:`\dot H_m` (a list, one per modality) and the fused
        :math:`\dot H_f`, each (n, d).
    """
    if not projected or len(projected) != len(filters):
        raise ConfigError(f"spectrum_fusion needs one filter per modality, got {len(projected)} and {len(filters)}")
    d = projected[0].shape[-1]
    spectra = [torch.fft.rfft(p, dim=-1, norm="ortho") for p in projected]
    denoised = [torch.fft.irfft(s * w, n=d, dim=-1, norm="ortho") for s, w in zip(spectra, filters)]
    product = spectra[0]
    for s in spectra[1:]:
        product = product * s
    fused = torch.fft.irfft(product * fusion_filter, n=d, dim=-1, norm="ortho")
    return denoised, fused


def info_nce(a: Tensor, b: Tensor, temperature: float, counts: Tensor | None = None) -> Tensor:
    r"""Mean over rows r of :math:`-\ln \frac{\exp(\cos(a_r, b_r)/τ)}{\sum_s \exp(\cos(a_r, b_s)/τ)}`
    (in-batch negatives), computed stably as a cross-entropy of the logits.

    ``counts`` (optional, one positive integer per row): row r stands for ``counts[r]``
    identical rows of the batch. The result is then exactly the InfoNCE of the batch
    with every row repeated that many times (as a row and as a negative), from the
    distinct rows only: :math:`\frac{1}{\sum c}\sum_r c_r\big(\ln\sum_s c_s e^{l_{rs}} - l_{rr}\big)`.
    """
    logits = (F.normalize(a, dim=-1) / temperature) @ F.normalize(b, dim=-1).t()
    target = torch.arange(logits.shape[0], device=logits.device)
    if counts is None:
        return F.cross_entropy(logits, target)
    c = counts.to(logits.dtype)
    log_c = c.log()
    # cross-entropy of l_rs + ln c_s is  ln sum_s c_s e^{l_rs} - l_rr - ln c_r
    per_row = F.cross_entropy(logits + log_c, target, reduction="none") + log_c
    return (c * per_row).sum() / c.sum()


def _user_item_block(adj: Tensor, n_users: int, n_items: int) -> Tensor:
    """The (n_users x n_items) user-item block of the bipartite graph ``adj``, as CSR."""
    coo = adj.detach().to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    keep = (rows < n_users) & (cols >= n_users)
    idx = torch.stack([rows[keep], cols[keep] - n_users])
    block = torch.sparse_coo_tensor(idx, coo.values()[keep], (n_users, n_items), check_invariants=False)
    return block.coalesce().to_sparse_csr()


class SMORE(Recommender):
    """SMORE: spectrum-fused modalities gating the item ID embeddings on per-modality and
    fused item graphs, LightGCN, and a modality-aware preference module (module doc).

    Args:
        n_users: number of users.
        n_items: number of items.
        adj: the normalised bipartite graph :math:`\\hat A`, torch sparse, symmetric.
        item_graphs: ``{modality: normalised kNN graph}`` (n_items square, torch sparse),
            one per modality of ``features``.
        fusion_graph: the max-pooled fused item graph (n_items square, torch sparse).
        features: ``{modality: raw item features (n_items x d_m)}``, one or more.
        embedding_dim: d (MMRec: 64).
        num_layers: LightGCN layers L (MMRec ``n_ui_layers``, grid [3, 4]).
        item_layers: item-graph layers L' (MMRec ``n_layers``: 1).
        dropout: dropout rate of the preference gates while training, in [0, 1)
            (MMRec ``dropout_rate``, grid [0, 0.1]).
        reg_weight: λ of the L2 term on the batch's final representations (grid [1e-5, 1e-4]).
        cl_weight: λ_cl of the InfoNCE terms (MMRec ``cl_loss``: 0.01).
        temperature: τ of the InfoNCE (MMRec: 0.2).
        train_features: fine-tune the feature tables (as the reference).
    """

    #: the contrastive loss takes its negatives from the step's batch (Recommender.couples_batch)
    couples_batch = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj: Tensor,
        item_graphs: Mapping[str, Tensor],
        fusion_graph: Tensor,
        features: Mapping[str, Tensor],
        *,
        embedding_dim: int = 64,
        num_layers: int = 3,
        item_layers: int = 1,
        dropout: float = 0.0,
        reg_weight: float = 1e-5,
        cl_weight: float = 0.01,
        temperature: float = 0.2,
        train_features: bool = True,
    ) -> None:
        super().__init__()
        if not features:
            raise ConfigError("SMORE needs at least one modality of item features")
        if set(item_graphs) != set(features):
            raise ConfigError(
                f"SMORE needs one item graph per modality: graphs for {', '.join(item_graphs) or 'none'}, "
                f"features for {', '.join(features)}"
            )
        if FUSION in features:
            raise ConfigError(f"{FUSION!r} names SMORE's fused view: rename that modality")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"SMORE dropout must be in [0, 1), got {dropout}")
        if item_layers < 0 or num_layers < 0:
            raise ConfigError(f"layers must be >= 0, got num_layers={num_layers}, item_layers={item_layers}")
        if not temperature > 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        if reg_weight < 0 or cl_weight < 0:
            raise ConfigError(f"reg_weight and cl_weight must be >= 0, got {reg_weight}, {cl_weight}")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.num_layers = num_layers
        self.item_layers = item_layers
        self.dropout = float(dropout)
        self.reg_weight = float(reg_weight)
        self.cl_weight = float(cl_weight)
        self.temperature = float(temperature)
        self.train_features = train_features
        self.modalities: tuple[str, ...] = tuple(features)
        self.views: tuple[str, ...] = (*self.modalities, FUSION)

        self.lightgcn = LightGCN(
            n_users, n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers, reg_weight=0.0
        )
        ui = _user_item_block(adj, n_users, n_items)
        # graphs are data, not parameters: rebuilt from the dataset, never checkpointed
        self.register_buffer("user_item", ui, persistent=False)
        self.register_buffer("user_item_t", csr_transpose(ui), persistent=False)
        self.graphs = nn.ModuleDict(
            {m: SparseOperator(item_graphs[m], f"item_graphs[{m!r}]", n_items) for m in self.modalities}
        )
        self.graphs[FUSION] = SparseOperator(fusion_graph, "fusion_graph", n_items)

        self.feature_tables = nn.ParameterDict() if train_features else None
        self.projections = nn.ModuleDict()
        for m in self.modalities:
            x = features[m]
            if x.dim() != 2 or x.shape[0] != n_items:
                raise ConfigError(f"features[{m!r}] have shape {tuple(x.shape)}, expected ({n_items}, d)")
            x = x.detach().float()
            # the raw features: data (the initial value of a fine-tuned table), not checkpointed
            self.register_buffer(f"features_{m}", x, persistent=False)
            if self.feature_tables is not None:
                self.feature_tables[m] = nn.Parameter(x.clone())
            self.projections[m] = nn.Linear(x.shape[1], embedding_dim)
        n_bins = embedding_dim // 2 + 1
        # complex filters stored as (bins, 2) real tensors (real, imaginary)
        self.filters = nn.ParameterDict({v: nn.Parameter(torch.empty(n_bins, 2)) for v in self.views})
        d = embedding_dim
        self.item_gates = nn.ModuleDict({v: nn.Linear(d, d) for v in self.views})
        self.queries = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d, bias=False)) for m in self.modalities}
        )
        self.preference_gates = nn.ModuleDict({v: nn.Linear(d, d) for v in self.views})
        self._mask_generator = torch.Generator()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()  # Xavier-uniform ID embeddings
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()  # PyTorch's default (as the reference)
        with torch.no_grad():
            for w in self.filters.values():
                w.normal_()
            if self.feature_tables is not None:
                for m in self.modalities:
                    self.feature_tables[m].copy_(getattr(self, f"features_{m}"))
        # the dropout masks' stream: drawn from torch's global RNG, so seeding reproduces it
        self._mask_generator.manual_seed(int(torch.randint(0, 2**62, (), dtype=torch.int64)))

    # ------------------------------------------------------------------ pieces
    def _features(self, m: str) -> Tensor:
        if self.feature_tables is not None:
            return self.feature_tables[m]
        return getattr(self, f"features_{m}")

    def filter(self, view: str) -> Tensor:
        """The complex filter :math:`W^c_v` of a modality or of ``"fusion"`` (bins,)."""
        return torch.view_as_complex(self.filters[view])

    def spectrum(self) -> dict[str, Tensor]:
        r"""``{view: }`` :math:`\dot H_v` (n_items x d) for every modality and ``"fusion"``."""
        projected = [self.projections[m](self._features(m)) for m in self.modalities]
        denoised, fused = spectrum_fusion(projected, [self.filter(m) for m in self.modalities], self.filter(FUSION))
        return {**dict(zip(self.modalities, denoised)), FUSION: fused}

    def view_embeddings(self) -> dict[str, Tensor]:
        r"""``{view: }`` :math:`H_v = [\hat R h_v; h_v]` ((n_users + n_items) x d) for every
        modality and ``"fusion"``."""
        ids = self.lightgcn.item_embedding.weight
        out = {}
        for v, x in self.spectrum().items():
            h = ids * torch.sigmoid(self.item_gates[v](x))
            for _ in range(self.item_layers):
                h = self.graphs[v](h)
            u = propagate(self.user_item, h, adj_t=self.user_item_t)
            out[v] = torch.cat([u, h], dim=0)
        return out

    def item_graph(self, view: str) -> Tensor:
        """The normalised item graph of a modality or of ``"fusion"`` (torch sparse CSR)."""
        return self.graphs[view].matrix().detach()

    def item_graphs(self) -> dict[str, Tensor]:
        """``{view: item_graph(view)}`` for every modality and ``"fusion"``."""
        return {v: self.item_graph(v) for v in self.graphs}

    def graph_merges(self) -> dict[str, dict[str, Any]]:
        """``{"fusion": {"max_pooled": modalities}}``: the fusion graph is the entry-wise
        maximum of the modality graphs (built by the caller, :func:`graphrec.train.builders.smore.max_pool_graphs`)."""
        return {FUSION: {"max_pooled": list(self.modalities)}} if len(self.modalities) > 1 else {}

    def preference(
        self, behavioural: Tensor, views: Mapping[str, Tensor], dropout: bool = False
    ) -> tuple[Tensor, Tensor]:
        r"""The modality-aware preference module on rows of nodes: returns
        (:math:`e = \bar E + \mathrm{side}`, :math:`\mathrm{side}`).

        Args:
            behavioural: :math:`\bar E` of the rows (r x d).
            views: ``{view: H_v}`` of the same rows, every modality and ``"fusion"``.
            dropout: apply the gates' dropout (training).
        """
        fused = views[FUSION]
        parts = []
        for v in self.views:
            gate = torch.sigmoid(self.preference_gates[v](behavioural))
            if dropout and self.dropout > 0:
                # the model's CPU generator: the same masks on every device
                keep = torch.rand(gate.shape, generator=self._mask_generator) >= self.dropout
                gate = gate * keep.to(device=gate.device, dtype=gate.dtype) / (1.0 - self.dropout)
            if v == FUSION:
                parts.append(gate * fused)
            else:
                attention = torch.softmax(self.queries[v](fused), dim=-1)
                parts.append(gate * attention * views[v])
        side = torch.stack(parts).mean(0)
        return behavioural + side, side

    # ------------------------------------------------------------------ representations
    def _all(self) -> tuple[Tensor, Tensor]:
        behavioural = self.lightgcn.propagate()
        final, _ = self.preference(behavioural, self.view_embeddings())
        return final[: self.n_users], final[self.n_users :]

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final user and item representations (no dropout, in any mode)."""
        return self._all()

    # ------------------------------------------------------------------ training
    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """BPR + L2 on the final representations + the InfoNCE terms (module doc); the
        preference module runs for the batch's distinct users and items only."""
        b = users.shape[0]
        behavioural = self.lightgcn.propagate()
        views = self.view_embeddings()
        uu, u_inv, u_count = torch.unique(users, return_inverse=True, return_counts=True)
        ii, i_inv = torch.unique(torch.cat([pos_items, neg_items]), return_inverse=True)
        rows = torch.cat([uu, ii + self.n_users])
        beh = behavioural.index_select(0, rows)
        final, side = self.preference(
            beh, {v: h.index_select(0, rows) for v, h in views.items()}, dropout=self.training
        )
        nu = uu.numel()
        pos_rows, neg_rows = nu + i_inv[:b], nu + i_inv[b:]
        u, pos, neg = final[u_inv], final[pos_rows], final[neg_rows]
        loss = bpr_loss((u * pos).sum(-1), (u * neg).sum(-1))
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * l2_penalty(u, pos, neg)
        if self.cl_weight > 0:
            # the InfoNCE of the batch's B rows, from its distinct rows with their counts
            pu, p_count = torch.unique(pos_rows, return_counts=True)
            cl = info_nce(side[pu], beh[pu], self.temperature, p_count) + info_nce(
                side[:nu], beh[:nu], self.temperature, u_count
            )
            loss = loss + self.cl_weight * cl
        return loss

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, modalities={','.join(self.modalities)}, "
            f"d={self.embedding_dim}, layers={self.num_layers}, item_layers={self.item_layers}, "
            f"dropout={self.dropout}, reg={self.reg_weight}, cl={self.cl_weight}, tau={self.temperature}"
        )
