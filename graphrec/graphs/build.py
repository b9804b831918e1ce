"""Build the item graphs of a dataset, with their provenance records.

This is the one place that turns a :class:`~graphrec.data.Dataset` plus options into
stored-ready graphs, shared by ``graphrec build-graph`` and the model builders:

* ``kind="knn"``: early-fused content features (:func:`graphrec.graphs.fuse.fuse_features`,
  MM-GEF section 3.1) -> top-k cosine kNN graph (:func:`graphrec.graphs.knn.knn_graph`);
* ``kind="cooccur"``: co-interaction graph of the TRAINING matrix, normalised by its
  maximum (:func:`graphrec.graphs.cooccur.cooccurrence_graph`, MM-GEF eq. 3-4);
* ``kind="user-cooccur"``: the USER-user co-occurrence graph of the TRAINING matrix
  (number of items two users share), raw counts, top-k per user
  (:func:`graphrec.graphs.cooccur.user_cooccurrence_graph`, DRAGON's user graph); its
  record says ``nodes="users"`` and ``n_users``.

Each result carries a :class:`~graphrec.graphs.store.GraphRecord` (dataset fingerprint,
cold-start split, options, build time) so a stored graph is never reused for other data.

Within :func:`graph_memo`, :func:`build_item_graph` returns the graph a
:class:`GraphMemo` holds for the same dataset (fingerprint) and :class:`GraphSpec`
instead of building it, and adds those it builds: a training run keeps the graphs its
model was built over and a loaded run is built over the same ones
(:mod:`graphrec.train.run`), not over a kNN search made again (items^2 work, and float
sums that follow the thread count).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from graphrec._checks import is_int
from graphrec._device import resolve_device
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.graphs.cooccur import cooccurrence_graph, user_cooccurrence_graph
from graphrec.graphs.fuse import FusedFeatures, check_fusable, fuse_features
from graphrec.graphs.knn import BACKENDS, knn_graph, resolve_backend
from graphrec.graphs.normalize import NORMALIZATIONS, nonpositive_rows, normalize_adjacency
from graphrec.graphs.store import GraphRecord, canonical_graph

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.data import Dataset
    from graphrec.distributed import Shard

__all__ = ["GRAPH_KINDS", "GraphSpec", "BuiltGraph", "GraphMemo", "MemoEntry", "build_item_graph", "build_progress",
           "check_graph_inputs", "graph_memo", "parse_modalities"]

GRAPH_KINDS = ("knn", "cooccur", "user-cooccur")

#: whether graphs built without an explicit ``progress`` show progress bars
_PROGRESS: ContextVar[bool] = ContextVar("graphrec_graph_progress", default=False)


@contextlib.contextmanager
def build_progress(on: bool) -> Iterator[None]:
    """Within the block, :func:`build_item_graph` calls that do not say ``progress``
    show progress bars when ``on``: how a model builder's graphs follow the training's
    progress setting (:func:`graphrec.train.registry.build_model`) without the builders
    passing it on."""
    token = _PROGRESS.set(bool(on))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@dataclass(frozen=True)
class GraphSpec:
    """Options of one item graph.

    Attributes:
        kind: ``knn`` (content), ``cooccur`` (training co-interactions of items) or
            ``user-cooccur`` (users sharing training items: a user graph).
        k: kNN neighbours per item.
        modalities: modalities fused for the kNN graph (None: all the dataset has).
        weighting: kNN edge values, ``cosine`` or ``binary``.
        symmetric: symmetrise (max of both directions).
        include_self: keep each item in its own kNN list (LATTICE reference parity).
        cooccur_top_k: keep the largest co-interaction counts per row (per item, or per
            user for ``user-cooccur``; None: all).
        cooccur_min_count: drop pairs with fewer co-interactions.
        normalization: applied before storing: ``none`` (default; models normalise
            after merging graphs), ``sym`` or ``row``.
        backend: kNN search backend (``auto``, ``torch``, ``faiss``, ``faiss-hnsw``).
    """

    kind: str
    k: int = 10
    modalities: tuple[str, ...] | None = None
    weighting: str = "cosine"
    symmetric: bool = False
    include_self: bool = False
    cooccur_top_k: int | None = None
    cooccur_min_count: int = 1
    normalization: str = "none"
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in GRAPH_KINDS:
            raise ConfigError(f"graph kind {self.kind!r} is not one of {', '.join(GRAPH_KINDS)}")
        if self.weighting not in ("cosine", "binary"):
            raise ConfigError(f"weighting {self.weighting!r} is not one of cosine, binary")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
        if not is_int(self.k) or self.k < 1:
            raise ConfigError(f"k must be an integer >= 1, got {self.k!r}")
        if self.cooccur_top_k is not None and (not is_int(self.cooccur_top_k) or self.cooccur_top_k < 1):
            raise ConfigError(f"cooccur_top_k must be an integer >= 1 (None: keep all), got {self.cooccur_top_k!r}")
        if not is_int(self.cooccur_min_count) or self.cooccur_min_count < 1:
            raise ConfigError(f"cooccur_min_count must be an integer >= 1, got {self.cooccur_min_count!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not a kNN search backend: use one of {', '.join(BACKENDS)}")


@dataclass
class BuiltGraph:
    """A built graph, its provenance, and what the build noticed."""

    graph: sp.csr_matrix
    record: GraphRecord
    seconds: float
    fused: FusedFeatures | None = None
    notes: list[str] = field(default_factory=list)
    #: rows that held edges and were left empty by the normalisation (weights summing to <= 0)
    emptied_rows: int = 0


@dataclass(frozen=True)
class MemoEntry:
    """A graph a :class:`GraphMemo` holds: as :func:`build_item_graph` returned it (its
    ``graph`` and ``record``) and the rows its normalisation emptied."""

    graph: sp.csr_matrix
    record: GraphRecord
    emptied_rows: int = 0


class GraphMemo:
    """Graphs by what they are of: a dataset (its fingerprint) and a :class:`GraphSpec`
    (:meth:`key`). Within :func:`graph_memo`, :func:`build_item_graph` asks :meth:`get`
    first and gives what it builds to :meth:`put`; this class keeps copies in memory (so a
    builder that changes its graph in place changes no entry), a subclass may read them
    from disk (:class:`graphrec.train.run.RunGraphs`)."""

    def __init__(self) -> None:
        self.entries: dict[str, MemoEntry] = {}

    @staticmethod
    def key(dataset: "Dataset", spec: GraphSpec) -> str:
        """The canonical JSON of ``{"dataset": fingerprint, "spec": spec's fields}``."""
        return json.dumps({"dataset": dataset.fingerprint(), "spec": dataclasses.asdict(spec)}, sort_keys=True)

    def get(self, dataset: "Dataset", spec: GraphSpec) -> MemoEntry | None:
        entry = self.entries.get(self.key(dataset, spec))
        return None if entry is None else dataclasses.replace(entry, graph=entry.graph.copy())

    def put(self, dataset: "Dataset", spec: GraphSpec, built: BuiltGraph) -> None:
        self.entries[self.key(dataset, spec)] = MemoEntry(built.graph.copy(), built.record, built.emptied_rows)


#: the memo :func:`build_item_graph` consults and fills (:func:`graph_memo`)
_MEMO: ContextVar[GraphMemo | None] = ContextVar("graphrec_graph_memo", default=None)


@contextlib.contextmanager
def graph_memo(memo: GraphMemo | None) -> Iterator[GraphMemo | None]:
    """Within the block, :func:`build_item_graph` takes the graphs ``memo`` holds and adds
    the ones it builds (None: no memo, every graph built)."""
    token = _MEMO.set(memo)
    try:
        yield memo
    finally:
        _MEMO.reset(token)


def check_graph_inputs(
    spec: GraphSpec, name: str, features: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """What :func:`build_item_graph` refuses of a dataset named ``name`` with item
    ``features`` (``{modality: array}``; shapes are read, not values: memory-mapped arrays
    do) before building ``spec``: a kNN graph needs item features that can be fused
    (:func:`graphrec.graphs.fuse.check_fusable`: one dimension and, with ``sources``, the
    records of ``dataset.meta["features"]``, one model). ``graphrec build-graph --nproc N``
    checks this once, before its ranks start.

    Raises:
        DataError: no item features, or features that cannot be fused.
        ConfigError: an unknown or repeated modality in ``spec.modalities``.
    """
    if spec.kind != "knn":
        return
    if not features:
        raise DataError(
            f"dataset {name!r} has no item features: a kNN graph needs them "
            "(embed images and texts with graphrec features, or prepare with --feature MODALITY=FILE where the "
            "format takes one; or build --kind cooccur)"
        )
    check_fusable(features, spec.modalities, sources=sources)


def build_item_graph(
    dataset: "Dataset",
    spec: GraphSpec,
    *,
    device: str = "cpu",
    progress: bool | None = None,
    shard: "Shard | None" = None,
) -> BuiltGraph:
    """Build ``spec`` for ``dataset`` (see module doc; ``user-cooccur`` builds a user
    graph, n_users x n_users, despite this function's name); with a ``shard`` (in a
    torch.distributed group) the ranks split the kNN rows or the co-interaction blocks
    and every rank returns the one graph (:mod:`graphrec.distributed`). ``progress``:
    progress bars of the search; None: as the enclosing :func:`build_progress` says
    (off outside one)."""
    if not isinstance(spec, GraphSpec):  # build_item_graph(ds, "knn")
        raise ConfigError(f"spec must be a GraphSpec, got {spec!r}: e.g. GraphSpec(kind='knn', k=10)")
    t0 = time.perf_counter()
    if progress is None:
        progress = _PROGRESS.get()
    memo = _MEMO.get()
    if memo is not None:
        kept = memo.get(dataset, spec)
        if kept is not None:  # the features fused again (cheap, and what MM-GEF's builder reads), no search
            fused = None
            if spec.kind == "knn":
                sources = dataset.meta.get("features")
                fused = fuse_features(dataset.item_features, spec.modalities, sources=sources)
            return BuiltGraph(graph=kept.graph, record=kept.record, seconds=time.perf_counter() - t0, fused=fused,
                              notes=[fused.describe(dataset.item_ids)] if fused is not None else [],
                              emptied_rows=kept.emptied_rows)
    notes: list[str] = []
    fused = None
    lost = 0
    if spec.kind == "knn":
        sources = dataset.meta.get("features")
        check_graph_inputs(spec, dataset.name, dataset.item_features, sources)
        fused = fuse_features(dataset.item_features, spec.modalities, sources=sources)
        notes.append(fused.describe(dataset.item_ids))
        others = dataset.n_items - (0 if spec.include_self else 1)
        if spec.k > others:  # the search keeps every candidate: say so once, not silently
            warnings.warn(f"k {spec.k} is more than the {others} items each item can take as neighbours: every item "
                          f"keeps all of them", GraphrecNote, stacklevel=2)
        graph = knn_graph(
            fused.x,
            spec.k,
            include_self=spec.include_self,
            weighted=spec.weighting == "cosine",
            symmetric=spec.symmetric,
            device=device,
            backend=spec.backend,
            progress=progress,
            shard=shard,
        )
        import torch  # (imported by the kNN search already)

        used = resolve_backend(spec.backend, device)
        record_fields = dict(
            modalities=list(fused.modalities),
            k=spec.k,
            weighting=spec.weighting,
            # backend: as asked (a rebuild asks the same); backend_used: what "auto" chose here;
            # device: where the search ran (faiss: the CPU) and threads: torch's CPU threads,
            # which round and order the float sums (the last bits of a weight)
            options={"include_self": spec.include_self, "backend": spec.backend, "backend_used": used,
                     "device": "cpu" if used.startswith("faiss") else resolve_device(device).type,
                     "threads": torch.get_num_threads(),
                     # the processes' split of the rows rounds the weights too (a rebuild names it)
                     **({"nproc": shard.world} if shard is not None and shard.world > 1 else {})},
            content_fingerprint=dataset.content_fingerprint(fused.modalities),
        )
    else:  # co-interactions of the training matrix: items (MM-GEF's E^c) or users (DRAGON's)
        users = spec.kind == "user-cooccur"
        graph = (user_cooccurrence_graph if users else cooccurrence_graph)(
            dataset.train,
            top_k=spec.cooccur_top_k,
            min_count=spec.cooccur_min_count,
            symmetric=spec.symmetric,
            progress=progress,
            shard=shard,
        )
        record_fields = dict(
            k=spec.cooccur_top_k,
            weighting="count" if users else "count/max",
            pruning={"min_count": spec.cooccur_min_count},
            **({"nodes": "users"} if users else {}),
        )
    if spec.normalization != "none":
        lost = nonpositive_rows(graph)
        if lost:
            notes.append(
                f"note: {lost} item(s) have neighbours whose weights sum to <= 0 (negative cosines): "
                f"{spec.normalization!r} normalisation leaves their rows empty (use --weighting binary, "
                "or --normalization none and let the model normalise)"
            )
        graph = normalize_adjacency(graph, spec.normalization)
    seconds = time.perf_counter() - t0
    record = GraphRecord.for_dataset(
        dataset,
        kind=spec.kind,
        symmetric=spec.symmetric,
        normalization=spec.normalization,
        build_seconds=round(seconds, 4),
        **record_fields,
    )
    # the form save_graph stores: a model sees the same edges built here or loaded
    built = BuiltGraph(graph=canonical_graph(graph), record=record, seconds=seconds, fused=fused, notes=notes,
                       emptied_rows=lost)
    if memo is not None:
        memo.put(dataset, spec, built)
    return built


def parse_modalities(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"image,text"`` or a list -> a tuple; None -> None (all modalities).

    Raises:
        ConfigError: an empty name (``""``, ``"text,"``) or a name listed twice
            (``"text,text"``, which would weight one modality twice or collapse two
            learned weights into one)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(m).strip() for m in items]
    shown = value if isinstance(value, str) else ",".join(map(str, value))
    if not items or "" in items:
        raise ConfigError(f"--modalities {shown!r} has an empty modality name: name them separated by commas, "
                          "e.g. image,text (or leave the option out for all modalities)")
    twice = next((m for i, m in enumerate(items) if m in items[:i]), None)
    if twice is not None:
        raise ConfigError(f"--modalities {shown!r} lists {twice!r} twice: list each modality once")
    return tuple(items)
