"""Hyper-parameter search (graphrec.train.tune): a resumable study in SQLite, selection on
validation only, the test split read once for the best trial, every trial recorded,
pruning, dead trials marked, settings bound to the study."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphrec.errors import ConfigError
from graphrec.train import TrainConfig, run_training
from graphrec.train.record import load_record

optuna = pytest.importorskip("optuna", reason="graphrec tune needs Optuna (the tune extra: pip install 'graphrec[tune]')")

from graphrec.train.tune import require_optuna, storage_url, tune  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
fit_module = importlib.import_module("graphrec.train.fit")  # graphrec.train.fit is also the function
EPOCHS = 4


@pytest.fixture(scope="module")
def data(saved_catalogue) -> Path:
    return saved_catalogue("tune-data", "shop", n_users=120, n_items=70, n_clusters=4, seed=2)


def _config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": EPOCHS, "batch_size": 512, "patience": 50, "ks": (20,), "progress": False, **kw})


def _tune(data, tmp_path, trials=3, **kw):
    kw.setdefault("storage", f"sqlite:///{tmp_path / 'study.db'}")
    kw.setdefault("out", tmp_path / "out")
    kw.setdefault("config", _config())
    kw.setdefault("plots", False)
    storage = kw.pop("storage")
    return tune(data, kw.pop("model", "lightgcn"), trials, storage, **kw)


def test_tune_takes_data_path_and_model_name_and_their_old_names(data, tmp_path):
    """data_path and model_name, as run_training, run_ctr and load_run name them; data=
    and model= still work, with a warning (here up to the check of trials)."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.warns(FutureWarning) as caught, pytest.raises(ConfigError, match="--trials must be at least 1"):
        tune(data=data, model="lightgcn", trials=0, storage=storage)
    assert {str(w.message).split(": ")[1].split(";")[0] for w in caught} == {
        "the argument data= is renamed data_path=", "the argument model= is renamed model_name="}
    with pytest.raises(ConfigError, match="got both data_path= and its old name data="):
        tune(data, "lightgcn", 1, storage, data=data)
    with pytest.raises(ConfigError, match="got both model_name= and its old name model="):
        tune(data_path=data, model_name="lightgcn", model="lightgcn", trials=1, storage=storage)


def _study(tmp_path, name="lightgcn-synthetic"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'study.db'}")


@pytest.fixture()
def evaluated(monkeypatch):
    """The splits every ranking evaluation was asked for, in order (a spy)."""
    splits: list[str] = []
    real = fit_module.evaluate_ranking

    def spy(scorer, dataset, split, **kw):
        splits.append(split)
        return real(scorer, dataset, split, **kw)

    monkeypatch.setattr(fit_module, "evaluate_ranking", spy)
    return splits


def test_a_second_call_adds_trials_to_the_same_study(data, tmp_path):
    first = _tune(data, tmp_path, trials=3)
    second = _tune(data, tmp_path, trials=2)
    assert (first.trials_run, second.trials_run) == (3, 2)
    study = _study(tmp_path)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert second.n_trials == 5 and sum(first.states.values()) == 3
    for t in study.trials:
        record = load_record(tmp_path / "out" / "trials" / str(t.number))
        assert record["tune"]["trial"] == t.number and record["tune"]["state"] == t.state.name.lower()
        assert record["tune"]["params"] == t.params
        assert record["test"] == {}  # trials never see the test split
    held = json.loads((tmp_path / "out" / "tune.json").read_text())
    assert held["storage"] == f"sqlite:///{(tmp_path / 'study.db').absolute()}" and held["summary"]["trials"] == 5


def test_trials_select_on_validation_and_the_best_is_tested_once_at_the_end(data, tmp_path, evaluated):
    result = _tune(data, tmp_path, trials=3)
    assert evaluated.count("test") == 1 and evaluated[-1] == "test"
    assert set(evaluated[:-1]) == {"valid"} and len(evaluated) == 3 * EPOCHS + 1
    study = _study(tmp_path)
    best = load_record(result.best_run)
    assert best["tune"]["trial"] == study.best_trial.number == result.best_trial
    assert best["best_valid"]["recall@20"] == study.best_trial.value == max(t.value for t in study.trials)
    assert best["test"] == result.test and set(best["test"]) == {"all"}
    assert (result.best_run / "model.pt").is_file()


def test_the_best_run_is_tested_again_only_when_another_trial_becomes_the_best(data, tmp_path, evaluated, monkeypatch):
    _tune(data, tmp_path, trials=2)
    assert evaluated.count("test") == 1
    tune_module = importlib.import_module("graphrec.train.tune")
    monkeypatch.setattr(tune_module._Objective, "__call__", lambda self, trial: -1.0)  # never better
    _tune(data, tmp_path, trials=1)
    assert evaluated.count("test") == 1


def test_the_first_trial_is_the_default_run(data, tmp_path):
    _tune(data, tmp_path, trials=1)
    trial = _study(tmp_path).trials[0]
    assert trial.params == {"lr": 1e-3, "reg_weight": 1e-4, "num_layers": 2}
    from graphrec.data import Dataset

    record, _ = run_training(Dataset.load(data), "lightgcn", None, _config())
    assert trial.value == record["best_valid"]["recall@20"]


def test_the_first_trial_is_the_default_run_where_the_builder_resolves_defaults(data, tmp_path):
    """MM-GEF's and LATTICE's reg_weight (and MM-GEF's k) default to None, resolved in the
    builder from other parameters (parity): the first trial is still the default run."""
    from graphrec.data import Dataset

    _tune(data, tmp_path, trials=1, model="mmgef")
    trial = _study(tmp_path, "mmgef-synthetic").trials[0]
    assert trial.params == {"lr": 1e-3, "reg_weight": 1e-4, "num_layers": 2, "item_layers": 1, "k": 10}
    assert trial.user_attrs.get("defaults")
    record, _ = run_training(Dataset.load(data), "mmgef", None, _config())
    assert trial.value == record["best_valid"]["recall@20"]
    # parity fixed by the space: the resolved default is the reference's L2 weight
    space = {"parity": "reference", "lambda_coeff": None, "k": None}
    _tune(data, tmp_path / "p", trials=1, model="lattice", space=space)
    trial = _study(tmp_path / "p", "lattice-synthetic").trials[0]
    assert trial.params == {"lr": 1e-3, "reg_weight": 1e-5}



def test_the_best_run_stores_its_graphs_and_loads_without_a_knn_search(data, tmp_path, monkeypatch):
    """The best run holds the graphs its model is built over (as graphrec train's runs do):
    recommend / evaluate of it take them instead of searching the kNN graph again."""
    import torch

    from graphrec.graphs import build
    from graphrec.train.run import load_run

    result = _tune(data, tmp_path, trials=1, model="mmgef")
    best = load_record(result.best_run)
    (entry,) = best["run_graphs"]  # MM-GEF's content kNN graph
    assert entry["key"]["spec"]["kind"] == "knn" and (result.best_run / entry["dir"] / "graph.npz").is_file()
    trial_dir = Path(best["tune"]["trial_run"])
    _, _, searched = load_run(trial_dir)  # a trial's run stores none: its graph is searched again

    def refuse(*args, **kwargs):
        raise AssertionError("a kNN search ran")

    monkeypatch.setattr(build, "knn_graph", refuse)
    _, _, loaded = load_run(result.best_run)
    with torch.no_grad():
        users = torch.arange(20)
        torch.testing.assert_close(loaded.scorer()(users), searched.scorer()(users), rtol=0, atol=0)

DEFAULTS = {"lr": 1e-3, "reg_weight": 1e-4, "num_layers": 2}


def _interrupt_at(monkeypatch, seed):
    """``_Objective._train`` raises KeyboardInterrupt (Ctrl-C, SIGTERM) when it trains ``seed``."""
    tune_module = importlib.import_module("graphrec.train.tune")
    real = tune_module._Objective._train

    def train(self, trial, params, config, *a, **kw):
        if config.seed == seed:
            raise KeyboardInterrupt
        return real(self, trial, params, config, *a, **kw)

    monkeypatch.setattr(tune_module._Objective, "_train", train)
    return lambda: monkeypatch.setattr(tune_module._Objective, "_train", real)


MMGEF_DEFAULTS = {"lr": 1e-3, "reg_weight": 1e-4, "num_layers": 2, "item_layers": 1, "k": 10}


@pytest.mark.parametrize("model, repeats, defaults", [("lightgcn", 1, DEFAULTS), ("lightgcn", 2, DEFAULTS),
                                                     ("mmgef", 1, MMGEF_DEFAULTS)])  # mmgef: resolved defaults
def test_the_default_trial_of_an_interrupted_call_runs_again(data, tmp_path, monkeypatch, model, repeats, defaults):
    """docs/tune.md: the study's best is never worse than the default run. A call
    interrupted during its first trial (the default point; with --repeats, on its second
    seed) leaves it failed: the next call runs it again, first, and only once."""
    kw = {"model": model, "repeats": repeats, "pruning": False}
    restore = _interrupt_at(monkeypatch, repeats - 1)
    with pytest.raises(KeyboardInterrupt):
        _tune(data, tmp_path, trials=3, **kw)
    restore()
    name = f"{model}-synthetic"
    assert [(t.state, t.params) for t in _study(tmp_path, name).trials] == [(optuna.trial.TrialState.FAIL, defaults)]
    lines: list[str] = []
    _tune(data, tmp_path, trials=2, log=lines.append, **kw)
    trials = _study(tmp_path, name).trials
    assert lines[0] == "trial 0: the default configuration ended without a result; it will run again"
    assert trials[1].params == defaults and trials[1].state == optuna.trial.TrialState.COMPLETE
    assert trials[1].user_attrs["defaults"] and trials[1].user_attrs["rerun_of"] == 0
    assert trials[2].params != defaults  # TPE's after it
    _tune(data, tmp_path, trials=1, **kw)  # done: not queued again
    assert [t.params == defaults for t in _study(tmp_path, name).trials] == [True, True, False, False]


def test_the_default_trial_of_a_killed_call_runs_again(data, tmp_path):
    """A call killed (SIGKILL, a lost machine) while it ran the default point leaves it
    RUNNING: the next call marks it failed and queues the default point again."""
    import socket

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _tune(data, tmp_path, trials=1)  # binds the study; its trial 0 is the default point
    study = optuna.load_study(study_name="lightgcn-synthetic", storage=storage)
    study.enqueue_trial(DEFAULTS, user_attrs={"defaults": True})
    orphan = study.ask()  # the queued default point, taken by a process that is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    assert orphan.number == 1
    # the first default trial did complete: nothing to run again
    lines: list[str] = []
    _tune(data, tmp_path, trials=1, log=lines.append)
    assert lines[0] == "trial 1: marked failed (its process ended while it ran)"
    assert _study(tmp_path).trials[2].params != DEFAULTS

    (tmp_path / "p").mkdir()
    storage = f"sqlite:///{tmp_path / 'p' / 'study.db'}"
    optuna.create_study(study_name="lightgcn-synthetic", storage=storage, direction="maximize")
    study = optuna.load_study(study_name="lightgcn-synthetic", storage=storage)
    study.set_user_attr("graphrec", _study(tmp_path).user_attrs["graphrec"])
    study.enqueue_trial(DEFAULTS, user_attrs={"defaults": True})
    orphan = study.ask()
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    lines = []
    _tune(data, tmp_path / "p", trials=1, log=lines.append)
    assert lines[0] == "trial 0: marked failed (its process ended while it ran); the default configuration will run again"
    trials = _study(tmp_path / "p").trials
    assert trials[1].params == DEFAULTS and trials[1].state == optuna.trial.TrialState.COMPLETE


def test_the_default_trial_is_never_pruned(data, tmp_path, monkeypatch):
    """The default run is the study's floor: the pruner, which favours fast learners,
    never stops it (a default point queued again after other trials completed)."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    _tune(data, tmp_path, trials=2, prune_startup=0, prune_warmup=0)
    states = [t.state for t in _study(tmp_path).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]


def test_hopeless_trials_are_pruned_from_their_validation_curve(data, tmp_path):
    space = {"lr": {"low": 1e-6, "high": 5e-2, "log": True}}
    _tune(data, tmp_path, trials=8, space=space, prune_startup=1, prune_warmup=0, config=_config(epochs=6))
    study = _study(tmp_path)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [t.state for t in study.trials]
    for t in pruned:
        run = tmp_path / "out" / "trials" / str(t.number)
        record = load_record(run)
        assert record["tune"]["state"] == "pruned" and not (run / "model.pt").exists()
        assert [r["epoch"] for r in record["history"]] == list(range(1, t.last_step + 1)) and t.last_step < 6
        # pruned where its best value so far fell below the median, at that epoch, of the
        # trials completed before it (Optuna's median rule)
        earlier = [o.intermediate_values[t.last_step] for o in study.trials
                   if o.number < t.number and o.state == optuna.trial.TrialState.COMPLETE]
        assert max(t.intermediate_values.values()) < float(np.median(earlier))
    # a pruned trial kept no weights, and the study folder is not a run: both say what to pass
    from graphrec.errors import DataError
    from graphrec.train.run import load_run

    with pytest.raises(DataError, match="is a pruned trial of a tune study: it kept no weights; use the study's best"):
        load_run(tmp_path / "out" / "trials" / str(pruned[0].number))
    with pytest.raises(DataError, match=f"is a graphrec tune folder, not a run: pass its best run, {tmp_path / 'out' / 'best'}"):
        load_run(tmp_path / "out")


def test_without_pruning_every_trial_completes(data, tmp_path):
    space = {"lr": {"low": 1e-6, "high": 5e-2, "log": True}}
    result = _tune(data, tmp_path, trials=5, space=space, pruning=False, prune_startup=1, prune_warmup=0)
    assert result.states == {"complete": 5}


def test_a_diverging_trial_fails_and_the_study_goes_on(data, tmp_path, monkeypatch):
    real = fit_module.fit

    def fit(model, dataset, config, **kw):
        if config.lr > 1e-3:
            raise FloatingPointError("training loss became nan at epoch 1: lower --lr")
        return real(model, dataset, config, **kw)

    monkeypatch.setattr(fit_module, "fit", fit)
    result = _tune(data, tmp_path, trials=4, space={"lr": [1e-3, 5e-3]}, pruning=False)
    study = _study(tmp_path)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(t.params["lr"] == 5e-3 for t in failed)
    assert result.best_params["lr"] == 1e-3
    record = load_record(tmp_path / "out" / "trials" / str(failed[0].number))
    assert record["tune"]["state"] == "failed" and "lower --lr" in record["tune"]["error"]


def test_trials_of_a_killed_call_are_marked_failed_and_the_count_continues(data, tmp_path):
    _tune(data, tmp_path, trials=1)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.load_study(study_name="lightgcn-synthetic", storage=storage)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = study.ask()  # what a killed call leaves: a RUNNING trial of a process that is gone
    import socket

    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    alive = study.ask()  # a running trial of a live process (this one) is left alone
    alive.set_user_attr("host", socket.gethostname())
    alive.set_user_attr("pid", subprocess.os.getpid())
    lines = []
    _tune(data, tmp_path, trials=1, log=lines.append)
    states = {t.number: t.state for t in _study(tmp_path).trials}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert states[alive.number] == optuna.trial.TrialState.RUNNING
    assert states[3] == optuna.trial.TrialState.COMPLETE and len(states) == 4
    assert f"trial {orphan.number}: marked failed (its process ended while it ran)" in lines


def test_a_study_refuses_a_call_with_other_settings(data, tmp_path):
    _tune(data, tmp_path, trials=1)
    with pytest.raises(ConfigError, match=r"other settings \(train_config.epochs: 4 in the study, 5 now\)"):
        _tune(data, tmp_path, trials=1, config=_config(epochs=5))
    with pytest.raises(ConfigError, match=r"other settings \(space.fixed.num_layers: None in the study, 3 now\)"):
        _tune(data, tmp_path, trials=1, space={"num_layers": 3})
    with pytest.raises(ConfigError, match="other settings .seed"):
        _tune(data, tmp_path, trials=1, seed=1)
    _tune(data, tmp_path, trials=1, study_name="other", out=tmp_path / "other")  # another study, same database
    assert len(_study(tmp_path, "other").trials) == 1


def test_an_output_folder_belongs_to_one_study(data, tmp_path):
    _tune(data, tmp_path, trials=1)
    with pytest.raises(ConfigError, match="--out .* holds study 'lightgcn-synthetic'"):
        _tune(data, tmp_path, trials=1, study_name="another")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a graphrec tune folder"):
        _tune(data, tmp_path, trials=1, out=tmp_path / "busy")


@pytest.mark.parametrize(
    "url, message",
    [("study.db", "not a database URL: use e.g. sqlite:///study.db"), ("sqlite://", "give a SQLite file"),
     ("sqlite:///:memory:", "give a SQLite file")],
)
def test_storages_that_cannot_hold_a_resumable_study_are_refused(url, message):
    with pytest.raises(ConfigError, match=message):
        storage_url(url)


def test_a_file_that_is_not_a_study_database_is_a_one_line_error(data, tmp_path):
    (tmp_path / "study.db").write_text("not sqlite at all, but long enough to look like a header " * 4)
    with pytest.raises(Exception) as e:
        _tune(data, tmp_path, trials=1)
    assert "not an Optuna study database" in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).endswith(": name a new file (created then) or a database an earlier graphrec tune wrote")


def test_without_optuna_tune_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"needs Optuna: pip install 'graphrec\[tune\]'"):
        require_optuna()


def test_the_study_plots_are_written(data, tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (the plot extra)")
    result = _tune(data, tmp_path, trials=4, plots=True)
    names = sorted(p.name for p in result.plots)
    assert names == ["optimization_history.png", "param_importances.png"]
    from matplotlib.image import imread

    for path in result.plots:
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600  # 6.4 in wide at 120 dpi
        assert pixels[..., :3].std() > 0.05  # not blank
    assert result.notes == []


def test_too_few_trials_for_importances_is_a_note_not_a_failure(data, tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (the plot extra)")
    result = _tune(data, tmp_path, trials=1, plots=True)
    assert [p.name for p in result.plots] == ["optimization_history.png"]
    assert result.notes == ["no param_importances.png: parameter importances need more completed trials (have 1)"]


def test_a_space_where_every_trial_would_fail_writes_no_study_and_no_folder(tmp_path):
    """MM-GEF's defaults fuse every modality early: on a dataset whose modalities differ
    in dimension every trial would fail. The model's check says so before the study or
    the output folder exists (it left both, and the study then refused the corrected
    call as "other settings"); a space that lists modalities is checked over its values."""
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.errors import DataError

    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    path = ds.replace(item_features=dict(ds.item_features, audio=np.ones((40, 7), np.float32))).save(tmp_path / "d")
    with pytest.raises(DataError, match=r"every trial of this space would fail: cannot average modalities of "
                                        r"different dimensions .*--modalities audio"):
        _tune(path, tmp_path, trials=1, model="mmgef")
    assert not (tmp_path / "study.db").exists() and not (tmp_path / "out").exists()
    # a space listing the modalities one by one has trials that can run: not refused
    res = _tune(path, tmp_path, trials=1, model="mmgef", space={"modalities": ["audio", "text"]})
    assert res.trials_run == 1


def test_a_cold_start_study_trains_every_trial_on_one_cold_split_and_its_best_run_reloads(data, tmp_path):
    from graphrec.data import Dataset, cold_start
    from graphrec.train.run import load_run

    result = _tune(data, tmp_path, trials=2, cold_start=0.2, config=_config(select_on="cold"),
                   out=tmp_path / "cold")
    assert result.study == "lightgcn-synthetic-cold0.2"  # the warm study keeps its own name
    split = cold_start(Dataset.load(data), 0.2, 0, "papers")
    for number in (0, 1):
        record = load_record(tmp_path / "cold" / "trials" / str(number))
        assert record["dataset"]["transforms"] == {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"}
        assert record["dataset"]["fingerprint"] == split.fingerprint()
        assert record["train_config"]["select_on"] == "cold"
    record, dataset, model = load_run(result.best_run)
    assert np.array_equal(dataset.cold_items, split.cold_items)
    assert set(record["test"]) == {"all", "cold"} and record["test"] == result.test  # test: cold items only
    # the study is bound to its split: the same name without --cold-start is refused
    with pytest.raises(ConfigError, match=r"other settings \(transforms.cold_start: 0.2 in the study, 0.3 now\)"):
        _tune(data, tmp_path, trials=1, cold_start=0.3, config=_config(select_on="cold"),
              study_name="lightgcn-synthetic-cold0.2", out=tmp_path / "cold")
    # another protocol or seed draws another split: its own study by default, not a refusal
    # in the same database ("was run with other settings")
    hidden = _tune(data, tmp_path, trials=1, cold_start=0.2, cold_protocol="hidden", out=tmp_path / "hidden")
    reseeded = _tune(data, tmp_path, trials=1, cold_start=0.2, seed=1, out=tmp_path / "seed1")
    assert (hidden.study, reseeded.study) == ("lightgcn-synthetic-cold0.2-hidden", "lightgcn-synthetic-cold0.2-seed1")


def test_a_point_the_model_refuses_fails_its_trial_and_the_study_goes_on(data, tmp_path, monkeypatch):
    """MM-GEF's lambda_coeff drawn under its fixed structure aborted the whole call (no best,
    no trials table) once TPE drew it; the space check passes a space one of whose points
    trains. Now such a trial fails with the refusal in its line; the first trial of a study
    refused is still the call's error (the settings may be at fault)."""
    from graphrec.train import registry

    real, calls = registry.build_model, []

    def build_model(name, dataset, params):
        calls.append(name)
        if len(calls) == 2:
            raise ConfigError("this point is refused")
        return real(name, dataset, params)

    monkeypatch.setattr(registry, "build_model", build_model)
    lines: list[str] = []
    res = _tune(data, tmp_path, trials=3, log=lines.append)
    assert res.states == {"complete": 2, "fail": 1} and res.best_run is not None
    assert lines[1].startswith("trial 1: refused by the model (this point is refused)"), lines
    assert (res.out / "trials.csv").is_file()
    calls.clear()
    calls.append("first")  # the next call's first build is the second: refused before any trial completed
    with pytest.raises(ConfigError, match="this point is refused"):
        _tune(data, tmp_path, trials=1, study_name="other", out=tmp_path / "other")


def test_cold_seed_keeps_the_split_of_a_train_run_while_the_training_seed_varies(data, tmp_path):
    """--cold-seed C (as graphrec train's): the trials train on the split of seed C, with
    the training seed --seed; the study's default name says both; the best trial's
    record gives a train command that draws the same split."""
    from graphrec.data import Dataset, cold_start

    res = _tune(data, tmp_path, trials=1, cold_start=0.2, seed=1, cold_seed=0, out=tmp_path / "c")
    assert res.study == "lightgcn-synthetic-cold0.2-seed1-split0"
    record = load_record(tmp_path / "c" / "trials" / "0")
    assert record["dataset"]["transforms"]["cold_start_seed"] == 0 and record["train_config"]["seed"] == 1
    assert record["dataset"]["fingerprint"] == cold_start(Dataset.load(data), 0.2, 0, "papers").fingerprint()
    assert "--cold-seed 0" in record["command"] and "--seed 1" in record["command"]
    # the same split and training seed as without --cold-seed: the study of before, by name
    same = _tune(data, tmp_path, trials=1, cold_start=0.2, seed=1, cold_seed=1, out=tmp_path / "s1")
    assert same.study == "lightgcn-synthetic-cold0.2-seed1"
    with pytest.raises(ConfigError, match=r"--cold-seed must be an integer >= 0, got -1"):
        _tune(data, tmp_path, trials=1, cold_start=0.2, cold_seed=-1)
    warm = _tune(data, tmp_path, trials=1, cold_seed=3, out=tmp_path / "w")
    assert "--cold-seed 3 has no effect without --cold-start" in warm.notes


@pytest.mark.parametrize("model", ["cb", "lightgcn"])
def test_a_study_selecting_on_cold_items_ranks_trials_by_their_cold_validation(data, tmp_path, model):
    """--select-on cold: a trial's value is the validation metric of the cold items (hidden
    protocol: validation holds warm and cold items), not of all items."""
    space = {"k": [2, 5, 20]} if model == "cb" else {"lr": [1e-3, 2e-2], "reg_weight": 1e-4, "num_layers": 2}
    result = _tune(data, tmp_path, trials=3 if model == "cb" else 2, model=model, space=space, grid=True,
                   cold_start=0.3, cold_protocol="hidden", config=_config(select_on="cold"), pruning=False)
    values = {}
    for trial in _study(tmp_path, f"{model}-synthetic-cold0.3-hidden").trials:
        record = load_record(tmp_path / "out" / "trials" / str(trial.number))
        row = next(h for h in record["history"] if h["epoch"] == record["best_epoch"])
        assert trial.value == pytest.approx(row["valid_groups"]["cold"]["recall@20"])
        values[trial.number] = (row["valid_groups"]["cold"]["recall@20"], row["valid"]["recall@20"])
    best = max(values, key=lambda n: values[n][0])
    assert result.best_trial == best and result.best_value == pytest.approx(values[best][0])
    # not vacuous: the cold and all-items figures differ
    assert any(c != a for c, a in values.values())
    # trials.csv names the value as what it is
    header = (tmp_path / "out" / "trials.csv").read_text().splitlines()[0].split(",")
    assert "valid_recall@20_cold" in header and "valid_recall@20" not in header


def test_a_new_study_whose_trials_fail_on_the_settings_leaves_nothing(data, tmp_path, monkeypatch):
    """A ConfigError inside the first trials of a study this call created (a setting no
    check caught before) deletes the study and the folder: the corrected call starts
    afresh instead of being refused as 'other settings'."""
    import graphrec.train.registry as registry

    real = registry.build_model

    def refuse(name, dataset, params):
        raise ConfigError("this setting cannot be built")

    monkeypatch.setattr(registry, "build_model", refuse)
    with pytest.raises(ConfigError, match="this setting cannot be built"):
        _tune(data, tmp_path, trials=2)
    assert not (tmp_path / "out").exists()
    assert "lightgcn-synthetic" not in optuna.get_all_study_names(storage=f"sqlite:///{tmp_path / 'study.db'}")
    monkeypatch.setattr(registry, "build_model", real)
    assert _tune(data, tmp_path, trials=1).best_trial == 0  # with other settings, not refused
    # an existing study keeps its trials when a later call's trial fails: with a completed
    # trial (the same settings and data built), it is that point the model refuses
    monkeypatch.setattr(registry, "build_model", refuse)
    res = _tune(data, tmp_path, trials=1)
    assert res.states == {"complete": 1, "fail": 1} and res.best_trial == 0
    assert (tmp_path / "out" / "tune.json").is_file() and len(_study(tmp_path).trials) == 2


def test_a_storage_that_cannot_open_leaves_no_folder(data, tmp_path):
    with pytest.raises(ConfigError):
        _tune(data, tmp_path, trials=1, storage="postgresql://nobody@localhost:1/none")
    assert not (tmp_path / "out").exists()


def test_selecting_on_cold_items_without_a_cold_split_fails_before_any_trial(data, tmp_path):
    with pytest.raises(ConfigError, match="needs a cold-start split: add --cold-start"):
        _tune(data, tmp_path, trials=1, config=_config(select_on="cold"))
    with pytest.raises(ConfigError, match="--cold-start must be in"):
        _tune(data, tmp_path, trials=1, cold_start=1.5)
    assert not (tmp_path / "out" / "trials").exists()


def test_repeats_score_a_trial_by_the_mean_of_its_seeds_and_test_every_seed_of_the_best(data, tmp_path):
    import torch

    from graphrec.data import Dataset

    lines: list[str] = []
    result = _tune(data, tmp_path, trials=2, repeats=2, pruning=False, log=lines.append)
    study = _study(tmp_path)
    first = study.trials[0]  # the default point
    # each seed trains exactly as `graphrec train` with that seed; the trial's value is their mean
    single = [run_training(Dataset.load(data), "lightgcn", None, _config(seed=s))[0] for s in (0, 1)]
    runs = [load_record(tmp_path / "out" / "trials" / "0" / f"seed{s}") for s in (0, 1)]
    for s, run, alone in zip((0, 1), runs, single):
        assert run["train_config"]["seed"] == s and run["tune"]["seed"] == s and run["test"] == {}
        assert run["best_valid"]["recall@20"] == alone["best_valid"]["recall@20"] == run["tune"]["value"]
    alone = [r["best_valid"]["recall@20"] for r in single]
    assert first.value == pytest.approx((alone[0] + alone[1]) / 2)
    assert [r["seed"] for r in first.user_attrs["repeats"]] == [0, 1]
    assert lines[0].startswith(f"trial 0: valid recall@20 {first.value:.4f} (mean of seeds 0, 1: ")
    # the pruner saw the first seed's curve only
    curve = {r["epoch"]: r["valid"]["recall@20"] for r in runs[0]["history"] if "valid" in r}
    assert first.intermediate_values == curve

    # the best trial: every seed tested once, the best-validated seed kept as the run
    seeds = result.repeat_tests
    assert result.best_value == study.best_trial.value and result.best_trial == study.best_trial.number
    assert [r["seed"] for r in seeds] == [0, 1] and all(set(r["test"]) == {"all"} for r in seeds)
    kept = max(seeds, key=lambda r: r["value"])["seed"]
    record = load_record(result.best_run)
    assert record["tune"]["trial_run"].endswith(f"seed{kept}") and record["train_config"]["seed"] == kept
    assert record["test"] == result.test == next(r["test"] for r in seeds if r["seed"] == kept)
    mean = {k: (seeds[0]["test"]["all"][k] + seeds[1]["test"]["all"][k]) / 2 for k in seeds[0]["test"]["all"]}
    assert result.test_mean["all"] == pytest.approx(mean) and record["tune"]["test_mean"]["all"] == pytest.approx(mean)
    # two seeds' sample standard deviation: |a - b| / sqrt(2)
    sd = {k: abs(seeds[0]["test"]["all"][k] - seeds[1]["test"]["all"][k]) / 2 ** 0.5 for k in mean}
    assert result.test_sd["all"] == pytest.approx(sd) and record["tune"]["test_sd"]["all"] == pytest.approx(sd)
    assert json.loads((tmp_path / "out" / "tune.json").read_text())["summary"]["test_sd"]["all"] == pytest.approx(sd)
    trial_dir = tmp_path / "out" / "trials" / str(result.best_trial) / f"seed{kept}"
    saved, chosen = torch.load(result.best_run / "model.pt"), torch.load(trial_dir / "model.pt")
    assert saved.keys() == chosen.keys() and all(torch.equal(saved[k], chosen[k]) for k in saved)


def test_repeats_test_the_best_trial_again_only_when_another_becomes_the_best(data, tmp_path, evaluated, monkeypatch):
    first = _tune(data, tmp_path, trials=1, repeats=2, pruning=False)
    assert evaluated.count("test") == 2
    tune_module = importlib.import_module("graphrec.train.tune")
    monkeypatch.setattr(tune_module._Objective, "__call__", lambda self, trial: -1.0)  # never better
    again = _tune(data, tmp_path, trials=1, repeats=2, pruning=False)
    assert evaluated.count("test") == 2 and not again.test_evaluated
    assert again.repeat_tests == first.repeat_tests and again.test == first.test


def test_repeats_test_each_seed_once(data, tmp_path, evaluated):
    _tune(data, tmp_path, trials=1, repeats=3, pruning=False)
    assert evaluated.count("test") == 3 and evaluated[-3:] == ["test"] * 3
    assert evaluated.count("valid") == 3 * EPOCHS


def test_a_study_is_bound_to_its_repeats(data, tmp_path):
    _tune(data, tmp_path, trials=1)
    with pytest.raises(ConfigError, match=r"other settings \(repeats: None in the study, 2 now\)"):
        _tune(data, tmp_path, trials=1, repeats=2)
    with pytest.raises(ConfigError, match="--repeats must be at least 1, got 0"):
        _tune(data, tmp_path, trials=1, repeats=0, study_name="zero", out=tmp_path / "zero")
    assert not (tmp_path / "zero").exists()


GRID = {"lr": 1e-3, "num_layers": [1, 2], "reg_weight": [1e-4, 1e-3]}  # lr fixed: a 2 x 2 grid
POINTS = [(1, 1e-4), (1, 1e-3), (2, 1e-4), (2, 1e-3)]


def _points(trials) -> list[tuple]:
    return sorted((t.params["num_layers"], t.params["reg_weight"]) for t in trials)


def test_a_grid_study_trains_every_point_to_its_stop_unless_pruning_is_asked_for(data, tmp_path):
    """The median pruner would cut grid points short (from the second trial on, here);
    a grid is a table of every point, so --grid turns it off unless --pruning is passed."""
    prune = {"prune_startup": 1, "prune_warmup": 0}
    _tune(data, tmp_path / "a", trials=None, grid=True, space=GRID, **prune)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in _study(tmp_path / "a").trials)
    _tune(data, tmp_path / "b", trials=None, grid=True, space=GRID, pruning=True, **prune)
    states = [t.state for t in _study(tmp_path / "b").trials]
    assert len(states) == 4 and optuna.trial.TrialState.PRUNED in states


def test_a_grid_study_runs_every_point_once_over_several_calls(data, tmp_path):
    first = _tune(data, tmp_path, trials=3, grid=True, space=GRID, pruning=False)
    second = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False)  # the rest of the grid
    assert (first.trials_run, second.trials_run) == (3, 1)
    study = _study(tmp_path)
    assert _points(study.trials) == POINTS and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(t.params.get("lr", 1e-3) == 1e-3 for t in study.trials) and not study.trials[0].user_attrs.get("defaults")
    assert second.best_value == max(t.value for t in study.trials)
    third = _tune(data, tmp_path, trials=None, grid=True, space=GRID)
    assert third.trials_run == 0 and "every point of the grid (4) has run or is running: no trial added" in third.notes
    assert len(_study(tmp_path).trials) == 4
    with pytest.raises(ConfigError, match=r"other settings \(sampler: 'grid' in the study, None now\)"):
        _tune(data, tmp_path, trials=1, space=GRID)


def test_a_grid_with_repeats_selects_on_the_mean_over_the_whole_grid(data, tmp_path):
    result = _tune(data, tmp_path, trials=None, grid=True, repeats=2, space=GRID, pruning=False)
    study = _study(tmp_path)
    assert result.trials_run == 4 and _points(study.trials) == POINTS
    for t in study.trials:
        assert t.value == pytest.approx(sum(r["value"] for r in t.user_attrs["repeats"]) / 2)
    assert result.best_value == max(t.value for t in study.trials) and len(result.repeat_tests) == 2


def test_a_space_without_a_finite_grid_is_refused_before_any_work(data, tmp_path):
    with pytest.raises(ConfigError, match=r"--grid needs a finite set of values .*; lr is 0.0001 .. 0.01 \(log\)"):
        _tune(data, tmp_path, trials=None, grid=True)
    assert not (tmp_path / "out").exists() and not (tmp_path / "study.db").exists()


def test_the_grid_point_of_a_killed_call_runs_again(data, tmp_path):
    import os
    import socket

    _tune(data, tmp_path, trials=1, grid=True, space=GRID, pruning=False)
    points = {"num_layers": [1, 2], "reg_weight": [1e-4, 1e-3]}
    study = optuna.load_study(study_name="lightgcn-synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}",
                              sampler=optuna.samplers.GridSampler(points, seed=0))
    orphan = study.ask()  # what a killed call leaves: a RUNNING trial holding a grid point
    orphan.suggest_categorical("num_layers", [1, 2])
    orphan.suggest_categorical("reg_weight", [1e-4, 1e-3])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    assert int(dead.stdout) != os.getpid()
    lines: list[str] = []
    result = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False, log=lines.append)
    assert (f"trial {orphan.number}: marked failed (its process ended while it ran); its grid point will run again"
            in lines)
    trials = _study(tmp_path).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.trials_run == 3 and _points(complete) == POINTS  # every point once, the lost one included
    assert [t.state for t in trials if t.number == orphan.number] == [optuna.trial.TrialState.FAIL]
    assert any(t.user_attrs.get("rerun_of") == orphan.number for t in complete)


def test_a_grid_point_killed_before_its_trial_had_values_runs_again(data, tmp_path, monkeypatch):
    """A call killed between Optuna creating a trial (the grid sampler gives it a grid id)
    and the trial's first line leaves a RUNNING trial with no process and no values: the
    next call leaves it alone while it may still be starting, fails it once it is older
    than UNSTARTED_SECONDS and queues its grid point again (placed by its grid id); the queued
    rerun, killed the same way, is queued again from its own values."""
    tune_module = importlib.import_module("graphrec.train.tune")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    points = {"num_layers": [1, 2], "reg_weight": [1e-4, 1e-3]}

    def load():
        return optuna.load_study(study_name="lightgcn-synthetic", storage=url,
                                 sampler=optuna.samplers.GridSampler(points, seed=0))

    _tune(data, tmp_path, trials=1, grid=True, space=GRID, pruning=False)
    orphan = load().ask()  # a grid id, no values, no process recorded
    lines: list[str] = []
    _tune(data, tmp_path, trials=1, grid=True, space=GRID, pruning=False, log=lines.append)
    assert _study(tmp_path).trials[orphan.number].state == optuna.trial.TrialState.RUNNING  # young: left alone
    assert not any("marked failed" in line for line in lines)

    monkeypatch.setattr(tune_module, "UNSTARTED_SECONDS", 0)
    study = load()
    marked = tune_module._fail_dead_trials(optuna, study, optuna.storages.RDBStorage(url))
    assert marked == {orphan.number: "its process ended before it trained"}
    assert tune_module._queue_lost_points(optuna, study, set(points)) == [orphan.number]
    rerun = study.ask()  # the queued point starts and is killed the same way
    frozen = load().trials[rerun.number]
    lost = frozen.system_attrs["fixed_params"]
    assert frozen.user_attrs["rerun_of"] == orphan.number and set(lost) == set(points)
    assert tuple(sorted(lost.items())) not in {tuple(sorted(t.params.items())) for t in study.trials if t.params}

    lines = []
    result = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False, log=lines.append)
    assert (f"trial {rerun.number}: marked failed (its process ended before it trained); "
            "its grid point will run again") in lines, lines
    complete = [t for t in _study(tmp_path).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert _points(complete) == POINTS and result.trials_run == 2  # every point once, the lost one included
    again = [t for t in complete if t.user_attrs.get("rerun_of") == rerun.number]
    assert len(again) == 1 and again[0].params == lost


def test_a_grid_call_stops_when_other_processes_hold_the_points_left(data, tmp_path, monkeypatch):
    """Another process takes a point while this call runs: the call stops when no point is
    left to take, instead of running the other's point a second time."""
    import os
    import socket

    tune_module = importlib.import_module("graphrec.train.tune")
    real = tune_module._Objective.__call__
    taken = []

    def call(self, trial):
        if not taken:  # while this call runs its first trial, "another process" starts one
            other = optuna.load_study(study_name="lightgcn-synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}",
                                      sampler=optuna.samplers.GridSampler(
                                          {"num_layers": [1, 2], "reg_weight": [1e-4, 1e-3]}, seed=0))
            t = other.ask()
            t.set_user_attr("host", socket.gethostname())
            t.set_user_attr("pid", os.getpid())  # alive: left running
            taken.append(t.number)
        return real(self, trial)

    monkeypatch.setattr(tune_module._Objective, "__call__", call)
    result = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False)
    trials = _study(tmp_path).trials
    assert result.trials_run == 3 and len(trials) == 4  # its three points and the other's one, nothing twice
    assert sorted(t.system_attrs["grid_id"] for t in trials) == [0, 1, 2, 3]
    assert [t.state for t in trials if t.number == taken[0]] == [optuna.trial.TrialState.RUNNING]


def test_a_grid_runs_again_the_point_of_a_trial_that_failed_without_a_result(data, tmp_path):
    """Another machine's trial whose heartbeat stopped is failed by Optuna with no cause:
    the grid sampler counts its point as done, and the next call queues it again."""
    _tune(data, tmp_path, trials=1, grid=True, space=GRID, pruning=False)
    study = optuna.load_study(study_name="lightgcn-synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}",
                              sampler=optuna.samplers.GridSampler({"num_layers": [1, 2], "reg_weight": [1e-4, 1e-3]},
                                                                  seed=0))
    stale = study.ask()
    stale.suggest_categorical("num_layers", [1, 2])
    stale.suggest_categorical("reg_weight", [1e-4, 1e-3])
    study.tell(stale, state=optuna.trial.TrialState.FAIL)
    lines: list[str] = []
    result = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False, log=lines.append)
    assert (f"trial {stale.number}: failed without a result (not a diverging loss); its grid point will run again"
            in lines)
    complete = [t for t in _study(tmp_path).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result.trials_run == 3 and _points(complete) == POINTS


def test_a_grid_does_not_run_again_a_point_whose_loss_diverged(data, tmp_path, monkeypatch):
    real = fit_module.fit

    def fit(model, dataset, config, **kw):
        if model.num_layers == 2:
            raise FloatingPointError("training loss became nan at epoch 1: lower --lr")
        return real(model, dataset, config, **kw)

    monkeypatch.setattr(fit_module, "fit", fit)
    first = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False)
    failed = [t for t in _study(tmp_path).trials if t.state == optuna.trial.TrialState.FAIL]
    assert first.trials_run == 4 and sorted(t.params["num_layers"] for t in failed) == [2, 2]
    assert all("lower --lr" in t.user_attrs["diverged"] for t in failed)
    again = _tune(data, tmp_path, trials=None, grid=True, space=GRID, pruning=False)
    assert again.trials_run == 0 and len(_study(tmp_path).trials) == 4


def test_trials_csv_lists_every_trial_with_its_parameters_and_each_seeds_value(data, tmp_path):
    import csv

    _tune(data, tmp_path, trials=None, grid=True, repeats=2, space=GRID, pruning=False)
    with open(tmp_path / "out" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    study = _study(tmp_path)
    assert list(rows[0]) == ["trial", "state", "num_layers", "reg_weight", "valid_recall@20", "seed0", "seed1"]
    assert [int(r["trial"]) for r in rows] == [t.number for t in study.trials]
    for r, t in zip(rows, study.trials):
        assert r["state"] == "complete" and float(r["valid_recall@20"]) == t.value
        assert (int(r["num_layers"]), float(r["reg_weight"])) == (t.params["num_layers"], t.params["reg_weight"])
        seeds = {x["seed"]: x["value"] for x in t.user_attrs["repeats"]}
        assert (float(r["seed0"]), float(r["seed1"])) == (seeds[0], seeds[1])


def test_trials_csv_of_a_one_seed_study_has_no_seed_columns_and_no_value_for_pruned_trials(data, tmp_path):
    import csv

    space = {"lr": {"low": 1e-6, "high": 5e-2, "log": True}}
    _tune(data, tmp_path, trials=8, space=space, prune_startup=1, prune_warmup=0, config=_config(epochs=6))
    with open(tmp_path / "out" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["trial", "state", "lr", "num_layers", "reg_weight", "valid_recall@20"] and len(rows) == 8
    states = {t.number: t.state.name.lower() for t in _study(tmp_path).trials}
    assert {int(r["trial"]): r["state"] for r in rows} == states and "pruned" in states.values()
    assert all((r["valid_recall@20"] == "") == (r["state"] != "complete") for r in rows)


def test_a_study_created_anew_under_the_same_name_refuses_the_earlier_ones_folder(data, tmp_path):
    first = _tune(data, tmp_path, trials=2)
    study_id = _study(tmp_path).user_attrs["graphrec_study_id"]
    held = json.loads((tmp_path / "out" / "tune.json").read_text())
    best = load_record(first.best_run)
    assert held["study_id"] == study_id == best["tune"]["study_id"]
    assert all(load_record(tmp_path / "out" / "trials" / str(n))["tune"]["study_id"] == study_id for n in (0, 1))
    optuna.delete_study(study_name="lightgcn-synthetic", storage=f"sqlite:///{tmp_path / 'study.db'}")
    # the new study's trial 0 would pass for the old one: its best/ must not be kept
    with pytest.raises(ConfigError, match="--out .* holds the trials of an earlier study 'lightgcn-synthetic' .* "
                                          "since deleted and created anew: choose another --out, or remove"):
        _tune(data, tmp_path, trials=1, config=_config(epochs=EPOCHS + 1))
    assert "lightgcn-synthetic" not in optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}")
    assert load_record(first.best_run) == best  # the earlier study's folder untouched
    again = _tune(data, tmp_path, trials=1, config=_config(epochs=EPOCHS + 1), out=tmp_path / "again")
    assert load_record(again.best_run)["train_config"]["epochs"] == EPOCHS + 1 and again.test_evaluated


def test_a_folder_of_an_earlier_graphrec_without_a_study_id_is_taken_by_its_study(data, tmp_path, evaluated):
    _tune(data, tmp_path, trials=1)
    marker = tmp_path / "out" / "tune.json"
    marker.write_text(json.dumps({k: v for k, v in json.loads(marker.read_text()).items() if k != "study_id"}))
    _tune(data, tmp_path, trials=1)
    assert json.loads(marker.read_text())["study_id"] == _study(tmp_path).user_attrs["graphrec_study_id"]


def test_the_best_trial_is_read_under_the_lock_that_writes_the_best_run(data, tmp_path, monkeypatch):
    """Another process finishing a better trial between this call's last trial and its
    writing OUT/best (simulated when this call takes the lock for the best run) is the best."""
    import contextlib
    import shutil

    tune_module = importlib.import_module("graphrec.train.tune")
    real, entries = tune_module._lock, []

    @contextlib.contextmanager
    def lock(url, out):
        with real(url, out):
            entries.append(url)
            if len(entries) == 2:  # the best run's lock: "process B" completed trial 1, better than trial 0
                study = _study(tmp_path)
                mine = study.best_trial
                other = out / "trials" / "1"
                shutil.copytree(out / "trials" / str(mine.number), other)
                record = json.loads((other / "record.json").read_text())
                record["tune"].update(trial=1, value=mine.value + 1)
                (other / "record.json").write_text(json.dumps(record))
                study.add_trial(optuna.trial.create_trial(
                    params=mine.params, distributions=mine.distributions, value=mine.value + 1,
                    user_attrs={"run_dir": str(other.absolute())}))
            yield

    monkeypatch.setattr(tune_module, "_lock", lock)
    result = _tune(data, tmp_path, trials=1)
    assert len(entries) == 2 and result.best_trial == 1
    assert load_record(result.best_run)["tune"]["trial"] == 1


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b"])
def test_a_study_name_that_would_leave_the_default_folder_is_refused(data, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        _tune(data, tmp_path, trials=1, study_name=name, out=None)
    assert str(e.value).startswith(f"study name {name!r} cannot name the default output folder runs/tune-STUDY")
    assert "choose a --study without path separators, or give --out" in str(e.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "study.db").exists()
    _tune(data, tmp_path, trials=1, study_name=name)  # with --out the name is only the database's


def test_a_call_stopped_by_its_timeout_says_so(data, tmp_path, monkeypatch):
    import time

    tune_module = importlib.import_module("graphrec.train.tune")

    def slow(self, trial):
        self.calls += 1
        time.sleep(0.3)
        raise optuna.TrialPruned()

    monkeypatch.setattr(tune_module._Objective, "__call__", slow)
    result = _tune(data, tmp_path, trials=20, timeout=0.5)
    assert 1 <= result.trials_run < 20
    assert (f"--timeout reached after {result.trials_run} of 20 trials; run the same command again for more"
            in result.notes)
    assert not [n for n in _tune(data, tmp_path, trials=1, timeout=60).notes if "--timeout" in n]


AGAIN = "run the same command again to continue the study"


def _trial_record(tmp_path, number):
    folder = tmp_path / "out" / "trials" / str(number)
    return json.loads((folder / "record.json").read_text()), (folder / "model.pt").exists()


@pytest.mark.parametrize("where", ["heartbeat", "tell"])
def test_a_ctrl_c_while_optuna_stores_a_trials_result_fails_the_trial_and_its_record(data, tmp_path, monkeypatch,
                                                                                      where):
    """The trial wrote its record (complete) and weights; the Ctrl-C lands while Optuna
    stores the result, which it then never does: the trial is marked failed at once (the
    line says so truly) and its record says failed too, without weights, as trials.csv."""
    import csv

    import contextlib

    optimize = importlib.import_module("optuna.study._optimize")
    real, real_heartbeat = optimize._tell_with_warning, optimize.get_heartbeat_thread

    @contextlib.contextmanager
    def heartbeat(trial_id, storage):  # the objective returned; Optuna stops its heartbeat, then stores
        with real_heartbeat(trial_id, storage):
            yield
        if where == "heartbeat" and storage.get_trial(trial_id).number == 1:
            raise KeyboardInterrupt

    def tell(*, study, trial, **kw):  # Optuna 5 then fails on an unset variable in its finally
        if where == "tell" and trial.number == 1:
            raise KeyboardInterrupt
        return real(study=study, trial=trial, **kw)

    monkeypatch.setattr(optimize, "_tell_with_warning", tell)
    monkeypatch.setattr(optimize, "get_heartbeat_thread", heartbeat)
    with pytest.raises(KeyboardInterrupt) as e:
        _tune(data, tmp_path, trials=3)
    assert str(e.value) == f"interrupted: trial 1 is marked failed; {AGAIN}"
    trial = _study(tmp_path).trials[1]
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["failure"] == "interrupted"
    record, weights = _trial_record(tmp_path, 1)
    assert (record["tune"]["state"], record["tune"]["value"], weights) == ("failed", None, False)
    assert "interrupted" in record["tune"]["error"]
    monkeypatch.setattr(optimize, "_tell_with_warning", real)
    monkeypatch.setattr(optimize, "get_heartbeat_thread", real_heartbeat)
    lines: list[str] = []
    _tune(data, tmp_path, trials=1, log=lines.append)
    assert not any("marked failed" in line for line in lines)  # nothing left running
    with open(tmp_path / "out" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["complete", "fail", "complete"]
    assert _trial_record(tmp_path, 1)[0]["tune"]["state"] == "failed"


def test_a_ctrl_c_in_the_objective_after_the_record_was_written_fails_the_record_too(data, tmp_path, monkeypatch):
    tune_module = importlib.import_module("graphrec.train.tune")
    real = tune_module._save_trial

    def save(run_dir, record, weights):
        real(run_dir, record, weights)
        if record["tune"]["state"] == "complete":
            raise KeyboardInterrupt  # Optuna marks the trial failed

    monkeypatch.setattr(tune_module, "_save_trial", save)
    with pytest.raises(KeyboardInterrupt) as e:
        _tune(data, tmp_path, trials=2)
    assert str(e.value) == f"interrupted: trial 0 is marked failed; {AGAIN}"
    assert _study(tmp_path).trials[0].state == optuna.trial.TrialState.FAIL
    record, weights = _trial_record(tmp_path, 0)
    assert (record["tune"]["state"], record["tune"]["value"], weights) == ("failed", None, False)


def test_a_ctrl_c_after_optuna_stored_the_result_keeps_the_trial_and_says_so(data, tmp_path, monkeypatch):
    tune_module = importlib.import_module("graphrec.train.tune")

    def line(*args, **kwargs):  # the trial's line comes after Optuna stored it
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_module, "_trial_line", line)
    with pytest.raises(KeyboardInterrupt) as e:
        _tune(data, tmp_path, trials=2)
    assert str(e.value) == f"interrupted after trial 0 completed (its result is kept); {AGAIN}"
    assert _study(tmp_path).trials[0].state == optuna.trial.TrialState.COMPLETE
    record, weights = _trial_record(tmp_path, 0)
    assert record["tune"]["state"] == "complete" and weights


def test_a_killed_trial_that_wrote_its_record_as_complete_is_failed_in_its_record_too(data, tmp_path):
    """Killed between writing its record and Optuna storing the result: the next call
    marks it failed, and its record (and weights) with it."""
    import shutil
    import socket

    _tune(data, tmp_path, trials=1)
    study = _study(tmp_path)
    orphan = study.ask()
    run_dir = tmp_path / "out" / "trials" / str(orphan.number)
    shutil.copytree(tmp_path / "out" / "trials" / "0", run_dir)  # a record that says complete, and weights
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for key, value in (("host", socket.gethostname()), ("pid", int(dead.stdout)), ("run_dir", str(run_dir))):
        orphan.set_user_attr(key, value)
    lines: list[str] = []
    _tune(data, tmp_path, trials=1, log=lines.append)
    assert lines[0] == f"trial {orphan.number}: marked failed (its process ended while it ran)"
    record, weights = _trial_record(tmp_path, orphan.number)
    assert (record["tune"]["state"], record["tune"]["value"], weights) == ("failed", None, False)


def test_a_trial_whose_loss_diverged_says_why_in_its_line(data, tmp_path, monkeypatch):
    def fit(model, dataset, config, **kw):
        raise FloatingPointError("training loss became nan at epoch 1: lower --lr")

    monkeypatch.setattr(fit_module, "fit", fit)
    lines: list[str] = []
    _tune(data, tmp_path, trials=1, log=lines.append)
    assert lines[0].startswith("trial 0: failed (training loss became nan at epoch 1: lower --lr); "), lines


def test_a_stepped_real_is_recorded_as_the_model_received_it(data, tmp_path):
    """Optuna stores a stepped real as low + i * step (0.1 + 0.2 = 0.30000000000000004);
    the model gets 0.3, and so say the trial's record and trials.csv."""
    import csv

    space = {"reg_weight": {"low": 0.1, "high": 0.9, "step": 0.2}}
    _tune(data, tmp_path, trials=1, space=space)
    _study(tmp_path).enqueue_trial({"reg_weight": 0.1 + 0.2})
    _tune(data, tmp_path, trials=1, space=space)
    assert _study(tmp_path).trials[1].params["reg_weight"] == 0.30000000000000004
    record, _ = _trial_record(tmp_path, 1)
    assert record["tune"]["params"]["reg_weight"] == 0.3 == record["model_params"]["reg_weight"]
    with open(tmp_path / "out" / "trials.csv", newline="") as f:
        assert list(csv.DictReader(f))[1]["reg_weight"] == "0.3"


def test_a_ctrl_c_says_truly_what_it_could_not_settle(tmp_path):
    tune_module = importlib.import_module("graphrec.train.tune")

    class Unanswering:
        def get_trial(self, trial_id):
            raise RuntimeError("database is locked")

    class Trial:
        number, _trial_id = 4, 5

    said = tune_module._settle_interrupted(optuna, Unanswering(), Trial(), tmp_path)
    assert said == (f"interrupted: trial 4 could not be marked failed now (the storage did not answer); "
                    f"the next call marks it failed: {AGAIN}")
    assert tune_module._settle_interrupted(optuna, Unanswering(), None, tmp_path) == (
        f"interrupted before a trial started; {AGAIN}")
