"""`graphrec tune`: two processes sharing one SQLite study, a call killed midway and
continued, Ctrl-C, the best run accepted by evaluate and recommend, one-line errors."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app

optuna = pytest.importorskip("optuna", reason="graphrec tune needs Optuna (the tune extra: pip install 'graphrec[tune]')")

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(saved_catalogue) -> Path:
    return saved_catalogue("tune-cli", "shop", n_users=100, n_items=60, n_clusters=4, seed=5)


def _args(data: Path, tmp_path: Path, trials: int, epochs: int = 3, *extra: object) -> list[str]:
    return [str(a) for a in ("tune", "lightgcn", "--data", data, "--trials", trials, "--storage",
                             f"sqlite:///{tmp_path / 'study.db'}", "--out", tmp_path / "out", "--epochs", epochs,
                             "--batch-size", 512, "--device", "cpu", "--threads", 1, *extra)]


def _spawn(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "graphrec", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _trials(tmp_path: Path, timeout: float = 60):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", skip_table_creation=True,
                                         engine_kwargs={"connect_args": {"timeout": timeout}})  # waits for writers
    return optuna.load_study(study_name="lightgcn-synthetic", storage=storage).trials


def _running(trials) -> list:
    return [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_two_processes_share_one_study(data, tmp_path):
    procs = [_spawn(_args(data, tmp_path, 3)) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    trials = _trials(tmp_path)
    assert sorted(t.number for t in trials) == list(range(6))
    assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    pids = sorted(t.user_attrs["pid"] for t in trials)
    assert len(set(pids)) == 2 and pids.count(pids[0]) == 3  # three trials each
    for t in trials:
        assert (tmp_path / "out" / "trials" / str(t.number) / "record.json").is_file()
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6  # no configuration drawn twice
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    import json

    record = json.loads((tmp_path / "out" / "best" / "record.json").read_text())
    assert record["tune"]["trial"] == best.number


def test_a_killed_call_leaves_a_consistent_study_that_the_next_call_continues(data, tmp_path):
    proc = _spawn(_args(data, tmp_path, 200, 40))
    deadline = time.monotonic() + 480
    seen = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if not (tmp_path / "study.db").exists():
                continue
            try:
                trials = _trials(tmp_path)
            except Exception:  # noqa: BLE001 - the study is being created: look again
                continue
            running = _running(trials)
            if not ([t for t in trials if t.state.is_finished()] and running and running[0].intermediate_values):
                continue
            # Freeze the process and look again: a trial can finish between the look above and
            # the kill, leaving none running. Stopped, the process writes nothing more, so what
            # is read now is what the kill leaves (a commit caught midway: read again later).
            proc.send_signal(signal.SIGSTOP)
            try:
                seen = _running(_trials(tmp_path, timeout=5))
            except Exception:  # noqa: BLE001 - stopped inside a commit: let it finish
                seen = None
            if seen:
                break
            proc.send_signal(signal.SIGCONT)
        else:
            pytest.fail(f"the tune never had a finished and a running trial: {proc.communicate()}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    with sqlite3.connect(tmp_path / "study.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = _trials(tmp_path)
    killed = _running(before)
    assert [t.number for t in killed] == [seen[0].number]  # the trial that ran when the kill landed

    res = run(*_args(data, tmp_path, 1, 40))
    assert res.exit_code == 0, res.output
    assert f"trial {killed[0].number}: marked failed (its process ended while it ran)" in res.output
    after = _trials(tmp_path)
    assert len(after) == len(before) + 1 and after[-1].number == max(t.number for t in before) + 1
    assert after[killed[0].number].state == optuna.trial.TrialState.FAIL
    assert after[-1].state.is_finished()
    assert not _running(after)


def test_ctrl_c_marks_the_trial_failed_and_the_same_command_continues(data, tmp_path, monkeypatch):
    tune_module = importlib.import_module("graphrec.train.tune")
    real = tune_module._Objective.__call__
    calls = []

    def interrupted(self, trial):
        calls.append(trial.number)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, trial)

    monkeypatch.setattr(tune_module._Objective, "__call__", interrupted)
    res = run(*_args(data, tmp_path, 5))
    assert res.exit_code == 130
    assert res.output.strip().splitlines()[-1] == (
        "error: interrupted: trial 1 is marked failed; run the same command again to continue the study")
    assert [t.state for t in _trials(tmp_path)] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    monkeypatch.setattr(tune_module._Objective, "__call__", real)
    res = run(*_args(data, tmp_path, 1))
    assert res.exit_code == 0, res.output
    assert [t.number for t in _trials(tmp_path)] == [0, 1, 2]


def test_the_best_run_is_a_run_directory_evaluate_and_recommend_accept(data, tmp_path):
    res = run(*_args(data, tmp_path, 2))
    assert res.exit_code == 0, res.output
    assert "test of the best trial (evaluated once now)" in res.output
    best = tmp_path / "out" / "best"
    res = run("evaluate", best, "--device", "cpu")
    assert res.exit_code == 0, res.output
    res = run("recommend", best, "--all", "--k", 3, "--out", tmp_path / "recs.csv", "--quiet")
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "recs.csv").read_text().splitlines()) == 1 + 3 * 100
    res = run(*_args(data, tmp_path, 1))  # the best did not change, or was tested once now
    assert res.exit_code == 0 and "test of the best trial" in res.output


def test_the_records_name_the_commands_and_a_trials_train_command_reproduces_it_exactly(data, tmp_path, monkeypatch):
    """tune.json records each call's command line and working directory; every trial
    record (and the best run) a `graphrec train` line that, run from another folder,
    trains the trial again to the last digit."""
    import json
    import shlex

    from graphrec.train.record import load_record

    monkeypatch.chdir(tmp_path)
    args = ["tune", "lightgcn", "--data", os.path.relpath(data, tmp_path), "--trials", "2", "--storage",
            "sqlite:///study.db", "--out", "out", "--epochs", "3", "--batch-size", "512", "--device", "cpu",
            "--threads", "1", "--no-pruning"]
    assert run(*args).exit_code == 0
    assert run(*args[:5], "1", *args[6:]).exit_code == 0
    calls = json.loads((tmp_path / "out" / "tune.json").read_text())["calls"]
    assert [(c["command"], c["cwd"]) for c in calls] == [(shlex.join(["graphrec", *args]), str(tmp_path)),
                                                         (shlex.join(["graphrec", *args[:5], "1", *args[6:]]),
                                                          str(tmp_path))]
    trial = load_record(tmp_path / "out" / "trials" / "1")  # a TPE trial: lr, reg_weight and layers searched
    command = shlex.split(trial["command"])
    assert command[:5] == ["graphrec", "train", "lightgcn", "--data", str(data.resolve())]
    assert {"--lr", "--epochs", "--batch-size", "--threads"} <= set(command), command
    best = load_record(tmp_path / "out" / "best")
    assert best["command"] == load_record(tmp_path / "out" / "trials" / str(best["tune"]["trial"]))["command"]

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = run(*command[1:], "--out", "again", "--quiet")
    assert res.exit_code == 0, res.output
    again = load_record(tmp_path / "elsewhere" / "again")
    assert again["model_params"] == trial["model_params"]
    assert [(h["loss"], h.get("valid")) for h in again["history"]] == [(h["loss"], h.get("valid"))
                                                                         for h in trial["history"]]
    assert again["best_valid"] == trial["best_valid"] and again["best_epoch"] == trial["best_epoch"]


def test_repeats_select_on_the_mean_of_seeds_and_report_each_seed_of_the_best(data, tmp_path):
    res = run(*_args(data, tmp_path, 2, 3, "--repeats", 2, "--no-pruning"))
    assert res.exit_code == 0, res.output
    assert "trial 0: valid recall@20 " in res.output and "(mean of seeds 0, 1: " in res.output
    best = [line for line in res.output.splitlines() if line.startswith("best: trial")]
    assert len(best) == 1 and "(mean of seeds 0, 1);" in best[0], res.output
    assert "test of the best trial, mean and standard deviation over its 2 seeds (evaluated once now):" in res.output
    tune = json.loads((tmp_path / "out" / "best" / "record.json").read_text())["tune"]
    header = next(line for line in res.output.splitlines() if line.startswith("metric "))
    assert header.split() == ["metric", "all", "all", "s.d."], res.output
    row = next(line for line in res.output.splitlines() if line.startswith("recall@20 "))
    assert row.split()[1:] == [f"{tune['test_mean']['all']['recall@20']:.4f}", f"{tune['test_sd']['all']['recall@20']:.4f}"]
    per_seed = [line for line in res.output.splitlines() if line.startswith("test recall@20 per seed: ")]
    assert len(per_seed) == 1 and "the best run holds seed " in per_seed[0], res.output
    res = run("evaluate", tmp_path / "out" / "best", "--device", "cpu")  # the kept seed is a normal run
    assert res.exit_code == 0, res.output


def test_report_seeds_test_the_best_configuration_on_seeds_no_trial_used(data, tmp_path, monkeypatch):
    """--report-seeds N: the best configuration trains again on the N seeds after the
    trials' (here 2 and 3 after --repeats 2's 0 and 1), tested, kept in OUT/report; a later
    call with the same best reads them instead of training them again."""
    import graphrec.train.run as run_module

    (tmp_path / "grid.yaml").write_text("lr: 1.0e-3\nnum_layers: [1, 2]\nreg_weight: 1.0e-4\n")
    args = _args(data, tmp_path, 2, 3, "--repeats", 2, "--grid", "--space", tmp_path / "grid.yaml")
    res = run(*args, "--report-seeds", 2)
    assert res.exit_code == 0, res.output
    best = json.loads((tmp_path / "out" / "best" / "record.json").read_text())
    tests = []
    for seed in (2, 3):
        record = json.loads((tmp_path / "out" / "report" / f"seed{seed}" / "record.json").read_text())
        assert record["train_config"] == dict(best["train_config"], seed=seed)
        assert record["model_params"] == best["model_params"] and record["status"] == "finished"
        tests.append(record["test"]["all"]["recall@20"])
    assert "test of the best configuration on 2 fresh seeds (2, 3: none chose anything), mean and standard deviation:" \
        in res.output
    row = [line for line in res.output.splitlines() if line.startswith("recall@20 ")][-1]
    mean, sd = (tests[0] + tests[1]) / 2, abs(tests[0] - tests[1]) / 2 ** 0.5
    assert row.split()[1:] == [f"{mean:.4f}", f"{sd:.4f}"]
    report = json.loads((tmp_path / "out" / "tune.json").read_text())["summary"]["report"]
    assert [r["seed"] for r in report["seeds"]] == [2, 3] and report["test_mean"]["all"]["recall@20"] == \
        pytest.approx(mean)
    trained = []
    real = run_module.run_training
    monkeypatch.setattr(run_module, "run_training", lambda *a, **k: trained.append(k["out"]) or real(*a, **k))
    res = run(*args, "--report-seeds", 3)  # the grid has run: no trial, the same best
    assert res.exit_code == 0 and "0 run now" in res.output, res.output
    assert [p.name for p in trained] == ["seed4"]  # seeds 2 and 3 were read, not trained again
    _one_line_error(run(*_args(data, tmp_path, 1), "--report-seeds", -1), "--report-seeds")


def test_a_grid_study_runs_the_points_of_a_space_file_and_then_stops(data, tmp_path):
    (tmp_path / "grid.yaml").write_text("lr: 1.0e-3\nnum_layers: [1, 2, 3]\nreg_weight: 1.0e-4\n")
    args = _args(data, tmp_path, 1)
    del args[args.index("--trials"):args.index("--trials") + 2]  # no --trials: the whole grid
    res = run(*args, "--grid", "--space", tmp_path / "grid.yaml", "--no-pruning")
    assert res.exit_code == 0, res.output
    assert "study lightgcn-synthetic: 3 trials (3 complete), 3 run now" in res.output
    assert sorted(t.params["num_layers"] for t in _trials(tmp_path)) == [1, 2, 3]
    res = run(*args, "--grid", "--space", tmp_path / "grid.yaml", "--no-pruning")
    assert res.exit_code == 0, res.output
    assert "0 run now" in res.output and "note: every point of the grid (3) has run or is running: no trial added" in res.output


def test_space_mmrec_searches_the_models_mmrec_grid(data, tmp_path):
    res = run(*_args(data, tmp_path, 2), "--space", "mmrec", "--grid", "--no-pruning")
    assert res.exit_code == 0, res.output
    assert "study lightgcn-synthetic: 2 trials (2 complete), 2 run now" in res.output
    for t in _trials(tmp_path):  # MMRec's LightGCN.yaml: n_layers 1-4, reg_weight 1e-2 .. 1e-6; lr fixed
        assert set(t.params) == {"num_layers", "reg_weight"}
        assert t.params["num_layers"] in (1, 2, 3, 4) and t.params["reg_weight"] in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    _one_line_error(run(*_args(data, tmp_path, 1), "--space", "mmrc", "--study", "other"),
                    "--space mmrc: no such file, and lightgcn has no reference grid 'mmrc' (its grids: mmrec)")


def test_a_cold_start_study_selects_on_cold_items_and_evaluate_rebuilds_its_split(data, tmp_path):
    res = run(*_args(data, tmp_path, 2, 3, "--cold-start", 0.2, "--select-on", "cold", "--negatives", "warm"))
    assert res.exit_code == 0, res.output
    assert "study lightgcn-synthetic-cold0.2: 2 trials" in res.output
    best = tmp_path / "out" / "best"
    res = run("evaluate", best, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "cold" in res.output
    res = run("tune", "lightgcn", "--data", data, "--trials", 1, "--storage", f"sqlite:///{tmp_path / 'other.db'}",
              "--select-on", "cold")
    _one_line_error(res, "needs a cold-start split: add --cold-start")
    # --cold-seed: the split of a `graphrec train --cold-seed 0` run, trained with --seed 1
    res = run("tune", "lightgcn", "--data", data, "--trials", 1, "--storage", f"sqlite:///{tmp_path / 'seeded.db'}",
              "--epochs", 2, "--cold-start", 0.2, "--cold-seed", 0, "--seed", 1, "--out", tmp_path / "seeded")
    assert res.exit_code == 0, res.output
    assert "study lightgcn-synthetic-cold0.2-seed1-split0: 1 trials" in res.output


def test_repeats_selecting_on_cold_items_report_each_seeds_cold_test(data, tmp_path):
    # hidden protocol: test holds warm and cold items, so the all-items figure differs
    res = run(*_args(data, tmp_path, 1, 2, "--cold-start", 0.2, "--cold-protocol", "hidden", "--select-on", "cold",
                     "--repeats", 2))
    assert res.exit_code == 0, res.output
    seeds = json.loads((tmp_path / "out" / "best" / "record.json").read_text())["tune"]["repeats"]
    cold = " / ".join(f"{s['test']['cold']['recall@20']:.4f}" for s in seeds)
    assert cold != " / ".join(f"{s['test']['all']['recall@20']:.4f}" for s in seeds)
    assert f"test recall@20 of the cold items per seed: {cold}; the best run holds seed " in res.output, res.output


def _one_line_error(res, text: str) -> None:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], res.output


def test_user_errors_are_one_line_before_any_work(data, tmp_path, monkeypatch):
    _one_line_error(run("tune", "lightgcn", "--data", data), "Missing option '--storage'")
    _one_line_error(run(*_args(data, tmp_path, 1)[:1], "nosuchmodel", *_args(data, tmp_path, 1)[2:]),
                    "unknown ranking model 'nosuchmodel'")
    _one_line_error(run(*_args(data, tmp_path, 1)[:1], "gmmf", *_args(data, tmp_path, 1)[2:]),
                    "graphrec tune searches ranking models; gmmf is a CTR model")
    (tmp_path / "space.yaml").write_text("reg_weight: {low: 1, high: 0.1}\n")
    _one_line_error(run(*_args(data, tmp_path, 1), "--space", tmp_path / "space.yaml"),
                    "reg_weight: {low: 1, high: 0.1}: low must be below high: swap them")
    _one_line_error(run(*_args(data, tmp_path, 0)), "--trials must be at least 1")
    _one_line_error(run(*_args(data, tmp_path, 1), "--repeats", 0), "--repeats must be at least 1, got 0")
    _one_line_error(run(*_args(data, tmp_path, 1, 0)), "error: --epochs must be at least 1, got 0")  # not the field
    _one_line_error(run(*_args(data, tmp_path, 1), "--metric", "x"), "error: --metric 'x' must look like recall@20")
    _one_line_error(run(*_args(data, tmp_path, 1), "--grid"), "--grid needs a finite set of values")
    _one_line_error(run(*_args(data, tmp_path, 1)[:7], "study.db", *_args(data, tmp_path, 1)[8:]),
                    "is not a database URL: use e.g. sqlite:///study.db")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    _one_line_error(run(*_args(data, tmp_path, 1), "--tensorboard", tmp_path / "tb"),
                    "--tensorboard needs the tensorboard package: pip install tensorboard")
    monkeypatch.setitem(sys.modules, "optuna", None)
    _one_line_error(run(*_args(data, tmp_path, 1)), "graphrec tune needs Optuna: pip install 'graphrec[tune]'")
    assert not (tmp_path / "study.db").exists() and not (tmp_path / "out").exists() and not (tmp_path / "tb").exists()


def test_valid_users_validates_every_trial_on_the_same_sample_and_the_best_is_tested_on_everyone(data, tmp_path):
    import shlex

    from graphrec.train.record import load_record

    res = run(*_args(data, tmp_path, 2, 2, "--valid-users", 25, "--no-pruning"))
    assert res.exit_code == 0, res.output
    for n in ("0", "1"):
        trial = load_record(tmp_path / "out" / "trials" / n)
        assert trial["train_config"]["valid_users"] == 25
        assert all(h["valid"]["users"] == 25 for h in trial["history"])
        assert "--valid-users 25" in trial["command"]  # its train command validates the same way
    best = load_record(tmp_path / "out" / "best")
    assert best["best_valid"]["users"] == 25 and best["test"]["all"]["users"] > 25
    assert shlex.split(best["command"])[:3] == ["graphrec", "train", "lightgcn"]


def test_the_mmrec_grid_under_the_default_protocol_is_noted(data, tmp_path):
    """`tune --space mmrec` reported recbole-protocol test figures next to MMRec's grid
    without a word; an explicit --protocol is the user's choice and gets no note."""
    note = "note: --space mmrec searches MMRec's grid under graphrec's default protocol, recbole"
    args = ("tune", "lightgcn", "--data", data, "--space", "mmrec", "--grid", "--storage", "sqlite:///:memory:")
    res = run(*args)
    assert res.exit_code == 1 and note in res.output and "give a SQLite file" in res.output, res.output
    for protocol in ("recbole", "mmrec"):
        res = run(*args, "--protocol", protocol)
        assert res.exit_code == 1 and note not in res.output, res.output
