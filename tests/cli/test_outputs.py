"""Outputs of every command: checked before any work, never replaced without --overwrite.

An existing run directory is replaced only with ``--overwrite`` (ranking and CTR
``graphrec train``, like ``prepare`` and ``build-graph``); an output whose parent is a
file or cannot be written is a one-line error before any data is read or any model
trained (the inputs below do not exist: a command that looked at them first would fail
with another message).
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.testing import one_error_line
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.train import TrainConfig, run_training
from graphrec.train.ctr import CTRConfig, run_ctr

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("outputs", "synthetic", n_users=120, n_items=80, n_clusters=4, seed=0)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr-outputs") / "samples"
    contract_ctr_data().save(path)
    return path


# ------------------------------------------------------------------ item 1: --overwrite
def test_train_refuses_to_replace_a_run_without_overwrite(data_dir, tmp_path):
    out = tmp_path / "runs" / "lightgcn"
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu",
              "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    before = (out / "record.json").read_text()
    line = one_error_line(run("train", "mf", "--data", data_dir, "--epochs", "1", "--device", "cpu",
                              "--out", out, "--quiet"))
    assert f"{out} already exists" in line and "--overwrite" in line
    assert (out / "record.json").read_text() == before  # still the LightGCN run
    # refused before the data is read: a missing --data is not what it complains about
    line = one_error_line(run("train", "mf", "--data", tmp_path / "nodata", "--out", out))
    assert "already exists" in line
    res = run("train", "mf", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu",
              "--out", out, "--quiet", "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "record.json").read_text())["model"] == "mf"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_train_overwrite_replaces_only_a_run_directory(data_dir, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "paper.txt").write_text("keep me")
    line = one_error_line(run("train", "mf", "--data", data_dir, "--epochs", "1", "--device", "cpu",
                              "--out", folder, "--overwrite", "--quiet"))
    assert "not a run directory" in line and "record.json" in line
    assert (folder / "paper.txt").read_text() == "keep me"


def test_ctr_train_refuses_to_replace_a_run_without_overwrite(samples, tmp_path):
    out = tmp_path / "run"
    args = ["train", "lr", "--data", samples, "--task", "ctr", "--epochs", "1", "--device", "cpu", "--quiet"]
    res = run(*args, "--out", out)
    assert res.exit_code == 0, res.output
    before = (out / "record.json").read_text()
    line = one_error_line(run("train", "din", "--data", samples, "--task", "ctr", "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", out))
    assert "already exists" in line and "--overwrite" in line
    assert (out / "record.json").read_text() == before
    line = one_error_line(run("train", "din", "--data", tmp_path / "nodata", "--out", out))
    assert "already exists" in line
    res = run("train", "din", "--data", samples, "--task", "ctr", "--epochs", "1", "--device", "cpu",
              "--quiet", "--out", out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "record.json").read_text())["model"] == "din"


def test_every_train_command_has_overwrite():
    from graphrec.train.registry import registered_models

    for entry in registered_models():
        res = run("train", entry.name, "--help")
        assert res.exit_code == 0 and "--overwrite" in res.output, entry.name


def test_run_training_checks_out_before_training(data_dir, tmp_path, monkeypatch):
    ds = synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=0)
    cfg = TrainConfig(epochs=1, ks=(20,), progress=False)
    out = tmp_path / "run"
    record, _ = run_training(ds, "mf", {"embedding_dim": 4}, cfg, out=out)

    def no_training(*a, **k):
        raise AssertionError("trained before checking the output")

    monkeypatch.setattr("graphrec.train.run.fit", no_training)
    with pytest.raises(ConfigError, match="already exists"):
        run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, out=out)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, out=tmp_path / "file" / "run")
    monkeypatch.undo()
    again, _ = run_training(ds, "lightgcn", {"embedding_dim": 4}, cfg, out=out, overwrite=True)
    assert json.loads((out / "record.json").read_text())["model"] == "lightgcn" == again["model"]


def test_run_ctr_checks_out_before_training(tmp_path, monkeypatch):
    data = contract_ctr_data()
    cfg = CTRConfig(epochs=1, progress=False)
    out = tmp_path / "run"
    run_ctr(data, "lr", {}, cfg, out=out)
    monkeypatch.setattr("graphrec.train.ctr.fit_ctr", lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(ConfigError, match="already exists"):
        run_ctr(data, "lr", {}, cfg, out=out)


# ------------------------------------------------- item 4: every output checked up front
def _commands(tmp_path, out):
    """Each command with inputs that do not exist and ``out`` as its output."""
    missing = tmp_path / "missing"
    return {
        "train": ["train", "lightgcn", "--data", missing, "--out", out],
        "train-ctr": ["train", "din", "--data", missing, "--task", "ctr", "--out", out],
        "prepare": ["prepare", "--format", "mmrec", missing, out],
        "build-graph": ["build-graph", "--data", missing, "--out", out],
        "export-graph": ["export-graph", missing, "--out", out],
        "export-recbole": ["export-recbole", missing, out],
        "export-mmrec": ["export-mmrec", missing, out],
        "inspect --plot": ["inspect", missing, "--plot", out],
        "inspect --graphml": ["inspect", missing, "--graphml", out],
        "plot-modality-attention": ["plot-modality-attention", missing, "--out", out],
    }


COMMANDS = list(_commands(__import__("pathlib").Path("."), "x"))


@pytest.mark.parametrize("command", COMMANDS)
def test_output_under_a_file_is_refused_before_any_work(command, tmp_path):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "out"
    line = one_error_line(run(*_commands(tmp_path, out)[command]))
    assert "afile is a file, not a folder" in line, line
    assert "missing" not in line  # the output was checked first


@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_folder_is_refused_before_any_work(command, tmp_path, monkeypatch):
    # a folder nobody may write into (simulated: the tests may run as root, for whom
    # permission bits do not apply; the real case is below)
    real = tempfile.mkdtemp
    parent = tmp_path / "readonly"
    parent.mkdir()

    def mkdtemp(*args, dir=None, **kwargs):
        if dir is not None and os.fspath(dir) == os.fspath(parent):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    line = one_error_line(run(*_commands(tmp_path, parent / "out")[command]))
    assert "cannot be written (Permission denied)" in line and "missing" not in line, line


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(data_dir, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        line = one_error_line(run("train", "mf", "--data", data_dir, "--out", parent / "run", "--quiet"))
        assert "cannot be written" in line
    finally:
        parent.chmod(0o755)


def test_existing_outputs_are_refused_before_any_work(tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    for command in ("prepare", "export-recbole", "export-mmrec", "export-graph"):
        line = one_error_line(run(*_commands(tmp_path, out)[command]))
        assert "already exists" in line and "missing" not in line, (command, line)


def test_default_run_folder_is_checked(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    line = one_error_line(run("train", "mf", "--data", data_dir, "--epochs", "1", "--quiet"))
    assert "runs is a file" in line


# ------------------------------------------------------------------ runs started together
class _Second:
    """A ``datetime`` whose ``now()`` is always the same second: runs started together."""

    @staticmethod
    def now():
        import datetime

        return datetime.datetime(2024, 5, 1, 12, 0, 0)


@pytest.mark.parametrize("task", ["ranking", "ctr"])
def test_default_run_folders_of_runs_started_in_the_same_second_are_distinct(data_dir, samples, tmp_path, monkeypatch,
                                                                            task):
    """A parallel seed sweep: the default --out runs/MODEL-DATASET-STAMP is claimed when
    the run starts (an empty folder, made exclusively), so a second run of the same
    second takes STAMP-2 instead of failing at the end and losing its training."""
    import types

    from graphrec.cli import train as train_cli
    from graphrec.cli import train_ctr as train_ctr_cli

    monkeypatch.chdir(tmp_path)
    fake = types.SimpleNamespace(datetime=_Second)
    monkeypatch.setattr(train_cli if task == "ranking" else train_ctr_cli, "_dt", fake)
    if task == "ranking":
        args = ["train", "mf", "--data", data_dir, "--epochs", "2", "--dim", "4", "--device", "cpu", "--quiet"]
        name = "mf-synthetic-20240501-120000"
        import graphrec.train.run as run_module
        fit = run_module.fit
        target = (run_module, "fit")
    else:
        args = ["train", "lr", "--data", samples, "--task", "ctr", "--epochs", "1", "--device", "cpu", "--quiet"]
        import graphrec.train.ctr as ctr_module
        fit = ctr_module.fit_ctr
        name = None
        target = (ctr_module, "fit_ctr")
    seen = []

    def training(*a, **k):  # while the first run trains, its folder is already taken
        seen.append(sorted(p.name for p in (tmp_path / "runs").iterdir()))
        assert all(not any(p.iterdir()) for p in (tmp_path / "runs").iterdir() if p.name == seen[-1][-1])
        return fit(*a, **k)

    monkeypatch.setattr(*target, training)
    first = run(*args)
    assert first.exit_code == 0, first.output
    (claimed,) = seen[0]
    assert name is None or claimed == name  # (empty while it trained)
    second = run(*args)
    assert second.exit_code == 0, second.output
    assert seen[1] == [claimed, f"{claimed}-2"]
    assert f"run saved to runs/{claimed}-2" in second.output and "note:" not in second.output
    for folder in (claimed, f"{claimed}-2"):
        assert (tmp_path / "runs" / folder / "record.json").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [claimed, f"{claimed}-2"]  # no temporaries


def test_a_failed_default_run_leaves_no_claimed_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def diverge(*a, **k):
        raise FloatingPointError("training loss became nan at epoch 1: lower --lr")

    monkeypatch.setattr("graphrec.train.run.fit", diverge)
    res = run("train", "mf", "--data", data_dir, "--epochs", "1", "--dim", "4", "--device", "cpu", "--quiet")
    assert res.exit_code == 1, res.output
    assert not (tmp_path / "runs").exists()  # neither the claimed folder nor runs/ made for it


@pytest.mark.parametrize("task", ["ranking", "ctr"])
def test_an_out_written_by_another_process_during_training_keeps_both(data_dir, samples, tmp_path, monkeypatch, task):
    """--out was free at the start and another process wrote it meanwhile: the finished
    run is kept beside it (OUT-2), one note says where, and the other output is intact."""
    out = tmp_path / "run"
    if task == "ranking":
        args = ["train", "mf", "--data", data_dir, "--epochs", "2", "--dim", "4", "--device", "cpu", "--quiet"]
        target = "graphrec.train.run.fit"
        import graphrec.train.run as module
        fit = module.fit
    else:
        args = ["train", "lr", "--data", samples, "--task", "ctr", "--epochs", "1", "--device", "cpu", "--quiet"]
        target = "graphrec.train.ctr.fit_ctr"
        import graphrec.train.ctr as module
        fit = module.fit_ctr

    def training(*a, **k):
        out.mkdir()
        (out / "record.json").write_text('{"theirs": true}')
        return fit(*a, **k)

    monkeypatch.setattr(target, training)
    res = run(*args, "--out", out)
    assert res.exit_code == 0, res.output
    assert (f"note: {out} appeared while this run trained (another process wrote it): the run is saved to "
            f"{out}-2 instead") in res.output
    assert f"run saved to {out}-2" in res.output
    assert (out / "record.json").read_text() == '{"theirs": true}'
    assert json.loads((tmp_path / "run-2" / "record.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-2"]


def test_an_interrupted_run_whose_out_was_written_meanwhile_is_kept_beside_it(data_dir, tmp_path, monkeypatch):
    import graphrec.train.run as module

    out = tmp_path / "run"
    fit = module.fit

    def training(model, dataset, config, **k):
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
        orig = k["on_epoch"]

        def on_epoch(row):
            if orig:
                orig(row)
            if row["epoch"] == 1:
                raise KeyboardInterrupt

        return fit(model, dataset, config, **{**k, "on_epoch": on_epoch})

    monkeypatch.setattr(module, "fit", training)
    res = run("train", "mf", "--data", data_dir, "--epochs", "3", "--dim", "4", "--device", "cpu", "--quiet",
              "--out", out)
    assert res.exit_code == 130, res.output
    assert f"is kept in {out}-2 ({out} appeared while it trained); resume with `" in res.output
    assert f"--out {out}-2 --resume`" in res.output
    assert (out / "mine.txt").read_text() == "keep me"
    assert json.loads((tmp_path / "run-2" / "record.json").read_text())["status"] == "interrupted"


def test_an_out_that_is_a_file_says_so_first_not_pass_overwrite(data_dir, tmp_path):
    """--overwrite would not help: the first message says what would."""
    (tmp_path / "afile").write_text("mine")
    for extra in ((), ("--overwrite",)):
        line = one_error_line(run("train", "mf", "--data", data_dir, "--epochs", "1", "--device", "cpu", "--quiet",
                                  "--out", tmp_path / "afile", *extra))
        assert line == (f"error: --out {tmp_path / 'afile'} is a file, not a folder: remove it or choose another "
                        "--out"), line
    assert (tmp_path / "afile").read_text() == "mine"


def test_evaluating_a_run_whose_dataset_moved_says_to_pass_data(data_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    res = run("train", "mf", "--data", data, "--epochs", "1", "--dim", "4", "--device", "cpu", "--quiet",
              "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    data.rename(tmp_path / "moved")
    line = one_error_line(run("evaluate", tmp_path / "run", "--device", "cpu"))
    assert line == (f"error: run {tmp_path / 'run'} was trained on the dataset {data}, which is no longer there "
                    "(moved or deleted?): pass --data DIR, the dataset's folder now"), line
    res = run("evaluate", tmp_path / "run", "--device", "cpu", "--data", tmp_path / "moved")
    assert res.exit_code == 0, res.output


# ------------------------------------------------- graphrec demo: outputs and options before any work
def test_demo_checks_every_output_before_writing_or_training(tmp_path, monkeypatch):
    # OUT/data was replaced (a folder of other files lost) and only then OUT/runs/lightgcn
    # refused as "not a run directory"
    import graphrec.data.synthetic as synthetic

    def no_work(*args, **kwargs):
        raise AssertionError("the catalogue was built before the outputs were checked")

    monkeypatch.setattr(synthetic, "synthetic_catalogue", no_work)
    out = tmp_path / "d"
    (out / "data").mkdir(parents=True)
    (out / "data" / "mine.txt").write_text("mine\n")
    line = one_error_line(run("demo", "--out", out, "--epochs", "1", "--device", "cpu", "--quiet"))
    assert f"{out / 'data'} is not a graphrec dataset (no dataset.json in it)" in line and "choose another --out" in line
    assert (out / "data" / "mine.txt").read_text() == "mine\n"
    (out / "data" / "mine.txt").unlink()
    for run_name in ("lightgcn", "mmgef-coldpath"):
        (out / "runs" / run_name).mkdir(parents=True)
        (out / "runs" / run_name / "notes.txt").write_text("notes\n")
        line = one_error_line(run("demo", "--out", out, "--epochs", "1", "--device", "cpu", "--quiet"))
        assert f"{out / 'runs' / run_name} is not a run directory (no record.json in it)" in line, line
        (out / "runs" / run_name / "notes.txt").unlink()
    (out / "runs" / "cb-cold").write_text("a file")
    line = one_error_line(run("demo", "--out", out, "--epochs", "1", "--device", "cpu", "--quiet"))
    assert f"{out / 'runs' / 'cb-cold'} is not a folder" in line, line
    assert sorted(p.name for p in (out / "data").iterdir()) == []
    # a dataset folder as --out got data/ and runs/ written into it
    (out / "runs" / "cb-cold").unlink()
    (out / "data" / "dataset.json").write_text("{}")
    line = one_error_line(run("demo", "--out", out / "data", "--epochs", "1", "--device", "cpu", "--quiet"))
    assert line == (f"error: --out {out / 'data'} is a graphrec dataset (dataset.json), and the demo writes data/ and "
                    "runs/ into --out: choose another --out (default graphrec-demo)"), line
    assert sorted(p.name for p in (out / "data").iterdir()) == ["dataset.json"]


def test_demo_names_the_earlier_outputs_it_replaces(tmp_path):
    """A second demo replaced data/ and runs/* without a word."""
    from graphrec.cli.demo import _check_outputs

    out = tmp_path / "d"
    assert _check_outputs(out, ["lightgcn", "mmgef"]) == []
    (out / "data").mkdir(parents=True)
    (out / "data" / "dataset.json").write_text("{}")
    (out / "runs" / "mmgef").mkdir(parents=True)
    (out / "runs" / "mmgef" / "record.json").write_text("{}")
    (out / "runs" / "lightgcn").mkdir()  # empty: nothing of an earlier demo in it
    assert _check_outputs(out, ["lightgcn", "mmgef"]) == ["data", "runs/mmgef"]


@pytest.mark.parametrize(
    "option, message",
    [
        (("--cold-start", "1.5"), "--cold-start must be a fraction of the items in (0, 1), or 0 to skip the cold-start "
                                  "part, got 1.5"),
        (("--cold-start", "-0.2"), "--cold-start must be a fraction of the items in (0, 1)"),
        (("--cold", "nan"), "--cold-start must be a fraction of the items in (0, 1)"),  # the name it had before
        (("--epochs", "0"), "--epochs must be at least 1, got 0"),
        (("--seed", "-1"), "--seed must be at least 0, got -1"),
    ],
)
def test_demo_options_are_checked_before_any_work(tmp_path, option, message):
    # --cold 1.5 was refused after the warm part trained, --epochs 0 after data/ was written
    line = one_error_line(run("demo", "--out", tmp_path / "d", "--device", "cpu", "--quiet", *option))
    assert message in line, line
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------ a full disk
FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 832 vs 726"


def test_a_full_disk_while_a_run_is_saved_is_one_line_saying_the_training_is_lost(data_dir, tmp_path, monkeypatch):
    """torch's zip writer reports a full disk as a RuntimeError: a 70-line traceback after
    training, the run gone without a word."""
    import shutil
    import torch

    real_save = torch.save

    def full(obj, f, *args, **kwargs):
        if str(f).endswith("model.pt"):
            raise RuntimeError(FULL_DISK)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 0))
    out = tmp_path / "run"
    line = one_error_line(run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu",
                              "--out", out, "--quiet"))
    assert line.startswith("error: ") and "model.pt: No space left on device; the trained run could not be saved in " \
        f"{out}, and its training is lost: free space there, or choose an output folder on another disk" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written


def test_an_os_error_writing_any_output_is_one_line(data_dir, tmp_path, monkeypatch):
    """prepare, build-graph, recommend, export-*: OSError(ENOSPC) was a traceback."""
    import errno

    import numpy as np

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    monkeypatch.setattr(np, "savez_compressed", full)
    line = one_error_line(run("build-graph", "--data", data_dir, "--kind", "cooccur", "--out", tmp_path / "g"))
    assert line == "error: No space left on device: free space there, or choose an output folder on another disk"
    assert not (tmp_path / "g" / "cooccur").exists()
    monkeypatch.undo()

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x.csv"))

    monkeypatch.setattr(np, "savez_compressed", denied)
    monkeypatch.setattr(np, "savez", denied)
    line = one_error_line(run("build-graph", "--data", data_dir, "--kind", "cooccur", "--out", tmp_path / "g"))
    assert line == f"error: {tmp_path / 'x.csv'}: Permission denied: choose a folder you can write to, or change " \
        "its permissions"


def test_a_damaged_training_option_in_a_record_is_named_as_the_records(data_dir, tmp_path):
    """`graphrec evaluate` said `batch_size must be an integer, got 'many'`, as if an option
    of the command were wrong."""
    out = tmp_path / "run"
    assert run("train", "mf", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu", "--out", out,
               "--quiet").exit_code == 0
    record = json.loads((out / "record.json").read_text())
    record["train_config"]["batch_size"] = "many"
    (out / "record.json").write_text(json.dumps(record))
    line = one_error_line(run("evaluate", out, "--device", "cpu"))
    assert line == (f"error: {out / 'record.json'}: train_config: batch_size must be an integer, got 'many': the record "
                    "was damaged or edited; restore it or train again"), line


@pytest.mark.parametrize("command", [("train", "mf", "--epochs", "1"), ("build-graph", "--kind", "cooccur")])
def test_an_output_inside_the_dataset_folder_is_refused(command, tmp_path, saved_catalogue):
    """A run or graphs stored inside the dataset folder were deleted without a word when
    the dataset was replaced (prepare --overwrite, features in place)."""
    data = saved_catalogue("outputs-inside", "synthetic", n_users=40, n_items=30, n_clusters=2, seed=0)
    out = data / "mine"
    line = one_error_line(run(*command, "--data", data, "--out", out))
    assert line == (f"error: --out {out} lies inside --data {data}, which is an input (graphrec keeps those folders as "
                    "it wrote them): write it outside that folder"), line
    assert not out.exists()
