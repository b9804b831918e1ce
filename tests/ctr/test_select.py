"""The validation metric CTR training selects its best epoch (and stops early) on:
``CTRConfig.valid_metric`` / ``graphrec train MODEL --task ctr --metric auc|gauc|logloss``
(logloss minimised, AUC and GAUC maximised), recorded, kept by ``graphrec evaluate`` and
compared on ``--resume``; the default (AUC) selects as before. Also what ``run_ctr``
records of the model's modalities and of the data's folder when it is given neither as
the command line gives them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import graphrec.train.ctr as ctr_train
from graphrec.cli import app
from graphrec.data.ctr import CTRData, load_ctr_source
from graphrec.errors import ConfigError
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.testing import one_error_line
from graphrec.train.ctr import (
    METRIC_DIRECTIONS, CTRConfig, evaluate_ctr, improves, recorded_data_path, run_ctr, worst_score,
)
from graphrec.train.ctr_eval import recorded_config
from graphrec.train.record import load_record
from graphrec.train.registry import registered_models
from graphrec.train.state import RunInterrupted

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()

#: real-data runs whose validation metrics peak at different epochs (amazon-scientific,
#: max history 20, sample seed 0): FM's logloss falls for epochs after its AUC peaked, and
#: LR's GAUC peaks after its AUC, both with the user fields (--user-fields, the models as
#: they were before the papers' item-only default; its LR selects the same epoch by GAUC as by AUC)
REAL_RUNS = {
    "logloss": ("fm", {"dim": 8, "user_fields": True}, dict(epochs=8, patience=2, lr=0.003, batch_size=256)),
    "gauc": ("lr", {"user_fields": True}, dict(epochs=8, patience=8, lr=0.1, batch_size=1024)),
}
#: a small synthetic run (the resume tests')
SMALL = dict(epochs=4, batch_size=32, lr=1e-2, patience=2, seed=3, progress=False)
DIN = {"id_dim": 8, "modality_dim": 8, "hidden": (16,)}


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def sci(shared_data) -> CTRData:
    return load_ctr_source(shared_data / "amazon-scientific", max_history=20, seed=0)


@pytest.fixture(scope="module")
def data() -> CTRData:
    return contract_ctr_data()


@pytest.fixture(scope="module")
def samples(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr-select") / "samples"
    data.save(path)
    return path


def _best(history, metric):
    """The history row a selection on validation ``metric`` must pick: the first of the
    lowest logloss, or of the highest AUC / GAUC."""
    pick = min if METRIC_DIRECTIONS[metric] == "minimize" else max
    return pick(history, key=lambda row: row["valid"][metric])


def _assert_selected_on(record, metric, patience, epochs):
    """The record's best epoch and validation are the history's best by ``metric``, and
    training stopped exactly ``patience`` epochs without a better ``metric`` after it."""
    history = record["history"]
    best = _best(history, metric)
    assert record["best_epoch"] == best["epoch"]
    assert record["best_valid"][metric] == best["valid"][metric]
    assert len(history) == min(epochs, best["epoch"] + patience)
    assert record["stopped_early"] == (len(history) < epochs)


def _numbers(record):
    """What two runs of the same training share (all but the seconds)."""
    history = [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in record["history"]]
    return record["best_epoch"], record["best_valid"], record["stopped_early"], record["test"], history


# ---------------------------------------------------------------------- the option
def test_the_metric_must_be_auc_gauc_or_logloss():
    assert CTRConfig().valid_metric == "auc"  # every earlier run's selection
    for metric in ("auc", "gauc", "logloss"):
        assert CTRConfig.from_dict(CTRConfig(valid_metric=metric).to_dict()).valid_metric == metric
    for bad in ("ndcg@20", "AUC", None):
        with pytest.raises(ConfigError) as info:
            CTRConfig(valid_metric=bad)
        assert "\n" not in str(info.value) and "is not one of auc, gauc, logloss" in str(info.value)


def test_logloss_is_minimised_and_the_aucs_maximised():
    assert improves("logloss", 0.5, 0.6) and not improves("logloss", 0.6, 0.5)
    assert improves("auc", 0.6, 0.5) and improves("gauc", 0.6, 0.5) and not improves("auc", 0.5, 0.6)
    for metric in METRIC_DIRECTIONS:
        assert improves(metric, 0.5, worst_score(metric))  # the first epoch is the best so far
        assert not improves(metric, float("nan"), worst_score(metric))  # an undefined value never is
        assert not improves(metric, 0.5, 0.5)  # a tie keeps the earlier epoch


# ---------------------------------------------------------------------- real data
@pytest.mark.parametrize("metric", sorted(REAL_RUNS))
def test_the_run_selects_and_stops_on_the_chosen_metric_on_amazon_scientific(sci, metric):
    model_name, params, options = REAL_RUNS[metric]
    lines: list[str] = []
    record, model = run_ctr(sci, model_name, params, CTRConfig(**options, valid_metric=metric, progress=False),
                            log=lines.append)
    _assert_selected_on(record, metric, options["patience"], options["epochs"])
    # an AUC selection would have picked another epoch: the choice changed the run
    assert record["best_epoch"] != _best(record["history"], "auc")["epoch"]
    # the best state is restored
    assert evaluate_ctr(model, sci, "valid")[metric] == pytest.approx(record["best_valid"][metric], abs=1e-6)
    assert record["train_config"]["valid_metric"] == metric
    assert len(lines) == len(record["history"]) and all(f" valid {metric} " in line for line in lines)
    best = record["best_valid"][metric]
    assert lines[-1].split("  ")[3] == f"best {best:.4f} (epoch {record['best_epoch']})"


def test_the_default_still_selects_and_stops_on_validation_auc(sci):
    model_name, params, options = REAL_RUNS["logloss"]
    record, _ = run_ctr(sci, model_name, params, CTRConfig(**options, progress=False))
    _assert_selected_on(record, "auc", options["patience"], options["epochs"])
    assert record["train_config"]["valid_metric"] == "auc"
    named, _ = run_ctr(sci, model_name, params, CTRConfig(**options, valid_metric="auc", progress=False))
    assert _numbers(named) == _numbers(record)


# ---------------------------------------------------------------------- command line
def test_every_ctr_command_offers_metric():
    for entry in registered_models("ctr"):
        res = run("train", entry.name, "--help")
        assert res.exit_code == 0 and "--metric" in res.output and "logloss" in res.output, entry.name


def test_a_bad_metric_is_one_line_naming_the_option(samples, tmp_path):
    res = run("train", "fm", "--data", samples, "--metric", "ndcg@20", "--epochs", "1", "--device", "cpu", "--quiet",
              "--out", tmp_path / "run")
    line = one_error_line(res)
    assert line.startswith("error: --metric 'ndcg@20' is not one of auc, gauc, logloss"), line
    assert not (tmp_path / "run").exists()


def test_metric_logloss_is_recorded_and_evaluate_keeps_it(samples, tmp_path):
    out = tmp_path / "run"
    res = run("train", "din", "--data", samples, "--metric", "logloss", "--epochs", "4", "--patience", "4",
              "--batch-size", "32", "--lr", "0.01", "--device", "cpu", "--threads", "1", "--quiet", "--out", out)
    assert res.exit_code == 0, res.output
    assert "by validation logloss" in res.output
    record = load_record(out)
    assert record["train_config"]["valid_metric"] == "logloss" and recorded_config(record).valid_metric == "logloss"
    _assert_selected_on(record, "logloss", 4, 4)
    res = run("evaluate", out, "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"best epoch {record['best_epoch']} of 4 by validation logloss" in res.output


# ---------------------------------------------------------------------- resume
def _interrupt_in_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C during the validation of ``epoch``."""
    real, seen = ctr_train.evaluate_ctr, []

    def evaluate(model, data, split, *args, **kw):
        seen.append(split)
        if seen.count("valid") == epoch:
            raise KeyboardInterrupt
        return real(model, data, split, *args, **kw)

    monkeypatch.setattr(ctr_train, "evaluate_ctr", evaluate)


def test_a_resumed_logloss_run_gives_the_uninterrupted_numbers_and_keeps_its_metric(data, tmp_path, monkeypatch):
    config = CTRConfig(**SMALL, valid_metric="logloss")
    full, _ = run_ctr(data, "din", DIN, config)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_epoch(m, 3)
        with pytest.raises(RunInterrupted):
            run_ctr(data, "din", DIN, config, out=out)
    with pytest.raises(ConfigError, match="--resume: valid_metric is 'auc' here but 'logloss' in the interrupted run"):
        run_ctr(data, "din", DIN, CTRConfig(**SMALL), out=out, resume=True)
    resumed, _ = run_ctr(data, "din", DIN, config, out=out, resume=True)
    assert _numbers(resumed) == _numbers(full)
    assert resumed["train_config"]["valid_metric"] == "logloss"


def test_resume_with_another_metric_is_one_line(samples, data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["train", "din", "--data", samples, "--epochs", "3", "--batch-size", "32", "--device", "cpu", "--threads",
            "1", "--quiet", "--out", out]
    with monkeypatch.context() as m:
        _interrupt_in_epoch(m, 2)
        assert run(*args, "--metric", "gauc").exit_code == 130
    line = one_error_line(run(*args, "--metric", "logloss", "--resume"))
    assert "--resume: valid_metric is 'logloss' here but 'gauc' in the interrupted run" in line, line
    # a run interrupted before the option existed selected on AUC: it resumes so, and only so
    record = json.loads((out / "record.json").read_text())
    del record["train_config"]["valid_metric"]
    (out / "record.json").write_text(json.dumps(record))
    line = one_error_line(run(*args, "--metric", "gauc", "--resume"))
    assert "--resume: valid_metric is 'gauc' here but 'auc' in the interrupted run" in line, line


# ---------------------------------------------------------------------- what run_ctr records
def test_run_ctr_records_modalities_as_the_command_line_does(data, samples, tmp_path):
    params = dict(DIN, modalities="image, text")
    record, model = run_ctr(data, "din", params, CTRConfig(**dict(SMALL, epochs=1)))
    assert record["model_params"]["modalities"] == ["image", "text"]
    as_list, _ = run_ctr(data, "din", dict(DIN, modalities=("image", "text")), CTRConfig(**dict(SMALL, epochs=1)))
    assert as_list["model_params"] == record["model_params"] and as_list["test"] == record["test"]
    res = run("train", "din", "--data", samples, "--modalities", "image,text", "--dim", "8", "--modality-dim", "8",
              "--epochs", "1", "--device", "cpu", "--quiet", "--out", tmp_path / "cli")
    assert res.exit_code == 0, res.output
    assert load_record(tmp_path / "cli")["model_params"]["modalities"] == ["image", "text"]
    with pytest.raises(ConfigError, match="lists 'image' twice"):
        run_ctr(data, "din", dict(DIN, modalities="image,image"), CTRConfig(**dict(SMALL, epochs=1)))


def test_run_ctr_records_the_folder_the_samples_came_from(sci, shared_data, data, samples, tmp_path):
    assert recorded_data_path(data) is None  # built in memory: nothing to record
    assert recorded_data_path(CTRData.load(samples)) == str(samples.resolve())
    assert recorded_data_path(data, tmp_path / "given") == str(tmp_path / "given")
    out = tmp_path / "run"
    record, _ = run_ctr(sci, "lr", None, CTRConfig(epochs=1, batch_size=1024, progress=False), out=out)
    assert record["dataset"]["path"] == str((shared_data / "amazon-scientific").resolve())
    res = run("evaluate", out, "--device", "cpu", "--quiet")  # no --data: the recorded source folder
    assert res.exit_code == 0, res.output
    assert f"{record['test']['auc']:.4f}" in res.output


def test_a_metric_the_validation_samples_leave_undefined_is_one_line_not_a_run_of_nothing(data):
    """Every validation user with one class only (overall both): GAUC is undefined every
    epoch (the labels decide it), so selecting on it would keep epoch 0 and test the last
    weights: refused after the first validation, naming logloss; AUC and logloss select."""
    import dataclasses

    import numpy as np

    from graphrec.errors import DataError

    valid = data.samples["valid"]
    keep = np.flatnonzero((valid.labels == 1) == (valid.users % 2 == 0))  # even users clicks, odd non-clicks
    one_class = dataclasses.replace(data, samples=dict(data.samples, valid=valid.subset(keep)))
    assert set(one_class.samples["valid"].labels.tolist()) == {0.0, 1.0}
    with pytest.raises(DataError, match=r"validation gauc is undefined on these samples \(no validation user has both "
                                        r"a click and a non-click\), so no epoch could be selected on it: train with "
                                        "--metric logloss"):
        run_ctr(one_class, "lr", {}, CTRConfig(epochs=2, progress=False, valid_metric="gauc"))
    for metric in ("auc", "logloss"):
        record, _ = run_ctr(one_class, "lr", {}, CTRConfig(epochs=2, progress=False, valid_metric=metric))
        assert record["best_epoch"] >= 1
    positives = dataclasses.replace(data, samples=dict(data.samples, valid=valid.subset(np.flatnonzero(valid.labels == 1))))
    with pytest.raises(DataError, match="validation auc is undefined on these samples .the validation samples hold one "
                                        "class only."):
        run_ctr(positives, "lr", {}, CTRConfig(epochs=2, progress=False))
