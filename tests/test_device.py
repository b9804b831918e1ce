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


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the message of a machine without MPS")
def test_mps_without_mps_is_one_line_before_any_work(tmp_path):
    """``device="mps"`` passed the check and failed in torch ("PyTorch is not linked with
    support for mps devices") once the model and its graphs were built."""
    why = "is built without MPS" if not torch.backends.mps.is_built() else "MPS is not available on this machine"
    with pytest.raises(ConfigError, match=rf"^device mps: .*{why}.*: use cpu or auto \(usable here: cpu"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match=r"^--device mps: .*: use --device cpu or auto"):
        resolve_device("mps", option="--device")
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False)
    with pytest.raises(ConfigError, match=why):
        run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, device="mps", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_mps_where_torch_has_it(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^device mps: MPS is not available on this machine \(it needs Apple "):
        resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == resolve_device(torch.device("mps")) == torch.device("mps")
    with pytest.raises(ConfigError, match=r"^device mps:1: MPS has one device, mps: use cpu or auto \(usable here: "
                                          r"cpu.*, mps\)$"):
        resolve_device("mps:1")


@pytest.mark.parametrize("name", ["xpu", "meta", "hpu", "xla"])
def test_device_types_graphrec_does_not_run_on_are_refused(name):
    with pytest.raises(ConfigError) as e:
        resolve_device(name)
    assert str(e.value).startswith(f"device {name}: graphrec runs on cpu, cuda and mps devices, not {name}: "
                                   "use cpu or auto (usable here: cpu")


def test_a_cuda_index_beyond_the_machines_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1") and resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ConfigError, match=r"^--device cuda:2: this machine has 2 CUDA device\(s\), cuda:0 to cuda:1: "
                                          r"use one of them \(or auto\)$"):
        resolve_device("cuda:2", option="--device")
    with pytest.raises(ConfigError, match=r"not xpu: use cpu or auto \(usable here: cpu, cuda:0 to cuda:1"):
        resolve_device("xpu")

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_test_device_without_cuda_stops_pytest_once():
    """GRAPHREC_TEST_DEVICE=cuda without CUDA: one line before collection (tests/conftest.py),
    not one collection traceback per test module."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = dict(os.environ, GRAPHREC_TEST_DEVICE="cuda")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests / "models")],
                          cwd=tests.parent, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, lines
    assert lines == ["ERROR: GRAPHREC_TEST_DEVICE=cuda but torch sees no CUDA device: "
                     "unset it or run on a GPU machine"]


def test_auto_trains_and_builds_graphs():
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    assert knn_graph(ds.item_features["image"], k=3, device="auto", backend="torch").nnz == 90
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False)
    record, _ = run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, device="auto")
    assert record["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def _public_callables():
    """(qualified name, callable) of every public function and class of graphrec's modules
    (those this environment can import: the core environment has no runnable RecBole)."""
    import importlib
    import inspect
    import pkgutil

    import graphrec

    seen = {}
    for info in pkgutil.walk_packages(graphrec.__path__, "graphrec."):
        if any(part.startswith("_") for part in info.name.split(".")) or ".cli" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except (ImportError, ConfigError):  # an optional extra this environment lacks (RecBole on numpy 2)
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("graphrec"):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def test_every_python_function_defaults_to_the_cpu():
    """The Python API never moves work to a GPU unasked (graphrec._device); recommend_run
    defaulted to "auto" while everything else defaulted to "cpu"."""
    import inspect

    checked, wrong = 0, []
    for name, obj in _public_callables():
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        if "device" in params and params["device"].default is not inspect.Parameter.empty:
            checked += 1
            if params["device"].default not in ("cpu", None):  # None: no device (kept where it is)
                wrong.append(f"{name}: {params['device'].default!r}")
    assert checked >= 10 and not wrong, wrong


def test_a_function_given_a_model_defaults_to_the_models_device():
    """``model.cuda()`` then ``fit(model, ...)`` moved the model back to the CPU and trained
    there (``device="cpu"`` by default): a function that takes a model defaults to where
    its parameters are."""
    from graphrec._device import model_device
    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.testing import DEVICE
    from graphrec.train import build_model
    from graphrec.train.ctr import CTRConfig, build_ctr_model, fit_ctr, predict_ctr, split_tensors
    from graphrec.train.fit import fit

    lin = torch.nn.Linear(2, 2)
    assert model_device(lin) == torch.device("cpu") and model_device(lin, "auto") == resolve_device("auto")
    assert model_device(lin.to("meta")) == torch.device("meta")
    only_buffers = torch.nn.Module()
    only_buffers.register_buffer("b", torch.zeros(1, device="meta"))
    assert model_device(only_buffers) == torch.device("meta") and model_device(torch.nn.Module()).type == "cpu"
    # the loops themselves: a model already on DEVICE stays there (GRAPHREC_TEST_DEVICE=cuda)
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    model = build_model("lightgcn", ds, {"embedding_dim": 4}).to(DEVICE)
    fit(model, ds, TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False))
    ctr = contract_ctr_data()
    lr = build_ctr_model("lr", ctr).to(DEVICE)
    fit_ctr(lr, ctr, CTRConfig(epochs=1, batch_size=64, progress=False))
    assert predict_ctr(lr, split_tensors(ctr.samples["valid"])).shape == (len(ctr.samples["valid"].labels),)
    assert {p.device.type for m in (model, lr) for p in m.parameters()} == {torch.device(DEVICE).type}


def _entry_points(tmp_path):
    """Every public function taking a device, called on tiny data: name -> call(device)."""
    import numpy as np

    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.train import build_model
    from graphrec.train.ctr import CTRConfig, build_ctr_model, evaluate_ctr, fit_ctr, modality_attention, \
        predict_ctr, run_ctr, split_tensors
    from graphrec.train.evaluate import evaluate_cold_start, evaluate_ranking, most_popular_scorer
    from graphrec.train.fit import evaluate_model
    from graphrec.train.record import environment
    from graphrec.train.recommend import recommend_indices, top_k

    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    from graphrec.data import cold_start

    cold = cold_start(ds, 0.2, seed=0)
    pop = most_popular_scorer(ds)
    model = build_model("lightgcn", ds, {"embedding_dim": 4})
    cfg = TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False)
    ctr = contract_ctr_data()
    ccfg = CTRConfig(epochs=1, batch_size=64, progress=False)
    lr = build_ctr_model("lr", ctr)
    users = torch.arange(5)
    return {
        "evaluate_ranking": lambda d: evaluate_ranking(pop, ds, "valid", ks=(20,), device=d),
        "evaluate_cold_start": lambda d: evaluate_cold_start(most_popular_scorer(cold), cold, "test", ks=(20,), device=d),
        "most_popular_scorer": lambda d: most_popular_scorer(ds, device=d),
        "top_k": lambda d: top_k(pop, users, 3, ds.n_items, device=d),
        "recommend_indices": lambda d: recommend_indices(pop, ds, users, 3, device=d),
        "evaluate_model": lambda d: evaluate_model(model, ds, "valid", cfg, d),
        "environment": lambda d: environment(d),
        "predict_ctr": lambda d: predict_ctr(lr, split_tensors(ctr.samples["valid"]), d),
        "evaluate_ctr": lambda d: evaluate_ctr(lr, ctr, "valid", ccfg, d),
        "fit_ctr": lambda d: fit_ctr(build_ctr_model("lr", ctr), ctr, ccfg, d),
        "modality_attention": lambda d: modality_attention(lr, ctr, "valid", d),
        "run_ctr": lambda d: run_ctr(ctr, "lr", None, ccfg, device=d, out=tmp_path / f"ctr-{d}"),
        "run_training": lambda d: run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, device=d,
                                               out=tmp_path / f"run-{d}"),
        "knn_graph": lambda d: knn_graph(np.eye(5, dtype=np.float32), k=2, device=d, backend="torch"),
    }


def test_auto_is_accepted_by_every_entry_point(tmp_path):
    """``"auto"`` was torch's multi-line RuntimeError in evaluate_ranking, top_k, the CTR
    loop and others, and crashed tune after its first trial (in the run record)."""
    for name, call in _entry_points(tmp_path).items():
        call("auto")  # no error: "auto" is CUDA where there is one, else the CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_is_one_line_everywhere(tmp_path):
    for name, call in _entry_points(tmp_path).items():
        with pytest.raises(ConfigError, match="CUDA is not available on this machine") as e:
            call("cuda")
        assert "\n" not in str(e.value), name
    assert not (tmp_path / "ctr-cuda").exists() and not (tmp_path / "run-cuda").exists()



@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the message of a machine without MPS")
def test_mps_without_mps_is_one_line_everywhere(tmp_path):
    for name, call in _entry_points(tmp_path).items():
        with pytest.raises(ConfigError, match="device mps: .*MPS") as e:
            call("mps")
        assert "\n" not in str(e.value), name
    assert not (tmp_path / "ctr-mps").exists() and not (tmp_path / "run-mps").exists()

def test_every_public_name_exists():
    """``graphrec.train.recommend.__all__`` named a ``recommend`` the module does not have
    (``from graphrec.train.recommend import *`` failed); ``graphrec.recommend`` was missing
    from ``dir(graphrec)``."""
    import graphrec

    assert len(_public_callables()) > 100
    assert "recommend" in dir(graphrec) and callable(graphrec.recommend)
