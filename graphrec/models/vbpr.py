r"""VBPR: "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback" (He,
McAuley; AAAI 2016).

Matrix factorisation plus a content path: a learned linear map :math:`E` (the paper's
"embedding kernel") turns the item's fixed content feature :math:`f_i \in \mathbb{R}^F`
(the paper: a deep CNN feature of the product image) into content factors
:math:`\theta_i = E f_i` that users weigh with their own factors :math:`\theta_u`. The
paper's predictor (eq. 4):

.. math::
    x_{ui} = \alpha + \beta_u + \beta_i + \gamma_u^\top \gamma_i
      + \theta_u^\top (E f_i) + \beta'^\top f_i

with :math:`\gamma_u, \gamma_i \in \mathbb{R}^K` (ID factors), :math:`\theta_u \in
\mathbb{R}^{K'}`, :math:`E \in \mathbb{R}^{K' \times F}`, an item bias :math:`\beta_i`
and a content bias :math:`\beta' \in \mathbb{R}^F`. It is trained with BPR (eq. 6):
:math:`\max \sum \ln \sigma(x_{ui} - x_{uj}) - \lambda \|\Theta\|^2`. The global
:math:`\alpha` and the user bias :math:`\beta_u` cancel in :math:`x_{ui} - x_{uj}` and in a
user's ranking, so they are not parameters here.

**Multimodal use** (as the field uses VBPR, e.g. MMRec): :math:`f_i` is the concatenation
of the item's modality features, prepared by the caller (graphrec's builder L2-normalises
each modality before concatenating; see ``docs/models/vbpr.md``).

**Scores as inner products.** The final representations are
:math:`e_u = [\gamma_u;\ \theta_u;\ 1]` and
:math:`e_i = [\gamma_i;\ E f_i;\ \beta_i + \beta'^\top f_i]`, so :math:`e_u^\top e_i` is
:math:`x_{ui}` without :math:`\alpha + \beta_u`. With ``biases=False`` the last coordinate
is dropped: :math:`e_u = [\gamma_u; \theta_u]` against :math:`e_i = [\gamma_i; E f_i]`,
which is exactly MMRec's VBPR (a :math:`K + K'` user vector against the concatenation of
the item ID embedding and the projected features) except for one thing: MMRec's projection
also has a bias vector :math:`b` (an ``nn.Linear`` with its default bias, initialised to
0), so its content factors are :math:`E f_i + b`. The score's extra term
:math:`\theta_u^\top b` is a per-user constant, which changes no ranking and cancels in
BPR's :math:`x_{ui} - x_{uj}`; but :math:`b` sits in every item row of the norm
regulariser below, so the penalty alone moves it (towards centring the projected
features), and the (unsquared) norm of the item rows it enters scales the penalty's pull
on :math:`\gamma_i` and :math:`E` too.
``projection_bias=True`` adds it (MMRec parity); the default leaves it out, as the paper.

**Items without training interactions** (cold start): BPR never sees them as a
positive; with negatives drawn from all items (``TrainConfig.negatives="all"``, the
default) it only ever pushes their :math:`\gamma_i, \beta_i` down, so the ID part of a
cold item encodes nothing but "no training interaction" (with ``negatives="warm"`` it is
never updated and stays at its random initial value). ``warm_items`` marks the items that
have training interactions; the others get :math:`\gamma_i = 0, \beta_i = 0` (their
gradient is then 0), so they are scored from their features alone,
:math:`\theta_u^\top E f_i + \beta'^\top f_i`: the content path is what VBPR adds for
such items. This departs from MMRec's VBPR (and from plain BPR training of the paper's
model), where the pushed-down or random :math:`\gamma_i` stays in the score; on a split
where every item has training interactions (MMRec's) the two are the same model.

**Regulariser** (``reg_form``), on the batch of :math:`B` triples, with :math:`U, P, N` the
:math:`B`-row matrices of user rows :math:`[\gamma_u; \theta_u]`, positive and negative
item rows :math:`[\gamma_i; E f_i]` (:math:`E f_i + b` with ``projection_bias``; plus
:math:`\beta_i` when ``biases``):

.. math::
    \text{norm (MMRec's EmbLoss):}\quad
      \lambda\,\frac{\|U\|_F + \|P\|_F + \|N\|_F}{B}, \qquad
    \text{squared (L2 on the batch's rows):}\quad
      \lambda\,\frac{\|U\|_F^2 + \|P\|_F^2 + \|N\|_F^2}{2B}

(Frobenius norms of the whole batch matrices, not squared, in MMRec's form). ``squared``
is the per-update L2 of BPR's stochastic gradient steps, which penalise the rows a
triple touches; the paper's :math:`\lambda_\Theta \|\Theta\|^2` is over parameters,
so it would penalise :math:`E` itself, where both forms penalise the data-dependent rows
:math:`E f_i`. :math:`E`
is regularised only through the rows :math:`E f_i` (as MMRec), :math:`\beta'` not at all
(the authors' follow-up work states they leave :math:`E` and :math:`\beta'` unregularised).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.base import Recommender
from graphrec.nn import bpr_loss, l2_penalty, norm_penalty

__all__ = ["VBPR", "REG_FORMS"]

#: the regulariser forms (see the module doc)
REG_FORMS = ("norm", "squared")


class VBPR(Recommender):
    """Matrix factorisation plus a linear content path, trained with BPR.

    Args:
        n_users: number of users.
        n_items: number of items.
        features: the item content features :math:`f_i`, shape (n_items, F), fixed (a
            buffer, not a parameter).
        embedding_dim: size K of the ID factors :math:`\\gamma` (MMRec: 64).
        visual_dim: size K' of the content factors :math:`\\theta` (default: K, so a
            user vector has K + K' = 128 entries at the defaults, as MMRec's).
        biases: the item bias :math:`\\beta_i` and the content bias :math:`\\beta'^\\top f_i`
            (the paper has them, MMRec drops them).
        projection_bias: a bias vector :math:`b` in the projection, :math:`E f_i + b`
            (MMRec's ``nn.Linear``; it changes training through the regulariser only).
        reg_weight: coefficient :math:`\\lambda` of the regulariser.
        reg_form: ``"norm"`` (MMRec's sum of Frobenius norms over B) or ``"squared"``
            (the sum of squares over 2B: BPR's per-update L2 of the rows a step touches).
        warm_items: boolean (n_items,), the items with training interactions; the others
            have :math:`\\gamma_i = 0, \\beta_i = 0` (default: all items are warm).
    """

    @property
    def couples_batch(self) -> bool:
        """``reg_form="norm"`` penalises norms over the whole batch, not a mean of per-triple
        terms (Recommender.couples_batch); ``"squared"`` does not."""
        return self.reg_form == "norm"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        features: Tensor,
        embedding_dim: int = 64,
        visual_dim: int | None = None,
        biases: bool = False,
        projection_bias: bool = False,
        reg_weight: float = 2.0,
        reg_form: str = "norm",
        warm_items: Tensor | None = None,
    ) -> None:
        super().__init__()
        if features.dim() != 2 or features.shape[0] != n_items:
            raise ValueError(f"features has shape {tuple(features.shape)}, expected ({n_items}, F)")
        if reg_form not in REG_FORMS:
            raise ValueError(f"reg_form must be one of {', '.join(REG_FORMS)}, got {reg_form!r}")
        if warm_items is None:
            warm_items = torch.ones(n_items, dtype=torch.bool)
        if warm_items.shape != (n_items,):
            raise ValueError(f"warm_items has shape {tuple(warm_items.shape)}, expected ({n_items},)")
        self.n_users = n_users
        self.n_items = n_items
        self.embedding_dim = embedding_dim
        self.visual_dim = embedding_dim if visual_dim is None else visual_dim
        self.feature_dim = int(features.shape[1])
        self.biases = biases
        self.projection_bias = projection_bias
        self.reg_weight = reg_weight
        self.reg_form = reg_form
        # [gamma_u; theta_u] as one table (MMRec's 2d user vector at the defaults)
        self.user_embedding = nn.Embedding(n_users, self.embedding_dim + self.visual_dim)
        self.item_embedding = nn.Embedding(n_items, self.embedding_dim)  # gamma_i
        self.projection = nn.Linear(self.feature_dim, self.visual_dim, bias=projection_bias)  # E (and b)
        if biases:
            self.item_bias = nn.Parameter(torch.empty(n_items))  # beta_i
            self.feature_bias = nn.Parameter(torch.empty(self.feature_dim))  # beta'
        # Data, not parameters: rebuilt from the dataset, not checkpointed.
        self.register_buffer("features", features.float(), persistent=False)
        self.register_buffer("warm_items", warm_items.bool(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # MMRec's initialisation: Xavier-uniform ID tables, Xavier-normal projection.
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        nn.init.xavier_normal_(self.projection.weight)
        if self.projection_bias:
            nn.init.zeros_(self.projection.bias)
        if self.biases:
            nn.init.zeros_(self.item_bias)
            nn.init.zeros_(self.feature_bias)

    # ------------------------------------------------------------------ rows
    def _item_parts(self, items: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The regularised item rows [gamma_i; E f_i (; beta_i)] and, with biases, the
        full bias beta_i + beta'^T f_i, of ``items`` (all items when None)."""
        if items is None:
            gamma, feats, warm = self.item_embedding.weight, self.features, self.warm_items
        else:
            gamma, feats, warm = self.item_embedding(items), self.features[items], self.warm_items[items]
        mask = warm.to(gamma.dtype).unsqueeze(-1)  # gamma_i = 0 (and beta_i = 0) without interactions
        rows = [gamma * mask, self.projection(feats)]
        if not self.biases:
            return torch.cat(rows, dim=-1), None
        beta = (self.item_bias if items is None else self.item_bias[items]) * mask.squeeze(-1)
        rows.append(beta.unsqueeze(-1))
        return torch.cat(rows, dim=-1), beta + feats @ self.feature_bias

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """:math:`e_u = [\\gamma_u; \\theta_u (; 1)]`, :math:`e_i = [\\gamma_i; E f_i (;
        \\beta_i + \\beta'^\\top f_i)]`: their inner product is the paper's score up to
        the per-user constant :math:`\\alpha + \\beta_u`."""
        users = self.user_embedding.weight
        rows, bias = self._item_parts(None)
        if bias is None:
            return users, rows
        ones = users.new_ones(users.shape[0], 1)
        return torch.cat([users, ones], dim=-1), torch.cat([rows[:, :-1], bias.unsqueeze(-1)], dim=-1)

    def _batch_rows(self, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """:meth:`_item_parts` of a batch's positives and negatives, each item projected
        once: where the catalogue has no more items than the batch has item slots (2B),
        all of them in one product, with no feature gather and no sort; otherwise the
        batch's distinct items (a batch of 2 x 2048 items from a large catalogue holds far
        fewer). The two gathers stay separate, so that their gradients scatter straight
        into the item rows."""
        b = pos_items.shape[0]
        if self.n_items <= 2 * b:
            rows, bias = self._item_parts(None)
            pi, ni = pos_items, neg_items
        else:
            uniq, inv = torch.unique(torch.cat([pos_items, neg_items]), return_inverse=True)
            rows, bias = self._item_parts(uniq)
            pi, ni = inv[:b], inv[b:]
        if bias is None:
            return rows[pi], rows[ni], None, None
        return rows[pi], rows[ni], bias[pi], bias[ni]

    def _pair_rows(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor | None, ...]:
        """The batch's user rows, the positive and negative item rows (the regulariser's
        U, P, N), and each row's scoring part: the factors and, with biases, the bias."""
        u = self.user_embedding(users)  # only the batch's rows: no full-table product
        p, n, bp, bn = self._batch_rows(pos_items, neg_items)
        fp, fn = (p, n) if bp is None else (p[:, :-1], n[:, :-1])  # beta_i is scored through the full bias
        return u, p, n, fp, fn, bp, bn

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        u, _, _, fp, fn, bp, bn = self._pair_rows(users, pos_items, neg_items)
        pos, neg = (u * fp).sum(-1), (u * fn).sum(-1)
        if bp is not None:
            pos, neg = pos + bp, neg + bn
        return pos, neg

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        u, p, n, fp, fn, bp, bn = self._pair_rows(users, pos_items, neg_items)
        # BPR needs only x_ui - x_uj = u . (f_i - f_j) (+ the biases' difference): one product
        diff = (u * (fp - fn)).sum(-1)
        if bp is not None:
            diff = diff + (bp - bn)
        if self.reg_form == "norm":
            reg = norm_penalty(u, p, n) / u.shape[0]
        else:
            reg = l2_penalty(u, p, n)
        return bpr_loss(diff, torch.zeros_like(diff)) + self.reg_weight * reg

    def extra_repr(self) -> str:
        return (
            f"n_users={self.n_users}, n_items={self.n_items}, features={self.feature_dim}, "
            f"K={self.embedding_dim}, K'={self.visual_dim}, biases={self.biases}, projection_bias={self.projection_bias}, "
            f"reg={self.reg_weight} ({self.reg_form})"
        )
