"""Fixtures of the RecBole interop tests: real lfm2k data written as RecBole files and
RecBole's own loading of them (RecBole 1.2.1 is in the development lock)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

from graphrec.data import Dataset
from graphrec.data.formats import read_mmrec, write_recbole

LFM2K_FEATURES = {"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"}


@pytest.fixture(scope="session")
def lfm2k(shared_data: Path) -> Dataset:
    """Last.fm 2k with its given split, MiniLM text (384) and VGGish audio (128)."""
    return read_mmrec(shared_data / "lfm2k", features=LFM2K_FEATURES)


def first_users(ds: Dataset, n: int) -> Dataset:
    """The first ``n`` users of ``ds`` and the items they touch, in any split."""
    keep = np.arange(n)
    splits = {s: m[keep] for s, m in ds.splits.items()}
    used = np.unique(np.concatenate([m.indices for m in splits.values()]))
    return ds.replace(
        user_ids=ds.user_ids[keep],
        item_ids=ds.item_ids[used],
        splits={s: m[:, used] for s, m in splits.items()},
        item_features={k: v[used] for k, v in ds.item_features.items()},
        name=f"{ds.name}_{n}",
    )


@pytest.fixture(scope="session")
def lfm2k_small(lfm2k: Dataset) -> Dataset:
    """The first 250 users of lfm2k (real data, a few seconds of RecBole)."""
    return first_users(lfm2k, 250)


@dataclass
class RecBoleRun:
    """RecBole's view of a dataset: config, full dataset and the three dataloaders."""

    config: Any
    dataset: Any
    train: Any
    valid: Any
    test: Any
    workdir: Path


def recbole_config_dict(data_path: Path, workdir: Path, **extra: Any) -> dict[str, Any]:
    """A quiet CPU config reading the benchmark files and the feature columns."""
    values: dict[str, Any] = {
        "data_path": str(data_path),
        "checkpoint_dir": str(workdir / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"], "user": ["user_id"], "item": ["item_id", "text", "audio"]},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "Recall@20",
        "metric_decimal_place": 16,
        "train_batch_size": 1024,
        "eval_batch_size": 256 * 2000,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        "use_gpu": False,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "seed": 0,
        "reproducibility": True,
        "state": "WARNING",
    }
    values.update(extra)
    return values


def recbole_load(
    ds: Dataset, workdir: Path, model: Any, extra: Mapping[str, Any] | None = None, write: bool = True
) -> RecBoleRun:
    """Write ``ds`` as RecBole files under ``workdir/data`` and load them with RecBole."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from graphrec.interop.recbole import recbole_workdir

    data_path = workdir / "data"
    if write:
        write_recbole(ds, data_path / ds.name, ds.name)
    with recbole_workdir(workdir):
        config = Config(model=model, dataset=ds.name, config_dict=recbole_config_dict(data_path, workdir, **(extra or {})))
        init_seed(0, True)
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
    return RecBoleRun(config, dataset, train, valid, test, workdir)


@pytest.fixture(scope="session")
def load_recbole() -> Any:
    """:func:`recbole_load`, for the test modules (conftest is not imported by name)."""
    return recbole_load
