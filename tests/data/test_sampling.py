"""Negative sampling never returns a training positive or an excluded item."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data.sampling import NegativeSampler, bpr_batches
from graphrec.errors import DataError


def test_negatives_are_never_positives_even_for_dense_users():
    rng = np.random.default_rng(0)
    dense = (rng.random((50, 40)) < 0.9).astype(np.float32)  # users own ~90% of items
    dense[:, 0] = 0  # every user has at least one negative
    train = sp.csr_matrix(dense)
    sampler = NegativeSampler(train)
    users = np.repeat(np.arange(50), 200)
    neg = sampler.sample(users, rng)
    assert dense[users, neg].sum() == 0
    assert neg.min() >= 0 and neg.max() < 40


def test_excluded_items_are_never_sampled():
    train = sp.csr_matrix(np.eye(10, dtype=np.float32))
    sampler = NegativeSampler(train, exclude_items=np.array([3, 4, 5]))
    neg = sampler.sample(np.arange(10).repeat(100), np.random.default_rng(1))
    assert not np.isin(neg, [3, 4, 5]).any()
    assert set(np.unique(neg)) == set(range(10)) - {3, 4, 5}


def test_a_user_with_every_item_is_reported():
    train = sp.csr_matrix(np.array([[1, 1], [1, 0]], dtype=np.float32))
    with pytest.raises(DataError, match="user index 0 interacted with every candidate item"):
        NegativeSampler(train).sample(np.array([0, 1]), np.random.default_rng(0))


def test_bpr_batches_cover_each_training_pair_once_per_epoch():
    rng = np.random.default_rng(0)
    train = sp.random(30, 25, density=0.2, format="csr", random_state=0)
    train.data[:] = 1
    sampler = NegativeSampler(train)
    seen = []
    for u, p, n in bpr_batches(train, 7, rng, sampler):
        assert len(u) <= 7
        assert train[u, n].sum() == 0
        seen += list(zip(u.tolist(), p.tolist()))
    expected = set(zip(*train.nonzero()))
    assert len(seen) == len(expected) and set(seen) == expected
