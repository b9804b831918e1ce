"""Export item graphs to networkx (and GraphML) for inspection.

A node is an item index; its attributes come from the dataset when given:
``item_id`` (original id), ``title`` (the dataset's ``title`` item field, else its
``text`` field, when present), ``has_<modality>`` (the item has a non-zero feature row
for that modality) and ``cold`` (the item is a cold-start item). Edges carry the graph's
value as ``weight``. A USER graph (``nodes="users"``, e.g. DRAGON's user-user
co-occurrence graph) has user nodes instead, with attributes ``user_id`` and
``n_train_items`` (the user's training interactions). networkx is imported inside the
functions: it is only needed when a graph is inspected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_file
from graphrec.errors import DataError
from graphrec.graphs.knn import union_max

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from graphrec.data import Dataset

__all__ = ["item_attributes", "user_attributes", "to_networkx", "write_graphml", "plot_degree_distribution"]

TITLE_FIELDS = ("title", "text")


def item_attributes(dataset: "Dataset") -> dict[str, np.ndarray]:
    """Per-item attribute columns (see module doc), each of length ``n_items``."""
    attrs: dict[str, np.ndarray] = {"item_id": dataset.item_ids}
    for field in TITLE_FIELDS:
        if field in dataset.item_fields:
            attrs["title"] = np.asarray(dataset.item_fields[field]).astype(str)
            break
    for mod, x in dataset.item_features.items():
        attrs[f"has_{mod}"] = np.abs(x).sum(axis=1) > 0
    cold = np.zeros(dataset.n_items, dtype=bool)
    if dataset.cold_items is not None:
        cold[dataset.cold_items] = True
    attrs["cold"] = cold
    return attrs


def user_attributes(dataset: "Dataset") -> dict[str, np.ndarray]:
    """Per-user attribute columns of a user graph: ``user_id`` and ``n_train_items``."""
    return {
        "user_id": dataset.user_ids,
        "n_train_items": np.diff(sp.csr_matrix(dataset.train).indptr).astype(np.int64),
    }


def _matrix(graph: Any) -> sp.csr_matrix:
    """``graph`` as CSR; a one-line error for a stored graph's folder or ``load_graph``'s
    pair, which name a graph without being one."""
    if isinstance(graph, (str, os.PathLike)):
        raise DataError(
            f"got the path {str(graph)!r}, not a matrix: load a stored graph first, "
            "matrix, record = graphrec.graphs.store.load_graph(path)"
        )
    if isinstance(graph, tuple) and len(graph) == 2 and sp.issparse(graph[0]):
        raise DataError("got load_graph's (matrix, record) pair: pass its matrix, matrix, record = load_graph(path)")
    if sp.issparse(getattr(graph, "graph", None)):  # build_item_graph's BuiltGraph
        graph = graph.graph
    if hasattr(graph, "layout") and hasattr(graph, "to_dense"):  # a torch tensor (a model's item_graphs())
        import torch

        t = graph.detach().cpu()
        if t.layout == torch.sparse_csr:
            graph = sp.csr_matrix((t.values().numpy(), t.col_indices().numpy(), t.crow_indices().numpy()),
                                  shape=tuple(t.shape))
        else:
            t = t.coalesce() if t.layout == torch.sparse_coo else t.to_sparse().coalesce()
            i = t.indices().numpy()
            graph = sp.csr_matrix((t.values().numpy(), (i[0], i[1])), shape=tuple(t.shape))
    if not sp.issparse(graph) and not isinstance(graph, (np.ndarray, list)):
        raise DataError(f"got a {type(graph).__name__}, not a graph: pass a scipy sparse matrix, a torch sparse "
                        "tensor (a model's item_graphs()) or build_item_graph's result")
    g = sp.csr_matrix(graph, copy=True)  # a copy: the caller's matrix is never changed
    g.eliminate_zeros()  # an entry of weight 0 is no edge, as in a stored graph
    return g


def to_networkx(
    graph: sp.spmatrix, dataset: "Dataset | None" = None, directed: bool | None = None, nodes: str = "items"
) -> "nx.Graph":
    """The item graph (``nodes="users"``: the user graph) as a networkx graph with node
    attributes.

    ``directed=None`` returns an undirected ``nx.Graph`` when the matrix is symmetric
    (each entry's mirror exists and equals it to a relative 1e-5, whatever the scale of
    the weights) and a ``nx.DiGraph`` otherwise (a kNN graph is directed: j in i's list does not imply
    the converse). ``directed=False`` on a directed matrix gives the union of both
    directions, weight max(A_ij, A_ji) over the directions present (the ``symmetric``
    rule of :func:`~graphrec.graphs.knn.knn_graph`). Edges are the non-zero entries;
    self loops (an ``include_self`` graph's) are kept.
    """
    import networkx as nx

    if nodes not in ("items", "users"):
        raise DataError(f"nodes must be items or users, got {nodes!r}")
    g = _matrix(graph)
    if g.shape[0] != g.shape[1]:
        raise DataError(f"a graph must be square, got shape {g.shape}")
    if dataset is not None:
        n = dataset.n_users if nodes == "users" else dataset.n_items
        if n != g.shape[0]:
            raise DataError(
                f"graph has {g.shape[0]} {nodes} but dataset {dataset.name!r} has {n}: "
                "pass the dataset the graph was built from"
            )
    if directed is None:  # symmetric: every entry has its mirror, equal to float32 rounding
        gap, size = abs(g - g.T), abs(g).maximum(abs(g.T))
        directed = (gap > size.multiply(1e-5)).nnz > 0
    out = nx.DiGraph() if directed else nx.Graph()
    out.add_nodes_from(range(g.shape[0]))
    if dataset is not None:
        attrs = user_attributes(dataset) if nodes == "users" else item_attributes(dataset)
        for name, col in attrs.items():
            values = col.tolist()
            nx.set_node_attributes(out, dict(enumerate(values)), name)
    coo = g.tocoo()
    rows, cols, vals = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    if not directed:  # each pair once, from both directions
        rows, cols, vals = union_max(rows, cols, vals, g.shape[0])
        keep = rows <= cols
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    out.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), vals.astype(float).tolist()))
    return out


def write_graphml(
    graph: sp.spmatrix, path: str | os.PathLike, dataset: "Dataset | None" = None, **kwargs: Any
) -> Path:
    """Write the graph (with node attributes; ``nodes="users"`` for a user graph) as
    GraphML, atomically."""
    import networkx as nx

    path = Path(path)
    with atomic_file(path) as tmp:
        nx.write_graphml(to_networkx(graph, dataset, **kwargs), tmp)
    return path


def plot_degree_distribution(graph: sp.spmatrix, path: str | os.PathLike, title: str = "", nodes: str = "items") -> Path:
    """Log-log plot of the out- and in-degree distributions to a PNG (matplotlib, extra
    ``plot``). A kNN graph has constant out-degree k; its in-degree shows the hubs.
    ``nodes`` (``"items"`` or ``"users"``, a record's ``nodes``) labels the counts."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--plot needs matplotlib: pip install 'graphrec[plot]'") from None
    g = _matrix(graph)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for name, deg, marker in (
        ("out-degree", np.diff(g.indptr), "o"),
        ("in-degree", np.bincount(g.indices, minlength=g.shape[0]), "x"),
    ):
        counts = np.bincount(deg)
        ks = np.flatnonzero(counts)
        ax.scatter(np.maximum(ks, 0.8), counts[ks], s=12, marker=marker, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    ax.set_xlabel("degree (0 drawn at 0.8)")
    ax.set_ylabel(nodes)
    ax.set_title(title or f"{g.shape[0]} {nodes}, {g.nnz} edges")
    fig.tight_layout()
    try:
        with atomic_file(path) as tmp:  # keeps the suffix: savefig picks the format by it
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path
