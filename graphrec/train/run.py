"""High-level training API: build, fit, record; and re-evaluation of a saved run.

>>> from graphrec.data import Dataset
>>> from graphrec.train import TrainConfig, run_training
>>> ds = Dataset.load("data/lfm2k")                                   # doctest: +SKIP
>>> record, model = run_training(ds, "lightgcn", {"num_layers": 2},
...                              TrainConfig(epochs=50), out="runs/lfm")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

import graphrec
from graphrec import distributed
from graphrec._atomic import check_output
from graphrec._checks import renamed
from graphrec._device import resolve_device
from graphrec.data import Dataset, cold_start
from graphrec.data.dataset import stats_difference
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.graphs.build import GraphMemo, graph_memo
from graphrec.graphs.fuse import default_modalities
from graphrec.graphs.store import GraphRecord, check_used_graph, save_graph, used_graph
from graphrec.models import Recommender
from graphrec.nn import to_scipy_csr
from graphrec.train.builders import build_model, content_modalities, model_params
from graphrec.train.config import TrainConfig, check_config
from graphrec.train.registry import get_model
from graphrec.train.fit import FitResult, evaluate_model, fit, keeps_global_rngs, seed_everything
from graphrec.train.record import (
    RECORD,
    RECORD_VERSION,
    check_record_fields,
    environment,
    load_record,
    load_state,
    run_graphs,
    save_run,
    source_state,
)
from graphrec.train.state import (
    FINISHED,
    INTERRUPTED,
    StateKeeper,
    check_finished,
    interrupted_run_note,
    open_run_dir,
    check_same_run,
    keep_interrupted,
    load_resume_state,
    signals_held,
)

__all__ = [
    "check_run_output",
    "check_export_out",
    "AS_PROPAGATED",
    "check_cold_start",
    "cold_start_transforms",
    "export_item_graph",
    "load_run",
    "prepare_dataset",
    "recorded_dataset",
    "reevaluate",
    "run_training",
    "training_record",
]


#: the ``normalization`` of a graph exported from a trained run: the operator as the model
#: propagates over it, its own normalisation (sym, softmax, ...) included
AS_PROPAGATED = "as-propagated"

#: a model build at least this long (its kNN searches, co-interaction blocks) gets a line
#: in the ``log`` of :func:`run_training` (the bars that show it on a terminal are off there)
_BUILD_LINE_SECONDS = 2.0


def check_run_output(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, a run directory that cannot be written: it exists and
    ``overwrite`` is false, it exists and is not a run directory (``--overwrite`` replaces
    only an earlier run), or its parent is a file or not writable (one-line
    :class:`~graphrec.errors.ConfigError`, see :func:`graphrec._atomic.check_output`). An
    existing interrupted run is named as such, with the way to continue it."""
    if not overwrite and (Path(out) / RECORD).is_file():
        try:
            status = json.loads((Path(out) / RECORD).read_text(encoding="utf-8")).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        if status == INTERRUPTED:
            raise ConfigError(f"{out} holds an interrupted run: --resume (Python: resume=True) continues it; "
                              "--overwrite (overwrite=True) replaces it, or choose another --out")
    return check_output(out, overwrite, option="--out", marker=RECORD, what="run directory")


def prepare_dataset(
    dataset: Dataset,
    cold_start_fraction: float | None = None,
    cold_start_seed: int = 0,
    cold_start_protocol: str = "papers",
) -> Dataset:
    """Apply the on-the-fly transforms a run records (currently: cold start, under
    ``cold_start_protocol``, :func:`graphrec.data.splits.cold_start`)."""
    if cold_start_fraction:
        return cold_start(dataset, cold_start_fraction, cold_start_seed, cold_start_protocol)
    return dataset


def check_cold_start(fraction: float, protocol: str) -> None:
    """The cold-start options, checked before any data is read (one-line ConfigError)."""
    from graphrec.data.splits import COLD_PROTOCOLS

    if protocol not in COLD_PROTOCOLS:
        raise ConfigError(f"--cold-protocol {protocol!r} is not one of {', '.join(COLD_PROTOCOLS)}")
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--cold-start must be in [0, 1), got {fraction}")


def cold_start_transforms(fraction: float, seed: int, protocol: str = "papers") -> dict[str, Any]:
    """The ``transforms`` entry a run records for a cold start (read by :func:`load_run`)."""
    return {"cold_start": fraction, "cold_start_seed": seed, "cold_start_protocol": protocol} if fraction else {}


def recorded_dataset(dataset: Dataset, transforms: Mapping[str, Any] | None) -> Dataset:
    """``dataset`` after the transforms a run record lists (a record written before the
    cold-start protocols existed used the ``hidden`` one)."""
    tf = transforms or {}
    return prepare_dataset(dataset, tf.get("cold_start"), tf.get("cold_start_seed", 0),
                           tf.get("cold_start_protocol", "hidden"))


@renamed(model_overrides="params")
@keeps_global_rngs  # it seeds them: a caller's draws after it go on as without it
def run_training(
    dataset: Dataset,
    model_name: str,
    params: Mapping[str, Any] | None,
    config: TrainConfig,
    device: str | torch.device = "cpu",
    out: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
    transforms: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    command: str | None = None,
    claimed: bool = False,
    on_saved: Callable[[Path], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Recommender]:
    """Seed, build ``model_name`` for ``dataset`` with the hyper-parameters ``params``
    (those differing from the model's defaults, checked by :func:`model_params`; the name
    :func:`build_model` and :func:`~graphrec.train.ctr.run_ctr` use), fit it, and write a
    run directory.

    ``out`` is checked before anything is built or trained (:func:`check_run_output`):
    an existing ``out`` is replaced only with ``overwrite`` and only when it holds an
    earlier run. ``on_epoch`` is the fit loop's per-epoch hook and ``log`` receives its
    line per validated epoch (:func:`fit`; None, the default: no line), after a line for
    the model's build when it took 2 s or more (the item graphs' searches). Returns
    the run record (a JSON-able dict) and the trained model (best state).

    ``data_path`` and ``transforms`` (the cold-start split drawn on the stored data) are
    what :func:`load_run` rebuilds the dataset from; left out, they are taken from the
    dataset itself (:attr:`~graphrec.data.Dataset.source`): the directory
    :meth:`Dataset.load <graphrec.data.Dataset.load>` read it from and a
    :func:`~graphrec.data.cold_start` split drawn since.

    With ``out``, an interrupt during training (Ctrl-C: :class:`KeyboardInterrupt`)
    keeps the best state so far in ``out``, as a run marked interrupted, and raises
    :class:`~graphrec.train.state.RunInterrupted`; ``resume=True`` continues the
    interrupted run in ``out`` (the same model, hyper-parameters, training options and
    data, else a one-line :class:`ConfigError`) to the numbers an uninterrupted run
    gives (:mod:`graphrec.train.state`). ``command`` (the ``graphrec ...`` line that
    started the run) is recorded; the resume command an interrupt names is made from it.

    Finished training is never discarded: when ``out`` (checked free at the start)
    appeared while the run trained, the run is written beside it as ``OUT-2`` (``-3``,
    ...). ``on_saved`` receives the folder written. ``claimed``: ``out`` is the empty
    folder claimed for this run at its start (:func:`graphrec._atomic.claimed_dir`, the
    CLI's default ``runs/MODEL-DATASET-STAMP``), written over.

    In a torch.distributed process group (:mod:`graphrec.distributed`) every rank calls
    this with the same arguments; they train together (:func:`graphrec.train.fit`) and
    rank 0 alone writes ``out`` (and keeps an interrupted run).
    """
    if not isinstance(dataset, Dataset):  # a folder's path: the one-line fix, not an AttributeError
        raise ConfigError(f"run_training takes a Dataset, got a {type(dataset).__name__}: load the folder with "
                          "Dataset.load(DIR) (graphrec.Dataset)")
    shard = distributed.current()
    main = shard is None or shard.is_main  # in a process group rank 0 alone writes
    check_config(config)
    data_path, transforms = _recorded_source(dataset, data_path, transforms, saved=out is not None and main)
    device = resolve_device(device)  # "auto", or CUDA where there is none: one line now
    previous = open_run_dir(out, overwrite, resume, lambda o, ow: None if claimed else check_run_output(o, ow))
    params = model_params(model_name, params)
    if stored_graph_paths(params):  # recorded absolute, as the CLI's: the run loads from any directory
        params["graphs"] = [str(Path(p).resolve()) for p in stored_graph_paths(params)]
    graphs = used_graphs(params)  # read once, before training: what the record says was used
    keeper = None if out is None else StateKeeper()
    if previous is not None:
        check_same_run(previous, out, run_identity(model_name, params, config, dataset, transforms, graphs),
                       identity_defaults(model_name, config))
        keeper = StateKeeper(load_resume_state(out, previous))
    provenance = _provenance(command, previous, keeper, device)
    source_state()  # the record's commit (a git call) is asked now, not while a Ctrl-C is being handled
    seed_everything(config.seed)
    t0 = time.perf_counter()
    memo = GraphMemo() if out is not None and main else None  # the graphs built, stored with the run
    # a resumed run is rebuilt as its first part trained (an older record's defaults)
    built = params if previous is None else buildable_params(previous, dataset, params)
    with graph_memo(memo):
        model = build_model(model_name, dataset, built, progress=config.progress and main)  # kNN bars
    build_seconds = time.perf_counter() - t0
    if main:
        _note_idle_cold_path(model)
        _note_cold_start(model, dataset, model_name, params)
    if log is not None and main and build_seconds >= _BUILD_LINE_SECONDS:  # a long silence in a log gets its line
        log(f"built {model_name} in {build_seconds:.1f} s (its item graphs and inputs)")
    try:
        result = fit(model, dataset, config, device=device, log=log, on_epoch=on_epoch, keeper=keeper)
    except KeyboardInterrupt:
        if keeper is None or keeper.state is None or not main:
            raise
        result = None  # kept below, once the interrupted frames (and their progress bar) are released
    if result is None:
        kept = keeper.state  # type: ignore[union-attr]
        so_far = FitResult(best_epoch=kept.best_epoch, best_valid=kept.best_valid, test={}, history=kept.history)
        record = training_record(dataset, model_name, params, config, so_far, device, data_path, transforms,
                                 build_seconds, graphs)
        raise keep_interrupted(out, dict(record, **provenance), kept, overwrite=overwrite or resume, claimed=claimed)
    record = training_record(dataset, model_name, params, config, result, device, data_path, transforms, build_seconds,
                             graphs)
    record.update(provenance, status=FINISHED)
    resolved = resolved_params(model_name, params)
    if resolved:
        record["resolved_params"] = resolved
    merges = model.graph_merges()  # e.g. FREEDOM's modality weights, which follow the dataset's features
    if merges:
        record["graph_merges"] = merges
    if out is not None and main:
        try:
            with signals_held():  # a Ctrl-C now waits for the run directory
                saved = save_run(out, record, model.state_dict(), overwrite=overwrite or resume, claimed=claimed,
                                 fallback=True, graphs=memo)
        except OSError as e:  # a full disk: say that the training is lost with it (its metrics are above)
            raise OSError(e.errno, f"{e.strerror or e}; the trained run could not be saved in {out}, and its "
                          "training is lost", e.filename) from None
        if on_saved is not None:
            on_saved(saved)
    return record, model


def _note_idle_cold_path(model: Recommender) -> None:
    """A :class:`GraphrecNote` when a model trains with the cold-item path although no
    item of the catalogue lacks training interactions: the path then scores none of them
    (it serves items that arrive after training) and costs its training time."""
    from graphrec.models.coldstart import ColdItemRecommender

    if isinstance(model, ColdItemRecommender) and not model.unseen_items.numel():
        warnings.warn(
            "--cold-path content trains although every item has training interactions: the path scores none "
            "of the catalogue's items (it serves items that arrive later, graphrec recommend --new-items); "
            "--cold-start makes some items cold to measure it",
            GraphrecNote, stacklevel=5,  # the caller of run_training (through its two wrappers)
        )


def _note_cold_start(model: Recommender, dataset: Dataset, model_name: str, params: Mapping[str, Any]) -> None:
    """:class:`GraphrecNote` s for a cold-start split whose figures need reading: a model
    without item content scores the cold items from embeddings no interaction trained
    (its cold metrics are near zero by construction); the cold-item path under the papers'
    protocol, whose validation and test hold cold items only, wins there by ranking every
    unseen item first (docs/models/cold-start.md)."""
    from graphrec.models.coldstart import ColdItemRecommender

    if dataset.cold_items is None:
        return
    protocol = (dataset.meta.get("cold_start") or {}).get("protocol", "papers")
    if isinstance(model, ColdItemRecommender):
        if protocol == "papers":
            warnings.warn(
                "under --cold-protocol papers validation and test hold cold items only: a model that ranks every "
                "unseen item above the seen ones wins there, and the cold-item path does so in its first epochs "
                "(96-100% of each top-20 unseen on lfm2k and amazon-scientific); --cold-protocol hidden makes warm "
                "and cold items compete (docs/models/cold-start.md)",
                GraphrecNote, stacklevel=5,  # the caller of run_training (through its two wrappers)
            )
    elif not get_model(model_name, "ranking").uses_features(params):
        warnings.warn(
            f"{model_name} uses no item content: it scores the {len(dataset.cold_items)} cold items from embeddings "
            "no interaction trained, so its cold metrics are near zero by construction (a reference point); "
            "--cold-path content gives it a content path (docs/models/cold-start.md)",
            GraphrecNote, stacklevel=5,  # the caller of run_training (through its two wrappers)
        )


def resolved_params(model_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The values the builder gives the hyper-parameters left ``None`` (e.g. LATTICE's and
    MM-GEF's ``reg_weight``, which follows ``parity``), by the registry entry's ``resolve``
    rule: ``model_params`` keeps ``None`` (what was asked, and what a resumed run must
    match), ``resolved_params`` says what trained."""
    resolve = get_model(model_name, "ranking").resolve
    if resolve is None:
        return {}
    return {k: v for k, v in resolve(params).items() if params.get(k) is None and v is not None}


def identity_defaults(model_name: str, config: Any, task: str = "ranking") -> dict[str, Any]:
    """``model_name``'s hyper-parameters and the training options (``config``'s class:
    :class:`TrainConfig`, or CTRConfig for ``task="ctr"``) at their defaults: what
    :func:`~graphrec.train.state.check_same_run` assumes for names an older record lacks."""
    return {**get_model(model_name, task).defaults, **type(config)().to_dict()}


def run_identity(model_name: str, params: Mapping[str, Any], config: TrainConfig, dataset: Dataset,
                 transforms: Mapping[str, Any] | None,
                 graphs: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one, as a record holds it
    (:func:`graphrec.train.state.check_same_run`): the stored graphs among it
    (``graphs``, :func:`used_graphs` of ``params`` when left out) by their checksums."""
    return {"model": model_name, "model_params": params, "train_config": config.to_dict(),
            "dataset": {"fingerprint": dataset.fingerprint(), "transforms": dict(transforms or {})},
            "graphs": list(used_graphs(params) if graphs is None else graphs)}


def stored_graph_paths(params: Mapping[str, Any]) -> list[str]:
    """The stored graph directories a ranking model's parameters name (``graphs``:
    ``graphrec train MODEL --graph DIR``), in order; none for models without them."""
    paths = params.get("graphs")
    if not paths:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [str(p) for p in paths]


def used_graphs(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a run records of each stored graph it trains with (``record["graphs"]``,
    :func:`graphrec.graphs.store.used_graph`: the graph's record, its checksum included,
    and its path), which :func:`load_run` and a resume compare with the graph there now."""
    return [used_graph(p) for p in stored_graph_paths(params)]


def check_recorded_graphs(record: Mapping[str, Any], run_dir: str | os.PathLike) -> None:
    """Refuse (one-line :class:`DataError`) a run whose stored graph changed since it
    trained (:func:`graphrec.graphs.store.check_used_graph`): the model would be rebuilt
    over another graph than its weights were trained on. A run recorded before runs kept
    their graphs' checksums (no ``graphs`` entry) loads unchecked."""
    for entry in record.get("graphs") or []:
        if isinstance(entry, Mapping):
            check_used_graph(entry, f"run {run_dir}", "train the run again")


def _recorded_source(
    dataset: Dataset, data_path: str | os.PathLike | None, transforms: Mapping[str, Any] | None, saved: bool = False
) -> tuple[str | os.PathLike | None, Mapping[str, Any] | None]:
    """What a run records to rebuild its dataset: ``data_path`` and ``transforms`` where
    given, else what the dataset knows (:attr:`Dataset.source`): the directory it was
    read from (or saved to) and, when the cold-start split was drawn after reading it,
    that split. ``saved``: the run will be written; then a dataset that names no folder,
    or differs from the one it names (:func:`_changed_since_read`), records none, with a
    :class:`GraphrecNote` now rather than a failed load later."""
    origin = dataset.source
    if data_path is not None:
        data_path = str(Path(data_path).resolve())  # load_run may run in another directory
    if origin is None:
        if saved and data_path is None:
            _note_no_folder("the dataset was neither read from nor saved to a folder (Dataset.load / Dataset.save)")
        return data_path, transforms
    if transforms is None and dataset.cold_items is not None and not origin.get("cold"):
        cs = dataset.meta.get("cold_start") or {}
        if "fraction" in cs:
            transforms = cold_start_transforms(cs["fraction"], cs.get("seed", 0), cs.get("protocol", "papers"))
    if data_path is not None:
        return data_path, transforms
    changed = _changed_since_read(dataset, origin["path"], transforms) if saved else None
    if changed:
        _note_no_folder(f"the dataset differs from {origin['path']}, which it was read from ({changed})")
        return None, transforms
    return origin["path"], transforms


def _note_no_folder(why: str) -> None:
    """The note of a run that will record no dataset folder, saying ``why``."""
    warnings.warn(
        f"{why}: the run records no dataset folder, so loading it (load_run, recommend, evaluate) needs the data "
        "passed again; Dataset.save(DIR) before training, or data_path=DIR, makes the run name DIR",
        GraphrecNote, stacklevel=6,  # the caller of run_training (through _recorded_source and its two wrappers)
    )


def _changed_since_read(dataset: Dataset, folder: str, transforms: Mapping[str, Any] | None) -> str | None:
    """What differs between ``dataset`` and the dataset folder it was read from, as far
    as the folder's header tells without reading its arrays: the modalities and their
    widths, and (no cold-start split drawn since reading: ``transforms``) the content's
    fingerprint, e.g. features changed in place; None when nothing does."""
    try:
        header = json.loads((Path(folder) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a folder gone or damaged since: load_run says so, naming the fix
    ours = {m: int(x.shape[1]) for m, x in sorted(dataset.item_features.items())}
    theirs = header.get("modalities")
    if theirs != ours:
        return f"modalities {ours}, the folder's {dict(sorted(theirs.items())) if isinstance(theirs, dict) else theirs}"
    if not transforms and header.get("fingerprint") != dataset.fingerprint(fresh=True):
        return "its content's fingerprint: arrays replaced or changed in place"
    return None


def _provenance(command: str | None, previous: Mapping[str, Any] | None, keeper: StateKeeper | None,
                device: str | torch.device | None = None) -> dict[str, Any]:
    """The record entries saying how a run was started: its command line and the working
    directory it was typed in (``cwd``: its relative paths are relative to it) and, for a
    resumed run, the first start's date, command, directory and record version, the epochs
    it was resumed after and each part's processes, device and torch threads (``parts``)."""
    out: dict[str, Any] = {} if command is None else {"command": command, "cwd": os.getcwd()}
    if previous is not None and keeper is not None and keeper.state is not None:
        out["created"] = previous.get("created")
        if previous.get("command"):
            out["command"] = previous["command"]
            out["cwd"] = previous.get("cwd")  # None: recorded before graphrec recorded it
        out["resumed_after"] = [*previous.get("resumed_after", []), keeper.state.epoch]
        # the first part's defaults hold for the whole run (buildable_params)
        out["record_version"] = record_version(previous)
        # the processes of each part (one more entry than resumed_after): --nproc may change
        # on resume, and ``distributed`` describes the last part only
        shard = distributed.current()
        earlier = previous.get("processes") or [int((previous.get("distributed") or {}).get("world", 1))]
        out["processes"] = [*earlier, 1 if shard is None else shard.world]
        # so may --device and --threads, which ``device`` and ``environment`` describe for the
        # last part only: float sums, and so the losses, depend on them
        first = {"after_epoch": 0, "device": previous.get("device"),
                 "threads": (previous.get("environment") or {}).get("threads"), "processes": earlier[0]}
        parts = list(previous.get("parts") or [first])
        part = {"after_epoch": keeper.state.epoch, "device": str(resolve_device(device if device is not None else "cpu")),
                "threads": torch.get_num_threads(), "processes": out["processes"][-1]}
        out["parts"] = [*parts, part]
    return out


def training_record(
    dataset: Dataset,
    model_name: str,
    params: Mapping[str, Any],
    config: TrainConfig,
    result: FitResult,
    device: str | torch.device = "cpu",
    data_path: str | os.PathLike | None = None,
    transforms: Mapping[str, Any] | None = None,
    build_seconds: float = 0.0,
    graphs: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run record (``record.json``, JSON-able) of a fit: model and parameters,
    training options, dataset provenance, the stored graphs used (``graphs``, as
    :func:`used_graphs` gives them; read from ``params`` when left out), environment,
    per-epoch history, best epoch, validation and (when ``result`` has one) test metrics,
    timings."""
    device = resolve_device(device)  # the device it ran on, never "auto"
    graphs = list(used_graphs(params) if graphs is None else graphs)
    record: dict[str, Any] = {
        "graphrec_version": graphrec.__version__,
        "record_version": RECORD_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_name,
        "model_params": params,
        "train_config": config.to_dict(),
        "dataset": {
            "path": None if data_path is None else str(data_path),
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(fresh=True),  # the arrays trained on, changed in place or not
            "transforms": dict(transforms or {}),
            "stats": dataset.stats(),
        },
        **({"graphs": graphs} if graphs else {}),
        "device": str(device),
        **_processes(),
        "environment": environment(device),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "best_valid": result.best_valid,
        "test": result.test,
        "timings": dict(result.timings, build_seconds=build_seconds),
        "history": result.history,
    }
    return record


def _processes() -> dict[str, Any]:
    """A run's ``distributed`` entry: the ranks that trained it (none for one process)."""
    shard = distributed.current()
    if shard is None:
        return {}
    import torch.distributed as dist

    return {"distributed": {"world": shard.world, "backend": str(dist.get_backend())}}


def load_run(
    run_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    data_path: str | os.PathLike | None = None,
) -> tuple[dict[str, Any], Dataset, Recommender]:
    """A saved run's record, its dataset (after the recorded transforms) and its model with
    the saved weights, on ``device``, in evaluation mode (``model.train()`` before training
    it further: dropout and edge pruning are off in evaluation mode).

    The dataset is read from ``data_path`` or the path in the record; it must have the
    fingerprint the model was trained on, otherwise everything computed from the model
    would silently describe other data. The weights must be the ones written with the
    record (:func:`graphrec.train.record.load_state`): another run's ``model.pt``, or a
    record edited after training, is a :class:`DataError`. So is a stored graph the run
    trained with (``--graph``) that changed since (:func:`check_recorded_graphs`).
    """
    if not isinstance(run_dir, (str, os.PathLike)):  # graphrec.recommend(model), load_run(model)
        raise ConfigError(f"got a {type(run_dir).__name__}, not a run folder: pass the folder a run was saved to "
                          "(run_training(..., out=DIR), graphrec train --out DIR); for a model in memory use "
                          "graphrec.recommend_model(model, dataset, users, k)")
    record = load_record(run_dir)
    if record.get("task", "ranking") != "ranking":
        raise ConfigError(
            f"run {run_dir} trained {record.get('model')} for the {record.get('task')} task: this reads top-k ranking "
            "runs (graphrec train lightgcn|mmgef|...); for a CTR run, graphrec predict RUN --pairs FILE scores "
            "(user, item) pairs, and graphrec evaluate gives its AUC (--predictions FILE: its samples' probabilities)"
        )
    check_record_fields(record, run_dir, {"dataset": dict, "model_params": dict, "train_config": dict})
    check_record_fields(record["dataset"], run_dir, {"fingerprint": str})
    note = interrupted_run_note(record, run_dir)  # untrained weights (no epoch ended): refused here
    if note is not None:
        warnings.warn(note, GraphrecNote, stacklevel=2)
    path = data_path or record["dataset"].get("path")
    if not path:
        raise DataError(f"{run_dir}: the record names no dataset path (the run trained on a dataset in memory): "
                        "pass the dataset's folder, saved with Dataset.save (CLI --data DIR; Python data_path=)")
    if data_path is None and not (Path(path) / "dataset.json").is_file():
        # the recorded folder was moved or deleted: the fix is to say where it is now
        raise DataError(f"run {run_dir} was trained on the dataset {path}, which is no longer there (moved or "
                        "deleted?): pass --data DIR, the dataset's folder now")
    dataset = Dataset.load(path)
    tf = record["dataset"].get("transforms") or {}
    dataset = recorded_dataset(dataset, tf)
    if dataset.fingerprint() != record["dataset"]["fingerprint"]:
        raise DataError(
            f"{path} differs from the data run {Path(run_dir).name} was trained on (fingerprint mismatch: "
            f"{stats_difference(record['dataset'].get('stats'), dataset.stats())}): pass the original dataset "
            "with --data, or train again on this one"
        )
    state = load_state(run_dir, record=record)  # first: a record edited to name another model says so
    _check_model_known(record, run_dir)
    check_recorded_graphs(record, run_dir)
    with graph_memo(run_graphs(record, run_dir)):  # the graphs it trained over, not a kNN search again
        model = build_model(record["model"], dataset, buildable_params(record, dataset))
    _load_weights(model, state, run_dir, record)
    model.to(resolve_device(device))
    model.eval()
    return record, dataset, model


def _check_model_known(record: Mapping[str, Any], run_dir: Any) -> None:
    """A one-line :class:`DataError` when the run's model is registered by nothing this
    process has loaded: a plug-in model (registered in a notebook or script, or by a
    package's ``graphrec.models`` entry point) must be registered again to rebuild it."""
    from graphrec.train.registry import registered_models

    name = record.get("model")
    if name not in {e.name for e in registered_models("ranking")}:
        raise DataError(
            f"run {run_dir} trained the model {name!r}, which nothing registers here: a plug-in model must be "
            "registered before its runs load (import the module whose register_model defines it, or install the "
            "package that declares it under the graphrec.models entry point)"
        )


def record_version(record: Mapping[str, Any]) -> int:
    """A ranking record's ``record_version`` (1 where it has none): a one-line
    :class:`DataError` for a value that is no integer >= 1 (a hand edit) or one newer than
    :data:`~graphrec.train.record.RECORD_VERSION` (a record of a newer graphrec, whose
    defaults this one does not know)."""
    version = record.get("record_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DataError(f"record.json: record_version {version!r} is not an integer >= 1: restore the record or "
                        "train again")
    if version > RECORD_VERSION:
        raise DataError(f"record.json: record_version {version} is from a newer graphrec (this one reads up to "
                        f"{RECORD_VERSION}): upgrade graphrec to load the run")
    return version


def buildable_params(record: Mapping[str, Any], dataset: Dataset,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters :func:`build_model` must take to rebuild the model a ranking
    ``record`` trained (``params``: the record's ``model_params`` unless given, e.g. a
    resumed run's), with the defaults of the graphrec that wrote it where they changed
    since: a record from before the cold-item path has no ``cold_path`` (it means
    ``none``, whatever the default; models without trainable parameters have no path);
    a record older than :data:`~graphrec.train.record.RECORD_VERSION` 2 whose path left
    ``cold_modalities`` unset beside the model's own ``modalities`` fused every modality
    of the dataset (named here, so that the path is built as it trained, not over the
    model's modalities, today's default)."""
    from graphrec.train.registry import get_model

    out = dict(record["model_params"] if params is None else params)
    if record.get("task", "ranking") == "ranking" and get_model(record["model"], "ranking").trainable:
        out.setdefault("cold_path", "none")
    old = record_version(record) < 2
    if (old and out.get("cold_path", "none") != "none" and out.get("cold_modalities") is None
            and out.get("modalities") is not None and dataset.item_features):
        out["cold_modalities"] = ",".join(default_modalities(dataset.item_features))
    return out


def _load_weights(model: Recommender, state: Mapping[str, torch.Tensor], run_dir: Any, record: Mapping[str, Any]) -> None:
    """``model.load_state_dict(state)``; weights of another shape or other names are a
    one-line :class:`DataError` naming the run and the first difference."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        own = model.state_dict()
        shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        if shape:
            k = shape[0]
            what = f"{k} is {tuple(state[k].shape)} in model.pt, {tuple(own[k].shape)} in the model"
        elif missing:
            what = f"model.pt has no {missing[0]}"
        elif extra:
            what = f"model.pt has {extra[0]}, which the model does not"
        else:
            what = " ".join(str(e).split())[:200]
        raise DataError(
            f"run {run_dir}: model.pt does not fit {record['model']} with the recorded parameters ({what}): "
            "it is not this run's checkpoint; train again"
        ) from None


def reevaluate(
    run_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    data_path: str | os.PathLike | None = None,
    protocol: str | None = None,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """Rebuild a saved run's model, load its weights, evaluate valid and test again
    (the dataset as in :func:`load_run`). An interrupted run is refused (it has no test
    metrics yet: resume it, :mod:`graphrec.train.state`)."""
    check_finished(load_record(run_dir), run_dir)
    device = resolve_device(device)
    record, dataset, model = load_run(run_dir, device, data_path)
    try:  # the recorded options first: a bad value there is the record's, not an option's
        config = TrainConfig.from_dict({**record["train_config"], "progress": False})
    except ConfigError as e:
        raise DataError(f"{Path(run_dir) / RECORD}: train_config: {e}: the record was damaged or edited; restore it "
                        "or train again") from None
    if protocol is not None:
        config = TrainConfig.from_dict({**config.to_dict(), "protocol": protocol})
    model.eval()
    with torch.no_grad():
        scorer = model.scorer()  # one propagation for both splits
    return {
        split: evaluate_model(model, dataset, split, config, device, progress=progress, scorer=scorer)
        for split in ("valid", "test")
    }


def check_export_out(run_dir: str | os.PathLike, out: str | os.PathLike) -> None:
    """Refuse (one-line :class:`ConfigError`, before anything is read or written) an
    :func:`export_item_graph` ``out`` that is one of the run's own inputs: a stored graph
    it trained with (``record["graphs"]``, ``--graph DIR``; a relative path read from here
    and from the folder the run was started in) or one of the graphs it keeps under
    ``RUN/graphs`` (``record["run_graphs"]``). Writing the exported graph there would
    replace what the run is built over, and the run could not be loaded again."""
    record = load_record(run_dir)
    target = Path(out).resolve()
    cwd = record.get("cwd")
    inputs: list[tuple[str, Path]] = []
    for entry in record.get("graphs") or []:
        path = entry.get("path") if isinstance(entry, Mapping) else None
        if isinstance(path, str):
            inputs.append(("the stored graph it was trained with", Path(path)))
            if isinstance(cwd, str) and not Path(path).is_absolute():
                inputs.append(("the stored graph it was trained with", Path(cwd) / path))
    for entry in record.get("run_graphs") or []:
        folder = entry.get("dir") if isinstance(entry, Mapping) else None
        if isinstance(folder, str):
            inputs.append(("a graph it keeps and is built over", Path(run_dir) / folder))
    for what, path in inputs:
        if path.resolve() == target:
            raise ConfigError(
                f"--out {out} is {what}, {path}, of run {run_dir}: exporting over it would replace the run's own "
                "input (the run could not be loaded again): choose another --out"
            )


def export_item_graph(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    data_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    view: str | None = None,
) -> GraphRecord:
    """Store a graph a trained model propagates over (:meth:`Recommender.item_graphs
    <graphrec.models.Recommender.item_graphs>`, or :meth:`~graphrec.models.Recommender.user_graphs`,
    with the learned weights of the saved best epoch) as a graph directory
    (:func:`graphrec.graphs.save_graph`), so that ``graphrec inspect``, networkx and
    GraphML read it like a built graph.

    ``view`` names the graph where the model has several (MGCN and SMORE: one per
    modality, SMORE's ``"fusion"``; DRAGON: ``"item"`` and its user graph ``"user"``);
    a model with one needs none. The record has ``kind="model"``, ``weighting="learned"``,
    ``normalization="as-propagated"`` (:data:`AS_PROPAGATED`: the matrix is the operator
    the model multiplies by, its own normalisation included; FREEDOM's is the
    sym-normalised modality graphs' weighted sum), ``nodes="users"`` for a user graph,
    the dataset's provenance (cold-start split included) and, in ``options``, the model,
    the run, its best epoch, the view, the item layers, the learned weights
    (``model.log_values()``), how fixed modality graphs were merged where they were
    (``merge``: :meth:`~graphrec.models.Recommender.graph_merges`, e.g. FREEDOM's
    ``{"fixed_weights": {"image": 0.1, "text": 0.9}}``) and the dataset path.

    ``out`` must not be one of the run's own input graphs (:func:`check_export_out`,
    checked first): ``overwrite`` replaces an earlier export, never what the run is
    built over.
    """
    t0 = time.perf_counter()
    check_export_out(run_dir, out)
    record, dataset, model = load_run(run_dir, "cpu", data_path)
    check_record_fields(record, run_dir, {"best_epoch": int})
    name = record["model"]
    model.eval()
    items, users = model.item_graphs(), model.user_graphs()
    views = [*items, *users]
    if not views:
        raise ConfigError(
            f"run {Path(run_dir).name} trained {name}, which has no item graph: export-graph works for runs "
            "of models that propagate over an item or user graph (docs/graphs.md lists them)"
        )
    if view is None:
        if len(views) > 1:
            raise ConfigError(
                f"run {Path(run_dir).name} ({name}) propagates over {len(views)} graphs: pass --view "
                + " or --view ".join(views)
            )
        view = views[0]
    elif view not in views:
        raise ConfigError(
            f"{name} has no graph {view!r}: its graphs are {', '.join(views)} (--view)"
        )
    user_graph = view in users
    matrix = to_scipy_csr(users[view] if user_graph else items[view])
    modalities = content_modalities(name, model, dataset, record["model_params"])
    if user_graph:
        modalities = ()
    elif view in modalities:  # one modality's graph of a model with one per modality
        modalities = (view,)
    data = data_path or record["dataset"].get("path")
    item_layers = getattr(model, "user_layers" if user_graph else "item_layers", None)
    merge = model.graph_merges().get(view)  # fixed modality weights, where the graph merges several
    graph_record = GraphRecord.for_dataset(
        dataset,
        kind="model",
        modalities=list(modalities),
        weighting="learned",
        normalization=AS_PROPAGATED,  # the operator itself: whatever normalisation the model applies is in it
        symmetric=bool((matrix != matrix.T).nnz == 0),
        **({"nodes": "users"} if user_graph else {}),
        options={
            "model": name,
            "run": str(Path(run_dir).resolve()),
            "best_epoch": record["best_epoch"],
            "view": view,
            ("user_layers" if user_graph else "item_layers"): None if item_layers is None else int(item_layers),
            "weights": model.log_values(),
            **({"merge": merge} if merge else {}),
            "source": {"data": str(Path(data).resolve())},
        },
        build_seconds=time.perf_counter() - t0,
    )
    return save_graph(out, matrix, graph_record, overwrite=overwrite)
