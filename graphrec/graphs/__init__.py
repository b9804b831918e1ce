"""Pure functions that build, normalise, store and inspect item (and user-item) graphs."""

from graphrec.graphs.bipartite import bipartite_adjacency, normalized_bipartite
from graphrec.graphs.build import GRAPH_KINDS, BuiltGraph, GraphSpec, build_item_graph
from graphrec.graphs.cooccur import cooccurrence_graph, user_cooccurrence_graph
from graphrec.graphs.fuse import FusedFeatures, fuse_features
from graphrec.graphs.knn import knn_graph, knn_recall
from graphrec.graphs.normalize import NORMALIZATIONS, normalize_adjacency
from graphrec.graphs.store import GraphRecord, graph_dataset, load_graph, save_graph

__all__ = [
    "bipartite_adjacency",
    "normalized_bipartite",
    "GRAPH_KINDS",
    "BuiltGraph",
    "GraphSpec",
    "build_item_graph",
    "cooccurrence_graph",
    "user_cooccurrence_graph",
    "FusedFeatures",
    "fuse_features",
    "knn_graph",
    "knn_recall",
    "NORMALIZATIONS",
    "normalize_adjacency",
    "GraphRecord",
    "load_graph",
    "graph_dataset",
    "save_graph",
]


def __getattr__(name: str) -> "object":
    """A submodule not imported above (``graphrec.graphs.stats``, ``.prune``), imported on
    first attribute access (:func:`graphrec._submodule`)."""
    from graphrec import _submodule

    return _submodule(__name__, name)
