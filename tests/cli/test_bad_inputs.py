"""Bad inputs a user may give any command (issue 21, the rough family): each is one
``error:`` line on stderr and exit status 1, never a traceback or click's usage box.

Usage errors (an unknown command or model, an unknown or missing option, a value that
does not parse) included; ``--help`` still exits 0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.testing import one_error_line
from graphrec.data.synthetic import synthetic_catalogue

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("bad-inputs", "synthetic", n_users=100, n_items=60, n_clusters=3, seed=0)


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-inputs-run") / "run"
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--device", "cpu",
              "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def graph_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-inputs-graphs") / "graphs"
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--k", "5", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    return out / "knn"


# ------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    "args, expected",
    [
        (["nosuch"], "No such command 'nosuch': see `"),
        (["train", "nosuch", "--data", "x"], "No such command 'nosuch': see `"),
        (["train", "lightgcn"], "Missing option '--data'"),
        (["train", "lightgcn", "--data", "x", "--bogus"], "No such option: --bogus"),
        (["train", "lightgcn", "--data", "x", "--lr", "abc"], "Invalid value for '--lr'"),
        (["train", "lightgcn", "--data", "x", "--epochs", "2.5"], "Invalid value for '--epochs'"),
        (["recommend", "run", "--out", "r.csv", "--k", "abc"], "Invalid value for '--k'"),
        (["prepare", "--format", "mmrec", "a", "b", "--seed", "x"], "Invalid value for '--seed'"),
    ],
)
def test_usage_errors_are_one_line_and_status_1(args, expected):
    line = one_error_line(run(*args))
    assert expected in line, line
    assert "--help`" in line  # says where to look


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["train", "lightgcn", "--help"]])
def test_help_still_exits_0(args):
    res = run(*args)
    assert res.exit_code == 0 and "Usage" in res.output


# ------------------------------------------------------------------ option values
@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--lr", "nan", "lr must be positive and finite"),
        ("--lr", "-1", "lr must be positive and finite"),
        ("--lr", "inf", "lr must be positive and finite"),
        ("--epochs", "0", "epochs must be at least 1, got 0"),
        ("--threads", "0", "--threads must be at least 1, got 0"),
        ("--threads", "-1", "--threads must be at least 1, got -1"),
    ],
)
def test_out_of_range_training_options(data_dir, tmp_path, option, value, expected):
    line = one_error_line(run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--device", "cpu",
                              "--quiet", "--out", tmp_path / "run", option, value))
    assert expected in line, line
    assert not (tmp_path / "run").exists()


def test_ctr_learning_rate_nan_is_refused():
    from graphrec.errors import ConfigError
    from graphrec.train.ctr import CTRConfig

    with pytest.raises(ConfigError, match="gan_lr must be positive and finite"):
        CTRConfig(gan_lr=float("nan"))


# ------------------------------------------------------------------ damaged run records
RECORDS = {
    "garbage": (b"{not json", "invalid JSON"),
    "binary": (b"\x00\xff\xfe garbage", "not a text file"),
    "empty object": (b"{}", "no model name"),
    "a list": (b"[1, 2]", "holds a JSON list, not a run record object"),
}


@pytest.mark.parametrize("case", list(RECORDS))
@pytest.mark.parametrize("command", ["evaluate", "recommend", "export-graph"])
def test_damaged_record_json(run_dir, tmp_path, case, command):
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    content, expected = RECORDS[case]
    (bad / "record.json").write_bytes(content)
    args = {
        "evaluate": ["evaluate", bad, "--device", "cpu"],
        "recommend": ["recommend", bad, "--out", tmp_path / "recs.csv", "--device", "cpu", "--quiet"],
        "export-graph": ["export-graph", bad, "--out", tmp_path / "graph"],
    }[command]
    line = one_error_line(run(*args))
    assert f"{bad / 'record.json'}: {expected}" in line, line


def test_record_entry_of_the_wrong_type(run_dir, tmp_path):
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    record = json.loads((bad / "record.json").read_text())
    record["dataset"] = "synthetic"
    (bad / "record.json").write_text(json.dumps(record))
    line = one_error_line(run("evaluate", bad, "--device", "cpu"))
    assert "the entry 'dataset' is a JSON string, not a JSON object" in line, line


def test_record_naming_an_unknown_model(run_dir, tmp_path):
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    record = json.loads((bad / "record.json").read_text())
    record["model"] = "nosuch"
    (bad / "record.json").write_text(json.dumps(record))
    assert "record.json says model 'nosuch'" in one_error_line(run("evaluate", bad, "--device", "cpu"))
    del record["checkpoint"]  # a run from before checkpoints were bound to records: warned, then refused
    (bad / "record.json").write_text(json.dumps(record))
    res = run("evaluate", bad, "--device", "cpu")
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 2, res.output
    assert lines[0].startswith("warning:") and "no checkpoint hash" in lines[0]
    assert lines[1].startswith(f"error: run {bad} trained the model 'nosuch', which nothing registers here")


def test_model_pt_of_another_dataset(run_dir, tmp_path):
    other = tmp_path / "other-data"
    synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=1).save(other)
    res = run("train", "lightgcn", "--data", other, "--epochs", "1", "--dim", "8", "--device", "cpu",
              "--out", tmp_path / "other", "--quiet")
    assert res.exit_code == 0, res.output
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    shutil.copy(tmp_path / "other" / "model.pt", bad / "model.pt")
    assert "model.pt is not the checkpoint this run wrote" in one_error_line(run("evaluate", bad, "--device", "cpu"))


# ------------------------------------------------------------------ damaged graphs and datasets
def test_truncated_graph_npz(graph_dir, data_dir, tmp_path):
    bad = tmp_path / "knn"
    shutil.copytree(graph_dir, bad)
    data = (bad / "graph.npz").read_bytes()
    (bad / "graph.npz").write_bytes(data[: len(data) // 2])
    line = one_error_line(run("inspect", bad))
    assert f"{bad / 'graph.npz'}: unreadable graph file" in line, line
    line = one_error_line(run("train", "mmgef", "--data", data_dir, "--graph", bad, "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", tmp_path / "run"))
    assert "unreadable graph file" in line, line


@pytest.mark.parametrize("content", [b"{\"format\": \"graphrec-gr", b"\x89PNG\x00\x01"])
def test_truncated_or_binary_graph_json(graph_dir, tmp_path, content):
    bad = tmp_path / "knn"
    shutil.copytree(graph_dir, bad)
    (bad / "graph.json").write_bytes(content)
    assert "graph.json: invalid JSON" in one_error_line(run("inspect", bad))


@pytest.mark.parametrize(
    "file, content, expected",
    [
        ("interactions.npz", None, "dataset directory is incomplete or corrupt"),
        ("dataset.json", b"\xff\xfe", "invalid JSON"),
        ("dataset.json", b"[1]", "not a graphrec dataset header"),
    ],
)
def test_damaged_dataset_directory(data_dir, tmp_path, file, content, expected):
    bad = tmp_path / "data"
    shutil.copytree(data_dir, bad)
    if content is None:  # truncated
        content = (bad / file).read_bytes()[:100]
    (bad / file).write_bytes(content)
    assert expected in one_error_line(run("info", bad))


# ------------------------------------------------------------------ graph recipes
@pytest.mark.parametrize(
    "text, expected",
    [
        ("k: ten\n", "k: 'ten' must be a whole number"),
        ("k: true\n", "k: True must be a whole number"),
        ("kind: [knn]\n", "kind: ['knn'] must be knn, cooccur, user-cooccur or both"),
        ("symmetric: maybe\n", "symmetric: 'maybe' must be true or false"),
        ("modalities: 3\n", "modalities: 3 must be a modality name or a list"),
        ("cold_start: [0.2]\n", "cold_start: [0.2] must be a fraction"),
        ("source: lfm2k\n", "source: 'lfm2k' must be a mapping"),
    ],
)
def test_recipe_value_of_the_wrong_type(data_dir, tmp_path, text, expected):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {data_dir}\nout: {tmp_path / 'graphs'}\n" + text)
    line = one_error_line(run("build-graph", "--recipe", recipe, "--device", "cpu", "--quiet"))
    assert f"recipe {recipe}: {expected}" in line, line
    assert not (tmp_path / "graphs").exists()


def test_binary_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert "is not a text file" in one_error_line(run("build-graph", "--recipe", recipe))


# ------------------------------------------------------------------ stale graphs: the printed fix works
def _printed_command(line: str) -> list[str]:
    """The ``graphrec ...`` command between the backticks of an error line, as argv."""
    import shlex

    command = line.split("`")[1]
    argv = shlex.split(command)
    assert argv[:2] == ["graphrec", "build-graph"], command
    return argv[1:]


def test_rebuild_command_for_a_cold_start_mismatch_runs(data_dir, tmp_path):
    graphs = tmp_path / "graphs"
    res = run("build-graph", "--data", data_dir, "--kind", "both", "--k", "4", "--cooccur-top-k", "7",
              "--device", "cpu", "--out", graphs, "--quiet")
    assert res.exit_code == 0, res.output
    train = ["train", "mmgef", "--data", data_dir, "--graph", graphs / "knn", "--cold-start", "0.2",
             "--epochs", "1", "--dim", "8", "--device", "cpu", "--quiet"]
    # the kNN graph (item content only) serves the cold-start split; the co-interaction graph
    # is refused, and the printed command builds one for the split into a new folder
    line = one_error_line(run(*train, "--graph", graphs / "cooccur", "--out", tmp_path / "run"))
    assert f"graph {graphs / 'cooccur'}: cold_start differs" in line, line
    assert f"--data {Path(data_dir).resolve()} " in line and "--cold-start 0.2 " in line, line
    assert "--out NEW_DIR` and pass NEW_DIR/cooccur" in line and "--overwrite" not in line, line
    new = tmp_path / "cold"
    res = run(*[str(new) if a == "NEW_DIR" else a for a in _printed_command(line)], "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    cooccur = json.loads((new / "cooccur" / "graph.json").read_text())
    assert cooccur["k"] == 7 and cooccur["cold_start_fraction"] == 0.2  # recorded options kept
    assert json.loads((graphs / "cooccur" / "graph.json").read_text())["cold_start_fraction"] is None  # kept
    res = run(*train, "--graph", new / "cooccur", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output


def test_rebuild_command_for_a_damaged_graph_runs(graph_dir, tmp_path):
    graphs = tmp_path / "graphs"
    shutil.copytree(graph_dir.parent, graphs)
    data = (graphs / "knn" / "graph.npz").read_bytes()
    (graphs / "knn" / "graph.npz").write_bytes(data[: len(data) // 3])
    line = one_error_line(run("inspect", graphs / "knn"))
    assert f"--out {graphs} --overwrite" in line, line  # the folder build-graph writes knn/ into
    res = run(*_printed_command(line), "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert run("inspect", graphs / "knn").exit_code == 0


# ------------------------------------------------------------------ temporaries of killed runs
def _dead_pid() -> int:
    """The process ID of a process that has exited."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(__import__("os").name != "posix", reason="process IDs are checked with os.kill(pid, 0)")
@pytest.mark.parametrize("command", ["train", "build-graph", "export-recbole"])
def test_next_run_removes_the_temporaries_of_a_killed_run(data_dir, tmp_path, command):
    import os

    from graphrec._atomic import _host

    out, name = {
        "train": (tmp_path / "run", "run"),
        "build-graph": (tmp_path / "graphs", "knn"),
        "export-recbole": (tmp_path / "atomic", "atomic"),
    }[command]
    folder = out if command == "build-graph" else out.parent
    folder.mkdir(parents=True, exist_ok=True)
    killed = folder / f".{name}.tmp-{_host()}.{_dead_pid()}-k1ll3d"  # what a killed run leaves
    (killed / "sub").mkdir(parents=True)
    (killed / "sub" / "half-written").write_text("x")
    running = folder / f".{name}.tmp-{_host()}.{os.getppid()}-runn1ng"  # a run still writing
    running.mkdir()
    other = folder / f".other.tmp-{_host()}.{_dead_pid()}-0ther"  # another output's: not this command's
    other.mkdir()
    args = {
        "train": ["train", "mf", "--data", data_dir, "--epochs", "1", "--device", "cpu", "--quiet", "--out", out],
        "build-graph": ["build-graph", "--data", data_dir, "--kind", "knn", "--device", "cpu", "--quiet", "--out", out],
        "export-recbole": ["export-recbole", data_dir, out],
    }[command]
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert not killed.exists()
    assert running.is_dir() and other.is_dir()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")) == [running.name]


@pytest.mark.skipif(__import__("os").name != "posix", reason="process IDs are checked with os.kill(pid, 0)")
@pytest.mark.parametrize("command", ["train", "recommend"])
def test_next_run_removes_old_folders_and_file_temporaries_of_a_killed_run(run_dir, data_dir, tmp_path, command):
    """A run killed after moving the previous output aside leaves ``.NAME.old-*``; one
    writing a single file leaves ``.NAME.tmp-*.SUFFIX``: the next run removes them."""
    import os

    from graphrec._atomic import _host

    if command == "train":
        out = tmp_path / "run"
        shutil.copytree(run_dir, out)
        killed = tmp_path / f".run.old-{_host()}.{_dead_pid()}-k1ll3d00"
        shutil.copytree(run_dir, killed)
        running = tmp_path / f".run.old-{_host()}.{os.getppid()}-runn1ng0"
        running.mkdir()
        args = ["train", "mf", "--data", data_dir, "--epochs", "1", "--device", "cpu", "--quiet", "--out", out,
                "--overwrite"]
    else:
        out = tmp_path / "recs.csv"
        killed = tmp_path / f".recs.csv.tmp-{_host()}.{_dead_pid()}-k1ll3d00.csv"
        killed.write_text("user_id,item_id,rank,score\n1,")
        running = tmp_path / f".recs.csv.tmp-{_host()}.{os.getppid()}-runn1ng0.csv"
        running.write_text("")
        args = ["recommend", run_dir, "--out", out, "--device", "cpu", "--quiet"]
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert not killed.exists() and running.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, running.name])


@pytest.mark.parametrize("under", ["afile/work", "afile"])
def test_features_work_dir_under_a_file_is_refused_before_any_work(tmp_path, under):
    (tmp_path / "afile").write_text("")
    line = one_error_line(run("features", "--data", tmp_path / "missing", "--texts", tmp_path / "texts.csv",
                              "--work-dir", tmp_path / under, "--out", tmp_path / "out"))
    assert "cannot write --work-dir" in line and "afile is a file, not a folder" in line, line


# ------------------------------------------------------------------ refusals name the problem and the fix
def test_comparing_an_item_graph_with_a_user_graph_says_so(data_dir, graph_dir, tmp_path):
    # was "graphs of different sizes: a is (60, 60), b is (100, 100)"
    res = run("build-graph", "--data", data_dir, "--kind", "user-cooccur", "--out", tmp_path / "u", "--quiet")
    assert res.exit_code == 0, res.output
    line = one_error_line(run("inspect", graph_dir, "--compare", tmp_path / "u" / "user-cooccur"))
    assert (f"--compare {tmp_path / 'u' / 'user-cooccur'} is a user graph and {graph_dir} an item graph: "
            "compare item graphs with item graphs") in line, line
    line = one_error_line(run("inspect", tmp_path / "u" / "user-cooccur", "--compare", graph_dir))
    assert "is a item graph" not in line and "compare user graphs with user graphs" in line, line


def test_a_graph_of_a_kind_the_model_cannot_use_names_the_fix(data_dir, graph_dir, tmp_path):
    # an exported model graph given to mmgef: the refusal said what, not how to get a usable one
    import scipy.sparse as sp

    from graphrec.data import Dataset
    from graphrec.graphs.store import GraphRecord, load_graph, save_graph

    ds = Dataset.load(data_dir)
    g, _ = load_graph(graph_dir, dataset=ds)
    model_graph = tmp_path / "model-graph"
    save_graph(model_graph, sp.csr_matrix(g), GraphRecord.for_dataset(ds, kind="model", weighting="learned",
                                                                      options={"model": "freedom", "view": "item"}))
    line = one_error_line(run("train", "mmgef", "--data", data_dir, "--graph", model_graph, "--epochs", "1",
                              "--device", "cpu", "--quiet", "--out", tmp_path / "run"))
    assert "is a 'model' graph exported from a trained run (graphrec export-graph)" in line, line
    assert line.endswith("build one with graphrec build-graph --kind knn or --kind cooccur, or drop --graph"), line
    assert not (tmp_path / "run").exists()


def test_plot_modality_attention_of_a_missing_run_says_there_is_no_run(tmp_path):
    # was "runs/nothere/attention.npz not found: only GMMF and MARN runs export modality weights"
    line = one_error_line(run("plot-modality-attention", tmp_path / "nothere", "--out", tmp_path / "a.png"))
    assert f"{tmp_path / 'nothere'} is not a graphrec run directory (no record.json)" in line, line
    assert "attention.npz" not in line and not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("protocol", ["papers", "hidden"])
def test_a_cold_start_that_leaves_no_training_split_is_refused(data_dir, tmp_path, protocol):
    """--cold-start 0.995 of 60 items makes all 60 cold: train and build-graph refuse it in
    one line (training used to end in a ZeroDivisionError traceback)."""
    expected = "error: cold-start fraction 0.995 makes 60 of 60 items cold and leaves no training interaction"
    cold = ["--cold-start", "0.995", "--cold-protocol", protocol]
    line = one_error_line(run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--device", "cpu",
                              "--threads", "1", "--quiet", "--out", tmp_path / "run", *cold))
    assert line.startswith(expected), line
    line = one_error_line(run("build-graph", "--data", data_dir, "--kind", "cooccur", "--out", tmp_path / "g", *cold))
    assert line.startswith(expected), line


def test_a_diverged_training_is_one_line_naming_both_fixes(tmp_path):
    """VBPR on features of ~1e30: the loss becomes inf/NaN in the first epoch. Used to be a
    FloatingPointError traceback; now one line naming --lr and the feature scale."""
    ds = synthetic_catalogue(n_users=40, n_items=30, n_clusters=2, seed=0)
    ds = ds.replace(item_features={m: x * np.float32(1e30) for m, x in ds.item_features.items()})
    ds.save(tmp_path / "huge")
    line = one_error_line(run("train", "vbpr", "--data", tmp_path / "huge", "--epochs", "2", "--threads", "1",
                              "--device", "cpu", "--quiet", "--out", tmp_path / "run"))
    assert "at epoch 1: lower --lr, or check the scale of the input features (the largest |feature| is" in line, line
    assert "Traceback" not in line


def test_training_diverged_is_still_a_floating_point_error():
    from graphrec.errors import GraphrecError, TrainingDiverged

    assert issubclass(TrainingDiverged, FloatingPointError) and issubclass(TrainingDiverged, GraphrecError)


@pytest.mark.parametrize(
    "option, message",
    [
        (("--batch-size", "0"), "error: --batch-size must be at least 1, got 0"),
        (("--metric", "foo@x"), "error: --metric 'foo@x' must look like recall@20"),
        (("--negatives", "x"), "error: --negatives must be one of all, warm, got 'x'"),
        (("--lr-decay", "2"), "error: --lr-decay must be in (0, 1], got 2.0"),
        (("--select-on", "x"), "error: --select-on must be one of all, warm, cold, got 'x'"),
        (("--eval-every", "0"), "error: --eval-every must be at least 1, got 0"),
        (("--valid-users", "0"), "error: --valid-users must be at least 1, got 0 (leave it unset to validate every user)"),
    ],
)
def test_training_option_errors_name_the_option(data_dir, tmp_path, option, message):
    """A bad training option is named by its flag, not by TrainConfig's field."""
    line = one_error_line(run("train", "lightgcn", "--data", data_dir, "--device", "cpu", "--out", tmp_path / "r",
                              *option))
    assert line == message, line


def test_a_negative_prepare_seed_names_the_flag(tmp_path):
    """It said `seed must be an integer >= 0`, and only once the source was read."""
    line = one_error_line(run("prepare", "--format", "mmrec", tmp_path / "missing", tmp_path / "out", "--seed", "-5"))
    assert line == "error: --seed must be at least 0, got -5", line
