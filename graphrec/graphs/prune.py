r"""Degree-sensitive edge sampling of a bipartite graph (FREEDOM, Zhou & Shen, ACM MM
2023, section "denoising the user-item graph"), and the symmetrically normalised
bipartite adjacency of a kept edge set, both as vectorised torch functions.

Edges. A bipartite graph (e.g. the training matrix R, users x items) is given by its
edge index arrays ``rows`` (u) and ``cols`` (i), one entry per edge, with the degrees
:math:`d_u, d_i` of the FULL graph (computed from the arrays when not given). Edge
:math:`e = (u, i)` gets the weight

.. math::
    w_e = \frac{1}{\sqrt{d_u}\,\sqrt{d_i}},

the value of that edge in the normalised adjacency :math:`D^{-1/2} A D^{-1/2}`: edges
between high-degree nodes (the likely noisy ones) get small weights.

Sampling. :func:`degree_sensitive_sample` keeps :math:`m =` :func:`n_kept` ``(|E|,
dropout)`` edges, drawn one after another WITHOUT replacement, each draw picking one of
the remaining edges with probability proportional to :math:`w_e` (multinomial sampling
without replacement; the fraction ``dropout`` of the edges is dropped). So the first
draw picks e with probability :math:`w_e / \sum_f w_f`, and an edge's probability of
being kept increases with :math:`w_e`, but for :math:`m > 1` it is not exactly
proportional to it (it cannot be: no probability may exceed 1). It is computed in one
pass, without a loop over draws, by the exponential race (Efraimidis & Spirakis 2006):
with :math:`U_e \sim \mathcal U(0, 1)` i.i.d., the keys

.. math::
    k_e = \frac{-\ln U_e}{w_e} \sim \mathrm{Exp}(w_e)

are ranked and the :math:`m` smallest are kept; the rank order of the keys has exactly
the distribution of the successive draws (the smallest of independent exponentials is
:math:`e` with probability :math:`w_e / \sum_f w_f`, and by memorylessness the race goes
on among the rest). This is what ``torch.multinomial(w, m, replacement=False)``
computes internally; doing it explicitly fixes where the random numbers come from: the
uniforms are drawn from ``generator`` on ITS device and then moved to the edges' device,
so the same generator keeps the same edges on the CPU and on a GPU (keys in float64).
Cost: O(|E|) for the keys plus one ``torch.topk``.

Re-normalisation. :func:`normalized_bipartite_csr` returns
:math:`\hat A = D'^{-1/2} A' D'^{-1/2}` of :math:`A' = [[0, R'], [R'^T, 0]]` for the kept
edges R', with the degrees :math:`D'` of the kept graph (a node that lost all its edges
has an empty row), as a torch sparse CSR tensor of size (n_rows + n_cols) built with
torch ops only (bincount, cumsum, one argsort of the kept edges, two when they do not
come in (row, col) order): row node ``u`` is ``u``, column node ``i`` is ``n_rows + i``,
as :func:`graphrec.graphs.bipartite_adjacency`.
The matrix is symmetric, so it is its own transpose in a backward pass.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from graphrec.errors import ConfigError

__all__ = [
    "edge_degrees",
    "degree_sensitive_weights",
    "n_kept",
    "degree_sensitive_sample",
    "normalized_bipartite_csr",
]


def _check_edges(rows: Tensor, cols: Tensor) -> None:
    if rows.dim() != 1 or rows.shape != cols.shape:
        raise ConfigError(
            f"rows and cols must be 1-d index tensors of one length, got {tuple(rows.shape)} and {tuple(cols.shape)}"
        )
    if rows.dtype.is_floating_point or cols.dtype.is_floating_point:
        raise ConfigError("rows and cols must be integer index tensors")


def edge_degrees(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> tuple[Tensor, Tensor]:
    """Degrees of the row nodes (n_rows,) and the column nodes (n_cols,) of the edge list
    (an edge listed twice counts twice), int64 on the edges' device."""
    _check_edges(rows, cols)
    return torch.bincount(rows, minlength=n_rows), torch.bincount(cols, minlength=n_cols)


def degree_sensitive_weights(
    rows: Tensor,
    cols: Tensor,
    row_degree: Tensor,
    col_degree: Tensor,
) -> Tensor:
    r"""Per-edge sampling weights :math:`w_e = 1 / \sqrt{d_u d_i}` (float64, on the edges'
    device); ``row_degree`` / ``col_degree`` are the degrees of the full graph."""
    _check_edges(rows, cols)
    du = row_degree.to(torch.float64)[rows]
    di = col_degree.to(torch.float64)[cols]
    if bool((du <= 0).any()) or bool((di <= 0).any()):
        raise ConfigError(
            "every edge's endpoints need a positive degree (pass the degrees of the graph the edges come from)"
        )
    return (du * di).rsqrt()


def n_kept(n_edges: int, dropout: float) -> int:
    """Edges kept when the fraction ``dropout`` (in [0, 1)) of ``n_edges`` is dropped:
    ``round(n_edges * (1 - dropout))``, at least 1 when there is an edge."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if n_edges <= 0:
        return 0
    return max(1, min(n_edges, int(round(n_edges * (1.0 - dropout)))))


def degree_sensitive_sample(
    rows: Tensor,
    cols: Tensor,
    dropout: float,
    *,
    row_degree: Tensor | None = None,
    col_degree: Tensor | None = None,
    n_rows: int | None = None,
    n_cols: int | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    r"""Positions (sorted, int64, on the edges' device) of the edges kept by
    degree-sensitive sampling (module doc): :func:`n_kept` edges drawn without
    replacement with probabilities proportional to :math:`1/\sqrt{d_u d_i}`.

    Args:
        rows, cols: edge endpoints (1-d integer tensors of one length).
        dropout: fraction of the edges dropped, in [0, 1); 0 keeps every edge (no
            random numbers are drawn).
        row_degree, col_degree: degrees in the full graph; computed from the edges when
            omitted (then ``n_rows`` / ``n_cols`` size them, default max index + 1).
        generator: source of the uniforms (drawn on its device, then moved to the
            edges' device). At most one of ``generator`` and ``seed``; with neither,
            torch's global CPU generator.
        seed: seed of a fresh CPU generator.
        weights: precomputed :func:`degree_sensitive_weights` (skips the degree lookup).
    """
    _check_edges(rows, cols)
    if generator is not None and seed is not None:
        raise ConfigError("pass a generator or a seed, not both")
    n = rows.numel()
    m = n_kept(n, dropout)
    device = rows.device
    if m == n:
        return torch.arange(n, device=device)
    if weights is None:
        if row_degree is None or col_degree is None:
            nr = int(rows.max()) + 1 if n_rows is None else n_rows
            nc = int(cols.max()) + 1 if n_cols is None else n_cols
            rd, cd = edge_degrees(rows, cols, nr, nc)
            row_degree = rd if row_degree is None else row_degree
            col_degree = cd if col_degree is None else col_degree
        weights = degree_sensitive_weights(rows, cols, row_degree, col_degree)
    elif weights.shape != rows.shape:
        raise ConfigError(f"weights have shape {tuple(weights.shape)}, expected {tuple(rows.shape)}")
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=gen_device).to(device)
    # exponential race: key_e = -ln(U_e) / w_e ~ Exp(w_e); the m smallest are the m draws
    keys = torch.log(u).neg_().div_(weights.to(device=device, dtype=torch.float64))
    kept = torch.topk(keys, m, largest=False, sorted=False).indices
    return torch.sort(kept).values


def _inv_sqrt(deg: Tensor) -> Tensor:
    """``deg ** -1/2`` with 0 where the degree is 0 (float64)."""
    d = deg.to(torch.float64)
    return torch.where(d > 0, d.clamp_min(1.0).rsqrt(), torch.zeros_like(d))


def normalized_bipartite_csr(
    rows: Tensor,
    cols: Tensor,
    n_rows: int,
    n_cols: int,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r""":math:`D^{-1/2} A D^{-1/2}` of the bipartite graph :math:`A = [[0, R], [R^T, 0]]`
    of the given edges (each (row, col) pair at most once), with the degrees of THESE
    edges, as a torch sparse CSR tensor of shape (n_rows + n_cols) square on the edges'
    device (module doc). No scipy, no Python loop over edges."""
    _check_edges(rows, cols)
    device = rows.device
    rows = rows.to(torch.int64)
    cols = cols.to(torch.int64)
    deg_r, deg_c = edge_degrees(rows, cols, n_rows, n_cols)
    inv_r, inv_c = _inv_sqrt(deg_r), _inv_sqrt(deg_c)
    vals = (inv_r.index_select(0, rows) * inv_c.index_select(0, cols)).to(dtype)
    # upper block (row nodes): edges in (row, col) order (no sort when they come so, as
    # the positions kept from a row-major edge list); lower block (column nodes): (col, row)
    key = rows * n_cols + cols
    if key.numel() > 1 and not bool((key[1:] >= key[:-1]).all()):
        up = torch.argsort(key)
        rows, cols, vals = rows.index_select(0, up), cols.index_select(0, up), vals.index_select(0, up)
    low = torch.argsort(cols * n_rows + rows)
    crow = torch.cat([torch.zeros(1, dtype=torch.int64, device=device), torch.cumsum(torch.cat([deg_r, deg_c]), 0)])
    col_idx = torch.cat([cols + n_rows, rows.index_select(0, low)])
    values = torch.cat([vals, vals.index_select(0, low)])
    n = n_rows + n_cols
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col_idx, values, size=(n, n), device=device)
