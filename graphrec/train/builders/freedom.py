"""FREEDOM's builder: the binary training matrix, the frozen merged modality kNN graph
(built once, here, from the raw features, or read from stored graphs) and, for the λ
term, the raw features."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional, Union

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.fuse import default_modalities
from graphrec.models.freedom import FREEDOM
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    EmbeddingDim,
    ItemLayers,
    LR_SPACE,
    Layers,
    ModalityK,
    Modalities,
    StoredGraphs,
    one_modality_graphs,
    needs_features,
)
from graphrec.train.registry import Choice, FloatRange, IntRange, Option, register_model

__all__ = ["build_freedom", "freedom_modality_weights", "frozen_item_graph", "stored_modality_graphs"]

#: MMRec's mm_image_weight: the image graph's share when image and text are merged
MMREC_IMAGE_WEIGHT = 0.1

ModalityWeights = Annotated[
    Optional[Union[str, Mapping[str, float]]],
    Option(
        help="Fixed weights of the modality graphs, e.g. image=0.1,text=0.9, normalised to sum 1 "
        "(default: image 0.1 and text 0.9 as MMRec when the modalities are exactly those two, else equal).",
        cli_type=Optional[str],
    ),
]


def _parse_weights(value: str | Mapping[str, float]) -> dict[str, float]:
    if isinstance(value, str):
        out: dict[str, float] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            name, sep, w = part.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"modality weight {part.strip()!r} is not MODALITY=WEIGHT (e.g. image=0.1,text=0.9)")
            try:
                out[name.strip()] = float(w)
            except ValueError:
                raise ConfigError(f"modality weight {part.strip()!r}: {w.strip()!r} is not a number") from None
        return out
    return {str(k): float(v) for k, v in value.items()}


def freedom_modality_weights(
    available: Mapping[str, Any],
    modalities: str | tuple[str, ...] | list[str] | None = None,
    modality_weights: str | Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The modalities FREEDOM merges and their fixed weights (summing to 1).

    * ``modality_weights`` given: its modalities (which must equal ``modalities`` when
      both are given), weights >= 0 normalised to sum 1;
    * otherwise the chosen modalities (default: all the dataset has): image 0.1 and
      text 0.9 when they are exactly ``{image, text}`` (MMRec's ``mm_image_weight``),
      else equal weights.
    """
    mods = parse_modalities(modalities)
    if modality_weights is not None:
        weights = _parse_weights(modality_weights)
        if not weights:
            raise ConfigError("modality_weights is empty: give MODALITY=WEIGHT pairs, e.g. image=0.1,text=0.9")
        if mods is not None and set(mods) != set(weights):
            raise ConfigError(
                f"modality_weights names {', '.join(weights)} but modalities are {', '.join(mods)}: name the same ones"
            )
        bad = [f"{m}={w}" for m, w in weights.items() if not (w >= 0 and np.isfinite(w))]
        if bad:
            raise ConfigError(f"modality weights must be finite and >= 0, got {', '.join(bad)}")
        total = sum(weights.values())
        if total <= 0:
            raise ConfigError("modality weights sum to 0: give at least one positive weight")
        chosen = {m: w / total for m, w in weights.items()}
    else:
        names = mods or default_modalities(available)
        if set(names) == {"image", "text"}:
            chosen = {m: (MMREC_IMAGE_WEIGHT if m == "image" else 1.0 - MMREC_IMAGE_WEIGHT) for m in names}
        else:
            chosen = {m: 1.0 / len(names) for m in names}
    missing = [m for m in chosen if m not in available]
    if missing:
        raise DataError(
            f"the dataset has no {', '.join(missing)} features (it has {', '.join(available)}): "
            "choose --modalities / --modality-weights among those"
        )
    return chosen


def frozen_item_graph(
    dataset: Dataset,
    weights: Mapping[str, float],
    k: int = 10,
    include_self: bool = True,
    given: Mapping[str, sp.csr_matrix] | None = None,
) -> sp.csr_matrix:
    """S = sum_m alpha_m D_m^-1/2 S_m D_m^-1/2 over the binary top-``k`` cosine graphs S_m
    of the raw features (row sums D_m), as a float32 scipy CSR (n_items square); each item
    one of its own ``k`` neighbours unless ``include_self=False`` (FREEDOM's builder
    default, as the reference's top-k of the full similarity matrix). ``given``: the
    normalised D_m^-1/2 S_m D_m^-1/2 of some modalities, already built
    (:func:`stored_modality_graphs`)."""
    total = None
    for m, w in weights.items():
        if given is not None and m in given:
            g = sp.csr_matrix(given[m]).astype(np.float64) * float(w)
            total = g if total is None else total + g
            continue
        spec = GraphSpec(
            kind="knn", k=k, modalities=(m,), weighting="binary", include_self=include_self, normalization="sym"
        )
        g = build_item_graph(dataset, spec).graph.astype(np.float64) * float(w)
        total = g if total is None else total + g
    assert total is not None
    out = sp.csr_matrix(total, dtype=np.float32)
    out.eliminate_zeros()  # a modality of weight 0 adds no pattern
    return out


def stored_modality_graphs(
    dataset: Dataset, graphs: Any, weights: Mapping[str, float], k: int, include_self: bool
) -> dict[str, sp.csr_matrix]:
    """The stored graphs (``--graph``) as FREEDOM's normalised modality graphs, by
    modality: each a directed one-modality binary kNN graph of this data over a merged
    modality, with the ``k`` and ``include_self`` asked for
    (:func:`~graphrec.train.builders._common.one_modality_graphs`)."""
    return one_modality_graphs(dataset, graphs, model="freedom", modalities=list(weights),
                               among="the merged modalities", k=k, include_self=include_self, weighting="binary")


def content_modalities(model: FREEDOM, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The modalities merged into the frozen item graph."""
    weights = freedom_modality_weights(dataset.item_features, params.get("modalities"), params.get("modality_weights"))
    return tuple(weights)


def check_params(dataset: Dataset, params: Mapping[str, Any]) -> None:
    """The builder's cheap checks (``graphrec tune --grid`` runs them on every grid point):
    features, the edge-dropout fraction below 1, the modalities and their weights."""
    needs_features(dataset, "freedom")
    dropout = params.get("dropout", 0.8)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"freedom option dropout must be < 1 (the fraction of edges dropped), got {dropout}")
    freedom_modality_weights(dataset.item_features, params.get("modalities"), params.get("modality_weights"))


@register_model(
    "freedom",
    title="FREEDOM",
    paper="Zhou & Shen, ACM MM 2023",
    summary="frozen merged modality kNN graph plus degree-sensitive pruning of the user-item graph",
    example="graphrec train freedom --data data/lfm2k --dropout 0.8",
    needs_features=True,
    content_modalities=content_modalities,
    check=check_params,
    search_space={
        "lr": LR_SPACE,
        "dropout": FloatRange(0.0, 0.9, step=0.1),
        "feature_weight": Choice((0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
        "k": IntRange(5, 20, step=5),
    },
    # MMRec's FREEDOM.yaml grid (its reg_weight is graphrec's feature_weight); learning_rate 0.001 (overall.yaml)
    reference_grids={"mmrec": {"dropout": [0.8, 0.9], "feature_weight": [0.0, 1e-5, 1e-4, 1e-3], "lr": 1e-3,
                               "cold_path": "none"}},
    # MMRec's FREEDOM.yaml names
    reference_names={"mmrec": {"n_ui_layers": "num_layers", "n_mm_layers": "item_layers", "knn_k": "k",
                               "reg_weight": "feature_weight",
                               "mm_image_weight": "modality_weights: {image: W, text: 1 - W}"}},
)
def build_freedom(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    k: ModalityK = 10,
    modalities: Modalities = None,
    modality_weights: ModalityWeights = None,
    include_self: Annotated[
        bool,
        Option(
            "--include-self/--no-include-self",
            help="Each item is one of its own k neighbours (as MMRec's dense top-k; preferred by lfm2k validation).",
        ),
    ] = True,
    dropout: Annotated[
        float,
        Option(help="Fraction of the user-item edges pruned each epoch (degree-sensitive), in [0, 1).", min=0.0, max=1.0),
    ] = 0.8,
    feature_weight: Annotated[
        float,
        Option(help="Lambda: weight of the users-vs-projected-features BPR terms (MMRec's reg_weight).", min=0.0),
    ] = 0.0,
    train_features: Annotated[
        bool,
        Option("--train-features/--fixed-features", help="Fine-tune the feature tables of the lambda term (as MMRec)."),
    ] = True,
    graphs: StoredGraphs = None,
) -> FREEDOM:
    """FREEDOM's inputs, from the TRAINING data: the binary interaction matrix (pruned
    by the model every epoch), the frozen item graph (per modality the binary top-``k``
    cosine graph of the raw features, row-normalised D^-1/2 S D^-1/2, merged with the
    fixed ``modality_weights``) and, when ``feature_weight`` > 0, the raw features.
    ``graphs``: stored binary one-modality kNN graphs (``graphrec build-graph --kind knn
    --modalities M --weighting binary``, with this ``k`` and ``include_self``) used for
    their modalities instead of building them (provenance-checked)."""
    check_params(dataset, {"dropout": dropout, "modalities": modalities, "modality_weights": modality_weights})
    weights = freedom_modality_weights(dataset.item_features, modalities, modality_weights)
    given = stored_modality_graphs(dataset, graphs, weights, k, include_self)
    graph = frozen_item_graph(dataset, weights, k=k, include_self=include_self, given=given)
    train = sp.csr_matrix(dataset.train, dtype=np.float32, copy=True)
    train.sum_duplicates()
    train.data[:] = 1.0
    features = {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in weights}
    return FREEDOM(
        dataset.n_users,
        dataset.n_items,
        to_torch_sparse(train),
        to_torch_sparse(graph),
        features if feature_weight > 0 else None,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        dropout=dropout,
        feature_weight=feature_weight,
        train_features=train_features,
        graph_weights=weights,
    )
