"""The baselines beside MM-GEF and LATTICE: MF-BPR (model contract, real data) and the
content-only item-kNN recommender CB (scores by hand, cold items, nothing to train)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data import cold_start
from graphrec.errors import DataError
from graphrec.graphs.build import GraphSpec, build_item_graph
from graphrec.graphs.fuse import fuse_features
from graphrec.graphs.knn import knn_graph
from graphrec.graphs.store import save_graph
from graphrec.models import MF, ContentKNN
from graphrec.nn import to_torch_sparse
from graphrec.testing import DEVICE, RecommenderContract, contract_dataset
from graphrec.train import TrainConfig, build_model, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestMFContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("mf", dataset, {"embedding_dim": 16})


def test_mf_scores_are_inner_products_and_the_loss_is_bpr():
    torch.manual_seed(0)
    m = MF(3, 4, embedding_dim=2, reg_weight=0.5)
    with torch.no_grad():
        m.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        m.item_embedding.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, -1.0], [2.0, 0.0], [0.5, 0.5]]))
    assert m(torch.tensor([0, 1, 2]), torch.tensor([2, 1, 0])).tolist() == [2.0, -2.0, 2.0]
    u, p, n = torch.tensor([0]), torch.tensor([2]), torch.tensor([1])
    # BPR: softplus(0 - 2) ; L2: 0.5 * (1 + 4 + 1) / 2
    assert m.loss(u, p, n).item() == pytest.approx(np.log1p(np.exp(-2.0)) + 0.5 * 6 / 2)


def test_mf_beats_most_popular_on_lfm2k(shared_data):
    from graphrec.data.formats import read_mmrec

    ds = read_mmrec(shared_data / "lfm2k")
    config = TrainConfig(epochs=8, lr=1e-2, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "mf", {"embedding_dim": 32}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    assert record["test"]["all"]["recall@20"] > 1.2 * pop["recall@20"]


# --------------------------------------------------------------- CB

# 2 users x 4 items; item similarities (row j: j's neighbours)
HIST = np.array([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=np.float32)
SIM = np.array([[0, 0.9, 0.2, 0], [0.8, 0, 0, 0.5], [0, 0, 0, 0.7], [0.1, 0, 0.6, 0]], dtype=np.float32)


def test_cb_scores_sum_similarities_from_the_history():
    m = ContentKNN(2, 4, to_torch_sparse(sp.csr_matrix(HIST)), to_torch_sparse(sp.csr_matrix(SIM)))
    want = HIST @ SIM  # user 1: [0.8, 0.9, 0.2, 0.5]
    assert np.allclose(m.scorer()(torch.tensor([0, 1])).numpy(), want)
    assert np.allclose(m.scorer()(torch.tensor([1, 1, 0])).numpy(), want[[1, 1, 0]])
    assert m(torch.tensor([1, 0]), torch.tensor([3, 1])).tolist() == pytest.approx([0.5, 0.9])
    # candidates [3, 1]: the columns of S, summed over each history (user 1: 0.5, 0.9)
    assert np.allclose(m.scorer(torch.tensor([3, 1]))(torch.tensor([0, 1])).numpy(), [[0.0, 0.9], [0.5, 0.9]])
    assert list(m.parameters()) == []
    with pytest.raises(NotImplementedError, match="scorer"):
        m.embeddings()


def test_cb_trains_nothing_and_reaches_cold_items():
    ds = cold_start(contract_dataset(), 0.2, 0)
    record, model = run_training(ds, "cb", {"k": 5}, TrainConfig(epochs=3, ks=(20,), progress=False))
    assert record["best_epoch"] == 0 and record["timings"]["epochs"] == 0
    # cold items have no training interactions, yet content kNN ranks them
    assert record["test"]["cold"]["recall@20"] > 0
    s = model.scorer()(torch.arange(ds.n_users)).numpy()
    sim = knn_graph(fuse_features(ds.item_features).x, 5).toarray()  # early-fused, k = 5
    assert np.allclose(s, ds.train.toarray() @ sim, atol=1e-5)


def test_cb_stored_graph_must_be_unnormalised(tmp_path):
    ds = contract_dataset()
    raw = build_item_graph(ds, GraphSpec(kind="knn", k=5))
    save_graph(tmp_path / "raw", raw.graph, raw.record)
    m = build_model("cb", ds, {"graphs": [str(tmp_path / "raw")]})
    assert np.allclose(m.similarity_t.to_dense().numpy(), raw.graph.toarray().T)
    normed = build_item_graph(ds, GraphSpec(kind="knn", k=5, normalization="sym"))
    save_graph(tmp_path / "sym", normed.graph, normed.record)
    with pytest.raises(DataError, match="cb uses raw cosines"):
        build_model("cb", ds, {"graphs": [str(tmp_path / "sym")]})


def test_cb_beats_most_popular_on_cold_items_of_amazon_scientific(shared_data):
    from graphrec.data.formats import read_unisrec

    ds = cold_start(read_unisrec(shared_data / "amazon-scientific", unseen="keep"), 0.2, 0)
    record, _ = run_training(ds, "cb", {}, TrainConfig(ks=(20,), progress=False), device=DEVICE)
    assert record["test"]["cold"]["users"] > 300
    # cold items never occur in training: popularity and CF embeddings cannot rank them
    assert record["test"]["cold"]["recall@20"] > 0.02
