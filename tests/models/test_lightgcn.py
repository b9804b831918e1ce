"""LightGCN: the shared model contract, the propagation rule by hand, real data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.graphs import normalized_bipartite
from graphrec.models import LightGCN
from graphrec.nn import to_torch_sparse
from graphrec.testing import RecommenderContract
from graphrec.train import build_model


class TestLightGCNContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("lightgcn", dataset, {"embedding_dim": 16, "num_layers": 2})


def test_propagation_matches_the_dense_formula():
    # 2 users, 3 items: R = [[1,1,0],[0,1,1]]
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    a = np.zeros((5, 5))
    a[:2, 2:] = r.toarray()
    a[2:, :2] = r.toarray().T
    d = a.sum(1) ** -0.5
    a_hat = d[:, None] * a * d[None, :]
    torch.manual_seed(0)
    model = LightGCN(2, 3, to_torch_sparse(normalized_bipartite(r)), embedding_dim=4, num_layers=2)
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach().double().numpy()
    expected = (e0 + a_hat @ e0 + a_hat @ a_hat @ e0) / 3
    users, items = model.embeddings()
    got = torch.cat([users, items]).detach().double().numpy()
    assert np.allclose(got, expected, atol=1e-6)
    # score = inner product of the final embeddings
    s = model(torch.tensor([1]), torch.tensor([2]))
    assert np.isclose(float(s.detach()), float(expected[1] @ expected[4]), atol=1e-5)


def test_loss_is_bpr_plus_l2_on_layer0():
    r = sp.csr_matrix(np.array([[1, 0], [0, 1]], dtype=np.float32))
    torch.manual_seed(0)
    model = LightGCN(2, 2, to_torch_sparse(normalized_bipartite(r)), embedding_dim=3, num_layers=1, reg_weight=0.5)
    u, p, n = torch.tensor([0]), torch.tensor([0]), torch.tensor([1])
    eu, ei = model.embeddings()
    bpr = -torch.log(torch.sigmoid((eu[0] * ei[0]).sum() - (eu[0] * ei[1]).sum()))
    l2 = (model.user_embedding.weight[0] ** 2).sum() + (model.item_embedding.weight[0] ** 2).sum() + (model.item_embedding.weight[1] ** 2).sum()
    assert torch.allclose(model.loss(u, p, n), bpr + 0.5 * l2 / 2)


def test_the_norm_regulariser_is_mmrecs_embloss_by_hand():
    """MMRec's LightGCN (EmbLoss) penalises (||U||_F + ||P||_F + ||N||_F) / B, not the
    squares over 2B: two triples, computed from the rows themselves."""
    r = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    adj = to_torch_sparse(normalized_bipartite(r))
    torch.manual_seed(0)
    model = LightGCN(2, 3, adj, embedding_dim=4, num_layers=2, reg_weight=0.3, reg_form="norm")
    u, p, n = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1, 2])
    eu, ei = model.embeddings()
    diff = (eu[u] * ei[p]).sum(1) - (eu[u] * ei[n]).sum(1)
    bpr = -torch.log(torch.sigmoid(diff)).mean()
    U, P, N = model.user_embedding.weight[u], model.item_embedding.weight[p], model.item_embedding.weight[n]
    norms = sum(float(torch.sqrt((m ** 2).sum())) for m in (U, P, N))
    assert torch.allclose(model.loss(u, p, n), bpr + 0.3 * norms / 2, atol=1e-6)
    assert model.couples_batch and not LightGCN(2, 3, adj).couples_batch
    with pytest.raises(ValueError, match="reg_form must be one of squared, norm"):
        LightGCN(2, 3, adj, reg_form="l1")


class TestLightGCNNormFormContract(RecommenderContract):
    def make_model(self, dataset):
        return build_model("lightgcn", dataset, {"embedding_dim": 8, "reg_form": "norm"})


def test_the_mmrec_grid_trains_mmrecs_regulariser():
    from graphrec.train.space import search_space

    assert search_space("lightgcn", "mmrec").fixed["reg_form"] == "norm"
