"""`graphrec export-graph RUN --out DIR --overwrite` never writes over the run's own input:
a stored graph it was trained with (``--graph DIR``) or a graph it keeps under RUN/graphs.
Refused with one line before anything is written; the run still loads afterwards."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.store import read_record, save_graph
from graphrec.testing import one_error_line
from graphrec.train import TrainConfig, export_item_graph, load_record, reevaluate, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = dict(epochs=1, eval_every=1, lr=0.01, batch_size=256, ks=(10,), progress=False, seed=1)
PARAMS = {"embedding_dim": 8, "num_layers": 1}


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)


def export(run, out):
    return CliRunner().invoke(app, ["export-graph", str(run), "--out", str(out), "--overwrite"])


def test_the_stored_graph_a_run_trained_with_is_not_replaced(ds, tmp_path, monkeypatch):
    data = ds.save(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    built = build_item_graph(ds, GraphSpec(kind="knn", k=10, modalities=("text",)))
    graph = tmp_path / "graphs" / "knn"
    save_graph(graph, built.graph, built.record)
    run = tmp_path / "run"
    # a path given relatively is recorded absolute (as the CLI records it)
    record = run_training(ds, "lattice", dict(PARAMS, graphs=["graphs/knn"]), TrainConfig(**CONFIG), out=run,
                          data_path=data, command="graphrec train lattice --graph graphs/knn")[0]
    before = (graph / "graph.npz").read_bytes(), (graph / "graph.json").read_bytes()
    line = one_error_line(export(run, graph))
    assert line == (f"error: --out {graph} is the stored graph it was trained with, {graph}, of run {run}: "
                    "exporting over it would replace the run's own input (the run could not be loaded again): "
                    "choose another --out")
    # from another folder too
    monkeypatch.chdir(tmp_path / "data")
    one_error_line(export(run, graph))
    with pytest.raises(ConfigError, match="the run's own input"):
        export_item_graph(run, graph, overwrite=True)
    monkeypatch.chdir(tmp_path)
    assert ((graph / "graph.npz").read_bytes(), (graph / "graph.json").read_bytes()) == before
    assert reevaluate(run)["test"] == record["test"]  # the run loads as trained
    # another --out is fine
    res = export(run, tmp_path / "exported")
    assert res.exit_code == 0, res.output
    assert read_record(tmp_path / "exported").kind == "model"


def test_the_graphs_a_run_keeps_are_not_replaced(ds, tmp_path):
    data = ds.save(tmp_path / "data")
    run = tmp_path / "run"
    record = run_training(ds, "lattice", dict(PARAMS), TrainConfig(**CONFIG), out=run, data_path=data)[0]
    kept = load_record(run)["run_graphs"]
    assert kept, "lattice keeps the kNN graphs it was built over"
    own = run / kept[0]["dir"]
    before = (own / "graph.npz").read_bytes()
    line = one_error_line(export(run, own))
    assert f"--out {own} is a graph it keeps and is built over, {own}, of run {run}:" in line, line
    assert line.endswith("choose another --out"), line
    assert (own / "graph.npz").read_bytes() == before
    assert reevaluate(run)["test"] == record["test"]


def test_a_stored_graph_given_as_the_run_points_to_inspect(ds, tmp_path):
    """export-graph GRAPH said only that GRAPH is no run directory; and to_networkx of a user
    graph without nodes="users" said the graph has the wrong number of items."""
    from graphrec.graphs.export import to_networkx

    built = build_item_graph(ds, GraphSpec(kind="cooccur", cooccur_top_k=5))
    save_graph(tmp_path / "g" / "cooccur", built.graph, built.record)
    line = one_error_line(export(tmp_path / "g" / "cooccur", tmp_path / "out"))
    assert "is a stored graph, not a run" in line and f"graphrec inspect {tmp_path / 'g' / 'cooccur'}" in line
    users = build_item_graph(ds, GraphSpec(kind="user-cooccur", cooccur_top_k=5)).graph
    with pytest.raises(Exception, match=r"as many as dataset .* has users, not items \(40\): a graph of users takes "
                                        r"nodes='users'"):
        to_networkx(users, ds)
    assert to_networkx(users, ds, nodes="users").number_of_nodes() == ds.n_users == 60
