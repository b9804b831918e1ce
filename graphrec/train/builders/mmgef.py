"""MM-GEF's builder: the bipartite graph, the content kNN graph of the early-fused
features (and, for the learned structure, the fused features themselves) and the
co-interaction graph E^c, all from the TRAINING data."""

from __future__ import annotations

import os
from typing import Annotated, Any, Mapping, Optional

import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.cooccur import cooccurrence_factors
from graphrec.graphs.fuse import default_modalities, fuse_features
from graphrec.graphs.store import read_record
from graphrec.models.mmgef import FEATURE_MODES, MMGEF, STRUCTURES
from graphrec.nn import FactoredCooccurrence, to_torch_sparse
from graphrec.train.builders._common import (
    PARITY,
    EmbeddingDim,
    ItemLayers,
    LR_SPACE,
    Layers,
    Modalities,
    StoredGraphs,
    check_features,
    check_k,
    default_reg_weight,
    parity_backbone,
    load_stored_graphs,
    note_emptied_rows,
    pick_graph,
    sym_graph,
)
from graphrec.train.registry import FloatRange, IntRange, Option, register_model

#: the structure ``graphrec train mmgef`` uses when --structure is not given: the one
#: validation preferred on amazon-scientific and lfm2k (2 seeds each, docs/models/mmgef.md)
DEFAULT_STRUCTURE = "fixed"
#: the learned structure's weight of the original kNN graph (LATTICE's lambda)
DEFAULT_LAMBDA = 0.9
#: neighbours per item of the content kNN graph built here (a stored graph brings its own)
DEFAULT_K = 10


def _stored_kinds(paths: Any) -> set[str]:
    """The kinds of the stored graphs ``paths`` names (``--graph``; one path or several)."""
    if not paths:
        return set()
    return {read_record(p).kind for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)}


def resolve_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the builder's values for ``reg_weight`` (it follows ``parity``),
    ``k`` (10 where the content graph is built here, also beside a stored co-interaction
    graph) and, under the fixed structure,
    ``feature_mode`` (``"fixed"``) when they are ``None``."""
    out = dict(params)
    if out.get("reg_weight") is None:
        out["reg_weight"] = default_reg_weight(out.get("parity", "none"))
    if out.get("k") is None and out.get("use_knn_graph", True) and not _stored_kinds(out.get("graphs")) & {"knn"}:
        out["k"] = DEFAULT_K
    if out.get("feature_mode") is None and out.get("structure", DEFAULT_STRUCTURE) == "fixed":
        out["feature_mode"] = "fixed"
    return out


def content_modalities(model: MMGEF, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The modalities fused into a built MM-GEF's kNN graph: a stored kNN graph's, else
    ``params["modalities"]``, else the dataset's defaults; none without a content graph."""
    if "knn" not in model.graph_names:
        return ()
    for path in params.get("graphs") or ():
        record = read_record(path)
        if record.kind == "knn":
            return tuple(record.modalities)
    return parse_modalities(params.get("modalities")) or default_modalities(dataset.item_features)


#: features present and fusing early (one dimension), where the content graph is built here
_check_content = check_features(
    "mmgef", alternative=" or train on co-interactions alone with --no-knn-graph (use_knn_graph=False)", fused=True
)


def check_params(dataset: Dataset, params: Mapping[str, Any]) -> None:
    """The builder's checks that read no graph file (``graphrec tune --grid`` runs them on
    every grid point): the structure options fit together (a grid over ``lambda_coeff``
    under the fixed structure, say, would train one model several times) and, where a
    content graph is built here, the dataset has the features it fuses."""
    structure, feature_mode = params.get("structure", DEFAULT_STRUCTURE), params.get("feature_mode")
    use_knn_graph, use_cf_graph = params.get("use_knn_graph", True), params.get("use_cf_graph", True)
    if structure not in STRUCTURES:
        raise ConfigError(f"structure {structure!r} is not one of {', '.join(STRUCTURES)}")
    if feature_mode is not None and feature_mode not in FEATURE_MODES:
        raise ConfigError(f"feature_mode {feature_mode!r} is not one of {', '.join(FEATURE_MODES)}")
    if structure == "learned" and feature_mode is not None:
        raise ConfigError("--feature-mode belongs to --structure fixed (the learned structure projects its features anyway)")
    if not use_knn_graph and structure == "learned":
        raise ConfigError("--structure learned learns the content graph, which --no-knn-graph drops: drop one of them")
    learned_options = params.get("lambda_coeff", DEFAULT_LAMBDA) != DEFAULT_LAMBDA or not params.get("train_features", True)
    if structure != "learned" and learned_options:
        raise ConfigError("--lambda and --fixed-features configure --structure learned: drop them or use it")
    if not use_knn_graph:
        if not use_cf_graph:
            raise ConfigError("--no-knn-graph and --no-cf-graph together leave MM-GEF no item graph: drop one")
        given = [o for o, flag in (("--k", params.get("k") is not None),
                                   ("--modalities", params.get("modalities") is not None),
                                   ("--feature-mode projected", (feature_mode or "fixed") != "fixed")) if flag]
        if given:
            raise ConfigError(f"{', '.join(given)} configure the content graph, which --no-knn-graph drops: drop them")
        return
    # the content graph is built here over the early-fused modalities: they must fuse
    _check_content(dataset, params)


@register_model(
    "mmgef",
    title="MM-GEF",
    paper="Wu et al., Multi-modal representation meet collaborative filtering",
    loss="BPR loss",  # graphrec plot's axis: BPR plus L2 alone
    summary="LightGCN plus attention-merged LATTICE structure of the early-fused features and co-interaction item graphs",
    example="graphrec train mmgef --data data/scientific --modalities image,text --structure learned --cold-start 0.2",
    needs_features=lambda params: params["use_knn_graph"],
    content_modalities=content_modalities,
    check=check_params,
    resolve=resolve_params,
    search_space={
        "lr": LR_SPACE,
        "reg_weight": FloatRange(1e-6, 1e-2, log=True),
        "num_layers": IntRange(1, 4),
        "item_layers": IntRange(1, 2),
        "k": IntRange(5, 40, step=5),
    },
)
def build_mmgef(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    reg_weight: Annotated[
        Optional[float],
        Option(
            "--reg",
            help="L2 weight: on the batch's layer-0 embeddings [1e-4]; with --parity reference on its final "
            "embeddings, as LATTICE's reference code [1e-5].",
            min=0.0,
        ),
    ] = None,
    k: Annotated[
        Optional[int], Option(help="Neighbours per item in the content kNN graph [10, or the stored graph's].", min=1)
    ] = None,
    modalities: Annotated[Modalities, Option(help="Modalities fused early, e.g. image,text [all].", cli_type=Optional[str])] = None,
    graphs: StoredGraphs = None,
    use_cf_graph: Annotated[bool, Option("--no-cf-graph", invert=True, help="Ablation: drop the co-interaction graph.")] = True,
    use_knn_graph: Annotated[
        bool,
        Option("--no-knn-graph", invert=True, help="Drop the content kNN graph (co-interaction graph only; no features needed)."),
    ] = True,
    attention: Annotated[bool, Option("--no-attention", invert=True, help="Ablation: fixed equal graph weights.")] = True,
    structure: Annotated[
        str,
        Option(
            help="Content structure: learned (LATTICE's learned + original graph of the fused feature, the paper's) "
            "or fixed (the kNN graph only; cheaper; validation prefers it).",
            choices=STRUCTURES,
        ),
    ] = DEFAULT_STRUCTURE,
    feature_mode: Annotated[
        Optional[str],
        Option(
            help="Edge values of the fixed structure: fixed (cosines of the stored features) or projected "
            "(cosines of a trainable projection on the fixed kNN pattern) [fixed].",
            choices=FEATURE_MODES,
        ),
    ] = None,
    lambda_coeff: Annotated[
        float, Option("--lambda", help="Learned structure: weight of the original kNN graph in the skip mix.", min=0.0, max=1.0)
    ] = DEFAULT_LAMBDA,
    train_features: Annotated[
        bool,
        Option("--train-features/--fixed-features", help="Learned structure: fine-tune the fused feature table (as LATTICE)."),
    ] = True,
    cooccur_top_k: Annotated[Optional[int], Option(help="Keep the top-k co-interactions per item [all].", min=1)] = None,
    parity: Annotated[
        str,
        Option(
            help="reference: train on LATTICE's reference code's backbone, on which the paper's tables were run: "
            "D^-1(A+I), L2 1e-5 on the final embeddings (instead of --reg on layer 0) and self in the kNN lists.",
            choices=PARITY,
        ),
    ] = "none",
) -> MMGEF:
    """MM-GEF's inputs: the bipartite graph and, from the TRAINING data only, the content
    kNN graph (early-fused ``modalities``, top-``k`` cosine; ``k`` None means 10) and
    the co-interaction graph E^c (counts / max, optionally top-``cooccur_top_k`` per row),
    each symmetrically normalised. ``structure``: ``learned`` also passes the fused
    features (LATTICE's learned graph over their projection, mixed with the kNN graph by
    ``lambda_coeff``); ``fixed`` propagates over the kNN graph (``projected`` mode: its
    pattern plus the fused features); run records made before ``structure`` existed
    have none and rebuild the fixed structure they trained. ``graphs``: stored graphs (``graphrec build-graph``) used
    instead of building the kNN graph and/or E^c, provenance-checked against ``dataset``.
    ``use_knn_graph=False``: no content graph (co-interaction graph only; no features needed).
    ``parity="reference"``: LATTICE's reference code's training backbone (as LATTICE's
    builder): the graph D^-1 (A + I), the L2 on the batch's final embeddings
    (``reg_weight``, default 1e-5; else the layer-0 L2, default 1e-4) and each item one of
    its own kNN neighbours (a stored kNN graph must say so).
    """
    if parity not in PARITY:
        raise ConfigError(f"parity {parity!r} is not one of {', '.join(PARITY)}")
    reference = parity == "reference"
    check_params(dataset, dict(
        structure=structure, feature_mode=feature_mode, use_knn_graph=use_knn_graph, use_cf_graph=use_cf_graph,
        lambda_coeff=lambda_coeff, train_features=train_features, k=k, modalities=modalities, graphs=graphs,
    ))
    adj = parity_backbone(dataset.train, parity)
    resolved = resolve_params(dict(reg_weight=reg_weight, k=k, feature_mode=feature_mode, structure=structure,
                                   parity=parity, use_knn_graph=use_knn_graph, graphs=graphs))
    reg_weight, k = resolved["reg_weight"], resolved["k"]  # k stays None with a stored kNN graph (its own k)
    feature_mode = resolved["feature_mode"] or "fixed"  # the learned structure has none: a placeholder
    learned = structure == "learned"
    stored = load_stored_graphs(dataset, graphs)
    mods = parse_modalities(modalities)
    given_knn = pick_graph(stored, "knn", "mmgef", ("knn", "cooccur"))
    given_co = pick_graph(stored, "cooccur", "mmgef", ("knn", "cooccur"))  # refused before a kNN search
    if given_knn is not None and not use_knn_graph:
        raise ConfigError(f"graph {given_knn[2]} is a content kNN graph and --no-knn-graph drops it: drop one of them")
    include_self = reference
    fused_x = None
    if given_knn is not None:
        g, rec, path = given_knn
        check_k(rec, k, path)
        if mods is not None and set(rec.modalities or ()) != set(mods):
            raise DataError(
                f"graph {path} fuses {','.join(rec.modalities or [])} but --modalities {','.join(mods)} was "
                "given: drop --modalities, or rebuild the graph with them"
            )
        mods = tuple(rec.modalities or ()) or None
        knn_matrix = g if feature_mode == "projected" else sym_graph(g, rec, path)
        k = rec.k
        if reference and not (rec.options or {}).get("include_self", False):
            raise DataError(
                f"graph {path} was built without include_self, and --parity reference keeps each item in its own "
                "kNN list: rebuild it with build-graph --include-self, or drop --parity"
            )
        include_self = bool((rec.options or {}).get("include_self", False))  # the learned graph's lists alike
        if learned or feature_mode == "projected":
            fused_x = fuse_features(dataset.item_features, mods, sources=dataset.meta.get("features")).x
    else:
        knn_matrix = None
        if use_knn_graph:
            spec = GraphSpec(
                kind="knn", k=k, modalities=mods, include_self=include_self,
                normalization="none" if feature_mode == "projected" else "sym",
            )
            built = build_item_graph(dataset, spec)
            knn_matrix = built.graph
            fix = "lower --k" + ("" if learned else ", or --feature-mode projected (clips negative cosines to 0)")
            note_emptied_rows(built.emptied_rows, "content graph:", fix)
            assert built.fused is not None
            fused_x = built.fused.x
    features = torch.from_numpy(fused_x) if fused_x is not None and (learned or feature_mode == "projected") else None
    cooccur = None
    if use_cf_graph:
        if given_co is not None:
            g, rec, path = given_co
            if cooccur_top_k is not None and rec.k != cooccur_top_k:
                raise DataError(
                    f"graph {path} keeps top {rec.k} co-interactions but --cooccur-top-k {cooccur_top_k} was "
                    "given: drop the option, or rebuild the graph with it"
                )
            cooccur = sym_graph(g, rec, path)
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
        structure=structure,
        feature_mode=feature_mode,
        k=DEFAULT_K if k is None else k,
        lambda_coeff=lambda_coeff,
        include_self=include_self,
        train_features=train_features,
        reg_on="final" if reference else "layer0",
    )

