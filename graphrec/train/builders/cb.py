"""The content kNN baseline's builder: training histories and a raw-cosine kNN graph."""

from __future__ import annotations

from typing import Annotated, Optional

from graphrec.data import Dataset
from graphrec.errors import DataError
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.models import ContentKNN
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    Modalities,
    StoredGraphs,
    check_features,
    check_k,
    load_stored_graphs,
    pick_graph,
)
from graphrec.train.registry import IntRange, Option, register_model


#: the builder's cheap checks: item features, and modalities that fuse early (one
#: dimension) where the graph is built here
check_params = check_features("cb", fused=True)


@register_model(
    "cb",
    title="CB",
    paper="item-based kNN, Sarwar et al., WWW 2001, on content",
    summary="the content-only baseline: a user's score for an item sums its content cosines to the user's items",
    example="graphrec train cb --data data/scientific --k 50 --cold-start 0.2",
    needs_features=True,
    trainable=False,
    search_space={"k": IntRange(5, 100, log=True)},
    check=check_params,
)
def build_cb(
    dataset: Dataset,
    k: Annotated[
        Optional[int], Option(help="Neighbours per item in the content kNN graph [50, or the stored graph's].", min=1)
    ] = None,
    modalities: Modalities = None,
    graphs: StoredGraphs = None,
) -> ContentKNN:
    """Content kNN: the training histories and the top-``k`` cosine graph of the
    early-fused ``modalities`` (``k`` None means 50), or a stored kNN graph. Nothing is
    trained; ``graphrec train cb`` validates and tests it."""
    check_params(dataset, {"modalities": modalities, "graphs": graphs})
    given = pick_graph(load_stored_graphs(dataset, graphs), "knn", "cb", ("knn",))
    if given is not None:
        g, rec, path = given
        check_k(rec, k, path)
        if rec.normalization != "none":
            raise DataError(f"graph {path} is normalised ({rec.normalization}); cb uses raw cosines: rebuild it with --normalization none")
        sim = g
    else:
        spec = GraphSpec(kind="knn", k=50 if k is None else k, modalities=parse_modalities(modalities))
        sim = build_item_graph(dataset, spec).graph
    return ContentKNN(dataset.n_users, dataset.n_items, to_torch_sparse(dataset.train), to_torch_sparse(sim))
