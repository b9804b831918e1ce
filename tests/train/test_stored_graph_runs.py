"""A ranking run trained with stored graphs (``graphrec train MODEL --graph DIR``) records
each graph's identity (its graph.json record, checksum included, and its path); loading
the run (evaluate, recommend, export-graph, ``load_run``) and resuming it refuse a graph
rebuilt differently since, with one line naming the graph, what changed and the fix."""

from __future__ import annotations

import importlib
import json

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.store import read_record, save_graph
from graphrec.models.lattice import LATTICE
from graphrec.train import TrainConfig, load_record, load_run, reevaluate, run_training
from graphrec.train.state import RunInterrupted

fit_module = importlib.import_module("graphrec.train.fit")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = dict(epochs=3, eval_every=1, lr=0.01, batch_size=256, ks=(20,), progress=False, seed=1)
PARAMS = {"embedding_dim": 8, "num_layers": 1}


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=80, n_items=60, n_clusters=3, seed=0)


@pytest.fixture(scope="module")
def data_dir(ds, tmp_path_factory):
    return ds.save(tmp_path_factory.mktemp("stored-graph") / "data")


def store(ds, folder, weighting="cosine"):
    """A one-modality (text) kNN graph of ``ds``, stored as build-graph stores it (``folder/knn``)."""
    built = build_item_graph(ds, GraphSpec(kind="knn", k=10, modalities=("text",), weighting=weighting))
    built.record.options["source"] = {"data": "DATA"}  # as build-graph records it: the rebuild names it
    save_graph(folder / "knn", built.graph, built.record, overwrite=True)
    return folder / "knn"


def train(ds, data_dir, graph, out, **kw):
    return run_training(ds, "lattice", dict(PARAMS, graphs=[str(graph)]), TrainConfig(**CONFIG), out=out,
                        data_path=data_dir, **kw)[0]


def test_a_run_is_refused_once_its_stored_graph_changed(ds, data_dir, tmp_path):
    graph = store(ds, tmp_path / "graphs")
    out = tmp_path / "run"
    record = train(ds, data_dir, graph, out)
    (entry,) = record["graphs"]
    assert entry["path"] == str(graph) and entry["checksum"] == read_record(graph).checksum
    assert load_record(out)["graphs"] == [entry]
    assert reevaluate(out)["test"] == record["test"]  # the same graph: the record's numbers
    store(ds, tmp_path / "graphs", weighting="binary")  # rebuilt otherwise, at the same path
    changed = read_record(graph).checksum
    for load in (reevaluate, load_run):
        with pytest.raises(DataError) as e:
            load(out)
        assert str(e.value) == (
            f"run {out} was trained with the graph {graph}, which changed since (checksum {changed[:12]}, was "
            f"{entry['checksum'][:12]}; weighting 'binary', was 'cosine'): rebuild it with `graphrec build-graph "
            f"--data DATA --kind knn --modalities text --k 10 --weighting cosine --no-include-self --backend auto "
            f"--no-symmetric --normalization none --device cpu --threads 1 --out {graph.parent} --overwrite` (its "
            "recorded recipe), or train the run again"
        )
    # the CLI: one line, exit status 1, for evaluate and recommend alike
    recs = str(tmp_path / "r.csv")
    for args in (["evaluate", str(out), "--quiet"], ["recommend", str(out), "--out", recs, "--quiet"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 1, res.output
        assert len(res.output.strip().splitlines()) == 1 and f"the graph {graph}, which changed since" in res.output
    assert not (tmp_path / "r.csv").exists()
    # built again as recorded: the same checksum, and the run loads to its recorded numbers
    store(ds, tmp_path / "graphs")
    assert reevaluate(out)["test"] == record["test"]
    # a graph deleted since: named as well
    (graph / "graph.json").unlink()
    with pytest.raises(DataError, match=rf"the graph {graph}, which changed since \(no graph is there any more"):
        load_run(out)


def test_a_run_recorded_before_graph_checksums_loads_unchecked(ds, data_dir, tmp_path):
    graph = store(ds, tmp_path / "graphs")
    out = tmp_path / "run"
    train(ds, data_dir, graph, out)
    record = json.loads((out / "record.json").read_text())
    del record["graphs"]  # as a graphrec before this check wrote it
    (out / "record.json").write_text(json.dumps(record))
    store(ds, tmp_path / "graphs", weighting="binary")
    assert set(reevaluate(out)) == {"valid", "test"}  # nothing to compare: it loads as before


def test_resume_refuses_a_stored_graph_rebuilt_since_the_interrupt(ds, data_dir, tmp_path, monkeypatch):
    graph = store(ds, tmp_path / "graphs")
    full = train(ds, data_dir, graph, tmp_path / "full")
    out = tmp_path / "run"
    real_start = LATTICE.start_epoch

    def start_epoch(model, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_start(model, epoch)

    with monkeypatch.context() as m:
        m.setattr(LATTICE, "start_epoch", start_epoch)
        with pytest.raises(RunInterrupted):
            train(ds, data_dir, graph, out)
    before = load_record(out)["graphs"][0]["checksum"]
    store(ds, tmp_path / "graphs", weighting="binary")
    with pytest.raises(ConfigError) as e:
        train(ds, data_dir, graph, out, resume=True)
    msg = str(e.value)
    assert msg.startswith(f"--resume: the graph {graph} changed since the interrupted run {out} started (checksum ")
    assert f"was {before[:12]}; weighting 'binary', was 'cosine'): rebuild it with `graphrec build-graph" in msg
    assert msg.endswith("(its recorded recipe), or start a new run (--overwrite instead of --resume, or another --out)")
    assert load_record(out)["status"] == "interrupted"  # the refusal changes nothing
    store(ds, tmp_path / "graphs")  # as it was: the resumed run ends as the uninterrupted one
    resumed = train(ds, data_dir, graph, out, resume=True)
    assert resumed["test"] == full["test"] and resumed["history"][-1]["loss"] == full["history"][-1]["loss"]
