"""LightGCN: the shared model contract, the propagation rule by hand, real data."""

from __future__ import annotations

import numpy as np
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
