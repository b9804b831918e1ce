"""Hyper-parameter search with Optuna: ``graphrec tune MODEL --data DIR --trials N
--storage sqlite:///study.db``.

A study lives in an Optuna RDB storage (a SQLite file by default), so it is resumable
(a second call with the same storage and study adds trials to it) and can be shared by
several processes at once. Each trial samples the model's search space
(:mod:`graphrec.train.space`), trains with the generic fit loop, reports the validation
metric after every validation (the median pruner stops trials whose curve falls below
the median of the earlier trials at the same epoch) and is scored by its best
validation metric. With ``repeats`` R > 1 a trial trains seeds ``seed`` .. ``seed + R - 1``
and is scored by the MEAN of their best validation metrics: a steadier choice among
near-equal configurations than one seed's draw (only the first seed's curve is reported
to the pruner, so every trial is pruned on the same seed). The test split is never
looked at while searching: when the calls' trials are done, the best trial's weights
(each seed's) are evaluated on test ONCE and written as a normal run directory. With
``grid`` the sampler is Optuna's grid sampler over every value of each searched
parameter (:func:`graphrec.train.space.grid_values`): each point runs once, over as many
calls and processes as it takes.

The output folder ``OUT`` holds::

    tune.json                    the study's storage, name and id (an OUT belongs to one study), each call's command line
    trials/<n>/record.json       every trial's run record (validation only; "tune": state, value, params;
                                 "command": the graphrec train line that trains it again)
    trials/<n>/model.pt          the best validated weights of a completed trial
    trials/<n>/seed<s>/          the same, per seed, when each trial trains ``repeats`` > 1 seeds
    trials.csv                   one row per trial: trial, state, parameters, valid_<metric> (and seed<s>)
    best/                        the best trial as a run directory (record.json with test metrics, model.pt)
    optimization_history.png     validation metric per trial, best so far
    param_importances.png        Optuna's parameter importances (PED-ANOVA)

A study graphrec creates gets a random id (its ``graphrec_study_id`` attribute) that
``tune.json``, every trial record and the best record carry: a study deleted and created
again under the same name and storage is another study (its trial numbers start at 0
again), so the folder of the earlier one is refused rather than mixed in or its
``best/`` kept.

The study is bound to what makes its trials comparable (model, dataset fingerprint,
training options, search space, seed, stored as the study's ``graphrec`` attribute): a
call with other settings is refused rather than mixed in. Killing a call leaves the
database consistent (every write is a transaction); its running trial stays ``RUNNING``
until the next call on this machine marks it ``FAIL`` (its process is gone; trials of
other machines are failed by Optuna's heartbeat after :data:`GRACE_SECONDS`, and a trial
killed before it named its process by any call :data:`UNSTARTED_SECONDS` after it started).
A Ctrl-C marks the running trial ``FAIL`` at once, unless Optuna had already stored its
result. A trial's record is written before Optuna stores the result, so a trial failed
this way (or by the next call) that had written its record as complete gets its
record rewritten as failed, without weights: the records, ``trials.csv`` and the
database agree.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import math
import os
import shutil
import socket
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import graphrec
from graphrec._atomic import atomic_dir, atomic_file, check_output, check_output_folder
from graphrec._checks import is_int, renamed
from graphrec._device import resolve_device
from graphrec.data import Dataset
from graphrec.errors import ConfigError, DataError
from graphrec.train.config import TrainConfig
from graphrec.train.fit import selected_label
from graphrec.train.record import RECORD, load_record, save_run
from graphrec.train.space import SearchSpace, as_suggested, grid_values, search_space, split_options, suggest
from graphrec.train.registry import ModelEntry, get_model, registered_models

__all__ = ["TuneResult", "tune", "require_optuna", "storage_url", "TUNE_FILE", "GRACE_SECONDS"]

TUNE_FILE = "tune.json"
#: the study's user attribute holding the id graphrec gave it when it created it
STUDY_ID = "graphrec_study_id"
TRIALS = "trials"
#: one row per trial: its state, parameters, value and (with repeats) each seed's value
TRIALS_TABLE = "trials.csv"
BEST = "best"
#: Optuna heartbeat of running trials, and the silence after which another machine's
#: trial counts as dead
HEARTBEAT_SECONDS = 60
GRACE_SECONDS = 300
#: a running trial that has recorded no process this long after it started was killed
#: before its first line (which comes within milliseconds, or after a wait for the database)
UNSTARTED_SECONDS = GRACE_SECONDS
#: how long a process waits for the SQLite file while another one writes
SQLITE_TIMEOUT_SECONDS = 120
#: TPE samples this many random configurations (after the model's defaults) first
STARTUP_TRIALS = 10
#: trials a call adds when --trials is not given (without --grid)
DEFAULT_TRIALS = 20


def require_optuna() -> Any:
    """The ``optuna`` module, or a one-line :class:`ConfigError` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("graphrec tune needs Optuna: pip install 'graphrec[tune]' (or pip install optuna)") from None
    return optuna


@dataclass
class TuneResult:
    """What :func:`tune` returns: the study after this call."""

    study: str
    storage: str
    out: Path
    trials_run: int
    states: dict[str, int]
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_run: Path | None = None
    test: dict[str, dict[str, float]] | None = None
    test_evaluated: bool = False
    #: with ``repeats`` > 1: the best trial's seeds, each ``{"seed", "value", "best_epoch", "test"}``
    repeat_tests: list[dict[str, Any]] = field(default_factory=list)
    #: with ``report_seeds`` > 0: the best configuration trained again on seeds no trial
    #: used, each ``{"seed", "best_epoch", "valid", "test", "run_dir"}``
    report_tests: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_trials(self) -> int:
        return sum(self.states.values())

    @property
    def test_mean(self) -> dict[str, dict[str, float]] | None:
        """The mean test metrics over the best trial's seeds (``repeats`` > 1), else None."""
        return mean_metrics([r["test"] for r in self.repeat_tests]) if self.repeat_tests else None

    @property
    def test_sd(self) -> dict[str, dict[str, float]] | None:
        """The sample standard deviation of the test metrics over the best trial's seeds
        (``repeats`` > 1), else None."""
        return sd_metrics([r["test"] for r in self.repeat_tests]) if len(self.repeat_tests) > 1 else None

    @property
    def report_mean(self) -> dict[str, dict[str, float]] | None:
        """The mean test metrics of the best configuration over the report seeds, else None."""
        return mean_metrics([r["test"] for r in self.report_tests]) if self.report_tests else None

    @property
    def report_sd(self) -> dict[str, dict[str, float]] | None:
        """Their sample standard deviation (two report seeds or more), else None."""
        return sd_metrics([r["test"] for r in self.report_tests]) if len(self.report_tests) > 1 else None


def mean_metrics(runs: list[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """``{group: {metric: mean}}`` over runs' ``{group: {metric: value}}`` (the groups and
    metrics of the first run)."""
    return {g: {k: sum(float(r[g][k]) for r in runs) / len(runs) for k in m} for g, m in runs[0].items()}


def sd_metrics(runs: list[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """``{group: {metric: sample standard deviation}}`` (n - 1 in the denominator) over
    two or more runs' ``{group: {metric: value}}``, beside :func:`mean_metrics`: the seeds'
    spread, whose standard error of the mean is ``sd / sqrt(len(runs))``."""
    means = mean_metrics(runs)
    n = len(runs)
    return {g: {k: math.sqrt(sum((float(r[g][k]) - mu) ** 2 for r in runs) / (n - 1)) for k, mu in m.items()}
            for g, m in means.items()}


def storage_url(storage: str) -> str:
    """``storage`` checked and made independent of the working directory (a relative
    SQLite path becomes absolute); one-line :class:`ConfigError` for what cannot be a
    resumable study database."""
    if "://" not in storage:
        raise ConfigError(f"--storage {storage!r} is not a database URL: use e.g. sqlite:///study.db")
    if not storage.startswith("sqlite:"):
        return storage
    prefix = "sqlite:///"
    path = storage[len(prefix):] if storage.startswith(prefix) else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigError(
            f"--storage {storage!r}: give a SQLite file, e.g. sqlite:///study.db (a study must outlive the call)"
        )
    db = Path(path)
    if db.is_dir():
        raise ConfigError(f"--storage {storage}: {db} is a folder, not a SQLite file")
    if not db.exists():
        check_output_folder(db.absolute().parent, "--storage")
    return prefix + str(db.absolute())


@renamed(data="data_path", model="model_name")
def tune(
    data_path: str | os.PathLike,
    model_name: str,
    trials: int | None,
    storage: str,
    *,
    study_name: str | None = None,
    space: Mapping[str, Any] | str | None = None,
    space_source: str = "--space",
    config: TrainConfig | None = None,
    timeout: float | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    pruning: bool | None = None,
    prune_startup: int = 5,
    prune_warmup: int = 10,
    tensorboard: str | os.PathLike | None = None,
    plots: bool = True,
    log: Callable[[str], None] | None = None,
    cold_start: float = 0.0,
    cold_protocol: str = "papers",
    repeats: int = 1,
    grid: bool = False,
    command: str | None = None,
    report_seeds: int = 0,
    cold_seed: int | None = None,
) -> TuneResult:
    """Run ``trials`` more trials of the study ``study_name`` (default ``MODEL-DATASET``)
    of model ``model_name`` on the dataset folder ``data_path`` (``graphrec tune MODEL
    --data DIR``) in ``storage`` (module doc) and write ``out`` (default ``runs/tune-STUDY``).

    ``space``: the YAML overrides of the model's search space, or the name of one of its
    reference grids (``"mmrec"``; :func:`graphrec.train.space.search_space`).
    ``config``: the training options every trial shares (``graphrec train``'s defaults
    when None; ``progress`` is turned off and ``seed`` set to ``seed``). ``timeout``:
    seconds after which no new trial starts. ``pruning``: the median pruner, which
    starts pruning after ``prune_startup`` completed trials and from epoch
    ``prune_warmup`` on; None (the default): on, except in a ``grid`` study, whose points
    all train to their early stop unless ``pruning`` is True. ``tensorboard``: a folder
    for TensorBoard scalars, one run per trial. ``log``: receives one line per finished
    trial. ``cold_start``: make this fraction of the items cold under ``cold_protocol``
    (seed ``cold_seed``, default ``seed``), as ``graphrec train --cold-start`` does: every trial trains on the same
    split, the runs record it, and the default study name ends in ``-coldF`` (``-splitS`` for a ``cold_seed``
    other than ``seed``: the split of a ``graphrec train --cold-seed S`` run); select on the cold items with
    ``config.select_on`` (under the ``papers`` protocol validation holds cold items only).
    ``repeats``: seeds each trial trains (``seed``, ``seed + 1``, ...; the cold-start split
    stays the one of ``seed``); the trial's value is the mean of their best validation
    metrics, and the best trial's every seed is tested (``TuneResult.repeat_tests``), its
    best-validated seed written as ``OUT/best``. ``grid``: run every point of the space
    (each searched parameter a list of values or a stepped range) once, with Optuna's grid
    sampler, instead of TPE; ``trials`` None: every point not yet run (otherwise at most
    ``trials`` of them), and 20 trials without ``grid``. ``command``: the ``graphrec
    tune ...`` line of this call, recorded in ``tune.json`` (``calls``: each call's
    command line and working directory) with the working directory. ``report_seeds`` N > 0:
    once the study's best is known, its configuration trains again, tested, on the N seeds
    after those the trials used (``seed + repeats``, ...), none of which chose anything:
    an estimate of its test metrics without the selection's luck, in ``OUT/report/seed<s>``
    (``TuneResult.report_tests``; kept, and trained again only for another best).
    """
    if not isinstance(data_path, (str, os.PathLike)):  # a Dataset: trials reload it from disk, each in its process
        raise ConfigError(f"tune takes the dataset's folder (data_path), got a {type(data_path).__name__}: save it "
                          "with Dataset.save(DIR) and pass DIR")
    optuna = require_optuna()

    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if not isinstance(report_seeds, int) or isinstance(report_seeds, bool) or report_seeds < 0:
        raise ConfigError(f"--report-seeds must be an integer >= 0, got {report_seeds!r}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be positive seconds, got {timeout}")
    if prune_startup < 0 or prune_warmup < 0:
        raise ConfigError("--prune-startup and --prune-warmup must be at least 0")
    if cold_seed is not None and not (is_int(cold_seed) and cold_seed >= 0):
        raise ConfigError(f"--cold-seed must be an integer >= 0, got {cold_seed!r}")
    from graphrec.train.fit import check_selection
    from graphrec.train.run import check_cold_start, cold_start_transforms, prepare_dataset

    check_cold_start(cold_start, cold_protocol)
    device = str(resolve_device(device))  # "auto" chosen once: every trial and the record name the device
    if pruning is None:  # a grid is a table of every point: none is cut short unless asked
        pruning = not grid
    entry = tunable_model(model_name)
    searched = search_space(model_name, space, space_source)
    points = grid_values(searched) if grid else None  # a space without a finite grid fails here
    url = storage_url(storage)
    base = dict((config or TrainConfig(**dict(entry.train_defaults))).to_dict(), progress=False, seed=seed)
    config = TrainConfig.from_dict(base)
    writer_factory = _tensorboard_factory(tensorboard)  # before any work: a missing package is one line
    split_seed = seed if cold_seed is None else cold_seed  # the cold-start split's
    transforms = cold_start_transforms(cold_start, split_seed, cold_protocol)
    study_name = study_name or default_study_name(model_name, data_path, cold_start, cold_protocol, seed, cold_seed)
    if out is None:
        _check_study_folder(study_name)
        out = Path("runs") / f"tune-{study_name}"
    out = Path(out)
    _check_out(out, study_name, url)  # before the data are read
    source = Dataset.load(data_path)
    dataset = prepare_dataset(source, cold_start, split_seed, cold_protocol)
    check_selection(dataset, config)  # a wrong --select-on fails here, not in every trial
    if entry.check is not None:  # before any study or folder exists
        if grid:
            _check_grid(entry, searched, points, dataset)
        else:
            _check_space(entry, searched, dataset)
    setup = {
        "model": model_name,
        "dataset": {"name": source.name, "fingerprint": source.fingerprint()},
        "train_config": {k: v for k, v in config.to_dict().items() if k != "progress"},
        "space": searched.to_dict(),
        "seed": seed,
        **({"transforms": transforms} if transforms else {}),  # absent without: older studies stay valid
        **({"repeats": repeats} if repeats > 1 else {}),
        **({"sampler": "grid"} if grid else {}),
    }
    log = log or (lambda line: None)
    running: list[Any] = []  # the trials this call started (Optuna's Trial objects), in order

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # graphrec prints its own line per trial
    out_existed, new_study = out.exists(), False
    try:
        with _lock(url, out):
            rdb = _open_storage(optuna, url)
            new_study = study_name not in optuna.get_all_study_names(storage=rdb)
            study = _load_study(optuna, rdb, study_name, url, setup, pruning, prune_startup, prune_warmup, seed, points)
            study_id = _study_id(study)
            _check_out_study(out, study_name, url, study_id, new_study)
            failed = _fail_dead_trials(optuna, study, rdb)
            queued = _queue_lost_points(optuna, study, set(points)) if grid else []
            requeued = _queue_defaults(optuna, study, _default_point(entry, searched, config)) if not grid else None
            calls = _earlier_calls(out / TUNE_FILE)
            if command is not None:
                calls.append({"command": command, "cwd": os.getcwd(),
                              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
            _write_json(out / TUNE_FILE, {"format": "graphrec-tune", "version": 1, "study": study_name, "storage": url,
                                          "study_id": study_id, "model": model_name,
                                          "data": str(Path(data_path).resolve()),
                                          **({"calls": calls} if calls else {})})
        for number, why in failed.items():
            again = "; its grid point will run again" if number in queued else ""
            again = "; the default configuration will run again" if number == requeued else again
            log(f"trial {number}: marked failed ({why}){again}")
        for number in sorted(set(queued) - set(failed)):
            log(f"trial {number}: failed without a result (not a diverging loss); its grid point will run again")
        if requeued is not None and requeued not in failed:
            log(f"trial {requeued}: the default configuration ended without a result; it will run again")
        notes = []
        if cold_seed is not None and not cold_start:
            notes.append(f"--cold-seed {cold_seed} has no effect without --cold-start")
        if grid:
            left = _grid_left(optuna, study, points)
            if left == 0:
                notes.append(f"every point of the grid ({_grid_size(points)}) has run or is running: no trial added")
            trials = left if trials is None else min(trials, left)
        elif trials is None:
            trials = DEFAULT_TRIALS

        objective = _Objective(
            optuna, model_name, searched, dataset, Path(data_path).resolve(), config, device, out, url, study_name,
            pruning, writer_factory, transforms, repeats, study_id,
        )

        def run_trial(trial: Any) -> float:
            running.append(trial)  # known to the interrupt (_settle_interrupted) before any work
            return objective(trial)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callbacks = [lambda st, tr: log(_trial_line(st, tr, selected_label(config.valid_metric, config.select_on),
                                                        searched))]
            if grid:  # other processes take points too: stop when none is left to take
                callbacks.append(lambda st, tr: st.stop() if _grid_left(optuna, st, points) == 0 else None)
            if trials:
                started = time.monotonic()
                study.optimize(run_trial, n_trials=trials, timeout=timeout, catch=(FloatingPointError, PointRefused),
                               callbacks=callbacks)
                timed_out = (timeout is not None and objective.calls < trials
                             and time.monotonic() - started >= timeout
                             and not (grid and _grid_left(optuna, study, points) == 0))
                if timed_out:
                    notes.append(f"--timeout reached after {objective.calls} of {trials} trials; "
                                 "run the same command again for more")
    except BaseException as e:
        # an error raised while a Ctrl-C unwinds is the Ctrl-C (Optuna 5 interrupted while it
        # stores a result reads an unset variable in its finally: UnboundLocalError)
        if isinstance(e, KeyboardInterrupt) or isinstance(e.__context__, KeyboardInterrupt):
            optuna.logging.set_verbosity(verbosity)
            raise KeyboardInterrupt(_settle_interrupted(optuna, rdb, running[-1] if running else None, out)) from None
        if isinstance(e, (ConfigError, DataError)):
            # a study this call created whose trials fail on the settings (no trial completed):
            # nothing stays behind, so that the corrected call starts the study afresh
            if new_study and _created_nothing(optuna, rdb, study_name):
                optuna.delete_study(study_name=study_name, storage=rdb)
                if not out_existed:
                    shutil.rmtree(out, ignore_errors=True)
            elif not out_existed and out.is_dir() and not (out / TUNE_FILE).exists():
                shutil.rmtree(out, ignore_errors=True)  # e.g. a storage that failed to open: only the lock was made
        optuna.logging.set_verbosity(verbosity)
        raise
    try:
        result = TuneResult(study_name, url, out, trials_run=objective.calls, states=_states(study), notes=notes)
        with _lock(url, out):
            # the best trial is read under the lock: another process may finish a better
            # trial and write OUT/best between a read outside it and this write
            best = _best_trial(optuna, study)
            written = _write_best(best, study_name, url, out, dataset, device, study_id) if best else None
        if best is not None and written is not None:
            result.best_trial, result.best_value = best.number, best.value
            result.best_params = as_suggested(searched, best.params)
            result.best_run, result.test, result.test_evaluated, result.repeat_tests = written
        else:
            result.notes.append("no trial completed: no best run written")
        if report_seeds and result.best_run is not None:
            first = config.seed + repeats  # the seeds after the trials': none of them chose anything
            result.report_tests = _report_on_fresh_seeds(result.best_run, range(first, first + report_seeds), dataset,
                                                         Path(data_path).resolve(), transforms, device, out, log)
        if plots:
            from graphrec.train.plots import draw_study

            result.plots, notes = draw_study(study, out, selected_label(config.valid_metric, config.select_on))
            result.notes += notes
        _write_trials_table(study, out / TRIALS_TABLE, config.valid_metric, config.select_on, searched)
        _write_json(out / TUNE_FILE, {**json.loads((out / TUNE_FILE).read_text()), "summary": _summary(result)})
        return result
    finally:
        optuna.logging.set_verbosity(verbosity)


def _earlier_calls(path: Path) -> list[dict[str, Any]]:
    """The ``calls`` an existing ``tune.json`` lists (the study's earlier calls)."""
    try:
        calls = json.loads(path.read_text(encoding="utf-8")).get("calls")
    except (OSError, ValueError, AttributeError):
        return []
    return list(calls) if isinstance(calls, list) else []


def _created_nothing(optuna: Any, rdb: Any, study_name: str) -> bool:
    """Whether the study holds no completed trial (those of this call failed)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=rdb)
    except KeyError:
        return False
    return not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _check_study_folder(name: str) -> None:
    """``name`` can be the folder name of the default ``--out`` (``runs/tune-NAME``): one
    path component, so that it stays a folder of ``runs`` (no ``/``, ``\\`` or NUL)."""
    bad = [c for c in ("/", "\\", "\0") if c in name]
    if bad:
        raise ConfigError(
            f"study name {name!r} cannot name the default output folder runs/tune-STUDY (it holds {bad[0]!r}): "
            "choose a --study without path separators, or give --out"
        )


def _dataset_name(data: str | os.PathLike) -> str:
    """The name in ``DIR/dataset.json`` (the whole dataset is read after the outputs are
    checked); a folder that is not a dataset is :meth:`Dataset.load`'s one-line error."""
    try:
        name = json.loads((Path(data) / "dataset.json").read_text(encoding="utf-8"))["name"]
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return Dataset.load(data).name


# --- the study ---------------------------------------------------------------------------


def _open_storage(optuna: Any, url: str) -> Any:
    """Optuna's RDB storage for ``url``: SQLite waits up to
    :data:`SQLITE_TIMEOUT_SECONDS` for another process's write; running trials beat.
    Creating the tables races with another program opening a new database at the same
    moment (one not holding graphrec's lock, e.g. on another machine or a dashboard): a
    lost race is tried again."""
    import sqlalchemy.exc

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS, **kwargs
                )
        except ImportError as e:
            raise ConfigError(f"--storage {url}: {e}") from None
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as e:
            if attempt == 4:
                reason = " ".join(str(e).split())[:200]
                raise DataError(f"--storage {url}: cannot open the study database ({reason})") from None
            time.sleep(0.5 * (attempt + 1))  # "table already exists": another program created it first
        except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as e:
            reason = " ".join(str(e).split())[:200]
            raise DataError(f"--storage {url}: not an Optuna study database ({reason}): name a new file (created "
                            "then) or a database an earlier graphrec tune wrote") from None
    raise AssertionError("unreachable")


def tunable_model(model: str) -> ModelEntry:
    """The registry entry of ranking model ``model``; a CTR model is a one-line
    :class:`ConfigError` that says where its grids are searched."""
    if model in {e.name for e in registered_models("ctr")}:
        raise ConfigError(f"graphrec tune searches ranking models; {model} is a CTR model: its grids are searched on "
                          "validation AUC by experiments/ctr/run.py --parts tune (experiments/ctr/README.md)")
    return get_model(model, "ranking")


def default_study_name(model: str, data: str | os.PathLike, cold_start: float | None = None,
                       cold_protocol: str = "papers", seed: int = 0, cold_seed: int | None = None) -> str:
    """``MODEL-DATA``, and for a cold-start study ``-coldF`` with the split's protocol
    (``-hidden``; none for the papers') and seed (``-seedS``; none for 0; ``-splitC`` for a
    ``cold_seed`` C other than ``seed``): studies of other splits live side by side (the
    split is part of a study's settings)."""
    name = f"{model}-{_dataset_name(data)}"
    if cold_start:
        name += f"-cold{cold_start:g}" + (f"-{cold_protocol}" if cold_protocol != "papers" else "")
        name += f"-seed{seed}" if seed != 0 else ""
        name += f"-split{cold_seed}" if cold_seed is not None and cold_seed != seed else ""
    return name


def _load_study(optuna, rdb, name, url, setup, pruning, startup, warmup, seed, points=None):
    """The study ``name`` (created when new), checked to hold comparable trials; sampled
    on the grid ``points`` (``{name: values}``) when given, else by TPE."""
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
              if pruning else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=rdb, study_name=name, direction="maximize", load_if_exists=True,
                                sampler=_sampler(optuna, seed) if points is None else
                                optuna.samplers.GridSampler(points, seed=seed), pruner=pruner)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"study {name!r} in {url} minimises its objective: it was not made by graphrec tune")
    stored = study.user_attrs.get("graphrec")
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(f"study {name!r} in {url} was not made by graphrec tune: choose another --study")
        study.set_user_attr("graphrec", json.loads(json.dumps(setup)))
        study.set_user_attr("graphrec_version", graphrec.__version__)
        study.set_user_attr(STUDY_ID, uuid.uuid4().hex)
        return study
    diff = _first_difference(stored, json.loads(json.dumps(setup)))
    if diff:
        raise ConfigError(
            f"study {name!r} in {url} was run with other settings ({diff}): its trials would not be comparable; "
            "repeat the study's options or choose another --study"
        )
    return study


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The first key where ``a`` (the study's) and ``b`` (this call's) differ, described."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return ""
    return "" if a == b else f"{path}: {a!r} in the study, {b!r} now"


def _sampler(optuna: Any, seed: int) -> Any:
    """TPE whose random draws depend on (``seed``, trial number): resumed and parallel
    calls never repeat each other's random configurations, and a sequence of calls is
    reproducible."""

    class TrialSeededTPE(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._samplers: dict[int, Any] = {}

        def _of(self, trial: Any) -> Any:
            if trial.number not in self._samplers:
                trial_seed = (seed * 1_000_003 + trial.number) % 2**32
                self._samplers[trial.number] = optuna.samplers.TPESampler(
                    seed=trial_seed, n_startup_trials=STARTUP_TRIALS
                )
            return self._samplers[trial.number]

        def infer_relative_search_space(self, study, trial):
            return self._of(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._of(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial):
            self._of(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values):
            self._of(trial).after_trial(study, trial, state, values)
            self._samplers.pop(trial.number, None)

    return TrialSeededTPE()


def _default_point(entry: Any, space: SearchSpace, config: TrainConfig) -> dict[str, Any]:
    """The searched parameters at the model's (and training's) defaults, when every one
    lies in the space: the study's first trial, so its best is at least the default run."""
    from graphrec.train.registry import Choice, TUNABLE_TRAIN_OPTIONS

    params = {**entry.defaults, **{k: v for k, v in space.fixed.items() if k not in TUNABLE_TRAIN_OPTIONS}}
    if entry.resolve is not None:  # defaults that follow other parameters (LATTICE's reg_weight: parity)
        params = entry.resolve(params)
    point = {}
    for key, dim in space.searched.items():
        value = getattr(config, key) if key in TUNABLE_TRAIN_OPTIONS else params.get(key)
        if isinstance(dim, Choice):
            inside = value in dim.values
        else:
            on_grid = dim.step in (None, 1) or abs(((value or 0) - dim.low) / dim.step % 1 - 0.5) > 0.5 - 1e-9
            inside = value is not None and not isinstance(value, bool) and dim.low <= value <= dim.high and on_grid
        if not inside:
            return {}
        point[key] = value
    return point


def _queue_defaults(optuna: Any, study: Any, point: Mapping[str, Any]) -> int | None:
    """Queue the default configuration ``point`` (:func:`_default_point`; nothing when
    empty) unless a trial has it completed, running or waiting, or its loss diverged
    (it would again): the study's first trial, and again when that trial ended without
    a result (its call was killed while it ran), so that the study's best is never
    worse on validation than the default run. Returns the number of the trial of the
    default point that ended without a result, when it is queued again."""
    if not point:
        return None
    state = optuna.trial.TrialState
    key = _key(point)
    lost = None
    for t in study.get_trials(deepcopy=False):
        if _key(_params(t)) != key:
            continue
        if t.state in (state.COMPLETE, state.RUNNING, state.WAITING) or {"diverged", "refused"} & set(t.user_attrs):
            return None
        if t.state in (state.FAIL, state.PRUNED):  # killed (or pruned, before defaults were exempt)
            lost = t.number if lost is None else lost
    # no skip_if_exists: Optuna's own check would count the failed trial as having the point
    study.enqueue_trial(dict(point), user_attrs={"defaults": True, **({"rerun_of": lost} if lost is not None else {})})
    return lost


def _fail_dead_trials(optuna: Any, study: Any, rdb: Any) -> dict[int, str]:
    """Mark ``FAIL`` the running trials whose process is gone: this machine's whose pid no
    longer runs (a killed call), and any trial that recorded no process at all
    :data:`UNSTARTED_SECONDS` after it started (killed between Optuna creating it and its
    first line, which comes within milliseconds). Returns ``{number: why}``."""
    host = socket.gethostname()
    now = datetime.datetime.now()  # Optuna stamps trials with naive local times
    marked = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if "host" not in t.user_attrs:
            started = t.datetime_start
            if started is None or (now - started).total_seconds() < UNSTARTED_SECONDS:
                continue  # may be starting right now
            why = "its process ended before it trained"
        elif t.user_attrs.get("host") == host and isinstance(pid, int) and not _process_runs(pid):
            why = "its process ended while it ran"
        else:
            continue
        try:
            rdb.set_trial_user_attr(t._trial_id, "failure", f"{why} (killed)")
            rdb.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another call marked it first
        marked[t.number] = why
        if t.user_attrs.get("run_dir"):  # killed after writing its record, before Optuna stored the result
            _fail_records(Path(t.user_attrs["run_dir"]), f"{why} (killed)")
    return marked


def _settle_interrupted(optuna: Any, rdb: Any, trial: Any | None, out: Path) -> str:
    """After a Ctrl-C: the trial this call was running (``trial``, None when it started
    none) made consistent, and the line that says what became of it. Optuna marks a trial
    ``FAIL`` when the interrupt reaches its objective, but one that lands after the
    objective returned, while Optuna stores the result, leaves it ``RUNNING``: it is
    marked ``FAIL`` here (this process is its only one). A trial that ends ``FAIL`` gets
    its records (under ``out/trials/N``) rewritten as failed (:func:`_fail_records`): they
    may have been written as complete. One that Optuna stored as complete or pruned is
    kept as it is."""
    again = "run the same command again to continue the study"
    if trial is None:
        return f"interrupted before a trial started; {again}"
    fail, done = optuna.trial.TrialState.FAIL, {"COMPLETE": "completed", "PRUNED": "was pruned"}
    try:
        state = rdb.get_trial(trial._trial_id).state
        if state == optuna.trial.TrialState.RUNNING:
            try:
                rdb.set_trial_user_attr(trial._trial_id, "failure", "interrupted")
                rdb.set_trial_state_values(trial._trial_id, fail)
            except optuna.exceptions.UpdateFinishedTrialError:  # Optuna's own write came first
                pass
            state = rdb.get_trial(trial._trial_id).state
    except Exception:  # noqa: BLE001 - a storage that does not answer now: the next call marks the trial
        state = None
    if state is not None and state.name in done:
        return f"interrupted after trial {trial.number} {done[state.name]} (its result is kept); {again}"
    if state != fail:
        return (f"interrupted: trial {trial.number} could not be marked failed now (the storage did not answer); "
                f"the next call marks it failed: {again}")
    _fail_records(out / TRIALS / str(trial.number), "interrupted")
    return f"interrupted: trial {trial.number} is marked failed; {again}"


def _fail_records(run_dir: Path, why: str) -> None:
    """Rewrite the records under a trial's ``run_dir`` (its own, or each seed's) that say
    ``complete`` as ``failed`` with the error ``why``, without their weights: what a
    trial that the study holds as failed leaves (written before Optuna stored the result,
    they said complete)."""
    folders = [run_dir, *sorted(p for p in run_dir.glob("seed*") if p.is_dir())] if run_dir.is_dir() else []
    for folder in folders:
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # no record (the trial wrote none), or not ours to read
        block = record.get("tune") if isinstance(record, dict) else None
        if not isinstance(block, dict) or block.get("state") != "complete":
            continue
        record["tune"] = {**block, "state": "failed", "value": None,
                          "error": f"{why}: the study holds the trial as failed"}
        record.pop("checkpoint", None)
        _save_trial(folder, record, None)


def _params(trial: Any) -> dict[str, Any]:
    """A trial's parameter values (a queued trial's fixed ones)."""
    return dict(trial.params or trial.system_attrs.get("fixed_params") or {})


def _key(params: Mapping[str, Any]) -> tuple:
    """Parameter values as a hashable key."""
    return tuple(sorted(params.items()))


def _grid_points_by_id(study: Any, trials: list[Any], names: set[str]) -> dict[int, dict[str, Any]]:
    """The grid point of every grid id, where the study's evidence vouches for it.

    Optuna's grid sampler hands a trial a grid id and only later, when the objective
    suggests them, the values: a trial killed in between holds an id and no values. The
    sampler maps ids to points through its own (private) shuffled list; that list is read
    here and used only if every trial that has both an id and its values agrees with it,
    and at least one does. Otherwise (another Optuna version) nothing is returned."""
    sampler = study.sampler
    grids, order = getattr(sampler, "_all_grids", None), getattr(sampler, "_param_names", None)
    if grids is None or order is None or set(order) != names:
        return {}
    mapping = {i: dict(zip(order, values)) for i, values in enumerate(grids)}
    witnesses = 0
    for t in trials:
        gid = t.system_attrs.get("grid_id")
        if gid is None or set(t.params) != names:
            continue
        if mapping.get(gid) != dict(t.params):
            return {}
        witnesses += 1
    return mapping if witnesses else {}


def _queue_lost_points(optuna: Any, study: Any, names: set[str]) -> list[int]:
    """A grid study's failed trials that did not diverge (a killed process, a machine
    whose heartbeat stopped) leave their point counted as done by the grid sampler:
    queue each such point again where no other trial has run it, runs it or waits to
    (once per failed trial: a failed rerun is queued again in its own name). A trial
    killed before it had its values is placed by its grid id
    (:func:`_grid_points_by_id`). Returns the failed trials' numbers."""
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    covered = {_key(_params(t)) for t in trials
               if t.state in (state.COMPLETE, state.PRUNED, state.RUNNING, state.WAITING)}
    handed_on = {t.user_attrs.get("rerun_of") for t in trials}  # failed trials a rerun stands for
    by_id: dict[int, dict[str, Any]] | None = None
    queued = []
    for t in trials:
        if t.state != state.FAIL or {"diverged", "refused"} & set(t.user_attrs) or t.number in handed_on:
            continue
        params = _params(t)  # a queued rerun's values where it never suggested them
        if set(params) != names:
            if "grid_id" not in t.system_attrs:
                continue
            if by_id is None:
                by_id = _grid_points_by_id(study, trials, names)
            params = by_id.get(t.system_attrs["grid_id"], {})
            if set(params) != names:
                continue
        key = _key(params)
        if key not in covered:
            study.enqueue_trial(params, user_attrs={"rerun_of": t.number})
            covered.add(key)
            queued.append(t.number)
    return queued


def _check_grid(entry: Any, space: SearchSpace, points: Mapping[str, list[Any]], dataset: Dataset) -> None:
    """Every point of a grid passes the model's cheap check (``ModelEntry.check``) before
    any training: a point that cannot train on this dataset, or that would only repeat
    another (a parameter with no effect here), fails the call now rather than hours in."""
    names = list(points)
    for values in itertools.product(*points.values()):
        point = dict(zip(names, values))
        try:
            _check_point(entry, space, point, dataset)
        except (ConfigError, DataError) as e:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            raise type(e)(f"--grid point {where}: {e}") from None


def _check_point(entry: Any, space: SearchSpace, point: Mapping[str, Any], dataset: Dataset) -> None:
    """The model's cheap check of one point of ``space`` (its fixed settings, ``point``
    and the model's defaults for the rest)."""
    from graphrec.train.registry import model_params

    overrides, _ = split_options({**space.fixed, **point})
    entry.check(dataset, model_params(entry.name, overrides))


#: at most this many combinations of a space's listed values are checked
SPACE_CHECKS = 1000


def _check_space(entry: Any, space: SearchSpace, dataset: Dataset) -> None:
    """A search space where every trial would fail the model's cheap check
    (``ModelEntry.check``: its fixed settings, or the model's defaults, cannot train on
    this dataset, e.g. features of different dimensions fused early) fails the call
    before any study or folder is written. The searched parameters that list values are
    tried in every combination (up to :data:`SPACE_CHECKS`), ranges at the model's
    defaults: one combination that passes is enough (a trial may still fail on others)."""
    from graphrec.train.registry import Choice

    listed = {k: d.values for k, d in space.searched.items() if isinstance(d, Choice)}
    first: Exception | None = None
    for values in itertools.islice(itertools.product(*listed.values()), SPACE_CHECKS):
        try:
            _check_point(entry, space, dict(zip(listed, values)), dataset)
            return
        except (ConfigError, DataError) as e:
            first = first or e
    if first is not None:
        raise type(first)(f"every trial of this space would fail: {first}") from None


def _grid_size(points: Mapping[str, list[Any]]) -> int:
    return math.prod(len(v) for v in points.values())


def _grid_left(optuna: Any, study: Any, points: Mapping[str, list[Any]]) -> int:
    """Points of the grid no trial has run or is running, plus the queued reruns (what a
    process may still take: the grid sampler hands a point that another process is
    running to a trial when none is left, which would run it twice)."""
    taken, waiting = set(), 0
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.WAITING:
            waiting += 1
        elif "grid_id" in t.system_attrs:
            taken.add(t.system_attrs["grid_id"])
    return _grid_size(points) - len(taken) + waiting


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def _lock(url: str, out: Path) -> Iterator[None]:
    """An exclusive lock of the study on this machine (a ``.NAME.graphrec-lock`` file
    beside a SQLite database, else in ``out``): creating a study, marking dead trials and
    writing the best run happen one call at a time."""
    import fcntl

    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        path = db.with_name(f".{db.name}.graphrec-lock")
    else:
        path = out / ".tune.graphrec-lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check_out(out: Path, study: str | None, url: str) -> None:
    """``out`` is new, or holds this study's earlier calls (``study`` None: any study in
    ``url``)."""
    marker = out / TUNE_FILE
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not marker.is_file():
            raise ConfigError(
                f"--out {out} exists and is not a graphrec tune folder (no {TUNE_FILE}): choose another --out"
            )
        try:
            held = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{marker}: damaged (not JSON): restore it or choose another --out") from None
        if held.get("storage") != url or (study is not None and held.get("study") != study):
            raise ConfigError(
                f"--out {out} holds study {held.get('study')!r} of {held.get('storage')}: "
                "choose another --out for another study"
            )
        return
    check_output(out, overwrite=True, option="--out", what="tune folder")


def _study_id(study: Any) -> str:
    """The id graphrec gave ``study`` when it created it; a study made by an earlier
    graphrec (none) gets one now, under the study's lock."""
    held = study.user_attrs.get(STUDY_ID)
    if isinstance(held, str) and held:
        return held
    made = uuid.uuid4().hex
    study.set_user_attr(STUDY_ID, made)
    return made


def _check_out_study(out: Path, study: str, url: str, study_id: str, new_study: bool) -> None:
    """``out`` holds no records of an earlier study of the same name and storage (one
    deleted, e.g. by ``optuna delete-study`` or with its SQLite file, and created again):
    its trial numbers start at 0 again, so its ``trials/N`` and ``best/`` would pass for
    this study's. Such a folder is refused (its ``tune.json`` names another study id, or
    none while the study has just been created); a folder of an earlier graphrec
    (``tune.json`` without an id) is taken as this study's when the study existed before."""
    marker = out / TUNE_FILE
    if not marker.is_file():
        return
    try:
        held = json.loads(marker.read_text(encoding="utf-8")).get("study_id")
    except (OSError, ValueError, AttributeError):
        held = None
    if held == study_id or (held is None and not new_study):
        return
    raise ConfigError(
        f"--out {out} holds the trials of an earlier study {study!r} of {url}, since deleted and created anew: "
        f"choose another --out, or remove {out} to start afresh"
    )


# --- one trial ---------------------------------------------------------------------------


class PointRefused(ConfigError):
    """A trial's point that its model refuses (MM-GEF's ``lambda_coeff`` under a fixed
    structure), met once the study has a completed trial: the trial is marked failed with
    the refusal and the study goes on (a space whose every point fails is refused before
    any trial; a refusal before any trial completed is the call's one-line error)."""


class _Objective:
    """Train one trial's configuration (on each of ``repeats`` seeds); its record (and
    weights) under ``out/trials/N`` (``out/trials/N/seed<s>`` per seed when ``repeats`` > 1)."""

    def __init__(self, optuna, model, space, dataset, data_path, config, device, out, url, study, pruning, writers,
                 transforms=None, repeats=1, study_id=None):
        self.optuna, self.model, self.space, self.dataset = optuna, model, space, dataset
        self.data_path, self.config, self.device, self.out = data_path, config, device, out
        self.url, self.study, self.pruning, self.writers = url, study, pruning, writers
        self.transforms = transforms or {}
        self.repeats = repeats
        self.study_id = study_id
        self.calls = 0

    def __call__(self, trial: Any) -> float:
        self.calls += 1
        from graphrec.train.registry import model_params

        run_dir = (self.out / TRIALS / str(trial.number)).absolute()
        for key, value in (("host", socket.gethostname()), ("pid", os.getpid()), ("run_dir", str(run_dir))):
            trial.set_user_attr(key, value)
        overrides, train = suggest(trial, self.space)
        params = model_params(self.model, overrides)
        config = TrainConfig.from_dict({**self.config.to_dict(), **train})
        if self.repeats == 1:
            return self._train(trial, params, config, run_dir, str(trial.number), report=True)[0]
        done: list[dict[str, Any]] = []
        for r in range(self.repeats):
            seed = config.seed + r
            seeded = TrainConfig.from_dict({**config.to_dict(), "seed": seed})
            # only the first seed's curve goes to the pruner: every trial is pruned on the same seed
            folder = run_dir / f"seed{seed}"
            value, best_epoch = self._train(trial, params, seeded, folder, f"{trial.number}-seed{seed}", report=r == 0)
            done.append({"seed": seed, "value": value, "best_epoch": best_epoch, "run_dir": str(folder)})
            trial.set_user_attr("repeats", done)
        return sum(d["value"] for d in done) / len(done)

    def _refuse_point(self, trial: Any, error: Exception) -> None:
        """A point the model refuses: the trial fails with the refusal, and the study goes on,
        once one of its trials has completed (else the refusal is the call's error: the
        settings, not one point, may be at fault)."""
        from graphrec.distributed import clip

        done = self.optuna.trial.TrialState.COMPLETE
        if not trial.study.get_trials(deepcopy=False, states=(done,)):
            raise error
        trial.set_user_attr("refused", clip(str(error), 200))
        raise PointRefused(str(error)) from None

    def _train(self, trial: Any, params: dict[str, Any], config: TrainConfig, run_dir: Path, name: str,
               report: bool) -> tuple[float, int]:
        """One training of the trial's configuration: (best validation metric, its epoch)."""
        import torch

        from graphrec.distributed import clip
        from graphrec.train.commands import train_command_line
        from graphrec.train.fit import fit, seed_everything, selected_score
        from graphrec.train.registry import build_model
        from graphrec.train.run import training_record

        metric, group = config.valid_metric, config.select_on
        rows: list[dict[str, Any]] = []
        writer = self.writers(name) if self.writers else None

        def on_epoch(row: dict[str, Any]) -> None:
            rows.append(row)
            if writer is not None:
                writer(row)
            if report and "valid" in row:
                trial.report(selected_score(row, group, metric), row["epoch"])
                # the default configuration runs to its end: the study's best is never worse than it
                if self.pruning and not trial.user_attrs.get("defaults") and trial.should_prune():
                    raise self.optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

        seed_everything(config.seed)
        t0 = time.perf_counter()
        try:
            built = build_model(self.model, self.dataset, params)
        except (ConfigError, DataError) as e:
            self._refuse_point(trial, e)
        build_seconds = time.perf_counter() - t0
        state, value, error = "complete", None, None
        try:
            result = fit(built, self.dataset, config, device=self.device, on_epoch=on_epoch, evaluate_test=False)
            value = result.best_score  # of the --select-on items (all, cold or warm), as the epoch
        except self.optuna.TrialPruned:
            state, result = "pruned", _partial(rows, metric, group)
            raise
        except FloatingPointError as e:
            state, error, result = "failed", str(e), _partial(rows, metric, group)
            # a grid study does not run its point again; the trial's line says why it failed
            trial.set_user_attr("diverged", clip(str(e), 200))
            raise
        finally:
            if writer is not None:
                writer(None)
            if state != "complete" or value is not None:
                record = training_record(self.dataset, self.model, params, config, result, self.device, self.data_path,
                                         self.transforms, build_seconds)
                # the graphrec train line that trains this configuration again (None: none can)
                record["command"] = train_command_line(self.model, params, config, self.data_path, self.transforms,
                                                       self.device, torch.get_num_threads())
                seed = {"seed": config.seed} if self.repeats > 1 else {}
                record["tune"] = {"study": self.study, "storage": self.url, "study_id": self.study_id,
                                  "trial": trial.number, "state": state,
                                  "value": value, "params": as_suggested(self.space, trial.params), **seed,
                                  **({"error": error} if error else {})}
                weights = built.state_dict() if state == "complete" else None
                _save_trial(run_dir, record, weights)
        return value, int(result.best_epoch)


def _partial(rows: list[dict[str, Any]], metric: str, group: str = "all") -> Any:
    """The fit result of a trial stopped early (pruned, or a diverging loss)."""
    from graphrec.train.fit import FitResult, selected_score

    valid = [r for r in rows if "valid" in r]
    best = max(valid, key=lambda r: selected_score(r, group, metric)) if valid else None
    return FitResult(
        best_epoch=best["epoch"] if best else 0,
        best_valid=best["valid"] if best else {},
        best_score=selected_score(best, group, metric) if best else float("nan"),
        test={},
        history=rows,
        timings={"epochs": len(rows), "train_seconds": float(sum(r.get("train_seconds", 0.0) for r in rows))},
    )


def _save_trial(run_dir: Path, record: dict[str, Any], weights: Mapping[str, Any] | None) -> None:
    """A trial's run directory: ``record.json`` and, for a completed trial, ``model.pt``."""
    if weights is not None:
        save_run(run_dir, record, dict(weights), overwrite=True)
        return
    with atomic_dir(run_dir, overwrite=True) as tmp:
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=_jsonable))


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return list(obj) if isinstance(obj, (set, tuple)) else str(obj)


# --- after the trials --------------------------------------------------------------------


def _write_best(best: Any, study: str, url: str, out: Path, dataset: Dataset, device: str,
                study_id: str | None = None):
    """``out/best``: the best trial's weights evaluated on test once, as a run directory
    with the graphs its model is built over (stored as ``graphrec train`` stores them, so
    ``recommend`` does not search them again); kept as it is when it already holds this
    trial of this study (same name, storage, study id and trial number; a best record
    without an id, of an earlier graphrec, is tested again once). A trial of several seeds: every
    seed's weights are tested once, and the seed with the best validation metric (the
    first of equals) is the run directory. Returns (folder, its test metrics, whether
    test was read now, the seeds' ``{"seed", "value", "best_epoch", "test"}``)."""
    from graphrec.graphs.build import GraphMemo, graph_memo
    from graphrec.train.fit import evaluate_model
    from graphrec.train.registry import build_model
    from graphrec.train.record import load_state

    best_dir = out / BEST
    if (best_dir / RECORD).is_file():
        try:
            held = load_record(best_dir)
        except DataError:
            held = {}
        block = held.get("tune") or {}
        same = (block.get("study"), block.get("storage"), block.get("study_id"), block.get("trial"))
        if same == (study, url, study_id, best.number):
            return best_dir, held.get("test"), False, list(block.get("repeats") or [])
    repeats = best.user_attrs.get("repeats") or []
    if repeats:
        chosen = max(repeats, key=lambda r: r["value"])  # max keeps the first of equals
        runs = [Path(r["run_dir"]) for r in repeats]
        trial_dir = Path(chosen["run_dir"])
    else:
        trial_dir = Path(best.user_attrs.get("run_dir", out / TRIALS / str(best.number)))
        runs = [trial_dir]
    for run in runs:
        if not (run / RECORD).is_file():
            raise DataError(f"the best trial {best.number}'s run directory {run} is missing: it cannot be tested")
    import torch

    from graphrec.train.run import buildable_params

    records = [load_record(run) for run in runs]
    memo = GraphMemo()  # the graphs the model is built over, stored with the best run (as graphrec train's)
    with graph_memo(memo):
        # the seeds share it; a trial recorded by an older graphrec is rebuilt as it trained
        model = build_model(records[0]["model"], dataset, buildable_params(records[0], dataset))
    model.to(resolve_device(device))
    tests, kept = [], None
    for run, record in zip(runs, records):
        state = load_state(run, record=record)
        kept = state if run == trial_dir else kept
        model.load_state_dict(state)
        config = TrainConfig.from_dict(record["train_config"])
        t0 = time.perf_counter()
        record["test"] = evaluate_model(model, dataset, "test", config, device)  # each seed's one look at test
        record["timings"]["test_seconds"] = time.perf_counter() - t0
        tests.append(record["test"])
    record = records[runs.index(trial_dir)]
    seeds = [{k: r[k] for k in ("seed", "value", "best_epoch")} | {"test": t} for r, t in zip(repeats, tests)]
    record["tune"] = {**record["tune"], "trial_run": str(trial_dir),
                      **({"value": best.value, "repeats": seeds, "test_mean": mean_metrics(tests),
                          **({"test_sd": sd_metrics(tests)} if len(tests) > 1 else {})} if seeds else {})}
    record.pop("checkpoint", None)
    save_run(best_dir, record, kept, overwrite=True, graphs=memo)
    return best_dir, record["test"], True, seeds


#: OUT's folder of the best configuration's runs on the report seeds
REPORT = "report"


def _report_on_fresh_seeds(best_run: Path, seeds: range, dataset: Dataset, data_path: Path,
                           transforms: Mapping[str, Any], device: str, out: Path,
                           log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The best run's configuration (its record's model, hyper-parameters and training
    options) trained and tested on each of ``seeds`` as ``graphrec train`` would, into
    ``out/report/seed<s>``; a finished run there of the same configuration is read, not
    trained again. Returns each seed's ``{"seed", "best_epoch", "valid", "test", "run_dir"}``."""
    from graphrec.train.run import run_training
    from graphrec.train.state import RunInterrupted

    chosen = load_record(best_run)
    model, params = chosen["model"], chosen["model_params"]
    config = TrainConfig.from_dict(chosen["train_config"])
    done = []
    for seed in seeds:
        folder = (out / REPORT / f"seed{seed}").absolute()
        seeded = TrainConfig.from_dict({**config.to_dict(), "seed": seed})
        record = _finished_run_of(folder, model, params, seeded)
        if record is None:
            log(f"report: the best configuration on seed {seed} ({folder})")
            try:
                record, _ = run_training(dataset, model, params, seeded, device=device, out=folder,
                                         overwrite=folder.exists(), data_path=data_path, transforms=transforms)
            except RunInterrupted:
                raise KeyboardInterrupt(f"interrupted while training the best configuration on report seed {seed}: "
                                        "run the same command again (the seeds finished so far are kept)") from None
        done.append({"seed": seed, "best_epoch": record["best_epoch"], "valid": record["best_valid"],
                     "test": record["test"], "run_dir": str(folder)})
    return done


def _finished_run_of(folder: Path, model: str, params: Mapping[str, Any],
                     config: TrainConfig) -> dict[str, Any] | None:
    """The record in ``folder`` when it is a finished run of this model, hyper-parameters
    and training options (seed included); None otherwise (none there, interrupted, or of
    an earlier best), which is then trained (again)."""
    from graphrec.train.state import FINISHED

    try:
        record = load_record(folder)
    except (DataError, OSError):
        return None
    same = (record.get("status", FINISHED) == FINISHED and record.get("model") == model
            and record.get("model_params") == dict(params) and record.get("train_config") == config.to_dict())
    return record if same and record.get("test") else None


def _best_trial(optuna: Any, study: Any) -> Any | None:
    """The study's best completed trial as the storage holds it now (None: none completed)."""
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return None
    return study.best_trial


def _write_trials_table(study: Any, path: Path, metric: str, group: str = "all",
                        space: SearchSpace | None = None) -> None:
    """``trials.csv``: every trial of the study by number, its state, its parameters (one
    column each, as the model received them: :func:`graphrec.train.space.as_suggested`
    of ``space``), its value (the metric of the ``group`` items selection is on, column
    ``valid_METRIC`` or ``valid_METRIC_GROUP``; a mean with repeats; empty unless complete)
    and, with repeats, each seed's value; written to a temporary name, then renamed."""
    import csv

    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    names = sorted({k for t in trials for k in t.params})
    seeds = sorted({r["seed"] for t in trials for r in t.user_attrs.get("repeats", [])})
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        value_column = f"valid_{metric}" if group == "all" else f"valid_{metric}_{group}"
        w.writerow(["trial", "state", *names, value_column, *(f"seed{s}" for s in seeds)])
        for t in trials:
            per_seed = {r["seed"]: r["value"] for r in t.user_attrs.get("repeats", [])}
            value = repr(t.value) if t.state.name == "COMPLETE" else ""
            params = as_suggested(space, t.params) if space is not None else t.params
            w.writerow([t.number, t.state.name.lower(), *(params.get(k, "") for k in names), value,
                        *(repr(per_seed[s]) if s in per_seed else "" for s in seeds)])


def _states(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _summary(result: TuneResult) -> dict[str, Any]:
    return {
        "trials": result.n_trials,
        "states": result.states,
        "best_trial": result.best_trial,
        "best_value": result.best_value,
        "best_params": result.best_params,
        "best_run": None if result.best_run is None else str(result.best_run),
        "test": result.test,
        **({"repeats": result.repeat_tests, "test_mean": result.test_mean, "test_sd": result.test_sd}
           if result.repeat_tests else {}),
        **({"report": {"seeds": result.report_tests, "test_mean": result.report_mean, "test_sd": result.report_sd}}
           if result.report_tests else {}),
    }


def _trial_line(study: Any, trial: Any, metric: str, space: SearchSpace | None = None) -> str:
    """One line per finished trial: state, value, best so far, parameters (as the model
    received them, ``space``'s :func:`graphrec.train.space.as_suggested`); a failed trial
    says why (a diverging loss, a killed process)."""
    values = as_suggested(space, trial.params) if space is not None else trial.params
    params = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    if trial.state.name == "COMPLETE":
        what = f"valid {metric} {trial.value:.4f}"
        seeds = trial.user_attrs.get("repeats")
        if seeds:
            names = ", ".join(str(r["seed"]) for r in seeds)
            what += f" (mean of seeds {names}: {' / '.join(format(r['value'], '.4f') for r in seeds)})"
    elif trial.state.name == "PRUNED":
        last = trial.intermediate_values.get(trial.last_step, float("nan"))
        what = f"pruned at epoch {trial.last_step} (valid {metric} {last:.4f})"
    else:
        why = trial.user_attrs.get("failure") or trial.user_attrs.get("diverged")
        refused = trial.user_attrs.get("refused")
        what = f"refused by the model ({refused})" if refused else "failed" + (f" ({why})" if why else "")
    try:
        best = study.best_trial
        tail = f"; best {best.value:.4f} (trial {best.number})"
    except ValueError:
        tail = ""
    return f"trial {trial.number}: {what}{tail}; {params}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """``path`` replaced atomically (:func:`graphrec._atomic.atomic_file`)."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=_jsonable)


def _tensorboard_factory(folder: str | os.PathLike | None) -> Callable[[int], Callable[[Any], None]] | None:
    """``trial number -> row writer`` (``None`` closes it) for ``folder/trial-N``."""
    if folder is None:
        return None
    from graphrec.train.tensorboard import require_tensorboard, scalar_writer

    require_tensorboard()  # before any work: a missing package is one line
    check_output_folder(Path(folder), "--tensorboard")
    return lambda number: scalar_writer(Path(folder) / f"trial-{number}")
