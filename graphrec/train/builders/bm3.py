"""BM3's builder: the symmetrically normalised bipartite graph of the training data and
the raw features of each chosen modality."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.graphs import normalized_bipartite
from graphrec.models.bm3 import BM3, REG_FORMS
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    EmbeddingDim, LR_SPACE, Layers, Modalities, Reg, check_features, feature_modalities,
)
from graphrec.train.registry import FloatRange, IntRange, Option, register_model


#: the builder's cheap checks (features present, ``modalities`` among them); ``tune --grid``
#: runs them on every grid point
check_params = check_features("bm3", uses="its modality branches")


@register_model(
    "bm3",
    title="BM3",
    paper="Zhou et al., WWW 2023",
    summary="LightGCN and projected modality features trained without negatives: a shared predictor "
    "matches dropout-perturbed stop-gradient targets (graph reconstruction, modality alignment)",
    example="graphrec train bm3 --data data/lfm2k --layers 1 --dropout 0.3 --reg 0.1",
    needs_features=True,
    check=check_params,
    search_space={
        "lr": LR_SPACE,
        "num_layers": IntRange(1, 2),
        "dropout": FloatRange(0.1, 0.7, step=0.1),
        "reg_weight": FloatRange(1e-3, 1.0, log=True),
    },
    # MMRec's BM3.yaml grid; learning_rate 0.001 (overall.yaml)
    reference_grids={"mmrec": {"num_layers": [1, 2], "reg_weight": [0.1, 0.01], "dropout": [0.3, 0.5], "lr": 1e-3,
                               "cold_path": "none"}},
    reference_names={"mmrec": {"n_layers": "num_layers"}},  # BM3.yaml; RecBole's n_layers too
)
def build_bm3(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Annotated[Layers, Option("--layers", help="LightGCN propagation layers (grid 1, 2).", min=0)] = 1,
    dropout: Annotated[
        float, Option(help="Latent embedding dropout ratio of the targets, in [0, 1) (grid 0.3, 0.5).", min=0.0, max=1.0)
    ] = 0.3,
    cl_weight: Annotated[
        float, Option(help="Weight of the inter- and intra-modality alignment terms.", min=0.0)
    ] = 2.0,
    reg_weight: Annotated[
        Reg, Option("--reg", help="Regulariser weight (grid 0.1, 0.01; form: --reg-form).", min=0.0)
    ] = 0.1,
    reg_form: Annotated[
        str,
        Option(
            help="tables: (|H_U|_F + |H_I|_F) / n_items over all online representations (the authors'); "
            "batch: squared L2 of the batch's online rows / 2B.",
            choices=REG_FORMS,
        ),
    ] = "tables",
    modalities: Modalities = None,
    item_residual: Annotated[
        bool,
        Option("--item-residual/--no-item-residual", help="Add the raw item ID embedding to the item's LightGCN representation (the authors')."),
    ] = True,
    train_features: Annotated[
        bool, Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the authors' code).")
    ] = True,
) -> BM3:
    """BM3 over D^-1/2 A D^-1/2 of the training interactions and the raw features of the
    chosen modalities (default all the dataset has), each projected to --dim by its own
    linear layer. Trains without negatives (the sampled ones are ignored)."""
    check_params(dataset, {"modalities": modalities})
    mods = feature_modalities(dataset, modalities)
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    features = {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in mods}
    return BM3(
        dataset.n_users,
        dataset.n_items,
        adj,
        features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        dropout=dropout,
        cl_weight=cl_weight,
        reg_weight=reg_weight,
        reg_form=reg_form,
        item_residual=item_residual,
        train_features=train_features,
    )
