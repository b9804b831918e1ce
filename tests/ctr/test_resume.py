"""Interrupt and resume of CTR training (graphrec.train.state through run_ctr / fit_ctr
and `graphrec train MODEL --task ctr`): Ctrl-C keeps the best state so far as a run
directory marked interrupted, without reading the test split, and resuming it gives
exactly the numbers of the uninterrupted run, wherever the interrupt fell."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

import graphrec.train.ctr as ctr_train
from graphrec.cli import app
from graphrec.errors import ConfigError
from graphrec.models.ctr import CTRModel
from graphrec.models.ctr.testing import contract_ctr_data
from graphrec.train.ctr import CTRConfig, run_ctr
from graphrec.train.record import load_record, load_state
from graphrec.train.state import RESUME, RunInterrupted

# four epochs and a patience of 2: the optimisers (GMMF's three), the best state, the
# epochs without improvement and every generator matter
CONFIG = dict(epochs=4, batch_size=32, lr=1e-2, gan_lr=1e-3, gan_start_epoch=1, patience=2, seed=3, progress=False)
PARAMS = {"din": {"id_dim": 8, "modality_dim": 8, "hidden": (16,)}, "gmmf": {}}
GRAPH = {"din": "cooccur", "gmmf": None}


@pytest.fixture(scope="module")
def data():
    return contract_ctr_data()


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """The run each interrupted-then-resumed run must reproduce, per model."""
    runs = {}
    for model, params in PARAMS.items():
        out = tmp_path_factory.mktemp("ctr-full") / model
        runs[model], _ = run_ctr(data, model, params, CTRConfig(**CONFIG), item_graph=GRAPH[model], out=out)
        runs[model]["_out"] = out
    return runs


class Interrupt:
    """Raise KeyboardInterrupt once: in epoch ``epoch`` after ``batch`` training steps
    (``batch=0``: at its first step), during its validation, or during the final test;
    also notes every split evaluated."""

    def __init__(self, monkeypatch, n_batches, epoch, where="batch", batch=0):
        self.n_batches, self.epoch, self.where, self.batch = n_batches, epoch, where, batch
        self.fired, self.steps, self.valids, self.splits = False, 0, 0, []
        real_progress, real_evaluate = CTRModel.set_progress, ctr_train.evaluate_ctr

        def set_progress(model, progress):  # once per training step, before it
            epoch, done = divmod(self.steps, self.n_batches)
            self.steps += 1
            if done == self.batch and epoch + 1 == self.epoch:
                self._maybe("batch")
            return real_progress(model, progress)

        def evaluate(model, data, split, *args, **kw):
            self.splits.append(split)
            if split == "valid":
                self.valids += 1
                if self.valids == self.epoch:
                    self._maybe("valid")
            else:
                self._maybe("test")
            return real_evaluate(model, data, split, *args, **kw)

        monkeypatch.setattr(CTRModel, "set_progress", set_progress)  # DIN's and GMMF's (not MARN's own)
        monkeypatch.setattr(ctr_train, "evaluate_ctr", evaluate)

    def _maybe(self, where):
        if not self.fired and where == self.where:
            self.fired = True
            raise KeyboardInterrupt


def _n_batches(data):
    return -(-len(data.samples["train"].users) // CONFIG["batch_size"])


def _same_numbers(a, b):
    assert b["test"] == a["test"]
    assert (b["best_epoch"], b["best_valid"], b["stopped_early"]) == (a["best_epoch"], a["best_valid"], a["stopped_early"])
    strip = lambda h: [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in h]  # noqa: E731
    assert strip(b["history"]) == strip(a["history"])


@pytest.mark.parametrize(
    "model, epoch, where, batch",
    [
        ("din", 3, "batch", 0),  # between epochs 2 and 3
        ("din", 2, "batch", 3),  # in the middle of epoch 2: its partial updates are discarded
        ("gmmf", 3, "batch", 2),  # GAN epochs: the generator's and discriminator's Adam states are kept
        ("gmmf", 2, "valid", 0),  # during the validation of epoch 2
        ("din", None, "test", 0),  # during the final test: the last epoch is trained again
    ],
)
def test_resumed_ctr_run_gives_the_numbers_of_the_uninterrupted_one(data, uninterrupted, tmp_path, monkeypatch,
                                                                     model, epoch, where, batch):
    out = tmp_path / "run"
    full = uninterrupted[model]
    with monkeypatch.context() as m:
        interrupt = Interrupt(m, _n_batches(data), epoch, where, batch)
        with pytest.raises(RunInterrupted) as info:
            run_ctr(data, model, PARAMS[model], CTRConfig(**CONFIG), item_graph=GRAPH[model], out=out)
        assert interrupt.fired
        assert "test" not in interrupt.splits or where == "test"  # the test split is never read for a kept run
    completed = epoch - 1 if where != "test" else len(full["history"]) - 1
    kept = load_record(out)
    assert (kept["status"], kept["epochs_completed"], info.value.epoch) == ("interrupted", completed, completed)
    assert kept["test"] is None and kept["task"] == "ctr" and len(kept["history"]) == completed
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "record.json", RESUME]  # no attention.npz: no test
    load_state(out, record=kept)  # model.pt is bound to the record
    record, _ = run_ctr(data, model, PARAMS[model], CTRConfig(**CONFIG), item_graph=GRAPH[model], out=out, resume=True)
    _same_numbers(full, record)
    on_disk = load_record(out)
    assert on_disk["status"] == "finished" and on_disk["resumed_after"] == [completed]
    _same_numbers(full, on_disk)
    names = sorted(p.name for p in out.iterdir())
    assert RESUME not in names and names == sorted(p.name for p in full["_out"].iterdir())
    a, b = load_state(full["_out"]), load_state(out)
    assert all((a[k] == b[k]).all() for k in a)


def test_resume_refuses_a_finished_run_and_other_options(data, uninterrupted, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="finished, there is nothing to continue"):
        run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), item_graph="cooccur", out=uninterrupted["din"]["_out"],
                resume=True)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, _n_batches(data), 2)
        with pytest.raises(RunInterrupted):
            run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), item_graph="cooccur", out=out)
    with pytest.raises(ConfigError, match=r"--resume: lr is 0\.05 here but 0\.01 in the interrupted run"):
        run_ctr(data, "din", PARAMS["din"], CTRConfig(**dict(CONFIG, lr=0.05)), item_graph="cooccur", out=out,
                resume=True)
    with pytest.raises(ConfigError, match="--resume: item_graph is 'none' here but 'cooccur'"):
        run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), out=out, resume=True)
    with pytest.raises(ConfigError, match="--resume: model is 'gmmf' here but 'din'"):
        run_ctr(data, "gmmf", {}, CTRConfig(**CONFIG), item_graph="cooccur", out=out, resume=True)
    assert load_record(out)["status"] == "interrupted"  # refusals leave it as it was


def test_resume_refuses_a_stored_item_graph_rebuilt_since_the_interrupt(data, tmp_path, monkeypatch):
    """--item-graph DIR: the interrupted run's record holds the graph's checksum; a graph
    rebuilt differently at that path is refused, the one it used resumes."""
    from graphrec.graphs import GraphSpec, build_item_graph, save_graph

    def store(weighting):
        built = build_item_graph(data.dataset, GraphSpec(kind="knn", k=5, weighting=weighting))
        save_graph(tmp_path / "knn", built.graph, built.record, overwrite=True)

    store("cosine")
    out, graph = tmp_path / "run", str(tmp_path / "knn")
    with monkeypatch.context() as m:
        Interrupt(m, _n_batches(data), 2)
        with pytest.raises(RunInterrupted):
            run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), item_graph=graph, out=out)
    store("binary")
    changed = (rf"--resume: the graph {graph} changed since the interrupted run {out} started "
               r"\(checksum .*; weighting 'binary', was 'cosine'\): rebuild it with")
    with pytest.raises(ConfigError, match=changed):
        run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), item_graph=graph, out=out, resume=True)
    store("cosine")
    record, _ = run_ctr(data, "din", PARAMS["din"], CTRConfig(**CONFIG), item_graph=graph, out=out, resume=True)
    assert record["status"] == "finished" and record["item_graph"]["graphs"][0]["path"] == graph


# ---------------------------------------------------------------------- the command line
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def lines(res):
    err = res.stderr if hasattr(res, "stderr") else res.output
    return [l for l in err.strip().splitlines() if l.strip()]


@pytest.fixture(scope="module")
def samples(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr-interrupt") / "samples"
    data.save(path)
    return path


def train_args(samples):
    return ["train", "din", "--data", samples, "--task", "ctr", "--epochs", "3", "--batch-size", "32", "--lr", "0.01",
            "--device", "cpu", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def cli_uninterrupted(samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctr-interrupt-full") / "run"
    res = run(*train_args(samples), "--out", out)
    assert res.exit_code == 0, res.output
    return json.loads((out / "record.json").read_text())


def test_ctrl_c_keeps_the_ctr_run_and_the_printed_command_resumes_it(samples, data, cli_uninterrupted, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = train_args(samples) + ["--out", "run"]
    with monkeypatch.context() as m:
        Interrupt(m, _n_batches(data), 3)
        res = run(*args)
    assert res.exit_code == 130, res.output
    (line,) = lines(res)
    assert line.startswith("interrupted after 2 of 3 epochs: the best state so far (epoch ") and \
        "is kept in run; resume with `graphrec train din" in line, line
    command = line.split("`")[1]
    assert shlex.split(command) == ["graphrec", *map(str, args), "--resume"]
    assert json.loads((tmp_path / "run" / "record.json").read_text())["status"] == "interrupted"
    # its modality weights (of the test split) are refused with the same command
    res = run("plot-modality-attention", "run", "--out", "fig.png")
    assert res.exit_code == 1 and len(lines(res)) == 1, res.output
    assert "was interrupted after 2 of 3 epochs" in lines(res)[0] and f"resume it with `{command}`" in lines(res)[0]
    res = run(*shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    assert "run saved to run" in res.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["test"] == cli_uninterrupted["test"] and record["best_valid"] == cli_uninterrupted["best_valid"]
    assert record["status"] == "finished" and record["resumed_after"] == [2]
    assert record["command"] == shlex.join(["graphrec", *map(str, args)])


@pytest.mark.parametrize(
    "setup, extra, expected",
    [
        (None, ["--resume"], "does not exist, so there is no interrupted run to continue: drop --resume"),
        ("finished", ["--resume"], "finished, there is nothing to continue: drop --resume"),
        ("interrupted", ["--resume", "--overwrite"], "pass --out DIR, without --overwrite"),
        ("interrupted", ["--resume", "--lr", "0.05"], "--resume: lr is 0.05 here but 0.01 in the interrupted run"),
        ("interrupted", ["--resume", "--weight-decay", "0.001"],
         "--resume: weight_decay is 0.001 here but 0.0 in the interrupted run"),
        ("interrupted", ["--resume", "--dim", "4"], "--resume: id_dim is 4 here but"),
    ],
)
def test_what_ctr_resume_refuses(samples, data, tmp_path, monkeypatch, setup, extra, expected):
    out = tmp_path / "run"
    if setup == "finished":
        assert run(*train_args(samples), "--epochs", "1", "--out", out).exit_code == 0
    elif setup == "interrupted":
        with monkeypatch.context() as m:
            Interrupt(m, _n_batches(data), 2)
            assert run(*train_args(samples), "--out", out).exit_code == 130
    res = run(*train_args(samples), "--out", out, *extra)
    assert res.exit_code == 1, res.output
    (line,) = lines(res)
    assert line.startswith("error: ") and expected in line, line
    if setup == "interrupted" and "here but" in expected:  # names the command that works
        assert f"resume with `graphrec train din --data {samples}" in line and line.endswith(
            "or pass --overwrite instead of --resume to train anew"), line


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_keeps_the_ctr_state_like_ctrl_c(samples, data, tmp_path):
    """A real `kill` (SIGTERM) of a real `graphrec train din --task ctr` process in epoch 2."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import graphrec.train.ctr as ctr_train
        evaluate, seen = ctr_train.evaluate_ctr, []
        def spy(model, data, split, *a, **kw):
            seen.append(split)
            if len(seen) == 2:  # the validation of epoch 2
                os.kill(os.getpid(), signal.SIGTERM)
            return evaluate(model, data, split, *a, **kw)
        ctr_train.evaluate_ctr = spy
        from graphrec.cli import main
        sys.argv = ["graphrec", *sys.argv[1:]]
        main()
        """
    )
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", script, *map(str, train_args(samples)), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted after 1 of 3 epochs: the best state so far (epoch 1) is "
                                               f"kept in {out}; resume with `graphrec train din"), proc.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_completed"] == 1 and record["test"] is None
