"""A run's checkpoint is bound to its record: model name, hyper-parameters and the
sha256 of ``model.pt`` are written into ``record.json`` at save time, and re-evaluating
a run with another model's or another seed's weights is a one-line error, never other
weights' metrics printed as the run's."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import DataError
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.train import TrainConfig, load_record, reevaluate, run_training
from graphrec.train.ctr import CTRConfig, run_ctr
from graphrec.train.record import UnverifiedCheckpointWarning, file_sha256

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two LightGCN runs that differ only in their seed, an MF run (same weight shapes
    as LightGCN's) and a smaller LightGCN, same data."""
    root = tmp_path_factory.mktemp("binding")
    ds = synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=0)
    data = ds.save(root / "data")
    out = {}
    for name, model, seed, dim in (("a", "lightgcn", 0, 8), ("b", "lightgcn", 1, 8), ("mf", "mf", 0, 8),
                                   ("small", "lightgcn", 0, 4)):
        cfg = TrainConfig(epochs=2, batch_size=512, ks=(20,), progress=False, seed=seed)
        run_training(ds, model, {"embedding_dim": dim}, cfg, out=root / name, data_path=data)
        out[name] = root / name
    return out


def _copy(run, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def _error_line(res) -> str:
    assert res.exit_code == 1, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def test_record_holds_the_checkpoint_hash_model_and_params(runs):
    rec = load_record(runs["a"])
    ck = rec["checkpoint"]
    assert ck["file"] == "model.pt" and ck["sha256"] == file_sha256(runs["a"] / "model.pt")
    assert ck["model"] == "lightgcn" and ck["model_params"] == rec["model_params"]
    reevaluate(runs["a"])  # its own weights load without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reevaluate(runs["a"])


def test_another_seeds_weights_are_refused(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.copy(runs["b"] / "model.pt", run / "model.pt")  # same model, same shapes, other seed
    with pytest.raises(DataError, match=r"model\.pt is not the checkpoint this run wrote") as e:
        reevaluate(run)
    assert str(run) in str(e.value) and "\n" not in str(e.value)
    line = _error_line(runner.invoke(app, ["evaluate", str(run), "--device", "cpu"]))
    assert "not the checkpoint this run wrote" in line and str(run) in line


def test_another_models_weights_are_refused(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.copy(runs["mf"] / "model.pt", run / "model.pt")
    line = _error_line(runner.invoke(app, ["evaluate", str(run), "--device", "cpu"]))
    assert "not the checkpoint this run wrote" in line


def test_a_record_edited_after_training_is_refused(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    rec = json.loads((run / "record.json").read_text())
    rec["model_params"]["num_layers"] = rec["model_params"]["num_layers"] + 1  # same weight shapes
    (run / "record.json").write_text(json.dumps(rec))
    with pytest.raises(DataError, match=r"num_layers: 4 in the record, 3 at training|num_layers"):
        reevaluate(run)
    rec["model_params"]["num_layers"] -= 1
    rec["model"] = "mf"
    (run / "record.json").write_text(json.dumps(rec))
    with pytest.raises(DataError, match="record.json says model 'mf' but its checkpoint was written for 'lightgcn'"):
        reevaluate(run)


def test_a_run_without_hash_loads_with_a_warning(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    rec = json.loads((run / "record.json").read_text())
    del rec["checkpoint"]  # as written by graphrec before the binding
    (run / "record.json").write_text(json.dumps(rec))
    with pytest.warns(UnverifiedCheckpointWarning, match="cannot be verified"):
        again = reevaluate(run)
    assert again["test"]["all"]["recall@20"] == pytest.approx(rec["test"]["all"]["recall@20"], abs=1e-6)
    res = runner.invoke(app, ["evaluate", str(run), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    warning_lines = [l for l in err.splitlines() if l.startswith("warning:")]
    assert len(warning_lines) == 1 and "no checkpoint hash" in warning_lines[0]


def test_an_unverified_checkpoint_of_other_shapes_is_one_line(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    rec = json.loads((run / "record.json").read_text())
    del rec["checkpoint"]
    (run / "record.json").write_text(json.dumps(rec))
    shutil.copy(runs["small"] / "model.pt", run / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
        with pytest.raises(DataError, match="model.pt does not fit lightgcn") as e:
            reevaluate(run)
    assert "\n" not in str(e.value)


def test_ctr_runs_record_their_checkpoint_hash(tmp_path):
    record, _ = run_ctr(contract_ctr_data(), "lr", {}, CTRConfig(epochs=1, progress=False), out=tmp_path / "run")
    on_disk = load_record(tmp_path / "run")
    assert on_disk["checkpoint"]["sha256"] == file_sha256(tmp_path / "run" / "model.pt")
    assert on_disk["checkpoint"] == record["checkpoint"]


def test_a_run_of_a_loaded_dataset_records_where_it_came_from_and_reloads(tmp_path):
    """run_training from Python without data_path: the record names the directory the
    dataset was read from, and the cold-start split drawn after reading it, so that
    evaluate / recommend / export-graph rebuild the same data (they failed with "the
    record names no dataset path", and with a fingerprint mismatch under a cold start)."""
    from graphrec.data import Dataset, cold_start, random_split

    data = synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=0).save(tmp_path / "data")
    ds = Dataset.load(data)
    assert ds.source == {"path": str(data.resolve()), "cold": False}
    cfg = TrainConfig(epochs=2, batch_size=512, ks=(20,), progress=False)
    record, _ = run_training(cold_start(ds, 0.2, seed=3), "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "r")
    assert record["dataset"]["path"] == str(data.resolve())
    assert record["dataset"]["transforms"] == {"cold_start": 0.2, "cold_start_seed": 3, "cold_start_protocol": "papers"}
    again = reevaluate(tmp_path / "r")
    assert again["test"]["all"]["recall@20"] == pytest.approx(record["test"]["all"]["recall@20"])
    # a dataset stored with its cold-start split: the path, and no transform to apply again
    stored = cold_start(ds, 0.2, seed=3).save(tmp_path / "cold")
    record, _ = run_training(Dataset.load(stored), "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "r2")
    assert record["dataset"]["path"] == str(stored.resolve()) and record["dataset"]["transforms"] == {}
    assert reevaluate(tmp_path / "r2")["test"]["all"]["recall@20"] == pytest.approx(record["test"]["all"]["recall@20"])
    # another split of the interactions is not the stored dataset: no path is claimed
    resplit = random_split(ds, seed=1)
    assert resplit.source is None
    record, _ = run_training(resplit, "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "r3")
    assert record["dataset"]["path"] is None
    with pytest.raises(DataError, match=r"the record names no dataset path \(the run trained on a dataset in memory\): pass the dataset.s folder, saved with Dataset.save \(CLI --data DIR; Python data_path="):
        reevaluate(tmp_path / "r3")
