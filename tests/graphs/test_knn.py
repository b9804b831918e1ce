"""Exact top-k cosine kNN graph: brute force, hand-computed cases, ties, backends, gradients."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.errors import ConfigError, DataError
from graphrec.graphs.knn import HNSWParams, knn_graph, knn_graph_torch_values, knn_recall, pair_cosine

BACKENDS = ["torch", "faiss"]


def brute_force(x: np.ndarray, k: int, include_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Dense reference: (pattern, values), neighbours ordered by (-float32 cosine, index).

    The cosine of a pair is <x_i, x_j> / sqrt(|x_i|^2 |x_j|^2) in float64, one pair at a
    time, so mathematically equal cosines of integer rows stay exactly equal.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    sq = np.array([float(np.sum(r * r)) for r in x])
    has = sq > 0
    pattern = np.zeros((n, n), dtype=bool)
    values = np.zeros((n, n))
    for i in np.flatnonzero(has):
        others = [j for j in np.flatnonzero(has) if j != i]
        sims = {j: float(np.sum(x[i] * x[j])) / np.sqrt(sq[i] * sq[j]) for j in others}
        others.sort(key=lambda j: (-np.float32(sims[j]), j))
        chosen = others[: (k - 1 if include_self else k)]
        pattern[i, chosen] = True
        values[i, chosen] = [sims[j] for j in chosen]
        if include_self:
            pattern[i, i] = True
            values[i, i] = 1.0
    return pattern, values


def pattern_of(g: sp.csr_matrix) -> np.ndarray:
    p = np.zeros(g.shape, dtype=bool)
    c = g.tocoo()
    p[c.row, c.col] = True
    return p


def check_against_brute(g: sp.csr_matrix, x: np.ndarray, k: int, **kw: bool) -> None:
    include_self = kw.get("include_self", False)
    pattern, values = brute_force(x, k, include_self)
    if kw.get("symmetric", False):
        vt = values.T
        both = pattern & pattern.T
        values = np.where(both, np.maximum(values, vt), np.where(pattern, values, vt))
        pattern = pattern | pattern.T
    if not kw.get("weighted", True):
        values = pattern.astype(float)
    assert isinstance(g, sp.csr_matrix) and g.dtype == np.float32 and g.shape == (len(x), len(x))
    assert g.has_sorted_indices
    np.testing.assert_array_equal(pattern_of(g), pattern)
    np.testing.assert_allclose(g.toarray(), values, atol=1e-6)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((23, 5)).astype(np.float32)
    x[4] = 0.0  # no content
    x[9] = x[2]  # exact duplicate
    x[15] = 3.0 * x[2]  # same direction, other norm
    x[20] = 0.0
    return x


def test_hand_computed_four_items():
    x = np.array([[1, 0], [1, 1], [0, 1], [-1, 0]], dtype=np.float32)
    s = np.float32(1 / np.sqrt(2))
    for backend in BACKENDS:
        g = knn_graph(x, k=1, backend=backend).toarray()
        # row 1: items 0 and 2 tie at cos 0.7071 -> the lower index (0) wins;
        # row 3: cosines -1, -0.7071, 0 -> item 2 with an explicitly stored 0
        expected = np.zeros((4, 4), np.float32)
        expected[0, 1] = expected[1, 0] = expected[2, 1] = s
        np.testing.assert_allclose(g, expected, atol=1e-7)
        g = knn_graph(x, k=1, backend=backend)
        assert g.nnz == 4 and g[3, 2] == 0 and g.indices[g.indptr[3]] == 2
        g2 = knn_graph(x, k=2, backend=backend).toarray()
        expected2 = np.array(
            [[0, s, 0, 0], [s, 0, s, 0], [0, s, 0, 0], [0, 0, 0, 0]], dtype=np.float32
        )  # row 0: 1 (0.707), then 2 (0.0) beats 3 (-1); row 3: 2 (0), 1 (-0.707)
        expected2[3, 1] = -s
        np.testing.assert_allclose(g2, expected2, atol=1e-7)
        g2 = knn_graph(x, k=2, backend=backend)
        # explicit zeros count as neighbours; row 2: items 0 and 3 tie at cos 0 -> 0 wins
        assert [g2[i].indices.tolist() for i in range(4)] == [[1, 2], [0, 2], [0, 1], [1, 2]]
        assert g2.nnz == 8 and g2[0, 2] == 0 and g2[2, 0] == 0
        b = knn_graph(x, k=1, weighted=False, symmetric=True, backend=backend).toarray()
        assert b.tolist() == [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
        self_g = knn_graph(x, k=2, include_self=True, backend=backend).toarray()
        np.testing.assert_allclose(np.diag(self_g), 1.0)
        assert (self_g != 0).sum(axis=1).tolist() == [2, 2, 2, 1]  # row 3: self + the stored 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 3, 8, 20, 21, 40])  # 21 = n_with_content - 1, 40 > n
@pytest.mark.parametrize("include_self", [False, True])
def test_matches_brute_force(data, backend, k, include_self):
    g = knn_graph(data, k, include_self=include_self, backend=backend)
    check_against_brute(g, data, k, include_self=include_self)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_size", [1, 4, 6, 22])  # 4 and 6 do not divide 21 rows
def test_block_size_does_not_matter(data, backend, block_size):
    g = knn_graph(data, 5, backend=backend, block_size=block_size)
    check_against_brute(g, data, 5)


@pytest.mark.parametrize("tile_cols", [1, 3, 7, 16])
@pytest.mark.parametrize("k", [1, 5, 21])
def test_torch_column_tiles_do_not_matter(data, tile_cols, k):
    # a budget too small for whole rows tiles the columns too: topk per tile, then merged
    budget_mb = 12 * 4 * tile_cols / 2**20  # 4 query rows x tile_cols columns
    g = knn_graph(data, k, backend="torch", block_size=4, memory_budget_mb=budget_mb)
    check_against_brute(g, data, k)
    x = np.random.default_rng(1).integers(-2, 3, size=(200, 3)).astype(np.float32)  # ties
    a = knn_graph(x, 6, backend="torch", block_size=9, memory_budget_mb=12 * 9 * 13 / 2**20)
    b = knn_graph(x, 6, backend="faiss")
    assert (pattern_of(a) == pattern_of(b)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_symmetric_binary_and_weighted(data, backend):
    for weighted in (True, False):
        g = knn_graph(data, 4, symmetric=True, weighted=weighted, backend=backend)
        check_against_brute(g, data, 4, symmetric=True, weighted=weighted)
        assert (g != g.T).nnz == 0
    binary = knn_graph(data, 4, weighted=False, backend=backend)
    check_against_brute(binary, data, 4, weighted=False)
    assert set(binary.data.tolist()) == {1.0}


def test_symmetric_keeps_negative_edges():
    x = np.array([[1, 0], [-1, 0.1], [-1, -0.1]], dtype=np.float32)
    g = knn_graph(x, 1, symmetric=True).toarray()
    # 0 -> 1 (cos < 0, the least dissimilar), 1 <-> 2: the negative edge survives the union
    assert g[0, 1] < 0 and g[1, 0] == g[0, 1] and g[1, 2] > 0.9 and g[2, 1] == g[1, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_rows_have_no_neighbours_and_are_nobodys_neighbour(data, backend):
    g = knn_graph(data, 30, include_self=True, symmetric=True, backend=backend)
    for zero in (4, 20):
        assert g[zero].nnz == 0 and g[:, zero].nnz == 0
    empty = knn_graph(np.zeros((5, 3), np.float32), 2, include_self=True, backend=backend)
    assert empty.shape == (5, 5) and empty.nnz == 0
    one = knn_graph(np.eye(1, 3, dtype=np.float32), 2, include_self=True, backend=backend)
    assert one.toarray().tolist() == [[1.0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 3, 11])
def test_exact_duplicates_lower_index_wins(backend, k):
    # 15 copies of one vector (more than k + the backend's spare candidates), among noise
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    dup = np.array([1, 3, 4, 5, 8, 12, 17, 18, 22, 25, 26, 30, 33, 37, 39])
    x[dup] = x[5]
    g = knn_graph(x, k, backend=backend, block_size=7)
    for i in dup:
        others = [j for j in dup if j != i]
        assert sorted(g[i].indices.tolist()) == sorted(others[:k]), i
    check_against_brute(g, x, k)
    # include_self: i keeps itself (value 1) plus the k-1 lowest other copies
    gs = knn_graph(x, k, include_self=True, backend=backend)
    for i in dup:
        others = [j for j in dup if j != i]
        assert sorted(gs[i].indices.tolist()) == sorted([i] + others[: k - 1])
        assert gs[i, i] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_that_straddle_the_kth_place(backend):
    # query 0's top-2 is item 1 plus one of the 3 exact copies (rows 2, 6, 9): 2 wins
    x = np.array(
        [
            [1, 0, 0], [1, 0.05, 0], [1, 0.3, 0], [0, 0, 1], [0, 1, 0],
            [-1, 0, 0], [1, 0.3, 0], [0, 1, 1], [0, -1, 1], [1, 0.3, 0],
        ],
        dtype=np.float32,
    )  # fmt: skip
    g = knn_graph(x, 2, backend=backend)
    assert g[0].indices.tolist() == [1, 2]
    check_against_brute(g, x, 2)


def test_backends_identical_on_near_ties():
    # small integer vectors in 4-d: many exact ties and duplicates around the k-th place
    rng = np.random.default_rng(11)
    x = rng.integers(-3, 4, size=(1500, 4)).astype(np.float32)
    x[::50] = 0
    ref = knn_graph(x, 10, backend="faiss")
    for g in (
        knn_graph(x, 10, backend="torch"),
        knn_graph(x, 10, backend="torch", block_size=97),
        knn_graph(x, 10, backend="faiss", block_size=333),
    ):
        assert (pattern_of(g) == pattern_of(ref)).all()
        np.testing.assert_allclose(g.toarray(), ref.toarray(), atol=1e-6)
    pattern, _ = brute_force(x[:300], 10)
    small = knn_graph(x[:300], 10, backend="torch", block_size=64)
    assert (pattern_of(small) == pattern).all()


def test_rows_subset_and_torch_input(data):
    full = knn_graph(data, 3)
    part = knn_graph(torch.from_numpy(data), 3, rows=[2, 4, 9, 22], backend="torch")
    assert part.shape == full.shape
    assert np.diff(part.indptr).nonzero()[0].tolist() == [2, 9, 22]  # 4 has no content
    for i in (2, 9, 22):
        assert part[i].indices.tolist() == full[i].indices.tolist()
    mask = np.zeros(len(data), bool)
    mask[[0, 1]] = True
    assert knn_graph(data, 3, rows=mask).nnz == 6


def test_float64_and_power_of_two_scaled_rows_give_the_same_graph(data):
    g = knn_graph(data, 4)
    scales = 2.0 ** (6.0 * np.arange(len(data)) - 66.0)[:, None]  # exact scalings
    h = knn_graph(data.astype(np.float64) * scales, 4)
    assert (pattern_of(g) == pattern_of(h)).all()
    np.testing.assert_allclose(g.data, h.data, atol=1e-7)


def test_errors(data):
    with pytest.raises(ConfigError, match="not a positive integer"):
        knn_graph(data, 0)
    with pytest.raises(ConfigError, match="unknown kNN backend 'annoy'"):
        knn_graph(data, 2, backend="annoy")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        knn_graph(data, 2, backend="faiss", device="cuda")
    with pytest.raises(ConfigError, match="symmetric=True needs every row"):
        knn_graph(data, 2, symmetric=True, rows=[0])
    with pytest.raises(ConfigError, match="outside 0..22"):
        knn_graph(data, 2, rows=[23])
    bad = data.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="row 3 contains NaN or inf"):
        knn_graph(bad, 2)
    with pytest.raises(DataError, match="expected a 2-D array"):
        knn_graph(data[0], 2)


def test_missing_faiss_is_a_config_error_and_auto_falls_back(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(ConfigError, match="pip install faiss-cpu"):
        knn_graph(data, 2, backend="faiss")
    check_against_brute(knn_graph(data, 2, backend="auto"), data, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu(data):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(3000, 6)).astype(np.float32)
    a = knn_graph(x, 10, backend="torch", device="cuda")
    b = knn_graph(x, 10, backend="faiss")
    assert (pattern_of(a) == pattern_of(b)).all()
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-6)


def test_hnsw_recall():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((20, 16))
    x = (centres[rng.integers(0, 20, 2000)] + 0.3 * rng.standard_normal((2000, 16))).astype(np.float32)
    exact = knn_graph(x, 10, backend="faiss")
    approx = knn_graph(x, 10, backend="faiss-hnsw", hnsw=HNSWParams(m=16, ef_construction=64, ef_search=64))
    assert approx.shape == exact.shape and (np.diff(approx.indptr) <= 10).all()
    assert (approx.diagonal() == 0).all()
    assert knn_recall(approx, exact) > 0.9
    sample = knn_graph(x, 10, rows=np.arange(0, 2000, 10), backend="torch")
    assert knn_recall(approx, sample) == pytest.approx(
        np.mean([len(set(approx[i].indices) & set(exact[i].indices)) / 10 for i in range(0, 2000, 10)])
    )


def test_knn_recall_by_hand():
    exact = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]], np.float32))
    approx = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], np.float32))
    assert knn_recall(approx, exact) == pytest.approx((0.5 + 1 + 0) / 3)  # row 2 is skipped
    assert knn_recall(exact, exact) == 1.0
    with pytest.raises(ConfigError, match="same items"):
        knn_recall(approx, exact[:3])


def test_torch_values_match_dense_cosine_and_backprop(data):
    g = knn_graph(data, 4, include_self=True)
    x = torch.from_numpy(data.astype(np.float64)).requires_grad_(True)
    a = knn_graph_torch_values(x, g)
    assert a.layout == torch.sparse_csr and a.shape == g.shape and a.dtype == torch.float64
    np.testing.assert_allclose(a.to_dense().detach().numpy(), g.toarray(), atol=1e-6)
    # gradients equal those of the same pairs taken from a dense cosine matrix
    h = torch.randn(len(data), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    loss = torch.sparse.mm(a, h).pow(2).sum()
    loss.backward()
    grad = x.grad.clone()
    x2 = x.detach().clone().requires_grad_(True)
    z = torch.nn.functional.normalize(x2, dim=1, eps=1e-12)
    dense = z @ z.T
    mask = torch.from_numpy(pattern_of(g))
    dense = torch.where(mask, dense, torch.zeros_like(dense))
    dense = torch.where(torch.eye(len(data), dtype=torch.bool) & mask, torch.ones_like(dense), dense)
    (dense @ h).pow(2).sum().backward()
    torch.testing.assert_close(grad, x2.grad)
    assert grad[4].abs().sum() == 0  # zero row: no edges, no gradient


def test_pair_cosine_gradcheck():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    r = torch.tensor([0, 0, 1, 2, 5, 3])
    c = torch.tensor([1, 2, 0, 5, 5, 4])
    assert torch.autograd.gradcheck(lambda t: pair_cosine(t, r, c, chunk=4), (x,))
    np.testing.assert_allclose(
        pair_cosine(x, r, c).detach().numpy(),
        torch.nn.functional.cosine_similarity(x[r], x[c]).detach().numpy(),
        atol=1e-12,
    )


def test_real_clip_features_both_backends(shared_data):
    from graphrec.graphs.fuse import fuse_features

    base = shared_data / "amazon-scientific"
    text = np.fromfile(base / "Scientific.feat1CLS", dtype=np.float32).reshape(-1, 512)
    image = np.fromfile(base / "Scientific.feat3CLS", dtype=np.float32).reshape(-1, 512)
    x = fuse_features({"image": image, "text": text}).x
    a = knn_graph(x, 10, backend="faiss")
    b = knn_graph(x, 10, backend="torch", block_size=300)
    assert (pattern_of(a) == pattern_of(b)).all() and a.nnz == 15850
    np.testing.assert_allclose(a.data, b.data, atol=1e-6)
    # items with identical image rows (missing content upstream): ties go to lower indices
    _, first, counts = np.unique(image, axis=0, return_index=True, return_counts=True)
    group = np.flatnonzero((image == image[first[np.argmax(counts)]]).all(axis=1))
    assert group.size >= 4
    k = group.size - 2  # the copies (cosine 1) straddle the k-th place
    for backend in BACKENDS:
        ai = knn_graph(image, k, backend=backend)
        for i in group:
            assert sorted(ai[i].indices.tolist()) == [j for j in group if j != i][:k]


@pytest.mark.parametrize("backend", [*BACKENDS, "faiss-hnsw"])
def test_progress_bar_does_not_change_the_graph(data, backend):
    a = knn_graph(data, 3, backend=backend, progress=True, block_size=5)
    b = knn_graph(data, 3, backend=backend)
    assert (pattern_of(a) == pattern_of(b)).all()


def test_default_tiles_of_a_larger_catalogue_match_faiss():
    # more than 2 x 8192 items: the torch backend tiles the columns by default
    x = np.random.default_rng(2).standard_normal((17000, 8)).astype(np.float32)
    x[100:110] = x[5]  # a few exact ties as well
    a = knn_graph(x, 5, backend="torch")
    b = knn_graph(x, 5, backend="faiss")
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)  # sorted per row: same sets
    np.testing.assert_allclose(a.data, b.data, atol=1e-6)
    assert a[100].indices.tolist() == [5, 101, 102, 103, 104]


@pytest.mark.parametrize("include_self", [False, True])
@pytest.mark.parametrize("budget_mb", [64.0, 4 * 37 * 5 / 2**20])  # whole matrix; 5-row blocks
def test_knn_neighbours_match_brute_force(include_self, budget_mb):
    from graphrec.graphs.knn import knn_neighbours

    x = torch.from_numpy(np.random.default_rng(4).normal(size=(37, 6)).astype(np.float32))
    rows, cols = knn_neighbours(x, 4, include_self=include_self, memory_budget_mb=budget_mb)
    z = torch.nn.functional.normalize(x.double(), dim=1)
    s = z @ z.t()
    s.fill_diagonal_(-np.inf)
    want = torch.topk(s, 3 if include_self else 4, dim=1).indices
    got = {(int(r), int(c)) for r, c in zip(rows, cols)}
    expect = {(i, int(j)) for i in range(37) for j in want[i]}
    if include_self:
        expect |= {(i, i) for i in range(37)}
    assert got == expect and len(rows) == 37 * 4
    # the same lists as the canonical graph builder (no ties in Gaussian data)
    g = knn_graph(x.numpy(), 4, include_self=include_self).tocoo()
    assert got == set(zip(g.row.tolist(), g.col.tolist()))


def test_faiss_candidates_are_those_of_an_index_flat_ip_search():
    """faiss.knn (no index, no copy of the unit rows) returns IndexFlatIP.search's
    distances and labels bit for bit, ties among duplicated rows included."""
    faiss = pytest.importorskip("faiss")
    from graphrec.graphs.knn import _drop_self, _faiss_candidates, _unit_rows

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1500, 48)).astype(np.float32)
    x[rng.choice(1500, 300, replace=False)] = x[0]  # many exact ties
    x[rng.choice(1500, 40, replace=False)] = 0
    xn, _ = _unit_rows(x)
    q = np.arange(0, xn.shape[0], 3)
    m = 16
    vals, idx = _faiss_candidates(xn, q, m, block=37, progress=False)
    index = faiss.IndexFlatIP(xn.shape[1])
    index.add(xn)
    d, i = index.search(np.ascontiguousarray(xn[q]), m + 1)
    want_v, want_i = _drop_self(d, i, q, m)
    assert vals.tobytes() == want_v.tobytes() and idx.tobytes() == want_i.tobytes()


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 15])
def test_unit_rows_drop_rows_without_content_in_place(chunk):
    """The rows with content are moved up in place (no second n x d array): the same
    rows, bit for bit, as normalising those rows alone."""
    from graphrec.graphs.knn import _unit_rows

    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 24)).astype(np.float32)
    x[[0, 3, 4, 5, 77, 150, 199]] = 0
    x[10] *= 1e-30
    x[11] *= 1e30
    xn, nz = _unit_rows(x, chunk=chunk)
    keep = np.flatnonzero(np.abs(x).max(axis=1) > 0)
    want, all_rows = _unit_rows(x[keep], chunk=chunk)
    assert np.array_equal(nz, keep) and np.array_equal(all_rows, np.arange(keep.size))
    assert xn.flags.c_contiguous and xn.shape == (keep.size, 24) and xn.tobytes() == want.tobytes()
    empty, none = _unit_rows(np.zeros((5, 3), np.float32), chunk=chunk)
    assert empty.shape == (0, 3) and none.size == 0


def test_hnsw_progress_shows_the_index_build_and_builds_the_same_graph(capsys):
    """With progress, the HNSW add (one call: adding in blocks would build another graph)
    runs under an elapsed-time line; the graph is that of progress=False."""
    pytest.importorskip("faiss")
    import time

    from graphrec._progress import busy

    x = np.random.default_rng(7).standard_normal((3000, 16)).astype(np.float32)
    params = HNSWParams(m=8, ef_construction=32, ef_search=32)
    quiet = knn_graph(x, 5, backend="faiss-hnsw", hnsw=params)
    shown = knn_graph(x, 5, backend="faiss-hnsw", hnsw=params, progress=True)
    for a in ("indptr", "indices", "data"):
        assert getattr(quiet, a).tobytes() == getattr(shown, a).tobytes()
    assert "hnsw: indexing 3000 items" in capsys.readouterr().err
    with busy(True, "busy probe"):
        time.sleep(1.2)  # the ticker refreshes the line meanwhile
    assert capsys.readouterr().err.count("busy probe") >= 2


def _same_graph(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)  # bit for bit
    assert a.data.dtype == b.data.dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_groups_of_identical_crowded_rows_are_decided_once(backend, monkeypatch):
    # rows shared by more than k + 6 items are "crowded": their lists come from one
    # decision per group of identical rows; the graph must be the one a decision per row
    # gives (each row its own group), bit for bit, with and without self, for row subsets
    import graphrec.graphs.knn as knn_mod

    rng = np.random.default_rng(11)
    x = rng.standard_normal((900, 24)).astype(np.float32)
    perm, at = rng.permutation(900), 0
    for size in (2, 9, 17, 18, 60, 150, 12, 30):  # disjoint groups of identical rows
        group = np.sort(perm[at : at + size])
        at += size
        x[group] = 0.0 if size == 12 else -x[perm[0]] if size == 30 else x[group[0]]  # 0: no content
    big = np.sort(perm[106:256])
    subset = np.sort(rng.choice(900, 300, replace=False))
    cases = [dict(), dict(include_self=True), dict(rows=subset), dict(rows=subset, include_self=True),
             dict(symmetric=True), dict(memory_budget_mb=0.02)]
    grouped = [knn_graph(x, k, backend=backend, **kw) for k in (1, 10) for kw in cases]
    calls = []

    def one_per_row(xa, nz, q):
        calls.append(q.size)
        return np.arange(q.size), [np.array([t]) for t in range(q.size)]

    monkeypatch.setattr(knn_mod, "_identical_groups", one_per_row)
    per_row = [knn_graph(x, k, backend=backend, **kw) for k in (1, 10) for kw in cases]
    assert calls and max(calls) >= 150
    for a, b in zip(grouped, per_row):
        _same_graph(a, b)
    # each copy's neighbours: the other copies with the lowest indices
    g = grouped[len(cases)]  # k = 10, plain
    assert big.size == 150 and (x[big] == x[big[0]]).all()
    for i in big[:5]:
        assert g[i].indices.tolist() == [j for j in big if j != i][:10]


def test_identical_groups_compare_bytes():
    from graphrec.graphs.knn import _identical_groups

    xa = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [-0.0, 1.0], [1.0, 2.0]], dtype=np.float32)
    nz = np.arange(5)
    reps, members = _identical_groups(xa, nz, np.array([0, 1, 2, 3, 4]))
    assert reps.tolist() == [0, 2, 3]  # -0.0 and 0.0 differ in their bits: kept apart
    assert members[0].tolist() == [0, 1, 4] and members[2].tolist() == [2] and members[3].tolist() == [3]


def _neighbours_by_blocks(x: torch.Tensor, k: int, budget_mb: float) -> np.ndarray:
    """knn_neighbours' definition: whole rows per block of budget / (4 n) rows, torch.topk."""
    from graphrec.nn.rows import unit_rows

    n = x.shape[0]
    z = unit_rows(x.float())
    block = max(1, min(n, int(budget_mb * (1 << 20)) // (4 * n)))
    out = []
    for s in range(0, n, block):
        sim = z[s : s + block] @ z.t()
        sim.diagonal(offset=s).fill_(-torch.inf)
        out.append(torch.topk(sim, k, dim=1, sorted=False).indices)
    nbr = torch.cat(out)
    return np.sort(np.repeat(np.arange(n), k) * n + nbr.reshape(-1).numpy())


@pytest.mark.usefixtures("one_torch_thread")  # 1.0 MB: 15-row blocks, tiled with one thread
@pytest.mark.parametrize("budget_mb", [64.0, 1.0])
def test_knn_neighbours_tiles_give_the_blocks_neighbours(budget_mb, monkeypatch):
    # beyond 2 x 8192 items the CPU search runs on tiles; rows tied at the k-th place
    # (copies, zero rows, multi-hot rows) are redone as a block does: the same lists
    import graphrec.graphs.knn as knn_mod

    g = torch.Generator().manual_seed(3)
    x = torch.randn(17000, 12, generator=g)
    x[100:160] = x[7]  # 61 copies: tied far beyond k
    x[2000:2003] = x[9]
    x[5000:5030] = 0.0  # cosine 0 with every item
    x[6000:6400] = torch.randint(0, 2, (400, 12), generator=g).float()
    calls = []
    real = knn_mod._tiled_neighbours
    monkeypatch.setattr(knn_mod, "_tiled_neighbours", lambda *a: calls.append(a[1]) or real(*a))
    n = x.shape[0]
    for k, include_self in ((10, False), (10, True)):
        rows, cols = knn_mod.knn_neighbours(x, k, include_self=include_self, memory_budget_mb=budget_mb)
        got = np.sort(rows.numpy() * n + cols.numpy())
        want = _neighbours_by_blocks(x, k - 1 if include_self else k, budget_mb)
        if include_self:
            want = np.sort(np.concatenate([want, np.arange(n) * (n + 1)]))
        np.testing.assert_array_equal(got, want)
    block = int(budget_mb * (1 << 20)) // (4 * n)
    assert calls == [(n // block) * block] * 2  # the tiles ran (the last partial block as before)
