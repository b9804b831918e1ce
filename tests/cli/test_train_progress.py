"""What `graphrec train` shows while it trains: progress bars on a terminal; where stderr
is a file or a pipe (`2>&1 | tee log`, nohup, CI; typer's runner too), no bars but a start
line and one plain line per validated epoch, whose numbers are the run record's;
`--quiet`: neither. The same for the ranking and the CTR commands."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.testing import recorded_bars
from graphrec.train.record import load_record

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()

#: an epoch line: epoch, epochs, loss, metric, score, best score, best epoch, seconds
EPOCH = re.compile(r"epoch (\d+)/(\d+)  loss (\S+)  valid (\S+) (\S+)  best (\S+) \(epoch (\d+)\)  "
                   r"(\S+) s/epoch  (\S+) s/validation")


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("progress", "synthetic", n_users=100, n_items=60, n_clusters=4, seed=0)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr-progress") / "samples"
    contract_ctr_data().save(path)
    return path


def _train(*args, quiet: bool = False):
    res = runner.invoke(app, ["train", *map(str, args), "--device", "cpu", "--threads", "1"]
                        + (["--quiet"] if quiet else []))
    assert res.exit_code == 0, res.output
    return res


def _epoch_lines(stderr: str) -> list[re.Match]:
    """The epoch lines of ``stderr``; every line that starts with ``epoch`` must be one."""
    lines = [line for line in stderr.splitlines() if line.startswith("epoch ")]
    matches = [EPOCH.fullmatch(line) for line in lines]
    assert all(matches), lines
    return matches  # type: ignore[return-value]


def _check_lines(lines: list[re.Match], history: list[dict], epochs: int, metric: str) -> None:
    """Each line says its validated epoch's numbers as the record's history has them."""
    validated = [row for row in history if "valid" in row]
    assert [int(m[1]) for m in lines] == [row["epoch"] for row in validated]
    best, best_epoch = -1.0, 0
    for m, row in zip(lines, validated):
        score = row["valid"][metric]
        if score > best:
            best, best_epoch = score, row["epoch"]
        assert int(m[2]) == epochs and m[4] == metric
        assert (m[3], m[5], m[6], int(m[7])) == (f"{row['loss']:.4f}", f"{score:.4f}", f"{best:.4f}", best_epoch)
        assert m[8] == f"{row['train_seconds']:.2f}"


def test_a_ranking_run_off_a_terminal_prints_a_line_per_validated_epoch(data_dir, tmp_path):
    """Off a terminal the bars were carriage-return noise in the log (or nothing until the
    end): a start line, then a line per epoch, on stderr; the results table is unchanged."""
    res = _train("lightgcn", "--data", data_dir, "--epochs", "3", "--dim", "8", "--out", tmp_path / "run")
    record = load_record(tmp_path / "run")
    lines = _epoch_lines(res.stderr)
    assert len(lines) == 3
    _check_lines(lines, record["history"], 3, "recall@20")
    for m, row in zip(lines, record["history"]):
        assert m[9] == f"{row['eval_seconds']:.2f}"
    assert res.stderr.splitlines()[0] == "training lightgcn on synthetic (cpu): at most 3 epochs, validated every epoch"
    assert not any(line.startswith("built ") for line in res.stderr.splitlines())  # a build under 2 s
    assert "epoch 1/3" not in res.stdout and "\r" not in res.stderr  # no bar drawn
    assert "valid@" in res.stdout and "run saved to" in res.stdout


def test_a_long_build_gets_a_line_before_the_epochs(data_dir, tmp_path, monkeypatch):
    """A build of 2 s or more (kNN searches at scale) would be a silence in the log: it gets
    a line with its seconds, the record's build_seconds; a short one none (above)."""
    import graphrec.train.run as run_module

    monkeypatch.setattr(run_module, "_BUILD_LINE_SECONDS", 0.0)
    res = _train("mmgef", "--data", data_dir, "--epochs", "1", "--dim", "8", "--out", tmp_path / "run")
    lines = res.stderr.splitlines()
    seconds = load_record(tmp_path / "run")["timings"]["build_seconds"]
    assert lines[1] == f"built mmgef in {seconds:.1f} s (its item graphs and inputs)"
    assert lines[2].startswith("epoch 1/1  ")


def test_eval_every_prints_the_validated_epochs_only(data_dir, tmp_path):
    res = _train("lightgcn", "--data", data_dir, "--epochs", "5", "--eval-every", "2", "--dim", "8",
                 "--out", tmp_path / "run")
    record = load_record(tmp_path / "run")
    lines = _epoch_lines(res.stderr)
    assert [int(m[1]) for m in lines] == [2, 4, 5]  # every 2nd epoch and the last
    _check_lines(lines, record["history"], 5, "recall@20")
    assert "validated every 2 epochs and the last" in res.stderr.splitlines()[0]


def test_the_line_names_the_items_selection_is_on(data_dir, tmp_path):
    res = _train("lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--cold-start", "0.2",
                 "--cold-protocol", "hidden", "--select-on", "warm", "--metric", "ndcg@10", "--out", tmp_path / "run")
    record = load_record(tmp_path / "run")
    lines = [line for line in res.stderr.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    for line, row in zip(lines, record["history"]):
        assert f"valid ndcg@10 of the warm items {row['valid_groups']['warm']['ndcg@10']:.4f}  best" in line


def test_quiet_prints_no_progress_at_all(data_dir, tmp_path, monkeypatch):
    res = _train("lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--out", tmp_path / "run", quiet=True)
    assert res.stderr == "" and "valid@" in res.stdout
    # on a terminal too: no bar
    bars = recorded_bars(monkeypatch)
    monkeypatch.setattr("graphrec.cli._common.stderr_is_terminal", lambda: True)
    res = _train("lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--out", tmp_path / "tty", quiet=True)
    assert bars == [] and res.stderr == ""


def test_a_terminal_gets_bars_and_no_lines(data_dir, tmp_path, monkeypatch):
    bars = recorded_bars(monkeypatch)
    monkeypatch.setattr("graphrec.cli._common.stderr_is_terminal", lambda: True)
    res = _train("lightgcn", "--data", data_dir, "--epochs", "2", "--dim", "8", "--out", tmp_path / "run")
    descs = [b.get("desc") for b in bars]
    assert "train" in descs and "evaluate valid" in descs
    assert not any(line.startswith(("epoch ", "training ")) for line in res.stderr.splitlines()), res.stderr


def test_a_model_without_parameters_says_it_only_evaluates(data_dir, tmp_path):
    res = _train("cb", "--data", data_dir, "--out", tmp_path / "run")
    assert res.stderr.splitlines() == ["evaluating cb on synthetic (cpu): no parameters to train, validated once"]


def test_a_ctr_run_off_a_terminal_prints_a_line_per_epoch(samples, tmp_path):
    res = _train("din", "--data", samples, "--epochs", "3", "--patience", "10", "--out", tmp_path / "run")
    record = load_record(tmp_path / "run")
    lines = _epoch_lines(res.stderr)
    assert len(lines) == 3
    _check_lines(lines, record["history"], 3, "auc")
    assert res.stderr.splitlines()[0] == "training din on synthetic (cpu): at most 3 epochs, validated every epoch"
    assert "valid@" in res.stdout and "\r" not in res.stderr


def test_a_quiet_ctr_run_prints_no_progress(samples, tmp_path, monkeypatch):
    res = _train("din", "--data", samples, "--epochs", "2", "--out", tmp_path / "run", quiet=True)
    assert res.stderr == "" and "valid@" in res.stdout
    bars = recorded_bars(monkeypatch)
    monkeypatch.setattr("graphrec.cli._common.stderr_is_terminal", lambda: True)
    res = _train("din", "--data", samples, "--epochs", "2", "--out", tmp_path / "tty")
    assert "train DIN" in [b.get("desc") for b in bars] and not [line for line in res.stderr.splitlines() if line.startswith("epoch ")]


def test_quiet_help_says_what_it_silences():
    for model in ("lightgcn", "din"):
        res = runner.invoke(app, ["train", model, "--help"], terminal_width=400)
        text = " ".join(res.output.replace("│", " ").split())
        assert "neither the progress bars (stderr a terminal) nor the line per validated epoch" in text, text


def test_the_start_line_of_a_resumed_run_names_the_epochs_done():
    """A resumed run's start line says after which epoch it goes on (the interrupted
    record's epochs_completed); without lines (a terminal, --quiet) nothing is written."""
    from graphrec.cli._common import TrainingProgress

    lines: list[str] = []
    shown = TrainingProgress(bars=False, log=lines.append)
    shown.start("lightgcn", "shop", "cpu", 50, 5, {"epochs_completed": 3})
    shown.start("din", "shop", "cpu", 10)
    TrainingProgress(bars=True, log=None).start("lightgcn", "shop", "cpu", 50, interrupted={"epochs_completed": 3})
    assert lines == ["resuming lightgcn after epoch 3 on shop (cpu): at most 50 epochs, validated every 5 epochs "
                     "and the last", "training din on shop (cpu): at most 10 epochs, validated every epoch"]
