"""Uniform negative sampling for pairwise (BPR) training, vectorised.

For a training pair (u, i+) a negative i- is drawn uniformly from the candidate items
(all items, or all but an excluded set such as the cold-start items, which must stay
unseen in training) such that (u, i-) is NOT a training interaction. Collisions are
found with one ``searchsorted`` over the sorted keys ``u * n_items + i`` of the training
matrix and redrawn until none remain (a few rounds at realistic densities).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp

from graphrec.errors import DataError

__all__ = ["NegativeSampler", "bpr_batches"]


class NegativeSampler:
    """Draws negatives that are never a training positive of their user.

    Args:
        train: training matrix (n_users x n_items), CSR.
        exclude_items: items never drawn as negatives (e.g. cold-start items).
    """

    def __init__(self, train: sp.csr_matrix, exclude_items: np.ndarray | None = None) -> None:
        train = sp.csr_matrix(train)
        self.n_users, self.n_items = train.shape
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(train.indptr))
        self._keys = np.unique(rows * self.n_items + train.indices.astype(np.int64))
        cand = np.ones(self.n_items, bool)
        if exclude_items is not None and len(exclude_items):
            cand[np.asarray(exclude_items, dtype=np.int64)] = False
        self._candidates = np.flatnonzero(cand)
        # a user needs at least one candidate that is not a positive
        pos_in_cand = np.bincount(rows[cand[train.indices]], minlength=self.n_users)
        full = np.flatnonzero(pos_in_cand >= len(self._candidates))
        self._full_users = full
        self._train = train
        if len(self._candidates) == 0:
            raise DataError("no items are left to sample negatives from")

    @property
    def full_users(self) -> np.ndarray:
        """The users (indices, sorted) whose positives cover every candidate item: no
        negative exists for them (:meth:`sample` refuses them; callers that know the
        user's id and what the candidates are check first, for a clearer message)."""
        return self._full_users

    def sample(self, users: np.ndarray, rng: np.random.Generator, rounds: int = 8) -> np.ndarray:
        """One negative item per entry of ``users``.

        ``rounds`` rejection rounds handle almost everything; the few entries left (users
        who own most items) are then drawn exactly from their user's complement.
        """
        users = np.asarray(users, dtype=np.int64)
        if len(self._full_users) and np.isin(users, self._full_users).any():
            bad = users[np.isin(users, self._full_users)][0]
            raise DataError(
                f"user index {bad} interacted with every candidate item: no negative exists; "
                "remove the user from the training data"
            )
        cand = self._candidates
        neg = cand[rng.integers(0, len(cand), size=len(users))]
        todo = np.arange(len(users))
        for _ in range(rounds):
            keys = users[todo] * self.n_items + neg[todo]
            pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            todo = todo[self._keys[pos] == keys]
            if todo.size == 0:
                return neg
            neg[todo] = cand[rng.integers(0, len(cand), size=todo.size)]
        # exact fallback for the remaining (dense) users: sample their complement
        todo = todo[np.isin(users[todo] * self.n_items + neg[todo], self._keys)]
        for u in np.unique(users[todo]):
            idx = todo[users[todo] == u]
            row = self._train.indices[self._train.indptr[u] : self._train.indptr[u + 1]]
            free = np.setdiff1d(cand, row, assume_unique=False)
            neg[idx] = free[rng.integers(0, len(free), size=len(idx))]
        return neg


def bpr_batches(
    train: sp.csr_matrix,
    batch_size: int,
    rng: np.random.Generator,
    sampler: NegativeSampler,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of shuffled (users, positives, negatives) batches over all training pairs."""
    rows = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
    cols = train.indices.astype(np.int64)
    perm = rng.permutation(len(rows))
    users, pos = rows[perm], cols[perm]
    neg = sampler.sample(users, rng)
    for start in range(0, len(users), batch_size):
        sl = slice(start, start + batch_size)
        yield users[sl], pos[sl], neg[sl]
