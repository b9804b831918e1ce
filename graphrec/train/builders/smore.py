"""SMORE's builder: the normalised bipartite graph of the training data, one normalised
top-k item graph per modality (its own k; built here, or read from a stored graph), their
max-pooled fusion, and the raw features."""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.graphs import normalized_bipartite
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.models.smore import FUSION, SMORE
from graphrec.nn import to_torch_sparse
from graphrec.train.builders._common import (
    note_emptied_rows,
    EmbeddingDim,
    ItemLayers,
    LR_SPACE,
    Modalities,
    Reg,
    StoredGraphs,
    feature_modalities,
    needs_features,
    one_modality_graphs,
)
from graphrec.train.builders.freedom import _parse_weights, frozen_item_graph
from graphrec.train.registry import FloatRange, IntRange, Option, register_model

__all__ = ["build_smore", "max_pool_graphs", "modality_graph", "modality_knn_k", "stored_smore_graphs",
           "DEFAULT_KNN_K"]

#: MMRec's first grid value of image_knn_k / text_knn_k, the k of any other modality
DEFAULT_KNN_K = 10

_NOT_KNN_K = "knn_k {!r} is neither a number nor MODALITY=K pairs (e.g. image=10,text=20)"

#: edge values of the modality kNN graphs
WEIGHTINGS = ("cosine", "binary")

KnnK = Annotated[
    Optional[Union[str, int, Mapping[str, int]]],
    Option(
        help="k per modality: one number for every modality, or MODALITY=K pairs (e.g. audio=20,text=10); "
        "modalities not named use --image-knn-k / --text-knn-k for image / text and 10 for any other.",
        cli_type=Optional[str],
    ),
]


def _positive_int(name: str, value: float | int | str) -> int:
    try:
        k = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"knn_k of {name}: {value!r} is not a number") from None
    if not k.is_integer() or k < 1:
        raise ConfigError(f"knn_k of {name} must be a whole number >= 1, got {value}")
    return int(k)


def modality_knn_k(
    modalities: Sequence[str],
    knn_k: str | int | Mapping[str, int] | None = None,
    image_knn_k: int = DEFAULT_KNN_K,
    text_knn_k: int = DEFAULT_KNN_K,
) -> dict[str, int]:
    """The kNN size of each modality's item graph.

    ``knn_k``: a single number (every modality), or ``MODALITY=K`` pairs (a string or a
    mapping) for the modalities it names; the others take ``image_knn_k`` (image),
    ``text_knn_k`` (text) or :data:`DEFAULT_KNN_K` (any other name). An ``image_knn_k`` or
    ``text_knn_k`` other than the default where that modality is not used is a
    :class:`ConfigError` (it would change nothing: MMRec's grid over image_knn_k on data
    whose modalities are audio and text would train each point four times).
    """
    base = {m: image_knn_k if m == "image" else text_knn_k if m == "text" else DEFAULT_KNN_K for m in modalities}
    if knn_k is None:
        pairs: dict[str, int] = {}
    elif isinstance(knn_k, Mapping):
        pairs = {str(m): _positive_int(str(m), k) for m, k in knn_k.items()}
    elif isinstance(knn_k, (int, np.integer)) or (isinstance(knn_k, str) and "=" not in knn_k and knn_k.strip()):
        try:
            k = float(knn_k)
        except ValueError:
            raise ConfigError(_NOT_KNN_K.format(knn_k)) from None
        k = _positive_int("every modality", k)
        return {m: k for m in modalities}
    else:
        try:
            parsed = _parse_weights(str(knn_k))  # MODALITY=VALUE pairs, as FREEDOM's --modality-weights
        except ConfigError:
            raise ConfigError(_NOT_KNN_K.format(knn_k)) from None
        pairs = {m: _positive_int(m, k) for m, k in parsed.items()}
    unknown = [m for m in pairs if m not in base]
    if unknown:
        raise ConfigError(
            f"knn_k names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not among the "
            f"modalities used ({', '.join(modalities)})"
        )
    for name, modality, k in (("image_knn_k", "image", image_knn_k), ("text_knn_k", "text", text_knn_k)):
        if int(k) < 1:
            raise ConfigError(f"{name} must be at least 1, got {k}")
        if int(k) != DEFAULT_KNN_K and modality not in base:
            raise ConfigError(
                f"{name} {k} has no effect: the modalities used are {', '.join(modalities)}, without {modality}; "
                f"give their k with knn_k (--knn-k {modalities[0]}={k}), or name the {modality} features "
                f"{modality!r} when preparing the data"
            )
    return {**base, **pairs}


def modality_graph(
    dataset: Dataset,
    modality: str,
    k: int,
    weighting: str = "cosine",
    include_self: bool = True,
    given: Optional[sp.csr_matrix] = None,
) -> sp.csr_matrix:
    """One modality's item graph: the top-``k`` cosine neighbours of each item's raw
    features (the item itself among them with ``include_self``), with the cosine
    (``weighting="cosine"``) or 1 (``"binary"``, FREEDOM's graph) as edge values,
    normalised D^-1/2 S D^-1/2 with its row sums D. float32 scipy CSR, n_items square.
    ``given``: that graph already normalised, read from a stored graph
    (:func:`stored_smore_graphs`), used instead of building it."""
    if weighting == "binary":
        mine = {modality: given} if given is not None else None
        return frozen_item_graph(dataset, {modality: 1.0}, k=k, include_self=include_self, given=mine)
    if weighting != "cosine":
        raise ConfigError(f"weighting {weighting!r} is not one of {', '.join(WEIGHTINGS)}")
    if given is not None:
        return given
    spec = GraphSpec(
        kind="knn", k=k, modalities=(modality,), weighting="cosine", include_self=include_self, normalization="sym"
    )
    built = build_item_graph(dataset, spec)
    lower = f"--{modality}-knn-k" if modality in ("image", "text") else f"{modality}'s k in --knn-k"
    note_emptied_rows(built.emptied_rows, f"{modality} graph:", f"lower {lower}, or --weighting binary")
    return built.graph


def stored_smore_graphs(
    dataset: Dataset, graphs: Any, ks: Mapping[str, int], weighting: str, include_self: bool
) -> dict[str, sp.csr_matrix]:
    """The stored graphs (``--graph``) as SMORE's normalised modality graphs, by modality:
    each a directed one-modality kNN graph of this data over one of the modalities of
    ``ks``, with that modality's k (``ks``), the ``weighting`` and ``include_self`` asked
    for (:func:`~graphrec.train.builders._common.one_modality_graphs`)."""
    return one_modality_graphs(dataset, graphs, model="smore", modalities=list(ks), among="--modalities", k=ks,
                               include_self=include_self, weighting=weighting, weightings=WEIGHTINGS)


def max_pool_graphs(graphs: Sequence[sp.spmatrix]) -> sp.csr_matrix:
    """Entry-wise maximum of sparse matrices over the UNION of their stored entries: an
    entry stored in one matrix only keeps its value (even a negative one), an entry
    stored in several takes the largest. float32 CSR."""
    if not graphs:
        raise ConfigError("max_pool_graphs needs at least one graph")
    shape = graphs[0].shape
    if any(g.shape != shape for g in graphs):
        raise ConfigError(f"max_pool_graphs: shapes differ ({[g.shape for g in graphs]})")
    coos = [sp.coo_matrix(g) for g in graphs]
    for c in coos:
        c.sum_duplicates()
    rows = np.concatenate([c.row for c in coos]).astype(np.int64)
    cols = np.concatenate([c.col for c in coos]).astype(np.int64)
    vals = np.concatenate([c.data for c in coos]).astype(np.float64)
    if rows.size == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    key = rows * shape[1] + cols
    order = np.argsort(key, kind="stable")
    key, vals = key[order], vals[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    best = np.maximum.reduceat(vals, starts)
    uniq = key[starts]
    out = sp.csr_matrix((best.astype(np.float32), (uniq // shape[1], uniq % shape[1])), shape=shape)
    out.sort_indices()
    return out


def check_params(dataset: Dataset, params: Mapping[str, Any]) -> None:
    """The builder's checks that build nothing (``graphrec tune --grid`` runs them on every
    grid point): features, the dropout below 1, the modalities exist (none named as the
    fused view) and each kNN size applies to one of them."""
    needs_features(dataset, "smore")
    dropout = params.get("dropout", 0.0)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"smore option dropout must be < 1, got {dropout}")
    mods = feature_modalities(dataset, params.get("modalities"))
    if FUSION in mods:
        raise DataError(f"smore names its fused view {FUSION!r}: a modality cannot have that name")
    modality_knn_k(mods, params.get("knn_k"), params.get("image_knn_k", DEFAULT_KNN_K),
                   params.get("text_knn_k", DEFAULT_KNN_K))


def content_modalities(model: SMORE, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The modalities with an item graph each (``export-graph --view MODALITY``)."""
    return tuple(model.modalities)


@register_model(
    "smore",
    title="SMORE",
    paper="Ong & Khong, WSDM 2025",
    summary="modalities denoised and fused by learnable filters in the frequency domain, gating item ID "
    "embeddings on per-modality and max-pooled kNN graphs; LightGCN; modality-aware preference gates; InfoNCE",
    example="graphrec train smore --data data/lfm2k --layers 3 --image-knn-k 10 --text-knn-k 10 --reg 1e-5",
    needs_features=True,
    content_modalities=content_modalities,
    check=check_params,
    train_defaults={"lr_decay": 0.96},  # the reference's learning_rate_scheduler [0.96, 50]
    search_space={
        "lr": LR_SPACE,
        "num_layers": IntRange(2, 4),
        "reg_weight": FloatRange(1e-6, 1e-3, log=True),
        "dropout": FloatRange(0.0, 0.2, step=0.1),
        "cl_weight": FloatRange(1e-3, 1e-1, log=True),
    },
    # MMRec's SMORE.yaml grid (n_ui_layers, dropout_rate: num_layers, dropout), learning_rate 0.001, schedule
    # [0.96, 50]
    reference_grids={"mmrec": {"num_layers": [3, 4], "image_knn_k": [10, 15, 20, 40], "text_knn_k": [10, 15, 20, 40],
                               "reg_weight": [1e-5, 1e-4], "dropout": [0.0, 0.1], "lr": 1e-3, "lr_decay": 0.96,
                               "cold_path": "none"}},
    # MMRec's SMORE.yaml names (its n_layers is the item-graph layers)
    reference_names={"mmrec": {"n_ui_layers": "num_layers", "n_layers": "item_layers", "cl_loss": "cl_weight",
                               "dropout_rate": "dropout"}},
)
def build_smore(
    dataset: Dataset,
    embedding_dim: EmbeddingDim = 64,
    num_layers: Annotated[
        int, Option("--layers", help="LightGCN layers over the user-item graph (MMRec n_ui_layers, grid 3, 4).", min=0)
    ] = 3,
    item_layers: ItemLayers = 1,
    image_knn_k: Annotated[
        int, Option(help="Neighbours per item in the image graph (grid 10, 15, 20, 40).", min=1)
    ] = 10,
    text_knn_k: Annotated[
        int, Option(help="Neighbours per item in the text graph (grid 10, 15, 20, 40).", min=1)
    ] = 10,
    knn_k: KnnK = None,
    modalities: Modalities = None,
    weighting: Annotated[
        str,
        Option(
            help="Edge values of the modality kNN graphs: cosine (the reference) or binary (FREEDOM's).",
            choices=WEIGHTINGS,
        ),
    ] = "cosine",
    include_self: Annotated[
        bool,
        Option(
            "--include-self/--no-include-self",
            help="Each item is one of its own k neighbours (as the reference's dense top-k).",
        ),
    ] = True,
    dropout: Annotated[
        float,
        Option(
            help="Dropout of the preference gates while training, in [0, 1) (MMRec dropout_rate, grid 0, 0.1).",
            min=0.0,
            max=1.0,
        ),
    ] = 0.0,
    reg_weight: Annotated[
        Reg, Option("--reg", help="L2 weight on the batch's final representations (grid 1e-5, 1e-4).", min=0.0)
    ] = 1e-5,
    cl_weight: Annotated[float, Option(help="Weight of the InfoNCE terms (MMRec cl_loss).", min=0.0)] = 0.01,
    temperature: Annotated[float, Option(help="InfoNCE temperature.", min=0.0, min_open=True)] = 0.2,
    train_features: Annotated[
        bool, Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the reference).")
    ] = True,
    graphs: StoredGraphs = None,
) -> SMORE:
    """SMORE's inputs, from the TRAINING data: D^-1/2 A D^-1/2 of the interactions, per
    modality (default all the dataset has) the normalised top-k cosine graph of the raw
    features with that modality's k, the entry-wise maximum of those graphs (the fusion
    view's graph), and the raw features (projected to --dim by the model).

    MMRec trains SMORE with the learning rate decayed by 0.96 every 50 epochs
    (learning_rate_scheduler [0.96, 50]): ``graphrec train smore`` and ``graphrec tune
    smore`` default to ``--lr-decay 0.96``; from Python, TrainConfig(lr_decay=0.96).

    ``graphs``: stored one-modality kNN graphs (``graphrec build-graph --kind knn
    --modalities M --k K``, K that modality's k, with this ``weighting`` and
    ``include_self``) used for their modalities instead of building them
    (provenance-checked); the fusion view pools them as it pools built ones."""
    check_params(dataset, {"dropout": dropout, "modalities": modalities, "knn_k": knn_k,
                           "image_knn_k": image_knn_k, "text_knn_k": text_knn_k})
    mods = feature_modalities(dataset, modalities)
    ks = modality_knn_k(mods, knn_k, image_knn_k, text_knn_k)
    given = stored_smore_graphs(dataset, graphs, ks, weighting, include_self)
    item_graphs = {m: modality_graph(dataset, m, ks[m], weighting, include_self, given.get(m)) for m in mods}
    fusion = max_pool_graphs(list(item_graphs.values()))
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    features = {m: torch.from_numpy(np.asarray(dataset.item_features[m], dtype=np.float32)) for m in mods}
    return SMORE(
        dataset.n_users,
        dataset.n_items,
        adj,
        {m: to_torch_sparse(g) for m, g in item_graphs.items()},
        to_torch_sparse(fusion),
        features,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        item_layers=item_layers,
        dropout=dropout,
        reg_weight=reg_weight,
        cl_weight=cl_weight,
        temperature=temperature,
        train_features=train_features,
    )
