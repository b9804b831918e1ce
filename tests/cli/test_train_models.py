"""`graphrec train lattice|cb|mf` and stored graphs (`--graph`) through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "synthetic"
    synthetic_catalogue(n_users=150, n_items=90, n_clusters=5, seed=0).save(path)
    return path


@pytest.mark.parametrize("model", ["lattice", "cb", "mf"])
def test_help_has_an_example(model):
    res = run("train", model, "--help")
    assert res.exit_code == 0 and "Example" in res.output


def test_lattice_with_cold_start_then_evaluate(data_dir, tmp_path):
    out = tmp_path / "lattice"
    res = run("train", "lattice", "--data", data_dir, "--epochs", "3", "--dim", "8", "--k", "5", "--lambda", "0.7",
              "--cold-start", "0.2", "--select-on", "cold", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "modality_weight_image" in res.output
    assert "valid-cold" in res.output and "selected on cold items" in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["train_config"]["select_on"] == "cold"
    cold_valid = [h["valid_groups"]["cold"]["recall@20"] for h in record["history"]]
    assert record["best_epoch"] == cold_valid.index(max(cold_valid)) + 1
    assert record["model_params"]["lambda_coeff"] == 0.7 and record["model_params"]["k"] == 5
    assert set(record["test"]) == {"all", "warm", "cold"}
    assert len(record["history"]) == 3 and "modality_weight_text" in record["history"][0]["model"]
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert f"{record['test']['all']['recall@20']:.4f}" in line


def test_lattice_with_the_cf_graph_records_its_weight_and_reloads(data_dir, tmp_path):
    out = tmp_path / "lattice-cf"
    res = run("train", "lattice", "--data", data_dir, "--epochs", "2", "--dim", "8", "--k", "5", "--cf-graph",
              "--cold-start", "0.2", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((out / "record.json").read_text())
    assert record["model_params"]["use_cf_graph"] is True
    assert 0 < record["history"][-1]["model"]["cf_weight"] < 1
    res = run("evaluate", out, "--device", "cpu")  # the reloaded model rebuilds E^c from the same split
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert f"{record['test']['all']['recall@20']:.4f}" in line


def test_cb_and_mf(data_dir, tmp_path):
    res = run("train", "cb", "--data", data_dir, "--k", "20", "--cold-start", "0.2", "--device", "cpu",
              "--out", tmp_path / "cb", "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "cb" / "record.json").read_text())
    assert record["best_epoch"] == 0 and record["test"]["cold"]["recall@20"] > 0
    assert "(recbole protocol, no parameters, no training)" in res.output and "best epoch" not in res.output
    res = run("train", "mf", "--data", data_dir, "--epochs", "2", "--dim", "8", "--device", "cpu",
              "--out", tmp_path / "mf", "--quiet")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "mf" / "record.json").read_text())["model"] == "mf"
    res = run("train", "mf", "--data", data_dir, "--epochs", "1", "--select-on", "cold", "--device", "cpu",
              "--out", tmp_path / "mf2", "--quiet")
    assert res.exit_code == 1 and "needs a cold-start split: add --cold-start" in res.output
    assert not (tmp_path / "mf2").exists()


def test_mmgef_reuses_stored_graphs_and_refuses_stale_ones(data_dir, tmp_path):
    graphs = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "both", "--k", "6", "--out", graphs, "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    a = run("train", "mmgef", "--data", data_dir, "--epochs", "2", "--dim", "8", "--graph", graphs / "knn",
            "--graph", graphs / "cooccur", "--device", "cpu", "--out", tmp_path / "stored", "--quiet")
    assert a.exit_code == 0, a.output
    b = run("train", "mmgef", "--data", data_dir, "--epochs", "2", "--dim", "8", "--k", "6",
            "--device", "cpu", "--out", tmp_path / "fresh", "--quiet")
    assert b.exit_code == 0, b.output
    ra = json.loads((tmp_path / "stored" / "record.json").read_text())
    rb = json.loads((tmp_path / "fresh" / "record.json").read_text())
    assert ra["model_params"]["graphs"][0].endswith("knn")
    # the stored graphs are the ones built on the fly: identical training
    assert ra["test"]["all"]["recall@20"] == pytest.approx(rb["test"]["all"]["recall@20"], abs=1e-9)
    assert np.isclose(ra["history"][-1]["loss"], rb["history"][-1]["loss"], rtol=1e-6)
    # a graph of the full training data is refused for a cold-start run (the co-interaction
    # graph would leak the hidden items' interactions)
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--graph", graphs / "cooccur",
              "--cold-start", "0.2", "--device", "cpu", "--out", tmp_path / "leak", "--quiet")
    assert res.exit_code == 1
    assert "cold_start differs" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "leak").exists()
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--graph", graphs / "knn", "--k", "10",
              "--device", "cpu", "--out", tmp_path / "k", "--quiet")
    assert res.exit_code == 1 and "k=6 but --k 10" in res.output
    # the content graph can be dropped (co-interaction graph only), but not while reusing it
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--dim", "8", "--no-knn-graph",
              "--device", "cpu", "--out", tmp_path / "co", "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "co" / "record.json").read_text())
    assert record["model_params"]["use_knn_graph"] is False
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--no-knn-graph", "--graph", graphs / "knn",
              "--device", "cpu", "--out", tmp_path / "co2", "--quiet")
    assert res.exit_code == 1 and "--no-knn-graph" in res.output and len(res.output.strip().splitlines()) == 1


def test_content_models_on_data_without_features(tmp_path):
    """A dataset without item features (e.g. the LATTICE split of Amazon Baby): the content
    models refuse it in one line naming the fix; MM-GEF also names --no-knn-graph, and
    trains with it on the co-interaction graph alone."""
    path = tmp_path / "plain"
    synthetic_catalogue(n_users=150, n_items=90, n_clusters=5, seed=0).replace(item_features={}).save(path)
    for model in ("lattice", "cb", "mmgef"):
        res = run("train", model, "--data", path, "--epochs", "1", "--device", "cpu", "--out", tmp_path / model, "--quiet")
        assert res.exit_code == 1 and "has none: prepare it with --feature MODALITY=FILE" in res.output, res.output
        assert ("--no-knn-graph" in res.output) == (model == "mmgef")
        assert not (tmp_path / model).exists()
    res = run("train", "mmgef", "--data", path, "--epochs", "1", "--dim", "8", "--no-knn-graph", "--device", "cpu",
              "--out", tmp_path / "cooccur", "--quiet")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cooccur" / "record.json").read_text())["model_params"]["use_knn_graph"] is False
