"""Splits: the LATTICE/MMRec random rule, temporal leave-last-out, cold-start items."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.data import build_dataset, cold_start, random_split, temporal_split
from graphrec.data.splits import all_interactions, cold_start_items
from graphrec.errors import ConfigError, DataError, GraphrecNote


def user_sizes_dataset(sizes, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u, n in enumerate(sizes):
        chosen = rng.choice(n_items, size=n, replace=False)
        users += [u] * n
        items += chosen.tolist()
        ts += rng.permutation(n).tolist()
    return build_dataset(users, items, ["train"] * len(users), timestamps=ts,
                         item_ids=np.arange(n_items), user_ids=np.arange(len(sizes)))


def per_user(m):
    return np.diff(m.indptr).tolist()


def test_random_split_follows_the_lattice_rule():
    # n < 3: all train; 3 <= n < 10: 1 valid + 1 test; n >= 10: round(0.2 n) held out,
    # half (floor) to valid, the rest to test.
    sizes = [1, 2, 3, 9, 10, 14, 23, 50]
    ds = random_split(user_sizes_dataset(sizes), seed=3)
    assert per_user(ds.valid) == [0, 0, 1, 1, 1, 1, 2, 5]
    assert per_user(ds.test) == [0, 0, 1, 1, 1, 2, 3, 5]
    assert per_user(ds.train) == [1, 2, 1, 7, 8, 11, 18, 40]


def test_random_split_keeps_every_pair_once_and_is_seeded():
    base = user_sizes_dataset([12, 30, 5, 17])
    a, b, c = random_split(base, 0), random_split(base, 0), random_split(base, 1)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    total = a.train + a.valid + a.test
    assert total.max() == 1  # disjoint
    assert (total != base.train).nnz == 0  # nothing lost or invented


def test_temporal_split_leaves_the_last_items_out():
    ds = build_dataset(
        [0, 0, 0, 0, 1, 1, 1, 2, 2],
        [0, 1, 2, 3, 0, 1, 2, 0, 1],
        ["train"] * 9,
        timestamps=[4, 1, 3, 2, 5, 5, 1, 1, 2],
        user_ids=[0, 1, 2],
        item_ids=[0, 1, 2, 3],
    )
    t = temporal_split(ds)
    # user 0 by time: 1,3,2,0 -> valid 2, test 0; user 1: 2 then tie 0/1 at t=5 broken
    # by item index -> valid 0, test 1; user 2 has only 2 items: all train
    assert t.test.toarray()[:, :].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert t.valid.toarray().tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert t.timestamps["test"].tolist() == [4, 5]


def test_temporal_split_needs_timestamps():
    ds = build_dataset([0], [0], ["train"])
    with pytest.raises(DataError, match="no timestamps"):
        temporal_split(ds)


def test_cold_start_hidden_removes_all_training_interactions_of_the_cold_items():
    ds = random_split(user_sizes_dataset([20] * 30, n_items=50), seed=0)
    cold = cold_start(ds, 0.2, seed=7, protocol="hidden")
    assert cold.meta["cold_start"] == {"fraction": 0.2, "seed": 7, "protocol": "hidden"}
    assert len(cold.cold_items) == 10
    assert cold.train[:, cold.cold_items].nnz == 0
    # warm training interactions untouched, valid/test untouched
    warm = np.setdiff1d(np.arange(50), cold.cold_items)
    assert (cold.train[:, warm] != ds.train[:, warm]).nnz == 0
    assert (cold.valid != ds.valid).nnz == 0 and (cold.test != ds.test).nnz == 0
    assert len(cold.timestamps["train"]) == cold.train.nnz
    # the removed interactions are kept apart (ranking masks them as training items)
    assert (cold.hidden + cold.train != ds.train).nnz == 0 and cold.hidden.multiply(cold.train).nnz == 0
    assert cold.hidden[:, warm].nnz == 0 and cold.hidden.nnz == ds.train[:, cold.cold_items].nnz > 0
    assert cold_start(ds, 0.2, seed=7).hidden is None  # the papers' protocol moves them to valid/test
    # same seed, same items (under both protocols); another seed, other items
    assert np.array_equal(cold_start(ds, 0.2, seed=7, protocol="hidden").cold_items, cold.cold_items)
    assert np.array_equal(cold_start(ds, 0.2, seed=7).cold_items, cold.cold_items)
    assert not np.array_equal(cold_start(ds, 0.2, seed=8, protocol="hidden").cold_items, cold.cold_items)
    with pytest.raises(DataError, match="already has a cold-start split"):
        cold_start(cold, 0.2)
    with pytest.raises(DataError, match=r"fraction must be a number in \(0, 1\)"):
        cold_start(ds, 1.5)
    with pytest.raises(ConfigError, match="protocol 'lattice' is not one of papers, hidden"):
        cold_start(ds, 0.2, protocol="lattice")


def test_cold_start_papers_moves_every_interaction_of_the_cold_items_by_hand():
    """LATTICE's data/cold_start.py: of the drawn items the first half are test items, the
    second half validation items; all their interactions (any split) move there, train
    keeps every interaction of the other items (also the valid/test ones)."""
    # 3 users x 6 items; rows: train / valid / test interactions as given
    ds = build_dataset(
        [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
        [0, 1, 2, 3, 1, 4, 5, 0, 2, 4, 5],
        ["train", "train", "valid", "test", "train", "valid", "test", "train", "train", "valid", "test"],
        user_ids=[0, 1, 2], item_ids=list(range(6)), timestamps=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], unseen="keep",
    )
    drawn = cold_start_items(6, 0.5, seed=3)  # round(0.5 * 6) = 3 items, in draw order
    test_items, valid_items = drawn[:1], drawn[1:]
    cold = cold_start(ds, 0.5, seed=3)
    assert cold.cold_items.tolist() == sorted(drawn.tolist())
    assert cold.meta["cold_start"] == {"fraction": 0.5, "seed": 3, "protocol": "papers", "valid_items": 2, "test_items": 1}
    every = (ds.train + ds.valid + ds.test).toarray() > 0
    for split, items in (("valid", valid_items), ("test", test_items)):
        want = np.zeros_like(every)
        want[:, items] = every[:, items]
        assert np.array_equal(cold.split(split).toarray() > 0, want), split
    warm = np.setdiff1d(np.arange(6), drawn)
    want_train = np.zeros_like(every)
    want_train[:, warm] = every[:, warm]
    assert np.array_equal(cold.train.toarray() > 0, want_train)
    assert set(np.flatnonzero(cold.train.toarray().any(0))) <= set(warm.tolist())  # no cold item in train
    # valid and test items are disjoint; timestamps follow their interactions
    assert not set(valid_items.tolist()) & set(test_items.tolist())
    assert sum(len(cold.timestamps[s]) for s in ("train", "valid", "test")) == 11
    # deterministic; the record of the split survives save/load
    assert cold_start(ds, 0.5, seed=3).fingerprint() == cold.fingerprint()
    assert cold_start(ds, 0.5, seed=4).fingerprint() != cold.fingerprint()


def test_cold_start_papers_on_real_data_valid_and_test_hold_cold_items_only(shared_data):
    from graphrec.data.formats import read_mmrec

    ds = read_mmrec(shared_data / "lfm2k")
    cold = cold_start(ds, 0.2, seed=0)
    info = cold.meta["cold_start"]
    assert info["valid_items"] + info["test_items"] == len(cold.cold_items) == round(0.2 * ds.n_items)
    is_cold = np.zeros(ds.n_items, bool)
    is_cold[cold.cold_items] = True
    assert not is_cold[cold.train.indices].any()
    assert is_cold[cold.valid.indices].all() and is_cold[cold.test.indices].all()
    assert not set(cold.valid.indices) & set(cold.test.indices)
    total = sum(ds.split(s).nnz for s in ("train", "valid", "test"))
    assert sum(cold.split(s).nnz for s in ("train", "valid", "test")) == total  # nothing lost


def test_all_interactions_is_the_union():
    ds = random_split(user_sizes_dataset([12, 4]), seed=0)
    u, i, t = all_interactions(ds)
    assert len(u) == 16 and len(t) == 16


def test_apply_split_keeps_a_given_split_and_refuses_one_with_an_empty_part():
    from graphrec.data.splits import apply_split
    from graphrec.errors import ConfigError

    users = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    items = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    full = build_dataset(users, items, ["train", "valid", "test"] * 3, unseen="keep")
    assert apply_split(full, "auto") is full and apply_split(full, "keep") is full
    assert "random" in apply_split(full, "random").meta["split"]
    nothing_given = build_dataset(users, items, ["train"] * 9)
    assert "random" in apply_split(nothing_given, "auto").meta["split"]
    with pytest.raises(ConfigError, match="no given valid/test split"):
        apply_split(nothing_given, "keep")
    no_valid = build_dataset(users, items, ["train", "train", "test"] * 3, unseen="keep",
                             meta={"format": "mmrec", "source": "x.inter"})
    for how in ("auto", "keep"):
        with pytest.raises(DataError, match=r"x.inter: the given split has no valid interactions \(x_label 1\) "
                                            r"but 3 test ones: .*--split random"):
            apply_split(no_valid, how)
    assert apply_split(no_valid, "random", seed=1).valid.nnz > 0
    no_test = build_dataset(users, items, ["train", "valid", "train"] * 3, unseen="keep")
    with pytest.raises(DataError, match="no test interactions but 3 valid ones"):
        apply_split(no_test, "auto")
    with pytest.raises(ConfigError, match="'shuffle' is not one of auto, keep, random, temporal"):
        apply_split(full, "shuffle")


def test_apply_split_refuses_a_given_split_that_unseen_drop_emptied():
    from graphrec.data.splits import apply_split

    # u0's valid and u1's test rows name an item never in train: --unseen drop removes them all
    users = ["u0", "u0", "u1", "u1", "u0", "u1", "u0"]
    items = ["a", "b", "a", "b", "c", "c", "a"]
    both = build_dataset(users[:6], items[:6], ["train"] * 4 + ["valid", "test"], unseen="drop",
                         meta={"source": "x.inter"})
    assert both.meta["unseen_dropped"] == {"valid": [1, 1], "test": [1, 1]}
    for how in ("auto", "keep"):
        with pytest.raises(DataError, match=r"^x.inter: after --unseen drop the given valid and test splits are empty "
                                            r"\(1 of 1 valid rows dropped and 1 of 1 test rows dropped: .*\): "
                                            r"use --unseen keep to keep them"):
            apply_split(both, how)
    assert apply_split(both, "random").meta["split"] == "random(seed=0)"  # re-split on purpose
    valid_only = build_dataset(users, items, ["train"] * 4 + ["valid", "test", "test"], unseen="drop")
    assert valid_only.meta["unseen_dropped"] == {"valid": [1, 1], "test": [1, 2]}
    with pytest.raises(DataError, match=r"after unseen: drop the given valid split is empty \(1 of 1 valid rows "
                                        r"dropped: .*use unseen: keep"):
        apply_split(valid_only, "auto", option="split:")
    assert "unseen_dropped" not in build_dataset(users, items, ["train"] * 4 + ["valid", "test", "test"],
                                                 unseen="keep").meta


def test_fractions_and_seeds_of_the_wrong_type_are_one_line():
    from graphrec.data.synthetic import synthetic_catalogue

    ds = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0)
    with pytest.raises(DataError, match="cold-start fraction must be a number in .0, 1., got '0.2'"):
        cold_start(ds, "0.2")
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match=f"seed must be an integer >= 0, got {bad!r}"):
            cold_start(ds, 0.2, seed=bad)
        with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
            random_split(ds, seed=bad)


def test_a_fraction_that_selects_too_few_cold_items_is_refused():
    from graphrec.data.synthetic import synthetic_catalogue

    ds = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0)
    with pytest.raises(DataError, match="cold-start fraction 0.01 of 20 items selects no item"):
        cold_start(ds, 0.01, protocol="hidden")
    with pytest.raises(DataError, match="selects 1 item; the papers protocol splits the cold items between valid"):
        cold_start(ds, 0.05)
    assert len(cold_start(ds, 0.05, protocol="hidden").cold_items) == 1
    assert len(cold_start(ds, 0.1).cold_items) == 2


@pytest.mark.parametrize("protocol", ["papers", "hidden"])
def test_a_fraction_that_makes_every_item_cold_is_refused(protocol):
    """round(0.98 * 20) = 20 cold items leave an empty training split (the fit loop
    then divided by zero): refused as a one-line DataError naming the fix."""
    from graphrec.data.synthetic import synthetic_catalogue

    ds = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0)
    with pytest.raises(DataError, match="fraction 0.98 makes 20 of 20 items cold and leaves no training interaction: "
                                        "use a smaller fraction"):
        cold_start(ds, 0.98, protocol=protocol)
    with pytest.warns(GraphrecNote):  # most items cold: noted (the next test)
        assert cold_start(ds, 0.9, protocol=protocol).train.nnz > 0


@pytest.mark.parametrize("protocol", ["papers", "hidden"])
def test_a_fraction_that_makes_most_items_cold_is_noted(protocol):
    """--cold-start 0.999 trained on a handful of interactions without a word: a fraction
    above one half names what training keeps; the papers' 0.2 says nothing."""
    import warnings

    from graphrec.data.ctr import select_cold_items
    from graphrec.data.synthetic import synthetic_catalogue

    ds = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0)
    with pytest.warns(GraphrecNote, match=r"--cold-start 0.9 makes 18 of the 20 items cold: training keeps 2 items "
                                          r"and \d+ training interactions of \d+ \(\d+\.\d%\)"):
        out = cold_start(ds, 0.9, protocol=protocol)
    assert out.train.nnz > 0
    with pytest.warns(GraphrecNote, match=r"--cold-start 0.9 makes 18 of the 20 items cold: training keeps 2 items, "):
        select_cold_items(20, 0.9)  # the CTR samples' draw
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphrecNote)
        cold_start(ds, 0.2, protocol=protocol)
        cold_start(ds, 0.5, protocol=protocol)
        select_cold_items(20, 0.2)
