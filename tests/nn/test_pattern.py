"""Fixed-pattern sparse products with learned values (graphrec.nn.pattern)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.nn import (
    SparsePattern,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    register_pattern,
    row_normalized_values,
    sym_normalized_values,
)

# an asymmetric 5-node pattern (row 2 without entries, column 4 with one)
A = np.array(
    [[0, 1, 1, 0, 0], [1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=np.float64
)


def _pattern() -> SparsePattern:
    return SparsePattern.from_csr(sp.csr_matrix(A))


def test_pattern_and_its_transpose():
    p = _pattern()
    assert p.nnz == 8 and p.n == 5
    assert p.crow.tolist() == [0, 2, 4, 4, 7, 8]
    assert p.cols.tolist() == [1, 2, 0, 3, 0, 1, 4, 2]
    assert p.rows.tolist() == [0, 0, 1, 1, 3, 3, 3, 4]
    v = torch.arange(1.0, 9.0, dtype=torch.float64)
    dense = p.matrix(v).to_dense()
    assert torch.equal(p.transpose(v).to_dense(), dense.t())
    assert torch.equal(dense != 0, torch.from_numpy(A != 0))


def test_from_indices_sorts_and_refuses_duplicates():
    p = SparsePattern.from_indices(torch.tensor([3, 0, 1]), torch.tensor([0, 2, 1]), 4)
    assert p.rows.tolist() == [0, 1, 3] and p.cols.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="duplicate"):
        SparsePattern.from_indices(torch.tensor([1, 1]), torch.tensor([2, 2]), 3)


def test_from_union_maps_every_position_to_its_entry():
    rows = torch.tensor([0, 2, 0, 1, 2])
    cols = torch.tensor([1, 0, 1, 1, 0])
    p, pos = SparsePattern.from_union(rows, cols, 3)
    assert list(zip(p.rows.tolist(), p.cols.tolist())) == [(0, 1), (1, 1), (2, 0)]
    assert pos.tolist() == [0, 2, 0, 1, 2]
    summed = torch.zeros(p.nnz).index_add(0, pos, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert summed.tolist() == [4.0, 4.0, 7.0]  # (0,1): 1+3, (1,1): 4, (2,0): 2+5


def test_gradients_match_finite_differences():
    p = _pattern()
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(p.nnz, dtype=torch.float64, generator=gen, requires_grad=True)
    x = torch.randn(5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, h: pattern_spmm(p, v, h), (values, x))
    dense = torch.zeros(5, 5, dtype=torch.float64).index_put((p.rows, p.cols), values.detach())
    assert torch.allclose(pattern_spmm(p, values, x), dense @ x)
    with torch.no_grad():
        assert torch.allclose(pattern_spmm(p, values, x), dense @ x)


def test_pattern_dot_is_the_sampled_product_with_its_gradients():
    p = _pattern()
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    full = (a @ b.t()).detach()
    assert torch.allclose(pattern_dot(p, a, b), full[p.rows, p.cols])
    assert torch.autograd.gradcheck(lambda s, t: pattern_dot(p, s, t), (a, b))
    # the same tensor on both sides (cosines of one embedding table)
    assert torch.autograd.gradcheck(lambda s: pattern_dot(p, s, s), (a,))


def test_normalised_values_by_hand():
    p = _pattern()
    v = torch.ones(p.nnz, dtype=torch.float64)
    deg = A.sum(1)  # row sums 2, 2, 0, 3, 1
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
    sym = (inv[:, None] * A * inv[None, :])
    got = p.matrix(sym_normalized_values(p, v)).to_dense().numpy()
    assert np.allclose(got, sym)
    row = A / np.where(deg > 0, deg, 1)[:, None]
    assert np.allclose(p.matrix(row_normalized_values(p, v)).to_dense().numpy(), row)
    # differentiable: the gradient of a weighted sum reaches the raw values
    w = torch.rand(p.nnz, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: sym_normalized_values(p, t + 0.5), (w,))


def test_registered_pattern_moves_with_the_module():
    m = torch.nn.Module()
    register_pattern(m, "g", _pattern())
    assert "g_crow" not in m.state_dict()  # data, not a checkpointed parameter
    back = module_pattern(m, "g").to("cpu")
    assert torch.equal(back.cols, _pattern().cols) and back.n == 5
    m.to(torch.float64)  # integer buffers keep their dtype
    assert module_pattern(m, "g").crow.dtype == torch.long
