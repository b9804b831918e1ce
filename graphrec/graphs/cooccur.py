"""The co-interaction item graph of MM-GEF (arXiv:2308.07222, eq. 3-4), blocked and prunable.

For the binarised TRAINING matrix R (n_users x n_items, R_ui = 1 when user u consumed
item i in the training split):

    C = R^T R  with the diagonal removed:
        C_ij = sum_u R_ui R_uj = number of users who consumed both i and j   (i != j)
    E^c_ij = C_ij / max_kl C_kl                                               (eq. 4)

C is symmetric and integer; E^c (``normalize_max=True``) lies in (0, 1] with a global
maximum of exactly 1 (an empty graph stays empty, nothing is divided by zero).

Blocked computation. The rows of C are computed a block of items at a time,
``C[s:e] = (R^T)[s:e] @ R``, and each block is pruned before the next one is computed,
so the memory in use is the pruned graph plus one unpruned block. Block boundaries are
chosen from an upper bound of each row's size: row i of C has at most
``w_i = min(sum_{u in users(i)} |items(u)|, n_items)`` entries, so with
``block_size=None`` blocks are grown until their summed bound reaches
``DEFAULT_BLOCK_ENTRIES``; a popular item gets a small block (down to one row). An
explicit ``block_size`` uses fixed blocks of that many items. Results do not depend on
the blocking.

Pruning (applied per row, in this order, before E^c's normalisation):

* ``min_count``: keep C_ij only when C_ij >= min_count (symmetric: C_ij = C_ji);
* ``top_k``: keep, per row i, the k largest C_ij; ties are broken towards the lower item
  index j. Top-k per row makes the kept pattern ASYMMETRIC in general (j may be among
  i's k strongest partners while i is not among j's), like the top-k kNN graph of
  LATTICE. ``symmetric=True`` returns the union max(C', C'^T) of the pruned graph
  instead; the kept values are the true counts (C is symmetric), so a row of the union
  can hold more than k entries.

The max-normalisation uses the maximum of the kept counts, which equals the maximum of
the unpruned C: the largest count of its row always survives top-k (k >= 1), and
min_count only removes counts below it.

Leakage: the function sees only the matrix it is given. Pass ``dataset.train``: after
:func:`graphrec.data.splits.cold_start` a cold item has no training interaction, so its
row and column of C are empty, and a pair that co-occurs only through valid/test
interactions has C_ij = 0.

Counts are accumulated as integers and returned as float32 (exact up to 2^24 users per
pair).
The n_items x n_items matrix is never dense.

Factored form. Unpruned, the symmetrically normalised graph is a product of the
interaction matrix with itself,

    Ê^c = D^{-1/2} (R^T R - diag(s)) D^{-1/2},   s_i = (R^T R)_ii = |users(i)|,
    D_ii = sum_{j != i} C_ij = sum_{u in users(i)} (|items(u)| - 1),

(the division by C_max of eq. 4 cancels in the symmetric normalisation), so
:func:`cooccurrence_factors` returns R, s and D^{-1/2} without forming C: applying Ê^c to
a d-column matrix then costs 2 nnz(R) d multiply-adds instead of nnz(C) d, and C is
typically many times denser than R (Amazon Baby: 119,674 training interactions,
933,582 co-interaction pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np
import scipy.sparse as sp

from graphrec._checks import is_int
from graphrec._progress import tracked
from graphrec.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.distributed import Shard

__all__ = [
    "DEFAULT_BLOCK_ENTRIES",
    "CooccurrenceFactors",
    "block_bounds",
    "cooccurrence_factors",
    "cooccurrence_graph",
    "expected_products",
    "user_cooccurrence_graph",
]

#: Upper bound on the entries of one unpruned block of C when ``block_size`` is None
#: (about 35 bytes each while the block is pruned: ~300 MB of scratch at most).
DEFAULT_BLOCK_ENTRIES: int = 1 << 23


def binary_interactions(train: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """A canonical 0/1 CSR copy of ``train`` (stored zeros dropped, duplicates merged)."""
    if not sp.issparse(train):
        raise DataError(
            f"co-interaction graph needs a scipy sparse user-item matrix, got {type(train).__name__}: "
            "pass dataset.train"
        )
    if train.ndim != 2:
        raise DataError(f"co-interaction graph needs a 2-D user-item matrix, got shape {train.shape}")
    r = sp.csr_matrix(train, copy=True)
    r.sum_duplicates()
    r.eliminate_zeros()
    # int32 counts are exact (at most n_users) and faster than int64 in the product
    r.data = np.ones(r.nnz, dtype=np.int32 if r.shape[0] < 2**31 else np.int64)
    return r


def _check_int(name: str, value: object, minimum: int, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not is_int(value) or value < minimum:
        what = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ConfigError(f"{name} must be {what}, got {value!r}")


def block_bounds(
    row_sizes: np.ndarray, *, block_size: int | None = None, max_entries: int = DEFAULT_BLOCK_ENTRIES
) -> list[tuple[int, int]]:
    """Item blocks ``[(start, end), ...]`` covering ``range(len(row_sizes))``.

    Fixed blocks of ``block_size`` rows when given; otherwise consecutive rows are grouped
    while their summed ``row_sizes`` (upper bounds of each row's entries) stay within
    ``max_entries`` (a single row larger than that forms its own block).
    """
    n = len(row_sizes)
    if block_size is not None:
        return [(s, min(s + block_size, n)) for s in range(0, n, block_size)]
    cum = np.cumsum(np.asarray(row_sizes, dtype=np.int64))
    out: list[tuple[int, int]] = []
    s = 0
    while s < n:
        base = cum[s - 1] if s > 0 else 0
        e = int(np.searchsorted(cum, base + max_entries, side="right"))
        e = max(e, s + 1)
        out.append((s, e))
        s = e
    return out


def _levels(counts: np.ndarray) -> np.ndarray:
    """floor(log2(count)) for counts >= 1, as a monotone int8 bucket index (0..31).

    Read from the float32 exponent: exact below 2^24, and still non-decreasing in
    ``count`` above (float rounding is monotone), which is all the bucketing needs.
    """
    f = counts.astype(np.float32)
    return ((f.view(np.int32) >> 23) - 127).astype(np.int8)


def _top_k_mask(
    rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, row_len: np.ndarray, k: int, n_cols: int
) -> np.ndarray:
    """Mask of the k largest ``counts`` of each row; ties go to the lower column.

    Entries may be in any order. Instead of sorting every entry, counts are first put
    in power-of-two buckets: per row, the bucket b that holds the k-th largest count is
    found from a (rows x 32) histogram; entries in higher buckets are kept, entries in
    lower buckets dropped, and only the entries of bucket b are sorted, by
    (row, -count, column). Most co-interaction counts are 1 or 2, so this sorts a small
    share of the block.
    """
    keep = np.ones(rows.size, dtype=bool)
    big = row_len > k
    if not big.any():
        return keep
    n_rows = row_len.size
    n_lev = 32
    lev = _levels(counts)
    hist = np.bincount(rows.astype(np.int64) * n_lev + lev, minlength=n_rows * n_lev).reshape(n_rows, n_lev)
    at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # at_least[r, l] = #entries with level >= l
    # boundary bucket: the highest level whose "at least" count reaches k
    boundary = (n_lev - 1 - np.argmax((at_least >= k)[:, ::-1], axis=1)).astype(np.int8)
    above = np.zeros(n_rows, dtype=np.int64)
    inner = boundary < n_lev - 1
    above[inner] = at_least[np.flatnonzero(inner), boundary[inner].astype(np.int64) + 1]
    need = k - above  # entries still to take from the boundary bucket, per row
    b_of = boundary[rows]
    big_of = big[rows]
    keep = ~big_of | (lev > b_of)
    cand = np.flatnonzero(big_of & (lev == b_of))
    if cand.size:
        r = rows[cand].astype(np.int64)
        c = counts[cand].astype(np.int64)
        j = cols[cand].astype(np.int64)
        top = int(c.max())
        if (n_rows + 1) * (top + 1) * max(n_cols, 1) < 2**62:
            order = np.argsort((r * (top + 1) + (top - c)) * n_cols + j)
        else:  # pragma: no cover - astronomically large blocks
            order = np.lexsort((j, -c, r))
        r_sorted = r[order]
        first = np.searchsorted(r_sorted, r_sorted, side="left")
        rank = np.arange(cand.size, dtype=np.int64) - first
        keep[cand[order[rank < need[r_sorted]]]] = True
    return keep


def _iter_blocks(bounds: list[tuple[int, int]], progress: bool) -> Iterable[tuple[int, int]]:
    return tracked(bounds, progress, "co-interactions", unit="block", leave=False)


def cooccurrence_graph(
    train: sp.spmatrix | sp.sparray,
    *,
    top_k: int | None = None,
    min_count: int = 1,
    block_size: int | None = None,
    normalize_max: bool = True,
    symmetric: bool = False,
    progress: bool = False,
    shard: "Shard | None" = None,
) -> sp.csr_matrix:
    """The co-interaction graph E^c (or the raw counts C) of a training matrix.

    Args:
        train: the user-item TRAINING matrix (n_users x n_items), e.g. ``dataset.train``;
            any stored nonzero counts as one interaction.
        top_k: keep the ``top_k`` largest counts per row (ties: lower item index);
            None keeps all. Makes the graph asymmetric unless ``symmetric``.
        min_count: drop pairs consumed together by fewer than ``min_count`` users.
        block_size: items per block of C rows; None sizes blocks adaptively so that no
            unpruned block exceeds ``DEFAULT_BLOCK_ENTRIES`` entries.
        normalize_max: divide by the maximum count (MM-GEF eq. 4); False returns the raw
            counts C_ij.
        symmetric: return the union of the pruned graph and its transpose.
        progress: show a tqdm bar over the blocks.
        shard: in a torch.distributed group (:mod:`graphrec.distributed`), this rank
            computes a contiguous run of the blocks (cut so that the ranks' summed row
            bounds are about equal), and the rows are gathered: every rank returns the
            graph one process builds, entry for entry. Every rank of the group must call.

    Returns:
        float32 CSR, n_items x n_items, zero diagonal, sorted indices.
    """
    _check_int("top_k", top_k, 1, allow_none=True)
    _check_int("min_count", min_count, 1, allow_none=False)
    _check_int("block_size", block_size, 1, allow_none=True)
    r = binary_interactions(train)
    n_items = r.shape[1]
    rt = r.T.tocsr()  # items x users
    rt.sort_indices()

    # upper bound of the entries of row i of R^T R: products formed for it, capped at n_items
    user_deg = np.diff(r.indptr).astype(np.int64)
    row_bound = np.minimum(rt @ user_deg, n_items) if n_items else np.zeros(0, np.int64)
    bounds = block_bounds(row_bound, block_size=block_size)
    if shard is not None:
        bounds = _my_blocks(bounds, row_bound, shard)

    indptr = np.zeros(n_items + 1, dtype=np.int64)
    idx_t = np.int32 if n_items < 2**31 else np.int64
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for s, e in _iter_blocks(bounds, progress):
        blk = sp.csr_matrix(rt[s:e] @ r)  # (e - s) x n_items counts, unsorted columns
        rows = np.repeat(np.arange(e - s, dtype=idx_t), np.diff(blk.indptr))
        c, v = blk.indices, blk.data
        del blk
        keep = c != rows + s  # no self pairs
        if min_count > 1:
            keep &= v >= min_count
        if not keep.all():
            rows, c, v = rows[keep], c[keep], v[keep]
        row_len = np.bincount(rows, minlength=e - s)
        if top_k is not None and rows.size:
            keep = _top_k_mask(rows, c, v, row_len, top_k, n_items)
            if not keep.all():
                rows, c, v = rows[keep], c[keep], v[keep]
                row_len = np.bincount(rows, minlength=e - s)
        # the kept entries are still in CSR row order; sort each row's columns
        local = np.zeros(e - s + 1, dtype=np.int64)
        np.cumsum(row_len, out=local[1:])
        part = sp.csr_matrix((v, c, local), shape=(e - s, n_items))
        part.sort_indices()
        indptr[s + 1 : e + 1] = row_len
        cols.append(part.indices.astype(idx_t, copy=False))
        vals.append(part.data)
        del rows, c, v, keep, part

    if shard is not None:  # every rank's rows, in item order
        indptr, cols, vals = _gather_rows(indptr, cols, vals, bounds)
    np.cumsum(indptr, out=indptr)
    # float32 from here on: counts are exact below 2^24, and a float32 division of two
    # exact values is the correctly rounded quotient
    if vals:
        data = np.concatenate(vals, dtype=np.float32, casting="same_kind")
    else:
        data = np.zeros(0, np.float32)
    del vals
    if normalize_max and data.size:
        data /= data.max()
    idx_dtype = np.int32 if indptr[-1] < 2**31 and n_items < 2**31 else np.int64
    indices = np.concatenate(cols).astype(idx_dtype, copy=False) if cols else np.zeros(0, idx_dtype)
    del cols
    out = sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n_items, n_items), copy=False)
    out.has_sorted_indices = True
    if symmetric and top_k is not None:
        out = out.maximum(out.T.tocsr()).tocsr()
        out.sort_indices()
    return out


def _my_blocks(bounds: list[tuple[int, int]], row_bound: np.ndarray, shard: "Shard") -> list[tuple[int, int]]:
    """The contiguous run of ``bounds`` that ``shard`` computes: block ``j`` goes to the
    rank whose share of the total work (summed row bounds, plus one per row) holds the
    block's first row."""
    work = np.cumsum(row_bound.astype(np.float64) + 1.0)
    total = work[-1] if work.size else 0.0
    mine = []
    for s, e in bounds:
        before = work[s - 1] if s else 0.0
        owner = min(int(before * shard.world // total), shard.world - 1) if total else 0
        if owner == shard.rank:
            mine.append((s, e))
    return mine


def _gather_rows(
    indptr: np.ndarray, cols: list[np.ndarray], vals: list[np.ndarray], bounds: list[tuple[int, int]]
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Every rank's row lengths, columns and counts (ranks hold contiguous item runs in
    rank order), assembled as one process holds them."""
    from graphrec import distributed

    lo, hi = (bounds[0][0], bounds[-1][1]) if bounds else (0, 0)
    mine = (lo, hi, indptr[lo + 1 : hi + 1].copy(),
            np.concatenate(cols) if cols else None, np.concatenate(vals) if vals else None)
    full = np.zeros_like(indptr)
    all_cols: list[np.ndarray] = []
    all_vals: list[np.ndarray] = []
    for lo, hi, lens, c, v in distributed.all_gather_objects(mine):
        full[lo + 1 : hi + 1] = lens
        if c is not None:
            all_cols.append(c)
            all_vals.append(v)
    return full, all_cols, all_vals


def user_cooccurrence_graph(
    train: sp.spmatrix | sp.sparray,
    *,
    top_k: int | None = None,
    min_count: int = 1,
    block_size: int | None = None,
    normalize_max: bool = False,
    symmetric: bool = False,
    progress: bool = False,
    shard: "Shard | None" = None,
) -> sp.csr_matrix:
    """The user-user co-occurrence graph of a training matrix (DRAGON's user graph).

    ``U_uv = sum_i R_ui R_vi`` = the number of items users u and v both interacted with
    in ``train`` (u != v), computed by :func:`cooccurrence_graph` on the transposed
    matrix (the same blocked, pruned product with the roles of users and items swapped;
    the n_users x n_users matrix is never dense). ``top_k`` keeps the k largest counts
    per USER row, ties broken towards the lower user index; ``min_count``,
    ``block_size``, ``symmetric``, ``progress`` and ``shard`` as there. Counts are returned raw
    (``normalize_max=False``, unlike the item graph): DRAGON weighs a user's neighbours
    by a softmax of them.

    Args:
        train: the user-item TRAINING matrix (n_users x n_items), e.g. ``dataset.train``.

    Returns:
        float32 CSR, n_users x n_users, zero diagonal, sorted indices.
    """
    if not sp.issparse(train):
        raise DataError(
            f"user co-occurrence graph needs a scipy sparse user-item matrix, got {type(train).__name__}: "
            "pass dataset.train"
        )
    return cooccurrence_graph(
        sp.csr_matrix(train).T.tocsr(),
        top_k=top_k,
        min_count=min_count,
        block_size=block_size,
        normalize_max=normalize_max,
        symmetric=symmetric,
        progress=progress,
        shard=shard,
    )


def expected_products(train: sp.spmatrix | sp.sparray) -> int:
    """sum_u |items(u)|^2: the scalar products R^T R forms (the cost of an unpruned build)."""
    deg = np.diff(sp.csr_matrix(train).indptr).astype(np.float64)
    return int(math.fsum(deg * deg))


@dataclass(frozen=True)
class CooccurrenceFactors:
    r"""The symmetrically normalised co-interaction graph kept as its factors:
    :math:`\hat E^c = D^{-1/2} (R^\top R - \mathrm{diag}(s)) D^{-1/2}` (module doc).

    Attributes:
        interactions: R, the binarised training matrix (n_users x n_items), float32 CSR.
        self_counts: s (n_items,), users per item, the diagonal of R^T R, float32.
        inv_sqrt_degree: D^{-1/2} (n_items,), float32; 0 for an item with no
            co-interaction (no training user, or only users who consumed nothing else).
    """

    interactions: sp.csr_matrix
    self_counts: np.ndarray
    inv_sqrt_degree: np.ndarray

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    def apply(self, h: np.ndarray) -> np.ndarray:
        r""":math:`\hat E^c h` for a dense ``h`` (n_items x d) (reference; the model uses
        :class:`graphrec.nn.FactoredCooccurrence`)."""
        x = self.inv_sqrt_degree[:, None] * h
        r = self.interactions
        return self.inv_sqrt_degree[:, None] * (r.T @ (r @ x) - self.self_counts[:, None] * x)

    def matrix(self) -> sp.csr_matrix:
        r"""The explicit :math:`\hat E^c` (float32 CSR, forms C: for inspection and tests)."""
        c = sp.coo_matrix(self.interactions.T @ self.interactions)
        off = c.row != c.col
        d = self.inv_sqrt_degree.astype(np.float64)
        vals = c.data[off] * d[c.row[off]] * d[c.col[off]]
        out = sp.csr_matrix((vals.astype(np.float32), (c.row[off], c.col[off])), shape=c.shape)
        out.eliminate_zeros()
        out.sort_indices()
        return out


def cooccurrence_factors(train: sp.spmatrix | sp.sparray) -> CooccurrenceFactors:
    """The factors of the symmetrically normalised, unpruned co-interaction graph of a
    training matrix (module doc, "Factored form"); C itself is never formed.

    Equal, up to float rounding, to ``normalize_adjacency(cooccurrence_graph(train), "sym")``.
    """
    r = binary_interactions(train).astype(np.float32)
    user_deg = np.diff(r.indptr).astype(np.float64)
    self_counts = np.diff(r.tocsc().indptr).astype(np.float64)  # users per item
    degree = r.T @ (user_deg - 1.0)  # sum_{u in users(i)} (|items(u)| - 1)
    inv_sqrt = np.zeros_like(degree)
    pos = degree > 0
    inv_sqrt[pos] = degree[pos] ** -0.5
    r.sort_indices()
    return CooccurrenceFactors(r, self_counts.astype(np.float32), inv_sqrt.astype(np.float32))
