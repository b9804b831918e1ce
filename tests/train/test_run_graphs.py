"""A run stores the graphs its model was built over and a loaded run is built over them:
loading rebuilt every kNN graph (an exact search, items^2 work, no progress shown, at
every recommend / evaluate / export-graph; 22 s at 100k items, 82 s at 200k), and the
float sums of a search follow the thread count, so the loaded model could propagate over
other last bits than it trained over."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import graphrec.graphs.build as build
from graphrec.data import Dataset
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import DataError
from graphrec.graphs.build import GraphMemo, GraphSpec, build_item_graph, graph_memo
from graphrec.train import TrainConfig, load_run, run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _no_search(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a kNN search ran")

    monkeypatch.setattr(build, "knn_graph", refuse)


def test_a_memo_returns_the_graph_it_holds_without_a_search(monkeypatch):
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    spec = GraphSpec(kind="knn", k=5, normalization="sym")
    memo = GraphMemo()
    with graph_memo(memo):
        first = build_item_graph(ds, spec)
    assert list(memo.entries) == [GraphMemo.key(ds, spec)]
    first.graph.data[:] = 0.0  # a builder changing its graph in place changes no entry
    _no_search(monkeypatch)
    with graph_memo(memo):
        again = build_item_graph(ds, spec)
    monkeypatch.undo()
    plain = build_item_graph(ds, spec)  # no memo: built
    assert (again.graph != plain.graph).nnz == 0 and again.record.checksum == plain.record.checksum
    np.testing.assert_array_equal(again.fused.x, plain.fused.x)  # MM-GEF's builder reads the fused features
    # another spec or other data is another entry: built, not taken
    other = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=1)
    assert GraphMemo.key(other, spec) != GraphMemo.key(ds, spec)
    assert GraphMemo.key(ds, GraphSpec(kind="knn", k=6, normalization="sym")) != GraphMemo.key(ds, spec)


@pytest.fixture(scope="module")
def mmgef_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run-graphs")
    synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=2).save(root / "data")
    ds = Dataset.load(root / "data")
    torch.manual_seed(0)
    record, model = run_training(ds, "mmgef", {"embedding_dim": 8}, TrainConfig(epochs=2, progress=False),
                                 out=root / "run")
    return root, record, model


def test_a_loaded_run_is_built_over_the_graphs_it_stored_without_a_search(mmgef_run, monkeypatch):
    root, record, model = mmgef_run
    (entry,) = record["run_graphs"]  # MM-GEF's content kNN graph
    assert entry["key"]["spec"]["kind"] == "knn" and (root / "run" / entry["dir"] / "graph.npz").is_file()
    assert json.loads((root / "run" / "record.json").read_text())["run_graphs"] == record["run_graphs"]
    _no_search(monkeypatch)
    _, _, loaded = load_run(root / "run")
    model.eval()
    with torch.no_grad():
        users = torch.arange(20)
        torch.testing.assert_close(loaded.scorer()(users), model.scorer()(users), rtol=0, atol=0)


def test_a_stored_graph_changed_or_missing_is_refused(mmgef_run, tmp_path):
    import shutil

    root, record, _ = mmgef_run
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    graph_dir = run / record["run_graphs"][0]["dir"]
    other = tmp_path / "other"
    synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=9).save(other)
    replacement = build_item_graph(Dataset.load(other), GraphSpec(kind="knn", k=10, normalization="sym"))
    from graphrec.graphs.store import save_graph

    save_graph(graph_dir, replacement.graph, replacement.record, overwrite=True)  # a valid graph, not the run's
    with pytest.raises(DataError, match=r"not the graph run .* was trained over .*: restore it or train again"):
        load_run(run)
    shutil.rmtree(graph_dir)
    with pytest.raises(DataError, match=r"lists its graph graphs/0 but the folder is missing"):
        load_run(run)


def test_reevaluate_propagates_once_for_both_splits(mmgef_run, monkeypatch):
    """reevaluate made the model's scorer (a full propagation) once per split."""
    from graphrec.models.mmgef import MMGEF
    from graphrec.train import reevaluate

    root, record, _ = mmgef_run
    made = []
    real = MMGEF.scorer
    monkeypatch.setattr(MMGEF, "scorer", lambda self: made.append(1) or real(self))
    again = reevaluate(root / "run")
    assert len(made) == 1
    for split in ("valid", "test"):
        assert again[split]["all"]["recall@20"] == pytest.approx(
            (record["best_valid"] if split == "valid" else record["test"]["all"])["recall@20"], abs=1e-12)
