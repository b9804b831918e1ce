"""The shared losses: the norm penalty's value and gradient against autograd's own
``Tensor.norm()``, and BPR and the L2 penalty on numbers worked by hand."""

from __future__ import annotations

import math

import torch

from graphrec.nn import bpr_loss, l2_penalty, norm_penalty
from graphrec.testing import DEVICE


def test_norm_penalty_matches_autograd_norms_in_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (3, 5), (4,)]
    ts = [torch.randn(s, generator=g).to(DEVICE).requires_grad_() for s in shapes]
    refs = [t.detach().clone().requires_grad_() for t in ts]
    got = norm_penalty(*ts)
    want = sum(r.norm() for r in refs)
    torch.testing.assert_close(got, want)
    (2.5 * got).backward()
    (2.5 * want).backward()
    for t, r in zip(ts, refs):
        torch.testing.assert_close(t.grad, r.grad)


def test_norm_penalty_by_hand_and_a_zero_tensor_gets_a_zero_gradient():
    a = torch.tensor([[3.0, 4.0]], device=DEVICE, requires_grad=True)  # ||a|| = 5
    z = torch.zeros(2, 3, device=DEVICE, requires_grad=True)
    got = norm_penalty(a, z)
    assert float(got.detach()) == 5.0
    got.backward()
    torch.testing.assert_close(a.grad.cpu(), torch.tensor([[0.6, 0.8]]))  # a / ||a||
    assert torch.equal(z.grad.cpu(), torch.zeros(2, 3))  # not NaN (autograd's norm gives 0 too)


def test_bpr_loss_and_l2_penalty_by_hand():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    # mean of -log sigmoid(1) and -log sigmoid(-1)
    want = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
    torch.testing.assert_close(bpr_loss(pos, neg), torch.tensor(want))
    u, i = torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(l2_penalty(u, i), torch.tensor((1 + 4 + 1 + 9) / 4.0))
