"""High-level training API: build, fit, record; and re-evaluation of a saved run.

>>> from graphrec.data import Dataset
>>> from graphrec.train import TrainConfig, run_training
>>> ds = Dataset.load("data/lfm2k")                                   # doctest: +SKIP
>>> record, model = run_training(ds, "lightgcn", {"num_layers": 2},
...                              TrainConfig(epochs=50), out="runs/lfm")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from pathlib import Path
from typing import Any, Mapping

import torch

import graphrec
from graphrec.data import Dataset, cold_start
from graphrec.errors import DataError
from graphrec.models import Recommender
from graphrec.train.builders import build_model, model_params
from graphrec.train.config import TrainConfig
from graphrec.train.fit import evaluate_model, fit, seed_everything
from graphrec.train.record import load_record, load_state, save_run

__all__ = ["prepare_dataset", "run_training", "reevaluate"]


def prepare_dataset(dataset: Dataset, cold_start_fraction: float | None = None, cold_start_seed: int = 0) -> Dataset:
    """Apply the on-the-fly transforms a run records (currently: cold start)."""
    if cold_start_fraction:
        return cold_start(dataset, cold_start_fraction, cold_start_seed)
    return dataset


def run_training(
    dataset: Dataset,
    model_name: str,
    model_overrides: Mapping[str, Any] | None,
    config: TrainConfig,
    device: str | torch.device = "cpu",
    out: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
    transforms: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Recommender]:
    """Seed, build ``model_name`` for ``dataset``, fit it, and write a run directory.

    Returns the run record (a JSON-able dict) and the trained model (best state).
    """
    params = model_params(model_name, model_overrides)
    seed_everything(config.seed)
    t0 = time.perf_counter()
    model = build_model(model_name, dataset, params)
    build_seconds = time.perf_counter() - t0
    result = fit(model, dataset, config, device=device)
    record: dict[str, Any] = {
        "graphrec_version": graphrec.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_name,
        "model_params": params,
        "train_config": config.to_dict(),
        "dataset": {
            "path": None if data_path is None else str(data_path),
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "transforms": dict(transforms or {}),
            "stats": dataset.stats(),
        },
        "device": str(device),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "best_valid": result.best_valid,
        "test": result.test,
        "timings": dict(result.timings, build_seconds=build_seconds),
        "history": result.history,
    }
    if out is not None:
        save_run(out, record, model.state_dict())
    return record, model


def reevaluate(
    run_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    data_path: str | os.PathLike | None = None,
    protocol: str | None = None,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """Rebuild a saved run's model, load its weights, evaluate valid and test again.

    The dataset is read from ``data_path`` or the path in the record; it must have the
    fingerprint the model was trained on (after the recorded transforms), otherwise the
    numbers would silently describe other data.
    """
    record = load_record(run_dir)
    path = data_path or record["dataset"].get("path")
    if not path:
        raise DataError(f"{run_dir}: the record names no dataset path: pass --data DIR")
    dataset = Dataset.load(path)
    tf = record["dataset"].get("transforms") or {}
    dataset = prepare_dataset(dataset, tf.get("cold_start"), tf.get("cold_start_seed", 0))
    if dataset.fingerprint() != record["dataset"]["fingerprint"]:
        raise DataError(
            f"{path} differs from the data run {Path(run_dir).name} was trained on "
            "(fingerprint mismatch): pass the original dataset with --data"
        )
    cfg = dict(record["train_config"])
    if protocol is not None:
        cfg["protocol"] = protocol
    cfg["progress"] = False
    config = TrainConfig.from_dict(cfg)
    model = build_model(record["model"], dataset, record["model_params"])
    model.load_state_dict(load_state(run_dir))
    model.to(torch.device(device))
    return {
        split: evaluate_model(model, dataset, split, config, device, progress=progress)
        for split in ("valid", "test")
    }
