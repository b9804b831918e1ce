r"""Gradient reversal (Ganin & Lempitsky 2015), for adversarial feature learning.

Forward the identity, backward the gradient times :math:`-\lambda`:

.. math::
    R_\lambda(x) = x, \qquad \frac{\partial R_\lambda}{\partial x} = -\lambda I,

so a discriminator placed after :math:`R_\lambda` minimises its loss while the layers
before it receive the negated, scaled gradient and learn to confuse it (MARN's
modality-invariant discriminator, Li et al., WWW 2020, arXiv:2003.07162).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["GradientReversal", "grad_reverse"]


class GradientReversal(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``-coeff``."""

    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    """:math:`R_{coeff}(x)`: ``x`` forward, ``-coeff`` times the gradient backward."""
    return GradientReversal.apply(x, coeff)
