"""VBPR's builder: the item content feature f_i (the chosen modalities, each L2-normalised,
concatenated) and the items that have training interactions."""

from __future__ import annotations

from typing import Annotated, Optional

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.models.vbpr import REG_FORMS, VBPR
from graphrec.train.builders._common import (
    EmbeddingDim, LR_SPACE, Modalities, Reg, check_features, feature_modalities,
)
from graphrec.train.registry import FloatRange, Option, register_model

#: how each modality's features are prepared before concatenation
FEATURE_NORMS = ("l2", "none")


def vbpr_features(dataset: Dataset, modalities: tuple[str, ...], feature_norm: str = "none") -> torch.Tensor:
    """f_i: the ``modalities`` of ``dataset`` concatenated in that order, float32, each
    modality's rows scaled to unit L2 norm first (``"l2"``; all-zero rows stay zero) or
    left raw (``"none"``, MMRec)."""
    blocks = []
    for m in modalities:
        x = np.asarray(dataset.item_features[m], dtype=np.float32)
        if feature_norm == "l2":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0)
        blocks.append(x)
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(blocks, axis=1)))


#: the builder's cheap checks (features present, ``modalities`` among them); ``tune --grid``
#: runs them on every grid point
check_params = check_features("vbpr", uses="its content factors")


@register_model(
    "vbpr",
    title="VBPR",
    paper="He & McAuley, AAAI 2016",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="matrix factorisation plus user factors over a learned linear projection of the item's content features",
    example="graphrec train vbpr --data data/lfm2k --modalities image,text --reg 2.0 --cold-start 0.2",
    needs_features=True,
    check=check_params,
    search_space={"lr": LR_SPACE, "reg_weight": FloatRange(1e-2, 10.0, log=True)},
    # MMRec's VBPR.yaml grid, its model (raw features concatenated, no biases); learning_rate 0.001 (overall.yaml)
    reference_grids={"mmrec": {"reg_weight": [2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5], "feature_norm": "none",
                               "biases": False, "lr": 1e-3, "cold_path": "none"}},
)
def build_vbpr(
    dataset: Dataset,
    embedding_dim: Annotated[
        EmbeddingDim, Option("--dim", help="Size K of the ID factors gamma (and of theta unless --visual-dim).", min=1)
    ] = 64,
    visual_dim: Annotated[
        Optional[int], Option("--visual-dim", help="Size K' of the content factors [--dim: K + K' = 128, as MMRec].", min=1)
    ] = None,
    modalities: Modalities = None,
    biases: Annotated[
        bool,
        Option("--biases/--no-biases", help="The item bias and the content bias beta'^T f_i (the paper's; MMRec drops them)."),
    ] = False,
    projection_bias: Annotated[
        bool,
        Option(
            "--projection-bias/--no-projection-bias",
            help="A bias b in the projection, E f_i + b (MMRec's nn.Linear): no score difference changes, "
            "but b enters the norm penalty through every item row.",
        ),
    ] = False,
    feature_norm: Annotated[
        str,
        Option(
            help="none: the raw features concatenated (MMRec's; validation prefers it on amazon-scientific); "
            "l2: each modality scaled to unit norm first (preferred on lfm2k).",
            choices=FEATURE_NORMS,
        ),
    ] = "none",
    reg_weight: Annotated[
        Reg, Option("--reg", help="Regulariser weight (MMRec's grid starts at 2.0; form: --reg-form).", min=0.0)
    ] = 2.0,
    reg_form: Annotated[
        str,
        Option(help="norm: (|U|_F + |P|_F + |N|_F) / B, MMRec's; squared: L2 on the batch's rows, sum of squares / 2B.", choices=REG_FORMS),
    ] = "norm",
) -> VBPR:
    """f_i is the concatenation of the chosen modalities (default all the dataset has),
    raw, or each L2-normalised with feature_norm l2. --dim is K, the size of the ID
    factors; --visual-dim is K' (default K), so user vectors have K + K' entries. Items
    without training interactions (cold start) are scored from their features only."""
    check_params(dataset, {"modalities": modalities})
    mods = feature_modalities(dataset, modalities)
    train = dataset.train.tocsr()
    warm = np.bincount(train.indices, minlength=dataset.n_items) > 0
    return VBPR(
        dataset.n_users,
        dataset.n_items,
        vbpr_features(dataset, mods, feature_norm),
        embedding_dim=embedding_dim,
        visual_dim=visual_dim,
        biases=biases,
        projection_bias=projection_bias,
        reg_weight=reg_weight,
        reg_form=reg_form,
        warm_items=torch.from_numpy(warm),
    )
