"""LATTICE's builder: the bipartite graph, each modality's raw features and its original
top-k cosine graph, and optionally MM-GEF's co-interaction graph."""

from __future__ import annotations

from typing import Annotated, Any, Mapping

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.errors import DataError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph, parse_modalities
from graphrec.graphs.cooccur import cooccurrence_factors
from graphrec.graphs.fuse import default_modalities
from graphrec.models import LATTICE
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
    sym_graph,
)
from graphrec.train.registry import Option, register_model


def content_modalities(model: LATTICE, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """LATTICE keeps one graph per modality: its own modalities."""
    return tuple(model.modalities)


@register_model(
    "lattice",
    title="LATTICE",
    paper="Zhang et al., ACM MM 2021",
    summary="LightGCN plus learned and original per-modality item graphs, rebuilt every epoch",
    example="graphrec train lattice --data data/scientific --lambda 0.9 --cold-start 0.2",
    needs_features=True,
    content_modalities=content_modalities,
)
def build_lattice(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Layers = 2,
    item_layers: ItemLayers = 1,
    reg_weight: Reg = 1e-4,
    k: Annotated[int, Option(help="Neighbours per item in the original and learned graphs.", min=1)] = 10,
    modalities: Modalities = None,
    lambda_coeff: Annotated[
        float, Option("--lambda", help="Weight of the original graphs in the skip mix.", min=0.0, max=1.0)
    ] = 0.9,
    include_self: Annotated[
        bool,
        Option("--include-self/--no-include-self", help="Each item is one of its own k neighbours (reference-code parity)."),
    ] = False,
    train_features: Annotated[
        bool, Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the reference).")
    ] = True,
    graphs: StoredGraphs = None,
    use_cf_graph: Annotated[
        bool,
        Option(
            "--cf-graph/--no-cf-graph",
            help="Also MM-GEF's co-interaction graph, merged with LATTICE's by learned weights (the LATTICE of MM-GEF's Tables 2-3).",
        ),
    ] = False,
) -> LATTICE:
    """LATTICE's inputs: the bipartite graph, the raw features of each modality and
    their ORIGINAL graphs (top-``k`` cosine of the raw features, symmetrically
    normalised; ``include_self`` for reference parity). ``graphs``: stored one-modality
    kNN graphs used as the original graph of their modality (provenance-checked).
    ``use_cf_graph``: also MM-GEF's co-interaction graph of the TRAINING interactions,
    kept as its factors (hidden cold-start items never enter it)."""
    needs_features(dataset, "lattice")
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
        check_k(rec, k, path)
        if bool((rec.options or {}).get("include_self", False)) != include_self:
            raise DataError(
                f"graph {path} was built with include_self={not include_self}: pass "
                f"{'--include-self' if not include_self else '--no-include-self'} or rebuild it"
            )
        given[m] = sym_graph(g, rec, path)
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
