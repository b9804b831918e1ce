"""Every CLI command, through typer's runner: outputs, run records, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("cli", "synthetic", n_users=150, n_items=90, n_clusters=5, seed=0)


@pytest.mark.parametrize(
    "command",
    [["prepare"], ["info"], ["train", "lightgcn"], ["train", "mmgef"], ["evaluate"], ["demo"], ["build-graph"], ["inspect"], ["export-graph"]],
)
def test_help_has_an_example(command):
    res = run(*command, "--help")
    assert res.exit_code == 0
    assert "Example" in res.output


def _commands(command, path=()):
    """Every command under ``command`` (a click group), with its path."""
    subs = getattr(command, "commands", None)
    if subs is None:
        yield path, command
        return
    for name, sub in subs.items():
        yield from _commands(sub, (*path, name))


def test_the_list_of_commands_reflows_each_summary():
    """`graphrec --help` broke "evaluate"'s and "demo"'s summaries where their docstrings'
    lines broke ("a ranking run's top-k" / "metrics, ..."): each summary is the first
    paragraph of the command's help on one line."""
    import typer

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        if name == "train":
            continue
        first = " ".join((command.help or "").split("\n\n")[0].split())
        assert command.short_help == first and "\n" not in command.short_help, name
    res = runner.invoke(app, ["--help"])
    assert "a ranking run's top-k metrics, or a CTR run's AUC" in " ".join(res.output.replace("│", " ").split())


def test_overwrite_and_quiet_are_one_switch_everywhere():
    """build-graph, export-graph, prepare, ... offered --overwrite/--no-overwrite while train,
    recommend and evaluate offered --overwrite alone: the flags every command shares are
    single switches (a --no-X twin is kept where a flag is on by default, --no-symmetric)."""
    import typer

    commands = list(_commands(typer.main.get_command(app)))
    flags = [(path, p) for path, c in commands for p in c.params
             if getattr(p, "is_flag", False) and p.name in ("overwrite", "quiet", "drop_trailing_items")]
    assert len({" ".join(path) for path, p in flags if p.name == "overwrite"}) >= 12
    twins = [(" ".join(path), p.opts, p.secondary_opts) for path, p in flags if p.secondary_opts]
    assert not twins, twins


def test_the_cli_starts_without_torch_until_a_command_needs_it():
    """`graphrec --help`, `info` and `prepare` took 4 s to import torch and every model
    (build-graph imported torch.distributed, train built one command per registered model
    when the CLI started): torch comes with the commands that use it, `graphrec train`
    builds its commands when first used."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from typer.main import get_command\n"
            "from graphrec.cli import app\n"
            "group = get_command(app)\n"
            "torch = lambda: any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
            "print(torch(), group.commands['train'].get_short_help_str(200), torch())\n"
            "print('lightgcn' in group.commands['train'].commands, torch())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["False Train a model: graphrec train lightgcn --data DIR (graphrec models lists them) False",
                   "True True"]
    res = run("train", "nosuch")
    assert res.exit_code == 1 and "No such command 'nosuch'" in res.output


def test_every_help_text_is_printed_as_written():
    """Options state their defaults in brackets ("[both]", "[all]"): rich's help reads
    "[word]" as a style tag and dropped them. Every command's --help prints every bracket
    of its options' help texts."""
    import re

    import typer

    from graphrec.cli._common import GraphrecCommand

    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 25 and all(isinstance(c, GraphrecCommand) for _, c in commands)
    seen = 0
    for path, command in commands:
        wanted = {b for p in command.params for b in re.findall(r"\[[a-z][^\]]*\]", getattr(p, "help", None) or "")}
        if not wanted:
            continue
        res = runner.invoke(app, [*path, "--help"], terminal_width=400)
        assert res.exit_code == 0, (path, res.output)
        text = " ".join(res.output.replace("│", " ").split())
        missing = [b for b in wanted if b not in text]
        assert not missing, (path, missing)
        seen += len(wanted)
    assert seen > 20  # build-graph's [both], [cosine], [papers], the models' [all], ...


def test_info(data_dir):
    res = run("info", data_dir)
    assert res.exit_code == 0, res.output
    assert "users" in res.output and "150" in res.output and "image:32" in res.output


def test_train_then_evaluate_reproduces_the_test_metrics(data_dir, tmp_path):
    out = tmp_path / "run"
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "3", "--dim", "8",
              "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "recall@20" in res.output and "valid@" in res.output and "test" in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["model"] == "lightgcn" and record["model_params"]["embedding_dim"] == 8
    assert len(record["history"]) == 3
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert f"{record['test']['all']['recall@20']:.4f}" in line


def test_evaluate_takes_threads_and_quiet(data_dir, tmp_path, monkeypatch):
    """evaluate always drew its progress bars and ran on torch's thread count; it takes
    --quiet and --threads as train, tune and recommend do (same helper, same checks).
    (Its progress in a log, the test runner's stderr: a line per batch with
    $GRAPHREC_PROGRESS_SECONDS=0.)"""
    import torch

    out = tmp_path / "run"
    assert run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8",
               "--device", "cpu", "--out", out, "--quiet").exit_code == 0
    monkeypatch.setenv("GRAPHREC_PROGRESS_SECONDS", "0")
    loud = run("evaluate", out, "--device", "cpu")
    assert loud.exit_code == 0 and "evaluate valid" in loud.output
    before = torch.get_num_threads()
    try:
        quiet = run("evaluate", out, "--device", "cpu", "--quiet", "--threads", "1")
        assert quiet.exit_code == 0, quiet.output
        assert "evaluate valid" not in quiet.output and "recall@20" in quiet.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    bad = run("evaluate", out, "--device", "cpu", "--threads", "0")
    assert bad.exit_code == 1 and bad.output.strip() == "error: --threads must be at least 1, got 0: omit it for torch's choice"


def test_train_with_cold_start_reports_warm_and_cold(data_dir, tmp_path):
    """The hidden protocol keeps warm items in valid/test: three groups are reported."""
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--cold-start", "0.2",
              "--cold-protocol", "hidden", "--device", "cpu", "--out", tmp_path / "run", "--quiet")
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "test-warm" in res.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["dataset"]["transforms"]["cold_start_protocol"] == "hidden"
    # the split is printed by train and evaluate alike (it was in record.json only), and
    # evaluate names the protocol its figures used and the users behind each group
    stats = record["dataset"]["stats"]
    split = (f"cold-start split: 0.2 of the items (hidden protocol, seed 0), {stats['cold_items']} cold items; "
             f"interactions train {stats['train_interactions']:,} / valid {stats['valid_interactions']:,} / "
             f"test {stats['test_interactions']:,}")
    assert split in res.output.splitlines()
    again = run("evaluate", tmp_path / "run", "--device", "cpu", "--quiet", "--protocol", "mmrec")
    assert again.exit_code == 0 and split in again.output.splitlines()
    users = record["test"]["cold"]["users"]
    assert f"lightgcn on synthetic (mmrec protocol): users valid all " in again.output
    assert f"test cold {users}" in again.output


def test_train_with_the_papers_cold_start_reports_cold_items_only(data_dir, tmp_path):
    """The default protocol (the papers'): valid and test hold the cold items only; the
    record names the protocol and evaluate rebuilds the same split."""
    out = tmp_path / "run"
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--cold-start", "0.2",
              "--negatives", "warm", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "test-warm" not in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["dataset"]["transforms"] == {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"}
    assert record["train_config"]["negatives"] == "warm"
    assert set(record["test"]) == {"all", "cold"}
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    res = run("train", "lightgcn", "--data", data_dir, "--cold-start", "0.2", "--select-on", "warm",
              "--device", "cpu", "--out", tmp_path / "warm", "--quiet")
    assert res.exit_code == 1 and "validation holds cold items only" in res.output
    assert not (tmp_path / "warm").exists()


def test_cold_seed_keeps_one_split_while_seed_varies_the_training(data_dir, tmp_path):
    """--seed drew the cold items and the training together: every seed was another split
    (LATTICE keeps one split and varies the run). --cold-seed fixes the split."""
    records = {}
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--cold-start", "0.2",
                  "--seed", str(seed), "--cold-seed", "0", "--device", "cpu", "--out", out, "--quiet")
        assert res.exit_code == 0, res.output
        records[seed] = json.loads((out / "record.json").read_text())
    assert records[0]["dataset"]["fingerprint"] == records[1]["dataset"]["fingerprint"]  # one split
    assert records[1]["dataset"]["transforms"]["cold_start_seed"] == 0 and records[1]["train_config"]["seed"] == 1
    assert records[0]["test"] != records[1]["test"]  # two trainings
    res = run("evaluate", tmp_path / "s1", "--device", "cpu")  # the split is rebuilt with the cold seed
    assert res.exit_code == 0, res.output
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "1", "--dim", "8", "--cold-seed", "3",
              "--device", "cpu", "--out", tmp_path / "warm", "--quiet")
    assert res.exit_code == 0 and "note: --cold-seed 3 has no effect without --cold-start" in res.output


def test_prepare_movielens_with_random_split(shared_data, tmp_path):
    out = tmp_path / "ml"
    res = run("prepare", "--format", "movielens", shared_data / "ml100k" / "ratings.csv", out)
    assert res.exit_code == 0, res.output
    ds = Dataset.load(out)
    assert ds.n_users == 943 and ds.n_items == 1682
    assert ds.train.nnz + ds.valid.nnz + ds.test.nnz == 100_000
    assert "random" in ds.meta["split"]


def test_prepare_mmrec_keeps_the_given_split(shared_data, tmp_path):
    out = tmp_path / "lfm"
    res = run("prepare", "--format", "mmrec", shared_data / "lfm2k", out, "--feature", "text=all-MiniLM-L6-v2.npy")
    assert res.exit_code == 0, res.output
    ds = Dataset.load(out)
    assert (ds.train.nnz, ds.valid.nnz, ds.test.nnz) == (44_327, 4_799, 7_219)
    assert ds.item_features["text"].shape == (1425, 384)


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "/nonexistent/dir"], "not a graphrec dataset directory"),
        (["prepare", "--format", "nosuch", ".", "OUT"], "nosuch"),
        (["prepare", "--format", "mmrec", ".", "OUT", "--feature", "broken"], "MODALITY=FILE"),
        (["train", "lightgcn", "--data", "/nonexistent/dir"], "not a graphrec dataset directory"),
        (["evaluate", "/nonexistent/run"], "not a graphrec run directory"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_1(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run(*args)
    assert res.exit_code == 1
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert not (tmp_path / "OUT").exists()


def test_bad_device_is_a_user_error(data_dir):
    res = run("train", "lightgcn", "--data", data_dir, "--device", "cuda:7", "--epochs", "1")
    assert res.exit_code == 1


def test_demo(tmp_path):
    res = run("demo", "--out", tmp_path / "demo", "--epochs", "15", "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    assert "MostPop" in res.output and "LightGCN" in res.output and "MM-GEF" in res.output
    for run_name in ("lightgcn", "mmgef", "lightgcn-cold", "mmgef-cold", "mmgef-coldpath", "cb-cold"):
        assert (tmp_path / "demo" / "runs" / run_name / "record.json").is_file()
    records = {name: json.loads((tmp_path / "demo" / "runs" / name / "record.json").read_text())
               for name in ("lightgcn-cold", "mmgef-cold", "mmgef-coldpath", "cb-cold")}
    n_items = 800
    for rec in records.values():
        assert rec["dataset"]["transforms"] == {"cold_start": 0.2, "cold_start_seed": 0, "cold_start_protocol": "papers"}
        assert set(rec["test"]) == {"all", "cold"}
    # LightGCN ranks the new items no better than chance (20 of 800 items: recall 0.025);
    # MM-GEF reaches them through the content graph
    lg, mm = (records[n]["test"]["cold"]["recall@20"] for n in ("lightgcn-cold", "mmgef-cold"))
    assert lg < 20 / n_items < 2 * 20 / n_items < mm, (lg, mm)
    # the cold-item path makes the new items recommendable: far above MM-GEF without it
    mp = records["mmgef-coldpath"]["test"]["cold"]["recall@20"]
    assert records["mmgef-coldpath"]["model_params"]["cold_path"] == "content"
    assert mp > 2 * mm, (mp, mm)
    assert "new items, recall@20" in res.output and "content-only kNN" in res.output and "cold-item path" in res.output
    assert "what you see: the cold-item path puts new items in the lists" in res.output
    assert Dataset.load(tmp_path / "demo" / "data").n_items == 800


def test_train_mmgef_records_attention_and_reports_cold_items(data_dir, tmp_path):
    out = tmp_path / "mmgef"
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "3", "--dim", "8", "--k", "5",
              "--cold-start", "0.2", "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "test-cold" in res.output and "attention_knn" in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["model"] == "mmgef" and record["model_params"]["k"] == 5
    weights = record["history"][0]["model"]
    assert abs(weights["attention_knn"] + weights["attention_cooccur"] - 1) < 1e-6
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output


def test_train_mmgef_ablation_flags(data_dir, tmp_path):
    res = run("train", "mmgef", "--data", data_dir, "--epochs", "1", "--dim", "8", "--no-cf-graph",
              "--no-attention", "--device", "cpu", "--out", tmp_path / "abl", "--quiet")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "abl" / "record.json").read_text())
    assert record["model_params"]["use_cf_graph"] is False and record["model_params"]["attention"] is False


def test_notes_are_lines_once_each_on_the_main_process(capsys, monkeypatch):
    """A GraphrecNote (what a builder noticed) is one `note:` line per message, though a
    tune's trials build the same graph again; other ranks of --nproc print none; other
    warnings keep Python's handling."""
    import warnings

    from graphrec.cli._common import notes_as_lines
    from graphrec.errors import GraphrecNote

    monkeypatch.delenv("RANK", raising=False)
    with notes_as_lines():
        for _ in range(3):
            warnings.warn("3 rows left empty", GraphrecNote)
        warnings.warn("another", GraphrecNote)
        with pytest.warns(UserWarning, match="plain"):
            warnings.warn("plain", UserWarning)
    assert capsys.readouterr().err.splitlines() == ["note: 3 rows left empty", "note: another"]
    monkeypatch.setenv("RANK", "1")
    with notes_as_lines():
        warnings.warn("3 rows left empty", GraphrecNote)
    assert capsys.readouterr().err == ""


def test_notes_stay_notes_where_a_command_prints_warnings_as_lines(capsys, monkeypatch):
    """evaluate / recommend / prepare print Python warnings as `warning:` lines; a note
    raised there (a rebuilt model's graph) read `warning: ...` and could repeat."""
    import warnings

    from graphrec.cli._common import notes_as_lines, warnings_as_lines
    from graphrec.errors import GraphrecNote

    monkeypatch.delenv("RANK", raising=False)
    with notes_as_lines(), warnings_as_lines():
        for _ in range(2):
            warnings.warn("rows left empty", GraphrecNote)
        warnings.warn("an old run", UserWarning)
    assert capsys.readouterr().err.splitlines() == ["note: rows left empty", "warning: an old run"]


def test_train_valid_users_validates_a_sample_and_evaluate_repeats_it(data_dir, tmp_path):
    out = tmp_path / "run"
    res = run("train", "lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--valid-users", "30",
              "--device", "cpu", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "s/validation of 30 sampled users" in res.output
    record = json.loads((out / "record.json").read_text())
    assert record["train_config"]["valid_users"] == 30 and record["best_valid"]["users"] == 30
    assert record["test"]["all"]["users"] > 30  # the test ranks every user
    res = run("evaluate", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("recall@20"))
    assert line.split()[1] == f"{record['best_valid']['recall@20']:.4f}"  # the same 30 users


def test_arguments_are_named_in_capitals_and_flags_show_no_value_type():
    """Usage lines, help tables and a missing argument's error name the arguments as the
    docs do (SRC, OUT, RUN_DIR), not as the Python parameters (src, run_dir)."""
    usage = next(line for line in run("prepare", "--help").output.splitlines() if "Usage:" in line)
    assert "SRC" in usage and "OUT" in usage and "src" not in usage
    res = run("evaluate")
    assert res.exit_code != 0 and "Missing argument 'RUN_DIR'" in res.output
    # flags take no value: no <bool> beside --quiet, --overwrite or --help (on or off switches neither)
    for args in (("evaluate", "--help"), ("train", "lightgcn", "--help"), ("build-graph", "--help")):
        shown = run(*args).output
        assert "--quiet" in shown and "<bool>" not in shown, args
