"""The demo's synthetic catalogue: every size it accepts gives a dataset, the others are
one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError


def test_a_small_catalogue_with_clusters_that_drew_no_item():
    """60 items over the default 16 clusters leave some cluster empty: a user who liked only
    empty clusters made numpy's choice fail on NaN probabilities."""
    ds = synthetic_catalogue(n_users=200, n_items=60, seed=0)
    cluster = ds.item_fields["cluster"]
    assert len(np.unique(cluster)) < 16  # the case: some clusters hold no item
    counts = np.diff((ds.train + ds.valid + ds.test).tocsr().indptr)
    assert counts.min() >= 1 and ds.n_items == 60


def test_users_may_ask_for_more_items_than_the_catalogue_holds():
    ds = synthetic_catalogue(n_users=30, n_items=6, n_clusters=2, explore=1.0, seed=0)  # 8-30 of 6 items
    assert (ds.train + ds.valid + ds.test).tocsr().max() == 1 and ds.n_items == 6


def test_the_same_arguments_give_the_same_catalogue():
    a, b = synthetic_catalogue(n_users=50, n_items=40, seed=3), synthetic_catalogue(n_users=50, n_items=40, seed=3)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != synthetic_catalogue(n_users=50, n_items=40, seed=4).fingerprint()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_items": 0}, "n_items must be an integer >= 1, got 0"),
        ({"n_clusters": 2.5}, "n_clusters must be an integer >= 1"),
        ({"items_per_user": (0, 3)}, r"items_per_user must be \(low, high\) with 1 <= low <= high, got \(0, 3\)"),
        ({"items_per_user": (5, 3)}, "items_per_user must be"),
        ({"explore": 1.5}, r"explore must be in \[0, 1\], got 1.5"),
    ],
)
def test_sizes_it_cannot_draw_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        synthetic_catalogue(**kwargs)
