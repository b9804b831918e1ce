r"""CB: the content-only item-kNN recommender, the "content alone" baseline of
multimodal recommendation (item-based kNN as in Sarwar, Karypis, Konstan, Riedl; WWW
2001, with content cosines in place of rating similarities).

Every item j keeps its k most similar items by the cosine of its (early-fused) content
features, :math:`S_{ji} = \cos(x_j, x_i)` for :math:`i \in \mathrm{topk}(j)`, 0
otherwise (the graph of :func:`graphrec.graphs.knn_graph`). A user's score for an item
sums the similarities from the items in the user's training history:

.. math::
    \hat y_{ui} = \sum_{j \in R_u} S_{ji}, \qquad \hat y_{u\cdot} = R_u S .

Nothing is learned (the fit loop skips training and validates once); an item never
interacted with in training still gets a score from its content, which makes CB the
reference point for cold-start items. Scores are computed per batch of users as
:math:`(S^\top R_B^\top)^\top`, one sparse product, never an n x n matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.errors import ConfigError
from graphrec.models.base import Recommender, Scorer, candidate_index
from graphrec.nn.csr import csr_row_entries

__all__ = ["ContentKNN"]  # SparseRows and the history helpers: the cold-item path's, not a model


class ContentKNN(Recommender):
    """Item-kNN over a content similarity graph.

    Args:
        n_users: number of users.
        n_items: number of items.
        history: training interactions, (n_users x n_items) torch sparse CSR (ones).
        similarity: the content kNN graph S (n_items x n_items) torch sparse, row j
            holding j's neighbours and their cosines.
    """

    def __init__(self, n_users: int, n_items: int, history: Tensor, similarity: Tensor) -> None:
        super().__init__()
        if tuple(history.shape) != (n_users, n_items):
            raise ConfigError(f"history has shape {tuple(history.shape)}, expected {(n_users, n_items)}")
        if tuple(similarity.shape) != (n_items, n_items):
            raise ConfigError(f"similarity has shape {tuple(similarity.shape)}, expected {(n_items, n_items)}")
        self.n_users = n_users
        self.n_items = n_items
        h = history.to_sparse_csr()
        self.register_buffer("history_crow", h.crow_indices().long(), persistent=False)
        self.register_buffer("history_cols", h.col_indices().long(), persistent=False)
        self.register_buffer("similarity_t", similarity.to_sparse_coo().t().coalesce().to_sparse_csr(), persistent=False)

    def reset_parameters(self) -> None:
        """Nothing to reset: the model has no parameters."""

    def history_entries(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """The users' training interactions as (position of the user in ``users``, item)
        pairs, in the order of ``users`` and, per user, of the items (sparse: the batch's
        interactions, never B x n_items)."""
        crow, cols = self.history_crow, self.history_cols
        users = users.to(crow.device).long()
        owner, entry = csr_row_entries(crow, users)
        return owner, cols[entry]

    def history_rows(self, users: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Dense (B x n_items) 0/1 rows of the users' training histories."""
        owner, items = self.history_entries(users)
        rows = torch.zeros(users.numel(), self.n_items, device=self.history_crow.device, dtype=dtype)
        rows[owner, items] = 1
        return rows

    def similarity_columns(self, items: Tensor) -> "SparseRows":
        r"""The columns ``items`` of S, :math:`S_{:, items}` (n_items x m), as
        :class:`SparseRows` (row j: the given items among j's neighbours, their position
        in ``items`` and :math:`S_{ji}`), for :meth:`history_product`. One pass over S's
        entries (O(n_items k)); extract once and reuse across batches."""
        st = self.similarity_t  # S^T: row i lists i's in-neighbours j, the entries S_ji
        dev = st.crow_indices().device
        items = items.to(dev).long()
        rows, entry = csr_row_entries(st.crow_indices(), items)  # entries of S^T's rows ``items``
        j, val = st.col_indices()[entry], st.values()[entry]
        order = torch.sort(j, stable=True).indices  # by j, then by position in items
        return SparseRows.from_entries(j[order], rows[order], val[order], self.n_items, items.numel())

    def history_product(self, users: Tensor, matrix: "SparseRows", *, out: Tensor | None = None,
                        scale: float = 1.0) -> Tensor:
        r""":math:`R_B M` (B x m) for a sparse M (n_items x m): the batch's SPARSE history
        rows times M, :math:`\sum_{j \in R_u} M_{j\cdot}`; with ``out`` (B x m,
        contiguous), ``out += scale * R_B M`` in place, touching only the entries the
        histories reach. Work and memory O(sum over the batch's interactions j of
        nnz(M_j)) besides ``out``: no (B x n_items) row, no (B x m) temporary."""
        owner, items = self.history_entries(users)
        if out is None:
            out = torch.zeros(users.numel(), matrix.shape[1], dtype=matrix.values.dtype, device=matrix.values.device)
        return matrix.add_row_sums(out, owner, items, scale)

    def user_scores(self, users: Tensor) -> Tensor:
        """R_B S as (B x n_items)."""
        return torch.sparse.mm(self.similarity_t, self.history_rows(users).t()).t()

    def pair_scores(self, users: Tensor, items: Tensor) -> Tensor:
        r"""Scores of (user, item) pairs, :math:`\sum_{j \in R_u} S_{ji}`, without forming
        the rows of S: each item's in-neighbours (a row of :math:`S^\top`) are looked up
        in a boolean mask of the batch's distinct users' histories (distinct users x
        n_items bytes). O(P k) for P pairs with k in-neighbours each."""
        st = self.similarity_t
        col, val = st.col_indices(), st.values()
        users, items = users.long(), items.long()
        owner, entry = csr_row_entries(st.crow_indices(), items)
        distinct, row = torch.unique(users, return_inverse=True)
        hit = self.history_rows(distinct, dtype=torch.bool)[row[owner], col[entry]].to(val.dtype)
        return torch.zeros(items.numel(), dtype=val.dtype, device=items.device).index_add(0, owner, val[entry] * hit)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError("ContentKNN scores are R S, not inner products of embeddings: use scorer()")

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.user_scores(users).gather(1, items.view(-1, 1).to(self.history_crow.device)).view(-1)

    def pairwise_scores(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> tuple[Tensor, Tensor]:
        s = self.user_scores(users)
        return s.gather(1, pos_items.view(-1, 1)).view(-1), s.gather(1, neg_items.view(-1, 1)).view(-1)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        raise NotImplementedError("ContentKNN has nothing to train")

    @torch.no_grad()
    def scorer(self, candidates: Tensor | None = None) -> Scorer:
        """``users -> R_B S`` (B x n_items) or, given ``candidates``, its columns
        :math:`R_B S_{:, candidates}` (B x len(candidates)) from the batch's sparse
        histories (:meth:`history_product`; the columns extracted once, here)."""
        if candidates is None:
            return self.user_scores
        columns = self.similarity_columns(candidate_index(candidates, self.n_items, self.history_crow.device))
        return lambda users: self.history_product(users, columns)


#: entries expanded at once by :meth:`SparseRows.add_row_sums`: bounds its temporaries (a
#: few int64 per entry, ~200 MB at most); larger products run in slices of whole owners
_GATHER_CHUNK = 1 << 22


class SparseRows:
    """A sparse (n_rows x n_cols) matrix as CSR arrays (``crow``, ``cols``, ``values``, on
    one device), for sums of some of its rows (:meth:`add_row_sums`): plain indexing,
    ``unique`` and ``index_add``, the same code on CPU and CUDA."""

    def __init__(self, crow: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> None:
        self.crow, self.cols, self.values, self.shape = crow, cols, values, (int(shape[0]), int(shape[1]))

    @classmethod
    def from_entries(cls, rows: Tensor, cols: Tensor, values: Tensor, n_rows: int, n_cols: int) -> "SparseRows":
        """From entries sorted by row."""
        counts = torch.bincount(rows, minlength=n_rows)
        crow = torch.zeros(n_rows + 1, dtype=torch.long, device=rows.device)
        torch.cumsum(counts, 0, out=crow[1:])
        return cls(crow, cols.long(), values, (n_rows, n_cols))

    @property
    def nnz(self) -> int:
        return int(self.cols.numel())

    def add_row_sums(self, out: Tensor, owner: Tensor, rows: Tensor, scale: float = 1.0) -> Tensor:
        """``out[b] += scale * (sum of the rows rows[e] over the e with owner[e] == b)``, in
        place (``out``: contiguous, n_out x n_cols), and ``out``. Each entry's sum is
        formed first, adding the rows in the order given, then scaled and added once (the
        rounding of ``out + scale * dense_sum``); only the entries reached are touched.
        ``owner``'s equal values should be contiguous (a batch's history entries are);
        slices of whole owners bound the temporaries (:data:`_GATHER_CHUNK`)."""
        crow, cols, values = self.crow, self.cols, self.values
        n_cols = self.shape[1]
        if tuple(out.shape) != (out.shape[0], n_cols) or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous (n x {n_cols}) tensor, got {tuple(out.shape)}")
        flat = out.view(-1)
        if rows.numel() == 0 or cols.numel() == 0:
            return out
        owner, rows = owner.to(crow.device), rows.to(crow.device)
        ends = torch.cumsum(crow[rows + 1] - crow[rows], 0)  # entries expanded up to each (owner, row)
        group_end = torch.cumsum(torch.unique_consecutive(owner, return_counts=True)[1], 0)
        reach = ends[group_end - 1]  # ... up to the end of each owner's run
        a = g = done = 0
        while a < rows.numel():
            g = max(int(torch.searchsorted(reach, done + _GATHER_CHUNK, right=True)), g + 1)
            b, done = int(group_end[g - 1]), int(reach[g - 1])
            e_owner, entry = csr_row_entries(crow, rows[a:b])
            keys, where = torch.unique(owner[a:b][e_owner] * n_cols + cols[entry], return_inverse=True)
            sums = torch.zeros(keys.numel(), dtype=values.dtype, device=values.device).index_add_(0, where, values[entry])
            if scale != 1.0:
                sums.mul_(scale)
            flat.index_add_(0, keys, sums.to(out.dtype))
            a = b
        return out
