"""Interrupt and resume (graphrec.train.state): Ctrl-C keeps the best state so far as a
run directory marked interrupted, without reading the test split, and resuming it gives
exactly the numbers of the uninterrupted run, wherever the interrupt fell."""

from __future__ import annotations

import importlib
import os
import signal

import pytest
import torch

import graphrec.train.state as state_module
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError
from graphrec.models.coldstart import ColdItemRecommender
from graphrec.models.lightgcn import LightGCN
from graphrec.models.smore import SMORE
from graphrec.train import TrainConfig, build_model, evaluate_model, load_record, load_state, reevaluate, run_training
from graphrec.train.state import RESUME, RunInterrupted

fit_module = importlib.import_module("graphrec.train.fit")  # graphrec.train.fit is also the function
# six epochs, validated every second one, a decaying learning rate: every piece of state
# the loop carries (optimizer, schedule, best score, patience, generators) matters
CONFIG = dict(epochs=6, eval_every=2, lr=0.02, lr_decay=0.5, lr_decay_every=2, batch_size=256, patience=2,
              ks=(20,), progress=False, seed=3)
PARAMS = {"lightgcn": {"embedding_dim": 8}, "smore": {"embedding_dim": 8, "dropout": 0.3, "num_layers": 1}}


@pytest.fixture(scope="module")
def ds():
    return synthetic_catalogue(n_users=120, n_items=80, n_clusters=4, seed=0)


@pytest.fixture(scope="module")
def data_dir(ds, tmp_path_factory):
    return ds.save(tmp_path_factory.mktemp("resume") / "data")


@pytest.fixture(scope="module")
def uninterrupted(ds, data_dir, tmp_path_factory):
    """The run each interrupted-then-resumed run must reproduce, per model."""
    runs = {}
    for model, params in PARAMS.items():
        out = tmp_path_factory.mktemp("full") / model
        runs[model], _ = run_training(ds, model, params, TrainConfig(**CONFIG), out=out, data_path=data_dir)
        runs[model]["_out"] = out
    return runs


class Interrupt:
    """Raise KeyboardInterrupt once, at ``epoch``: at its start, after ``batch`` training
    steps, during its validation, or during the final test."""

    def __init__(self, monkeypatch, model_cls, epoch, where="start", batch=2):
        self.epoch, self.where, self.batch, self.fired = epoch, where, batch, False
        self.current, self.steps = 0, 0
        real_start, real_loss, real_evaluate = model_cls.start_epoch, model_cls.loss, fit_module.evaluate_model

        def start_epoch(model, epoch):
            self.current, self.steps = epoch, 0
            self._maybe("start")
            return real_start(model, epoch)

        def step(model, *args):
            self.steps += 1
            if self.steps > self.batch:
                self._maybe("batch")
            return real_loss(model, *args)

        def evaluate(model, dataset, split, *args, **kw):
            self._maybe("test" if split == "test" else "valid")
            return real_evaluate(model, dataset, split, *args, **kw)

        monkeypatch.setattr(model_cls, "start_epoch", start_epoch)
        monkeypatch.setattr(model_cls, "loss", step)
        monkeypatch.setattr(fit_module, "evaluate_model", evaluate)

    def _maybe(self, where):
        if not self.fired and where == self.where and (where == "test" or self.current == self.epoch):
            self.fired = True
            raise KeyboardInterrupt


def _same_numbers(a, b):
    assert b["test"] == a["test"]
    assert (b["best_epoch"], b["best_valid"], b["stopped_early"]) == (a["best_epoch"], a["best_valid"], a["stopped_early"])
    strip = lambda h: [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in h]  # noqa: E731
    assert strip(b["history"]) == strip(a["history"])


@pytest.mark.parametrize(
    "model, epoch, where",
    [
        ("lightgcn", 4, "start"),  # between epochs 3 and 4
        ("lightgcn", 3, "batch"),  # in the middle of epoch 3: its partial updates are discarded
        ("lightgcn", 4, "valid"),  # during the validation of epoch 4
        ("lightgcn", 6, "test"),  # during the final test: the last epoch is trained again
        ("smore", 3, "batch"),  # the model's own generator (dropout masks) is kept too
    ],
)
def test_resumed_run_gives_the_numbers_of_the_uninterrupted_one(ds, data_dir, uninterrupted, tmp_path, monkeypatch,
                                                                 model, epoch, where):
    out = tmp_path / "run"
    cls = {"lightgcn": LightGCN, "smore": SMORE}[model]
    with monkeypatch.context() as m:
        interrupt = Interrupt(m, cls, epoch, where)
        with pytest.raises(RunInterrupted) as info:
            run_training(ds, model, PARAMS[model], TrainConfig(**CONFIG), out=out, data_path=data_dir)
        assert interrupt.fired
    kept = load_record(out)
    completed = epoch - 1 if where != "test" else len(uninterrupted[model]["history"]) - 1
    assert (kept["status"], kept["epochs_completed"], info.value.epoch) == ("interrupted", completed, completed)
    record, _ = run_training(ds, model, PARAMS[model], TrainConfig(**CONFIG), out=out, data_path=data_dir, resume=True)
    _same_numbers(uninterrupted[model], record)
    on_disk = load_record(out)
    assert on_disk["status"] == "finished" and on_disk["resumed_after"] == [completed]
    _same_numbers(uninterrupted[model], on_disk)
    # resume.pt goes with the interrupt (graphs/: those the model was built over, SMORE's kNN graphs)
    assert sorted(p.name for p in out.iterdir()) == [*(["graphs"] if model == "smore" else []), "model.pt", "record.json"]
    full = load_state(uninterrupted[model]["_out"])
    assert all(torch.equal(v, full[k]) for k, v in load_state(out, record=on_disk).items())  # the same weights


def test_interrupted_twice(ds, data_dir, uninterrupted, tmp_path, monkeypatch):
    out = tmp_path / "run"
    for epoch in (2, 5):
        with monkeypatch.context() as m:
            Interrupt(m, LightGCN, epoch, "batch")
            with pytest.raises(RunInterrupted):
                run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir,
                             resume=out.exists())
    record, _ = run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir,
                             resume=True)
    _same_numbers(uninterrupted["lightgcn"], record)
    assert record["resumed_after"] == [1, 4]


def test_the_interrupted_run_directory(ds, data_dir, tmp_path, monkeypatch):
    """The best validated state, bound to the record like a finished run's; history and
    epoch reached; no test metrics, and the test split never read."""
    out = tmp_path / "run"
    splits = []
    evaluate = fit_module.evaluate_model
    monkeypatch.setattr(fit_module, "evaluate_model",
                        lambda model, dataset, split, *a, **k: splits.append(split) or evaluate(model, dataset, split, *a, **k))
    config = TrainConfig(**dict(CONFIG, eval_every=1, patience=10))
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 5, "batch")
        with pytest.raises(RunInterrupted, match=rf"after 4 of 6 epochs: the best state so far \(epoch \d\) is kept in {out}"):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=out, data_path=data_dir)
    assert "test" not in splits
    record = load_record(out)
    assert record["test"] is None and len(record["history"]) == 4
    scores = [h["valid"]["recall@20"] for h in record["history"]]
    assert record["best_epoch"] == scores.index(max(scores)) + 1
    assert record["resume"]["file"] == RESUME and record["resume"]["command"] is None  # not started by the CLI
    # model.pt: verified against the record, and it is the best epoch's state
    model = build_model("lightgcn", ds, record["model_params"])
    model.load_state_dict(load_state(out, record=record))
    assert evaluate(model, ds, "valid", config, "cpu")["all"] == record["best_valid"]
    with pytest.raises(ConfigError, match=r"interrupted after 4 of 6 epochs, so it has no test metrics .*resume it with"):
        reevaluate(out)
    # a state file that is not this run's is refused
    torch.save({"epoch": 1}, out / RESUME)
    with pytest.raises(DataError, match="resume.pt is not the state this run kept"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=out, data_path=data_dir, resume=True)


def test_interrupt_before_any_validation(ds, data_dir, uninterrupted, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 1, "batch")
        with pytest.raises(RunInterrupted, match="after 0 of 6 epochs: the state reached is kept"):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir)
    record = load_record(out)
    assert (record["epochs_completed"], record["best_epoch"], record["history"]) == (0, 0, [])
    record, _ = run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir,
                             resume=True)
    _same_numbers(uninterrupted["lightgcn"], record)


def test_without_a_run_directory_an_interrupt_keeps_nothing_on_disk_and_hands_over_the_model(ds, monkeypatch,
                                                                                               tmp_path):
    from graphrec.train import TrainingInterrupted

    monkeypatch.chdir(tmp_path)
    Interrupt(monkeypatch, LightGCN, 2, "batch")
    with pytest.raises(TrainingInterrupted) as info:  # a KeyboardInterrupt
        run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG))
    assert isinstance(info.value.model, LightGCN) and info.value.epoch == 2
    assert not list(tmp_path.iterdir())


def test_what_cannot_be_resumed(ds, data_dir, uninterrupted, tmp_path, monkeypatch):
    config = TrainConfig(**CONFIG)
    with pytest.raises(ConfigError, match="does not exist, so there is no interrupted run to continue"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=tmp_path / "none", resume=True)
    with pytest.raises(ConfigError, match="pass --out DIR, without --overwrite"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, resume=True)
    finished = tmp_path / "finished"
    run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**dict(CONFIG, epochs=1)), out=finished)
    with pytest.raises(ConfigError, match="finished, there is nothing to continue"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=finished, resume=True)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 3, "start")
        with pytest.raises(RunInterrupted):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=out, data_path=data_dir)
    with pytest.raises(ConfigError, match="pass --out DIR, without --overwrite"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=out, resume=True, overwrite=True)
    # the same call again (a notebook cell re-run) is pointed at resume, not only at overwrite
    with pytest.raises(ConfigError, match=r"holds an interrupted run: --resume \(Python: resume=True\) continues it"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], config, out=out, data_path=data_dir)
    for kwargs, expected in [
        (dict(model_name="mf"), "model is 'mf' here but 'lightgcn'"),
        (dict(params={"embedding_dim": 16}), "embedding_dim is 16 here but 8"),
        (dict(config=TrainConfig(**dict(CONFIG, lr=0.01))), "lr is 0.01 here but 0.02"),
        (dict(config=TrainConfig(**dict(CONFIG, epochs=9))), "epochs is 9 here but 6"),
    ]:
        args = dict(dataset=ds, model_name="lightgcn", params=PARAMS["lightgcn"], config=config)
        args.update(kwargs)
        with pytest.raises(ConfigError, match=f"--resume: {expected}.* in the interrupted run {out}: resume with the "
                                              "options it was started with, or pass --overwrite instead"):
            run_training(**args, out=out, resume=True)
    # other data (re-prepared): the same command would fail again, so it is not offered
    other = synthetic_catalogue(n_users=50, n_items=30, n_clusters=2, seed=1)
    with pytest.raises(ConfigError) as e:
        run_training(other, "lightgcn", PARAMS["lightgcn"], config, out=out, resume=True)
    assert str(e.value) == (f"--resume: the dataset at {data_dir} changed since the interrupted run {out} started "
                            "(the dataset's fingerprint differs: re-prepared or edited?): restore the dataset it was "
                            "started on, or start a new run (--overwrite instead of --resume, or another --out)")
    assert load_record(out)["status"] == "interrupted"  # refusals change nothing
    # progress bars may differ
    record, _ = run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**dict(CONFIG, progress=True)), out=out,
                             resume=True)
    _same_numbers(uninterrupted["lightgcn"], record)


def test_a_run_interrupted_before_an_option_existed_resumes_at_its_default(ds, data_dir, uninterrupted, tmp_path,
                                                                           monkeypatch):
    """A record written before a training option or hyper-parameter was added lacks it:
    the run resumes when the option is at its default, and not with another value."""
    import json

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 3, "start")
        with pytest.raises(RunInterrupted):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir)
    record = json.loads((out / "record.json").read_text())
    # as an older graphrec wrote it (the checkpoint binding holds the hyper-parameters too)
    del record["train_config"]["negatives"], record["model_params"]["cold_path"]
    del record["checkpoint"]["model_params"]["cold_path"]
    (out / "record.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="--resume: negatives is 'warm' here but 'all' in the interrupted run"):
        run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**dict(CONFIG, negatives="warm")), out=out,
                     resume=True)
    resumed, _ = run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, resume=True)
    _same_numbers(uninterrupted["lightgcn"], resumed)


@pytest.fixture()
def terminal_sigint():
    """SIGINT handled as in a terminal, whatever the test runner inherited (a background
    job of a non-interactive shell starts with SIGINT ignored); put back afterwards."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.mark.skipif(os.name != "posix", reason="sends itself SIGINT")
def test_a_second_ctrl_c_during_the_save_waits_for_it(ds, data_dir, tmp_path, monkeypatch, terminal_sigint):
    out = tmp_path / "run"
    sha256 = state_module.file_sha256

    def interrupted_again(path):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C while resume.pt is being bound to the record
        return sha256(path)

    monkeypatch.setattr(state_module, "file_sha256", interrupted_again)
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 3, "batch")
        with pytest.raises(RunInterrupted):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary left
    record = load_record(out)
    assert record["status"] == "interrupted" and record["epochs_completed"] == 2
    load_state(out, record=record)


def test_an_interrupt_that_breaks_the_save_leaves_the_earlier_state(ds, data_dir, tmp_path, monkeypatch):
    """Were the save itself broken (here: by an exception inside it), nothing is
    half-written: the run directory of the earlier interrupt stays as it was."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 2, "batch")
        with pytest.raises(RunInterrupted):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        Interrupt(m, LightGCN, 4, "batch")
        m.setattr(state_module, "checkpoint_entry", broken)
        with pytest.raises(KeyboardInterrupt):
            run_training(ds, "lightgcn", PARAMS["lightgcn"], TrainConfig(**CONFIG), out=out, data_path=data_dir,
                         resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_older_run_resumes_with_the_cold_path_it_trained(ds, data_dir, tmp_path, monkeypatch):
    """A run interrupted before the cold-item path followed the model's modalities (its
    record has no record_version; the path fused every modality) resumes with that path,
    gives the numbers of the uninterrupted run and keeps its record version."""
    import json

    both = {"embedding_dim": 8, "modalities": "image", "cold_path": "content", "cold_modalities": "image,text"}
    full, _ = run_training(ds, "vbpr", both, TrainConfig(**CONFIG), out=tmp_path / "full", data_path=data_dir)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        Interrupt(m, ColdItemRecommender, 3, "start")
        with pytest.raises(RunInterrupted):
            run_training(ds, "vbpr", both, TrainConfig(**CONFIG), out=out, data_path=data_dir)
    record = json.loads((out / "record.json").read_text())
    assert record.pop("record_version") == 2
    for params in (record["model_params"], record["checkpoint"]["model_params"]):
        params["cold_modalities"] = None  # as an older graphrec wrote it: unset meant every modality
    (out / "record.json").write_text(json.dumps(record))
    resumed, model = run_training(ds, "vbpr", dict(both, cold_modalities=None), TrainConfig(**CONFIG), out=out,
                                  resume=True)
    assert model.cold_modalities == ("image", "text")
    _same_numbers(full, resumed)
    assert "record_version" in resumed and resumed["record_version"] == 1
