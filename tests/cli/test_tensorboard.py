"""`--tensorboard DIR` of `graphrec train` and `graphrec tune`: the history's scalars as
TensorBoard events (read back with TensorBoard's own reader), or one line saying to
install tensorboard, before any work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
NEEDS_TB = "writing TensorBoard events needs the tensorboard package (the tensorboard extra)"


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(saved_catalogue) -> Path:
    return saved_catalogue("tb", "shop", n_users=80, n_items=50, n_clusters=4, seed=6)


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of the TensorBoard run in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def same_series(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    """Same steps, same values up to float32 (TensorBoard stores 32-bit scalars)."""
    return [s for s, _ in got] == [s for s, _ in expected] and [v for _, v in got] == pytest.approx(
        [v for _, v in expected], rel=1e-6)


def test_train_writes_loss_validation_and_learned_weights(data, tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS_TB)
    res = run("train", "mmgef", "--data", data, "--epochs", 3, "--batch-size", 512, "--k", 5, "--device", "cpu",
              "--quiet", "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert res.exit_code == 0, res.output
    history = json.loads((tmp_path / "run" / "record.json").read_text())["history"]
    got = scalars(tmp_path / "tb")
    assert same_series(got["train/loss"], [(r["epoch"], r["loss"]) for r in history])
    assert same_series(got["valid/recall@20"], [(r["epoch"], r["valid"]["recall@20"]) for r in history])
    weights = sorted(history[0]["model"])
    assert weights and all(f"model/{w}" in got for w in weights)
    assert same_series(got[f"model/{weights[0]}"], [(r["epoch"], r["model"][weights[0]]) for r in history])


def test_tune_writes_one_tensorboard_run_per_trial(data, tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS_TB)
    pytest.importorskip("optuna", reason="graphrec tune needs Optuna (the tune extra)")
    res = run("tune", "lightgcn", "--data", data, "--trials", 2, "--storage", f"sqlite:///{tmp_path / 's.db'}",
              "--out", tmp_path / "out", "--epochs", 2, "--batch-size", 512, "--device", "cpu",
              "--tensorboard", tmp_path / "tb")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["trial-0", "trial-1"]
    for n in (0, 1):
        history = json.loads((tmp_path / "out" / "trials" / str(n) / "record.json").read_text())["history"]
        got = scalars(tmp_path / "tb" / f"trial-{n}")
        assert same_series(got["valid/recall@20"], [(r["epoch"], r["valid"]["recall@20"]) for r in history])


def test_tune_with_repeats_writes_one_tensorboard_run_per_seed(data, tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS_TB)
    pytest.importorskip("optuna", reason="graphrec tune needs Optuna (the tune extra)")
    res = run("tune", "lightgcn", "--data", data, "--trials", 1, "--repeats", 2, "--storage",
              f"sqlite:///{tmp_path / 's.db'}", "--out", tmp_path / "out", "--epochs", 2, "--batch-size", 512,
              "--device", "cpu", "--tensorboard", tmp_path / "tb")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["trial-0-seed0", "trial-0-seed1"]
    for seed in (0, 1):
        history = json.loads((tmp_path / "out" / "trials" / "0" / f"seed{seed}" / "record.json").read_text())["history"]
        got = scalars(tmp_path / "tb" / f"trial-0-seed{seed}")
        assert same_series(got["valid/recall@20"], [(r["epoch"], r["valid"]["recall@20"]) for r in history])


def test_without_tensorboard_the_option_is_one_line_before_any_work(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    res = run("train", "lightgcn", "--data", data, "--epochs", 1, "--device", "cpu", "--quiet",
              "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert res.exit_code == 1
    assert res.output.strip() == (
        "error: --tensorboard needs the tensorboard package: pip install tensorboard (or pip install 'graphrec[tensorboard]')")
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_a_tensorboard_folder_that_cannot_be_written_is_refused_first(data, tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS_TB)
    (tmp_path / "file").write_text("not a folder")
    res = run("train", "lightgcn", "--data", data, "--epochs", 1, "--device", "cpu", "--quiet",
              "--out", tmp_path / "run", "--tensorboard", tmp_path / "file" / "tb")
    assert res.exit_code == 1 and res.output.startswith("error: cannot write --tensorboard"), res.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("same_folder", [False, True])
def test_a_resumed_run_writes_the_whole_curve_or_says_where_the_first_part_is(data, tmp_path, monkeypatch,
                                                                              same_folder):
    """--tensorboard on --resume: a new folder gets the epochs trained before the
    interrupt too (from the record), so it holds the whole curve; the first part's own
    folder gets the new epochs, with a note (never silently half a curve)."""
    pytest.importorskip("tensorboard", reason=NEEDS_TB)
    from graphrec.models.lightgcn import LightGCN

    start = LightGCN.start_epoch

    def start_epoch(model, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return start(model, epoch)

    args = ["train", "lightgcn", "--data", data, "--epochs", 4, "--batch-size", 512, "--device", "cpu", "--quiet",
            "--out", tmp_path / "run"]
    with monkeypatch.context() as m:
        m.setattr(LightGCN, "start_epoch", start_epoch)
        assert run(*args, "--tensorboard", tmp_path / "tb1").exit_code == 130
    second = tmp_path / ("tb1" if same_folder else "tb2")
    res = run(*args, "--resume", "--tensorboard", second)
    assert res.exit_code == 0, res.output
    history = json.loads((tmp_path / "run" / "record.json").read_text())["history"]
    got = scalars(second)
    note = (f"note: --tensorboard {second} already holds events: the resumed run adds epochs 3 on (the first 2 are "
            "in the run's record.json and the earlier events)")
    assert (note in res.output) == same_folder, res.output
    assert same_series(got["train/loss"], [(r["epoch"], r["loss"]) for r in history])  # epochs 1-4, each once
