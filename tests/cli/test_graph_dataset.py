"""`graphrec.graph_dataset`: the dataset a stored graph was built from, as the graph saw it
(its cold-start split drawn again), so that networkx marks the same cold nodes as
`graphrec inspect --graphml` (which uses it too)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import graphrec
from graphrec.cli import app
from graphrec.data import Dataset
from graphrec.errors import DataError
from graphrec.graphs import graph_dataset, load_graph
from graphrec.graphs.store import GraphMismatch

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("graph-dataset", "syn", n_users=60, n_items=40, n_clusters=3, seed=0)


@pytest.fixture(scope="module")
def cold_graphs(data_dir, tmp_path_factory):
    """kNN and co-interaction graphs of a 25% cold-start split of ``data_dir``."""
    out = tmp_path_factory.mktemp("graph-dataset-graphs") / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "both", "--k", "5", "--cold-start", "0.25", "--seed", "3",
              "--out", out, "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    return out


def cold_nodes(g) -> set:
    return {int(n) for n, cold in g.nodes(data="cold") if cold}


@pytest.mark.parametrize("kind", ["knn", "cooccur"])
def test_networkx_marks_the_cold_nodes_inspect_marks(cold_graphs, data_dir, tmp_path, kind):
    import networkx as nx

    path = cold_graphs / kind
    res = run("inspect", path, "--graphml", tmp_path / "g.graphml", "--sample", "10")
    assert res.exit_code == 0, res.output
    inspected = cold_nodes(nx.read_graphml(tmp_path / "g.graphml"))
    assert len(inspected) == 10  # round(0.25 * 40)
    graph, record = load_graph(path)
    # the folder itself holds no split: its dataset marks no item cold
    assert cold_nodes(graphrec.to_networkx(graph, Dataset.load(data_dir))) == set()
    ds = graphrec.graph_dataset(path)
    assert graphrec.graph_dataset is graph_dataset
    assert cold_nodes(graphrec.to_networkx(graph, ds)) == inspected
    assert sorted(inspected) == sorted(ds.cold_items.tolist())
    assert ds.fingerprint() == record.dataset_fingerprint
    # from its record alone, the same
    assert graph_dataset(record).fingerprint() == ds.fingerprint()


def test_a_moved_dataset_is_named_and_data_path_reads_it(cold_graphs, data_dir, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    graph = cold_graphs / "cooccur"
    record = load_graph(graph)[1]
    source = dict(record.options["source"])
    record.options["source"] = {"data": str(tmp_path / "gone")}
    with pytest.raises(DataError) as e:
        graph_dataset(record)
    assert str(e.value) == (f"the graph's recorded dataset {tmp_path / 'gone'} is not a graphrec dataset directory "
                            "any more (moved or deleted?): pass data_path naming the dataset it was built from")
    ds = graph_dataset(record, data_path=moved)
    assert ds.fingerprint() == record.dataset_fingerprint and len(ds.cold_items) == 10
    record.options["source"] = source
    # other data is refused with the record's rule (here: another cold-start split)
    other = tmp_path / "other"
    graphrec.cold_start(Dataset.load(data_dir), 0.25, 4).save(other)
    with pytest.raises(GraphMismatch, match="cold_start differs"):
        graph_dataset(graph, data_path=other)
    del record.options["source"]
    with pytest.raises(DataError, match="does not record the dataset it was built from .*: pass data_path"):
        graph_dataset(record)
