"""Saving and loading built item graphs with their provenance; stale graphs are refused.

A stored graph is a DIRECTORY (conventionally under ``graphs/``, which git ignores)::

    <path>/graph.npz    the matrix: scipy.sparse.save_npz layout (CSR, float32), so
                        ``scipy.sparse.load_npz`` reads it too; read back here with
                        ``np.load(..., allow_pickle=False)``
    <path>/graph.json   {"format": "graphrec-graph", "version": 1, <GraphRecord fields>}

The record says what the graph was built from and how: the dataset's content
fingerprint (:meth:`graphrec.data.Dataset.fingerprint`, which covers ids, all splits,
features, fields and cold items), the split used ("train"), the cold-start fraction,
seed and number of cold items, the kind of graph and its options (modalities, k,
weighting, symmetrisation, normalisation, pruning), the builder, the build time, the
creation time, n_items, nnz and a SHA-256 checksum of the stored arrays. A USER graph
(``kind="user-cooccur"``, DRAGON's user-user co-occurrence graph) records
``nodes="users"`` and ``n_users``: its matrix is ``n_users x n_users``, and it is
checked against the dataset's users as an item graph is against its items.

Writes are atomic: both files are written into a hidden temporary directory beside
``path``, flushed, and the directory is renamed into place. An existing graph is kept
unless ``overwrite=True``; it is replaced only after the new one is complete, and a
failure at any point leaves the old graph as it was and no temporary files behind.

:func:`load_graph` refuses (one-line :class:`~graphrec.errors.DataError` naming the
field, both values and the fix) a graph

* whose item count or matrix shape differs from the dataset's ``n_items`` (a user
  graph: whose user count differs from ``n_users``);
* built under a different cold-start split than the dataset's (fraction, seed, count);
* built from different data (fingerprint; the dataset's *name* is not compared);
* built from a split other than ``"train"`` (unless ``expect={"split": ...}`` says so);
* whose options differ from ``expect`` (e.g. ``{"k": 10}`` for a graph built with 20);
* whose files do not match each other (shape, nnz, checksum).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import scipy.sparse as sp

from graphrec import __version__
from graphrec._atomic import replace_dir, temporary_dir
from graphrec.errors import ARRAY_FILE_ERRORS, DataError

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.data.dataset import Dataset

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NODE_TYPES",
    "GRAPH_FILE",
    "RECORD_FILE",
    "GraphRecord",
    "save_graph",
    "load_graph",
    "read_record",
    "check_record",
    "GraphMismatch",
    "graph_checksum",
    "canonical_graph",
    "used_graph",
    "graph_change",
    "rebuild_as_recorded",
    "check_used_graph",
    "source_dataset",
    "graph_dataset",
]

FORMAT_NAME = "graphrec-graph"
#: what a graph's nodes are (``GraphRecord.nodes``)
NODE_TYPES = ("items", "users")
FORMAT_VERSION = 1
GRAPH_FILE = "graph.npz"
RECORD_FILE = "graph.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class GraphRecord:
    """Provenance of a stored graph (one JSON object; see the module doc).

    Attributes:
        kind: ``"knn"``, ``"cooccur"``, ``"fused"``, ... (what built it); ``"model"`` for a
            graph a trained run propagates over (:func:`graphrec.train.export_item_graph`).
        dataset_fingerprint: ``Dataset.fingerprint()`` of the data it was built from.
        dataset_name: the dataset's name (informative; not compared on load).
        n_items: number of items (the matrix of an item graph is ``n_items x n_items``).
        nodes: ``"items"`` (an item graph) or ``"users"`` (a user graph, e.g.
            ``"user-cooccur"``: the matrix is ``n_users x n_users``).
        n_users: number of users; recorded for user graphs (None for item graphs).
        split: the interactions it was built from; ``"train"`` for every graph that a
            model may use (content-only graphs record ``"train"`` as well: they read no
            interactions at all).
        cold_start_fraction, cold_start_seed, cold_start_protocol: from
            ``dataset.meta["cold_start"]``; None without a cold-start split (a record
            written before protocols existed has ``"hidden"``, the only one then).
        n_cold_items: ``len(dataset.cold_items)`` (0 without a cold-start split).
        modalities: feature modalities used (empty for interaction-only graphs).
        k: neighbours kept per row (kNN k, co-interaction top_k); None when unpruned.
        weighting: edge weights, e.g. ``"cosine"``, ``"count"``, ``"count/max"``.
        symmetric: whether the stored matrix was symmetrised.
        normalization: normalisation applied before storing (``"none"``, ``"sym"``,
            ``"row"``; ``"as-propagated"`` for a graph exported from a trained run: the
            operator as the model applies it, its normalisation included).
        pruning: other pruning options, e.g. ``{"min_count": 2}``.
        options: any further builder options (e.g. ``{"include_self": False}``).
        builder: ``"graphrec <version>"``.
        build_seconds: wall-clock seconds the build took (None if not measured).
        created: ISO-8601 UTC time the record was made.
        nnz: stored entries (set by :func:`save_graph`).
        checksum: SHA-256 of the stored arrays (set by :func:`save_graph`).
        content_fingerprint: for a graph built from item content alone (a kNN graph):
            ``Dataset.content_fingerprint(modalities)``, the item ids and those features.
            Such a graph is the same for every split of that content, so it fits any of
            them (a cold-start split included): :func:`load_graph` compares this instead
            of ``dataset_fingerprint`` and the cold-start fields. None for graphs that read
            interactions, and for kNN graphs stored before it was recorded (those stay
            bound to their dataset's split).
    """

    kind: str
    dataset_fingerprint: str
    dataset_name: str
    n_items: int
    split: str = "train"
    cold_start_fraction: float | None = None
    cold_start_seed: int | None = None
    cold_start_protocol: str | None = None
    n_cold_items: int = 0
    modalities: list[str] = field(default_factory=list)
    k: int | None = None
    weighting: str | None = None
    symmetric: bool = False
    normalization: str = "none"
    pruning: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    builder: str = f"graphrec {__version__}"
    build_seconds: float | None = None
    created: str = field(default_factory=_now)
    nnz: int | None = None
    checksum: str | None = None
    nodes: str = "items"
    n_users: int | None = None
    content_fingerprint: str | None = None

    def __post_init__(self) -> None:
        self.modalities = [str(m) for m in self.modalities]
        self.pruning = dict(self.pruning)
        self.options = dict(self.options)
        if self.nodes not in NODE_TYPES:
            raise DataError(f"graph record field 'nodes' is {self.nodes!r}, not one of {', '.join(NODE_TYPES)}: "
                            "rebuild the graph with `graphrec build-graph`")
        if self.nodes == "users" and (isinstance(self.n_users, bool) or not isinstance(self.n_users, int)
                                      or self.n_users < 0):
            raise DataError(f"graph record of a user graph has n_users={self.n_users!r}, not a count: "
                            "rebuild the graph with `graphrec build-graph`")

    @property
    def n_nodes(self) -> int:
        """Rows (and columns) of the matrix: ``n_users`` for a user graph, else ``n_items``."""
        return int(self.n_users) if self.nodes == "users" else self.n_items  # type: ignore[arg-type]

    @classmethod
    def for_dataset(cls, dataset: "Dataset", *, kind: str, split: str = "train", **fields: Any) -> "GraphRecord":
        """A record for a graph built from ``dataset`` (fingerprint, name, items and
        cold-start fields filled in from it); ``fields`` sets the other attributes."""
        fraction, seed, protocol, n_cold = _dataset_cold_start(dataset)
        if fields.get("nodes") == "users":
            fields.setdefault("n_users", int(dataset.n_users))
        return cls(
            kind=kind,
            dataset_fingerprint=dataset.fingerprint(),
            dataset_name=dataset.name,
            n_items=int(dataset.n_items),
            split=split,
            cold_start_fraction=fraction,
            cold_start_seed=seed,
            cold_start_protocol=protocol,
            n_cold_items=n_cold,
            **fields,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GraphRecord":
        """Inverse of :meth:`to_dict`; unknown or missing required fields are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DataError(
                f"graph record has unknown field {unknown[0]!r}: it was written by another graphrec "
                "version; rebuild the graph with `graphrec build-graph`"
            )
        required = ("kind", "dataset_fingerprint", "dataset_name", "n_items")
        missing = [n for n in required if n not in data]
        if missing:
            raise DataError(
                f"graph record lacks the field {missing[0]!r}: rebuild the graph with `graphrec build-graph`"
            )
        for name in ("kind", "dataset_fingerprint", "dataset_name", "split"):
            if name in data and not isinstance(data[name], str):
                raise DataError(f"graph record field {name!r} is {data[name]!r}, not a string: rebuild the graph")
        n = data["n_items"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"graph record field 'n_items' is {n!r}, not a count: rebuild the graph")
        return cls(**dict(data))

    def get(self, key: str) -> Any:
        """A provenance value by name: a field, else a ``pruning`` or ``options`` key
        (None when absent)."""
        if key in {f.name for f in dataclasses.fields(self)}:
            return getattr(self, key)
        if key in self.pruning:
            return self.pruning[key]
        return self.options.get(key)

    def names(self) -> set[str]:
        """The names :meth:`get` answers: the record's fields and this graph's ``pruning``
        and ``options`` keys (any other name is None)."""
        return {f.name for f in dataclasses.fields(self)} | set(self.pruning) | set(self.options)

    def mismatches(self, expect: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
        """``[(key, recorded, expected), ...]`` for every ``expect`` entry that differs
        (numbers compare by value, ``modalities`` as a set, tuples as lists)."""
        out = []
        for key, want in expect.items():
            have = self.get(key)
            if not _same(key, have, want):
                out.append((key, have, want))
        return out


# ---------------------------------------------------------------------------- helpers
def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _same(key: str, have: Any, want: Any) -> bool:
    have, want = _jsonable(have), _jsonable(want)
    if key == "modalities" and isinstance(have, list) and isinstance(want, list):
        return sorted(map(str, have)) == sorted(map(str, want))
    if isinstance(have, bool) or isinstance(want, bool):
        return isinstance(have, bool) and isinstance(want, bool) and have == want
    if isinstance(have, (int, float)) and isinstance(want, (int, float)):
        return float(have) == float(want)
    return bool(have == want)


def _dataset_cold_start(dataset: "Dataset") -> tuple[float | None, int | None, str | None, int]:
    """(fraction, seed, protocol, number of cold items); (None, None, None, 0) without
    cold items (a ``meta["cold_start"]`` left over from before a re-split does not count)."""
    if dataset.cold_items is None:
        return None, None, None, 0
    info = dataset.meta.get("cold_start") if isinstance(dataset.meta, Mapping) else None
    fraction = seed = protocol = None
    if isinstance(info, Mapping):
        fraction = None if info.get("fraction") is None else float(info["fraction"])
        seed = None if info.get("seed") is None else int(info["seed"])
        protocol = str(info.get("protocol") or "hidden")
    return fraction, seed, protocol, int(len(dataset.cold_items))


def _record_cold_start(record: "GraphRecord") -> tuple[float | None, int | None, str | None, int]:
    """A record's cold-start fields as :func:`_dataset_cold_start` gives them."""
    protocol = record.cold_start_protocol
    if protocol is None and record.cold_start_fraction is not None:
        protocol = "hidden"  # written before protocols existed
    return record.cold_start_fraction, record.cold_start_seed, protocol, record.n_cold_items


def _describe_cold(fraction: float | None, seed: int | None, protocol: str | None, n_cold: int) -> str:
    if fraction is None and n_cold == 0:
        return "no cold-start split"
    return f"cold-start fraction {fraction} seed {seed} protocol {protocol} ({n_cold} cold items)"


# build-graph options are named like the recipe keys (graphs/README.md); the
# co-interaction graph's pruning has its own names there
_FLAG_NAMES = {
    ("cooccur", "k"): "cooccur_top_k",
    ("cooccur", "min_count"): "cooccur_min_count",
    ("user-cooccur", "k"): "cooccur_top_k",
    ("user-cooccur", "min_count"): "cooccur_min_count",
}
# the build-graph options that shape each kind of graph (what _rebuild prints): a kNN
# graph's weights also follow where the search ran and torch's CPU thread count (the order
# of its float sums), so a rebuild that gives the same checksum names both
_KIND_FLAGS = {
    "knn": ("modalities", "k", "weighting", "include_self", "backend", "symmetric", "normalization", "device",
            "threads", "nproc"),
    "cooccur": ("cooccur_top_k", "cooccur_min_count", "symmetric", "normalization"),
    "user-cooccur": ("cooccur_top_k", "cooccur_min_count", "symmetric", "normalization"),
}
_COLD_FLAGS = ("cold_start", "seed", "cold_protocol")


def _flag(name: str, value: Any) -> str:
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    return f"--{flag} {shlex.quote(str(value))}"


def _recorded_flags(record: GraphRecord) -> dict[str, Any]:
    """The build-graph options (flag names) that built the graph ``record`` describes."""
    opts: dict[str, Any] = {
        "modalities": list(record.modalities) or None,
        "k": record.k,
        "weighting": record.weighting,
        "include_self": record.options.get("include_self"),
        "backend": record.options.get("backend"),
        # None (left out) in records from before it was kept, but a faiss search ran on the CPU
        "device": record.options.get("device") or ("cpu" if str(record.options.get("backend_used", "")).startswith(
            "faiss") else None),
        "threads": record.options.get("threads"),
        "nproc": record.options.get("nproc"),  # recorded for a build in several processes only
        "cooccur_top_k": record.k,
        "cooccur_min_count": record.pruning.get("min_count"),
        "symmetric": record.symmetric,
        "normalization": record.normalization,
    }
    opts = {k: v for k, v in opts.items() if k in _KIND_FLAGS.get(record.kind, ())}
    fraction, seed, protocol, _ = _record_cold_start(record)
    opts.update(cold_start=fraction or 0, seed=seed, cold_protocol=protocol)
    return opts


def _stores_split(folder: str | os.PathLike) -> bool:
    """Whether the dataset folder ``folder`` holds its own cold-start split (a dataset saved
    after ``cold_start()``: ``cold_items`` in its ``dataset.json``): a graph built from it
    records that split, and a rebuild from it must not ask build-graph to draw it again."""
    try:
        header = json.loads((Path(folder) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and bool(header.get("cold_items"))


def _rebuild(path: Path | str, record: GraphRecord, data: str | None = None, fresh: bool = False, **changes: Any) -> str:
    """The fix: a build-graph command line that rebuilds this graph (its data, kind and
    recorded options, with ``changes`` applied) into ``path``; for a graph exported from
    a trained model, the export command. ``data``: the dataset folder to build from (the
    one the caller's dataset was loaded from) instead of the recorded source. ``changes``
    are build-graph options or record keys (``k``, ``min_count``); ``cold_start=None``
    means no cold-start split. ``fresh``: the graph at ``path`` is right for its own data
    or split: the command builds a new one into ``NEW_DIR`` instead of overwriting it."""
    path = Path(path)
    if record.kind == "model":
        run = record.options.get("run", "RUN")
        view = record.options.get("view")
        view = f" --view {view}" if view is not None else ""
        return f"export it again from a run on this data with `graphrec export-graph {run}{view} --out {path} --overwrite`"
    kind = str(changes.get("kind", record.kind))
    opts = _recorded_flags(record)
    for key, value in changes.items():
        opts[_FLAG_NAMES.get((kind, key), key)] = value
    if not opts.get("cold_start"):
        opts.update(cold_start=0, seed=None, cold_protocol=None)
    source = record.options.get("source") or {}
    recipe = record.options.get("recipe")
    if data is not None:
        where = f"--data {shlex.quote(str(data))}"
    elif "data" in source:
        where = f"--data {shlex.quote(str(source['data']))}"
        if "cold_start" not in changes and _stores_split(source["data"]):
            opts.update(cold_start=None, seed=None, cold_protocol=None)  # the folder holds the recorded split
    elif recipe:  # a recipe's own options are overridden by the flags below
        where = f"--recipe {shlex.quote(str(recipe))}"
    else:  # a graph stored before its source was recorded
        where = "--data DATASET_DIR"
    if where.startswith("--data") and not opts["cold_start"]:
        opts["cold_start"] = None  # build-graph's default; a recipe may set another
    flags = [_flag(name, opts[name]) for name in (*_KIND_FLAGS.get(kind, ()), *_COLD_FLAGS) if opts.get(name) is not None]
    if fresh:  # another dataset's graph: where and on how many threads it runs is the user's choice
        flags = [f for f in flags if not f.startswith(("--device ", "--threads ", "--nproc "))]
        command = " ".join(["graphrec build-graph", where, f"--kind {kind}", *flags, "--out NEW_DIR"])
        return f"build a graph for this data with `{command}` and pass NEW_DIR/{kind} (keep {path} for the data it fits)"
    # build-graph writes OUT/KIND: the graph's own folder when it is named after its kind;
    # another name is rebuilt beside it and moved over it (OUT itself would get OUT/KIND inside)
    if path.name == kind:
        command = " ".join(["graphrec build-graph", where, f"--kind {kind}", *flags,
                            f"--out {shlex.quote(str(path.parent))}", "--overwrite"])
        return f"rebuild it with `{command}`"
    beside = path.with_name(f"{path.name}-rebuilt")
    command = " ".join(["graphrec build-graph", where, f"--kind {kind}", *flags, f"--out {shlex.quote(str(beside))}"])
    return f"rebuild it with `{command}`, then replace {path} with {beside / kind}"


def graph_checksum(graph: sp.csr_matrix) -> str:
    """SHA-256 over shape, indptr, indices and data (dtypes included) of a CSR matrix."""
    return _arrays_checksum(graph.shape, graph.indptr, graph.indices, graph.data)


def _arrays_checksum(shape: tuple[int, ...], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> str:
    """:func:`graph_checksum` of the CSR arrays as they are (a file's, before scipy may
    convert their index dtype)."""
    h = hashlib.sha256()
    h.update(f"csr:{shape[0]}x{shape[1]}".encode())
    for name, arr in (("indptr", indptr), ("indices", indices), ("data", data)):
        arr = np.ascontiguousarray(arr)
        h.update(f"{name}:{arr.dtype.str}:{arr.size}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def _index_dtype(shape: tuple[int, ...], nnz: int) -> type[np.signedinteger]:
    """The index dtype of a canonical graph: int32 when every row and column index and the
    entry count fit in it (every graph graphrec builds), int64 beyond.

    Fixed here rather than left to scipy, which keeps the int64 indices of a
    ``scipy.sparse.csr_array`` (networkx's ``to_scipy_sparse_array``) but reads them
    back from a file as int32: the checksum covers the dtype, so the stored form and the
    loaded one must be the same."""
    return np.int32 if max(*shape, nnz) <= np.iinfo(np.int32).max else np.int64


def _with_index_dtype(graph: sp.csr_matrix) -> sp.csr_matrix:
    """``graph`` with its ``indptr`` and ``indices`` in :func:`_index_dtype` (in place)."""
    idx = _index_dtype(graph.shape, graph.nnz)
    graph.indptr = graph.indptr.astype(idx, copy=False)
    graph.indices = graph.indices.astype(idx, copy=False)
    return graph


def canonical_graph(graph: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """``graph`` as a stored graph holds it: a float32 CSR copy, duplicates summed, entries of
    weight 0 dropped (a graph's edges are its nonzero entries), column indices sorted, index
    arrays in :func:`_index_dtype` (int32 unless the graph is too large for it, whatever
    dtype ``graph``'s indices had: a ``csr_array`` may hold int64).

    :func:`save_graph` stores this form and :func:`graphrec.graphs.build_item_graph` returns
    it, so a model trained on an in-run graph and one trained on the same graph stored and
    loaded see the same edges (a kNN list may hold a cosine of exactly 0, an explicit entry
    of :func:`graphrec.graphs.knn.knn_graph`'s matrix, which is no edge here).

    Raises:
        DataError: ``graph`` is not a square scipy sparse matrix, or holds NaN or inf.
    """
    if not sp.issparse(graph):
        raise DataError(f"a graph must be a scipy sparse matrix, got {type(graph).__name__}")
    g = sp.csr_matrix(graph, dtype=np.float32, copy=True)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise DataError(f"a graph must be square (n_items x n_items, or n_users x n_users), got shape {g.shape}")
    g.sum_duplicates()
    g.eliminate_zeros()
    g.sort_indices()
    if not np.isfinite(g.data).all():
        raise DataError("the graph holds NaN or inf weights: fix the builder before saving it")
    return _with_index_dtype(g)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_graph_dir(path: Path) -> bool:
    return path.is_dir() and (path / RECORD_FILE).is_file()


# ---------------------------------------------------------------------------- save
def save_graph(
    path: str | os.PathLike,
    graph: sp.spmatrix | sp.sparray,
    record: GraphRecord,
    *,
    overwrite: bool = False,
    compressed: bool = False,
) -> GraphRecord:
    """Store ``graph`` with its provenance ``record`` in the directory ``path``.

    The matrix is stored as canonical float32 CSR (duplicates summed, zeros dropped,
    sorted indices); ``record.nnz`` and ``record.checksum`` are set from it. Returns
    the record as written.

    Raises:
        DataError: the graph is not square, its size differs from ``record.n_items``,
            ``path`` exists and ``overwrite`` is False, or ``path`` exists and is not a
            graph directory (never replaced, even with ``overwrite``).
    """
    path = Path(path)
    g = canonical_graph(graph)
    if g.shape[0] != record.n_nodes:
        what = f"n_users={record.n_users}" if record.nodes == "users" else f"n_items={record.n_items}"
        raise DataError(
            f"the graph is {g.shape[0]} x {g.shape[1]} but its record says {what}: "
            "build the graph and its record from the same dataset"
        )
    if path.exists() or path.is_symlink():
        if not _is_graph_dir(path):
            raise DataError(
                f"{path} exists and is not a graphrec graph directory (no {RECORD_FILE}): "
                "choose another path; it will not be overwritten"
            )
        if not overwrite:
            raise DataError(
                f"a graph already exists at {path}: pass overwrite=True (CLI: --overwrite) to "
                "replace it, or choose another path"
            )
    record = dataclasses.replace(record, nnz=int(g.nnz), checksum=graph_checksum(g))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_dir(path)  # after removing the temporaries of killed writes
    try:
        sp.save_npz(tmp / GRAPH_FILE, g, compressed=compressed)
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **record.to_dict()}
        (tmp / RECORD_FILE).write_text(json.dumps(header, indent=2) + "\n")
        for name in (GRAPH_FILE, RECORD_FILE):
            _fsync_file(tmp / name)
        replace_dir(tmp, path)  # the previous graph is put back if this fails
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record


# ---------------------------------------------------------------------------- load
class GraphMismatch(DataError):
    """A stored graph that does not fit the data or options asked for. The message is
    ``"{problem}: {fix}"``; ``problem`` alone serves a caller whose fix is another one
    (``graphrec inspect`` skipping a sibling graph, or naming ``--compare``)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem, self.fix = problem, fix


def _rebuild_source(dataset: "Dataset | None") -> tuple[str | None, dict[str, Any]]:
    """Where a rebuild should read from, when the caller's dataset was read from a folder
    (:attr:`Dataset.source`): that folder, with the cold-start flags that reproduce the
    dataset's split (none when the folder stores it); ``(None, {})`` otherwise."""
    source = (dataset.source or {}) if dataset is not None else {}
    if dataset is None or "path" not in source:
        return None, {}
    fraction, seed, protocol, _ = _dataset_cold_start(dataset)
    if source.get("cold") or fraction is None:
        return str(source["path"]), {"cold_start": None}
    return str(source["path"]), {"cold_start": fraction, "seed": seed, "cold_protocol": protocol}


def check_record(
    record: GraphRecord,
    *,
    expect: Mapping[str, Any] | None = None,
    dataset: "Dataset | None" = None,
    path: str | os.PathLike = "<graph>",
) -> None:
    """Raise :class:`GraphMismatch` (a :class:`DataError`) when ``record`` does not fit
    ``dataset`` or ``expect`` (the rules of :func:`load_graph`, without reading the matrix)."""
    where = f"graph {path}"
    data, cold = _rebuild_source(dataset)

    def other_data() -> str:  # the fix when the graph is of other data: a graph for this data
        if data is not None:
            return _rebuild(path, record, data, fresh=True, **cold)
        return f"{_rebuild(path, record, **cold)}, with --data naming the dataset you use"

    if dataset is not None:
        if record.n_items != dataset.n_items:
            raise GraphMismatch(
                f"{where}: n_items is {record.n_items} but dataset {dataset.name!r} has {dataset.n_items} items",
                other_data(),
            )
        if record.nodes == "users" and record.n_users != dataset.n_users:
            raise GraphMismatch(
                f"{where}: n_users is {record.n_users} but dataset {dataset.name!r} has {dataset.n_users} users",
                other_data(),
            )
        if record.content_fingerprint is not None:  # item content only: any split of it fits
            cold = {"cold_start": None}  # a rebuild needs no split
            if record.content_fingerprint != dataset.content_fingerprint(record.modalities):
                mods = ", ".join(record.modalities) or "no"
                raise GraphMismatch(
                    f"{where}: built from other item content ({mods} features of {record.dataset_name!r}) than "
                    f"dataset {dataset.name!r} has (its item ids or those features differ)",
                    other_data(),
                )
        else:
            have_cold = _record_cold_start(record)
            want_cold = _dataset_cold_start(dataset)
            if have_cold != want_cold:
                raise GraphMismatch(
                    f"{where}: cold_start differs: the graph was built with {_describe_cold(*have_cold)} but "
                    f"dataset {dataset.name!r} has {_describe_cold(*want_cold)}",
                    _rebuild(path, record, data, fresh=data is not None, **(cold if data is not None else dict(
                        cold_start=want_cold[0], seed=want_cold[1], cold_protocol=want_cold[2]))),
                )
            fp = dataset.fingerprint()
            if record.dataset_fingerprint != fp:
                raise GraphMismatch(
                    f"{where}: dataset_fingerprint is {record.dataset_fingerprint[:12]} (built from "
                    f"{record.dataset_name!r}) but dataset {dataset.name!r} has {fp[:12]} (the data differ)",
                    other_data(),
                )
    wanted: dict[str, Any] = {"split": "train"}
    wanted.update(expect or {})
    for key, have, want in record.mismatches(wanted):
        if key not in record.names():
            known = sorted(record.names())
            raise GraphMismatch(
                f"{where}: its record has no {key!r} but {_jsonable(want)!r} was requested "
                f"(a record holds: {', '.join(known)})",
                f"request only names the record holds (or rebuild the graph with an option that records {key!r})",
            )
        raise GraphMismatch(
            f"{where}: {key} is {_jsonable(have)!r} but {_jsonable(want)!r} was requested",
            _rebuild(path, record, data, **{**cold, key: _jsonable(want)}),
        )


def _refuse_other_folder(path: Path) -> None:
    """A training run folder or a dataset folder given where a graph is expected: a
    one-line :class:`DataError` with the command that makes a graph of it (the not-found
    message would suggest building a graph into that folder)."""
    shown = shlex.quote(str(path))
    if (path / "record.json").is_file():  # graphrec.train.record.RECORD (importing it imports torch)
        raise DataError(
            f"{path} is a training run folder, not a graph: export the graph its model propagates over "
            f"with `graphrec export-graph {shown} --out DIR` (a model with an item or user graph), then use DIR"
        )
    if (path / "dataset.json").is_file():
        try:
            name = json.loads((path / "dataset.json").read_text(encoding="utf-8"))["name"]
            name = name if isinstance(name, str) and name and "/" not in name else "NAME"
        except (OSError, ValueError, KeyError, TypeError):
            name = "NAME"
        out = shlex.quote(f"graphs/{name}")
        raise DataError(
            f"{path} is a dataset folder, not a graph: build its graphs outside it with "
            f"`graphrec build-graph --data {shown} --out {out}`, then use {out}/knn or {out}/cooccur"
        )


def read_record(path: str | os.PathLike) -> GraphRecord:
    """The provenance record of a graph directory (``graph.json``), without reading the
    matrix or checking it against data (:func:`load_graph` does both)."""
    path = Path(path)
    rec_file, npz_file = path / RECORD_FILE, path / GRAPH_FILE
    if not rec_file.is_file() or not npz_file.is_file():
        if path.is_dir() and not rec_file.is_file() and not npz_file.is_file():
            _refuse_other_folder(path)
        missing = RECORD_FILE if not rec_file.is_file() else GRAPH_FILE
        inside = sorted(p.name for p in path.iterdir() if _is_graph_dir(p)) if path.is_dir() else []
        if inside and missing == RECORD_FILE:  # the folder build-graph wrote KIND/ into
            raise DataError(
                f"no graph at {path} ({missing} not found), but it holds the graph(s) {', '.join(inside)}: "
                f"pass one of them, e.g. {path / inside[0]}"
            )
        kind = path.name if path.name in _KIND_FLAGS else "KIND"
        out = path.parent if kind != "KIND" else path
        note = "" if kind != "KIND" else f" (it writes {path}/KIND)"
        raise DataError(
            f"no graph at {path} ({missing} not found): build it with "
            f"`graphrec build-graph --data DATASET_DIR --kind {kind} --out {shlex.quote(str(out))}`{note}"
        )
    try:
        header = json.loads(rec_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{rec_file}: invalid JSON ({e}): rebuild the graph with `graphrec build-graph`") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        got = (header.get("format"), header.get("version")) if isinstance(header, dict) else None
        raise DataError(
            f"{rec_file}: format {got!r} is not {FORMAT_NAME} v{FORMAT_VERSION}: "
            "rebuild the graph with `graphrec build-graph`"
        )
    body = {k: v for k, v in header.items() if k not in ("format", "version")}
    try:
        return GraphRecord.from_dict(body)
    except DataError as e:
        raise DataError(f"{rec_file}: {e}") from None


# ------------------------------------------------------- graphs a trained run used
#: record fields that say nothing about the matrix (left out of what a change names)
_NOT_RECIPE = ("created", "build_seconds", "builder", "checksum", "nnz", "path")


def used_graph(path: str | os.PathLike) -> dict[str, Any]:
    """What a run records of a stored graph it trains with (``graphrec train ... --graph``,
    a CTR run's ``--item-graph DIR``): the graph's ``graph.json`` record (its recipe and
    the ``checksum`` of its arrays) and ``path``, so that loading or resuming the run can
    tell that the graph at ``path`` is still that one (:func:`check_used_graph`). A path
    holding no readable graph gives ``{"path": path}`` alone (no checksum): whatever reads
    the graph next says what is wrong with it."""
    try:
        return dict(read_record(path).to_dict(), path=str(path))
    except (DataError, OSError):
        return {"path": str(path)}


def graph_change(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """``None`` when ``current`` (:func:`used_graph` now) is the graph ``recorded``
    describes (the same checksum), else what changed, a phrase: the checksums and the
    recipe entries that differ, or that no graph is there any more. A ``recorded`` entry
    without a checksum (a record from before runs kept them) is never a change."""
    old = recorded.get("checksum")
    if not old:
        return None
    new = current.get("checksum")
    if not new:
        return "no graph is there any more (moved, deleted or unreadable)"
    if new == old:
        return None
    diffs = [f"{k} {_jsonable(current.get(k))!r}, was {_jsonable(recorded.get(k))!r}"
             for k in sorted(set(recorded) | set(current))
             if k not in _NOT_RECIPE and k != "options" and _jsonable(recorded.get(k)) != _jsonable(current.get(k))]
    # options entry by entry, those both records have (a key one predates is no change)
    old_opts, new_opts = recorded.get("options") or {}, current.get("options") or {}
    diffs += [f"option {k} {_jsonable(new_opts[k])!r}, was {_jsonable(old_opts[k])!r}"
              for k in sorted(set(old_opts) & set(new_opts)) if _jsonable(old_opts[k]) != _jsonable(new_opts[k])]
    shown = "; ".join(diffs[:3]) + (f"; {len(diffs) - 3} more" if len(diffs) > 3 else "")
    return f"checksum {str(new)[:12]}, was {str(old)[:12]}" + (f"; {shown}" if shown else "")


def rebuild_as_recorded(recorded: Mapping[str, Any]) -> str:
    """The fix for a graph that changed since a run used it: the command that builds it
    again from its recorded recipe (``rebuild it with `graphrec build-graph ...```), or
    plain words where the recorded entry cannot be read as a graph record."""
    path = str(recorded.get("path", "GRAPH_DIR"))
    try:
        record = GraphRecord.from_dict({k: v for k, v in recorded.items() if k != "path"})
    except (DataError, TypeError):
        return f"rebuild the graph at {path} as it was"
    return _rebuild(path, record)


def check_used_graph(recorded: Mapping[str, Any], used_by: str, otherwise: str,
                     error: type[Exception] = DataError) -> None:
    """Refuse (one line, ``error``) a stored graph that changed since ``used_by`` (e.g.
    ``"run runs/x"``) trained with it: ``recorded`` is :func:`used_graph` as the run
    recorded it; the message names the graph's path, what changed, the command that
    rebuilds it as it was and ``otherwise`` (the other fix, e.g. ``"train the run
    again"``). Nothing to check for an entry without a checksum."""
    if not recorded.get("checksum"):
        return
    path = str(recorded.get("path"))
    change = graph_change(recorded, used_graph(path))
    if change is not None:
        raise error(f"{used_by} was trained with the graph {path}, which changed since ({change}): "
                    f"{rebuild_as_recorded(recorded)} (its recorded recipe), or {otherwise}")


# ----------------------------------------------------- the dataset a graph was built from
def source_dataset(source: Mapping[str, Any]) -> "Dataset":
    """The dataset a source description names, as a graph record keeps it
    (``record.options["source"]``, written by ``graphrec build-graph``; a recipe's
    ``source:`` resolved): ``{"data": DIR}``, a dataset directory
    (:meth:`~graphrec.data.Dataset.load`), or an importer's ``{"format": ..., "path": ...,
    ...}``, read with :func:`~graphrec.data.formats.read_source` and split as its
    ``split`` (default ``auto``) and ``seed`` say."""
    from graphrec.data import Dataset
    from graphrec.data.formats import read_source
    from graphrec.data.splits import apply_split

    if "data" in source:
        return Dataset.load(source["data"])
    ds = read_source(
        source["format"],
        Path(source["path"]),
        features=source.get("features"),
        name=source.get("name"),
        unseen=source.get("unseen", "error"),
        min_rating=source.get("min_rating"),
        dim=source.get("dim"),
    )
    return apply_split(ds, source.get("split", "auto"), seed=int(source.get("seed", 0)), option="split:")


def graph_dataset(
    graph: "GraphRecord | str | os.PathLike",
    data_path: str | os.PathLike | None = None,
    *,
    option: str = "data_path",
) -> "Dataset":
    """The dataset a stored graph was built from, as the graph saw it: its cold-start
    split included, so that node attributes (``to_networkx``, ``write_graphml``: the
    ``cold`` flag) and statistics (``graph_report(..., cold=ds.cold_items)``) describe the
    graph's own split, as ``graphrec inspect`` does.

    The data is read from the recorded source (:func:`source_dataset`), or from
    ``data_path``, a dataset directory, when given (the data moved). A graph built under a
    cold-start split gets that split drawn again from the recorded fraction, seed and
    protocol, unless the folder holds its split already (a dataset saved after
    ``cold_start()``: used as saved). The result is then checked against the record
    (:func:`check_record`: item count, cold-start split, fingerprint).

    Args:
        graph: a graph directory, or its :class:`GraphRecord` (messages then name the
            graph by its kind and dataset).
        data_path: the dataset directory to read instead of the recorded source.
        option: how messages name ``data_path`` (the CLI: ``--data DIR``).

    Raises:
        DataError: one line: the graph records no source and no ``data_path`` is given,
            the recorded dataset directory is gone (pass ``data_path``), or the dataset
            read is not the graph's (:class:`GraphMismatch`, with the fix).
    """
    from graphrec.data import cold_start

    if isinstance(graph, GraphRecord):
        record, where = graph, f"({graph.kind} graph of {graph.dataset_name!r})"
    else:
        record, where = read_record(graph), str(graph)
    source = {"data": str(data_path)} if data_path is not None else record.options.get("source")
    if not isinstance(source, Mapping) or not source:
        raise DataError(f"graph {where} does not record the dataset it was built from (it was built from a dataset "
                        "in memory, or stored before graphrec recorded its source): pass "
                        f"{option} naming that dataset's folder (Dataset.save writes one)")
    if data_path is None and "data" in source and not (Path(source["data"]) / "dataset.json").is_file():
        raise DataError(
            f"the graph's recorded dataset {source['data']} is not a graphrec dataset directory any more "
            f"(moved or deleted?): pass {option} naming the dataset it was built from"
        )
    ds = source_dataset(source)
    if record.cold_start_fraction and ds.cold_items is None:  # drawn again (build-graph --cold-start)
        _, seed, protocol, _ = _record_cold_start(record)
        ds = cold_start(ds, float(record.cold_start_fraction), int(seed or 0), str(protocol))
    check_record(record, dataset=ds, path=where)
    return ds


def load_graph(
    path: str | os.PathLike,
    *,
    expect: Mapping[str, Any] | None = None,
    dataset: "Dataset | None" = None,
    verify: bool = True,
) -> tuple[sp.csr_matrix, GraphRecord]:
    """Read a graph directory written by :func:`save_graph`, refusing a stale one.

    Args:
        path: the graph directory.
        expect: provenance values the caller needs, e.g. ``{"kind": "knn", "k": 10,
            "modalities": ["image", "text"]}``; keys are :class:`GraphRecord` fields or
            ``pruning`` / ``options`` keys. ``split`` defaults to ``"train"``.
        dataset: the dataset the graph will be used with: item count, cold-start split
            and content fingerprint must match.
        verify: check the SHA-256 checksum of the arrays (one pass over the data).

    Returns:
        ``(graph, record)``: float32 CSR ``n_items x n_items`` (a user graph:
        ``n_users x n_users``) and its provenance.
    """
    path = Path(path)
    record = read_record(path)
    npz_file = path / GRAPH_FILE
    check_record(record, expect=expect, dataset=dataset, path=path)

    try:
        with np.load(npz_file, allow_pickle=False) as z:
            fmt = z["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(x) for x in z["shape"])
            indptr, indices, data = z["indptr"], z["indices"], z["data"]
    except ARRAY_FILE_ERRORS as e:
        raise DataError(f"{npz_file}: unreadable graph file ({e}): {_rebuild(path, record)}") from None
    if fmt != "csr":
        raise DataError(f"{npz_file}: stored as {fmt!r}, not csr: rebuild the graph with `graphrec build-graph`")
    n = record.n_nodes
    if shape != (n, n) or len(indptr) != n + 1:
        what = f"n_users={record.n_users}" if record.nodes == "users" else f"n_items={record.n_items}"
        raise DataError(
            f"{npz_file}: shape is {shape} but {RECORD_FILE} says {what}: "
            f"the files do not belong together; {_rebuild(path, record)}"
        )
    if len(indices) != len(data) or (record.nnz is not None and len(data) != record.nnz):
        raise DataError(
            f"{npz_file}: holds {len(data)} entries but {RECORD_FILE} says nnz={record.nnz}: "
            f"the files do not belong together; {_rebuild(path, record)}"
        )
    if verify and record.checksum is not None:
        # the arrays as stored, which save_graph hashed: a graph saved before canonical_graph
        # fixed the index dtype may hold int64 indices, and loads as int32 like any other
        got = _arrays_checksum(shape, indptr, indices, data)
        if got != record.checksum:
            raise DataError(
                f"{npz_file}: checksum is {got[:12]} but {RECORD_FILE} says {record.checksum[:12]} "
                f"(the matrix was modified): {_rebuild(path, record)}"
            )
    graph = _with_index_dtype(sp.csr_matrix((data, indices, indptr), shape=shape))
    graph.has_sorted_indices = True
    if graph.dtype != np.float32:
        graph = graph.astype(np.float32)
    return graph, record
