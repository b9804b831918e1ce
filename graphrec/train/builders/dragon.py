"""DRAGON's builder: the normalised user-item graph of the TRAINING data, FREEDOM's frozen
merged modality kNN graph (items), the softmax-weighted top-k user co-occurrence graph
(users) and the raw item features; either graph may be read from stored graphs
(``--graph``) instead of being built."""

from __future__ import annotations

import math

from typing import Annotated, Any, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.errors import DataError
from graphrec.graphs import normalized_bipartite, user_cooccurrence_graph
from graphrec.graphs.store import GraphRecord
from graphrec.models.dragon import DRAGON
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    EmbeddingDim,
    LR_SPACE,
    ModalityK,
    Modalities,
    StoredGraphs,
    load_stored_graphs,
    needs_features,
    one_modality_graphs,
)
from graphrec.train.builders.freedom import ModalityWeights, freedom_modality_weights, frozen_item_graph
from graphrec.train.registry import Choice, FloatRange, IntRange, Option, register_model

__all__ = ["build_dragon", "softmax_rows", "stored_user_graph", "user_aggregation_graph", "USER_GRAPH_KIND"]

#: the kind of stored graph (``graphrec build-graph --kind user-cooccur``) DRAGON's user graph is
USER_GRAPH_KIND = "user-cooccur"
#: the pairs DRAGON's user graph keeps: every pair sharing an item (``user_cooccurrence_graph``'s default)
USER_MIN_COUNT = 1

#: DRAGON's user-item aggregation: "add" = symmetric D^-1/2 A D^-1/2, "mean" = D^-1 A
AGGREGATIONS = {"add": "sym", "mean": "row"}


def user_aggregation_graph(train: sp.spmatrix | sp.sparray, k: int = 40) -> sp.csr_matrix:
    """DRAGON's user-user operator U (n_users square, float32 CSR): per user, its ``k``
    users sharing the most TRAINING items (:func:`graphrec.graphs.user_cooccurrence_graph`,
    ties to the lower user index), weighted by a softmax of the shared-item counts over
    those neighbours, ``U_uv = exp(c_uv) / sum_v' exp(c_uv')`` (:func:`softmax_rows`). A
    user sharing no item with anyone has an empty row (no neighbour term)."""
    return softmax_rows(user_cooccurrence_graph(train, top_k=k, min_count=USER_MIN_COUNT))


def _user_graph_problem(record: GraphRecord, k: int) -> Optional[str]:
    """What makes a stored user-cooccur graph other than DRAGON's raw top-``k`` counts
    (None when it is that graph)."""
    if record.nodes != "users":
        return f"it is a graph of {record.nodes}, not of users"
    if record.k != k:
        kept = "every co-occurring user" if record.k is None else f"the top {record.k} co-occurring users"
        return f"it keeps {kept} per user but --user-k is {k}"
    min_count = (record.pruning or {}).get("min_count")
    if min_count != USER_MIN_COUNT:
        return f"it drops pairs sharing fewer than {min_count} items; DRAGON keeps every pair sharing one"
    if record.symmetric:
        return "it is symmetrised; DRAGON's top-k lists are not"
    if record.normalization != "none":
        return f"it is stored with {record.normalization!r} normalisation; DRAGON takes the raw counts"
    if record.weighting != "count":
        return f"its weights are {record.weighting!r}, not the raw counts"
    return None


def stored_user_graph(stored: list[tuple[sp.csr_matrix, GraphRecord, str]], k: int) -> Optional[sp.csr_matrix]:
    """DRAGON's user-user operator from the stored graphs: the ``user-cooccur`` graph among
    them (at most one) through :func:`softmax_rows`, when it holds the raw counts of the
    top-``k`` co-occurring users as :func:`user_aggregation_graph` builds them (``graphrec
    build-graph --kind user-cooccur --cooccur-top-k K``, not symmetrised, not normalised,
    min count 1); None when no user graph is given. One-line DataErrors naming the graph
    and the rebuild."""
    found = [(g, r, p) for g, r, p in stored if r.kind == USER_GRAPH_KIND]
    if len(found) > 1:
        raise DataError(f"{len(found)} stored {USER_GRAPH_KIND} graphs given ({', '.join(p for _, _, p in found)}): "
                        "pass one")
    if not found:
        return None
    graph, record, path = found[0]
    problem = _user_graph_problem(record, k)
    if problem is not None:
        raise DataError(
            f"graph {path} is not DRAGON's user graph: {problem}; rebuild it with graphrec build-graph --kind "
            f"{USER_GRAPH_KIND} --cooccur-top-k {k} (no --symmetric, --cooccur-min-count 1, --normalization none)"
        )
    return softmax_rows(graph)


def softmax_rows(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's stored values replaced by their softmax over that row (float32 CSR, same
    pattern; empty rows stay empty). Computed on the CSR values, stabilised by each row's
    maximum."""
    counts = sp.csr_matrix(counts)
    n_rows = counts.shape[0]
    lengths = np.diff(counts.indptr)
    rows = np.repeat(np.arange(n_rows), lengths)
    values = counts.data.astype(np.float64)
    row_max = np.zeros(n_rows)
    filled = lengths > 0
    if filled.any():  # segments of the non-empty rows end where the next one starts
        row_max[filled] = np.maximum.reduceat(values, counts.indptr[:-1][filled])
    weights = np.exp(values - row_max[rows])
    sums = np.bincount(rows, weights=weights, minlength=n_rows)
    weights /= sums[rows]
    out = sp.csr_matrix((weights.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)
    out.has_sorted_indices = counts.has_sorted_indices
    return out


def content_modalities(model: DRAGON, dataset: Dataset, params: dict) -> tuple[str, ...]:
    """The modalities of the heterogeneous graphs and of the frozen item graph."""
    return tuple(model.modalities)


def check_params(dataset: Dataset, params: Mapping[str, Any]) -> None:
    """The builder's cheap checks (``graphrec tune --grid`` runs them on every grid point):
    features, the modalities and their weights."""
    needs_features(dataset, "dragon")
    freedom_modality_weights(dataset.item_features, params.get("modalities"), params.get("modality_weights"))


@register_model(
    "dragon",
    title="DRAGON",
    paper="Zhou, Zhou & Shen, ECAI 2023",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="per-modality user-item graphs over projected features, attentive concatenation, "
    "frozen item-item kNN and user-user co-occurrence graphs for dual representations",
    example="graphrec train dragon --data data/lfm2k --reg 0.001 --user-k 40",
    needs_features=True,
    content_modalities=content_modalities,
    check=check_params,
    search_space={
        "lr": LR_SPACE,
        "reg_weight": FloatRange(1e-5, 1e-1, log=True),
        "user_k": IntRange(10, 40, step=10),
        "aggregation": Choice(("add", "mean")),
    },
    # MMRec's DRAGON.yaml grid; its loss is BPR / ln 2, so its reg_weight is graphrec's divided by ln 2
    reference_grids={"mmrec": {"reg_weight": [r * math.log(2) for r in (0.1, 0.01, 1e-3, 1e-4, 1e-5)],
                               "lr": [0.1, 0.01, 1e-3, 1e-4, 1e-5], "aggregation": "add", "cold_path": "none"}},
    # MMRec's DRAGON.yaml names (its n_layers: 2 is read by no code: 2 user-item rounds, graphrec's num_layers)
    reference_names={"mmrec": {"n_mm_layers": "item_layers", "knn_k": "k", "aggr_mode": "aggregation",
                               "mm_image_weight": "modality_weights: {image: W, text: 1 - W}"}},
)
def build_dragon(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Annotated[
        int, Option("--layers", help="Propagation rounds over each modality's user-item graph.", min=0)
    ] = 2,
    item_layers: Annotated[int, Option(help="Propagation rounds over the item-item graph.", min=0)] = 1,
    user_layers: Annotated[int, Option(help="Propagation rounds over the user-user graph.", min=0)] = 1,
    k: ModalityK = 10,
    user_k: Annotated[
        int, Option(help="Co-occurring users kept per user in the user-user graph (the reference's 40).", min=1)
    ] = 40,
    modalities: Modalities = None,
    modality_weights: ModalityWeights = None,
    include_self: Annotated[
        bool,
        Option(
            "--include-self/--no-include-self",
            help="Each item is one of its own k neighbours in the item graph (as the reference's dense top-k).",
        ),
    ] = True,
    aggregation: Annotated[
        str,
        Option(
            help="User-item aggregation: add (symmetric D^-1/2 A D^-1/2, MMRec's aggr_mode add) or mean (D^-1 A).",
            choices=tuple(AGGREGATIONS),
        ),
    ] = "add",
    reg_weight: Annotated[
        float,
        Option("--reg", help="Weight of the users' preference embeddings and attention weights (mean squares).", min=0.0),
    ] = 1e-3,
    graphs: StoredGraphs = None,
) -> DRAGON:
    """DRAGON's inputs, from the TRAINING data: the normalised bipartite user-item graph,
    the frozen item graph (per modality the binary top-``k`` cosine graph of the raw
    features, D^-1/2 S D^-1/2, merged with FREEDOM's fixed weights), the user-user
    operator (top-``user_k`` co-occurring users, softmax of the shared-item counts) and
    the raw features. reg 1e-3 is the number the authors publish for Baby and Sports; their
    loss is BPR / ln 2, so it is 1e-3 ln 2 = 6.9e-4 on graphrec's scale (and graphrec's
    1e-3 is their 1.44e-3). Their learning rate there is 1e-4; graphrec's 1e-3 default
    converges in far fewer epochs (docs/models/dragon.md).

    ``graphs``: stored graphs used instead of building them (provenance-checked): binary
    one-modality kNN graphs (``graphrec build-graph --kind knn --modalities M --weighting
    binary``, with this ``k`` and ``include_self``) for the item graph's modalities, as
    FREEDOM's, and the user graph (``graphrec build-graph --kind user-cooccur
    --cooccur-top-k USER_K``, :func:`stored_user_graph`)."""
    check_params(dataset, {"modalities": modalities, "modality_weights": modality_weights})
    weights = freedom_modality_weights(dataset.item_features, modalities, modality_weights)
    stored = load_stored_graphs(dataset, graphs)
    given = one_modality_graphs(dataset, graphs, model="dragon", modalities=list(weights),
                                among="the merged modalities", k=k, include_self=include_self, weighting="binary",
                                ignore=(USER_GRAPH_KIND,), stored=stored)
    item_graph = frozen_item_graph(dataset, weights, k=k, include_self=include_self, given=given)
    adjacency = normalized_bipartite(dataset.train, AGGREGATIONS[aggregation])
    user_graph = stored_user_graph(stored, user_k)
    if user_graph is None:
        user_graph = user_aggregation_graph(dataset.train, user_k)
    features = {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in weights}
    return DRAGON(
        dataset.n_users,
        dataset.n_items,
        to_torch_sparse(adjacency),
        to_torch_sparse(item_graph),
        to_torch_sparse(user_graph),
        features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        user_layers=user_layers,
        reg_weight=reg_weight,
        graph_weights=weights,
    )
