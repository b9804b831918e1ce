"""`graphrec train` interrupted (Ctrl-C, SIGTERM) and resumed: status 130 and one line
naming where the state is kept and the exact command that continues it; that command
ends the run with the numbers of an uninterrupted one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.models.lightgcn import LightGCN

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def lines(res):
    err = res.stderr if hasattr(res, "stderr") else res.output
    return [l for l in err.strip().splitlines() if l.strip()]


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("interrupt", "data", n_users=100, n_items=60, n_clusters=3, seed=0)


def train_args(data_dir):
    return ["train", "lightgcn", "--data", data_dir, "--epochs", "5", "--dim", "8", "--eval-every", "2", "--lr", "0.02",
            "--lr-decay", "0.5", "--lr-decay-every", "2", "--batch-size", "256", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupt-full") / "run"
    res = run(*train_args(data_dir), "--out", out)
    assert res.exit_code == 0, res.output
    return json.loads((out / "record.json").read_text())


def interrupt_at(monkeypatch, epoch):
    start = LightGCN.start_epoch

    def start_epoch(model, e):
        if e == epoch:
            raise KeyboardInterrupt
        return start(model, e)

    monkeypatch.setattr(LightGCN, "start_epoch", start_epoch)


@pytest.mark.parametrize("given_out", [True, False])
def test_ctrl_c_keeps_the_run_and_the_printed_command_resumes_it(data_dir, uninterrupted, tmp_path, monkeypatch,
                                                                  given_out):
    monkeypatch.chdir(tmp_path)
    args = train_args(data_dir) + (["--out", "run"] if given_out else [])
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        res = run(*args)
    assert res.exit_code == 130, res.output
    (line,) = lines(res)
    out = "run" if given_out else next(p.name for p in (tmp_path / "runs").iterdir())
    out = out if given_out else f"runs/{out}"
    assert line.startswith(f"interrupted after 2 of 5 epochs: the best state so far (epoch 2) is kept in {out}; "
                           "resume with `graphrec train lightgcn"), line
    command = line.split("`")[1]
    assert shlex.split(command) == ["graphrec", *map(str, args), *([] if given_out else ["--out", out]), "--resume"]
    assert json.loads((tmp_path / out / "record.json").read_text())["status"] == "interrupted"
    # evaluating it is refused, with the same command
    res = run("evaluate", tmp_path / out, "--device", "cpu")
    assert res.exit_code == 1 and len(lines(res)) == 1, res.output
    assert "was interrupted after 2 of 5 epochs, so it has no test metrics" in lines(res)[0]
    assert f"resume it with `{command}`" in lines(res)[0]
    res = run(*shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    assert f"run saved to {out}" in res.output
    record = json.loads((tmp_path / out / "record.json").read_text())
    assert record["test"] == uninterrupted["test"] and record["best_valid"] == uninterrupted["best_valid"]
    assert record["status"] == "finished" and record["resumed_after"] == [2]
    assert record["command"] == shlex.join(["graphrec", *map(str, args)])  # how it was first started
    assert run("evaluate", tmp_path / out, "--device", "cpu").exit_code == 0


def test_ctrl_c_with_overwrite_resumes_without_it(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(*train_args(data_dir), "--epochs", "1", "--out", out).exit_code == 0
    with monkeypatch.context() as m:
        interrupt_at(m, 2)
        res = run(*train_args(data_dir), "--out", out, "--overwrite")
    assert res.exit_code == 130, res.output
    command = shlex.split(lines(res)[0].split("`")[1])
    assert "--overwrite" not in command and command[-3:] == ["--out", str(out), "--resume"]


def test_ctrl_c_before_training_says_nothing_was_kept(data_dir, tmp_path, monkeypatch):
    from graphrec.data import Dataset

    def load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Dataset, "load", load)
    res = run(*train_args(data_dir), "--out", tmp_path / "run")
    assert res.exit_code == 130 and lines(res) == ["interrupted"], res.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setup, extra, expected",
    [
        (None, ["--resume"], "does not exist, so there is no interrupted run to continue: drop --resume"),
        ("finished", ["--resume"], "finished, there is nothing to continue: drop --resume"),
        ("interrupted", ["--resume", "--overwrite"], "pass --out DIR, without --overwrite"),
        ("interrupted", ["--resume", "--lr", "0.05"], "--resume: lr is 0.05 here but 0.02 in the interrupted run"),
        ("interrupted", ["--resume", "--dim", "4"], "--resume: embedding_dim is 4 here but 8 in the interrupted run"),
    ],
)
def test_what_resume_refuses(data_dir, tmp_path, monkeypatch, setup, extra, expected):
    out = tmp_path / "run"
    if setup == "finished":
        assert run(*train_args(data_dir), "--epochs", "1", "--out", out).exit_code == 0
    elif setup == "interrupted":
        with monkeypatch.context() as m:
            interrupt_at(m, 2)
            assert run(*train_args(data_dir), "--out", out).exit_code == 130
    res = run(*train_args(data_dir), "--out", out, *extra)
    assert res.exit_code == 1, res.output
    (line,) = lines(res)
    assert line.startswith("error: ") and expected in line, line
    if setup == "interrupted" and "here but" in expected:  # names the command that works
        assert f"resume with `graphrec train lightgcn --data {data_dir}" in line and line.endswith(
            "or pass --overwrite instead of --resume to train anew"), line


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_keeps_the_state_like_ctrl_c(data_dir, tmp_path):
    """A real `kill` (SIGTERM) of a real `graphrec train` process at epoch 3."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from graphrec.models.lightgcn import LightGCN
        start = LightGCN.start_epoch
        def start_epoch(model, epoch):
            if epoch == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return start(model, epoch)
        LightGCN.start_epoch = start_epoch
        from graphrec.cli import main
        sys.argv = ["graphrec", *sys.argv[1:]]
        main()
        """
    )
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", script, *map(str, train_args(data_dir)), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith(f"interrupted after 2 of 5 epochs: the best state so far (epoch 2) is "
                                               f"kept in {out}; resume with `graphrec train lightgcn"), proc.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_completed"] == 2


def test_the_record_names_the_working_directory_and_each_parts_threads_and_device(data_dir, tmp_path, monkeypatch):
    """--threads may change on resume and changes float sums: each part's threads, device
    and processes are recorded (``device`` and ``environment`` describe the last part);
    ``cwd`` says where the recorded command's relative paths lead."""
    import torch

    monkeypatch.chdir(tmp_path)
    args = [*train_args(os.path.relpath(data_dir, tmp_path)), "--out", "run"]
    threads = torch.get_num_threads()
    try:
        with monkeypatch.context() as m:
            interrupt_at(m, 3)
            assert run(*args, "--threads", "1").exit_code == 130
        interrupted = json.loads((tmp_path / "run" / "record.json").read_text())
        assert interrupted["cwd"] == str(tmp_path) and "parts" not in interrupted
        res = run(*args, "--threads", "2", "--resume")
        assert res.exit_code == 0, res.output
    finally:
        torch.set_num_threads(threads)
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["cwd"] == str(tmp_path) and record["command"] == interrupted["command"]
    assert record["parts"] == [{"after_epoch": 0, "device": "cpu", "threads": 1, "processes": 1},
                               {"after_epoch": 2, "device": "cpu", "threads": 2, "processes": 1}]
    assert record["environment"]["threads"] == 2


def test_ctrl_c_while_the_command_line_imports_is_one_line(monkeypatch, capsys):
    """The console script's first second or two import torch and the commands: a Ctrl-C
    then ends as any interrupt does (one line, 130), not with the import's traceback."""
    import builtins

    from graphrec import _entry

    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "graphrec.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("GRAPHREC_DEBUG", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    with pytest.raises(SystemExit) as exit_:
        _entry.main()
    assert exit_.value.code == 130 and capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("where", ["building the command tree", "parsing the command line"])
def test_ctrl_c_after_the_imports_before_a_command_runs_is_one_line(monkeypatch, capsys, where):
    """After the imports typer builds the command tree, then click parses the line: a
    Ctrl-C there is one line and 130 too (it was typer's traceback, or 130 and no line)."""
    import typer.main
    from typer.core import TyperGroup

    from graphrec import _entry

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.delenv("GRAPHREC_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["graphrec", "models"])
    if where == "building the command tree":
        monkeypatch.setattr(typer.main, "get_command", interrupted)
    else:
        monkeypatch.setattr(TyperGroup, "parse_args", interrupted)
    try:
        _entry.main()
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C left the console script as a traceback")
    except SystemExit as exit_:
        assert exit_.code == 130 and capsys.readouterr().err == "interrupted\n"
    else:
        pytest.fail("the command ran on after the Ctrl-C")


def test_the_entry_keeps_a_commands_own_interrupt_line(data_dir, tmp_path, monkeypatch, capsys):
    """The console script's own Ctrl-C line does not replace a command's: train's names
    the resume command."""
    from graphrec import _entry

    interrupt_at(monkeypatch, 3)
    monkeypatch.delenv("GRAPHREC_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["graphrec", *map(str, train_args(data_dir)), "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as exit_:
        _entry.main()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert exit_.value.code == 130 and len(err) == 1 and "--resume" in err[0], err


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_ends_any_command_as_an_interrupt_leaving_no_temporary(data_dir, tmp_path):
    """A `kill` of `graphrec build-graph` (or prepare, recommend, tune) ended with status
    143, no word, and a hidden `.NAME.tmp-*` folder beside the output: one line now,
    status 130, the half-written graph removed."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        import scipy.sparse as sp
        save = sp.save_npz
        def save_npz(*args, **kwargs):  # the graph is being written in its temporary folder
            os.kill(os.getpid(), signal.SIGTERM)
            return save(*args, **kwargs)
        sp.save_npz = save_npz
        from graphrec._entry import main
        sys.argv = ["graphrec", *sys.argv[1:]]
        main()
        """
    )
    out = tmp_path / "graphs"
    proc = subprocess.run([sys.executable, "-c", script, "build-graph", "--data", str(data_dir), "--kind", "cooccur",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    assert [l for l in proc.stderr.splitlines() if l.strip()] == ["interrupted"], proc.stderr
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_serving_an_interrupted_run_says_so_and_refuses_untrained_weights(data_dir, tmp_path, monkeypatch):
    """recommend and export-graph used an interrupted run without a word, even one stopped
    in its first epoch (random weights), exit 0."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        interrupt_at(m, 3)
        assert run(*train_args(data_dir), "--out", out).exit_code == 130
    res = run("recommend", out, "--all", "--k", "3", "--out", tmp_path / "recs.csv", "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    notes = [l for l in lines(res) if l.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith(
        f"note: run {out} was interrupted after 2 of 5 epochs: this uses the best validated weights so far (epoch 2); "
        "resume it with `graphrec train lightgcn"), notes
    first = tmp_path / "first"
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        assert run(*train_args(data_dir), "--out", first).exit_code == 130
    assert json.loads((first / "record.json").read_text())["epochs_completed"] == 0
    for args in (["recommend", first, "--all", "--out", tmp_path / "r1.csv"], ["export-graph", first, "--out", tmp_path / "g"]):
        res = run(*args)
        assert res.exit_code == 1 and lines(res)[-1].startswith(
            f"error: run {first} was interrupted before its first epoch ended, so its weights are untrained: resume it "
            "with `graphrec train lightgcn"), res.output
    assert not (tmp_path / "r1.csv").exists() and not (tmp_path / "g").exists()
