r"""Row-wise L2 normalisation of content features that is exact at any scale.

Content features (and their linear projections) are compared by cosine: each row
becomes

.. math::
    u_i = c\, \frac{x_i}{\|x_i\|_2}, \qquad u_i = 0 \text{ when } x_i = 0,

with :math:`c = 1` for unit rows (cosines, kNN search) and :math:`c = \sqrt{d}` for rows
whose entries have unit mean square (the CTR models' content inputs). The result does
not depend on the scale of a row, :math:`u(a x_i) = u(x_i)` for every :math:`a > 0`,
but :math:`\|x_i\|_2` in float32 does not exist at every scale: the squares overflow
for entries beyond about 1e19 (the norm is inf and the row becomes 0) and underflow
below about 1e-19 (the norm is 0 and the row is taken for "no content"; with
``F.normalize``'s ``eps`` a row of norm below 1e-12 is not even scaled to unit length).
:func:`unit_rows` therefore divides such rows by their largest absolute entry
:math:`s_i = \max_j |x_{ij}|` first,

.. math::
    u_i = c\, \frac{x_i / s_i}{\|x_i / s_i\|_2}, \qquad 1 \le \|x_i / s_i\|_2 \le \sqrt{d},

which is the same :math:`u_i` with a norm that is always representable. Rows whose norm
is finite and at least ``eps`` (every row of features at a normal scale) take the plain
formula :math:`c\, x_i / \|x_i\|_2`, bit for bit what ``F.normalize`` gives them (zero
rows too: :math:`0 / \epsilon`). The rescaling is differentiable: :math:`s_i` is a
constant of the graph (the value does not depend on it, so neither does the gradient),
and no branch ever divides by zero, so gradients stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["unit_rows"]


def unit_rows(x: Tensor, *, scale: float = 1.0, eps: float = 1e-12) -> Tensor:
    r"""Rows of ``x`` (n x d) scaled to L2 norm ``scale``: :math:`c\, x_i / \|x_i\|_2`
    (module doc), exact for finite rows of any magnitude; all-zero rows stay zero.

    Args:
        x: a floating-point matrix (may require grad).
        scale: the norm :math:`c` of every non-zero output row.
        eps: rows whose float norm is finite and at least ``eps`` use the plain formula
            (``scale * x / max(||x||, eps)``, ``F.normalize`` for scale 1); the
            others are divided by their max-abs entry first.

    A row holding NaN or inf gives NaN (as with ``F.normalize``): refuse such input first.
    Zero rows give 0 with ``F.normalize``'s gradient (``scale / eps``).
    """
    if x.shape[1] == 0:
        return x.clone()
    norm = x.norm(dim=1, keepdim=True)
    with torch.no_grad():
        plain = torch.isfinite(norm) & (norm >= eps)  # rows at a normal scale
        if not bool(plain.all()):
            # s_i, a constant of the graph (two reductions, no n x d temporary); zero rows
            # stay plain: 0 / eps, as with F.normalize, gradient included
            peak = torch.maximum(x.amax(dim=1, keepdim=True), -x.amin(dim=1, keepdim=True))
            plain = plain | (peak == 0)
    if bool(plain.all()):  # F.normalize's formula, cost and memory
        return (x * scale if scale != 1.0 else x) / norm.clamp_min(eps)
    # plain rows: (x / 1) / max(||x||, eps), bit for bit F.normalize; extreme rows:
    # (x / s_i) / ||x / s_i||, one n x d temporary besides the result
    y = x / torch.where(plain, torch.ones_like(peak), peak)
    ynorm = torch.where(plain, norm.clamp_min(eps), y.norm(dim=1, keepdim=True))
    if scale != 1.0:
        y = y * scale
    return y / ynorm
