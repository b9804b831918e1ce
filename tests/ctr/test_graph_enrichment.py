"""Graph enrichment of CTR models: graphs built from training behaviours, stored graphs
checked against the samples' dataset, propagation over the sparse normalised graph."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.errors import ConfigError, DataError
from graphrec.graphs import GraphSpec, build_item_graph, save_graph
from graphrec.models.ctr.base import ItemGraphPropagation
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.nn import to_torch_sparse
from graphrec.train.ctr import CTRConfig, build_ctr_model, check_ctr_model, resolve_item_graphs, run_ctr


@pytest.fixture(scope="module")
def data():
    return contract_ctr_data()


def test_propagation_by_hand():
    # path graph 0 - 1 - 2, symmetric normalisation
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    d = np.asarray(a.sum(1)).ravel() ** -0.5
    a_hat = sp.diags(d) @ a @ sp.diags(d)
    prop = ItemGraphPropagation([to_torch_sparse(a_hat)], num_layers=2)
    e = torch.eye(3)
    dense = torch.tensor(a_hat.toarray(), dtype=torch.float32)
    expect = (e + dense @ e + dense @ dense @ e) / 3
    assert torch.allclose(prop(e), expect, atol=1e-6)
    assert torch.allclose(ItemGraphPropagation([to_torch_sparse(a_hat)], num_layers=0)(e), e)


def test_two_graphs_weighted_by_softmax():
    eye = to_torch_sparse(sp.identity(3, format="csr", dtype=np.float32))
    swap = to_torch_sparse(sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)))
    prop = ItemGraphPropagation([eye, swap], num_layers=1)
    with torch.no_grad():
        prop.logits.copy_(torch.tensor([0.0, np.log(3.0)]))  # weights 1/4, 3/4
    x = torch.tensor([[1.0], [0.0], [2.0]])
    # layer 1: 1/4 x + 3/4 swap x = [[0.25], [0.75], [2]]; mean with layer 0
    assert torch.allclose(prop(x), torch.tensor([[0.625], [0.375], [2.0]]))


def test_graphs_from_training_behaviours_only(data):
    graphs, records = resolve_item_graphs(data, "cooccur", cooccur_top_k=None)
    assert len(graphs) == 1 and records[0]["kind"] == "cooccur"
    g = graphs[0].to_dense()
    assert torch.allclose(g, g.T, atol=1e-6) and (torch.diagonal(g) == 0).all()
    # an edge exists only between items that some user consumed together in TRAIN
    train = data.dataset.train
    co = (train.T @ train).toarray() > 0
    np.fill_diagonal(co, False)
    assert np.array_equal(g.numpy() > 0, co)
    both, recs = resolve_item_graphs(data, "both")
    assert [r["kind"] for r in recs] == ["knn", "cooccur"] and len(both) == 2
    assert resolve_item_graphs(data, "none") == (None, [])


def test_stored_graph_is_provenance_checked(data, tmp_path):
    built = build_item_graph(data.dataset, GraphSpec(kind="knn", k=5))
    save_graph(tmp_path / "ok", built.graph, built.record)
    graphs, recs = resolve_item_graphs(data, str(tmp_path / "ok"))
    assert len(graphs) == 1 and recs[0]["path"] == str(tmp_path / "ok")
    # a graph built from other data (here: the dataset before the CTR split) is refused
    other = data.dataset.replace(splits={"train": data.dataset.train + data.dataset.test}, timestamps=None)
    stale = build_item_graph(other, GraphSpec(kind="cooccur"))
    save_graph(tmp_path / "stale", stale.graph, stale.record)
    with pytest.raises(DataError):
        resolve_item_graphs(data, str(tmp_path / "stale"))


def test_enriched_run_records_graphs(data):
    rec, model = run_ctr(data, "din", {"id_dim": 8, "modality_dim": 8, "hidden": (16,)},
                         CTRConfig(epochs=2, batch_size=64, progress=False), item_graph="both")
    assert rec["item_graph"]["spec"] == "both" and len(rec["item_graph"]["graphs"]) == 2
    assert "graph_weight_0" in rec["history"][-1]["model"]
    assert model.item_enc.ids.propagation is not None


def test_item_graphs_without_effect_are_refused(data):
    # a graph the model would record but never use: one line naming the fix
    with pytest.raises(ConfigError, match="marn with --modalities image has no item ID embedding to enrich: drop "
                                          "--item-graph or add id to --modalities"):
        check_ctr_model(data, "marn", {"modalities": ["image"], "adversarial": "none"}, "both")
    with pytest.raises(ConfigError, match="--graph-layers 0 propagates nothing over the item graph: drop --item-graph"):
        check_ctr_model(data, "gmmf", {"graph_layers": 0}, "both")
    graphs, _ = resolve_item_graphs(data, "cooccur")
    with pytest.raises(ConfigError, match="marn with --modalities image has no item ID embedding"):
        build_ctr_model("marn", data, {"modalities": ["image"], "adversarial": "none"}, graphs)  # the builder too
    with pytest.raises(ConfigError, match="--item-graph 'nowhere' is neither"):
        check_ctr_model(data, "din", {}, "nowhere")
    with pytest.raises(ConfigError, match=r"graph layers \(--graph-layers\) must be >= 0, got -1"):
        check_ctr_model(data, "din", {"graph_layers": -1}, "knn")
    # what uses the graph passes, and so does no graph at all
    check_ctr_model(data, "marn", {"modalities": ["id", "image"]}, "both")
    check_ctr_model(data, "gmmf", {"graph_layers": 1}, "knn")
    check_ctr_model(data, "marn", {"modalities": ["image"], "adversarial": "none"}, "none")


def test_knn_graph_of_data_without_features_names_the_ctr_fix(data):
    """The graph builder's message said "build --kind cooccur" (graphrec build-graph's
    flag); resolve_item_graphs and check_ctr_model name the CTR option."""
    import dataclasses

    bare = dataclasses.replace(data, dataset=data.dataset.replace(item_features={}))
    for graph in ("knn", "both"):
        message = (f"--item-graph {graph} builds a kNN graph of the items' content features, and these data have "
                   "none: pass --item-graph cooccur")
        with pytest.raises(DataError, match=message):
            resolve_item_graphs(bare, graph)
        with pytest.raises(DataError, match=message):
            check_ctr_model(bare, "din", {}, graph)
    check_ctr_model(bare, "din", {}, "cooccur")
    assert len(resolve_item_graphs(bare, "cooccur")[0]) == 1


def test_the_documented_build_graph_flags_store_the_graphs_a_ctr_run_builds(data, tmp_path):
    """docs/models/ctr.md: `graphrec build-graph --data SAMPLES/dataset --kind both --k 10
    --cooccur-top-k 20 --symmetric` stores the graphs `--item-graph both` builds (at the
    run's --graph-k and --cooccur-top-k defaults): --item-graph DIR/knn,DIR/cooccur trains
    on the same tensors (--symmetric only records the run's recipe: the run symmetrises
    what it reads). build-graph's own defaults keep every co-interaction: another graph."""
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.data.ctr import CTRData

    data.save(tmp_path / "s")
    stored = CTRData.load(tmp_path / "s")
    built, _ = resolve_item_graphs(stored, "both")  # the run's defaults: k 10, cooccur_top_k 20
    for out, flags in (("g", ["--k", "10", "--cooccur-top-k", "20", "--symmetric"]),
                       ("nosym", ["--k", "10", "--cooccur-top-k", "20"]), ("default", [])):
        res = CliRunner().invoke(app, ["build-graph", "--data", str(tmp_path / "s" / "dataset"), "--kind", "both",
                                       *flags, "--threads", "1", "--quiet", "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    for out in ("g", "nosym"):
        same, _ = resolve_item_graphs(stored, f"{tmp_path / out / 'knn'},{tmp_path / out / 'cooccur'}")
        for a, b in zip(built, same):
            assert torch.equal(a.to_dense(), b.to_dense()), out
    other, _ = resolve_item_graphs(stored, str(tmp_path / "default" / "cooccur"))
    assert not torch.equal(other[0].to_dense(), built[1].to_dense())
