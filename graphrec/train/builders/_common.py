"""What the model builders share: stored-graph loading and checks, and the
hyper-parameter declarations several models use (``Annotated`` aliases, so a flag and
its help text are written once)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, List, Mapping, Optional, Sequence, Union

import scipy.sparse as sp

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.graphs.normalize import nonpositive_rows, normalize_adjacency
from graphrec.graphs.store import GraphRecord, load_graph
from graphrec.train.registry import FloatRange, Option

__all__ = [
    "LR_SPACE",
    "EmbeddingDim",
    "Layers",
    "ItemLayers",
    "Reg",
    "ModalityK",
    "Modalities",
    "StoredGraphs",
    "needs_features",
    "check_features",
    "feature_modalities",
    "load_stored_graphs",
    "sym_graph",
    "pick_graph",
    "check_k",
]


def _paths(paths: Optional[List[Path]]) -> Optional[list[str]]:
    """Stored graph paths as absolute strings (recorded in the run), or None."""
    return [str(Path(p).resolve()) for p in paths] if paths else None


#: the learning rate of the default search spaces (``graphrec tune``): log-uniform
LR_SPACE = FloatRange(1e-4, 1e-2, log=True)

EmbeddingDim = Annotated[int, Option("--dim", help="Embedding size.", min=1)]
Layers = Annotated[int, Option("--layers", help="Propagation layers on the user-item graph.", min=0)]
ItemLayers = Annotated[int, Option("--item-layers", help="Propagation layers on the item graph.", min=1)]
Reg = Annotated[float, Option("--reg", help="L2 weight on the batch's embeddings (before any propagation).", min=0.0)]
ModalityK = Annotated[int, Option(help="Neighbours per item in each modality's kNN graph.", min=1)]
Modalities = Annotated[
    Optional[Union[str, Sequence[str]]],
    Option(help="Modalities to use, e.g. image,text [all the dataset has].", cli_type=Optional[str]),
]
StoredGraphs = Annotated[
    Optional[Sequence[str]],
    Option(
        "--graph",
        help="A stored graph (`graphrec build-graph --out DIR`) to use instead of building it; "
        "repeat for several. Refused when built from other data or another cold-start split.",
        cli_type=Optional[List[Path]],
        to_value=_paths,
    ),
]


def needs_features(dataset: Dataset, model: str, alternative: str = "", uses: str = "its kNN graph") -> None:
    """A one-line error when ``dataset`` has no item features (which ``model`` needs for
    ``uses``)."""
    if not dataset.item_features:
        raise DataError(
            f"{model} needs item content features for {uses}, and dataset {dataset.name!r} has "
            f"none: embed its images and texts with graphrec features, or prepare it with --feature "
            f"MODALITY=FILE (e.g. image=clip_image.npy) where the format takes one{alternative}"
        )


def check_features(
    model: str, uses: str = "its kNN graph", alternative: str = "", fused: bool = False
) -> Callable[[Dataset, Mapping[str, Any]], None]:
    """A registry ``check`` (``graphrec tune`` runs it before any training) for a model
    over item features: the dataset has some (for ``uses``, as :func:`needs_features`
    says, with its ``alternative``), and every modality ``params["modalities"]`` names.
    ``fused``: the model fuses them early into one content graph it builds, so they must
    share one dimension (:func:`graphrec.graphs.fuse.check_fusable`); a stored graph
    (``params["graphs"]``) is checked when it is read instead."""

    def check(dataset: Dataset, params: Mapping[str, Any]) -> None:
        needs_features(dataset, model, alternative, uses=uses)
        if not fused:
            feature_modalities(dataset, params.get("modalities"))
        elif not params.get("graphs"):
            from graphrec.graphs.fuse import check_fusable

            check_fusable(dataset.item_features, feature_modalities(dataset, params.get("modalities")),
                          sources=dataset.meta.get("features"))

    check.__doc__ = f"{model}'s cheap checks: the dataset has the item features it uses."
    return check


#: ``parity`` values of the models built on LATTICE's code (LATTICE, MM-GEF): graphrec's
#: backbone, or the authors' code's backbone, L2 and kNN lists (``docs/models/lattice.md``)
PARITY = ("none", "reference")
#: the reference code's L2 weight on the final embeddings (``--regs [1e-5, ...]``)
REFERENCE_REG = 1e-5


def parity_backbone(train: sp.spmatrix, parity: str) -> Any:
    """The LightGCN backbone graph of LATTICE and MM-GEF, a torch sparse tensor: D^-1/2 A
    D^-1/2 of the bipartite graph, or the reference code's D^-1 (A + I) under
    ``parity="reference"``; an unknown ``parity`` is a one-line :class:`ConfigError`."""
    from graphrec.graphs import normalized_bipartite
    from graphrec.nn import to_torch_sparse

    if parity not in PARITY:
        raise ConfigError(f"parity {parity!r} is not one of {', '.join(PARITY)}")
    if parity == "reference":
        return to_torch_sparse(normalized_bipartite(train, "row", self_loops=True))
    return to_torch_sparse(normalized_bipartite(train, "sym"))


def default_reg_weight(parity: str) -> float:
    """The L2 weight of LATTICE and MM-GEF when ``reg_weight`` is left unset: the
    reference's 1e-5 on the final embeddings under ``parity="reference"``, else 1e-4 on
    layer 0."""
    return REFERENCE_REG if parity == "reference" else 1e-4


def feature_modalities(dataset: Dataset, modalities: Optional[str]) -> list[str]:
    """The feature modalities a model uses: ``--modalities`` (comma-separated) or the
    dataset's defaults (:func:`graphrec.graphs.fuse.default_modalities`); a one-line
    :class:`DataError` naming those the dataset lacks."""
    from graphrec.graphs.build import parse_modalities
    from graphrec.graphs.fuse import default_modalities

    mods = parse_modalities(modalities) or default_modalities(dataset.item_features)
    missing = [m for m in mods if m not in dataset.item_features]
    if missing:
        raise DataError(
            f"dataset {dataset.name!r} has no {', '.join(missing)} features (it has "
            f"{', '.join(dataset.item_features)}): choose --modalities among those"
        )
    return mods


def load_stored_graphs(
    dataset: Dataset, paths: str | os.PathLike | Sequence[str | os.PathLike] | None
) -> list[tuple[sp.csr_matrix, GraphRecord, str]]:
    """Read stored graphs (``graphrec build-graph`` directories) for ``dataset``,
    refusing any built from other data, another cold-start split or another split
    (:func:`graphrec.graphs.store.load_graph`). Returns (graph, record, path) triples."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        graph, record = load_graph(p, dataset=dataset)
        out.append((graph, record, str(p)))
    return out


def sym_graph(graph: sp.csr_matrix, record: GraphRecord, path: str) -> sp.csr_matrix:
    """A stored graph, symmetrically normalised (as built, when it already is)."""
    if record.normalization == "sym":
        return graph
    if record.normalization != "none":
        raise DataError(
            f"graph {path} is stored with {record.normalization!r} normalisation; the models normalise "
            "symmetrically themselves: rebuild it with --normalization none (or sym)"
        )
    note_emptied_rows(nonpositive_rows(graph), f"graph {path}:",
                      "rebuild it with a lower --k, or --weighting binary")
    return normalize_adjacency(graph, "sym")


def one_modality_graphs(
    dataset: Dataset, graphs: Any, *, model: str, modalities: Sequence[str], among: str,
    k: int | Mapping[str, int] | None, include_self: bool, weighting: str | None = None,
    ignore: Sequence[str] = (), stored: Optional[list[tuple[sp.csr_matrix, GraphRecord, str]]] = None,
    weightings: Sequence[str] = (),
) -> dict[str, sp.csr_matrix]:
    """Stored graphs (``--graph``) used as a model's per-modality kNN graphs, by modality,
    symmetrically normalised (:func:`sym_graph`): each one a one-modality kNN graph of
    this data (the provenance checks of :func:`load_stored_graphs`) over one of
    ``modalities`` (named ``among`` in messages, e.g. ``"--modalities"``), at most one per
    modality, with the ``k`` (one for every modality, or a mapping ``{modality: k}`` for
    a model with one k per modality, as SMORE) and ``include_self`` asked for and, where
    the model's graph has a fixed form (``weighting``, e.g. FREEDOM's ``"binary"``), that
    weighting, not symmetrised. ``ignore``: kinds of graph another check of the caller
    handles (DRAGON's ``"user-cooccur"``), skipped here; ``stored``: the graphs already
    read by :func:`load_stored_graphs` (then ``graphs`` is not read again); ``weightings``:
    the values of the model's own ``--weighting`` option (MGCN's, SMORE's), which a graph of
    another of them may be trained with instead of rebuilt. One-line DataErrors naming the
    graph and the rebuild."""
    hint = "build-graph --kind knn --modalities M" + (f" --weighting {weighting}" if weighting else "")
    hint += "".join(f", or build-graph --kind {kind}" for kind in ignore)
    given: dict[str, sp.csr_matrix] = {}
    for g, rec, path in load_stored_graphs(dataset, graphs) if stored is None else stored:
        if rec.kind in ignore:
            continue
        if rec.kind != "knn" or len(rec.modalities or ()) != 1:
            takes = "one-modality kNN graphs" + "".join(f" and a {kind} graph" for kind in ignore)
            raise DataError(
                f"graph {path} is a {rec.kind} graph of {','.join(rec.modalities or []) or 'no modality'}; "
                f"{model} takes {takes} ({hint})"
            )
        m = rec.modalities[0]
        if m not in modalities:
            raise DataError(f"graph {path} is over {m!r}, which is not among {among} {','.join(modalities)}")
        if m in given:
            raise DataError(f"two stored graphs over {m!r} given: pass one per modality")
        if weighting is not None:
            if rec.weighting != weighting:
                raise DataError(
                    f"graph {path} has {rec.weighting} weights; {model}'s modality graphs are {weighting}: "
                    f"rebuild it with --weighting {weighting}"
                    + (f", or train with --weighting {rec.weighting}" if rec.weighting in weightings else "")
                )
            if rec.symmetric:
                raise DataError(f"graph {path} is symmetrised; {model}'s kNN graphs are not: rebuild it without --symmetric")
        if isinstance(k, Mapping):
            if rec.k != k[m]:
                raise DataError(
                    f"graph {path} has k={rec.k} but {model} uses k={k[m]} for {m!r}: rebuild it with --k {k[m]}, "
                    f"or train with --knn-k {m}={rec.k}"
                )
        else:
            check_k(rec, k, path)
        if bool((rec.options or {}).get("include_self", False)) != include_self:
            raise DataError(
                f"graph {path} was built with include_self={not include_self}: pass "
                f"{'--include-self' if not include_self else '--no-include-self'} or rebuild it"
            )
        given[m] = sym_graph(g, rec, path)
    return given


def note_emptied_rows(emptied: int, what: str, fix: str) -> None:
    """A :class:`GraphrecNote` for kNN rows that the symmetric normalisation leaves
    empty: items whose k neighbours' cosines sum to <= 0 (fewer than k items
    positively similar) get no propagation over that graph. ``what`` starts the message
    (``"content graph:"``, ``"image graph:"``, ``"graph PATH:"``), ``fix`` ends it."""
    if emptied:
        warnings.warn(
            f"{what} {emptied} item(s) have kNN neighbours whose cosines sum to <= 0: the symmetric normalisation "
            f"leaves their rows of the kNN graph empty (no propagation over it for them): {fix}",
            GraphrecNote, stacklevel=3,
        )


def pick_graph(stored: list[tuple[sp.csr_matrix, GraphRecord, str]], kind: str, model: str, allowed: tuple[str, ...]):
    """The stored graph of ``kind`` (at most one), refusing kinds the model cannot use."""
    found = []
    for g, r, p in stored:
        if r.kind not in allowed:
            made = ("exported from a trained run (graphrec export-graph), " if r.kind == "model" else "")
            raise DataError(
                f"graph {p} is a {r.kind!r} graph {made}and {model} uses {' and '.join(allowed)} graphs: build one with "
                f"graphrec build-graph {' or '.join(f'--kind {k}' for k in allowed)}, or drop --graph"
            )
        if r.kind == kind:
            found.append((g, r, p))
    if len(found) > 1:
        raise DataError(f"{len(found)} stored {kind} graphs given ({', '.join(p for _, _, p in found)}): pass one")
    return found[0] if found else None


def check_k(record: GraphRecord, k: int | None, path: str) -> None:
    """A stored graph's k must be the one asked for (when one is)."""
    if k is not None and record.k != k:
        raise DataError(f"graph {path} has k={record.k} but --k {k} was given: drop --k, or rebuild the graph with --k {k}")
