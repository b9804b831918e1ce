"""Sparse propagation equals the dense product, forward and backward."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import pytest
import torch

from graphrec.nn import propagate, to_torch_sparse


def test_forward_and_backward_match_dense():
    rng = np.random.default_rng(0)
    a = sp.random(30, 20, density=0.2, format="csr", random_state=1, dtype=np.float32)
    dense = torch.tensor(a.toarray())
    x = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    w = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    y = propagate(to_torch_sparse(a), x, adj_t=to_torch_sparse(a.T))
    (y * w).sum().backward()
    y2 = dense @ x2
    (y2 * w).sum().backward()
    assert torch.allclose(y, y2, atol=1e-5)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_symmetric_shortcut_and_autograd_path_agree():
    a = sp.random(25, 25, density=0.2, format="csr", random_state=2, dtype=np.float32)
    a = (a + a.T).tocsr()
    t = to_torch_sparse(a)
    x = torch.randn(25, 3, requires_grad=True)
    propagate(t, propagate(t, x, adj_t=t), adj_t=t).sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    propagate(t, propagate(t, x)).sum().backward()
    assert torch.allclose(g1, x.grad, atol=1e-5)


def test_weighted_sparse_sum_by_hand():
    from graphrec.errors import ConfigError
    from graphrec.nn import weighted_sparse_sum

    a = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    b = torch.tensor([[0.0, 4.0, 5.0], [0.0, 0.0, 0.0], [6.0, 0.0, 0.0]])
    got = weighted_sparse_sum([a.to_sparse_csr(), b.to_sparse_coo()], torch.tensor([0.25, 2.0]))
    assert got.layout == torch.sparse_csr
    want = torch.tensor([[0.0, 8.25, 10.0], [0.5, 0.0, 0.0], [12.0, 0.0, 0.75]])
    torch.testing.assert_close(got.to_dense(), want)
    assert got.values().numel() == 5  # overlapping entries (0, 1) merged
    with pytest.raises(ConfigError, match="one weight per matrix"):
        weighted_sparse_sum([a.to_sparse_csr()], [1.0, 2.0])
    with pytest.raises(ConfigError, match="shapes differ"):
        weighted_sparse_sum([a.to_sparse_csr(), torch.eye(2).to_sparse_csr()], [1.0, 1.0])
