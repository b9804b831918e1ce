"""CTR samples: DIN protocol, no leakage, negatives, storage, real sources, slices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphrec.data import build_dataset
from graphrec.data.ctr import (
    CTRData,
    Sequences,
    behaviour_properties,
    build_ctr_data,
    cold_mask,
    item_popularity,
    load_ctr_source,
    popularity_levels,
    read_unisrec_sequences,
    sequences_from_dataset,
)
from graphrec.errors import DataError


def _toy():
    # user a: items 0,1,2,3,4 at times 1..5 (item 3 and 2 tie at t=3: item 2 first)
    # user b: items 5,6,7 (3 behaviours: valid + test only)
    # user c: items 8,9 (too short: no samples)
    rows = [
        ("a", "0", 1), ("a", "1", 2), ("a", "3", 3), ("a", "2", 3), ("a", "4", 5),
        ("b", "5", 10), ("b", "6", 11), ("b", "7", 12),
        ("c", "8", 1), ("c", "9", 2),
    ]
    u, i, t = zip(*rows)
    ds = build_dataset(u, i, ["train"] * len(u), timestamps=t, item_ids=[str(k) for k in range(12)], name="toy")
    return ds


def test_sequences_ordered_by_time_ties_by_item_index():
    ds = _toy()
    seqs = sequences_from_dataset(ds)
    ua = list(ds.user_ids).index("a")
    assert seqs.of(ua).tolist() == [0, 1, 2, 3, 4]


def test_din_protocol_by_hand():
    ds = _toy()
    data = build_ctr_data(ds, sequences_from_dataset(ds), max_history=2, seed=0)
    ua, ub = list(ds.user_ids).index("a"), list(ds.user_ids).index("b")
    tr = data.samples["train"]
    pos = tr.labels == 1
    # user a (N=5): t = 2, 3 -> candidates x2=1, x3=2; user b (N=3) has none
    assert tr.users[pos].tolist() == [ua, ua]
    assert tr.items[pos].tolist() == [1, 2]
    assert tr.history[pos].tolist() == [[0, -1], [0, 1]]
    assert tr.position[pos].tolist() == [2, 3]
    va, te = data.samples["valid"], data.samples["test"]
    by_user = {int(u): (int(i), h.tolist()) for u, i, h, l in zip(va.users, va.items, va.history, va.labels) if l == 1}
    assert by_user[ua] == (3, [1, 2])  # history truncated to the 2 most recent
    assert by_user[ub] == (6, [5, -1])
    by_user = {int(u): (int(i), h.tolist()) for u, i, h, l in zip(te.users, te.items, te.history, te.labels) if l == 1}
    assert by_user[ua] == (4, [2, 3])
    assert by_user[ub] == (7, [5, 6])
    # the short user c gives no sample; its behaviours stay in train
    uc = list(ds.user_ids).index("c")
    for s in data.samples.values():
        assert uc not in s.users
    assert data.dataset.train[uc].nnz == 2
    # the dataset is the leave-two-out partition
    assert sorted(data.dataset.valid[ua].indices.tolist()) == [3]
    assert sorted(data.dataset.test[ua].indices.tolist()) == [4]
    assert sorted(data.dataset.train[ua].indices.tolist()) == [0, 1, 2]
    # deltas: seconds from history to the candidate's time (test of a: t=5, history at 3, 3)
    d = te.hist_delta[(te.users == ua) & (te.labels == 1)][0]
    assert d.tolist() == [2.0, 2.0]


def test_no_leakage_and_negatives_never_positive():
    ds = _toy()
    data = build_ctr_data(ds, sequences_from_dataset(ds), max_history=10, seed=3)
    seqs = sequences_from_dataset(ds)
    for s in data.samples.values():
        assert (s.labels[0::2] == 1).all() and (s.labels[1::2] == 0).all()
        for u, i, h, lab in zip(s.users, s.items, s.history, s.labels):
            seq = seqs.of(u).tolist()
            hist = [x for x in h.tolist() if x >= 0]
            if lab == 1:
                t = seq.index(i)
                assert hist == seq[:t][-10:]  # a strict prefix (the toy users repeat no item)
            else:
                assert i not in seq


def test_a_repeated_behaviour_is_in_the_later_histories():
    # histories are strict prefixes by position, not "without the target": user a buys
    # item 0 again at position 2, so that sample's history [0, 1] holds its own candidate
    ds = _toy()
    order = {name: k for k, name in enumerate(ds.user_ids)}
    seq = {"a": [0, 1, 0, 2, 3], "b": [5, 6, 7], "c": [8, 9]}
    by_index = [seq[name] for name, _ in sorted(order.items(), key=lambda kv: kv[1])]
    seqs = Sequences(np.cumsum([0] + [len(s) for s in by_index]), np.concatenate(by_index))
    tr = build_ctr_data(ds, seqs, max_history=10, seed=0).samples["train"]
    pos = (tr.labels == 1) & (tr.users == order["a"])
    assert tr.items[pos].tolist() == [1, 0]
    assert tr.history[pos][1, :2].tolist() == [0, 1]
    assert not np.isin(tr.items[tr.labels == 0], seq["a"]).any()  # a negative never is


def test_seeded_and_saved(tmp_path):
    ds = _toy()
    seqs = sequences_from_dataset(ds)
    a = build_ctr_data(ds, seqs, max_history=3, seed=7)
    b = build_ctr_data(ds, seqs, max_history=3, seed=7)
    assert a.fingerprint() == b.fingerprint()
    c = build_ctr_data(ds, seqs, max_history=3, seed=8)
    assert all(np.array_equal(a.samples[s].items[0::2], c.samples[s].items[0::2]) for s in a.samples)
    a.save(tmp_path / "s")
    back = CTRData.load(tmp_path / "s")
    assert back.fingerprint() == a.fingerprint()
    assert back.meta["seed"] == 7 and back.max_history == 3
    np.testing.assert_array_equal(back.samples["train"].hist_delta, a.samples["train"].hist_delta)
    # tampering is detected
    head = json.loads((tmp_path / "s" / "ctr.json").read_text())
    head["fingerprint"] = "0" * 64
    (tmp_path / "s" / "ctr.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match="fingerprint"):
        CTRData.load(tmp_path / "s")
    with pytest.raises(DataError, match="already exists"):
        a.save(tmp_path / "s")


def test_load_checks_the_arrays_not_only_their_fingerprint(tmp_path):
    # a label that no save could write (NaN), with a fingerprint that matches it: refused
    # in one line naming the file, the array and the row
    a = build_ctr_data(_toy(), sequences_from_dataset(_toy()), max_history=3, seed=7)
    a.save(tmp_path / "s")
    with np.load(tmp_path / "s" / "samples.npz") as z:
        arrays = dict(z)
    arrays["test__labels"][1] = np.nan
    np.savez_compressed(tmp_path / "s" / "samples.npz", **arrays)
    a.samples["test"].labels[1] = np.nan
    head = json.loads((tmp_path / "s" / "ctr.json").read_text())
    head["fingerprint"] = a.fingerprint()
    (tmp_path / "s" / "ctr.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match=r"samples\.npz: test__labels\[1\] = nan is not a label \(0 or 1") as e:
        CTRData.load(tmp_path / "s")
    assert "\n" not in str(e.value) and f"delete {tmp_path / 's'}" in str(e.value)


def test_properties_and_slices():
    ds = _toy()
    data = build_ctr_data(ds, sequences_from_dataset(ds), max_history=3, seed=0)
    te = data.samples["test"]
    props = behaviour_properties(te)
    assert ((props > 0) == (te.history >= 0)).all()
    no_time = data.samples["test"].subset(np.arange(len(te)))
    no_time.hist_delta = None
    rec = behaviour_properties(no_time)
    ua = list(ds.user_ids).index("a")
    row = np.flatnonzero(te.users == ua)[0]
    assert rec[row].tolist() == [3, 2, 1]  # recency rank, 1 = most recent
    pop = item_popularity(data)
    assert pop.tolist()[:5] == [1, 1, 1, 0, 0]
    assert cold_mask(data).tolist() == (pop[te.items] == 0).tolist()
    levels = popularity_levels(data, "test", n_levels=2)
    # distinct candidates sorted by popularity then index, cut into equal-size groups
    uniq = np.unique(te.items)
    order = uniq[np.lexsort((uniq, pop[uniq]))].tolist()
    expect = [order.index(i) * 2 // len(order) for i in te.items.tolist()]
    assert [int(l) for l in levels] == expect
    assert set(expect) == {0, 1}


def test_unisrec_sequences_checked(tmp_path):
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (tmp_path / "x.train.inter").write_text(head + "0\t0\t1\n0\t0 1\t2\n")
    (tmp_path / "x.valid.inter").write_text(head + "0\t0 1 2\t3\n")
    (tmp_path / "x.test.inter").write_text(head + "0\t0 1 2 3\t4\n")
    from graphrec.data.formats import read_unisrec

    ds = read_unisrec(tmp_path, unseen="keep", features={})
    seqs = read_unisrec_sequences(tmp_path, ds)
    assert [ds.item_ids[i] for i in seqs.of(0)] == ["0", "1", "2", "3", "4"]
    (tmp_path / "x.valid.inter").write_text(head + "0\t0 2 1\t3\n")
    with pytest.raises(DataError, match="x.valid.inter line 2"):
        read_unisrec_sequences(tmp_path, ds)


def test_amazon_scientific(shared_data):
    data = load_ctr_source(shared_data / "amazon-scientific", max_history=50, seed=0)
    assert data.n_users == 2928 and data.n_items == 1585
    assert set(data.dataset.item_features) == {"image", "text"}
    # the full sequence of user 0 is its test history + target
    te = data.samples["test"]
    row = np.flatnonzero((te.users == 0) & (te.labels == 1))[0]
    hist = [x for x in te.history[row].tolist() if x >= 0]
    assert [data.dataset.item_ids[i] for i in hist + [int(te.items[row])]] == [
        data.dataset.item_ids[i] for i in (0, 1, 2, 3, 4)
    ]
    # N - 3 train positives per user, one valid and one test positive each
    n = data.dataset.train.getnnz(axis=1)  # distinct training items
    assert len(te) == 2 * 2928 and len(data.samples["valid"]) == 2 * 2928
    assert data.samples["train"].labels.sum() == sum(
        max(len(read_len) - 3, 0) for read_len in _test_lengths(shared_data)
    )
    assert (n > 0).all()


def _test_lengths(root):
    lines = (root / "amazon-scientific" / "Scientific.test.inter").read_text().splitlines()[1:]
    return [ln.split("\t")[1].split() + [ln.split("\t")[2]] for ln in lines]


def test_ml100k(shared_data):
    data = load_ctr_source(shared_data / "ml100k", max_history=20, seed=0)
    assert data.n_users == 943 and data.n_items == 1682
    assert data.samples["train"].labels.sum() == 100000 - 3 * 943
    assert data.has_time and data.samples["train"].history.shape[1] == 20
    # text features aligned through text_minilm_item_ids.npy
    raw = np.load(shared_data / "ml100k" / "text_minilm.npy")
    ids = np.load(shared_data / "ml100k" / "text_minilm_item_ids.npy")
    k = list(data.dataset.item_ids).index("50")
    np.testing.assert_array_equal(data.dataset.item_features["text"][k], raw[list(ids).index(50)])
    assert set(data.user_side) == {"age", "gender", "occupation"}
    assert data.item_side["genres"].shape[0] == 1682
    # sequences follow time
    te = data.samples["test"]
    assert np.all(np.nan_to_num(te.hist_delta, nan=0.0) >= 0)


def test_unisrec_sequences_from_histories_cut_to_their_last_items(tmp_path):
    """UniSRec files usually keep the last 50 items of each history: a long sequence is
    then no test row alone. Rows cut to their last 4 items (stored newest first, as the
    row order is free) give back every user's whole sequence, repeats included; a
    missing row is still an error naming its neighbour's line."""
    from graphrec.data.formats import read_unisrec

    rng = np.random.default_rng(3)
    seqs = {u: rng.integers(0, 9, rng.integers(3, 14)).tolist() for u in range(12)}
    seqs[0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 5, 6]  # a repeat of 3 items, continued differently
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

    def rows(u, ts):
        return "".join(f"{u}\t{' '.join(map(str, seqs[u][max(0, t - 4):t]))}\t{seqs[u][t]}\n" for t in ts)

    def write(skip=None):
        (tmp_path / "x.train.inter").write_text(head + "".join(
            rows(u, [t for t in range(len(s) - 3, 0, -1) if (u, t) != skip]) for u, s in seqs.items()))
        (tmp_path / "x.valid.inter").write_text(head + "".join(rows(u, [len(s) - 2]) for u, s in seqs.items()))
        (tmp_path / "x.test.inter").write_text(head + "".join(rows(u, [len(s) - 1]) for u, s in seqs.items()))

    write()
    ds = read_unisrec(tmp_path, unseen="keep", features={})
    got = read_unisrec_sequences(tmp_path, ds)
    users = {str(u): k for k, u in enumerate(ds.user_ids.tolist())}
    for u, seq in seqs.items():
        assert [int(ds.item_ids[i]) for i in got.of(users[str(u)])] == seq, u
    seqs[0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 5]  # 4 items (the cut) repeated, continued differently:
    write()  # which continuation came first, the rows cannot tell
    with pytest.raises(DataError, match=r"x\.valid\.inter line 2: history \+ target of user '0' is not the test"):
        read_unisrec_sequences(tmp_path, read_unisrec(tmp_path, unseen="keep", features={}))
    seqs[0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 5, 6]
    write(skip=(5, 6))  # user 5's row at t=6 is missing: its sequence cannot be made
    with pytest.raises(DataError, match=r"x\.valid\.inter line \d+: history \+ target of user '5' is not the test "
                                        r"sequence without its last item, nor \(histories cut to their last 4 items\) a "
                                        "window of the sequence its rows make"):
        read_unisrec_sequences(tmp_path, read_unisrec(tmp_path, unseen="keep", features={}))


def test_millisecond_timestamps_are_noted():
    """Samples read seconds (hist_delta, MARN's time-gap buckets): timestamps in
    milliseconds (1.7e12 now) would make every gap 1000 times too long: a note says so;
    seconds give none."""
    import warnings

    from graphrec.errors import GraphrecNote

    base = 1_700_000_000
    for scale, noted in ((1, False), (1000, True)):
        u, i = ["a"] * 5 + ["b"] * 4, [str(k) for k in range(9)]
        t = [(base + 60 * k) * scale for k in range(9)]
        ds = build_dataset(u, i, ["train"] * 9, timestamps=t, item_ids=i, name="clock")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            build_ctr_data(ds, sequences_from_dataset(ds), max_history=3, seed=0)
        notes = [str(w.message) for w in seen if issubclass(w.category, GraphrecNote)]
        assert any("look like milliseconds" in n for n in notes) == noted, notes
