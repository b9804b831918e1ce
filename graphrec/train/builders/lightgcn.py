"""LightGCN's builder: the symmetrically normalised bipartite graph of the training data."""

from __future__ import annotations

from typing import Annotated

from graphrec.data import Dataset
from graphrec.graphs import normalized_bipartite
from graphrec.models import LightGCN
from graphrec.models.lightgcn import REG_FORMS
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import EmbeddingDim, LR_SPACE, Reg
from graphrec.train.registry import FloatRange, IntRange, Option, register_model


@register_model(
    "lightgcn",
    title="LightGCN",
    paper="He et al., SIGIR 2020",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="parameter-free propagation over the user-item graph, layers averaged; BPR",
    example="graphrec train lightgcn --data data/lfm2k --epochs 200 --layers 2 --out runs/lightgcn-lfm2k",
    search_space={"lr": LR_SPACE, "reg_weight": FloatRange(1e-6, 1e-2, log=True), "num_layers": IntRange(1, 4)},
    # MMRec's LightGCN.yaml grid; learning_rate 0.001 (overall.yaml)
    # with MMRec's regulariser (EmbLoss: reg_form norm), which its reg_weight values are for
    reference_grids={"mmrec": {"num_layers": [1, 2, 3, 4], "reg_weight": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6], "lr": 1e-3,
                               "reg_form": "norm", "cold_path": "none"}},
    reference_names={"mmrec": {"n_layers": "num_layers"}},  # LightGCN.yaml; RecBole's n_layers too
)
def build_lightgcn(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Annotated[int, Option("--layers", help="Propagation layers.", min=0)] = 2,
    reg_weight: Reg = 1e-4,
    reg_form: Annotated[
        str,
        Option(help="squared: sum of squares of the batch's layer-0 rows / 2B (the paper's eq. 15); norm: "
               "(|U|_F + |P|_F + |N|_F) / B, MMRec's EmbLoss (RecBole's require_pow false).", choices=REG_FORMS),
    ] = "squared",
) -> LightGCN:
    """LightGCN over D^-1/2 A D^-1/2 of the training interactions. --reg-form norm is the
    regulariser MMRec's LightGCN trains with, whose grid values of reg_weight mean it."""
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    return LightGCN(
        dataset.n_users, dataset.n_items, adj, embedding_dim=embedding_dim, num_layers=num_layers,
        reg_weight=reg_weight, reg_form=reg_form,
    )
