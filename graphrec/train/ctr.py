"""Training and evaluation of the click-through-rate (CTR) models.

:func:`fit_ctr` is the one fit loop of every CTR model: binary cross-entropy (plus the
model's own auxiliary losses, :meth:`~graphrec.models.ctr.CTRModel.losses`) with Adam on
shuffled training samples, validation AUC, GAUC and logloss after every epoch, early
stopping after ``patience`` epochs without a better value of the selection metric
(``CTRConfig.valid_metric``: AUC by default, GAUC, or logloss, which is minimised;
:func:`improves`), the best state restored, and the test split evaluated ONCE at the end
(AUC, GAUC, logloss, plus the popularity-level and cold/warm-candidate slices, which are
also reported for validation at the best epoch).
Under the cold-start protocol (:mod:`graphrec.data.ctr`) the cold slice holds exactly
the samples whose candidate is a cold-start item. Everything is seeded by ``config.seed``.

Models with a generator/discriminator pair (GMMF's cross-modal GAN) are trained as in
GMMF's Algorithm 1: the backbone every epoch; the GAN only in epochs after
``gan_start_epoch`` (K), with its own Adam optimisers and learning rate ``gan_lr``,
one discriminator step then one generator step per batch before the backbone step.
The GAN losses are logged per epoch (``None`` before K).

:func:`run_ctr` builds the model (optionally graph-enriched, :func:`resolve_item_graphs`),
fits it, and writes a run directory (``record.json``, ``model.pt`` and, for models with
modality weights, ``attention.npz`` with the per-sample weights on the test split).
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import json
import math
import os
import time
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

import graphrec
from graphrec._atomic import atomic_dir, check_output
from graphrec._device import model_device, resolve_device
from graphrec.data.ctr import (
    CTRData, CTRSplit, check_training_samples, cold_mask, popularity_levels, property_codes,
)
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.metrics.ctr import auc, ctr_metrics
from graphrec.models.ctr import CTR_MODELS, CTRBatch, CTRModel, CTRSchema
from graphrec.models.ctr.base import item_tables_once
from graphrec.train.fit import divergence_error, keeps_global_rngs, scalar_loss, seed_everything
from graphrec.train.optim import adam
from graphrec._progress import tracked
from graphrec.train.progress import epoch_line
from graphrec.train.record import RECORD, WEIGHTS, checkpoint_entry, environment, save_tensors
from graphrec.train.state import (
    FINISHED,
    StateKeeper,
    TrainState,
    open_run_dir,
    check_same_run,
    keep_interrupted,
    load_resume_state,
    signals_held,
)

__all__ = [
    "CTRConfig",
    "CTRFitResult",
    "ctr_schema",
    "build_ctr_model",
    "takes_item_graphs",
    "check_ctr_model",
    "item_graph_parts",
    "resolve_item_graphs",
    "split_tensors",
    "predict_ctr",
    "evaluate_ctr",
    "fit_ctr",
    "run_ctr",
    "save_ctr_run",
    "ATTENTION_FILE",
    "METRIC_DIRECTIONS",
    "SELECTION_METRIC",
    "improves",
    "worst_score",
    "recorded_params",
    "recorded_data_path",
]

ATTENTION_FILE = "attention.npz"
GRAPH_CHOICES = ("none", "knn", "cooccur", "both")
#: the backbone optimisers of :class:`CTRConfig` (GMMF's paper: Adam; MARN's: AdaGrad)
OPTIMIZERS = ("adam", "adagrad")
#: AdaGrad's starting accumulator (the per-parameter sum of squared gradients) of the
#: ``"adagrad"`` backbone optimiser: TensorFlow's default (``tf.compat.v1.train.AdagradOptimizer``
#: and Keras' ``Adagrad``: ``initial_accumulator_value=0.1``), not PyTorch's 0. MARN's paper
#: says only "AdaGrad (Duchi et al., 2011) ... learning rate of 0.1" and names no framework;
#: the reading (docs/models/ctr.md, Optimisers) is that of the TensorFlow code its CTR line
#: (DIN, Zhou et al. 2018) was released in. With PyTorch's 0 the first step moves every
#: parameter with a gradient by about +-lr (0.1), whatever the gradient's size.
ADAGRAD_INITIAL_ACCUMULATOR = 0.1
#: the validation metrics CTR training can select its best epoch (and stop early) on
#: (``CTRConfig.valid_metric``), each with its direction in Optuna's words: AUC and GAUC
#: (per-user AUC, the papers' "AUC") are maximised, logloss (calibration) is minimised
METRIC_DIRECTIONS: dict[str, str] = {"auc": "maximize", "gauc": "maximize", "logloss": "minimize"}
#: the selection metric of a run that names none (every run recorded before the choice)
SELECTION_METRIC = "auc"


def improves(metric: str, score: float, best: float) -> bool:
    """Whether validation ``metric`` (a :data:`METRIC_DIRECTIONS` key) ``score`` is better
    than ``best``: higher AUC or GAUC, lower logloss. A NaN score (a split without both
    classes) never improves; any number improves on :func:`worst_score`."""
    return score < best if METRIC_DIRECTIONS[metric] == "minimize" else score > best


def _undefined_metric(metric: str) -> str:
    """The error of a selection metric the validation samples leave undefined: AUC with
    one class only, GAUC with no user having both (logloss, always defined, is not)."""
    why = ("no validation user has both a click and a non-click" if metric == "gauc"
           else "the validation samples hold one class only")
    return (f"validation {metric} is undefined on these samples ({why}), so no epoch could be selected on it: "
            "train with --metric logloss (or make samples with both classes)")


def worst_score(metric: str) -> float:
    """The best score before any epoch: the one every finite ``metric`` value improves on
    (-inf for a maximised metric, +inf for logloss)."""
    return math.inf if METRIC_DIRECTIONS[metric] == "minimize" else -math.inf


@dataclass(frozen=True)
class CTRConfig:
    """Options of :func:`fit_ctr` (frozen: ``dataclasses.replace(config, lr=0.01)`` makes a
    changed copy, checked again).

    Attributes:
        epochs: maximum number of epochs.
        batch_size: samples per step.
        lr: learning rate of the backbone's optimiser.
        weight_decay: the backbone optimiser's weight decay (L2).
        optimizer: the backbone's optimiser, ``"adam"`` (default) or ``"adagrad"``
            (MARN's paper: AdaGrad, lr 0.1, batches of 32; its accumulator starts at
            TensorFlow's 0.1, :data:`ADAGRAD_INITIAL_ACCUMULATOR`); the GAN's two are
            Adam (``gan_lr``) either way.
        patience: stop after this many epochs without a better validation ``valid_metric``.
        seed: seeds initialisation and shuffling.
        gan_start_epoch: K of GMMF's Algorithm 1: the GAN is trained in epochs > K.
        gan_lr: Adam learning rate of the generator and discriminator (GMMF: 1e-5).
        eval_batch_size: samples per prediction batch.
        popularity_levels: number of popularity levels of the test slices (MARN: 10).
        cold_threshold: without a cold-start split, a candidate with train frequency below
            this is cold (with one, the cold-start items are).
        valid_metric: the validation metric that selects the best epoch and stops early
            (:data:`METRIC_DIRECTIONS`): ``"auc"`` (default), ``"gauc"`` (per-user AUC) or
            ``"logloss"`` (minimised: selects calibrated click probabilities).
        progress: show progress bars.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    patience: int = 3
    seed: int = 0
    gan_start_epoch: int = 1
    gan_lr: float = 1e-5
    eval_batch_size: int = 4096
    popularity_levels: int = 10
    cold_threshold: int = 1
    valid_metric: str = SELECTION_METRIC
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "eval_batch_size", "popularity_levels", "cold_threshold"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "gan_lr"):
            if not 0 < getattr(self, name) < math.inf:  # also refuses NaN
                raise ConfigError(f"{name} must be positive and finite (e.g. 0.001), got {getattr(self, name)}")
        if not 0 <= self.weight_decay < math.inf:  # also refuses NaN (torch's optimisers: a traceback)
            raise ConfigError(f"weight_decay must be >= 0 and finite (e.g. 1e-5; 0: none), got {self.weight_decay}")
        if self.gan_start_epoch < 0:
            raise ConfigError(f"gan_start_epoch must be >= 0, got {self.gan_start_epoch}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)} (--optimizer)")
        if not isinstance(self.valid_metric, str) or self.valid_metric not in METRIC_DIRECTIONS:
            raise ConfigError(f"valid_metric {self.valid_metric!r} is not one of {', '.join(METRIC_DIRECTIONS)} "
                              "(the validation metric that selects the best epoch; logloss is minimised)")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "CTRConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown CTR training option(s) {', '.join(unknown)}: valid are {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CTRFitResult:
    """What :func:`fit_ctr` returns (the model is left in its best state)."""

    best_epoch: int
    best_valid: dict[str, float]
    test: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


# ---------------------------------------------------------------------- model building
def ctr_schema(data: CTRData) -> CTRSchema:
    """The tensors a CTR model is built from (:meth:`CTRSchema.from_data`)."""
    return CTRSchema.from_data(data)


def item_graph_parts(item_graph: str | None) -> list[str | Path]:
    """The graphs an ``item_graph`` option names (:func:`resolve_item_graphs`): built
    kinds (``"knn"``, ``"cooccur"``) and stored graph directories, in order; none for
    ``None``/``"none"``. A kind must stand alone (``"both"`` is knn + cooccur); a
    comma-separated list takes directories only. Anything else is a one-line
    :class:`ConfigError`."""
    if item_graph is None or item_graph == "none":
        return []
    if item_graph in GRAPH_CHOICES:
        return ["knn", "cooccur"] if item_graph == "both" else [item_graph]
    parts: list[str | Path] = []
    listed = item_graph.split(",")
    for part in listed:
        path = Path(part.strip())
        if path.exists():
            parts.append(path)
        elif len(listed) == 1:
            raise ConfigError(f"--item-graph {part!r} is neither none, knn, cooccur, both (knn + cooccur) nor an "
                              "existing graph directory")
        elif part.strip() in GRAPH_CHOICES:
            raise ConfigError(f"--item-graph {item_graph!r}: a comma-separated list takes stored graph directories, "
                              f"and {part.strip()!r} is a graph kind: pass the kind alone (--item-graph both is knn "
                              "+ cooccur), or the directories of graphs stored with `graphrec build-graph`")
        else:
            raise ConfigError(f"--item-graph {item_graph!r}: {part.strip()!r} is not an existing graph directory (a "
                              "comma-separated list takes stored graph directories)")
    return parts


def resolve_item_graphs(
    data: CTRData,
    item_graph: str | None,
    *,
    k: int = 10,
    cooccur_top_k: int | None = 20,
    modalities: Sequence[str] | None = None,
    progress: bool = False,
) -> tuple[list[Tensor] | None, list[dict[str, Any]]]:
    """The normalised item graphs for graph enrichment, and their provenance records.

    ``item_graph``: ``None``/``"none"`` (no enrichment); ``"knn"`` (top-``k`` cosine
    graph of the early-fused content features), ``"cooccur"`` (co-interactions of the
    TRAINING behaviours, top ``cooccur_top_k`` per item) or ``"both"``, built with
    :func:`graphrec.graphs.build_item_graph` from ``data.dataset`` (whose train split is
    :math:`x_1 .. x_{N-2}`); or paths (comma-separated) of stored graphs
    (``graphrec build-graph --data SAMPLES/dataset``), refused unless their provenance
    matches ``data.dataset``. Each graph is made symmetric and normalised
    :math:`D^{-1/2} A D^{-1/2}`.
    """
    from graphrec.graphs import GraphSpec, build_item_graph, load_graph, normalize_adjacency
    from graphrec.graphs.store import GraphMismatch
    from graphrec.nn import to_torch_sparse

    parts = item_graph_parts(item_graph)
    if not parts:
        return None, []
    _check_graph_features(parts, item_graph, data.dataset.item_features)
    mats, records = [], []
    for part in parts:
        if isinstance(part, str):  # a kind, built here
            spec = GraphSpec(
                kind=part, k=k, modalities=None if modalities is None else tuple(modalities),
                symmetric=True, cooccur_top_k=cooccur_top_k,
            )
            built = build_item_graph(data.dataset, spec, progress=progress)
            mats.append(built.graph)
            records.append(built.record.to_dict())
        else:  # a stored graph directory
            try:
                g, rec = load_graph(part, dataset=data.dataset)
            except GraphMismatch as e:
                if data.dataset.source is not None:  # samples read from a folder: the fix names it
                    raise
                raise GraphMismatch(
                    e.problem,
                    "build the graph from the samples' own dataset: store the samples with --samples DIR, "
                    "then `graphrec build-graph --data DIR/dataset ...` (CTR samples re-split the source)",
                ) from None
            mats.append(g)
            records.append(dict(rec.to_dict(), path=str(part)))
    tensors = []
    for g in mats:
        g = sp.csr_matrix(g.maximum(g.T))
        g = sp.csr_matrix(g - sp.diags(g.diagonal()))
        g.eliminate_zeros()
        tensors.append(to_torch_sparse(normalize_adjacency(g, "sym")))
    return tensors, records


def takes_item_graphs(name: str) -> bool:
    """Whether registered CTR model ``name`` takes item graphs (``item_graphs``: an item
    ID embedding to enrich); LR does not, and :func:`build_ctr_model` refuses them."""
    from graphrec.train.registry import get_model

    cls = typing.get_type_hints(get_model(name, "ctr").build).get("return")
    return not isinstance(cls, type) or "item_graphs" in inspect.signature(cls.__init__).parameters


def build_ctr_model(
    name: str,
    data: CTRData | CTRSchema,
    params: Mapping[str, Any] | None = None,
    item_graphs: Sequence[Tensor] | None = None,
) -> CTRModel:
    """Construct registered CTR model ``name`` (:mod:`graphrec.train.builders.ctr`) with
    its declared hyper-parameters or any other constructor argument in ``params``
    (unknown keys are errors) and optional graph enrichment."""
    from graphrec.train.registry import check_built, get_model, model_params

    entry = get_model(name, "ctr")
    cls = typing.get_type_hints(entry.build).get("return")
    schema = data if isinstance(data, CTRSchema) else ctr_schema(data)
    params = dict(params or {})
    sig = inspect.signature(cls.__init__) if isinstance(cls, type) else None
    if sig is not None:
        if item_graphs and "item_graphs" not in sig.parameters:
            raise ConfigError(f"{name} has no item ID embedding to enrich: drop --item-graph")
        allowed = {p for p in sig.parameters if p not in ("self", "schema", "item_graphs")}
        allowed |= {p.name for p in entry.params if p.option.target == "model"}
        unknown = sorted(set(params) - allowed)
        train = [k for k in unknown if k in {p.name for p in entry.train_params}]
        if train:  # declared with the model (graphrec models NAME --params) but the fit loop's
            given = ", ".join(f"{k}={params[k]!r}" for k in train)
            what = "is a training option" if len(train) == 1 else "are training options"
            raise ConfigError(f"{', '.join(train)} {what} of {name} (its fit loop's), not model parameters: pass "
                              f"CTRConfig({given}) to run_ctr / fit_ctr")
        if unknown:
            raise ConfigError(f"{name} has no option(s) {', '.join(unknown)}: valid are {', '.join(sorted(allowed)) or 'none'}")
    params = model_params(name, params, task="ctr")
    if item_graphs:
        params["item_graphs"] = list(item_graphs)
    model = check_built(entry, entry.build(schema, **params))
    if item_graphs:
        _check_enriched(name, model)
    return model


def _check_enriched(name: str, model: CTRModel) -> None:
    """Refuse item graphs the built model would not use (recorded but without effect)."""
    from graphrec.models.ctr.base import ItemIDEncoder

    props = [m.propagation for m in model.modules() if isinstance(m, ItemIDEncoder) and m.propagation is not None]
    if not props:
        mods = getattr(model, "modalities", None)
        if mods is not None and "id" not in mods:  # MARN without its ID modality
            raise ConfigError(f"{name} with --modalities {','.join(mods)} has no item ID embedding to enrich: "
                              "drop --item-graph or add id to --modalities")
        raise ConfigError(f"{name} has no item ID embedding to enrich: drop --item-graph")
    if all(p.num_layers == 0 for p in props):
        raise ConfigError("--graph-layers 0 propagates nothing over the item graph: drop --item-graph or pass "
                          "--graph-layers 1 or more")
    if getattr(model, "n_fields", 2) < 2:  # FM with the item ID its one field: no pair, no second-order term
        raise ConfigError(f"{name} has one field on these data, the item ID (no item side field; the user fields "
                          "are off, as in the papers), so its item vector enters no pair and an item graph would "
                          "change nothing: drop --item-graph or pass --user-fields")


def _check_graph_features(parts: Sequence[str | Path], item_graph: str | None, features: Mapping[str, Any]) -> None:
    """A kNN graph (``"knn"``, ``"both"``) needs the items' content features: without
    any, a one-line :class:`~graphrec.errors.DataError` that names the CTR option's fix
    (the graph builder's own message names ``graphrec build-graph``'s)."""
    if "knn" in parts and not features:
        raise DataError(f"--item-graph {item_graph} builds a kNN graph of the items' content features, and these "
                        "data have none: pass --item-graph cooccur (the graph of the training co-interactions), or "
                        "data with item features")


def check_ctr_model(
    data: CTRData | CTRSchema, name: str, params: Mapping[str, Any] | None = None, item_graph: str | None = None
) -> None:
    """Refuse, before any graph is built or sample stored, what :func:`run_ctr` would:
    options model ``name`` refuses on these samples (e.g. a modality they lack), an
    ``item_graph`` that names no graph (:func:`item_graph_parts`), graph layers below 0,
    item graphs the model would not use (no item ID embedding, 0 layers), and a kNN
    graph of data without item features. Builds the model once on identity placeholder
    graphs (cheap: no graph is built or read)."""
    from graphrec.nn import to_torch_sparse

    schema = data if isinstance(data, CTRSchema) else ctr_schema(data)
    eye = sp.identity(schema.n_items, dtype=np.float32, format="csr")
    parts = item_graph_parts(item_graph)
    placeholders = [to_torch_sparse(eye) for _ in parts]
    build_ctr_model(name, schema, params, placeholders or None)
    _check_graph_features(parts, item_graph, schema.item_features)


# ---------------------------------------------------------------------- batches
def split_tensors(split: CTRSplit) -> dict[str, Tensor]:
    """A split as CPU tensors that share the split's memory: no copy of the split is
    made (the history stays int32, the time deltas float32, up to the split's longest
    history; :func:`_batch` converts one batch at a time)."""
    hist = split.history
    width = max(int((hist >= 0).sum(1).max(initial=0)), 1) if hist.ndim == 2 else 1
    out = {
        "users": torch.from_numpy(np.asarray(split.users, dtype=np.int64)),
        "items": torch.from_numpy(np.asarray(split.items, dtype=np.int64)),
        "history": torch.from_numpy(np.asarray(hist, dtype=np.int32)[:, :width]),
        "labels": torch.from_numpy(np.asarray(split.labels, dtype=np.float32)),
    }
    if split.hist_delta is not None:
        out["hist_delta"] = torch.from_numpy(np.asarray(split.hist_delta, dtype=np.float32)[:, :width])
    return out


def _batch(t: Mapping[str, Tensor], idx: Tensor | slice, device: torch.device) -> CTRBatch:
    """The samples ``idx`` of :func:`split_tensors`' tensors as a batch: history as long
    and behaviour properties (:func:`~graphrec.data.ctr.property_codes`) computed for
    these rows only."""
    hist = t["history"][idx]
    # drop all-padding columns at the end of the batch (shorter histories, faster steps)
    width = int((hist >= 0).sum(1).max()) if len(hist) else 0
    width = max(width, 1)
    hist = hist[:, :width]
    delta = t["hist_delta"][idx][:, :width].numpy() if "hist_delta" in t else None
    props = torch.from_numpy(property_codes(hist.numpy(), delta))
    b = CTRBatch(t["users"][idx], t["items"][idx], hist.long(), props, t["labels"][idx])
    return b.to(device) if device.type != "cpu" else b


@torch.no_grad()
def predict_ctr(
    model: CTRModel, tensors: Mapping[str, Tensor], device: torch.device | str | None = None, batch_size: int = 4096
) -> np.ndarray:
    """Click probabilities of every sample of a split (in order), on ``device`` (default:
    the model's)."""
    device = model_device(model, device)
    model.eval()
    n = len(tensors["users"])
    out = []
    with item_tables_once(model):  # a graph-propagated item table is a constant here: once per call
        for s in range(0, n, batch_size):
            out.append(model.predict(_batch(tensors, slice(s, min(n, s + batch_size)), device)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _slices(data: CTRData, split: str, probs: np.ndarray, config: CTRConfig) -> dict[str, dict[str, float]]:
    s = data.samples[split]
    out: dict[str, dict[str, float]] = {}
    levels = popularity_levels(data, split, config.popularity_levels)
    for lv in range(config.popularity_levels):
        sel = levels == lv
        out[f"level_{lv}"] = {"auc": auc(s.labels[sel], probs[sel]), "samples": int(sel.sum()), "positives": int(s.labels[sel].sum())}
    cold = cold_mask(data, split, config.cold_threshold)
    out["cold"] = {"auc": auc(s.labels[cold], probs[cold]), "samples": int(cold.sum()), "positives": int(s.labels[cold].sum())}
    warm = ~cold
    out["warm"] = {"auc": auc(s.labels[warm], probs[warm]), "samples": int(warm.sum()), "positives": int(s.labels[warm].sum())}
    return out


def evaluate_ctr(
    model: CTRModel,
    data: CTRData,
    split: str,
    config: CTRConfig | None = None,
    device: torch.device | str | None = None,
    slices: bool = False,
    tensors: Mapping[str, Tensor] | None = None,
) -> dict[str, Any]:
    """AUC, GAUC and logloss of ``split`` (and, with ``slices``, per popularity level
    and for cold/warm candidates)."""
    config = config or CTRConfig(progress=False)
    t = tensors if tensors is not None else split_tensors(data.samples[split])
    probs = predict_ctr(model, t, device, config.eval_batch_size)
    s = data.samples[split]
    out: dict[str, Any] = ctr_metrics(s.users, s.labels, probs)
    if slices:
        out["slices"] = _slices(data, split, probs, config)
    return out


# ---------------------------------------------------------------------- fit loop
def fit_ctr(
    model: CTRModel,
    data: CTRData,
    config: CTRConfig,
    device: torch.device | str | None = None,
    log: Callable[[str], None] | None = None,
    keeper: StateKeeper | None = None,
) -> CTRFitResult:
    """Train ``model`` on the training samples, select on validation ``config.valid_metric``
    (AUC, GAUC or logloss: :func:`improves`), test once, on ``device`` (default: the
    model's own).

    With a ``keeper`` (:mod:`graphrec.train.state`), every epoch starts by storing the
    loop's state in it (weights, the three optimisers, every generator, the best state
    and history so far), so that after an interrupt it holds the last completed epoch; a
    keeper made with a saved state resumes from it, to the numbers of an uninterrupted run.

    ``log`` receives one line per epoch (every epoch validates;
    :func:`graphrec.train.progress.epoch_line`: loss, the validation selection metric,
    best so far, seconds); None (the default) prints nothing.
    """
    device = model_device(model, device)
    model.to(device)
    gen = torch.Generator().manual_seed(config.seed)
    train = split_tensors(data.samples["train"])
    valid = split_tensors(data.samples["valid"])
    n = len(train["users"])
    if n == 0:
        check_training_samples(data, str(data.meta.get("source") or "the data"))
    n_batches = -(-n // config.batch_size)

    gan = model.gan_parameters()
    gan_ids = set()
    opt_g = opt_d = None
    if gan is not None:
        g_params, d_params = gan
        gan_ids = {id(p) for p in g_params} | {id(p) for p in d_params}
        opt_g = adam(g_params, lr=config.gan_lr)
        opt_d = adam(d_params, lr=config.gan_lr)
    backbone = [p for p in model.parameters() if id(p) not in gan_ids]
    if config.optimizer == "adagrad":
        opt = torch.optim.Adagrad(backbone, lr=config.lr, weight_decay=config.weight_decay,
                                  initial_accumulator_value=ADAGRAD_INITIAL_ACCUMULATOR)
    else:
        opt = adam(backbone, lr=config.lr, weight_decay=config.weight_decay)

    metric = config.valid_metric
    best_score, best_epoch, best_state, best_valid = worst_score(metric), 0, None, {}
    collapsed = False  # noted once
    history: list[dict[str, Any]] = []
    bad, stopped = 0, False
    train_time = eval_time = 0.0
    total_steps = config.epochs * n_batches
    optimizers = {"generator": opt_g, "discriminator": opt_d}
    kept = None if keeper is None else keeper.state
    if kept is not None:  # resume an interrupted run (graphrec.train.state)
        kept.restore(model, opt, None, gen, optimizers)
        best_score, best_epoch, best_state, best_valid = (kept.best_score, kept.best_epoch,
                                                        kept.best_state, kept.best_valid)
        history, bad, (train_time, eval_time, _) = list(kept.history), kept.bad_evals, kept.clock
    first = 1 if kept is None else kept.epoch + 1
    kept = None  # the keeper's copy alone: renew releases it before the next capture
    step = (first - 1) * n_batches
    bar = tracked(range(first, config.epochs + 1), config.progress, desc=f"train {type(model).__name__}",
                  unit="epoch", lines=False, leave=False)  # in a log the epoch lines say it
    for epoch in bar:
        if keeper is not None:  # the state an interrupt in this epoch keeps (one copy at a time)
            keeper.renew(lambda: TrainState.capture(
                epoch - 1, model, opt, None, gen, best_epoch=best_epoch, best_score=best_score, best_valid=best_valid,
                best_state=best_state, bad_evals=bad, history=history, clock=(train_time, eval_time, len(history)),
                optimizers=optimizers))
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        gan_on = gan is not None and epoch > config.gan_start_epoch
        d_sum = g_sum = 0.0
        order = torch.randperm(n, generator=gen)
        batches = tracked(range(n_batches), config.progress and n_batches > 50, desc=f"epoch {epoch}",
                          unit="batch", leave=False)
        for b in batches:
            batch = _batch(train, order[b * config.batch_size : (b + 1) * config.batch_size], device)
            model.set_progress(step / max(total_steps, 1))
            step += 1
            if gan_on:
                assert opt_d is not None and opt_g is not None
                condition = model.gan_condition(batch)  # unchanged by the D step: shared
                d_loss = model.discriminator_loss(batch, condition)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_loss = model.generator_loss(batch, condition)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                d_sum += float(d_loss.detach())
                g_sum += float(g_loss.detach())
            parts = model.losses(batch)
            loss = scalar_loss(parts.get("loss") if isinstance(parts, dict) else parts, model, "losses()['loss']")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        dt = time.perf_counter() - t0
        train_time += dt
        row: dict[str, Any] = {"epoch": epoch}
        row.update({k: v / n_batches for k, v in sums.items()})
        if gan is not None:
            row["gan_d_loss"] = d_sum / n_batches if gan_on else None
            row["gan_g_loss"] = g_sum / n_batches if gan_on else None
        row["train_seconds"] = dt
        for k in list(sums) + (["gan_d_loss", "gan_g_loss"] if gan_on else []):
            if not np.isfinite(row[k]):
                raise divergence_error(k, row[k], epoch, data.dataset.item_features, "--lr (or --gan-lr)")
        logged = model.log_values()
        if logged:
            row["model"] = logged
        t1 = time.perf_counter()
        v = evaluate_ctr(model, data, "valid", config, device, slices=True, tensors=valid)
        et = time.perf_counter() - t1
        eval_time += et
        row["valid"] = {k: x for k, x in v.items() if k != "slices"}  # slices: best epoch only
        history.append(row)
        if metric != "logloss" and not np.isfinite(v[metric]):  # the labels decide it: undefined every epoch
            raise DataError(_undefined_metric(metric))
        if v["auc"] == 0.5 and not collapsed:  # one probability for every sample: nothing ranks
            collapsed = True
            warnings.warn(
                f"epoch {epoch}: the model gives every validation sample the same probability (AUC 0.5): it has "
                "collapsed to a constant, e.g. a --lr too large for its optimiser; the best epoch before it is kept",
                GraphrecNote, stacklevel=2,
            )
        if improves(metric, v[metric], best_score):
            best_score, best_epoch, best_valid = v[metric], epoch, v
            best_state = copy.deepcopy(model.state_dict())
            bad = 0
        else:
            bad += 1
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{row['loss']:.4f}", **{metric: f"{v[metric]:.4f}"}, best=best_epoch)
        if log is not None:
            log(epoch_line(epoch, config.epochs, row["loss"], metric, v[metric], best_score, best_epoch, dt, et))
        if bad >= config.patience:
            stopped = True
            break
    if hasattr(bar, "close"):
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    t2 = time.perf_counter()
    test = evaluate_ctr(model, data, "test", config, device, slices=True)
    return CTRFitResult(
        best_epoch=best_epoch,
        best_valid=best_valid,
        test=test,
        history=history,
        timings={
            "epochs": len(history),
            "train_seconds": train_time,
            "seconds_per_epoch": train_time / max(len(history), 1),
            "eval_seconds_per_pass": eval_time / max(len(history), 1),
            "test_seconds": time.perf_counter() - t2,
        },
        stopped_early=stopped,
    )


# ---------------------------------------------------------------------- runs
@torch.no_grad()
def modality_attention(
    model: CTRModel, data: CTRData, split: str = "test", device: torch.device | str | None = None, batch_size: int = 4096
) -> dict[str, np.ndarray] | None:
    """Per-sample modality weights of ``split`` (None when the model has none)."""
    device = model_device(model, device)
    t = split_tensors(data.samples[split])
    n = len(t["users"])
    model.eval()
    names, parts = None, []
    with item_tables_once(model):  # the graph-propagated item tables: once, not per batch
        for s in range(0, n, batch_size):
            res = model.modality_attention(_batch(t, slice(s, min(n, s + batch_size)), device))
            if res is None:
                return None
            names, w = res
            parts.append(w.float().cpu())
    if names is None:
        return None
    sp_ = data.samples[split]
    return {
        "modalities": np.asarray(names, dtype=str),
        "weights": torch.cat(parts).numpy(),
        "users": sp_.users,
        "items": sp_.items,
        "labels": sp_.labels,
        "item_ids": data.dataset.item_ids[sp_.items],
    }


def save_ctr_run(
    out: str | os.PathLike,
    record: dict[str, Any],
    state_dict: Mapping[str, Tensor],
    attention: Mapping[str, np.ndarray] | None = None,
    overwrite: bool = True,
    *,
    claimed: bool = False,
    fallback: bool = False,
) -> Path:
    """``record.json``, ``model.pt`` (and ``attention.npz``) written atomically; the
    record's ``checkpoint`` entry binds the weights to it (:mod:`graphrec.train.record`).
    An existing ``out`` is replaced only with ``overwrite``; ``claimed`` and ``fallback``
    as in :func:`graphrec.train.record.save_run`. Returns the folder written."""
    out = Path(out)
    placed: list[Path] = []
    with atomic_dir(out, overwrite=overwrite, claimed=claimed, fallback=fallback, placed=placed) as tmp:
        save_tensors({k: v.detach().cpu() for k, v in state_dict.items()}, tmp / WEIGHTS)
        record["checkpoint"] = checkpoint_entry(tmp / WEIGHTS, record)
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=_jsonable))
        if attention is not None:
            np.savez_compressed(tmp / ATTENTION_FILE, **attention)
    return placed[0]


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _finite(obj: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def recorded_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """CTR model ``name``'s hyper-parameters ``params`` as a run builds and records them,
    the same from Python as from the command line: a string given to an option that the
    command line reads as text and converts (``modalities="image,text"`` becomes
    ``["image", "text"]``, as ``--modalities image,text`` does; an empty or repeated name is
    a one-line :class:`ConfigError`) is converted alike, and tuples become lists (JSON)."""
    from graphrec.train.registry import get_model

    convert = {p.name: p.option.to_value for p in get_model(name, "ctr").params
               if p.option.to_value is not None and p.option.cli_type is not None}
    out: dict[str, Any] = {}
    for key, value in dict(params or {}).items():
        if isinstance(value, str) and key in convert:
            value = convert[key](value)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def recorded_data_path(data: CTRData, data_path: str | os.PathLike | None = None) -> str | None:
    """What a CTR run records as its ``--data``, the folder ``graphrec evaluate`` and
    ``graphrec predict`` make its samples again from: ``data_path`` where given; else the
    samples folder ``data`` was read from (:meth:`CTRData.load`), or else the source folder
    it was built from (``data.meta["source"]``, :func:`~graphrec.data.ctr.load_ctr_source`)
    while it exists; None for samples built in memory (the commands then ask for
    ``--data``)."""
    if data_path is not None:
        return str(data_path)
    origin = data.dataset.source
    if origin is not None and (Path(origin["path"]).parent / "ctr.json").is_file():
        return str(Path(origin["path"]).parent)
    source = data.meta.get("source")
    if isinstance(source, str) and source and Path(source).exists():
        return source
    return None


@keeps_global_rngs  # it seeds them: a caller's draws after it go on as without it
def run_ctr(
    data: CTRData,
    model_name: str,
    params: Mapping[str, Any] | None,
    config: CTRConfig,
    *,
    device: str | torch.device = "cpu",
    item_graph: str | None = None,
    graph_options: Mapping[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    command: str | None = None,
    claimed: bool = False,
    on_saved: Callable[[Path], None] | None = None,
) -> tuple[dict[str, Any], CTRModel]:
    """Seed, build (with graph enrichment when asked), fit, and record a CTR run.

    ``params`` are built and recorded as the command line gives them
    (:func:`recorded_params`: ``{"modalities": "image,text"}`` as ``["image", "text"]``);
    ``data_path`` is recorded as the command records ``--data``, and left out, the folder
    ``data`` came from (:func:`recorded_data_path`), so ``graphrec evaluate`` finds it.

    ``out`` is checked before anything is built or trained: an existing ``out`` is
    replaced only with ``overwrite`` and only when it holds an earlier run.

    With ``out``, an interrupt during training (Ctrl-C: :class:`KeyboardInterrupt`)
    keeps the best state so far in ``out``, as a run marked interrupted (no test
    metrics, no ``attention.npz``: the test split is not read), and raises
    :class:`~graphrec.train.state.RunInterrupted`; ``resume=True`` continues the
    interrupted run in ``out`` (the same model, hyper-parameters, training options,
    samples and item graph, else a one-line :class:`ConfigError`) to the numbers an
    uninterrupted run gives (:mod:`graphrec.train.state`). ``command`` (the
    ``graphrec ...`` line that started the run) is recorded; the resume command an
    interrupt names is made from it. Finished training is never discarded: an ``out``
    that appeared while it trained is kept, the run written beside it (``OUT-2``);
    ``claimed`` and ``on_saved`` as in :func:`graphrec.train.run.run_training`; ``log``
    receives the fit loop's line per epoch (:func:`fit_ctr`; None: no line)."""
    from graphrec.train.run import _provenance, identity_defaults

    device = resolve_device(device)  # "auto" or CUDA where there is none: one line, before the run folder
    previous = open_run_dir(
        out, overwrite, resume,
        lambda o, ow: None if claimed else check_output(o, ow, option="--out", marker=RECORD, what="run directory"),
    )
    graph_options = dict(graph_options or {})
    params = recorded_params(model_name, params)
    record: dict[str, Any] = {
        "graphrec_version": graphrec.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task": "ctr",
        "model": model_name,
        "model_params": params,
        "item_graph": {"spec": item_graph or "none", "options": graph_options, "graphs": []},
        "train_config": config.to_dict(),
        "dataset": {
            "path": recorded_data_path(data, data_path),
            "name": data.dataset.name,
            "samples_fingerprint": data.fingerprint(),
            "dataset_fingerprint": data.dataset.fingerprint(),
            "samples": dict(data.meta),
            "stats": data.stats(),
        },
        "device": str(device),
        "environment": environment(device),
    }
    keeper = None if out is None else StateKeeper()
    if previous is not None:
        from graphrec.graphs.store import used_graph

        # the stored graphs by their checksums (built kinds are made from the samples, compared already)
        stored = [used_graph(p) for p in item_graph_parts(item_graph) if not isinstance(p, str)]
        identity = dict(record, item_graph=dict(record["item_graph"], graphs=stored))
        check_same_run(previous, out, identity, identity_defaults(model_name, config, "ctr"))  # type: ignore[arg-type]
        keeper = StateKeeper(load_resume_state(out, previous))  # type: ignore[arg-type]
    provenance = _provenance(command, previous, keeper, device)
    check_ctr_model(data, model_name, params, item_graph)  # before the graphs are built
    seed_everything(config.seed)
    t0 = time.perf_counter()
    # the graph build (minutes on large catalogues) shows progress unless the run is quiet
    graphs, graph_records = resolve_item_graphs(data, item_graph, progress=config.progress, **graph_options)
    record["item_graph"]["graphs"] = graph_records
    seed_everything(config.seed)
    model = build_ctr_model(model_name, data, params, graphs)
    build_seconds = time.perf_counter() - t0
    try:
        result = fit_ctr(model, data, config, device, log=log, keeper=keeper)
    except KeyboardInterrupt:
        if keeper is None or keeper.state is None:
            raise
        result = None  # kept below, once the interrupted frames (and their progress bar) are released
    if result is None:
        kept = keeper.state  # type: ignore[union-attr]
        record.update(provenance, timings={"build_seconds": build_seconds})
        raise keep_interrupted(out, record, kept, overwrite=overwrite or resume,  # type: ignore[arg-type]
                               claimed=claimed)
    record.update(
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        best_valid=result.best_valid,
        test=result.test,
        timings=dict(result.timings, build_seconds=build_seconds),
        history=result.history,
    )
    record.update(provenance, status=FINISHED)
    record = _finite(record)
    if out is not None:
        att = modality_attention(model, data, "test", device, config.eval_batch_size)
        with signals_held():  # a Ctrl-C now waits for the run directory
            saved = save_ctr_run(out, record, model.state_dict(), att, overwrite=overwrite or resume,
                                 claimed=claimed, fallback=True)
        if on_saved is not None:
            on_saved(saved)
    return record, model
