"""Export item graphs to networkx (and GraphML) for inspection.

A node is an item index; its attributes come from the dataset when given:
``item_id`` (original id), ``title`` (the dataset's ``title`` item field, else its
``text`` field, when present), ``has_<modality>`` (the item has a non-zero feature row
for that modality), ``cold`` (the item is a cold-start item) and ``label`` (the title, or
the original id where there is none: the name Gephi shows a node by). Edges carry the
graph's value as ``weight``. A USER graph (``nodes="users"``, e.g. DRAGON's user-user
co-occurrence graph) has user nodes instead, with attributes ``user_id``, ``label`` and
``n_train_items`` (the user's training interactions). networkx is imported inside
:func:`to_networkx`; :func:`write_graphml` writes the GraphML networkx would write for
that graph straight from the sparse matrix, in chunks of rows, without networkx.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_file
from graphrec._progress import counter
from graphrec.errors import ConfigError, DataError, GraphrecNote
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
    # Gephi's node label (it shows the GraphML node id, an index, otherwise): the title where
    # the item has one, else its original id
    title = attrs.get("title")
    attrs["label"] = dataset.item_ids if title is None else np.where(np.char.str_len(title) > 0, title,
                                                                        dataset.item_ids.astype(str))
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
        "label": dataset.user_ids,  # Gephi's node label
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
    g.sum_duplicates()  # a repeated entry is one edge weighing their sum, as scipy reads the matrix
    g.eliminate_zeros()  # an entry of weight 0 is no edge, as in a stored graph
    return g


def _checked(graph: Any, dataset: "Dataset | None", nodes: str) -> sp.csr_matrix:
    """The graph as CSR (:func:`_matrix`), checked: square, ``nodes`` items or users, as
    many nodes as the dataset has of them."""
    if nodes not in ("items", "users"):
        raise DataError(f"nodes must be items or users, got {nodes!r}")
    g = _matrix(graph)
    if g.shape[0] != g.shape[1]:
        raise DataError(f"a graph must be square, got shape {g.shape}")
    if dataset is not None:
        n = dataset.n_users if nodes == "users" else dataset.n_items
        if n != g.shape[0]:
            other = "items" if nodes == "users" else "users"
            if g.shape[0] == (dataset.n_items if other == "items" else dataset.n_users):  # the other kind of node
                raise DataError(
                    f"graph has {g.shape[0]} nodes, as many as dataset {dataset.name!r} has {other}, not {nodes} "
                    f"({n}): a graph of {other} takes nodes={other!r} (inspect: the record says which)"
                )
            raise DataError(
                f"graph has {g.shape[0]} {nodes} but dataset {dataset.name!r} has {n}: "
                "pass the dataset the graph was built from"
            )
    return g


def _is_directed(g: sp.csr_matrix) -> bool:
    """``directed=None``'s rule: a matrix is undirected when every entry has its mirror,
    equal to a relative 1e-5 (float32 rounding), whatever the scale of the weights
    (:func:`~graphrec.graphs.stats.nearly_symmetric`)."""
    from graphrec.graphs.stats import nearly_symmetric

    return not nearly_symmetric(g)


def _node_attributes(dataset: "Dataset", nodes: str) -> dict[str, np.ndarray]:
    return user_attributes(dataset) if nodes == "users" else item_attributes(dataset)


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
    rule of :func:`~graphrec.graphs.knn.knn_graph`). Edges are the non-zero entries (an
    entry a non-canonical matrix stores twice is one edge of their sum, as scipy reads
    it); self loops (an ``include_self`` graph's) are kept.

    A networkx graph takes about 2 KB per edge (4.4 GB for a 2M-edge kNN graph): to
    export a large graph, :func:`write_graphml` writes the same GraphML straight from the
    matrix, without one.
    """
    import networkx as nx

    g = _checked(graph, dataset, nodes)
    if directed is None:
        directed = _is_directed(g)
    out = nx.DiGraph() if directed else nx.Graph()
    out.add_nodes_from(range(g.shape[0]))
    if dataset is not None:
        for name, col in _node_attributes(dataset, nodes).items():
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


#: what XML 1.0 cannot carry, not even as a character reference: the C0 control
#: characters but tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

#: the GraphML ``attr.type`` networkx declares for a value of each type (networkx 3's
#: ``GraphML.construct_types``): a Python int is a "long", a float a "double"; numpy
#: scalars, which only an object column holds (``tolist`` gives Python values), "int" and
#: "float". A type not listed here is refused, as networkx refuses it.
_GRAPHML_TYPES: dict[type, str] = {
    **{t: "float" for t in (np.float16, np.float32, np.float64)},
    **{t: "int" for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                          np.intc, np.intp, np.int_)},
    bool: "boolean", int: "long", float: "double", str: "string",
}

_GRAPHML_HEAD = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
)


def _text(value: str) -> str:
    """``value`` as XML character data; a carriage return as ``&#13;``, which an XML
    parser would otherwise read as a newline."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attribute(value: str) -> str:
    """``value`` inside a double-quoted XML attribute."""
    return _text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#09;")


class _NodeColumn:
    """One node attribute: its values and the GraphML key of each of their types (one
    key for the usual column of one type; an object column of mixed types gets a key
    per GraphML type, as networkx writes it)."""

    def __init__(self, name: str, values: Any, keys: dict[tuple[str, str], str]) -> None:
        self.name, self.values = str(name), np.asarray(values)
        if self.values.dtype == object:
            kinds = list(dict.fromkeys(type(v) for v in self.values))
        else:  # tolist() gives one Python type for every value
            kinds = [type(self.values[:1].tolist()[0])] if len(self.values) else []
        self.key: dict[type, str] = {}  # a value's type -> its key id
        self.declared: list[tuple[str, str]] = []  # (key id, GraphML type), to declare in the header
        for kind in kinds:
            if kind not in _GRAPHML_TYPES:
                raise DataError(f"node attribute {self.name!r} holds a {kind.__name__} value, which GraphML cannot "
                                "carry (networkx refuses it too): give it strings, integers, floats or booleans")
            xml = _GRAPHML_TYPES[kind]
            if (self.name, xml) not in keys:
                keys[self.name, xml] = f"d{len(keys)}"
                self.declared.append((keys[self.name, xml], xml))
            self.key[kind] = keys[self.name, xml]

    def lines(self, a: int, b: int) -> list[str]:
        """The ``<data>`` line of nodes ``a`` to ``b - 1``, one string each."""
        values = self.values[a:b].tolist()
        if len(self.key) == 1:
            ((kind, key),) = self.key.items()
            if kind is str:
                return [f'      <data key="{key}">{_text(v)}</data>\n' for v in values]
            return [f'      <data key="{key}">{v}</data>\n' for v in values]  # numbers and True/False
        return [f'      <data key="{self.key[type(v)]}">{_text(str(v))}</data>\n' for v in values]


def _row_chunks(indptr: np.ndarray, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges ``[a, b)`` of at most ``size`` entries by ``indptr`` (a row
    with more is a range of its own)."""
    n, a = len(indptr) - 1, 0
    while a < n:
        b = int(np.searchsorted(indptr, indptr[a] + size, side="right")) - 1
        b = min(max(b, a + 1), n)
        yield a, b
        a = b


def _directed_edges(g: sp.csr_matrix, a: int, b: int) -> tuple[np.ndarray, ...]:
    """The entries of rows ``a`` to ``b - 1`` in storage order (``to_networkx``'s edge
    order; ``g`` is canonical, :func:`_matrix`)."""
    lo, hi = g.indptr[a], g.indptr[b]
    rows = np.repeat(np.arange(a, b, dtype=np.int64), np.diff(g.indptr[a : b + 1]))
    return rows, g.indices[lo:hi].astype(np.int64), g.data[lo:hi]


def _undirected_edges(g: sp.csr_matrix, gt: sp.csr_matrix, a: int, b: int) -> tuple[np.ndarray, ...]:
    """The pairs ``(i, j)``, ``i <= j``, of the rows ``i`` from ``a`` to ``b - 1``, weight
    max(A_ij, A_ji) over the directions present (``gt`` is the transpose): the rows of
    ``union_max`` over the whole matrix, as ``to_networkx`` takes them."""
    parts = []
    for m in (g, gt):
        lo, hi = m.indptr[a], m.indptr[b]
        rows = np.repeat(np.arange(a, b, dtype=np.int64), np.diff(m.indptr[a : b + 1]))
        cols = m.indices[lo:hi].astype(np.int64)
        upper = cols >= rows
        parts.append((rows[upper], cols[upper], m.data[lo:hi][upper]))
    rows, cols, vals = union_max(*(np.concatenate(p) for p in zip(*parts)), g.shape[0])
    keep = rows <= cols  # the mirrors union_max adds are the lower triangle
    return rows[keep], cols[keep], vals[keep]


def write_graphml(
    graph: sp.spmatrix,
    path: str | os.PathLike,
    dataset: "Dataset | None" = None,
    directed: bool | None = None,
    nodes: str = "items",
    *,
    overwrite: bool = False,
    progress: bool = False,
    chunk_size: int = 65_536,
) -> Path:
    """Write the graph (with node attributes; ``nodes="users"`` for a user graph) as
    GraphML, atomically: the file networkx writes for :func:`to_networkx`'s graph
    (``nx.read_graphml`` reads back the same nodes, attributes with their types, edges,
    weights and directedness), written straight from the sparse matrix.

    An existing file at ``path`` is refused before any work unless ``overwrite``; the
    file is written to a temporary name beside ``path`` and renamed into place once
    complete, so an interrupted write leaves an existing file as it was.

    Nodes, then edges, are written ``chunk_size`` at a time (edges: whole rows, about
    ``chunk_size`` matrix entries), so the memory beyond the matrix and the node
    attribute columns stays that of one chunk: no networkx graph, which took about 2 KB
    per edge (4.4 GB for 2M edges). ``directed`` follows :func:`to_networkx`'s rule. Node
    ids are the indices; attributes are declared with the GraphML type networkx gives
    them (``string``, ``long``, ``double``, ``boolean``); ``weight`` is a ``double``.
    Text is XML-escaped, a carriage return written as ``&#13;`` so that it reads back
    (networkx's file reads it as a newline); characters XML 1.0 cannot carry at all
    (control characters such as ``\\x0b``, with which networkx writes a file no XML
    parser reads) are written as U+FFFD, with a :class:`~graphrec.errors.GraphrecNote`
    counting them. ``progress``: a tqdm bar over nodes and entries, shown once the write
    has taken a second.

    Raises:
        ConfigError: ``path`` exists and ``overwrite`` is False, or ``path`` is a folder.
    """
    path = _checked_output(path, overwrite)
    g = _checked(graph, dataset, nodes)
    if chunk_size < 1:
        raise DataError(f"chunk_size {chunk_size}: write at least one row at a time (1 or more)")
    if directed is None:
        directed = _is_directed(g)
    n = g.shape[0]
    keys: dict[tuple[str, str], str] = {}
    columns = [] if dataset is None else [_NodeColumn(name, col, keys) for name, col in _node_attributes(dataset, nodes).items()]
    weight = f"d{len(keys)}"
    head = [_GRAPHML_HEAD]
    for column in columns:
        for key, xml in column.declared:
            head.append(f'  <key id="{key}" for="node" attr.name="{_attribute(column.name)}" attr.type="{xml}" />\n')
    if g.nnz:
        head.append(f'  <key id="{weight}" for="edge" attr.name="weight" attr.type="double" />\n')
    head.append(f'  <graph edgedefault="{"directed" if directed else "undirected"}">\n')
    replaced: list[tuple[int, str]] = []  # (values, the first) per chunk that held characters XML cannot carry
    with counter(progress, "GraphML", total=n + g.nnz, unit=" entries", unit_scale=True, delay=1.0,
                 leave=False) as bar:  # a bar once the write has taken a second
        with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(_xml_safe("".join(head), columns, 0, 0, replaced))
            for a in range(0, n, chunk_size):
                b = min(a + chunk_size, n)
                if columns:
                    per_node = zip(*(c.lines(a, b) for c in columns))
                    text = "".join([f'    <node id="{i}">\n{"".join(data)}    </node>\n'
                                    for i, data in zip(range(a, b), per_node)])
                else:
                    text = "".join([f'    <node id="{i}" />\n' for i in range(a, b)])
                f.write(_xml_safe(text, columns, a, b, replaced))
                bar.update(b - a)
            gt = None if directed else sp.csr_matrix(g.T)
            by = g.indptr if directed else g.indptr.astype(np.int64) + gt.indptr  # a chunk counts both rows' entries
            for a, b in _row_chunks(by, chunk_size):
                rows, cols, vals = _directed_edges(g, a, b) if directed else _undirected_edges(g, gt, a, b)
                f.write("".join([f'    <edge source="{r}" target="{c}">\n      <data key="{weight}">{w!r}</data>\n'
                                 "    </edge>\n"
                                 for r, c, w in zip(rows.tolist(), cols.tolist(), vals.astype(np.float64).tolist())]))
                bar.update(int(g.indptr[b] - g.indptr[a]))
            f.write("  </graph>\n</graphml>\n")
            _checked_output(path, overwrite)  # created meanwhile by someone else: kept
    if replaced:
        count = sum(r[0] for r in replaced)
        warnings.warn(f"{path}: {count} text value(s) held characters XML 1.0 cannot carry (control characters "
                      f"such as \\x0b): written as U+FFFD (first: {replaced[0][1]})", GraphrecNote, stacklevel=2)
    return path


def _checked_output(path: str | os.PathLike, overwrite: bool, what: str = "the GraphML") -> Path:
    """``path`` as a :class:`~pathlib.Path`, refused (one line) when it is a folder, or an
    existing file and ``overwrite`` is False."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a file: write {what} to a file path")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise ConfigError(f"{path} already exists: pass overwrite=True (CLI: --overwrite) to replace it, "
                          "or choose another path")
    return path


def _xml_safe(text: str, columns: "list[_NodeColumn]", a: int, b: int, replaced: list[tuple[int, str]]) -> str:
    """``text`` (nodes ``a`` to ``b - 1``; ``a == b``: the header) with what XML 1.0
    cannot carry replaced by U+FFFD, the values that held any counted in ``replaced``
    with the first (one scan of the text when there are none: the usual case)."""
    if not _NOT_XML.search(text):
        return text
    if a == b:  # the header: an attribute's name
        bad = [f"the attribute name {c.name!r}" for c in columns if _NOT_XML.search(c.name)]
        replaced.append((len(bad), bad[0]))
    else:
        hits = []  # (node, attribute) of each value with such characters
        for c in columns:
            hits += [(a + i, c.name) for i, v in enumerate(c.values[a:b].tolist()) if _NOT_XML.search(str(v))]
        node, name = min(hits)
        replaced.append((len(hits), f"{name!r} of node {node}"))
    return _NOT_XML.sub("\ufffd", text)


def plot_degree_distribution(graph: sp.spmatrix, path: str | os.PathLike, title: str = "", nodes: str = "items",
                             overwrite: bool = False) -> Path:
    """Log-log plot of the out- and in-degree distributions to a PNG (matplotlib, extra
    ``plot``). A kNN graph has constant out-degree k; its in-degree shows the hubs.
    ``nodes`` (``"items"`` or ``"users"``, a record's ``nodes``) labels the counts. An
    existing file at ``path`` is refused unless ``overwrite`` (one-line ConfigError)."""
    _checked_output(path, overwrite, "the plot")
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
