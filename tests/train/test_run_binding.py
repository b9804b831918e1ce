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


def test_a_saved_dataset_is_recorded_and_one_changed_in_memory_is_not(tmp_path):
    """A dataset made in Python and saved (Dataset.save) recorded no path: its runs could
    not be reloaded; one whose features were replaced or changed in place after loading
    recorded the folder, and loading the run failed with a fingerprint mismatch. Now the
    saved folder is recorded, and a changed dataset records none, with a note at the start."""
    from graphrec.data import Dataset
    from graphrec.errors import GraphrecNote

    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False)
    ds = synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=0)
    with pytest.warns(GraphrecNote, match=r"the dataset was neither read from nor saved to a folder .* the run records "
                                          r"no dataset folder"):
        record, _ = run_training(ds, "mf", {"embedding_dim": 8}, cfg, out=tmp_path / "unsaved")
    assert record["dataset"]["path"] is None
    data = ds.save(tmp_path / "data")
    record, _ = run_training(ds, "mf", {"embedding_dim": 8}, cfg, out=tmp_path / "saved")
    assert record["dataset"]["path"] == str(data.resolve())
    assert reevaluate(tmp_path / "saved")["test"] == record["test"]
    loaded = Dataset.load(data)
    for how, changed in (
        ("modalities {'mine': 4, 'text': 32}, the folder's", loaded.replace(
            item_features={**{m: x for m, x in loaded.item_features.items() if m != "image"},
                           "mine": loaded.item_features["image"][:, :4]})),
        ("its content's fingerprint", loaded),
    ):
        if changed is loaded:
            loaded.item_features["text"] *= 2.0  # in place, after loading
        with pytest.warns(GraphrecNote, match=rf"the dataset differs from {data.resolve()}, which it was read from "
                                              rf"\({how}.*the run records no dataset folder"):
            record, _ = run_training(changed, "mf", {"embedding_dim": 8}, cfg, out=tmp_path / "changed", overwrite=True)
        assert record["dataset"]["path"] is None


def test_a_python_run_over_a_stored_graph_given_relatively_loads_from_another_directory(tmp_path, monkeypatch):
    """run_training(..., {"graphs": ["graphs/knn"]}) recorded the relative path: the run
    did not load from any other working directory (the CLI records it absolute)."""
    from graphrec.graphs.build import GraphSpec, build_item_graph
    from graphrec.graphs.store import save_graph
    from graphrec.train import load_run

    ds = synthetic_catalogue(n_users=80, n_items=60, n_clusters=3, seed=0)
    ds.save(tmp_path / "data")
    built = build_item_graph(ds, GraphSpec(kind="knn", k=10))
    save_graph(tmp_path / "graphs" / "knn", built.graph, built.record)
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False)
    record, _ = run_training(ds, "mmgef", {"embedding_dim": 8, "graphs": ["graphs/knn"]}, cfg, out="runs/m")
    assert record["model_params"]["graphs"] == [str(tmp_path / "graphs" / "knn")]
    monkeypatch.chdir(tmp_path / "graphs")
    again, _, _ = load_run(tmp_path / "runs" / "m")
    assert again["model_params"] == record["model_params"]


def test_a_path_where_a_dataset_goes_and_a_dataset_where_a_path_goes_are_one_line(tmp_path):
    """run_training takes a Dataset and tune a folder: swapping them failed deep inside
    (AttributeError 'str' object has no attribute 'source'; os.fspath's TypeError)."""
    from graphrec.errors import ConfigError
    from graphrec.train.tune import tune

    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    with pytest.raises(ConfigError, match=r"run_training takes a Dataset, got a str: load the folder with "
                                          r"Dataset.load\(DIR\)"):
        run_training(str(tmp_path), "mf", {}, TrainConfig(epochs=1, progress=False))
    with pytest.raises(ConfigError, match=r"tune takes the dataset's folder \(data_path\), got a Dataset: save it "
                                          r"with Dataset.save\(DIR\) and pass DIR"):
        tune(ds, "mf", 1, f"sqlite:///{tmp_path / 's.db'}")


def test_a_cold_start_run_notes_what_its_cold_figures_mean():
    """LightGCN under a cold start printed a cold recall below chance without a word, and
    the cold-item path under the papers' protocol its flooded lists' win."""
    import warnings

    from graphrec.data import cold_start
    from graphrec.errors import GraphrecNote

    ds = synthetic_catalogue(n_users=80, n_items=60, n_clusters=3, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False)

    def notes(dataset, model, params):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_training(dataset, model, params, cfg)
        return [str(w.message) for w in caught if issubclass(w.category, GraphrecNote)]

    papers, hidden = cold_start(ds, 0.2, seed=0), cold_start(ds, 0.2, seed=0, protocol="hidden")
    assert notes(papers, "lightgcn", {"embedding_dim": 8}) == [
        "lightgcn uses no item content: it scores the 12 cold items from embeddings no interaction trained, so its "
        "cold metrics are near zero by construction (a reference point); --cold-path content gives it a content "
        "path (docs/models/cold-start.md)"]
    assert notes(papers, "mmgef", {"embedding_dim": 8}) == []  # content graph: it can score them
    assert notes(ds, "lightgcn", {"embedding_dim": 8}) == []  # no cold items
    flooded = notes(papers, "lightgcn", {"embedding_dim": 8, "cold_path": "content"})
    assert len(flooded) == 1 and flooded[0].startswith("under --cold-protocol papers validation and test hold cold "
                                                       "items only")
    assert notes(hidden, "lightgcn", {"embedding_dim": 8, "cold_path": "content"}) == []
