"""LATTICE's builder: the bipartite graph, each modality's raw features and its original
top-k cosine graph, and optionally MM-GEF's co-interaction graph; ``parity="reference"``
switches to the authors' code's choices (``docs/models/lattice.md``)."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.cooccur import cooccurrence_factors
from graphrec.models.lattice import CF_WEIGHTS, LATTICE
from graphrec.nn import FactoredCooccurrence, to_torch_sparse
from graphrec.train.builders._common import (
    note_emptied_rows,
    PARITY,
    EmbeddingDim,
    ItemLayers,
    LR_SPACE,
    Layers,
    Modalities,
    StoredGraphs,
    check_features,
    default_reg_weight,
    parity_backbone,
    feature_modalities,
    one_modality_graphs,
)
from graphrec.train.registry import FloatRange, IntRange, Option, register_model

def content_modalities(model: LATTICE, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """LATTICE keeps one graph per modality: its own modalities."""
    return tuple(model.modalities)


#: the builder's cheap checks (features present, ``modalities`` among them); ``tune --grid``
#: runs them on every grid point
check_params = check_features("lattice")


def resolve_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the builder's values for ``reg_weight`` and ``include_self``, which
    follow ``parity``, when they are ``None``."""
    out = dict(params)
    if out.get("reg_weight") is None:
        out["reg_weight"] = default_reg_weight(out.get("parity", "none"))
    if out.get("include_self") is None:
        out["include_self"] = out.get("parity", "none") == "reference"
    return out


@register_model(
    "lattice",
    title="LATTICE",
    paper="Zhang et al., ACM MM 2021",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="LightGCN plus learned and original per-modality item graphs, rebuilt every epoch",
    example="graphrec train lattice --data data/scientific --lambda 0.9 --cold-start 0.2",
    needs_features=True,
    check=check_params,
    resolve=resolve_params,
    content_modalities=content_modalities,
    search_space={
        "lr": LR_SPACE,
        "reg_weight": FloatRange(1e-6, 1e-2, log=True),
        "k": IntRange(5, 40, step=5),
        "lambda_coeff": FloatRange(0.0, 1.0, step=0.1),
    },
    # MMRec's LATTICE.yaml grid, in reference parity (its LightGCN backbone of 1 layer, schedule [0.96, 50])
    reference_grids={"mmrec": {"reg_weight": [0.0, 1e-5, 1e-4, 1e-3], "lr": [1e-4, 5e-4, 1e-3, 5e-3],
                               "parity": "reference", "num_layers": 1, "lr_decay": 0.96, "cold_path": "none"}},
    # MMRec's LATTICE.yaml names (its n_layers is the item-graph layers)
    reference_names={"mmrec": {"n_layers": "item_layers", "knn_k": "k"}},
)
def build_lattice(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    reg_weight: Annotated[
        Optional[float],
        Option(
            "--reg",
            help="L2 weight: on the batch's layer-0 embeddings [1e-4]; with --parity reference on its final "
            "embeddings, as the reference [1e-5].",
            min=0.0,
        ),
    ] = None,
    k: Annotated[int, Option(help="Neighbours per item in the original and learned graphs.", min=1)] = 10,
    modalities: Modalities = None,
    lambda_coeff: Annotated[
        float, Option("--lambda", help="Weight of the original graphs in the skip mix.", min=0.0, max=1.0)
    ] = 0.9,
    include_self: Annotated[
        Optional[bool],
        Option(
            "--include-self/--no-include-self",
            help="Each item is one of its own k neighbours (reference-code parity) [no; yes with --parity reference].",
        ),
    ] = None,
    train_features: Annotated[
        bool, Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the reference).")
    ] = True,
    graphs: StoredGraphs = None,
    use_cf_graph: Annotated[
        bool,
        Option(
            "--cf-graph/--no-cf-graph",
            help="Also MM-GEF's co-interaction graph, merged with LATTICE's graph (the LATTICE of MM-GEF's Tables 2-3).",
        ),
    ] = False,
    cf_weights: Annotated[
        str,
        Option(
            help="Weights of LATTICE's graph and the co-interaction graph: learned (softmax) or fixed "
            "(1/2, 1/2: the paper's 'LATTICE with CF').",
            choices=CF_WEIGHTS,
        ),
    ] = "learned",
    parity: Annotated[
        str,
        Option(
            help="reference: the authors' code's backbone D^-1(A+I), L2 1e-5 on the final embeddings (instead of "
            "--reg on layer 0) and self in the kNN lists; train with --lr 5e-4 --lr-decay 0.96 --batch-size 1024.",
            choices=PARITY,
        ),
    ] = "none",
) -> LATTICE:
    """LATTICE's inputs: the bipartite graph, the raw features of each modality and
    their ORIGINAL graphs (top-``k`` cosine of the raw features, symmetrically
    normalised; ``include_self`` for reference parity). ``graphs``: stored one-modality
    kNN graphs used as the original graph of their modality (provenance-checked).
    ``use_cf_graph``: also MM-GEF's co-interaction graph of the TRAINING interactions,
    kept as its factors (hidden cold-start items never enter it), weighted by
    ``cf_weights``. ``parity="reference"``: the backbone graph D^-1 (A + I), the L2 on the
    batch's final embeddings (``reg_weight``, default the reference's 1e-5; without parity
    the layer-0 L2, default 1e-4) and ``include_self`` unless it is given."""
    adj = parity_backbone(dataset.train, parity)  # checks parity first
    reference = parity == "reference"
    resolved = resolve_params({"reg_weight": reg_weight, "include_self": include_self, "parity": parity})
    reg_weight, include_self = resolved["reg_weight"], resolved["include_self"]
    check_params(dataset, {"modalities": modalities})
    mods = feature_modalities(dataset, modalities)
    given = one_modality_graphs(dataset, graphs, model="lattice", modalities=mods, among="--modalities", k=k,
                                include_self=include_self)
    originals = {}
    for m in mods:
        if m in given:
            originals[m] = to_torch_sparse(given[m])
            continue
        spec = GraphSpec(kind="knn", k=k, modalities=(m,), include_self=include_self, normalization="sym")
        built = build_item_graph(dataset, spec)
        note_emptied_rows(built.emptied_rows, f"{m} graph:", "lower --k")
        originals[m] = to_torch_sparse(built.graph)
    return LATTICE(
        dataset.n_users,
        dataset.n_items,
        adj,
        originals,
        {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in mods},
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        reg_weight=reg_weight,
        k=k,
        lambda_coeff=lambda_coeff,
        include_self=include_self,
        train_features=train_features,
        cooccur_graph=FactoredCooccurrence(cooccurrence_factors(dataset.train)) if use_cf_graph else None,
        cf_weights=cf_weights,
        reg_on="final" if reference else "layer0",
    )
