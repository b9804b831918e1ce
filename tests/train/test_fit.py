"""The fit loop: early stopping restores the best validation epoch; runs are seeded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graphrec.data import build_dataset
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.train import TrainConfig, build_model, evaluate_model, fit, load_record, load_state, reevaluate, run_training


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=200, n_items=120, n_clusters=6, seed=1)


def test_early_stopping_restores_the_best_epoch(ds):
    torch.manual_seed(0)
    model = build_model("lightgcn", ds, {"embedding_dim": 16})
    # a high learning rate overfits quickly, so validation peaks and then declines
    cfg = TrainConfig(epochs=60, lr=0.05, batch_size=256, patience=3, ks=(20,), progress=False)
    res = fit(model, ds, cfg)
    scores = [h["valid"]["recall@20"] for h in res.history]
    assert res.stopped_early
    assert res.best_epoch == int(np.argmax(scores)) + 1
    assert len(res.history) == res.best_epoch + cfg.patience
    # the model left behind is the best one, not the last one
    again = evaluate_model(model, ds, "valid", cfg, "cpu")["all"]
    assert again["recall@20"] == pytest.approx(res.best_valid["recall@20"], abs=1e-9)
    assert again["recall@20"] > scores[-1]
    assert set(res.test) == {"all"}


def test_same_seed_same_run(ds):
    cfg = TrainConfig(epochs=3, batch_size=512, ks=(20,), progress=False, seed=4)
    r1, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg)
    r2, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg)
    assert [h["loss"] for h in r1["history"]] == [h["loss"] for h in r2["history"]]
    assert r1["test"] == r2["test"]


def test_run_record_and_reevaluation(ds, tmp_path):
    data_dir = ds.save(tmp_path / "data")
    cfg = TrainConfig(epochs=4, batch_size=512, ks=(10, 20), progress=False)
    record, model = run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "run", data_path=data_dir)
    on_disk = load_record(tmp_path / "run")
    assert on_disk["dataset"]["fingerprint"] == ds.fingerprint()
    assert on_disk["best_epoch"] == record["best_epoch"]
    assert len(on_disk["history"]) == 4 and "valid" in on_disk["history"][0]
    assert {"seconds_per_epoch", "eval_seconds_per_pass"} <= set(on_disk["timings"])
    json.dumps(on_disk)  # JSON-clean
    assert set(load_state(tmp_path / "run")) == set(model.state_dict())
    again = reevaluate(tmp_path / "run")
    for k, v in record["test"]["all"].items():
        assert again["test"]["all"][k] == pytest.approx(v, abs=1e-6)


@pytest.mark.parametrize("protocol, groups", [("hidden", {"all", "warm", "cold"}), ("papers", {"all", "cold"})])
def test_cold_start_runs_report_warm_and_cold(ds, tmp_path, protocol, groups):
    """hidden: valid/test keep warm and cold items, three groups; papers: valid/test hold
    the cold items only, so "all" is "cold" and there is no warm group. Reevaluation
    rebuilds the same split from the record (which names the protocol)."""
    from graphrec.train.run import cold_start_transforms, prepare_dataset

    cold = prepare_dataset(ds, 0.2, 0, protocol)
    cfg = TrainConfig(epochs=2, batch_size=512, ks=(20,), progress=False)
    record, _ = run_training(cold, "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "run",
                             data_path=ds.save(tmp_path / "d"), transforms=cold_start_transforms(0.2, 0, protocol))
    assert record["dataset"]["transforms"]["cold_start_protocol"] == protocol
    assert set(record["test"]) == groups
    assert record["test"]["cold"]["users"] > 0
    if protocol == "papers":
        assert record["test"]["all"] == record["test"]["cold"]
    again = reevaluate(tmp_path / "run")
    assert again["test"]["cold"]["recall@20"] == pytest.approx(record["test"]["cold"]["recall@20"], abs=1e-6)


def test_a_run_recorded_before_protocols_existed_rebuilds_the_hidden_split(ds):
    from graphrec.data import cold_start
    from graphrec.train.run import recorded_dataset

    old = recorded_dataset(ds, {"cold_start": 0.2, "cold_start_seed": 0})
    assert old.meta["cold_start"]["protocol"] == "hidden"
    assert old.fingerprint() == cold_start(ds, 0.2, 0, "hidden").fingerprint()
    assert recorded_dataset(ds, {}).fingerprint() == ds.fingerprint()


def test_reevaluation_refuses_other_data(ds, tmp_path):
    cfg = TrainConfig(epochs=1, ks=(20,), progress=False)
    run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg, out=tmp_path / "run", data_path=ds.save(tmp_path / "d"))
    other_ds = synthetic_catalogue(n_users=200, n_items=120, n_clusters=6, seed=2)
    other, other_train = other_ds.save(tmp_path / "other"), other_ds.train.nnz
    with pytest.raises(DataError, match=rf"fingerprint mismatch: train interactions {other_train}, was "
                                        rf"{ds.train.nnz}; valid interactions \d+, was {ds.valid.nnz}; test "
                                        r"interactions \d+, was \d+\): pass the original dataset with --data, or "
                                        "train again on this one"):
        reevaluate(tmp_path / "run", data_path=other)
    # the same counts, other values: said
    moved = ds.replace(item_features={m: x[::-1].copy() for m, x in ds.item_features.items()}).save(tmp_path / "rev")
    with pytest.raises(DataError, match="fingerprint mismatch: the same counts: another split, other ids or other "
                                        "feature values"):
        reevaluate(tmp_path / "run", data_path=moved)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epochs": 1, "learning_rate": 0.1})
    with pytest.raises(ConfigError, match="protocol"):
        TrainConfig(protocol="leaky")
    with pytest.raises(ConfigError, match="valid_metric"):
        TrainConfig(valid_metric="recall")
    assert 20 in TrainConfig(ks=(10,), valid_metric="ndcg@20").ks
    # types and values that failed deep inside training (numpy's seed, the epoch loop,
    # torch's Adam) are one line when the config is made
    for kw, message in (({"seed": -1}, "seed must be at least 0"), ({"epochs": 2.5}, "epochs must be an integer"),
                        ({"epochs": "10"}, "epochs must be an integer, got '10'"), ({"epochs": True}, "epochs must be an integer"),
                        ({"lr": "0.01"}, "lr must be a number"), ({"weight_decay": -1.0}, "weight_decay must be at least 0"),
                        ({"weight_decay": float("nan")}, "weight_decay must be at least 0 and finite"),
                        ({"ks": None}, "ks must be cut-offs"), ({"ks": (0, 20)}, "ks must be cut-offs")):
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**kw)
    assert TrainConfig(ks=20, lr=1, seed=np.int64(3)).ks == (20,)
    with pytest.raises(ConfigError, match="config must be a graphrec.train.TrainConfig, got dict: use TrainConfig.from_dict"):
        run_training(build_dataset([0, 1], [0, 1], ["train", "train"]), "lightgcn", {}, {"epochs": 1})


def test_fit_needs_valid_and_test_splits():
    ds = build_dataset([0, 1], [0, 1], ["train", "train"])
    model = build_model("lightgcn", ds, {"embedding_dim": 4})
    with pytest.raises(DataError, match="has no valid split"):
        fit(model, ds, TrainConfig(epochs=1, progress=False))


def test_fit_announces_every_epoch_to_the_model(ds):
    model = build_model("mf", ds, {"embedding_dim": 8})
    seen: list[tuple[int, bool]] = []
    model.start_epoch = lambda epoch: seen.append((epoch, model.training))  # type: ignore[method-assign]
    fit(model, ds, TrainConfig(epochs=4, patience=100, ks=(20,), progress=False))
    assert seen == [(1, True), (2, True), (3, True), (4, True)]  # before each epoch, in train mode


def test_a_model_without_parameters_is_validated_and_tested_once(ds):
    model = build_model("cb", ds, {"k": 10})
    result = fit(model, ds, TrainConfig(epochs=50, ks=(20,), progress=False))
    assert result.best_epoch == 0 and result.timings["epochs"] == 0
    assert len(result.history) == 1 and "valid" in result.history[0]
    assert result.test["all"]["recall@20"] > 0


def test_cold_start_selection_on_the_hidden_items(ds):
    """select_on="cold" early-stops on the validation metric of the hidden items only."""
    from graphrec.train.run import prepare_dataset

    cold = prepare_dataset(ds, 0.2, 0, "hidden")  # valid keeps warm and cold items
    best = {}
    for group in ("all", "cold"):
        torch.manual_seed(0)
        model = build_model("mmgef", cold, {"embedding_dim": 16})
        cfg = TrainConfig(epochs=12, lr=0.02, batch_size=256, patience=100, ks=(20,), progress=False, select_on=group)
        res = fit(model, cold, cfg)
        # every validation reports the three groups; the chosen one decides
        assert all(set(h["valid_groups"]) == {"warm", "cold"} for h in res.history)
        scores = [h["valid"]["recall@20"] if group == "all" else h["valid_groups"]["cold"]["recall@20"]
                  for h in res.history]
        assert res.best_epoch == int(np.argmax(scores)) + 1
        best[group] = res
    # the same training trajectory (same seed), two different selected epochs
    assert [h["loss"] for h in best["all"].history] == [h["loss"] for h in best["cold"].history]
    assert best["all"].best_epoch != best["cold"].best_epoch


@pytest.mark.parametrize("negatives", ["all", "warm"])
def test_negatives_come_from_all_items_unless_told_warm(ds, monkeypatch, negatives):
    """The papers' protocol samples BPR negatives from every item (LATTICE's reference):
    the cold items are drawn, pushed down as negatives; negatives="warm" never draws one.
    The bipartite graph the model propagates over has no edge of a cold item either way."""
    import importlib

    from graphrec.data.sampling import NegativeSampler
    from graphrec.train.run import prepare_dataset

    cold = prepare_dataset(ds, 0.2, 0, "papers")
    drawn: list[np.ndarray] = []

    class Spy(NegativeSampler):
        def sample(self, users, rng, rounds=8):
            out = super().sample(users, rng, rounds)
            drawn.append(out)
            return out

    monkeypatch.setattr(importlib.import_module("graphrec.train.fit"), "NegativeSampler", Spy)
    model = build_model("lightgcn", cold, {"embedding_dim": 8})
    adj = model.adj.to_dense()
    assert not adj[cold.n_users + torch.as_tensor(cold.cold_items)].any()
    fit(model, cold, TrainConfig(epochs=1, batch_size=256, ks=(20,), progress=False, negatives=negatives))
    negs = np.concatenate(drawn)
    hits = np.isin(negs, cold.cold_items).sum()
    if negatives == "warm":
        assert hits == 0
    else:  # about 20% of the draws
        assert 0.1 < hits / len(negs) < 0.3


def test_selecting_on_warm_items_under_the_papers_protocol_is_refused(ds):
    from graphrec.train.run import prepare_dataset

    cold = prepare_dataset(ds, 0.2, 0, "papers")
    model = build_model("lightgcn", cold, {"embedding_dim": 4})
    with pytest.raises(ConfigError, match="validation holds cold items only"):
        fit(model, cold, TrainConfig(epochs=1, progress=False, select_on="warm"))
    with pytest.raises(ConfigError, match="negatives must be one of all, warm"):
        TrainConfig(negatives="cold")


def test_selecting_on_cold_items_needs_a_cold_start_split(ds):
    model = build_model("lightgcn", ds, {"embedding_dim": 4})
    with pytest.raises(ConfigError, match="needs a cold-start split: add --cold-start"):
        fit(model, ds, TrainConfig(epochs=1, progress=False, select_on="cold"))
    with pytest.raises(ConfigError, match="select_on must be one of all, warm, cold"):
        TrainConfig(select_on="hidden")


def _with_an_item_nobody_has(fraction, wanted):
    """Six users over items 0-6, item 7 in the catalogue without any interaction, and the
    first cold-start seed whose draw of ``fraction`` of the 8 items is ``wanted(drawn)``."""
    from graphrec.data.splits import cold_start_items

    rows = [(u, (u + j) % 7, s) for u in range(6) for j, s in enumerate(("train", "train", "train", "valid", "test"))]
    users, items, split = zip(*rows)
    data = build_dataset(users, items, split, item_ids=list(range(8)), name="tiny")
    return data, next(s for s in range(1000) if wanted(cold_start_items(8, fraction, s)))


def test_a_split_left_without_interactions_is_refused_before_training():
    """The papers' protocol draws cold items from the whole catalogue; when the validation
    half is items nobody interacted with, validation has no positive: every epoch would
    score NaN and the untrained model be kept (was: exit 0 and a record of it)."""
    from graphrec.data import cold_start

    # 2 cold items: the first is test's, the second valid's
    data, seed = _with_an_item_nobody_has(0.25, lambda drawn: drawn[1] == 7)
    cold = cold_start(data, 0.25, seed, "papers")
    assert cold.split("valid").nnz == 0 and cold.split("test").nnz > 0
    model = build_model("lightgcn", cold, {"embedding_dim": 4})
    with pytest.raises(DataError, match=r"the valid split holds no interaction after the cold-start split \(2 cold "
                                        rf"items drawn, fraction 0.25, seed {seed}, protocol papers\)"):
        fit(model, cold, TrainConfig(epochs=1, progress=False))


def test_selecting_on_cold_items_that_validation_lacks_is_refused_before_training():
    """Hidden protocol: valid keeps its per-user split, so the drawn items may have no
    validation interaction; selecting on them was a KeyError after the first epoch."""
    from graphrec.data import cold_start

    data, seed = _with_an_item_nobody_has(0.125, lambda drawn: list(drawn) == [7])
    cold = cold_start(data, 0.125, seed, "hidden")
    model = build_model("lightgcn", cold, {"embedding_dim": 4})
    with pytest.raises(DataError, match="validation holds no interaction with a cold item"):
        fit(model, cold, TrainConfig(epochs=1, progress=False, select_on="cold"))
    fit(model, cold, TrainConfig(epochs=1, progress=False))  # on all items it trains


def test_learning_rate_decays_as_mmrec_schedules_it():
    """lr_decay / lr_decay_every: epoch t trains at lr * decay ** (t / every) (MMRec's
    learning_rate_scheduler). With a vanishing factor, epochs after the first leave the
    weights where epoch 1 put them; without decay they keep moving."""
    from graphrec.testing import ScaledMF

    class Snapshots(ScaledMF):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.seen = []

        def start_epoch(self, epoch):
            self.seen.append(self.user_embedding.weight.detach().clone())

    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=3, seed=0)
    moved = {}
    for decay in (1.0, 1e-12):
        torch.manual_seed(0)
        model = Snapshots(ds.n_users, ds.n_items, embedding_dim=4)
        fit(model, ds, TrainConfig(epochs=3, lr=0.05, lr_decay=decay, lr_decay_every=1, progress=False, patience=5))
        first, second, third = model.seen
        assert not torch.allclose(first, second)  # epoch 1 trains at the full rate
        moved[decay] = float((third - second).abs().max())
    assert moved[1e-12] < 1e-9 < moved[1.0]
    with pytest.raises(ConfigError, match="lr_decay must be in"):
        TrainConfig(lr_decay=0.0)
    with pytest.raises(ConfigError, match="lr must be positive"):
        TrainConfig(lr=float("nan"))


def test_a_model_built_for_other_data_is_refused_before_training(ds):
    other = synthetic_catalogue(n_users=90, n_items=50, n_clusters=3, seed=1)
    model = build_model("lightgcn", other, {"embedding_dim": 8})
    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False)
    message = (f"the model was built for 90 users and 50 items, dataset {ds.name!r} has {ds.n_users} and "
               f"{ds.n_items}: build it for this dataset")
    with pytest.raises(ConfigError, match=message):
        fit(model, ds, cfg)
    with pytest.raises(ConfigError, match=message):
        evaluate_model(model, ds, "valid", cfg, "cpu")


def test_a_model_built_before_a_cold_start_split_is_refused_by_its_fit(ds):
    """A model built on the whole data and fitted on its cold-start split propagated over
    the cold items' training interactions: its cold test recall read 0.20 on lfm2k where a
    model built on the split reads 0.001. fit refuses it; built on the split, it trains."""
    from graphrec.data.splits import cold_start

    cold = cold_start(ds, 0.2, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False)
    with pytest.raises(ConfigError, match=r"built on other training interactions than dataset .* build it on the "
                                          r"dataset it trains on"):
        fit(build_model("mmgef", ds, {"embedding_dim": 8}), cold, cfg)
    fit(build_model("mmgef", cold, {"embedding_dim": 8}), cold, cfg)
    # the same training interactions under other valid/test splits: the graphs hold nothing held out
    fit(build_model("lightgcn", ds, {"embedding_dim": 8}), ds.replace(splits={**ds.splits, "valid": ds.test}, timestamps=None),
        cfg)


def test_an_interrupted_fit_leaves_the_best_validated_model_on_its_exception(ds):
    """A Ctrl-C in a notebook's run_training (no out) lost the model, and fit left the last
    weights in it: the exception now carries the model with its best validated weights."""
    from graphrec.train import TrainingInterrupted

    cfg = TrainConfig(epochs=10, batch_size=512, ks=(20,), progress=False, seed=0, lr=0.2)  # best at epoch 3

    def interrupt_at_5(row):
        if row["epoch"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=r"interrupted in epoch 5 of 10: the model holds its best validated "
                                                  r"weights \(epoch \d\)") as caught:
        run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg, on_epoch=interrupt_at_5)
    err = caught.value
    assert [r["epoch"] for r in err.history] == [1, 2, 3, 4, 5]  # (the interrupt came after epoch 5's row)
    best = max(err.history, key=lambda r: r["valid"]["recall@20"])
    assert best["epoch"] != 5, "choose settings where the last epoch is not the best: the test must tell them apart"
    again = evaluate_model(err.model, ds, "valid", cfg, "cpu")["all"]
    assert err.best_epoch == best["epoch"] and again["recall@20"] == pytest.approx(best["valid"]["recall@20"])


def test_run_training_leaves_the_callers_global_generators_as_they_were(ds):
    """run_training seeds Python's, NumPy's and torch's global generators: a notebook's
    draws after it repeated those of seed 0 whatever the caller had seeded."""
    import random

    cfg = TrainConfig(epochs=1, batch_size=512, ks=(20,), progress=False, seed=0)
    draws = []
    for trained in (False, True):
        random.seed(100), np.random.seed(100), torch.manual_seed(100)
        if trained:
            run_training(ds, "mf", {"embedding_dim": 4}, cfg)
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[1]


def test_a_user_without_a_possible_negative_is_named_by_id_before_training():
    """BPR needs a negative per triple: a user whose training items cover every item (or,
    with --negatives warm, every warm item) is named by id, with the fix, before training."""
    users = ["u1", "u1", "u1", "u2", "u2", "u2", "u3", "u3", "u3"]
    items = ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
    split = ["train", "train", "train", "train", "valid", "test", "train", "valid", "test"]
    ds = build_dataset(users, items, split)
    model = build_model("mf", ds, {"embedding_dim": 4})
    with pytest.raises(DataError, match=r"user 'u1' has every item among their training items: BPR has no negative"):
        fit(model, ds, TrainConfig(epochs=1, progress=False))
    split = ["train", "train", "valid", "train", "valid", "test", "train", "valid", "test"]
    cold = build_dataset(users, items, split, unseen="keep").replace(cold_items=np.array([2]))  # c cold: u1 has a, b
    model = build_model("mf", cold, {"embedding_dim": 4})
    with pytest.raises(DataError, match=r"user 'u1' has every warm item .* pass --negatives all"):
        fit(model, cold, TrainConfig(epochs=1, progress=False, negatives="warm"))


def test_progress_shows_each_epochs_steps_and_evaluations(ds, monkeypatch):
    """The bar counted epochs only: a million-item epoch (hours) and its validation showed
    nothing moving. With progress on, every epoch's steps get a bar (shown once the epoch
    has run 2 s) and validation/test show theirs; the numbers are those of a quiet run."""
    from graphrec.testing import recorded_bars

    recorded = recorded_bars(monkeypatch)
    cfg = TrainConfig(epochs=2, batch_size=512, ks=(20,), progress=True, seed=2)
    loud, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, cfg)
    bars = [{k: b.get(k) for k in ("desc", "unit", "total", "delay")} for b in recorded]
    n_steps = -(-ds.train.nnz // 512)
    assert [b for b in bars if b["unit"] == "step"] == [
        {"desc": f"epoch {e}", "unit": "step", "total": n_steps, "delay": 2.0} for e in (1, 2)]
    assert [b["desc"] for b in bars if b["unit"] == "batch"] == ["evaluate valid"] * 2 + ["evaluate test"]
    quiet, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, TrainConfig(**{**cfg.to_dict(), "progress": False}))
    assert [h["loss"] for h in loud["history"]] == [h["loss"] for h in quiet["history"]]
    assert loud["test"] == quiet["test"]


def test_valid_users_validates_a_fixed_sample_and_tests_everyone(ds):
    from graphrec.train.fit import validation_users

    base = dict(epochs=3, batch_size=512, ks=(20,), progress=False, seed=2)
    full, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, TrainConfig(**base))
    part, model = run_training(ds, "lightgcn", {"embedding_dim": 8}, TrainConfig(**base, valid_users=50))
    # training draws the same triples: the same losses, epoch by epoch
    assert [h["loss"] for h in part["history"]] == [h["loss"] for h in full["history"]]
    assert all(h["valid"]["users"] == 50 for h in part["history"])
    assert full["history"][0]["valid"]["users"] > 50
    assert part["test"]["all"]["users"] == full["test"]["all"]["users"]
    # the sample: 50 users with a validation positive, the same whatever the run's seed
    sample = validation_users(ds, TrainConfig(**base, valid_users=50))
    assert len(sample) == 50 and (np.diff(ds.split("valid").indptr)[sample] > 0).all()
    assert np.array_equal(sample, validation_users(ds, TrainConfig(**dict(base, seed=9), valid_users=50)))
    # the recorded validation is the sample's, as evaluate_model computes it again
    again = evaluate_model(model, ds, "valid", TrainConfig(**base, valid_users=50), "cpu")["all"]
    assert again == part["best_valid"]
    assert validation_users(ds, TrainConfig(**base)) is None
    everyone = validation_users(ds, TrainConfig(**base, valid_users=10**6))
    assert np.array_equal(everyone, np.flatnonzero(np.diff(ds.split("valid").indptr) > 0))
    with pytest.raises(ConfigError, match="valid_users must be at least 1"):
        TrainConfig(valid_users=0)


def test_valid_users_samples_the_selected_cold_items_users(ds):
    from graphrec.data.splits import cold_start
    from graphrec.train.fit import validation_users

    cold = cold_start(ds, 0.3, seed=0, protocol="hidden")
    valid = cold.split("valid")
    is_cold = np.isin(valid.indices, cold.cold_items)
    rows = np.repeat(np.arange(cold.n_users), np.diff(valid.indptr))
    with_cold = set(rows[is_cold].tolist())
    sample = validation_users(cold, TrainConfig(valid_users=20, select_on="cold", progress=False))
    assert len(sample) == 20 and set(sample.tolist()) <= with_cold


def test_slow_epoch_note_suggests_larger_steps():
    from graphrec.train.fit import slow_epoch_note

    note = slow_epoch_note(15.0, 4883, 2048)  # a million-item LightGCN epoch at the default step
    assert note is not None and "about 20.3 h (4883 steps of 15.0 s at --batch-size 2048)" in note
    assert "--batch-size 262144" in note
    assert slow_epoch_note(15.0, 200, 2048) is None  # under an hour
    assert slow_epoch_note(7200.0, 1, 2048) is None  # one step: a larger one would not shorten it


def test_slow_first_epoch_is_noted_once(ds, monkeypatch):
    import warnings

    from graphrec.errors import GraphrecNote
    import importlib

    fit_module = importlib.import_module("graphrec.train.fit")

    monkeypatch.setattr(fit_module, "_SLOW_EPOCH_SECONDS", 0.0)  # every epoch counts as slow
    monkeypatch.setattr(fit_module, "_SLOW_EPOCH_STEPS", 2)
    model = build_model("lightgcn", ds, {"embedding_dim": 8})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit(model, ds, TrainConfig(epochs=2, batch_size=64, ks=(20,), progress=False))
    notes = [w for w in seen if issubclass(w.category, GraphrecNote)]
    assert len(notes) == 1 and "steps of" in str(notes[0].message) and "--batch-size 64" in str(notes[0].message)


def test_a_train_config_is_frozen_and_replace_checks_again():
    """cfg.epochs = 0 after construction made fit train nothing without a word (the
    values are checked only when the config is made)."""
    import dataclasses

    from graphrec.errors import ConfigError
    from graphrec.train import TrainConfig

    cfg = TrainConfig(epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 0
    assert dataclasses.replace(cfg, epochs=5).epochs == 5
    with pytest.raises(ConfigError, match="epochs"):
        dataclasses.replace(cfg, epochs=-1)
