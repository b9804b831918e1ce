"""MGCN's builder: the normalised bipartite graph of the TRAINING data (and its user-item
block), one frozen top-k graph per modality from the raw features (or read from stored
graphs), and the features."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.models.mgcn import MGCN
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    note_emptied_rows,
    EmbeddingDim,
    ItemLayers,
    LR_SPACE,
    Layers,
    ModalityK,
    Modalities,
    StoredGraphs,
    check_features,
    feature_modalities,
    one_modality_graphs,
)
from graphrec.train.builders.freedom import frozen_item_graph
from graphrec.train.registry import FloatRange, IntRange, Option, register_model

__all__ = ["build_mgcn", "mgcn_item_graphs", "mgcn_modalities", "stored_mgcn_graphs"]

WEIGHTINGS = ("cosine", "binary")


def mgcn_modalities(dataset: Dataset, modalities: str | tuple[str, ...] | list[str] | None = None) -> tuple[str, ...]:
    """The modalities MGCN gives a view: the chosen ones (default all the dataset has),
    checked against the dataset (FREEDOM's rule; its merge weights are not used)."""
    return tuple(feature_modalities(dataset, modalities))


def mgcn_item_graphs(
    dataset: Dataset,
    modalities: tuple[str, ...],
    k: int = 10,
    weighting: str = "cosine",
    include_self: bool = True,
    given: Optional[Mapping[str, sp.csr_matrix]] = None,
) -> dict[str, sp.csr_matrix]:
    """Per modality m, :math:`D_m^{-1/2} S_m D_m^{-1/2}` of the top-``k`` cosine graph
    :math:`S_m` of the raw features (``weighting="cosine"``: the cosines as values, as
    MGCN's reference code; ``"binary"``: 1 on the same pattern, FREEDOM's
    :func:`~graphrec.train.builders.freedom.frozen_item_graph`), row sums :math:`D_m`;
    ``include_self``: each item takes one of its own k places. ``given``: the normalised
    graphs of some modalities, already read from stored graphs
    (:func:`stored_mgcn_graphs`), used instead of building them. Float32 scipy CSR."""
    given = given or {}
    out = {}
    for m in modalities:
        if weighting == "binary":
            mine = {m: given[m]} if m in given else None
            out[m] = frozen_item_graph(dataset, {m: 1.0}, k=k, include_self=include_self, given=mine)
        elif m in given:
            out[m] = given[m]
        else:
            spec = GraphSpec(
                kind="knn", k=k, modalities=(m,), weighting="cosine", include_self=include_self, normalization="sym"
            )
            built = build_item_graph(dataset, spec)
            note_emptied_rows(built.emptied_rows, f"{m} graph:", "lower --k, or --weighting binary")
            out[m] = built.graph
    return out


def stored_mgcn_graphs(
    dataset: Dataset, graphs: Any, modalities: tuple[str, ...], k: int, weighting: str, include_self: bool
) -> dict[str, sp.csr_matrix]:
    """The stored graphs (``--graph``) as MGCN's normalised modality graphs, by modality:
    each a directed one-modality kNN graph of this data over one of ``modalities``, with
    the ``k``, ``weighting`` and ``include_self`` asked for
    (:func:`~graphrec.train.builders._common.one_modality_graphs`)."""
    return one_modality_graphs(dataset, graphs, model="mgcn", modalities=modalities, among="--modalities", k=k,
                               include_self=include_self, weighting=weighting, weightings=WEIGHTINGS)


def content_modalities(model: MGCN, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The modalities with an item graph each (``export-graph --view MODALITY``)."""
    return tuple(model.modalities)


#: the builder's cheap checks (features present, ``modalities`` among them); ``tune --grid``
#: runs them on every grid point
check_params = check_features("mgcn")


@register_model(
    "mgcn",
    title="MGCN",
    paper="Yu et al., ACM MM 2023",
    summary="purified modality features on per-modality item kNN views, a behaviour-aware fuser, contrastive task",
    example="graphrec train mgcn --data data/lfm2k --cl-weight 0.001",
    needs_features=True,
    check=check_params,
    content_modalities=content_modalities,
    train_defaults={"lr_decay": 0.96},  # the reference's learning_rate_scheduler [0.96, 50]
    search_space={
        "lr": LR_SPACE,
        "reg_weight": FloatRange(1e-6, 1e-2, log=True),
        "cl_weight": FloatRange(1e-4, 1e-1, log=True),
        "k": IntRange(5, 20, step=5),
    },
    # MMRec's MGCN.yaml grid (its cl_loss is graphrec's cl_weight), learning_rate 0.001, schedule [0.96, 50]
    reference_grids={"mmrec": {"cl_weight": [1e-3, 1e-2, 1e-1], "lr": 1e-3, "lr_decay": 0.96, "cold_path": "none"}},
    # MMRec's MGCN.yaml names (its n_layers is the item-graph layers)
    reference_names={"mmrec": {"n_ui_layers": "num_layers", "n_layers": "item_layers", "knn_k": "k",
                               "cl_loss": "cl_weight"}},
)
def build_mgcn(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    k: ModalityK = 10,
    modalities: Modalities = None,
    weighting: Annotated[
        str,
        Option(
            help="Values of the kNN graphs: cosine (as MGCN's reference code) or binary (as FREEDOM).",
            choices=WEIGHTINGS,
        ),
    ] = "cosine",
    include_self: Annotated[
        bool,
        Option(
            "--include-self/--no-include-self",
            help="Each item is one of its own k neighbours (as the reference code).",
        ),
    ] = True,
    cl_weight: Annotated[
        float, Option(help="Weight of the contrastive task (MMRec's cl_loss; grid 0.001, 0.01, 0.1).", min=0.0)
    ] = 1e-3,
    temperature: Annotated[float, Option(help="InfoNCE temperature.", min=0.0, min_open=True)] = 0.2,
    reg_weight: Annotated[
        float, Option("--reg", help="L2 weight on the batch's final representations.", min=0.0)
    ] = 1e-4,
    train_features: Annotated[
        bool, Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the reference code).")
    ] = True,
    graphs: StoredGraphs = None,
) -> MGCN:
    """MGCN's inputs, from the TRAINING data: D^-1/2 A D^-1/2 of the user-item graph, its
    user-item block, per modality the normalised top-``k`` graph of the raw features, and
    the raw features. MMRec trains MGCN with the learning rate decayed by 0.96 every 50
    epochs (``learning_rate_scheduler: [0.96, 50]``): ``graphrec train mgcn`` and ``graphrec
    tune mgcn`` default to ``--lr-decay 0.96``; from Python, TrainConfig(lr_decay=0.96).
    ``graphs``: stored one-modality kNN graphs (``graphrec build-graph --kind knn
    --modalities M``, with this ``k``, ``weighting`` and ``include_self``) used for their
    modalities instead of building them (provenance-checked)."""
    check_params(dataset, {"modalities": modalities})
    mods = mgcn_modalities(dataset, modalities)
    given = stored_mgcn_graphs(dataset, graphs, mods, k, weighting, include_self)
    item_graphs = mgcn_item_graphs(dataset, mods, k=k, weighting=weighting, include_self=include_self, given=given)
    adj = normalized_bipartite(dataset.train, "sym")
    n_users = dataset.n_users
    user_item = adj[:n_users, n_users:]
    features = {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in mods}
    return MGCN(
        n_users,
        dataset.n_items,
        to_torch_sparse(adj),
        to_torch_sparse(user_item),
        {m: to_torch_sparse(g) for m, g in item_graphs.items()},
        features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        cl_weight=cl_weight,
        temperature=temperature,
        reg_weight=reg_weight,
        train_features=train_features,
    )
