"""Losses shared by the ranking models.

BPR (Rendle et al. 2009) for a batch of triples (u, i+, i-):

    L_BPR = -1/B * sum_b log sigmoid(s(u_b, i+_b) - s(u_b, i-_b))

and the L2 penalty on the layer-0 (ego) embeddings of the batch, as in LightGCN
(He et al. 2020, eq. 15), scaled per triple:

    L_reg = lambda / (2B) * sum_b (||e_u||^2 + ||e_i+||^2 + ||e_i-||^2)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "l2_penalty"]


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Mean of ``-log sigmoid(pos - neg)`` (numerically stable via softplus)."""
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(*tensors: Tensor) -> Tensor:
    """``sum ||t||^2 / (2 * batch)`` over the given batch tensors (batch = first dim)."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2.0 * batch)
