"""MF-BPR's builder: nothing but the sizes."""

from __future__ import annotations

from graphrec.data import Dataset
from graphrec.models import MF
from graphrec.train.builders._common import EmbeddingDim, LR_SPACE, Reg
from graphrec.train.registry import FloatRange, register_model


@register_model(
    "mf",
    title="MF-BPR",
    paper="Rendle et al., UAI 2009",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="matrix factorisation with BPR, no graph",
    example="graphrec train mf --data data/lfm2k --dim 64 --reg 1e-4",
    search_space={"lr": LR_SPACE, "reg_weight": FloatRange(1e-6, 1e-1, log=True)},
)
def build_mf(dataset: Dataset, embedding_dim: EmbeddingDim = 64, reg_weight: Reg = 1e-4) -> MF:
    """Free user and item embeddings scored by inner products."""
    return MF(dataset.n_users, dataset.n_items, embedding_dim=embedding_dim, reg_weight=reg_weight)
