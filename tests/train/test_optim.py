"""The optimiser of the fit loops: torch's fused Adam, the same updates as its loop."""

from __future__ import annotations

import copy

import pytest
import torch

from graphrec.train.optim import adam


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(50, 8, generator=g)), torch.nn.Parameter(torch.randn(8, generator=g))]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_fused_adam_takes_the_steps_of_torchs_loop(weight_decay):
    fused, loop = _params(0), _params(0)
    opt_fused = adam(fused, lr=0.01, weight_decay=weight_decay)
    opt_loop = torch.optim.Adam(loop, lr=0.01, weight_decay=weight_decay, foreach=False)
    assert opt_fused.defaults["fused"] is True
    target = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        for params, opt in ((fused, opt_fused), (loop, opt_loop)):
            opt.zero_grad()
            ((params[0] - target) ** 2).sum().add(params[1].pow(3).sum()).backward()
            opt.step()
    for a, b, start in zip(fused, loop, _params(0)):
        assert not torch.equal(a, start)  # 20 steps moved them ...
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)  # ... the same way


def test_a_device_without_the_fused_kernel_gets_torchs_default():
    opt = adam([torch.nn.Parameter(torch.zeros(3, device="meta"))], lr=0.1)
    assert not opt.defaults["fused"]


def test_the_state_of_torchs_loop_loads_into_the_fused_optimiser():
    # a run interrupted before graphrec used the fused kernel resumes from its saved Adam state
    params = _params(0)
    old = torch.optim.Adam(params, lr=0.01, foreach=False)
    params[0].sum().backward()
    old.step()
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt, ref = adam(params, lr=0.01), torch.optim.Adam(twin, lr=0.01, foreach=False)
    opt.load_state_dict(copy.deepcopy(old.state_dict()))  # as read back from a file: no shared tensors
    ref.load_state_dict(copy.deepcopy(old.state_dict()))
    for ps, o in ((params, opt), (twin, ref)):
        o.zero_grad()
        ps[0].pow(2).sum().backward()
        o.step()
    assert opt.state[params[0]]["step"].item() == 2
    torch.testing.assert_close(params[0], twin[0], rtol=1e-6, atol=1e-6)
