"""A saved CTR run, loaded again: its model on its samples, its metrics and its click
probabilities (``graphrec evaluate RUN [--predictions FILE]`` for a ``--task ctr`` run).

A CTR run records what rebuilds it: the samples' fingerprint (the samples themselves are
made again from the recorded source with the recorded max history, sample seed and
cold-start split, or read from a stored samples folder), the model and its
hyper-parameters, the item graphs (built kinds are built again from the samples, which
gives the same graphs; stored graph directories are checked against their recorded
checksums) and ``model.pt``, bound to the record by its checksum. :func:`load_ctr_run`
refuses, in one line, samples other than the run's, a changed stored graph, another
run's weights and an interrupted run (which has no test metrics yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from graphrec._csv import write_columns
from graphrec._device import model_device, resolve_device
from graphrec.data.ctr import CTRData
from graphrec.errors import ConfigError, DataError
from graphrec.models.ctr import CTRModel
from graphrec.train.ctr import CTRConfig, build_ctr_model, evaluate_ctr, predict_ctr, resolve_item_graphs, split_tensors
from graphrec.train.record import load_record, load_state

__all__ = ["ctr_run_source", "load_ctr_run", "recorded_config", "reevaluate_ctr", "ctr_predictions",
           "write_predictions", "PREDICTION_COLUMNS"]

#: the columns of :func:`ctr_predictions` (and of ``graphrec evaluate --predictions``)
PREDICTION_COLUMNS = ("split", "user", "item", "label", "probability")


def _ctr_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The record of a finished CTR run (one-line errors otherwise)."""
    from graphrec.train.state import check_finished

    record = load_record(run_dir)
    if record.get("task", "ranking") != "ctr":
        raise ConfigError(f"run {run_dir} trained {record.get('model')} for top-k ranking, not CTR: "
                          "graphrec evaluate reads it without --predictions (graphrec recommend writes its lists)")
    check_finished(record, run_dir)
    return record


def ctr_run_source(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What makes a CTR run's samples again: ``path`` (the recorded ``--data``: a source
    folder or a stored samples folder), ``max_history``, ``sample_seed`` and, under the
    cold-start protocol, ``cold_start`` (fraction) and ``cold_seed``; ``fingerprint`` is
    the samples' recorded fingerprint."""
    record = _ctr_record(run_dir)
    dataset = record.get("dataset") or {}
    meta = dataset.get("samples") or {}
    cold = meta.get("cold_start") or {}
    return {
        "path": dataset.get("path"),
        "max_history": meta.get("max_history"),
        "sample_seed": meta.get("seed"),
        "cold_start": float(cold.get("fraction", 0.0)) if cold else 0.0,
        "cold_seed": int(cold.get("seed", 0)) if cold else 0,
        "fingerprint": dataset.get("samples_fingerprint"),
    }


def _graph_spec(record: Mapping[str, Any]) -> str | None:
    """The run's ``--item-graph``, with stored graph directories made absolute against the
    folder the run was started from (``cwd``), so that the run loads from anywhere."""
    spec = (record.get("item_graph") or {}).get("spec") or "none"
    if spec in ("none", "knn", "cooccur", "both"):
        return None if spec == "none" else spec
    base = Path(record.get("cwd") or ".")
    return ",".join(str(base / part.strip()) for part in spec.split(","))


def load_ctr_run(
    run_dir: str | os.PathLike, data: CTRData, device: str | torch.device = "cpu", progress: bool = False
) -> tuple[dict[str, Any], CTRModel]:
    """A finished CTR run's record and its model with the saved weights, on ``device``, in
    evaluation mode, for ``data``: the samples the run trained on (their fingerprint is checked; make them
    with :func:`ctr_run_source`'s options). The run's built item graphs are built again
    from the samples (``progress``: their bars); stored ones must be unchanged."""
    from graphrec.graphs.store import check_used_graph
    from graphrec.train.run import _load_weights

    record = _ctr_record(run_dir)
    want = (record.get("dataset") or {}).get("samples_fingerprint")
    if want is not None and data.fingerprint() != want:
        raise DataError(f"the samples differ from those run {run_dir} trained on (fingerprint mismatch): pass the "
                        "run's data with --data (the source folder or its stored samples), as recorded")
    state = load_state(run_dir, record=record)
    for entry in (record.get("item_graph") or {}).get("graphs") or []:
        if isinstance(entry, Mapping) and entry.get("path") and entry.get("checksum"):
            path = Path(entry["path"])
            where = path if path.is_absolute() else Path(record.get("cwd") or ".") / path
            check_used_graph(dict(entry, path=str(where)), f"run {run_dir}", "train the run again")
    options = dict((record.get("item_graph") or {}).get("options") or {})
    graphs, _ = resolve_item_graphs(data, _graph_spec(record), progress=progress, **options)
    params = dict(record.get("model_params") or {})
    if record["model"] in ("lr", "fm") and "user_fields" not in params and "user_weight.weight" in state:
        # recorded before LR and FM took the papers' item fields only (user_fields, default
        # False, came with them): its weights say it trained with the user fields
        params["user_fields"] = True
    model = build_ctr_model(record["model"], data, params, graphs)
    _load_weights(model, state, run_dir, record)  # type: ignore[arg-type]
    model.to(resolve_device(device))
    model.eval()
    return record, model


def recorded_config(record: Mapping[str, Any]) -> CTRConfig:
    """The run's training options (its evaluation batch, popularity levels and cold
    threshold among them), without progress bars."""
    return CTRConfig.from_dict(dict(record.get("train_config") or {}, progress=False))


def reevaluate_ctr(
    run_dir: str | os.PathLike, data: CTRData, device: str | torch.device = "cpu", progress: bool = False
) -> dict[str, dict[str, Any]]:
    """``{"valid": ..., "test": ...}``: AUC, GAUC and logloss of the run's model on its
    samples, test with its popularity-level and cold/warm slices, as the run recorded them."""
    record, model = load_ctr_run(run_dir, data, device, progress)
    config = recorded_config(record)
    dev = resolve_device(device)
    return {split: evaluate_ctr(model, data, split, config, dev, slices=split == "test") for split in ("valid", "test")}


def ctr_predictions(
    model: CTRModel, data: CTRData, splits: tuple[str, ...] = ("valid", "test"), device: str | torch.device | None = None,
    batch_size: int = 4096,
) -> dict[str, np.ndarray]:
    """Every sample of ``splits``, in order, with the model's click probability: columns
    :data:`PREDICTION_COLUMNS` (user and item as the data's ids), as arrays; ``device``
    defaults to the model's."""
    dev = model_device(model, device)
    cols: dict[str, list[np.ndarray]] = {c: [] for c in PREDICTION_COLUMNS}
    ds = data.dataset
    for split in splits:
        s = data.samples[split]
        probs = predict_ctr(model, split_tensors(s), dev, batch_size)
        cols["split"].append(np.full(len(s), split, dtype=object))
        cols["user"].append(np.asarray(ds.user_ids)[s.users])
        cols["item"].append(np.asarray(ds.item_ids)[s.items])
        cols["label"].append(s.labels.astype(np.int64))
        cols["probability"].append(probs.astype(np.float64))
    return {c: np.concatenate(v) if v else np.zeros(0) for c, v in cols.items()}


def write_predictions(cols: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """:func:`ctr_predictions`' columns as CSV at ``path`` (a header, then one row per
    sample; ids quoted as the csv module quotes them, probabilities to 9 significant
    digits), written a block of rows at a time (no pandas: not a dependency)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        write_columns(f, {c: cols[c] for c in PREDICTION_COLUMNS})
