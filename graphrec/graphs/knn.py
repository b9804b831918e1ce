"""Exact top-k cosine kNN graph over items, computed in row blocks (never N x N dense).

For item features X (n x d), rows are L2-normalised, x̂_i = x_i / ||x_i||, and

    M_ij = cos(x_i, x_j) = <x̂_i, x̂_j>                                  (MM-GEF, eq. 1)
    A_ij = M_ij  if j is among the k largest M_ij, j != i, of row i     (eq. 2)
           0     otherwise

(``weighted=False``: A_ij = 1 on the same pattern). Row i of the returned
``scipy.sparse.csr_matrix`` (n x n, float32, column indices sorted) holds i's k
neighbours. The graph is directed: j in N(i) does not imply i in N(j);
``symmetric=True`` returns the union of both directions, value max(A_ij, A_ji) over the
directions in which the edge exists (for non-negative weights exactly max(A, A^T)).

Missing content. A zero row (an item with no content, e.g. no modality in
:func:`graphrec.graphs.fuse.fuse_features`) has no direction: it gets NO neighbours and
is never anyone's neighbour. Rows with NaN/inf are an error. With fewer than k other
items with content, a row holds all of them. Cosines can be negative: when k exceeds
the number of items that are positively similar, row i keeps its least dissimilar items
with negative weights (explicitly stored, also exact zeros).

``include_self=True`` (LATTICE reference parity): item i is always in its own list
with value 1 (the cosine of a vector with itself) and takes one of the k slots; the
other k - 1 slots are the k - 1 nearest other items.

Blocked computation (``backend="torch"``): for a block B of query rows and a tile T of
items, S_BT = X̂_B X̂_T^T (on the chosen device, CPU or CUDA, same code) goes into one
reused buffer, the self entries are set to -inf, torch.topk keeps the best m = k + EXTRA
of the tile, and one topk over the tiles' candidates gives the row's m candidates. Up to
16,384 items a tile spans whole rows and |B| = ``memory_budget_mb`` / (12 n); beyond,
tiles are 2048 x 8192 (64 MB of similarities), shrunk to fit a smaller budget. Fixed
tiles rather than full rows, because a matrix product with few rows and very many
columns runs far below the BLAS peak (CPU, d = 512, n = 200,000: 111-row full blocks
took 1.4x faiss's CPU time, 2048 x 8192 tiles 1.05-1.25x). Memory: O(n m) candidates
plus one tile, never n x n. ``backend="faiss"`` gets the same m candidates per row
from faiss's exact inner-product search (``faiss.knn``, the kernel of ``IndexFlatIP``:
BLAS tiles + heaps, CPU; no index, so no copy of X̂).
``"auto"`` is faiss when faiss is importable and the device is the CPU, else torch.

Deterministic tie-breaking, identical across backends. The backends rank the float32
unit rows x̂; any BLAS, faiss kernel or GPU (TF32 is switched off while the graph is
built) gets each cosine within γ_d = d u / (1 - d u), u = 2^-24, of the exact value, plus
a few u for the rounding of x̂: let tol = 1.25 γ_d + 8 u. The reference ("canonical")
similarity of a pair is computed from the RAW rows in float64,

    c_ij = <y_i, y_j> / sqrt(<y_i, y_i> <y_j, y_j>),   y_i = 2^(-e_i) x_i (exact scaling),

with every sum in one fixed order, so identical rows, power-of-two multiples and
integer/multi-hot rows whose dot products and norm products agree get bit-identical
c. The neighbours of row i are the first k items in the order (-float32(c_ij), j):
equal similarities are won by the lower item index. With a_1 >= ... >= a_m the
backend's candidate values of row i:

* if a_k - a_{k+1} > 2 tol, the backend's top k IS that set (no item outside can
  reach it, nor tie with it after rounding), and its values are kept (within tol of
  c; in practice a few 1e-7);
* otherwise the row is re-decided: candidates with a_j > a_{k+1} + 2 tol are in the top
  k for sure (at most k - 1 items can reach them) and keep their values; the remaining
  places go to the band a_k - 2 tol <= a_j (a superset of the contenders), ranked by
  their canonical c_ij in (-float32(c), j) order, with values float32(c). When even the
  m-th candidate is within 2 tol of a_k (many near-exact ties, e.g. a duplicated item),
  the row's similarities to all n items are recomputed in numpy and the same rule is
  applied (canonically) to every item within 2 tol of the k-th. Such "crowded" rows
  that are bit-identical (duplicated items: their canonical similarities to every item
  are equal) are decided once per group: the group's first k + 1 items over ALL items,
  its members included, give each member's list (the first k without itself), so the
  cost is linear, not quadratic, in the number of copies.

So the neighbour SETS are a function of the input alone: the torch backend (any block
size, CPU or CUDA) and the faiss backend return the same graph, and values agree to
float32 rounding (up to 6e-7 on 512-d CLIP features; values from canonical c:
bit-identical). torch.topk's (or faiss's) order among
equal values is never relied upon. On random 512-d data about 6% of the rows at
N = 10,000 are re-decided (their 10th and 11th cosines are within 2 tol = 8e-5); the
check costs a few ms per 10,000 rows.

Approximate mode for huge catalogues: ``backend="faiss-hnsw"`` searches a faiss
``IndexHNSWFlat`` (inner product on the normalised rows; :class:`HNSWParams`). No
exactness or tie guarantee; measure it with :func:`knn_recall` against the exact graph
on a sample of rows (``rows=``).

Gradients. :func:`knn_graph` is not differentiable. LATTICE's learned graph fixes the
neighbour structure from detached projections and then needs d cos / d x for the stored
pairs only: :func:`knn_graph_torch_values` returns a torch sparse CSR tensor with the
same pattern whose values cos(x_i, x_j) are differentiable w.r.t. x (computed and
back-propagated in chunks of pairs, memory O(nnz + chunk d)).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphrec._checks import is_int
from graphrec._device import resolve_device
from graphrec._progress import busy, tracked
from graphrec.errors import ConfigError, DataError
from graphrec.nn.rows import unit_rows

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.distributed import Shard

__all__ = [
    "BACKENDS",
    "DEFAULT_MEMORY_BUDGET_MB",
    "HNSWParams",
    "knn_graph",
    "knn_graph_torch_values",
    "knn_neighbours",
    "knn_recall",
    "pair_cosine",
    "dot_tolerance",
    "union_max",
]

BACKENDS = ("auto", "torch", "faiss", "faiss-hnsw")

#: memory for one block of similarities (torch backend) or of recomputed rows
DEFAULT_MEMORY_BUDGET_MB: float = 256.0

#: candidates kept per row beyond k, to see whether the k-th place is contested
_EXTRA = 6

#: torch backend: tile shape for catalogues of more than 2 * _TILE_COLS items
_TILE_ROWS = 2048
_TILE_COLS = 8192

#: rows of float64 pair products evaluated at a time when re-deciding rows
_PAIR_BUDGET_BYTES = 64 << 20

_U = 2.0**-24


@dataclass(frozen=True)
class HNSWParams:
    """Parameters of the approximate ``faiss-hnsw`` backend (faiss ``IndexHNSWFlat``).

    Attributes:
        m: graph degree of the HNSW layers (more: better recall, more memory and time).
        ef_construction: candidate list size while inserting.
        ef_search: candidate list size while searching (raised to k + 1 when smaller);
            the main recall/time knob.
    """

    m: int = 32
    ef_construction: int = 80
    ef_search: int = 64


def dot_tolerance(dim: int) -> float:
    """Bound used to decide whether a row's k-th place is contested (see module doc)."""
    gamma = dim * _U / max(1.0 - dim * _U, 1e-3)
    return 1.25 * gamma + 8 * _U


# --------------------------------------------------------------------------- helpers


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2:
        raise DataError(f"features have shape {a.shape}: expected a 2-D array (n_items, dim)")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise DataError(f"features have dtype {a.dtype}: expected real numbers")
    if a.shape[1] == 0:
        raise DataError("features have dimension 0: give at least one feature per item")
    return a


def _unit_rows(x: np.ndarray, chunk: int = 1 << 15) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised float32 rows of the items with content, and their item indices.

    Squared norms are summed in float64 (squares of float32 never underflow or overflow
    there); rows whose norm is extreme are rescaled by their max-abs entry first, so a
    tiny but non-zero vector still counts as content.
    """
    n, d = x.shape
    keep = np.zeros(n, dtype=bool)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        blk = x[s:e]
        if blk.dtype not in (np.float32, np.float64):
            blk = blk.astype(np.float64)
        sq = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
        fast = np.isfinite(sq) & (sq > 1e-30) & (sq < 1e30)
        if fast.all():
            inv = (1.0 / np.sqrt(sq)).astype(blk.dtype)
            np.multiply(blk, inv[:, None], out=out[s:e], casting="same_kind")
            keep[s:e] = True
            continue
        rows = np.flatnonzero(fast)
        inv = (1.0 / np.sqrt(sq[rows])).astype(blk.dtype)
        out[s + rows] = blk[rows] * inv[:, None]
        keep[s + rows] = True
        for r in np.flatnonzero(~fast):  # rare: zero, tiny, huge or non-finite rows
            row = np.asarray(blk[r], dtype=np.float64)
            if not np.isfinite(row).all():
                raise DataError(
                    f"features row {s + r} contains NaN or inf: set the row to zeros to mark the "
                    "item as having no content (it then gets no neighbours)"
                )
            scale = np.abs(row).max(initial=0.0)
            if scale == 0:
                continue
            row = row / scale
            out[s + r] = row / np.sqrt(row @ row)
            keep[s + r] = True
    nz = np.flatnonzero(keep).astype(np.int64)
    if nz.size < n:
        out = _compact_rows(out, nz, chunk)
    return out, nz


def _compact_rows(a: np.ndarray, rows: np.ndarray, chunk: int) -> np.ndarray:
    """``a[rows]`` for sorted unique ``rows``, in place: ``a`` (a C-contiguous array this
    module allocated, with no other view) is overwritten and shrunk, so no second
    ``n x d`` array is made (``a[rows]`` would be one). Rows move up a chunk at a time;
    ``rows[j] >= j``, so a chunk never overwrites a row that a later chunk reads."""
    for s in range(0, rows.size, chunk):
        r = rows[s : s + chunk]
        a[s : s + r.size] = a[r]
    a.resize((rows.size, a.shape[1]), refcheck=False)  # the first rows.size rows, in C order
    return a


@contextlib.contextmanager
def _full_fp32() -> Iterator[None]:
    """float32 matmuls at full precision (no TF32/bf16) while the graph is built."""
    prev = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(prev)


def _bar(it: Iterable[Any], total: int, progress: bool, desc: str) -> Iterable[Any]:
    return tracked(it, progress, desc, total=total, unit="block", leave=False)


def _faiss() -> Any:
    try:
        import faiss  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "backend 'faiss' needs the faiss package: pip install faiss-cpu (or use backend='torch')"
        ) from exc
    return faiss


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _budget_rows(n_cols: int, bytes_per_entry: int, budget_mb: float, n_rows: int) -> int:
    rows = int(budget_mb * (1 << 20)) // max(1, n_cols * bytes_per_entry)
    return int(min(max(rows, 1), max(n_rows, 1)))


# ------------------------------------------------------------------ candidate search


def _torch_tiles(n: int, nq: int, budget_mb: float, block_size: int | None) -> tuple[int, int]:
    """Query rows per block and columns per tile for the torch backend.

    Up to ``2 * _TILE_COLS`` items a block spans whole rows (``rows`` from the budget);
    beyond, tiles of at most ``_TILE_ROWS x _TILE_COLS``. A matrix product with few rows
    and very many columns runs well below the BLAS peak (measured on CPU with torch's
    MKL: 111 x 200,000 blocks took 1.4x faiss's time, 2048 x 8192 tiles 1.05-1.25x). A
    tile of similarities (float32, plus topk's workspace: ~12 bytes per entry) never
    exceeds the budget.
    """
    budget = max(1, int(budget_mb * (1 << 20)))
    cols = n if n <= 2 * _TILE_COLS else _TILE_COLS
    if block_size:
        rows = int(block_size)
    else:
        rows = max(1, budget // (12 * cols))
        if cols < n:
            rows = min(rows, _TILE_ROWS)
    rows = min(rows, nq)
    if rows * cols * 12 > budget:
        cols = max(1, budget // (12 * rows))
    return rows, min(cols, n)


def _torch_candidates(
    xn: np.ndarray,
    q_pos: np.ndarray,
    m: int,
    rows: int,
    cols: int,
    device: torch.device,
    progress: bool,
    balanced: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-m other items per query row (values sorted descending): tiled matmul + topk.

    For a block of query rows and each tile of columns: S = X̂_q X̂_tile^T, self entries
    -inf, topk per row into a candidate buffer; then one topk over the block's candidates.
    ``balanced``: blocks and tiles of (nearly) equal sizes, at most ``rows`` x ``cols``,
    instead of full ones and a remainder (no thin last block or tile).
    """
    n = xn.shape[0]
    nq = q_pos.size
    vals = np.empty((nq, m), dtype=np.float32)
    idx = np.empty((nq, m), dtype=np.int64)
    xt = torch.from_numpy(xn).to(device)
    qt = torch.from_numpy(q_pos).to(device)
    buf = torch.empty(rows * cols, dtype=torch.float32, device=device)
    if balanced:
        tiles = list(_even_spans(n, cols))
        spans = list(_even_spans(nq, rows))
    else:
        tiles = [(c0, min(n, c0 + cols)) for c0 in range(0, n, cols)]
        spans = [(s, min(nq, s + rows)) for s in range(0, nq, rows)]
    width = sum(min(m, c1 - c0) for c0, c1 in tiles)
    cand_v = torch.empty((rows, width), dtype=torch.float32, device=device)
    cand_i = torch.empty((rows, width), dtype=torch.int64, device=device)
    with torch.no_grad(), _full_fp32():
        for s, e in _bar(spans, len(spans), progress, "kNN (torch)"):
            b = e - s
            q = qt[s:e]
            xq = xt.index_select(0, q)
            at = 0
            for c0, c1 in tiles:
                sims = buf[: b * (c1 - c0)].view(b, c1 - c0)
                torch.mm(xq, xt[c0:c1].T, out=sims)
                local = q - c0
                if c1 - c0 == n:
                    sims[torch.arange(b, device=device), local] = -math.inf  # never one's own neighbour
                else:
                    r = torch.nonzero((local >= 0) & (local < c1 - c0)).squeeze(1)
                    if r.numel():
                        sims[r, local[r]] = -math.inf
                mt = min(m, c1 - c0)
                v, i = torch.topk(sims, mt, dim=1, largest=True, sorted=len(tiles) == 1)
                cand_v[:b, at : at + mt] = v
                cand_i[:b, at : at + mt] = i + c0
                at += mt
            if len(tiles) == 1:
                best_v, best_i = cand_v[:b], cand_i[:b]
            else:
                best_v, pos = torch.topk(cand_v[:b], m, dim=1, largest=True, sorted=True)
                best_i = torch.gather(cand_i[:b], 1, pos)
            vals[s:e] = best_v.cpu().numpy()
            idx[s:e] = best_i.cpu().numpy()
    return vals, idx


def _even_spans(n: int, most: int) -> Iterator[tuple[int, int]]:
    """[start, stop) spans covering 0..n in ceil(n / most) parts whose sizes differ by at most one."""
    parts = max(1, -(-n // max(1, most)))
    bounds = [(i * n) // parts for i in range(parts + 1)]
    return zip(bounds[:-1], bounds[1:])


def _faiss_candidates(
    xn: np.ndarray, q_pos: np.ndarray, m: int, block: int, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Top-m other items per query row from faiss's exact inner-product search.

    ``faiss.knn`` runs the brute-force kernel of ``IndexFlatIP.search``
    (``knn_inner_product``: same blocks, heaps and ties, so the same distances and
    labels bit for bit) straight on ``xn``; an IndexFlatIP would first copy all of ``xn``
    into the index (``n d`` floats, 2 GB at 1M x 512)."""
    faiss = _faiss()
    nq = q_pos.size
    xn = np.ascontiguousarray(xn, dtype=np.float32)  # already so: no copy
    vals = np.empty((nq, m), dtype=np.float32)
    idx = np.empty((nq, m), dtype=np.int64)
    starts = range(0, nq, block)
    for s in _bar(starts, len(starts), progress, "kNN (faiss)"):
        e = min(nq, s + block)
        q = q_pos[s:e]
        d, i = faiss.knn(np.ascontiguousarray(xn[q]), xn, m + 1, metric=faiss.METRIC_INNER_PRODUCT)
        vals[s:e], idx[s:e] = _drop_self(d, i, q, m)
    return vals, idx


def _drop_self(d: np.ndarray, i: np.ndarray, q: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove the query itself from m + 1 results (or the last result when it is absent)."""
    drop = i == q[:, None]
    absent = ~drop.any(axis=1)
    drop[absent, -1] = True
    keep = ~drop
    return d[keep].reshape(-1, m), i[keep].reshape(-1, m)


# ------------------------------------------------------------ exact, tie-safe choice


def _pow2_rows(m: np.ndarray) -> np.ndarray:
    """Scale each row (last axis) by a power of two so its max-abs is in [0.5, 1): exact."""
    _, e = np.frexp(np.abs(m).max(axis=-1, keepdims=True))
    return m * np.ldexp(1.0, -e)  # multiplying by a power of two is exact


def _canonical(xa: np.ndarray, nz: np.ndarray, q: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Reference cosines c[e] = cos(x_q[e], x_cand[e]) of index pairs, from the RAW rows.

    c = <y_i, y_j> / sqrt(<y_i, y_i> <y_j, y_j>) in float64, y = x scaled by a power of
    two per row (exact). Every sum runs over the last, contiguous axis of a 2-D array
    (one fixed order), and products of float32 inputs are exact in float64, so identical
    rows, rows that are power-of-two multiples of each other, and integer / multi-hot
    rows with equal dot products and norm products all give bit-identical values.
    """
    c = np.empty(q.size, dtype=np.float64)
    step = max(1, _PAIR_BUDGET_BYTES // (xa.shape[1] * 8 * 3))
    for s in range(0, q.size, step):
        a = _pow2_rows(np.asarray(xa[nz[q[s : s + step]]], dtype=np.float64))
        b = _pow2_rows(np.asarray(xa[nz[cand[s : s + step]]], dtype=np.float64))
        c[s : s + step] = (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    return c


def _pick(c: np.ndarray, cand: np.ndarray, usable: np.ndarray, k: int) -> np.ndarray:
    """Positions of the first k usable entries of each row in the order (-float32(c), index)."""
    neg = np.where(usable, -c.astype(np.float32), np.float32(np.inf))
    return np.lexsort((cand, neg), axis=-1)[:, :k]


def _decide(
    xa: np.ndarray,
    nz: np.ndarray,
    xn: np.ndarray,
    q_pos: np.ndarray,
    vals: np.ndarray,
    idx: np.ndarray,
    k: int,
    budget_mb: float,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k per query row from the backend's top-m candidates (module doc)."""
    n, d = xn.shape
    nq, m = vals.shape
    out_idx = idx[:, :k].copy()
    out_val = vals[:, :k].copy()
    if m == k:  # every other item is a neighbour: nothing to decide
        return out_idx, out_val
    tol = dot_tolerance(d)
    thr = vals[:, k - 1].astype(np.float64) - 2.0 * tol
    all_candidates = m >= n - 1
    crowded = np.zeros(nq, dtype=bool) if all_candidates else vals[:, m - 1] >= thr
    contested = (vals[:, k] >= thr) & ~crowded

    rows = np.flatnonzero(contested)
    if rows.size:
        # sure: above a_{k+1} + 2 tol, nothing outside the top k can reach them; the rest
        # of the top k is decided by canonical values among the band a_j >= a_k - 2 tol
        v = vals[rows]
        sure = np.zeros(v.shape, dtype=bool)
        sure[:, :k] = v[:, :k] > v[:, k : k + 1].astype(np.float64) + 2.0 * tol
        band = (v >= thr[rows, None]) & ~sure
        rr, ll = np.nonzero(band)
        c = np.full(v.shape, -np.inf)
        c[rr, ll] = _canonical(xa, nz, q_pos[rows[rr]], idx[rows[rr], ll])
        c[sure] = np.inf
        pos = _pick(c, idx[rows], band | sure, k)
        chosen_c = np.take_along_axis(c, pos, axis=1)
        out_idx[rows] = np.take_along_axis(idx[rows], pos, axis=1)
        out_val[rows] = np.where(np.isposinf(chosen_c), np.take_along_axis(v, pos, axis=1), chosen_c)

    rows = np.flatnonzero(crowded)
    if rows.size:
        # Identical rows have identical canonical similarities to every item, so each
        # group of identical crowded rows is decided once: the group's first k + 1 items
        # in (-float32(c), j) order over ALL items (its members included), from which a
        # member's list is the first k without itself. Cost linear in the group size.
        reps, members = _identical_groups(xa, nz, q_pos[rows])
        step = _budget_rows(n, 4, budget_mb, reps.size)
        starts = range(0, reps.size, step)
        for s in _bar(starts, len(starts), progress, "kNN (ties)"):
            g = reps[s : s + step]
            q = q_pos[rows[g]]
            single = np.array([members[i].size == 1 for i in g])
            sims = xn[q] @ xn.T  # approximate again, any BLAS: the same tolerance applies
            # a single row excludes itself; a group ranks every item, its members too
            sims[np.flatnonzero(single), q[single]] = -np.inf
            kth = np.empty(g.size, dtype=np.float64)
            for want, sel in ((k, single), (k + 1, ~single)):
                if sel.any():
                    kth[sel] = np.partition(sims[sel], n - want, axis=1)[:, n - want]
            for t in range(g.size):
                want = k if single[t] else k + 1
                cols = np.flatnonzero(sims[t] >= kth[t] - 2.0 * tol)
                c = _canonical(xa, nz, np.full(cols.size, q[t]), cols)
                pos = _pick(c[None, :], cols[None, :], np.ones((1, cols.size), bool), want)[0]
                if single[t]:
                    out_idx[rows[g[t]]], out_val[rows[g[t]]] = cols[pos], c[pos]
                    continue
                top, top_c = cols[pos], c[pos]
                mem = rows[members[g[t]]]
                hit = top[None, :k] == q_pos[mem][:, None]  # a member among the first k
                drop = np.where(hit.any(axis=1), hit.argmax(axis=1), k)
                keep = np.arange(k + 1)[None, :] != drop[:, None]
                sel = np.broadcast_to(np.arange(k + 1), keep.shape)[keep].reshape(mem.size, k)
                out_idx[mem], out_val[mem] = top[sel], top_c[sel]
    return out_idx, out_val


def _identical_groups(xa: np.ndarray, nz: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Groups of the query rows ``q`` (positions in ``nz``) whose raw rows are bit-identical.

    Returns the positions (into ``q``) of each group's first member, in order, and for
    every position of ``q`` that is a group's first member, the positions of its group
    (sorted; other entries unused). Rows are hashed, then compared byte for byte.
    """
    first: dict[bytes, list[int]] = {}
    members: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * q.size
    groups: dict[int, list[int]] = {}
    for t in range(q.size):
        key = np.ascontiguousarray(xa[nz[q[t]]]).tobytes()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        heads = first.setdefault(digest, [])
        for h in heads:  # a digest collision is possible in principle: compare the bytes
            if np.ascontiguousarray(xa[nz[q[h]]]).tobytes() == key:
                groups[h].append(t)
                break
        else:
            heads.append(t)
            groups[t] = [t]
    for h, g in groups.items():
        members[h] = np.asarray(g, dtype=np.int64)
    return np.asarray(sorted(groups), dtype=np.int64), members


# ---------------------------------------------------------------------- assembly


def union_max(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Both directions of every edge ``(rows, cols, vals)`` of an ``n``-node graph, one
    entry per pair with the larger value: the COO arrays of the symmetrised graph."""
    r = np.concatenate([rows, cols])
    c = np.concatenate([cols, rows])
    v = np.concatenate([vals, vals])
    key = r * np.int64(n) + c
    order = np.argsort(key, kind="stable")
    key, v = key[order], v[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    vmax = np.maximum.reduceat(v, starts) if v.size else v
    key = key[starts]
    return key // n, key % n, vmax


def _to_csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> sp.csr_matrix:
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    index_dtype = np.int32 if n < 2**31 - 1 and rows.size < 2**31 - 1 else np.int64
    mat = sp.csr_matrix(
        (vals.astype(np.float32), cols.astype(index_dtype), indptr.astype(index_dtype)), shape=(n, n)
    )
    mat.has_sorted_indices = True
    return mat


def _rect_to_csr(q: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR with row q[t] = cols[t] (same length for every listed row; sorted q)."""
    order = np.argsort(cols, axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    counts = np.zeros(n, dtype=np.int64)
    counts[q] = cols.shape[1]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_dtype = np.int32 if n < 2**31 - 1 and cols.size < 2**31 - 1 else np.int64
    mat = sp.csr_matrix(
        (vals.ravel().astype(np.float32, copy=False), cols.ravel().astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n, n),
    )
    mat.has_sorted_indices = True
    return mat


def _query_rows(rows: Any, n: int) -> np.ndarray | None:
    if rows is None:
        return None
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ConfigError(f"rows mask has shape {r.shape}: expected ({n},), one flag per item")
        return np.flatnonzero(r).astype(np.int64)
    if r.size and not np.issubdtype(r.dtype, np.integer):
        raise ConfigError(f"rows has dtype {r.dtype}: give item indices (integers) or a boolean mask")
    r = np.unique(r.astype(np.int64).ravel())
    if r.size and (r[0] < 0 or r[-1] >= n):
        raise ConfigError(f"rows holds item index {int(r[0] if r[0] < 0 else r[-1])} outside 0..{n - 1}")
    return r


# --------------------------------------------------------------------- public API


def knn_graph(
    x: np.ndarray | Tensor,
    k: int = 10,
    *,
    include_self: bool = False,
    weighted: bool = True,
    symmetric: bool = False,
    block_size: int | None = None,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    progress: bool = False,
    rows: Sequence[int] | np.ndarray | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    hnsw: HNSWParams | None = None,
    shard: "Shard | None" = None,
) -> sp.csr_matrix:
    """Top-k cosine kNN graph of the rows of ``x`` (exact unless ``backend="faiss-hnsw"``).

    Args:
        x: item features ``(n_items, dim)`` (numpy or torch; any float dtype). Zero rows
            mean "no content": no neighbours, nobody's neighbour. NaN/inf: DataError.
        k: neighbours per row (a row with fewer other items with content keeps them all).
        include_self: keep item i in its own list (value 1) in one of the k slots.
        weighted: cosine values (True) or ones (False) on the kNN pattern.
        symmetric: return the union of both directions, max(A_ij, A_ji).
        block_size: query rows per block (torch: rows of a tile of similarities, whose
            columns shrink to fit ``memory_budget_mb``; faiss: rows per ``search`` call,
            default 16384). Default: chosen from the budget. The graph does not depend on it.
        device: where the torch backend computes (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``).
        backend: ``"torch"``, ``"faiss"`` (exact IndexFlatIP, CPU), ``"auto"`` (faiss if
            installed and device is the CPU, else torch) or ``"faiss-hnsw"``
            (approximate, CPU; see :class:`HNSWParams`).
        progress: show a tqdm bar over the blocks.
        rows: compute the lists of these item indices only (int indices or a bool mask);
            the other rows stay empty (e.g. for sharding or a recall sample).
        memory_budget_mb: memory for one block (tile) of similarities (torch) and for
            the rows recomputed when many items tie (all backends).
        hnsw: parameters of ``"faiss-hnsw"``.
        shard: in a torch.distributed group (:mod:`graphrec.distributed`), this rank
            computes the lists of its contiguous part of the items and the rows are
            gathered (then symmetrised): every rank returns the graph one process builds,
            edge for edge, with the exact backends (the neighbour sets depend on the input
            alone). With ``faiss-hnsw`` every rank builds the index and searches its part.
            Every rank of the group must call.

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(n_items, n_items)``, float32, sorted
        column indices.
    """
    if not is_int(k) or k < 1:
        raise ConfigError(f"k={k!r} is not a positive integer: give the number of neighbours per item")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown kNN backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if block_size is not None and (isinstance(block_size, bool) or int(block_size) < 1):
        raise ConfigError(f"block_size={block_size!r} must be a positive integer (or None for automatic)")
    if not memory_budget_mb > 0:
        raise ConfigError(f"memory_budget_mb={memory_budget_mb!r} must be positive")
    if backend in ("faiss", "faiss-hnsw") and isinstance(device, str) and device == "auto":
        device = "cpu"  # faiss runs on the CPU: "auto" means it here
    if backend in ("faiss", "faiss-hnsw") and str(device).startswith("cuda"):
        raise ConfigError(f"backend {backend!r} runs on the CPU: use backend='torch' for device {device!r}")
    dev = resolve_device(device)
    backend = resolve_backend(backend, dev)
    if backend in ("faiss", "faiss-hnsw") and dev.type != "cpu":
        raise ConfigError(f"backend {backend!r} runs on the CPU: use backend='torch' for device {device!r}")
    if symmetric and rows is not None:
        raise ConfigError("symmetric=True needs every row: leave rows=None, or symmetrise the merged shards")
    if shard is not None:
        if rows is not None:
            raise ConfigError("rows and shard both choose the rows to compute: pass one of them")
        return _sharded_knn(x, k, shard, include_self=include_self, weighted=weighted, symmetric=symmetric,
                            block_size=block_size, device=dev, backend=backend, progress=progress,
                            memory_budget_mb=memory_budget_mb, hnsw=hnsw)

    xa = _as_numpy(x)
    n = xa.shape[0]
    xn, nz = _unit_rows(xa)
    n_nz = nz.size
    q_orig = nz if rows is None else np.intersect1d(_query_rows(rows, n), nz)
    q_pos = np.searchsorted(nz, q_orig)
    k_other = min(k - 1 if include_self else k, max(n_nz - 1, 0))

    if k_other > 0 and q_pos.size:
        if backend == "faiss-hnsw":
            nbr, val, valid = _hnsw_search(xn, q_pos, k_other, hnsw or HNSWParams(), block_size, progress)
        else:
            m = min(k_other + _EXTRA, n_nz - 1)
            if backend == "torch":
                t_rows, t_cols = _torch_tiles(n_nz, q_pos.size, memory_budget_mb, block_size)
                cv, ci = _torch_candidates(xn, q_pos, m, t_rows, t_cols, dev, progress)
            else:
                block = block_size or 16384
                cv, ci = _faiss_candidates(xn, q_pos, m, int(block), progress)
            nbr, val = _decide(xa, nz, xn, q_pos, cv, ci, k_other, memory_budget_mb, progress)
            valid = np.ones(nbr.shape, dtype=bool)
        if not symmetric and valid.all():  # rectangular rows: no global sort needed
            cols = nz[nbr]
            val = val.astype(np.float32, copy=False)
            if include_self:
                cols = np.concatenate([cols, q_orig[:, None]], axis=1)
                val = np.concatenate([val, np.ones((q_orig.size, 1), np.float32)], axis=1)
            if not weighted:
                val = np.ones_like(val)
            return _rect_to_csr(q_orig, cols, val, n)
        r = np.repeat(q_orig, k_other).reshape(-1, k_other)[valid]
        c = nz[nbr[valid]]
        v = val[valid].astype(np.float32)
    else:
        r = c = np.zeros(0, dtype=np.int64)
        v = np.zeros(0, dtype=np.float32)
    if include_self:
        r = np.concatenate([r, q_orig])
        c = np.concatenate([c, q_orig])
        v = np.concatenate([v, np.ones(q_orig.size, dtype=np.float32)])
    if symmetric:
        r, c, v = union_max(r, c, v, n)
    if not weighted:
        v = np.ones_like(v)
    return _to_csr(r, c, v, n)


def _sharded_knn(x: np.ndarray | Tensor, k: int, shard: "Shard", *, symmetric: bool, **kw: Any) -> sp.csr_matrix:
    """:func:`knn_graph` computed by the ranks of a group, each its part of the rows."""
    from graphrec import distributed

    n = int(x.shape[0])
    mine = distributed.part(n, shard)
    local = knn_graph(x, k, symmetric=False, rows=np.arange(mine.start, mine.stop, dtype=np.int64), **kw)
    parts = distributed.all_gather_objects(local[mine.start : mine.stop])
    full = sp.vstack(parts, format="csr").astype(np.float32)
    full.sort_indices()
    if not symmetric:
        return full
    coo = full.tocoo()
    r, c, v = union_max(coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data, n)
    return _to_csr(r, c, v, n)


def _hnsw_search(
    xn: np.ndarray, q_pos: np.ndarray, k: int, params: HNSWParams, block_size: int | None, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    faiss = _faiss()
    if params.m < 2 or params.ef_construction < 1 or params.ef_search < 1:
        raise ConfigError(f"invalid HNSW parameters {params}: m >= 2, ef_construction and ef_search >= 1")
    index = faiss.IndexHNSWFlat(xn.shape[1], int(params.m), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(params.ef_construction)
    # one add of all rows: adding them in blocks would build another graph (faiss inserts
    # each add's rows by level, in an order shuffled per call), so no per-block bar here
    with busy(progress, f"kNN (hnsw: indexing {xn.shape[0]} items)"):
        index.add(xn)
    index.hnsw.efSearch = int(max(params.ef_search, k + 1))
    nq = q_pos.size
    nbr = np.empty((nq, k), dtype=np.int64)
    val = np.empty((nq, k), dtype=np.float32)
    block = int(block_size or 65536)
    starts = range(0, nq, block)
    for s in _bar(starts, len(starts), progress, "kNN (hnsw)"):
        e = min(nq, s + block)
        q = q_pos[s:e]
        d, i = index.search(np.ascontiguousarray(xn[q]), k + 1)
        val[s:e], nbr[s:e] = _drop_self(d, i, q, k)
    valid = nbr >= 0
    nbr[~valid] = 0
    return nbr, val, valid


def knn_recall(approx: sp.spmatrix | sp.sparray, exact: sp.spmatrix | sp.sparray) -> float:
    """Mean over rows with exact neighbours of |N_approx(i) ∩ N_exact(i)| / |N_exact(i)|.

    Rows that are empty in ``exact`` (not computed, or no content) are skipped, so an
    exact graph computed for a sample of rows (``knn_graph(..., rows=sample)``) measures
    the recall on that sample. Values are ignored (only the patterns count).
    """
    a = sp.csr_matrix(approx, copy=True)
    e = sp.csr_matrix(exact, copy=True)
    if a.shape != e.shape:
        raise ConfigError(f"graphs have shapes {a.shape} and {e.shape}: compare graphs of the same items")
    for g in (a, e):  # patterns only; explicitly stored zeros (cosine 0) count as edges
        g.sum_duplicates()
        g.data = np.ones(g.data.size, dtype=np.float64)
    size = np.diff(e.indptr)
    hit = np.asarray(a.multiply(e).sum(axis=1)).ravel()
    has = size > 0
    if not has.any():
        raise ConfigError("the exact graph has no neighbours: nothing to measure recall on")
    return float(np.mean(hit[has] / size[has]))


# ------------------------------------------------------------- differentiable values


def resolve_backend(backend: str, device: str | torch.device = "cpu") -> str:
    """The backend ``knn_graph`` uses: ``"auto"`` is faiss when faiss is importable and
    the device is the CPU, else torch; any other name is itself."""
    if backend != "auto":
        return backend
    dev = resolve_device(device)
    return "faiss" if dev.type == "cpu" and _faiss_available() else "torch"


class _PairDot(torch.autograd.Function):
    """v_e = <z_{r_e}, z_{c_e}> for index pairs, in chunks, without saving gathers."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, r: Tensor, c: Tensor, chunk: int) -> Tensor:  # type: ignore[override]
        out = torch.empty(r.numel(), dtype=z.dtype, device=z.device)
        for s in range(0, r.numel(), chunk):
            e = s + chunk
            out[s:e] = (z.index_select(0, r[s:e]) * z.index_select(0, c[s:e])).sum(dim=1)
        ctx.save_for_backward(z, r, c)
        ctx.chunk = chunk
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:  # type: ignore[override]
        z, r, c = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        gz = torch.zeros_like(z)
        chunk = ctx.chunk
        for s in range(0, r.numel(), chunk):
            e = s + chunk
            g = grad[s:e, None]
            gz.index_add_(0, r[s:e], g * z.index_select(0, c[s:e]))
            gz.index_add_(0, c[s:e], g * z.index_select(0, r[s:e]))
        return gz, None, None, None


def pair_cosine(
    x: Tensor, rows: Tensor, cols: Tensor, *, eps: float = 1e-12, chunk: int = 1 << 16
) -> Tensor:
    """cos(x_rows[e], x_cols[e]) for each pair, differentiable w.r.t. ``x``.

    Zero rows give cosine 0; rows of any scale are exact (:func:`graphrec.nn.unit_rows`,
    plain ``F.normalize`` for rows of norm at least ``eps``). Memory O(n d + chunk d):
    gathers are recomputed in the backward pass instead of being saved.
    """
    z = unit_rows(x, eps=eps)
    return _PairDot.apply(z, rows, cols, int(chunk))


#: LATTICE's rebuild: fewest rows of a product (block, tile or re-done rows) per CPU thread
_NBR_MIN_ROWS_PER_THREAD = 8


@torch.no_grad()
def knn_neighbours(
    x: Tensor,
    k: int,
    *,
    include_self: bool = False,
    memory_budget_mb: float = 64.0,
) -> tuple[Tensor, Tensor]:
    """(rows, cols) of the top-k cosine neighbours of every row of ``x``, on ``x``'s device.

    The lean search for graphs rebuilt during training (LATTICE's learned graphs): no
    copy to the host (CUDA), no tie analysis. The neighbours are defined by blocks of
    rows: one ``torch.mm`` + ``torch.topk`` per block of B = ``memory_budget_mb`` / (4 n)
    whole rows. Ties are broken by ``torch.topk`` (deterministic on a given device, not
    canonical: use :func:`knn_graph` for stored graphs). Zero rows have cosine 0 with
    every item. ``include_self`` puts item i in its own list (one of the k slots). No
    gradient.

    On the CPU, beyond 2 x 8192 items, the same neighbours come from the tiled search of
    :func:`knn_graph`'s torch backend (blocks of ~682 rows x tiles of ~8192 columns at
    64 MB: thin B x n products run far below the BLAS peak, B is 419 rows at 40,000
    items, 16 at 1,000,000): the top k + 1 similarities of every row, and the row's
    top k where its k-th and (k+1)-th values differ (then the set is unique). A row
    where they are equal (a tie at the k-th place: duplicates, zero rows) is done again
    as a block does it, the whole row and ``torch.topk``, so the tied items chosen are
    the same. Both rely on the CPU BLAS computing each entry of a product the same
    whatever the product's shape, which holds for MKL except for products of very few
    rows or columns (1-3 rows, or 5 with 2 threads; 8 columns): every product here has
    at least ``8 x threads`` rows (else the blocks are used) and 512 columns (about 4096
    at the default budget); tests/graphs/test_knn.py checks the lists against the blocks'.
    Not used on CUDA (cuBLAS picks kernels by shape) nor with TF32/bf16 matmuls allowed.
    """
    n = x.shape[0]
    k_other = min(k - 1 if include_self else k, n - 1)
    z = unit_rows(x.float())
    block = max(1, min(n, int(memory_budget_mb * (1 << 20)) // (4 * max(n, 1))))
    cols = []
    if k_other > 0:
        done = 0
        plan = _neighbour_tiles(z, k_other, block, memory_budget_mb)
        if plan is not None:
            done = (n // block) * block  # the last, partial block as before: its own shape
            cols.append(_tiled_neighbours(z, done, k_other, block, *plan))
        for s in range(done, n, block):
            cols.append(_block_neighbours(z, s, min(n, s + block), k_other))
    nbr = torch.cat(cols) if cols else torch.empty(n, 0, dtype=torch.long, device=x.device)
    if include_self:
        nbr = torch.cat([torch.arange(n, device=x.device).unsqueeze(1), nbr], dim=1)
    rows = torch.arange(n, device=x.device).repeat_interleave(nbr.shape[1])
    return rows, nbr.reshape(-1)


def _block_neighbours(z: Tensor, s: int, e: int, k: int) -> Tensor:
    """The top-k other items of rows s..e-1 from their whole rows of similarities."""
    sim = z[s:e] @ z.t()
    sim.diagonal(offset=s).fill_(-torch.inf)  # entries (i, s + i): the items themselves
    return torch.topk(sim, k, dim=1, sorted=False).indices


def _neighbour_tiles(z: Tensor, k: int, block: int, budget_mb: float) -> tuple[int, int] | None:
    """Rows and columns of the tiles :func:`_tiled_neighbours` uses, or None where the
    blocks are used (see :func:`knn_neighbours`)."""
    n = z.shape[0]
    least = _NBR_MIN_ROWS_PER_THREAD * torch.get_num_threads()
    if not (
        z.device.type == "cpu"
        and n > 2 * _TILE_COLS
        and k + 1 < n - 1
        and least <= block <= n
        and torch.get_float32_matmul_precision() == "highest"
    ):
        return None
    t_rows, t_cols = _torch_tiles(n, (n // block) * block, budget_mb, None)
    t_rows = max(t_rows, 2 * least)  # balanced blocks of at least `least` rows
    if t_cols < 1024 or not bool(torch.isfinite(z).all()):
        return None
    return t_rows, t_cols


def _tiled_neighbours(z: Tensor, nq: int, k: int, block: int, t_rows: int, t_cols: int) -> Tensor:
    """The neighbours :func:`_block_neighbours` gives rows 0..nq-1 (whole blocks), from tiles."""
    zn = z.contiguous().numpy()
    vals, idx = _torch_candidates(zn, np.arange(nq, dtype=np.int64), k + 1, t_rows, t_cols, z.device,
                                  False, balanced=True)
    nbr = torch.from_numpy(np.ascontiguousarray(idx[:, :k]))
    tied = np.flatnonzero(~(vals[:, k - 1] > vals[:, k]))
    for s in range(0, tied.size, block):  # padded to a block's shape: the block's values
        t = torch.from_numpy(tied[s : s + block])
        q = torch.cat([t, torch.zeros(block - t.numel(), dtype=torch.long)])
        sim = z.index_select(0, q) @ z.t()
        sim[torch.arange(block), q] = -torch.inf
        nbr[t] = torch.topk(sim, k, dim=1, sorted=False).indices[: t.numel()]
    return nbr


def knn_graph_torch_values(
    x: Tensor,
    graph: sp.spmatrix | sp.sparray,
    *,
    include_self_value: bool = True,
    chunk: int = 1 << 16,
) -> Tensor:
    """The pattern of ``graph`` with differentiable cosine values of ``x`` (torch sparse CSR).

    For LATTICE's learned graph: build the structure without gradients,
    ``g = knn_graph(x.detach(), k)``, then ``a = knn_graph_torch_values(x, g)`` has
    a_ij = cos(x_i, x_j) on g's pattern, on ``x``'s device, and gradients flow into
    ``x`` through ``torch.sparse.mm(a, h)`` (or ``a.values()``). Values are the cosines
    of ``x`` whatever ``graph`` stores (weights or ones). Diagonal entries (from
    ``include_self``) get cos(x_i, x_i) = 1 (gradient 0) when ``include_self_value``.

    Args:
        x: ``(n_items, d)`` float tensor (may require grad).
        graph: an ``(n_items, n_items)`` scipy sparse matrix (e.g. from :func:`knn_graph`).
        chunk: pairs per chunk of the forward and backward gathers.
    """
    g = sp.csr_matrix(graph)
    if g.shape != (x.shape[0], x.shape[0]):
        raise ConfigError(
            f"graph has shape {g.shape} but x has {x.shape[0]} rows: build the graph from the same items"
        )
    g.sum_duplicates()
    g.sort_indices()
    device = x.device
    indptr = torch.from_numpy(g.indptr.astype(np.int64)).to(device)
    cols = torch.from_numpy(g.indices.astype(np.int64)).to(device)
    rows = torch.from_numpy(np.repeat(np.arange(g.shape[0], dtype=np.int64), np.diff(g.indptr))).to(device)
    vals = pair_cosine(x, rows, cols, chunk=chunk)
    if include_self_value:
        diag = rows == cols
        if bool(diag.any()):
            vals = torch.where(diag, torch.ones_like(vals), vals)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(indptr, cols, vals, size=g.shape, device=device)
