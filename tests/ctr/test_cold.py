"""CTR cold-start protocol: cold items hidden from every training structure."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import build_dataset
from graphrec.data.ctr import (
    CTRData,
    build_ctr_data,
    cold_mask,
    item_popularity,
    select_cold_items,
    sequences_from_dataset,
)
from graphrec.data.splits import cold_start as topk_cold_start
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError
from graphrec.graphs import GraphSpec, build_item_graph
from graphrec.train.ctr import CTRConfig, build_ctr_model, fit_ctr
from graphrec.train.record import load_record

COLD = [5, 9, 11, 14]  # select_cold_items(20, 0.2, seed=0), checked below


def _hand():
    # 20 items "0".."19"; cold items 5, 9, 11, 14
    # a: 0 5 1 2 9 11 3   (N=7: train part 0 5 1 2 9 -> warm 0 1 2; valid 11 (cold); test 3)
    # b: 5 9 4 6          (N=4: train part 5 9 is all cold -> no samples; 4, 6 stay training data)
    # c: 7 8 14 10        (N=4: train part 7 8; valid 14 (cold); test 10)
    seqs = {"a": [0, 5, 1, 2, 9, 11, 3], "b": [5, 9, 4, 6], "c": [7, 8, 14, 10]}
    rows = [(u, str(i), t) for u, s in seqs.items() for t, i in enumerate(s, start=1)]
    u, i, t = zip(*rows)
    return build_dataset(u, i, ["train"] * len(u), timestamps=t, item_ids=[str(k) for k in range(20)], name="hand")


def _positives(split, user):
    sel = (split.users == user) & (split.labels == 1)
    return [(int(i), [x for x in h.tolist() if x >= 0]) for i, h in zip(split.items[sel], split.history[sel])]


def _negatives(split, user):
    return split.items[(split.users == user) & (split.labels == 0)].tolist()


def _dataset(seqs):
    rows = [(u, str(i), t) for u, s in seqs.items() for t, i in enumerate(s, start=1)]
    u, i, t = zip(*rows)
    return build_dataset(u, i, ["train"] * len(u), timestamps=t, item_ids=[str(k) for k in range(20)], name="hand")


def test_no_negative_names_the_user_id_the_pool_and_the_fix():
    """A user who interacted with every cold-start item has no cold negative for a cold
    target: the error names the user's id (not an index), the cold items and the fix."""
    from graphrec.errors import DataError

    # user "u7" (index 1) interacted with all of 5 9 11 14; its valid target 11 is cold
    ds = _dataset({"a": [0, 1, 2, 3], "u7": [0, 5, 9, 14, 1, 11, 3], "c": [7, 8, 10, 12]})
    with pytest.raises(DataError) as e:
        build_ctr_data(ds, sequences_from_dataset(ds), max_history=3, seed=0, cold_start=0.2, cold_seed=0)
    msg = str(e.value)
    assert msg.startswith("user u7 of 'hand' interacted with all 4 cold-start items (--cold-start 0.2 --cold-seed 0)"), msg
    assert "a cold target of theirs has no cold negative" in msg and "pass another --cold-seed" in msg, msg
    assert "index" not in msg
    # without cold start: every item is a candidate
    ds = _dataset({"a": [0, 1, 2, 3], "z": list(range(20))})
    with pytest.raises(DataError, match="^user z of 'hand' interacted with all 20 items, so no negative exists"):
        build_ctr_data(ds, sequences_from_dataset(ds), max_history=3, seed=0)


def test_cold_protocol_by_hand():
    assert select_cold_items(20, 0.2, 0).tolist() == COLD
    ds = _hand()
    data = build_ctr_data(ds, sequences_from_dataset(ds), max_history=3, seed=0, cold_start=0.2, cold_seed=0)
    ua, ub, uc = (list(ds.user_ids).index(x) for x in "abc")
    tr, va, te = data.samples["train"], data.samples["valid"], data.samples["test"]
    # train: the warm part of x_1..x_{N-2}, samples t = 2..M
    assert _positives(tr, ua) == [(1, [0]), (2, [0, 1])]
    assert _positives(tr, uc) == [(8, [7])]
    # valid/test: targets of the full sequence, histories without cold items
    assert _positives(va, ua) == [(11, [0, 1, 2])]
    assert _positives(te, ua) == [(3, [0, 1, 2])]  # 11 (cold) is not in the test history
    assert _positives(va, uc) == [(14, [7, 8])]
    assert _positives(te, uc) == [(10, [7, 8])]
    # a cold target's negative is cold: for user a the only cold non-positive is 14
    assert _negatives(va, ua) == [14]
    assert _negatives(va, uc)[0] in {5, 9, 11}
    assert _negatives(te, ua)[0] not in COLD and _negatives(te, uc)[0] not in COLD
    # user b: everything before its last two behaviours is cold -> no samples at all
    for s in data.samples.values():
        assert ub not in s.users
    # the training interactions (graphs, popularity) hold warm items only
    assert sorted(data.dataset.train[ua].indices.tolist()) == [0, 1, 2]
    assert sorted(data.dataset.train[ub].indices.tolist()) == [4, 6]
    assert sorted(data.dataset.train[uc].indices.tolist()) == [7, 8]
    assert data.dataset.valid[ua].indices.tolist() == [11] and data.dataset.test[ua].indices.tolist() == [3]
    assert data.dataset.cold_items.tolist() == COLD
    assert data.dataset.meta["cold_start"] == {"fraction": 0.2, "seed": 0}
    assert data.meta["cold_start"]["n_cold_items"] == 4
    # the cold slice is the cold-start items, not "unseen in training"
    assert cold_mask(data, "valid").tolist() == np.isin(va.items, COLD).tolist()
    assert cold_mask(data, "test").sum() == 0  # both test targets (3, 10) and their negatives are warm
    # time deltas follow the compacted histories (test of a at t=7; history at t=1, 3, 4)
    d = te.hist_delta[(te.users == ua) & (te.labels == 1)][0]
    assert d.tolist() == [6.0, 4.0, 3.0]


@pytest.fixture(scope="module")
def cold_data():
    ds = synthetic_catalogue(n_users=80, n_items=60, n_clusters=4, items_per_user=(5, 14), seed=3)
    plain = build_ctr_data(ds, sequences_from_dataset(ds), max_history=8, seed=0)
    cold = build_ctr_data(ds, sequences_from_dataset(ds), max_history=8, seed=0, cold_start=0.3, cold_seed=4)
    return ds, plain, cold


def test_no_cold_item_in_any_training_structure(cold_data):
    ds, plain, data = cold_data
    cold = select_cold_items(ds.n_items, 0.3, 4)
    assert data.dataset.cold_items.tolist() == cold.tolist()
    tr = data.samples["train"]
    assert len(tr) > 0
    assert not np.isin(tr.items, cold).any()  # neither positives nor negatives
    for s in data.samples.values():  # no history of any split holds a cold item
        assert not np.isin(s.history, cold).any()
    assert data.dataset.train[:, cold].nnz == 0
    assert (item_popularity(data)[cold] == 0).all()
    co = build_item_graph(data.dataset, GraphSpec(kind="cooccur", symmetric=True)).graph.tocsr()
    assert co[cold].nnz == 0 and co[:, cold].nnz == 0
    # content features are kept: the kNN graph still links every cold item
    knn = build_item_graph(data.dataset, GraphSpec(kind="knn", k=5, symmetric=True)).graph.tocsr()
    assert (knn[cold].getnnz(axis=1) > 0).all()
    # the same draw as the top-k recommender's cold start
    assert topk_cold_start(ds, 0.3, 4).cold_items.tolist() == cold.tolist()


def test_cold_valid_test_targets_and_negatives(cold_data):
    ds, plain, data = cold_data
    cold = set(data.dataset.cold_items.tolist())
    seqs = sequences_from_dataset(ds)
    for name in ("valid", "test"):
        s = data.samples[name]
        pos, neg = s.items[0::2], s.items[1::2]
        # the targets are the full sequence's x_{N-1} / x_N, cold or not
        off = 2 if name == "valid" else 1
        assert pos.tolist() == [int(seqs.of(u)[-off]) for u in s.users[0::2]]
        assert any(int(i) in cold for i in pos)
        # a negative is in its positive's group and never a positive of the user
        assert [int(i) in cold for i in pos] == [int(i) in cold for i in neg]
        assert all(int(n) not in seqs.of(u).tolist() for u, n in zip(s.users[1::2], neg))
        # the history is the warm part of everything before the target
        for u, h, t in zip(s.users[0::2], s.history[0::2], pos):
            full = seqs.of(u).tolist()
            before = [x for x in full[: len(full) - off] if x not in cold][-8:]
            assert [x for x in h.tolist() if x >= 0] == before
    # users lost only when no warm behaviour precedes their last two
    assert set(data.samples["test"].users) <= set(plain.samples["test"].users)


def test_cold_samples_seeded_saved_and_checked(cold_data, tmp_path):
    ds, plain, data = cold_data
    again = build_ctr_data(ds, sequences_from_dataset(ds), max_history=8, seed=0, cold_start=0.3, cold_seed=4)
    assert again.fingerprint() == data.fingerprint()
    other = build_ctr_data(ds, sequences_from_dataset(ds), max_history=8, seed=0, cold_start=0.3, cold_seed=5)
    assert other.dataset.cold_items.tolist() != data.dataset.cold_items.tolist()
    assert plain.dataset.cold_items is None and "cold_start" not in plain.meta
    data.save(tmp_path / "s")
    back = CTRData.load(tmp_path / "s")
    assert back.fingerprint() == data.fingerprint()
    assert back.dataset.cold_items.tolist() == data.dataset.cold_items.tolist()
    for bad in (0.0 - 0.1, 1.0, 1.5):
        with pytest.raises(ConfigError, match="cold-start fraction"):
            build_ctr_data(ds, sequences_from_dataset(ds), cold_start=bad)
    with pytest.raises(ConfigError, match="selects no item"):
        select_cold_items(10, 0.01)


def test_fit_reports_cold_and_warm_slices(cold_data):
    _, _, data = cold_data
    model = build_ctr_model("youtubenet", data, {})
    res = fit_ctr(model, data, CTRConfig(epochs=1, progress=False, seed=0))
    te = data.samples["test"]
    n_cold = int(np.isin(te.items, data.dataset.cold_items).sum())
    assert res.test["slices"]["cold"]["samples"] == n_cold
    assert res.test["slices"]["warm"]["samples"] == len(te) - n_cold
    assert res.best_valid["slices"]["cold"]["samples"] == int(np.isin(data.samples["valid"].items, data.dataset.cold_items).sum())
    assert np.isfinite(res.test["slices"]["cold"]["auc"])


def test_cli_cold_start(cold_data, tmp_path):
    ds, _, _ = cold_data
    runner = CliRunner()
    ds.save(tmp_path / "ds")
    args = ["train", "youtubenet", "--data", str(tmp_path / "ds"), "--task", "ctr", "--epochs", "1", "--device", "cpu",
            "--threads", "1", "--quiet", "--max-history", "8", "--samples", str(tmp_path / "s")]
    res = runner.invoke(app, args + ["--cold-start", "0.3", "--seed", "4", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "18 cold-start items" in res.output
    rec = load_record(tmp_path / "r")
    assert rec["dataset"]["samples"]["cold_start"] == {"fraction": 0.3, "seed": 4, "n_cold_items": 18}
    assert rec["test"]["slices"]["cold"]["samples"] > 0
    stored = CTRData.load(tmp_path / "s")
    assert stored.dataset.cold_items.tolist() == select_cold_items(60, 0.3, 4).tolist()
    # the stored samples are checked: another cold seed is refused, in one line
    res = runner.invoke(app, args + ["--cold-start", "0.3", "--seed", "5", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 1 and "--cold-start 0.3 --cold-seed 4" in res.output and "Traceback" not in res.output
    # a samples directory is used as built; another cold-start split is refused
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "s"), "--cold-start", "0.2", "--seed", "4",
                              "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(tmp_path / "r3")])
    assert res.exit_code == 1 and "holds samples built with --cold-start 0.3 --cold-seed 4" in res.output
    # --cold-seed: the same cold items while --seed varies the initialisation (the stored samples fit)
    res = runner.invoke(app, args + ["--cold-start", "0.3", "--cold-seed", "4", "--seed", "9", "--out",
                                     str(tmp_path / "r6")])
    assert res.exit_code == 0, res.output
    rec = load_record(tmp_path / "r6")
    assert rec["dataset"]["samples"]["cold_start"]["seed"] == 4 and rec["train_config"]["seed"] == 9
    res = runner.invoke(app, args[:-2] + ["--cold-seed", "4", "--out", str(tmp_path / "r7")])  # no --samples
    assert res.exit_code == 0, res.output
    assert "--cold-seed 4 has no effect without --cold-start" in res.output
    plain = build_ctr_data(ds, sequences_from_dataset(ds), max_history=8)
    plain.save(tmp_path / "plain")
    res = runner.invoke(app, ["train", "din", "--data", str(tmp_path / "plain"), "--cold-start", "0.3",
                              "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(tmp_path / "r5")])
    assert res.exit_code == 1 and "holds samples built with no cold start" in res.output
    res = runner.invoke(app, args + ["--cold-start", "1.5", "--out", str(tmp_path / "r4")])
    assert res.exit_code == 1 and "--cold-start must be in [0, 1)" in res.output


def test_a_model_collapsed_to_one_probability_is_noted_once(cold_data, monkeypatch):
    """DIN under AdaGrad at lr 0.1 collapsed to a constant output (validation AUC exactly
    0.5) for two epochs without a word: the fit notes it once."""
    import warnings

    import graphrec.train.ctr as ctr_module
    from graphrec.errors import GraphrecNote

    _, _, data = cold_data
    model = build_ctr_model("lr", data, {})
    monkeypatch.setattr(ctr_module, "predict_ctr", lambda model, t, *a, **k: np.full(len(t["labels"]), 0.3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_ctr(model, data, CTRConfig(epochs=3, patience=5, progress=False, seed=0))
    notes = [str(w.message) for w in caught if issubclass(w.category, GraphrecNote)]
    assert notes == ["epoch 1: the model gives every validation sample the same probability (AUC 0.5): it has "
                     "collapsed to a constant, e.g. a --lr too large for its optimiser; the best epoch before it is kept"]
