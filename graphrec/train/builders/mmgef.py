"""MM-GEF's builder: the bipartite graph, the content kNN graph E^m of the early-fused
features and the co-interaction graph E^c, all from the TRAINING data."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional

import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.cooccur import cooccurrence_factors
from graphrec.graphs.fuse import default_modalities
from graphrec.graphs.store import read_record
from graphrec.models import MMGEF
from graphrec.models.mmgef import FEATURE_MODES
from graphrec.nn import FactoredCooccurrence, to_torch_sparse
from graphrec.train.builders._common import (
    EmbeddingDim,
    ItemLayers,
    Layers,
    Modalities,
    Reg,
    StoredGraphs,
    check_k,
    load_stored_graphs,
    needs_features,
    pick_graph,
    sym_graph,
)
from graphrec.train.registry import Option, register_model


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


@register_model(
    "mmgef",
    title="MM-GEF",
    paper="Wu et al., Multi-modal representation meet collaborative filtering",
    summary="LightGCN plus attention-merged content kNN and co-interaction item graphs",
    example="graphrec train mmgef --data data/scientific --modalities image,text --cold-start 0.2",
    needs_features=lambda params: params["use_knn_graph"],
    content_modalities=content_modalities,
)
def build_mmgef(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    reg_weight: Reg = 1e-4,
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
    feature_mode: Annotated[
        str, Option(help="fixed (graph from stored features) or projected (trainable projection).", choices=FEATURE_MODES)
    ] = "fixed",
    cooccur_top_k: Annotated[Optional[int], Option(help="Keep the top-k co-interactions per item [all].", min=1)] = None,
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
        needs_features(dataset, "mmgef", " or train on co-interactions alone with --no-knn-graph (use_knn_graph=False)")
    stored = load_stored_graphs(dataset, graphs)
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    mods = parse_modalities(modalities)
    given_knn = pick_graph(stored, "knn", "mmgef", ("knn", "cooccur"))
    if given_knn is not None and not use_knn_graph:
        raise ConfigError(f"graph {given_knn[2]} is a content kNN graph and --no-knn-graph drops it: drop one of them")
    if given_knn is not None:
        g, rec, path = given_knn
        check_k(rec, k, path)
        if mods is not None and set(rec.modalities or ()) != set(mods):
            raise DataError(
                f"graph {path} fuses {','.join(rec.modalities or [])} but --modalities {','.join(mods)} was "
                "given: drop --modalities, or rebuild the graph with them"
            )
        mods = tuple(rec.modalities or ()) or None
        knn_matrix = sym_graph(g, rec, path) if feature_mode == "fixed" else g
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
        given_co = pick_graph(stored, "cooccur", "mmgef", ("knn", "cooccur"))
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
        feature_mode=feature_mode,
    )
