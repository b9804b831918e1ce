"""The cold-item path's builder: wraps any ranking model whose scores are inner products
of its embeddings (:class:`graphrec.models.coldstart.ColdItemRecommender`), with its
inputs from the TRAINING data: which items were seen, their early-fused content features
and the raw-cosine content kNN graph with the training histories."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.fuse import default_modalities, fuse_features
from graphrec.models.base import Recommender
from graphrec.models.cb import ContentKNN
from graphrec.models.coldstart import ColdItemRecommender
from graphrec.nn import to_torch_sparse

__all__ = ["attach_cold_path", "cold_path_features"]


def cold_path_features(dataset: Dataset, modalities: Optional[Union[str, Sequence[str]]] = None) -> np.ndarray:
    """The path's content input: the early-fused features of ``modalities`` (all by
    default), as :func:`graphrec.graphs.fuse.fuse_features` makes them."""
    if not dataset.item_features:
        raise ConfigError(
            f"the cold-item path needs item content features and dataset {dataset.name!r} has none: "
            "add them (graphrec features) or use --cold-path none"
        )
    return fuse_features(dataset.item_features, parse_modalities(modalities), option="--cold-modalities",
                         sources=dataset.meta.get("features")).x


def attach_cold_path(
    model: Recommender,
    dataset: Dataset,
    k: int = 50,
    modalities: Optional[Union[str, Sequence[str]]] = None,
    hidden_dim: int = 64,
    reg_weight: float = 1e-4,
    objective: str = "regress",
) -> ColdItemRecommender:
    """``model`` with the cold-item path: the fused features of ``modalities``, their
    top-``k`` raw-cosine kNN graph and the training histories (neighbour term), and the
    items with at least one training interaction."""
    x = cold_path_features(dataset, modalities)
    mods = parse_modalities(modalities) or default_modalities(dataset.item_features)
    try:
        with torch.no_grad():
            _, item_emb = model.embeddings()
    except NotImplementedError:
        raise ConfigError(
            f"{type(model).__name__} does not score by embeddings, so the cold-item path cannot serve it: "
            "use --cold-path none"
        ) from None
    spec = GraphSpec(kind="knn", k=k, modalities=parse_modalities(modalities))
    sim = build_item_graph(dataset, spec).graph
    neighbours = ContentKNN(dataset.n_users, dataset.n_items, to_torch_sparse(dataset.train), to_torch_sparse(sim))
    seen = torch.from_numpy(np.bincount(dataset.train.indices, minlength=dataset.n_items) > 0)
    return ColdItemRecommender(
        model, torch.from_numpy(x), seen, neighbours,
        embedding_dim=int(item_emb.shape[1]), hidden_dim=hidden_dim, reg_weight=reg_weight, objective=objective,
        modalities=tuple(mods),
    )
