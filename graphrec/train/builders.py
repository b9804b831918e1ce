"""Model factories: turn a :class:`~graphrec.data.Dataset` plus hyper-parameters into a
model, building the graphs the model receives. This is the one place that knows how
each model's inputs are derived from data, so training, ``graphrec evaluate`` and
checkpoint reloading construct models identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.models import MMGEF, LightGCN, Recommender
from graphrec.models.mmgef import FEATURE_MODES
from graphrec.nn import to_torch_sparse

__all__ = ["ModelSpec", "MODELS", "build_model", "model_params"]


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: its factory and default hyper-parameters."""

    name: str
    build: Callable[..., Recommender]
    defaults: Mapping[str, Any]


def _build_lightgcn(dataset: Dataset, embedding_dim: int, num_layers: int, reg_weight: float) -> LightGCN:
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    return LightGCN(
        dataset.n_users,
        dataset.n_items,
        adj,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        reg_weight=reg_weight,
    )


def _build_mmgef(
    dataset: Dataset,
    embedding_dim: int,
    num_layers: int,
    item_layers: int,
    reg_weight: float,
    k: int,
    modalities: str | list[str] | tuple[str, ...] | None,
    use_cf_graph: bool,
    attention: bool,
    feature_mode: str,
    cooccur_top_k: int | None,
) -> MMGEF:
    """MM-GEF's inputs: the bipartite graph and, from the TRAINING data only, the content
    kNN graph E^m (early-fused ``modalities``, top-``k`` cosine) and the co-interaction
    graph E^c (counts / max, optionally top-``cooccur_top_k`` per row), each symmetrically
    normalised. ``projected`` mode passes the raw kNN pattern plus the fused features.
    """
    if not dataset.item_features:
        raise DataError(
            f"mmgef needs item content features for its kNN graph, and dataset {dataset.name!r} has "
            "none: prepare it with --feature MODALITY=FILE (e.g. image=clip_image.npy)"
        )
    if feature_mode not in FEATURE_MODES:
        raise ConfigError(f"feature_mode {feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    knn = build_item_graph(
        dataset,
        GraphSpec(
            kind="knn",
            k=k,
            modalities=parse_modalities(modalities),
            normalization="sym" if feature_mode == "fixed" else "none",
        ),
    )
    features = None
    if feature_mode == "projected":
        assert knn.fused is not None
        features = torch.from_numpy(knn.fused.x)
    cooccur = None
    if use_cf_graph:
        cooccur = build_item_graph(
            dataset, GraphSpec(kind="cooccur", cooccur_top_k=cooccur_top_k, normalization="sym")
        ).graph
    return MMGEF(
        dataset.n_users,
        dataset.n_items,
        adj,
        to_torch_sparse(knn.graph),
        None if cooccur is None else to_torch_sparse(cooccur),
        features=features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        reg_weight=reg_weight,
        use_cf_graph=use_cf_graph,
        attention=attention,
        feature_mode=feature_mode,
    )


MODELS: dict[str, ModelSpec] = {
    "lightgcn": ModelSpec(
        "lightgcn", _build_lightgcn, {"embedding_dim": 64, "num_layers": 2, "reg_weight": 1e-4}
    ),
    "mmgef": ModelSpec(
        "mmgef",
        _build_mmgef,
        {
            "embedding_dim": 64,
            "num_layers": 2,
            "item_layers": 1,
            "reg_weight": 1e-4,
            "k": 10,
            "modalities": None,
            "use_cf_graph": True,
            "attention": True,
            "feature_mode": "fixed",
            "cooccur_top_k": None,
        },
    ),
}


def model_params(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of model ``name`` updated with ``overrides`` (unknown keys are errors)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: available are {', '.join(sorted(MODELS))}")
    params = dict(MODELS[name].defaults)
    for k, v in (overrides or {}).items():
        if k not in params:
            raise ConfigError(f"model {name!r} has no option {k!r}: valid are {', '.join(sorted(params))}")
        if v is not None:
            params[k] = v
    return params


def build_model(name: str, dataset: Dataset, params: Mapping[str, Any] | None = None) -> Recommender:
    """Construct model ``name`` for ``dataset`` (on CPU; move it with ``.to(device)``)."""
    return MODELS[name].build(dataset, **model_params(name, params))
