"""The co-interaction graph (MM-GEF eq. 3-4) on matrices small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data import build_dataset, cold_start
from graphrec.errors import ConfigError, DataError
from graphrec.graphs.cooccur import block_bounds, cooccurrence_factors, cooccurrence_graph, expected_products
from graphrec.graphs.normalize import normalize_adjacency

# 4 users x 5 items; item 4 has no interaction.
#   u0: 0 1 2    u1: 0 1    u2: 1 3    u3: 0 1 3
R = sp.csr_matrix(
    np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 1, 0, 1, 0],
            [1, 1, 0, 1, 0],
        ],
        dtype=np.float32,
    )
)
# C_ij = users with both i and j (i != j):
#   (0,1): u0 u1 u3 = 3   (0,2): u0 = 1   (0,3): u3 = 1   (1,2): u0 = 1   (1,3): u2 u3 = 2
C = np.array(
    [
        [0, 3, 1, 1, 0],
        [3, 0, 1, 2, 0],
        [1, 1, 0, 0, 0],
        [1, 2, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)


def brute(r: sp.spmatrix, top_k=None, min_count=1, normalize_max=True, symmetric=False) -> np.ndarray:
    """Dense reference, one row at a time (fine for tiny matrices)."""
    b = (r.toarray() != 0).astype(np.int64)
    c = b.T @ b
    np.fill_diagonal(c, 0)
    c[c < min_count] = 0
    if top_k is not None:
        out = np.zeros_like(c)
        for i in range(c.shape[0]):
            ranked = sorted((-c[i, j], j) for j in range(c.shape[1]) if c[i, j] > 0)
            for _, j in ranked[:top_k]:
                out[i, j] = c[i, j]
        c = np.maximum(out, out.T) if symmetric else out
    c = c.astype(np.float32)
    if normalize_max and c.max() > 0:
        c /= c.max()
    return c


def test_counts_by_hand():
    g = cooccurrence_graph(R, normalize_max=False)
    assert g.dtype == np.float32 and g.shape == (5, 5) and isinstance(g, sp.csr_matrix)
    assert np.array_equal(g.toarray(), C)
    assert g.has_sorted_indices and g.diagonal().sum() == 0
    assert (g != g.T).nnz == 0  # unpruned C is symmetric


def test_max_normalisation_eq4():
    g = cooccurrence_graph(R)
    assert np.allclose(g.toarray(), C / 3)
    assert g.max() == 1.0 and g[0, 1] == 1.0 and g[1, 3] == pytest.approx(2 / 3)


def test_min_count_by_hand():
    g = cooccurrence_graph(R, min_count=2, normalize_max=False).toarray()
    expected = np.zeros((5, 5), np.float32)
    expected[0, 1] = expected[1, 0] = 3
    expected[1, 3] = expected[3, 1] = 2
    assert np.array_equal(g, expected)


def test_top_k_by_hand_ties_to_lower_index_and_asymmetry():
    g1 = cooccurrence_graph(R, top_k=1, normalize_max=False).toarray()
    expected = np.zeros((5, 5), np.float32)
    expected[0, 1] = 3  # row 0: 3 > 1 = 1
    expected[1, 0] = 3
    expected[2, 0] = 1  # row 2: tie 1 (item 0) vs 1 (item 1): lower index wins
    expected[3, 1] = 2
    assert np.array_equal(g1, expected)
    assert g1[2, 0] != g1[0, 2]  # top-k per row is not symmetric
    g2 = cooccurrence_graph(R, top_k=2, normalize_max=False).toarray()
    expected2 = np.zeros((5, 5), np.float32)
    expected2[0, [1, 2]] = [3, 1]  # tie between items 2 and 3 at count 1: item 2
    expected2[1, [0, 3]] = [3, 2]
    expected2[2, [0, 1]] = [1, 1]
    expected2[3, [0, 1]] = [1, 2]
    assert np.array_equal(g2, expected2)
    assert (np.count_nonzero(g2, axis=1) <= 2).all()


def test_symmetric_union_of_top_k():
    g = cooccurrence_graph(R, top_k=1, symmetric=True, normalize_max=False).toarray()
    expected = np.zeros((5, 5), np.float32)
    for i, j, v in [(0, 1, 3), (0, 2, 1), (1, 3, 2)]:
        expected[i, j] = expected[j, i] = v
    assert np.array_equal(g, expected)
    # without pruning, symmetric changes nothing
    assert np.array_equal(cooccurrence_graph(R, symmetric=True).toarray(), cooccurrence_graph(R).toarray())


def test_binarises_values_duplicates_and_explicit_zeros():
    r = sp.coo_matrix(
        (np.array([5.0, 2.0, 1.0, 0.0, 3.0]), (np.array([0, 0, 0, 1, 1]), np.array([0, 1, 1, 0, 1]))),
        shape=(2, 3),
    )
    g = cooccurrence_graph(r, normalize_max=False).toarray()
    # user 0 has items 0, 1 (duplicate merged); user 1 has item 1 (its item-0 value is 0)
    assert g[0, 1] == 1 and g[1, 0] == 1 and g.sum() == 2


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 11, 64, None])
@pytest.mark.parametrize("opts", [{}, {"top_k": 3}, {"min_count": 2}, {"top_k": 2, "min_count": 2, "symmetric": True}])
def test_block_sizes_give_identical_results(block_size, opts):
    r = sp.random(40, 23, density=0.3, random_state=1, format="csr")  # 23 items: no size divides it
    ref = cooccurrence_graph(r, block_size=23, **opts)
    g = cooccurrence_graph(r, block_size=block_size, **opts)
    assert (g != ref).nnz == 0 and np.array_equal(g.indptr, ref.indptr) and np.array_equal(g.indices, ref.indices)
    assert np.array_equal(g.toarray(), brute(r, **opts))


def test_matches_dense_reference_on_random_matrices():
    rng = np.random.default_rng(3)
    for t in range(60):
        nu, ni = int(rng.integers(1, 30)), int(rng.integers(1, 25))
        r = sp.random(nu, ni, density=float(rng.uniform(0.05, 0.9)), random_state=t, format="csr")
        opts = dict(
            top_k=[None, 1, 2, 5][t % 4],
            min_count=int(rng.integers(1, 4)),
            normalize_max=bool(t % 2),
            symmetric=bool(t % 3 == 0),
        )
        g = cooccurrence_graph(r, block_size=[None, 1, 4][t % 3], **opts)
        assert np.array_equal(g.toarray(), brute(r, **opts)), opts


def test_top_k_with_large_counts_and_many_ties():
    # dense enough for counts in the hundreds (several power-of-two buckets) and many ties
    rng = np.random.default_rng(7)
    r = sp.csr_matrix((rng.random((1500, 12)) < rng.uniform(0.2, 0.9, size=12)).astype(np.float32))
    for k in (1, 3, 6, 11):
        g = cooccurrence_graph(r, top_k=k, normalize_max=False)
        assert np.array_equal(g.toarray(), brute(r, top_k=k, normalize_max=False))
    assert cooccurrence_graph(r, normalize_max=False).max() > 256


def test_empty_and_degenerate_inputs():
    one_each = sp.identity(4, format="csr")  # every user has one item: no pairs
    g = cooccurrence_graph(one_each)
    assert g.shape == (4, 4) and g.nnz == 0
    assert cooccurrence_graph(sp.csr_matrix((3, 0))).shape == (0, 0)
    assert cooccurrence_graph(sp.csr_matrix((0, 5))).nnz == 0


def test_never_dense_on_a_huge_item_set():
    # 400k items: a dense n x n matrix would need 640 GB
    n_items = 400_000
    r = sp.csr_matrix((np.ones(6), ([0, 0, 0, 1, 1, 2], [5, 17, n_items - 1, 5, 17, 9])), shape=(3, n_items))
    g = cooccurrence_graph(r, normalize_max=False)
    assert g.shape == (n_items, n_items) and g.nnz == 6
    assert g[5, 17] == 2 and g[17, n_items - 1] == 1


def test_sparse_arrays_and_progress_are_accepted():
    pytest.importorskip("tqdm")
    g = cooccurrence_graph(sp.csr_array(R.toarray()), progress=True, normalize_max=False)
    assert np.array_equal(g.toarray(), C)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"top_k": 0}, "top_k must be an integer >= 1 or None, got 0"),
        ({"top_k": True}, "top_k must be"),
        ({"top_k": 2.5}, "top_k must be"),
        ({"min_count": 0}, "min_count must be an integer >= 1, got 0"),
        ({"min_count": None}, "min_count must be"),
        ({"block_size": 0}, "block_size must be an integer >= 1 or None, got 0"),
    ],
)
def test_bad_options_are_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        cooccurrence_graph(R, **kw)


def test_dense_input_is_a_data_error():
    with pytest.raises(DataError, match="scipy sparse user-item matrix, got ndarray: pass dataset.train"):
        cooccurrence_graph(R.toarray())


def test_block_bounds_cover_all_rows_within_budget():
    sizes = np.array([5, 1, 100, 2, 2, 2, 50, 0, 0, 3])
    b = block_bounds(sizes, max_entries=10)
    assert b[0][0] == 0 and b[-1][1] == len(sizes)
    assert all(e0 == s1 for (_, e0), (s1, _) in zip(b, b[1:]))
    assert all(e - s == 1 or sizes[s:e].sum() <= 10 for s, e in b)
    assert (2, 3) in b  # a row above the budget forms its own block
    assert block_bounds(sizes, block_size=4) == [(0, 4), (4, 8), (8, 10)]
    assert expected_products(R) == 9 + 4 + 4 + 9


# ------------------------------------------------------------------ leakage
def _dataset():
    # train:  a: i0 i1 i2   b: i0 i1   c: i2 i3   d: i3 i4 i5
    # valid:  a: i3         b: i4
    # test:   a: i4         c: i5
    rows = [
        ("a", "i0", "train"), ("a", "i1", "train"), ("a", "i2", "train"),
        ("b", "i0", "train"), ("b", "i1", "train"),
        ("c", "i2", "train"), ("c", "i3", "train"),
        ("d", "i3", "train"), ("d", "i4", "train"), ("d", "i5", "train"),
        ("a", "i3", "valid"), ("b", "i4", "valid"),
        ("a", "i4", "test"), ("c", "i5", "test"),
    ]  # fmt: skip
    users, items, split = zip(*rows)
    return build_dataset(users, items, split, item_ids=["i0", "i1", "i2", "i3", "i4", "i5"], name="toy")


def test_valid_and_test_pairs_never_enter_the_graph():
    ds = _dataset()
    g = cooccurrence_graph(ds.train, normalize_max=False).toarray()
    expected = np.zeros((6, 6), np.float32)
    for i, j, v in [(0, 1, 2), (0, 2, 1), (1, 2, 1), (2, 3, 1), (3, 4, 1), (3, 5, 1), (4, 5, 1)]:
        expected[i, j] = expected[j, i] = v
    assert np.array_equal(g, expected)
    # pairs that exist only through valid/test interactions (a: i3 valid, i4 test; b: i4 valid; c: i5 test)
    for i, j in [(0, 3), (1, 3), (2, 4), (0, 4), (1, 4), (2, 5)]:
        assert g[i, j] == 0 and g[j, i] == 0
    everything = ds.train + ds.valid + ds.test
    assert (cooccurrence_graph(everything, normalize_max=False).toarray() != g).any()  # the check has teeth


def test_cold_start_items_have_empty_rows_and_columns():
    rng = np.random.default_rng(11)
    n_users, n_items = 60, 40
    u = rng.integers(0, n_users, 900)
    i = rng.integers(0, n_items, 900)
    split = rng.choice(["train", "valid", "test"], size=900, p=[0.7, 0.15, 0.15])
    ds = build_dataset(u, i, split, user_ids=np.arange(n_users), item_ids=np.arange(n_items), unseen="keep")
    cold = cold_start(ds, 0.25, seed=4)
    assert cold.cold_items is not None and len(cold.cold_items) == 10
    g = cooccurrence_graph(cold.train, normalize_max=False)
    dense = g.toarray()
    assert not dense[cold.cold_items].any() and not dense[:, cold.cold_items].any()
    # every edge has a TRAINING user who consumed both items, and nothing else is there
    tr = (cold.train.toarray() > 0).astype(np.int64)
    ref = tr.T @ tr
    np.fill_diagonal(ref, 0)
    assert np.array_equal(dense, ref)
    # the cold items do co-occur in valid/test, so the graph really hides something
    held = ((cold.valid + cold.test + cold.train).toarray() > 0).astype(np.int64)
    co_all = held.T @ held
    np.fill_diagonal(co_all, 0)
    assert co_all[cold.cold_items].any()
    for opts in ({"top_k": 3}, {"top_k": 2, "symmetric": True}, {"min_count": 2}):
        pruned = cooccurrence_graph(cold.train, **opts).toarray()
        assert not pruned[cold.cold_items].any() and not pruned[:, cold.cold_items].any()


def test_baby_builds_quickly_and_matches_scipy(shared_data):
    from graphrec.data.formats import read_lattice

    ds = read_lattice(shared_data / "amazon-baby", unseen="keep")
    g = cooccurrence_graph(ds.train, normalize_max=False)
    full = (ds.train.T @ ds.train).tocoo()
    off = full.row != full.col
    ref = sp.csr_matrix((full.data[off], (full.row[off], full.col[off])), shape=full.shape)
    assert g.nnz == ref.nnz and abs(g - ref).max() == 0
    pruned = cooccurrence_graph(ds.train, top_k=10)
    assert pruned.max() == 1.0 and np.diff(pruned.indptr).max() == 10


# ------------------------------------------------------------------ factored form


def test_factors_by_hand():
    f = cooccurrence_factors(R)
    # users per item, and D_ii = row sums of C (= sum over i's users of their other items)
    assert np.array_equal(f.self_counts, [3, 4, 1, 2, 0])
    deg = C.sum(1)  # 5, 6, 2, 3, 0
    assert np.array_equal(deg, [5, 6, 2, 3, 0])
    want = np.array([5**-0.5, 6**-0.5, 2**-0.5, 3**-0.5, 0.0])
    assert np.allclose(f.inv_sqrt_degree, want)
    sym = want[:, None] * C * want[None, :]
    assert np.allclose(f.matrix().toarray(), sym, atol=1e-7)
    h = np.arange(10, dtype=np.float64).reshape(5, 2) - 3
    assert np.allclose(f.apply(h), sym @ h, atol=1e-6)
    # an isolated item (no training user, or users with nothing else) propagates nothing
    assert np.array_equal(f.apply(h)[4], [0, 0])


def test_factored_operator_matches_the_explicit_graph_forward_and_backward():
    torch = pytest.importorskip("torch")
    from graphrec.nn import FactoredCooccurrence

    rng = np.random.default_rng(0)
    r = sp.random(60, 40, density=0.08, format="csr", random_state=1)
    r.data[:] = rng.integers(1, 4, r.nnz)  # counts: binarised like cooccurrence_graph
    r = sp.csr_matrix(r.multiply(np.arange(60)[:, None] != 5))  # user 5 has no item
    explicit = normalize_adjacency(cooccurrence_graph(r), "sym").toarray()
    op = FactoredCooccurrence(cooccurrence_factors(r))
    assert np.allclose(op.matrix().to_dense().numpy(), explicit, atol=1e-6)
    h = torch.randn(40, 3, dtype=torch.float32, requires_grad=True)
    g = torch.randn(40, 3)
    (op(h) * g).sum().backward()
    e = torch.from_numpy(explicit)
    assert torch.allclose(op(h.detach()), e @ h.detach(), atol=1e-5)
    assert torch.allclose(h.grad, e.T @ g, atol=1e-5)
    assert op.state_dict() == {}  # data, not parameters


def test_factored_form_on_baby_matches_the_explicit_graph(shared_data):
    from graphrec.data.formats import read_lattice

    ds = read_lattice(shared_data / "amazon-baby", unseen="keep")
    f = cooccurrence_factors(ds.train)
    explicit = normalize_adjacency(cooccurrence_graph(ds.train), "sym")
    assert explicit.nnz > 7 * f.interactions.nnz  # why the factored form pays: C is much denser
    h = np.random.default_rng(0).standard_normal((ds.n_items, 8)).astype(np.float32)
    got, want = f.apply(h), explicit @ h
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
