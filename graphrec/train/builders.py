"""Model factories: turn a :class:`~graphrec.data.Dataset` plus hyper-parameters into a
model, building the graphs the model receives. This is the one place that knows how
each model's inputs are derived from data, so training, ``graphrec evaluate`` and
checkpoint reloading construct models identically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.cooccur import cooccurrence_factors
from graphrec.graphs.fuse import default_modalities
from graphrec.graphs.normalize import normalize_adjacency
from graphrec.graphs.store import GraphRecord, load_graph, read_record
from graphrec.models import LATTICE, MF, MMGEF, ContentKNN, LightGCN, Recommender
from graphrec.models.mmgef import FEATURE_MODES
from graphrec.nn import FactoredCooccurrence, to_torch_sparse

__all__ = ["ModelSpec", "MODELS", "build_model", "model_params"]


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: its factory and default hyper-parameters."""

    name: str
    build: Callable[..., Recommender]
    defaults: Mapping[str, Any]


def _needs_features(dataset: Dataset, model: str, alternative: str = "") -> None:
    if not dataset.item_features:
        raise DataError(
            f"{model} needs item content features for its kNN graph, and dataset {dataset.name!r} has "
            f"none: prepare it with --feature MODALITY=FILE (e.g. image=clip_image.npy){alternative}"
        )


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


def _sym(graph: sp.csr_matrix, record: GraphRecord, path: str) -> sp.csr_matrix:
    """A stored graph, symmetrically normalised (as built, when it already is)."""
    if record.normalization == "sym":
        return graph
    if record.normalization != "none":
        raise DataError(
            f"graph {path} is stored with {record.normalization!r} normalisation; the models normalise "
            "symmetrically themselves: rebuild it with --normalization none (or sym)"
        )
    return normalize_adjacency(graph, "sym")


def _pick(stored: list[tuple[sp.csr_matrix, GraphRecord, str]], kind: str, model: str, allowed: tuple[str, ...]):
    """The stored graph of ``kind`` (at most one), refusing kinds the model cannot use."""
    found = []
    for g, r, p in stored:
        if r.kind not in allowed:
            raise DataError(f"graph {p} is a {r.kind!r} graph; {model} uses {' and '.join(allowed)} graphs")
        if r.kind == kind:
            found.append((g, r, p))
    if len(found) > 1:
        raise DataError(f"{len(found)} stored {kind} graphs given ({', '.join(p for _, _, p in found)}): pass one")
    return found[0] if found else None


def _check_k(record: GraphRecord, k: int | None, path: str) -> None:
    if k is not None and record.k != k:
        raise DataError(f"graph {path} has k={record.k} but --k {k} was given: drop --k, or rebuild the graph with --k {k}")


def content_modalities(model: Recommender, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The feature modalities behind a built item-graph model's content graphs, resolved as
    the builders resolve them: LATTICE's own; MM-GEF's fused kNN graph: a stored kNN
    graph's modalities, else ``params["modalities"]``, else the dataset's defaults; none
    without a content graph."""
    if isinstance(model, LATTICE):
        return tuple(model.modalities)
    if not isinstance(model, MMGEF) or "knn" not in model.graph_names:
        return ()
    for path in params.get("graphs") or ():
        record = read_record(path)
        if record.kind == "knn":
            return tuple(record.modalities)
    return parse_modalities(params.get("modalities")) or default_modalities(dataset.item_features)


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
    graphs: Sequence[str] | None = None,
    use_knn_graph: bool = True,
) -> MMGEF:
    """MM-GEF's inputs: the bipartite graph and, from the TRAINING data only, the content
    kNN graph E^m (early-fused ``modalities``, top-``k`` cosine; ``k`` None means 10) and
    the co-interaction graph E^c (counts / max, optionally top-``cooccur_top_k`` per row),
    each symmetrically normalised. ``graphs``: stored graphs (``graphrec build-graph``)
    used instead of building E^m and/or E^c, provenance-checked against ``dataset``.
    ``projected`` mode passes the raw kNN pattern plus the fused features.
    ``use_knn_graph=False``: no content graph (co-interaction graph only; no features needed).
    """
    if feature_mode not in FEATURE_MODES:
        raise ConfigError(f"feature_mode {feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
    if not use_knn_graph:
        if not use_cf_graph:
            raise ConfigError("--no-knn-graph and --no-cf-graph together leave MM-GEF no item graph: drop one")
        given = [o for o, flag in (("--k", k is not None), ("--modalities", modalities is not None),
                                   ("--feature-mode projected", feature_mode != "fixed")) if flag]
        if given:
            raise ConfigError(f"{', '.join(given)} configure the content graph, which --no-knn-graph drops: drop them")
    else:
        _needs_features(dataset, "mmgef", " or train on co-interactions alone with --no-knn-graph (use_knn_graph=False)")
    stored = load_stored_graphs(dataset, graphs)
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    mods = parse_modalities(modalities)
    given_knn = _pick(stored, "knn", "mmgef", ("knn", "cooccur"))
    if given_knn is not None and not use_knn_graph:
        raise ConfigError(f"graph {given_knn[2]} is a content kNN graph and --no-knn-graph drops it: drop one of them")
    if given_knn is not None:
        g, rec, path = given_knn
        _check_k(rec, k, path)
        if mods is not None and set(rec.modalities or ()) != set(mods):
            raise DataError(
                f"graph {path} fuses {','.join(rec.modalities or [])} but --modalities {','.join(mods)} was "
                "given: drop --modalities, or rebuild the graph with them"
            )
        mods = tuple(rec.modalities or ()) or None
        knn_matrix = _sym(g, rec, path) if feature_mode == "fixed" else g
    else:
        knn_matrix = None
    fused = None
    if use_knn_graph and (knn_matrix is None or feature_mode == "projected"):
        spec = GraphSpec(
            kind="knn", k=10 if k is None else k, modalities=mods,
            normalization="sym" if feature_mode == "fixed" else "none",
        )
        built = build_item_graph(dataset, spec)
        fused = built.fused
        if knn_matrix is None:
            knn_matrix = built.graph
    features = None
    if feature_mode == "projected":
        assert fused is not None
        features = torch.from_numpy(fused.x)
    cooccur = None
    if use_cf_graph:
        given_co = _pick(stored, "cooccur", "mmgef", ("knn", "cooccur"))
        if given_co is not None:
            g, rec, path = given_co
            if cooccur_top_k is not None and rec.k != cooccur_top_k:
                raise DataError(
                    f"graph {path} keeps top {rec.k} co-interactions but --cooccur-top-k {cooccur_top_k} was "
                    "given: drop the option, or rebuild the graph with it"
                )
            cooccur = _sym(g, rec, path)
        elif cooccur_top_k is None:  # unpruned: kept as its factors, C is never formed
            cooccur = FactoredCooccurrence(cooccurrence_factors(dataset.train))
        else:
            cooccur = build_item_graph(
                dataset, GraphSpec(kind="cooccur", cooccur_top_k=cooccur_top_k, normalization="sym")
            ).graph
    return MMGEF(
        dataset.n_users,
        dataset.n_items,
        adj,
        None if knn_matrix is None else to_torch_sparse(knn_matrix),
        cooccur if cooccur is None or isinstance(cooccur, FactoredCooccurrence) else to_torch_sparse(cooccur),
        features=features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        reg_weight=reg_weight,
        use_cf_graph=use_cf_graph,
        attention=attention,
        feature_mode=feature_mode,
    )


def _build_lattice(
    dataset: Dataset,
    embedding_dim: int,
    num_layers: int,
    item_layers: int,
    reg_weight: float,
    k: int,
    modalities: str | list[str] | tuple[str, ...] | None,
    lambda_coeff: float,
    include_self: bool,
    train_features: bool,
    graphs: Sequence[str] | None = None,
    use_cf_graph: bool = False,
) -> LATTICE:
    """LATTICE's inputs: the bipartite graph, the raw features of each modality and
    their ORIGINAL graphs (top-``k`` cosine of the raw features, symmetrically
    normalised; ``include_self`` for reference parity). ``graphs``: stored one-modality
    kNN graphs used as the original graph of their modality (provenance-checked).
    ``use_cf_graph``: also MM-GEF's co-interaction graph of the TRAINING interactions,
    kept as its factors (hidden cold-start items never enter it)."""
    _needs_features(dataset, "lattice")
    mods = parse_modalities(modalities) or default_modalities(dataset.item_features)
    missing = [m for m in mods if m not in dataset.item_features]
    if missing:
        raise DataError(
            f"dataset {dataset.name!r} has no {', '.join(missing)} features (it has "
            f"{', '.join(dataset.item_features)}): choose --modalities among those"
        )
    given: dict[str, sp.csr_matrix] = {}
    for g, rec, path in load_stored_graphs(dataset, graphs):
        if rec.kind != "knn" or len(rec.modalities or ()) != 1:
            raise DataError(
                f"graph {path} is a {rec.kind} graph of {','.join(rec.modalities or []) or 'no modality'}; "
                "lattice takes one-modality kNN graphs (build-graph --kind knn --modalities M)"
            )
        m = rec.modalities[0]
        if m not in mods:
            raise DataError(f"graph {path} is over {m!r}, which is not among --modalities {','.join(mods)}")
        _check_k(rec, k, path)
        if bool((rec.options or {}).get("include_self", False)) != include_self:
            raise DataError(
                f"graph {path} was built with include_self={not include_self}: pass "
                f"{'--include-self' if not include_self else '--no-include-self'} or rebuild it"
            )
        given[m] = _sym(g, rec, path)
    originals = {}
    for m in mods:
        if m in given:
            originals[m] = to_torch_sparse(given[m])
            continue
        spec = GraphSpec(kind="knn", k=k, modalities=(m,), include_self=include_self, normalization="sym")
        originals[m] = to_torch_sparse(build_item_graph(dataset, spec).graph)
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    return LATTICE(
        dataset.n_users,
        dataset.n_items,
        adj,
        originals,
        {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in mods},
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        reg_weight=reg_weight,
        k=k,
        lambda_coeff=lambda_coeff,
        include_self=include_self,
        train_features=train_features,
        cooccur_graph=FactoredCooccurrence(cooccurrence_factors(dataset.train)) if use_cf_graph else None,
    )


def _build_cb(
    dataset: Dataset,
    k: int | None,
    modalities: str | list[str] | tuple[str, ...] | None,
    graphs: Sequence[str] | None = None,
) -> ContentKNN:
    """Content kNN: the training histories and the top-``k`` cosine graph of the
    early-fused ``modalities`` (``k`` None means 50), or a stored kNN graph."""
    _needs_features(dataset, "cb")
    given = _pick(load_stored_graphs(dataset, graphs), "knn", "cb", ("knn",))
    if given is not None:
        g, rec, path = given
        _check_k(rec, k, path)
        if rec.normalization != "none":
            raise DataError(f"graph {path} is normalised ({rec.normalization}); cb uses raw cosines: rebuild it with --normalization none")
        sim = g
    else:
        spec = GraphSpec(kind="knn", k=50 if k is None else k, modalities=parse_modalities(modalities))
        sim = build_item_graph(dataset, spec).graph
    return ContentKNN(dataset.n_users, dataset.n_items, to_torch_sparse(dataset.train), to_torch_sparse(sim))


def _build_mf(dataset: Dataset, embedding_dim: int, reg_weight: float) -> MF:
    return MF(dataset.n_users, dataset.n_items, embedding_dim=embedding_dim, reg_weight=reg_weight)


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
            "k": None,
            "modalities": None,
            "use_cf_graph": True,
            "attention": True,
            "feature_mode": "fixed",
            "cooccur_top_k": None,
            "graphs": None,
            "use_knn_graph": True,
        },
    ),
    "lattice": ModelSpec(
        "lattice",
        _build_lattice,
        {
            "embedding_dim": 64,
            "num_layers": 2,
            "item_layers": 1,
            "reg_weight": 1e-4,
            "k": 10,
            "modalities": None,
            "lambda_coeff": 0.9,
            "include_self": False,
            "train_features": True,
            "graphs": None,
            "use_cf_graph": False,
        },
    ),
    "cb": ModelSpec("cb", _build_cb, {"k": None, "modalities": None, "graphs": None}),
    "mf": ModelSpec("mf", _build_mf, {"embedding_dim": 64, "reg_weight": 1e-4}),
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
