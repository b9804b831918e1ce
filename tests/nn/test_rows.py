"""Scale-invariant row normalisation (:func:`graphrec.nn.unit_rows`): rows of 1e30 and
1e-30 normalise like the unscaled rows (float32 squares overflow / underflow there),
normal rows are bit for bit ``F.normalize``'s, zero rows stay zero with finite gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from graphrec.models.ctr.base import normalized_features
from graphrec.nn import unit_rows
from graphrec.testing import DEVICE


def _rows() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g)
    x[3] = 0.0  # an item without content
    return x.to(DEVICE)


@pytest.mark.parametrize("factor", [1e30, 1e-30, 1e-35])
def test_scaling_every_feature_gives_the_same_unit_rows(factor):
    x = _rows()
    want = unit_rows(x)
    got = unit_rows(x * factor)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not got[3].any()  # the zero row stays zero (no content)
    norms = got.norm(dim=1)
    torch.testing.assert_close(norms[[0, 1, 2, 4, 5]], torch.ones(5, device=DEVICE))


@pytest.mark.parametrize("factor", [1e30, 1e-30])
def test_ctr_normalized_features_are_scale_invariant(factor):
    x = _rows()
    want = normalized_features(x)
    torch.testing.assert_close(normalized_features(x * factor), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(want.norm(dim=1)[0], torch.tensor(math.sqrt(5.0), device=DEVICE))


def test_normal_rows_are_exactly_f_normalize_in_value_and_gradient():
    x = _rows().requires_grad_()
    ref = x.detach().clone().requires_grad_()
    got, want = unit_rows(x), F.normalize(ref, dim=1)
    assert torch.equal(got, want)
    w = torch.arange(30.0, device=DEVICE).reshape(6, 5)
    (got * w).sum().backward()
    (want * w).sum().backward()
    assert torch.equal(x.grad, ref.grad)
    assert torch.isfinite(x.grad).all()


def test_tiny_rows_get_finite_scale_free_gradients():
    x = (_rows() * 1e-30).requires_grad_()
    (unit_rows(x) * torch.ones_like(x)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_rows_of_every_scale_in_one_matrix():
    """Normal, zero, huge and tiny rows together: each normalises as on its own (the
    extreme rows take the rescaled path, the others F.normalize's formula)."""
    x = _rows()
    mixed = x.clone()
    mixed[1] *= 1e30
    mixed[4] *= 1e-30
    got = unit_rows(mixed)
    want = F.normalize(x, dim=1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert torch.equal(got[[0, 2, 5]], want[[0, 2, 5]]) and not got[3].any()
