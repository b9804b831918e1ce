"""A small deterministic multimodal catalogue with planted structure (for the demo).

Items belong to ``n_clusters`` latent clusters. Each cluster has a centre in a latent
space; an item's ``image`` and ``text`` features are two different random linear views of
(its cluster centre + item noise), so both modalities carry the cluster signal, as CLIP
image and text embeddings of similar products do. Each user prefers one or two
clusters and picks items mostly from them (Zipf-skewed popularity inside a cluster,
plus some uniform exploration). The interactions are then split per user with the
LATTICE/MMRec rule (:func:`graphrec.data.splits.random_split`).

Everything derives from ``seed``: the same arguments always give the same dataset.

For small catalogues only (the demo, tests, examples: the default 1,500 users x 800
items). Each user's draw scans every item (``np.isin`` over the item clusters and
``rng.choice`` with a probability vector of length ``n_items``), so generation costs
O(n_users x n_items) (measured: 0.3 s for the default, 4.3 s CPU for 2,000 users x
100,000 items, ~2 ms a user, so minutes for 100,000 users and hours at a million). It stays
this way on purpose: the demo's and the tests' data (and results recorded from them)
depend on its exact random draws. For large synthetic catalogues use the vectorised
generator of the benchmarks, ``make_dataset`` in ``experiments/benchmarks/million_items.py``
(inverse-CDF draws for all users at once with ``np.searchsorted``; 10 training
interactions per user; a 64-d content modality).
"""

from __future__ import annotations

import numpy as np

from graphrec._checks import is_int
from graphrec.data.dataset import Dataset, build_dataset
from graphrec.errors import ConfigError
from graphrec.data.splits import random_split

__all__ = ["synthetic_catalogue"]


def synthetic_catalogue(
    n_users: int = 1500,
    n_items: int = 800,
    n_clusters: int = 16,
    feature_dim: int = 32,
    items_per_user: tuple[int, int] = (8, 30),
    explore: float = 0.25,
    seed: int = 0,
) -> Dataset:
    """Generate the demo dataset (see module doc); split train/valid/test. Cost
    O(n_users x n_items): for small catalogues (module doc; for large ones see
    ``make_dataset`` in ``experiments/benchmarks/million_items.py``).

    Raises:
        ConfigError: a size below 1, ``items_per_user`` not ``(low, high)`` with
            ``1 <= low <= high`` (a user draws at most ``n_items``), or ``explore``
            outside [0, 1].
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_clusters", n_clusters),
                        ("feature_dim", feature_dim)):
        if not is_int(value) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    low, high = items_per_user
    if not (is_int(low) and is_int(high) and 1 <= low <= high):
        raise ConfigError(f"items_per_user must be (low, high) with 1 <= low <= high, got {items_per_user!r}")
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"explore must be in [0, 1], got {explore!r}")
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, size=n_items)
    latent_dim = 16
    centres = rng.normal(size=(n_clusters, latent_dim)) * 2.0
    latent = centres[cluster] + rng.normal(size=(n_items, latent_dim))
    feats = {}
    for name in ("image", "text"):
        view = rng.normal(size=(latent_dim, feature_dim)) / np.sqrt(latent_dim)
        feats[name] = (latent @ view + 0.3 * rng.normal(size=(n_items, feature_dim))).astype(np.float32)
    popularity = rng.zipf(1.6, size=n_items).clip(max=50).astype(np.float64)

    users, items, times = [], [], []
    for u in range(n_users):
        liked = rng.choice(n_clusters, size=rng.integers(1, 3), replace=False)
        in_liked = np.isin(cluster, liked)
        weight = np.where(in_liked, popularity, 0.0)
        n = int(rng.integers(items_per_user[0], items_per_user[1] + 1))
        n_explore = min(int(rng.binomial(n, explore)), n_items)  # (capped: never reached where it worked before)
        if in_liked.any():
            picks = rng.choice(n_items, size=min(n - n_explore, int(in_liked.sum())), replace=False, p=weight / weight.sum())
        else:  # the liked clusters drew no item (a small catalogue): the user explores only
            picks = np.zeros(0, np.int64)
        extra = rng.choice(n_items, size=n_explore, replace=False)
        chosen = np.unique(np.concatenate([picks, extra]))
        users.append(np.full(len(chosen), u))
        items.append(chosen)
        times.append(rng.permutation(len(chosen)) + 1_600_000_000 + u)
    u_all = np.concatenate(users)
    i_all = np.concatenate(items)
    ds = build_dataset(
        u_all,
        i_all,
        np.full(len(u_all), "train"),
        timestamps=np.concatenate(times).astype(np.float64),
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
        item_features=feats,
        item_fields={"cluster": cluster.astype(np.int64)},
        name="synthetic",
        meta={"source": "synthetic_catalogue", "seed": seed},
    )
    return random_split(ds, seed=seed)
