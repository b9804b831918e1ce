"""Interrupt and resume: the fit loop's state at an epoch boundary, kept and restored.

When Ctrl-C (or, under ``graphrec train``, SIGTERM) stops a run that writes a run
directory, the best state so far is kept there as a run marked interrupted, and
``graphrec train ... --resume`` (``run_training(..., resume=True)``) continues it to the
numbers an uninterrupted run gives. The same holds for CTR runs (``graphrec train MODEL
--task ctr``, :func:`graphrec.train.ctr.run_ctr` and its fit loop
:func:`graphrec.train.ctr.fit_ctr`), whose extra optimisers (GMMF's generator and
discriminator) are kept under ``optimizers`` and whose shuffling generator is a
``torch.Generator``.

How: given a :class:`StateKeeper`, :func:`graphrec.train.fit` stores in it, at the start
of every epoch, everything the rest of training depends on (:class:`TrainState`): the
weights and Adam's and the learning-rate schedule's state after the epochs completed;
the best validated weights, score and epoch; the validations without improvement; the
history and clocks; and every random generator: Python's, NumPy's global one and the
batch generator, torch's CPU (and CUDA) one, and the ``torch.Generator`` attributes of
the model's modules (e.g. SMORE's dropout masks). An interrupt anywhere in the next
epoch, its validation or the final test loses only that epoch: the kept state is the
one it started from, and a resumed run repeats it exactly. The copy costs about three
times the model's parameters in memory (weights and Adam's two moments); the keeper
holds one copy at a time (:meth:`StateKeeper.renew` releases the old one before making
the new, with SIGINT and SIGTERM held meanwhile), not two.

An interrupted run directory holds

* ``record.json`` with ``"status": "interrupted"``, ``epochs_completed``, the history,
  best epoch and best validation metrics so far, ``"test": null`` (the test split is
  evaluated once, when training ends; ``graphrec evaluate`` refuses an interrupted run)
  and ``resume``: the file name and sha256 of ``resume.pt`` and the command that
  continues the run;
* ``model.pt``: the best validated weights (the weights reached, when no epoch was
  validated yet), bound to the record as a finished run's are
  (:mod:`graphrec.train.record`), so ``recommend`` and ``export-graph`` use them;
* ``resume.pt``: the rest of the state, tensors, numbers and strings only (read with
  ``torch.load(weights_only=True)``).

The run directory is written through :func:`graphrec._atomic.atomic_dir` while SIGINT
and SIGTERM are held (:func:`signals_held`): a second Ctrl-C during the save waits for
it, and nothing is ever half-written. A finished run's record has ``"status":
"finished"`` (records written before interrupts were kept have no status: finished).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import shlex
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from graphrec._atomic import atomic_dir
from graphrec.errors import ConfigError, DataError
from graphrec.train.record import (
    RECORD, WEIGHTS, _jsonable, checkpoint_entry, file_sha256, load_record, load_state, save_tensors,
)

__all__ = [
    "FINISHED",
    "INTERRUPTED",
    "RESUME",
    "RunInterrupted",
    "StateKeeper",
    "TrainState",
    "check_finished",
    "check_resumable",
    "check_same_run",
    "keep_interrupted",
    "load_resume_state",
    "resume_command",
    "sigterm_as_interrupt",
    "signals_held",
]

RESUME = "resume.pt"
FINISHED, INTERRUPTED = "finished", "interrupted"

#: training options that may differ when a run is resumed (they do not change the numbers)
_NOT_COMPARED = ("progress",)


@dataclass(frozen=True)
class TrainState:
    """The fit loop at the start of epoch ``epoch + 1`` (``epoch`` epochs completed)."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    best_epoch: int = 0
    best_score: float = -math.inf
    best_valid: dict[str, Any] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    clock: tuple[float, float, int] = (0.0, 0.0, 0)  # train seconds, validation seconds, validations
    optimizers: dict[str, Any] = field(default_factory=dict)  # further optimisers by name (a GAN's G and D)

    @classmethod
    def capture(
        cls,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        rng: np.random.Generator | torch.Generator,
        *,
        best_epoch: int,
        best_score: float,
        best_valid: dict[str, Any],
        best_state: dict[str, torch.Tensor] | None,
        bad_evals: int,
        history: list[dict[str, Any]],
        clock: tuple[float, float, int],
        optimizers: Mapping[str, torch.optim.Optimizer | None] | None = None,
    ) -> "TrainState":
        """Copy the loop's state (the best weights are not copied: the loop never
        changes a best state it made). ``rng`` is the batch generator (NumPy's or a
        ``torch.Generator``); ``optimizers`` are further optimisers by name."""
        return cls(
            epoch=epoch,
            model={k: v.detach().clone() for k, v in model.state_dict().items()},
            optimizer=copy.deepcopy(optimizer.state_dict()),
            scheduler=None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
            rng=_rng_states(rng, model),
            best_epoch=best_epoch,
            best_score=float(best_score),
            best_valid=best_valid,
            best_state=best_state,
            bad_evals=bad_evals,
            history=list(history),
            clock=tuple(clock),  # type: ignore[arg-type]
            optimizers={name: copy.deepcopy(o.state_dict()) for name, o in (optimizers or {}).items() if o is not None},
        )

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                rng: np.random.Generator | torch.Generator,
                optimizers: Mapping[str, torch.optim.Optimizer | None] | None = None) -> None:
        """Put weights, optimisers, schedule and random generators back as captured."""
        model.load_state_dict(self.model)
        optimizer.load_state_dict(self.optimizer)
        for name, o in (optimizers or {}).items():
            if o is not None:
                o.load_state_dict(self.optimizers[name])
        if scheduler is not None and self.scheduler is not None:
            scheduler.load_state_dict(self.scheduler)
        _set_rng_states(self.rng, rng, model)

    def payload(self) -> dict[str, Any]:
        """What ``resume.pt`` holds: everything but the best weights (``model.pt``)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "best_state"}
        out["model"] = _cpu(self.model)
        out["optimizer"] = _cpu(self.optimizer)
        out["optimizers"] = _cpu(self.optimizers)
        out["clock"] = list(self.clock)
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], best_state: dict[str, torch.Tensor] | None) -> "TrainState":
        values = dict(payload)
        values["clock"] = tuple(values["clock"])
        return cls(**values, best_state=best_state)


class StateKeeper:
    """Holds the fit loop's latest :class:`TrainState` (``state``) for an interrupt to
    keep; made with a saved state, :func:`graphrec.train.fit` resumes from it. The loop
    replaces ``state`` through :meth:`renew`, so an interrupt never finds half of one,
    nor none."""

    def __init__(self, state: TrainState | None = None) -> None:
        self.state = state

    def renew(self, capture: Callable[[], TrainState]) -> None:
        """Replace ``state`` by ``capture()`` with one copy alive at a time: the old state
        is released before the new one is made (holding both doubled the peak: about six
        times the parameters with Adam). SIGINT and SIGTERM are held meanwhile
        (:func:`signals_held`) and raised again once the new state is in place, so an
        interrupt always finds a whole state: the new one."""
        with signals_held() as held:
            self.state = None
            self.state = capture()
        for signum in dict.fromkeys(held):  # delivered now, to the handlers the run had
            signal.raise_signal(signum)


class RunInterrupted(KeyboardInterrupt):
    """Training was interrupted and its state kept in the run directory ``out``; the
    message says where and how to resume."""

    def __init__(self, out: Path, epoch: int, epochs: int, best_epoch: int, command: str | None,
                 taken: Path | None = None) -> None:
        self.out, self.epoch, self.command = out, epoch, command
        best = f"the best state so far (epoch {best_epoch})" if best_epoch else "the state reached"
        how = f"`{command}`" if command else "run_training(..., resume=True) with the same arguments"
        where = f"{out} ({taken} appeared while it trained)" if taken is not None else f"{out}"
        super().__init__(
            f"interrupted after {epoch} of {epochs} epochs: {best} is kept in {where}; resume with {how}"
        )


class TrainingInterrupted(KeyboardInterrupt):
    """A Ctrl-C (or SIGTERM) ended :func:`~graphrec.train.fit` between or within epochs:
    ``model`` is the model it trained, holding its best validated weights (those of
    ``best_epoch``; its last weights when no epoch validated), ``history`` the epochs
    completed. A run with ``out`` is kept on disk instead (:class:`RunInterrupted`)."""

    def __init__(self, model: torch.nn.Module, epoch: int, epochs: int, best_epoch: int,
                 history: list[dict[str, Any]]) -> None:
        self.model, self.epoch, self.best_epoch, self.history = model, epoch, best_epoch, history
        held = (f"holds its best validated weights (epoch {best_epoch})" if best_epoch
                else "holds its last weights (no epoch validated)")
        super().__init__(
            f"interrupted in epoch {epoch} of {epochs}: the model {held}; it is this exception's .model (in a "
            "notebook: sys.last_value.model); run_training(..., out=DIR) keeps a run that resumes"
        )


# ----------------------------------------------------------------------- random generators
def _model_generators(model: torch.nn.Module) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` attributes of the model's modules, by qualified name."""
    found = {}
    for prefix, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f"{prefix}.{attr}" if prefix else attr] = value
    return found


def _rng_states(batches: np.random.Generator | torch.Generator, model: torch.nn.Module) -> dict[str, Any]:
    legacy = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {**legacy, "state": {"key": torch.from_numpy(legacy["state"]["key"].astype(np.int64)),
                                      "pos": int(legacy["state"]["pos"])}},
        "batches": batches.get_state() if isinstance(batches, torch.Generator) else batches.bit_generator.state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "generators": {name: g.get_state() for name, g in _model_generators(model).items()},
    }


def _set_rng_states(states: Mapping[str, Any], batches: np.random.Generator | torch.Generator,
                    model: torch.nn.Module) -> None:
    random.setstate(states["python"])
    legacy = dict(states["numpy"])
    legacy["state"] = {"key": legacy["state"]["key"].numpy().astype(np.uint32), "pos": legacy["state"]["pos"]}
    np.random.set_state(legacy)
    if isinstance(batches, torch.Generator):
        batches.set_state(states["batches"])
    else:
        batches.bit_generator.state = states["batches"]
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    saved = states.get("generators") or {}
    for name, g in _model_generators(model).items():
        if name in saved:
            g.set_state(saved[name])


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (nested dicts, lists, tuples)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


# ----------------------------------------------------------------------- signals
@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Inside, SIGINT and SIGTERM do not interrupt: they are noted in the yielded list
    and dropped at the end (the command ends right after the write they would have
    broken). Signals reach Python only in the main thread: elsewhere a no-op."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM (``kill``, a batch system's time limit) raises
    :class:`KeyboardInterrupt` as Ctrl-C does, so that a stopped run keeps its state.
    Main thread only (a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


# ----------------------------------------------------------------------- saving
def resume_command(command: str | None, out: str | Path) -> str | None:
    """The command that continues a run started by ``command`` (the ``graphrec ...``
    line it was started with, or an earlier resume command) in ``out``: the same line
    without ``--overwrite``, with ``--out out`` (added when it was left to the default,
    replaced when it names another folder: the run may have been copied or moved since)
    and ``--resume``. A line that does not parse is returned as it is."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return command

    def elsewhere(value: str) -> bool:  # read from here, the given --out is another folder
        return Path(value).resolve() != Path(out).resolve()

    argv = [a for a in words if a != "--overwrite"]
    has_out = False
    for i, word in enumerate(argv):
        if word == "--out" and i + 1 < len(argv):
            has_out = True
            if elsewhere(argv[i + 1]):
                argv[i + 1] = str(out)
        elif word.startswith("--out="):
            has_out = True
            if elsewhere(word[len("--out="):]):
                argv[i] = f"--out={out}"
    if not has_out:
        argv += ["--out", str(out)]
    if "--resume" not in argv:
        argv.append("--resume")
    return command if argv == words else shlex.join(argv)


def keep_interrupted(out: str | Path, record: dict[str, Any], state: TrainState, overwrite: bool,
                     claimed: bool = False) -> RunInterrupted:
    """Write ``state`` to ``out`` as a run directory marked interrupted (module doc),
    SIGINT and SIGTERM held until it is written; returns the :class:`RunInterrupted` to
    raise. ``record`` is the run's record without results; it is completed here. Without
    ``overwrite``, an ``out`` that appeared while the run trained (another process) is
    kept: the state is written beside it (``OUT-2``; :func:`graphrec._atomic.atomic_dir`
    with ``fallback``) and the message names that folder. ``claimed``: ``out`` is the
    empty folder claimed for this run (:func:`graphrec._atomic.claimed_dir`)."""
    out = Path(out)
    train, valid, n_valid = state.clock
    command = resume_command(record.get("command"), out)
    record.update(
        status=INTERRUPTED,
        epochs_completed=state.epoch,
        best_epoch=state.best_epoch,
        stopped_early=False,
        best_valid=state.best_valid,
        test=None,
        timings=dict(
            record.get("timings") or {},
            epochs=state.epoch,
            train_seconds=train,
            seconds_per_epoch=train / max(state.epoch, 1),
            eval_seconds_per_pass=valid / max(n_valid, 1),
        ),
        history=state.history,
    )
    weights = state.best_state if state.best_state is not None else state.model
    placed: list[Path] = []
    with signals_held(), atomic_dir(out, overwrite=overwrite, claimed=claimed, fallback=True, placed=placed) as tmp:
        save_tensors(_cpu(weights), tmp / WEIGHTS)
        record["checkpoint"] = checkpoint_entry(tmp / WEIGHTS, record)
        save_tensors(state.payload(), tmp / RESUME)
        record["resume"] = {"file": RESUME, "sha256": file_sha256(tmp / RESUME), "command": command}
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=_jsonable))
    epochs = int((record.get("train_config") or {}).get("epochs", state.epoch))
    if placed[0] != out:  # the recorded command names --out as given; resuming reads it from where the run is
        return RunInterrupted(placed[0], state.epoch, epochs, state.best_epoch,
                              resume_command(record.get("command"), placed[0]), taken=out)
    return RunInterrupted(out, state.epoch, epochs, state.best_epoch, command)


# ----------------------------------------------------------------------- resuming
def open_run_dir(
    out: str | Path | None, overwrite: bool, resume: bool, check_new: Callable[[Any, bool], Any]
) -> dict[str, Any] | None:
    """Before any work: with ``resume``, the record of the interrupted run in ``out``
    (:func:`check_resumable`); otherwise ``check_new(out, overwrite)`` (the caller's
    output check) and ``None``."""
    if resume:
        if out is None or overwrite:
            raise ConfigError("--resume continues the interrupted run in --out: pass --out DIR, without --overwrite")
        return check_resumable(out)
    if out is not None:
        check_new(out, overwrite)
    return None


def check_resumable(out: str | Path) -> dict[str, Any]:
    """The record of the interrupted run in ``out``; a one-line error when there is
    none (``out`` missing, not a run directory, or a finished run)."""
    out = Path(out)
    if not out.exists():
        raise ConfigError(f"--resume: {out} does not exist, so there is no interrupted run to continue: "
                          "drop --resume to start one")
    record = load_record(out)
    if record.get("status", FINISHED) != INTERRUPTED:
        raise ConfigError(f"--resume: the run in {out} finished, there is nothing to continue: drop --resume and "
                          "choose another --out, or pass --overwrite instead to train it again")
    return record


def recorded_resume_command(record: Mapping[str, Any], out: str | Path) -> str | None:
    """The recorded command that resumes an interrupted run, with its ``--out`` made
    ``out`` (the run may have been copied or moved since); None when none was recorded."""
    return resume_command((record.get("resume") or {}).get("command"), out)


def _interrupted_at(record: Mapping[str, Any], run_dir: str | Path) -> tuple[Any, Any, str]:
    """An interrupted run's epochs completed, epochs asked for, and how to resume it (its
    recorded resume command, quoted)."""
    done, epochs = record.get("epochs_completed", "?"), (record.get("train_config") or {}).get("epochs", "?")
    cmd = recorded_resume_command(record, run_dir)
    how = f"`{cmd}`" if cmd else "`graphrec train MODEL ... --out RUN --resume` with the options it was started with"
    return done, epochs, how


def check_finished(record: Mapping[str, Any], run_dir: str | Path) -> None:
    """A one-line error for an interrupted run, which has no test metrics yet: how to
    resume it."""
    if record.get("status", FINISHED) != INTERRUPTED:
        return
    done, epochs, how = _interrupted_at(record, run_dir)
    raise ConfigError(
        f"run {run_dir} was interrupted after {done} of {epochs} epochs, so it has no "
        f"test metrics (the test split is evaluated once, when training ends): resume it with {how}"
    )


def interrupted_run_note(record: Mapping[str, Any], run_dir: str | Path) -> str | None:
    """For a run that was interrupted, what serving it uses (``recommend``, ``export-graph``:
    the best validated weights so far, or the weights reached when no epoch was validated)
    and how to resume it; None for a finished run. A run interrupted before its first
    epoch ended holds untrained weights: a one-line :class:`ConfigError` saying to resume
    it (nothing it would serve was learnt)."""
    if record.get("status", FINISHED) != INTERRUPTED:
        return None
    done, epochs, how = _interrupted_at(record, run_dir)
    if done == 0:
        raise ConfigError(f"run {run_dir} was interrupted before its first epoch ended, so its weights are untrained: "
                          f"resume it with {how}")
    best = record.get("best_epoch")
    weights = (f"the best validated weights so far (epoch {best})" if isinstance(best, int) and best > 0
               else f"the weights after epoch {done} (no epoch was validated yet)")
    return f"run {run_dir} was interrupted after {done} of {epochs} epochs: this uses {weights}; resume it with {how}"


def check_same_run(previous: Mapping[str, Any], out: str | Path, run: Mapping[str, Any],
                   defaults: Mapping[str, Any] | None = None) -> None:
    """A one-line error unless ``run`` (``model``, ``model_params``, ``train_config``,
    ``dataset``'s ``fingerprint`` and ``transforms``, as in a record; for a CTR run,
    ``"task": "ctr"``, ``dataset``'s ``samples_fingerprint`` and ``dataset_fingerprint``
    and ``item_graph``'s ``spec`` and ``options``; the checksums of the stored graphs
    among ``graphs``, for a CTR run ``item_graph``'s ``graphs``) trains what the
    interrupted run ``previous`` trained. ``defaults`` (the model's hyper-parameters and the training
    options at their defaults): a name the interrupted run's record lacks, an option added
    to graphrec since it was written, counts as its default there, so such a run resumes
    after an upgrade unless the option is set to something else."""
    def plain(value: Any) -> Any:  # as read back from JSON
        return json.loads(json.dumps(value, default=_jsonable)) or {}

    def options(record: Mapping[str, Any]) -> dict[str, Any]:
        config = {k: v for k, v in (record.get("train_config") or {}).items() if k not in _NOT_COMPARED}
        data = record.get("dataset") or {}
        found = {"model": record.get("model"), **plain(record.get("model_params")), **plain(config),
                 "cold-start transforms": plain(data.get("transforms")),
                 "the dataset's fingerprint": data.get("fingerprint")}
        # not --nproc: the ranks split each step of --batch-size triples, so any number of
        # processes continues the same training (graphrec.train.fit)
        if record.get("task") == "ctr":  # CTR runs: their samples and item graph
            graph = record.get("item_graph") or {}
            found.update({"the samples' fingerprint": data.get("samples_fingerprint"),
                          "the dataset's fingerprint": data.get("dataset_fingerprint"),
                          "item_graph": graph.get("spec"), "item graph options": plain(graph.get("options"))})
        return found

    now, then = options(run), options(previous)
    then.update({k: v for k, v in plain(dict(defaults or {})).items() if k in now and k not in then})
    for name in [*now, *(k for k in then if k not in now)]:
        if now.get(name, "<unset>") != then.get(name, "<unset>"):
            if name in ("the dataset's fingerprint", "the samples' fingerprint"):
                # the same command would fail the same way: the data changed, not the options
                where = (previous.get("dataset") or {}).get("path")
                what = "dataset" if name == "the dataset's fingerprint" else "CTR samples"
                raise ConfigError(
                    f"--resume: the {what} {'at ' + str(where) + ' ' if where else ''}changed since the interrupted "
                    f"run {out} started ({name} differs: re-prepared or edited?): restore the {what} it was "
                    "started on, or start a new run (--overwrite instead of --resume, or another --out)"
                )
            cmd = recorded_resume_command(previous, out)
            fix = f"`{cmd}`" if cmd else "the options it was started with"
            raise ConfigError(
                f"--resume: {name} is {now.get(name, '<unset>')!r} here but {then.get(name, '<unset>')!r} in the "
                f"interrupted run {out}: resume with {fix}, or pass --overwrite instead of --resume to train anew"
            )
    _check_same_graphs(previous, out, run)


def _stored_graphs(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The stored graphs a record says its run trained with (:func:`graphrec.graphs.store.used_graph`
    entries: a ranking run's ``graphs``, a CTR run's ``item_graph.graphs`` that have a
    ``path``; a graph built by the run itself has none)."""
    if record.get("task") == "ctr":
        found = (record.get("item_graph") or {}).get("graphs") or []
    else:
        found = record.get("graphs") or []
    return [g for g in found if isinstance(g, Mapping) and g.get("path")]


def _check_same_graphs(previous: Mapping[str, Any], out: str | Path, run: Mapping[str, Any]) -> None:
    """A one-line :class:`ConfigError` when a stored graph the interrupted run trained
    with changed since (another checksum at the same path): the resumed epochs would
    propagate over another graph. The paths themselves are options, compared before. An
    interrupted run recorded before runs kept their graphs' checksums is not checked."""
    from graphrec.graphs.store import graph_change, rebuild_as_recorded

    now = {str(g["path"]): g for g in _stored_graphs(run)}
    for before in _stored_graphs(previous):
        current = now.get(str(before["path"]))
        change = None if current is None else graph_change(before, current)
        if change is not None:
            raise ConfigError(
                f"--resume: the graph {before['path']} changed since the interrupted run {out} started ({change}): "
                f"{rebuild_as_recorded(before)} (its recorded recipe), or start a new run (--overwrite instead of "
                "--resume, or another --out)"
            )


def load_resume_state(out: str | Path, record: Mapping[str, Any]) -> TrainState:
    """The :class:`TrainState` kept in the interrupted run ``out`` (``record`` its
    record): ``resume.pt`` and ``model.pt``, each checked against the record's hash."""
    out = Path(out)
    path = out / RESUME
    entry = record.get("resume") or {}
    if not path.is_file():
        raise DataError(f"{path} is missing, so the interrupted run cannot be continued: pass --overwrite instead of "
                        "--resume to train anew")
    if file_sha256(path) != entry.get("sha256"):
        raise DataError(f"{path} is not the state this run kept (its sha256 differs from record.json's): restore "
                        "it, or pass --overwrite instead of --resume to train anew")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{path} is not a graphrec training state ({type(e).__name__}): pass --overwrite "
                        "instead of --resume to train anew") from None
    best = load_state(out, record=record) if payload.get("best_epoch") else None
    return TrainState.from_payload(payload, best)
