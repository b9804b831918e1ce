"""The one ``device`` rule of the public functions (graphrec._device)."""

from __future__ import annotations

import pytest
import torch

from graphrec._device import resolve_device
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError
from graphrec.graphs.knn import knn_graph
from graphrec.train import TrainConfig, run_training


def test_auto_cpu_and_unknown_names():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", 3.5):
        with pytest.raises(ConfigError, match="is not a torch device: use auto, cpu, cuda or cuda:N"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_is_one_line_in_every_entry_point(tmp_path):
    with pytest.raises(ConfigError, match="device cuda: CUDA is not available on this machine: use cpu"):
        resolve_device("cuda")
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        knn_graph(ds.item_features["image"], k=3, device="cuda", backend="torch")
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, device="cuda", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_auto_trains_and_builds_graphs():
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    assert knn_graph(ds.item_features["image"], k=3, device="auto", backend="torch").nnz == 90
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False)
    record, _ = run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, device="auto")
    assert record["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
