"""Reusable layers and functions: sparse propagation, losses."""

from graphrec.nn.losses import bpr_loss, l2_penalty
from graphrec.nn.propagation import propagate, to_torch_sparse

__all__ = ["bpr_loss", "l2_penalty", "propagate", "to_torch_sparse"]
