"""Train a click-through-rate model: `graphrec train din|gmmf|... --data DIR --task ctr`.

``--data`` is a source folder (UniSRec ``*.train.inter`` with CLIP features, a MovieLens
folder, a graphrec dataset directory with timestamps) or a CTR samples directory
written by an earlier run's ``--samples``. Samples follow DIN's protocol
(:mod:`graphrec.data.ctr`); ``--samples DIR`` stores them the first time and checks
them afterwards, so every model of an experiment sees the same samples. A samples
directory given as ``--data`` is used as stored: a ``--max-history``, ``--sample-seed``
or ``--cold-start`` it was not built with is refused, and so is ``--samples`` (there
would be nothing to store).
Ctrl-C or SIGTERM during training keeps the best state so far in ``--out`` as a run
marked interrupted, exits with status 130 and one line naming the command that
continues it (the same line with ``--resume``; :mod:`graphrec.train.state`).
``--cold-start F`` hides every interaction with a fraction F of the items (drawn with
``--seed``) from training and from all histories; they are then only valid/test
candidates, and the results table reports them as the cold slice.

The commands are generated from the registered CTR models
(:mod:`graphrec.train.builders.ctr`) and added under ``graphrec train`` by
:func:`register`: each model's declared hyper-parameters, then the options every CTR
command shares (declared once below; the item-graph options are hidden from the help
of a model without an item ID embedding to enrich, LR, which refuses them).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import inspect
import math
import shlex
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Optional

import typer

from graphrec._atomic import claimed_dir
from graphrec.cli._common import (
    ARGV, GraphrecCommand, Threads, TrainQuiet, metric_table, resolve_device, set_threads, training_progress,
    user_errors,
)
from graphrec.cli.train import ColdSeed, Resume, report_saved  # the options `graphrec train` ranking models share
from graphrec.train.commands import option_message
from graphrec.train.ctr import CTRConfig, takes_item_graphs

__all__ = ["register", "make_command", "load_ctr_data", "load_run_samples", "print_ctr_record"]

Data = Annotated[Path, typer.Option("--data", help="Source folder (UniSRec, MovieLens, graphrec dataset) or CTR samples directory.")]
Task = Annotated[str, typer.Option(help="Task: ctr (click-through rate, AUC).")]
# (left out, they are the stored samples' own when --data holds samples: see make_command)
MaxHistory = Annotated[int, typer.Option(help="Behaviours kept in a history (samples as --data: theirs).")]
SampleSeed = Annotated[int, typer.Option(help="Seed of the sampled negatives (samples as --data: theirs).")]
Samples = Annotated[Optional[Path], typer.Option(help="Store the samples here (first run) or check them against it.")]
ItemGraph = Annotated[str, typer.Option(help="Graph enrichment: none, knn, cooccur, both, or stored graph dir(s), comma-separated.")]
GraphK = Annotated[int, typer.Option(help="Neighbours per item of the kNN graph.")]
CooccurTopK = Annotated[int, typer.Option(help="Co-interactions kept per item (0: all).")]
GraphLayers = Annotated[int, typer.Option(help="Propagation layers on the item graph.")]
Epochs = Annotated[int, typer.Option(help="Maximum number of epochs.")]
Lr = Annotated[float, typer.Option(help="Learning rate of the optimiser (--optimizer).")]
WeightDecay = Annotated[float, typer.Option(help="Weight decay (L2) of the backbone optimiser (--optimizer; not GMMF's GAN).")]
Optimizer = Annotated[str, typer.Option(help="Backbone optimiser: adam, or adagrad (MARN's paper: AdaGrad, --lr 0.1 --batch-size 32).")]
BatchSize = Annotated[int, typer.Option(help="Samples per step.")]
Patience = Annotated[int, typer.Option(help="Stop after this many epochs without a better validation --metric.")]
ValidMetric = Annotated[str, typer.Option(
    "--metric", help="Validation metric that selects the best epoch and stops early: auc, gauc (per-user AUC) or "
                     "logloss (minimised).")]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, shuffling and (unless --cold-seed) the cold-start items.")]
ColdStart = Annotated[float, typer.Option(help="Hide every interaction with a fraction of the items (drawn with --cold-seed) from training and histories (0: off).")]
Device = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")]
Out = Annotated[Optional[Path], typer.Option(help="Run directory (default runs/MODEL-DATASET-TIME).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run directory --out if it holds an earlier run.")]

#: the item-graph options, hidden from the help of a model without an item ID embedding
#: to enrich (LR), which refuses --item-graph in one line
GRAPH_OPTIONS = ("item_graph", "graph_k", "cooccur_top_k", "graph_layers")
COMMON = (
    "task", "max_history", "sample_seed", "samples", "item_graph", "graph_k", "cooccur_top_k", "graph_layers",
    "epochs", "lr", "weight_decay", "optimizer", "batch_size", "patience", "valid_metric", "seed", "device", "out",
    "overwrite", "resume", "threads", "quiet", "cold_start", "cold_seed",
)
#: the shared options whose flag is not their name with dashes (``--metric`` sets
#: ``valid_metric``, as ``graphrec train`` of a ranking model does)
FLAGS = {"valid_metric": "--metric"}


def load_ctr_data(data: Path, samples: Optional[Path], max_history: Optional[int], sample_seed: Optional[int],
                  cold_start: float = 0.0, cold_seed: int = 0, check: Optional[Callable[[Any], None]] = None):
    """CTR samples from ``--data`` (source or samples dir), stored/checked at ``--samples``;
    ``cold_start`` > 0 applies the cold-start protocol with the items of ``cold_seed``.
    ``max_history`` and ``sample_seed`` None: the stored samples' values, or 50 and 0.
    ``check`` (e.g. the model's options against the samples) runs on the samples before
    they are stored at ``--samples`` (only then: the run checks the model again anyway,
    before its graphs are built)."""
    from graphrec.data.ctr import CTRData, check_training_samples, load_ctr_source, note_merged_rows
    from graphrec.errors import ConfigError, DataError

    def _cold(meta: dict[str, Any]) -> str:
        c = meta.get("cold_start")
        return "no cold start" if not c else f"--cold-start {c['fraction']} --cold-seed {c['seed']}"

    for option, value in (("--sample-seed", sample_seed), ("--cold-seed", cold_seed)):
        if value is not None and value < 0:  # numpy's generators take none: one line before any data are read
            raise ConfigError(f"{option} {value}: seeds are integers >= 0")
    if (data / "ctr.json").is_file():
        if samples is not None:
            raise ConfigError(
                f"--data {data} holds CTR samples already, so --samples {samples} would store nothing: drop --samples "
                "(or pass the source folder as --data)"
            )
        loaded = CTRData.load(data)
        check_training_samples(loaded, str(data))
        if max_history is not None and max_history != loaded.max_history:
            raise ConfigError(
                f"{data} holds samples with max history {loaded.max_history}, not {max_history}: "
                "drop --max-history or pass the source folder"
            )
        if sample_seed is not None and sample_seed != loaded.meta.get("seed"):
            raise ConfigError(
                f"{data} holds samples with sample seed {loaded.meta.get('seed')}, not {sample_seed}: "
                "drop --sample-seed or pass the source folder"
            )
        want = {"fraction": float(cold_start), "seed": int(cold_seed)} if cold_start else None
        have = loaded.meta.get("cold_start")
        if want is not None and (have is None or {k: have[k] for k in ("fraction", "seed")} != want):
            raise ConfigError(
                f"{data} holds samples built with {_cold(loaded.meta)}, not --cold-start {cold_start} --cold-seed "
                f"{cold_seed}: drop --cold-start or pass the source folder"
            )
        return loaded
    sample_seed = 0 if sample_seed is None else sample_seed
    built = load_ctr_source(data, max_history=50 if max_history is None else max_history, seed=sample_seed,
                            cold_start=cold_start or None, cold_seed=cold_seed)
    check_training_samples(built, str(data))  # before anything is stored
    if not (data / "dataset.json").is_file():  # read from source files (prepare noted a dataset's merged rows)
        note_merged_rows(built)
    if samples is not None:
        if (samples / "ctr.json").is_file():
            stored = CTRData.load(samples)
            have_src, want_src = stored.meta.get("source_fingerprint"), built.meta.get("source_fingerprint")
            if have_src is not None and have_src != want_src:  # other source data, whatever the options
                raise DataError(
                    f"{samples} holds samples of other data (built from {stored.meta.get('source')}, not from "
                    f"{data}: the source data differ): pass that source as --data, or another --samples"
                )
            if stored.fingerprint() != built.fingerprint():
                raise DataError(
                    f"{samples} holds other samples than {data} gives with --max-history "
                    f"{built.max_history} --sample-seed {sample_seed} and {_cold(built.meta)}: pass the options it "
                    f"was built with (max history {stored.max_history}, seed {stored.meta.get('seed')}, "
                    f"{_cold(stored.meta)}) or another --samples"
                )
            return stored
        if check is not None:
            check(built)
        built.save(samples)
        built.dataset.source = {"path": str((samples / "dataset").resolve()), "cold": built.dataset.cold_items is not None}
        typer.echo(f"samples saved to {samples}")
    return built


def load_run_samples(run_dir: Path, data: Optional[Path], source: Optional[Mapping[str, Any]] = None):
    """The samples a finished CTR run trained on, made again from ``data`` (``--data``:
    where the run's data moved) or the recorded ``--data`` with the recorded max history,
    sample seed and cold-start split (``source``: :func:`~graphrec.train.ctr_eval.ctr_run_source`'s
    entries, read from the run when None); a missing path is a one-line
    :class:`~graphrec.errors.DataError`. :func:`~graphrec.train.ctr_eval.load_ctr_run`
    checks them against the run's fingerprint (``graphrec evaluate`` and ``graphrec
    predict`` of a CTR run)."""
    from graphrec.errors import DataError
    from graphrec.train.ctr_eval import ctr_run_source

    src = ctr_run_source(run_dir) if source is None else source
    if data is not None and not data.exists():
        raise DataError(f"--data {data}: not found: pass the folder the run's data (its source folder or stored "
                        "samples) is in now")
    path = data if data is not None else src["path"]
    if not path:
        raise DataError(f"{run_dir}: the record names no data path: pass --data DIR")
    if not Path(path).exists():
        raise DataError(f"run {run_dir} was trained on {path}, which is no longer there (moved or deleted?): pass "
                        "--data DIR, its folder now")
    return load_ctr_data(Path(path), None, src["max_history"], src["sample_seed"], src["cold_start"],
                         src["cold_seed"])


def print_ctr_record(record: dict[str, Any]) -> None:
    """The results table: AUC, GAUC, logloss (best validation epoch and test), then the
    test AUC per popularity level and for cold items, and the best epoch with the
    validation metric that selected it."""
    from graphrec.train.ctr_eval import recorded_config

    keys = ["auc", "gauc", "logloss"]
    cols = {f"valid@{record['best_epoch']}": record["best_valid"], "test": record["test"]}
    typer.echo("")
    typer.echo(metric_table(cols, keys))
    slices = record["test"].get("slices") or {}
    if slices:
        names = [k for k in slices if k.startswith("level_")] + ["warm", "cold"]
        row = {k: {"test auc": slices[k]["auc"], "samples": slices[k]["samples"]} for k in names if k in slices}
        typer.echo("")
        cs = record["dataset"]["samples"].get("cold_start")
        cold_what = (f"cold = the {cs['n_cold_items']} cold-start items (--cold-start {cs['fraction']} --cold-seed {cs['seed']})"
                     if cs else "cold = unseen in training")
        typer.echo(f"test AUC by candidate popularity (level 0 = least popular; {cold_what}):")
        typer.echo(metric_table({"test auc": {k: v["test auc"] for k, v in row.items()},
                                 "samples": {k: int(v["samples"]) for k, v in row.items()}}, list(row),
                                counts=("samples",)))
    t = record["timings"]
    gan = [h for h in record["history"] if h.get("gan_d_loss") is not None]
    if gan:
        h = gan[-1]
        typer.echo(f"GAN losses at epoch {h['epoch']}: D {h['gan_d_loss']:.4f}, G {h['gan_g_loss']:.4f}")
    typer.echo(
        f"{record['model']} on {record['dataset']['name']} (item graph: {record['item_graph']['spec']}): best epoch "
        f"{record['best_epoch']} of {t['epochs']} by validation {recorded_config(record).valid_metric}, "
        f"{t['seconds_per_epoch']:.2f} s/epoch"
    )


def check_options(common: Mapping[str, Any]) -> None:
    """The values of the shared options that are no :class:`CTRConfig` field (those the
    samples and the graph builder check later, by field name), checked by their flags
    before anything is read: a one-line :class:`ConfigError`."""
    from graphrec.errors import ConfigError

    if common["max_history"] is not None and common["max_history"] < 1:
        raise ConfigError(f"--max-history must be at least 1, got {common['max_history']}")
    if common["graph_k"] < 1:
        raise ConfigError(f"--graph-k must be at least 1 (neighbours per item of the kNN graph), got {common['graph_k']}")
    if common["cooccur_top_k"] < 0:
        raise ConfigError(f"--cooccur-top-k must be at least 0 (co-interactions kept per item; 0 keeps all), got "
                          f"{common['cooccur_top_k']}")
    if not 0 <= common["weight_decay"] < math.inf:  # also refuses NaN (torch's optimisers refuse < 0 with a traceback)
        raise ConfigError(f"--weight-decay must be >= 0 and finite (e.g. 1e-5; 0: none), got {common['weight_decay']}")


def _flag(name: str) -> str:
    """A shared option's flag: ``graph_k`` -> ``--graph-k``, ``valid_metric`` -> ``--metric``
    (:data:`FLAGS`)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def without_effect(model_name: str, params: Mapping[str, Any], train_options: Mapping[str, Any],
                   common: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """The options set on the command line (``given``: parameter name -> flag) whose value
    changes nothing in this run, one note each (the run goes on: a mistyped pairing is
    seen). Options left at their defaults are never noted."""
    notes: list[str] = []

    def value(name: str) -> Any:
        for source in (params, train_options, common):
            if name in source:
                return source[name]
        return None

    def note(name: str, why: str) -> None:
        if name in given:
            v = value(name)
            notes.append(f"{given[name]}{'' if isinstance(v, bool) else f' {v}'} has no effect {why}")

    if model_name == "gmmf":
        if params.get("use_cgan") is False:
            for name in ("gan_start_epoch", "gan_lr"):
                note(name, "with --no-cgan (there is no GAN to train)")
        elif ({"gan_start_epoch", "gan_lr", "epochs"} & set(given)  # (a typed --epochs 1 too)
              and train_options["gan_start_epoch"] >= common["epochs"]):
            k, epochs = train_options["gan_start_epoch"], common["epochs"]
            default = "" if "gan_start_epoch" in given else ", the default"
            notes.append(f"the GAN never trains: it trains in the epochs after --gan-start-epoch {k}{default}, and "
                         f"--epochs {epochs} ends the run first (--gan-lr has no effect); pass a --gan-start-epoch "
                         f"below --epochs, or --no-cgan")
        if params.get("use_autoencoder") is False:
            note("recon_weight", "with --no-autoencoder (there is no reconstruction loss)")
    if model_name == "marn" and params.get("adversarial") == "none":
        note("adv_weight", "with --adversarial none (there are no adversarial terms)")
    if not common["cold_start"]:
        note("cold_seed", "without --cold-start")
    item_graph = common["item_graph"]
    if item_graph == "none":
        for name in ("graph_layers", "graph_k", "cooccur_top_k"):
            note(name, "without --item-graph (no item graph is used)")
    elif item_graph not in ("knn", "cooccur", "both"):  # stored graph directories
        for name in ("graph_k", "cooccur_top_k"):
            note(name, f"with --item-graph {item_graph}: stored graphs are used as they were built")
    elif item_graph == "cooccur":
        note("graph_k", "with --item-graph cooccur (it sets the kNN graph's neighbours: knn or both)")
    elif item_graph == "knn":
        note("cooccur_top_k", "with --item-graph knn (it sets the co-interaction graph: cooccur or both)")
    return notes


def ctr_command(model_name: str, params: dict[str, Any], data: Path, *, train_options: Optional[dict[str, Any]] = None,
                command: Optional[str] = None, given: Optional[Mapping[str, str]] = None,
                **common: Any) -> dict[str, Any]:
    """What every `graphrec train MODEL --task ctr` does; returns the run record.

    Ctrl-C or SIGTERM during training keeps the best state so far in ``out`` as a run
    marked interrupted and ends with status 130 and one line naming the resume command
    (made from ``command``, the line as typed); ``resume`` continues such a run
    (:mod:`graphrec.train.state`). ``given`` maps the options set on the command line
    (parameter name -> flag) to their flags: those without effect get a note on stderr
    (:func:`without_effect`). Progress goes to stderr as
    :func:`~graphrec.cli._common.training_progress` says (bars on a terminal, a start line
    and a line per epoch otherwise, nothing with ``--quiet``)."""
    from graphrec._atomic import check_output, check_output_folder
    from graphrec.errors import ConfigError
    from graphrec.train.ctr import check_ctr_model, run_ctr
    from graphrec.train.run import check_run_output
    from graphrec.train.state import check_resumable, sigterm_as_interrupt

    if common["task"] != "ctr":
        raise ConfigError(f"--task {common['task']!r}: {model_name} is a CTR model; use --task ctr")
    # every output is checked before samples are built, the model's options and the item
    # graph option before samples are stored (load_ctr_data's check) or anything is trained
    overwrite = bool(common.get("overwrite", False))
    resume = bool(common.get("resume", False))
    interrupted = None
    if resume:
        if common["out"] is None or overwrite:
            raise ConfigError("--resume continues the interrupted run in --out: pass --out DIR, without --overwrite")
        interrupted = check_resumable(common["out"])
    elif common["out"] is not None:
        check_run_output(common["out"], overwrite)
    else:
        check_output_folder(Path("runs"), "--out")
    samples = common["samples"]
    if samples is not None and not (samples / "ctr.json").is_file():  # written now (else: checked against)
        if samples.exists():
            raise ConfigError(f"--samples {samples} exists and holds no CTR samples (no ctr.json): choose another --samples")
        check_output(samples, option="--samples", what="CTR samples directory")
    check_options(common)
    set_threads(common["threads"])
    dev = resolve_device(common["device"])
    if not 0.0 <= common["cold_start"] < 1.0:
        raise ConfigError(f"--cold-start must be in [0, 1), got {common['cold_start']}")
    shown = training_progress(common["quiet"])  # bars on a terminal, a line per epoch otherwise
    try:
        config = CTRConfig(**{name: common[name] for name in CTR_TRAIN_OPTIONS}, progress=shown.bars,
                           **(train_options or {}))
    except ConfigError as e:  # named by the option (--batch-size), not CTRConfig's field
        # (the optimizer's message names its flag already: "optimizer 'sgd' is not one of ... (--optimizer)")
        fields = [name for name in (*CTR_TRAIN_OPTIONS, *(train_options or {})) if name != "optimizer"]
        raise ConfigError(option_message(str(e), {name: _flag(name) for name in fields})) from None
    item_graph = common["item_graph"]
    if item_graph != "none":
        params = dict(params, graph_layers=common["graph_layers"])
    checked: list[bool] = []

    def check(d: Any) -> None:
        check_ctr_model(d, model_name, params, item_graph)
        checked.append(True)

    cold_seed = common["seed"] if common["cold_seed"] is None else common["cold_seed"]  # the cold items'
    ctr = load_ctr_data(data, common["samples"], common["max_history"], common["sample_seed"],
                        common["cold_start"], cold_seed, check=check)  # before samples are stored
    if not checked:  # what the samples refuse (GMMF without features) comes before any note
        check(ctr)
    for line in without_effect(model_name, params, train_options or {}, common, given or {}):
        typer.echo(f"note: {line}", err=True)
    shown.start(model_name, ctr.dataset.name, dev, config.epochs, interrupted=interrupted)
    out = common["out"]
    default_out = out is None
    if default_out:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{ctr.dataset.name}-{stamp}"
    saved: list[Path] = []
    # the default name is claimed now (NAME-2 when a run started in the same second has it)
    with claimed_dir(out) if default_out else contextlib.nullcontext(out) as out:
        with sigterm_as_interrupt():  # a kill keeps the state as Ctrl-C does
            record, _ = run_ctr(
                ctr, model_name, params, config, device=dev, item_graph=item_graph,
                graph_options={"k": common["graph_k"], "cooccur_top_k": common["cooccur_top_k"] or None},
                out=out, data_path=data.resolve(), overwrite=overwrite, resume=resume, command=command,
                claimed=default_out, on_saved=saved.append, log=shown.log,
            )
    report_saved(out, saved[0] if saved else out)
    print_ctr_record(record)
    typer.echo(f"run saved to {saved[0] if saved else out}")
    return record


#: the :class:`CTRConfig` fields the commands set (an option each, named as the field;
#: its flag: :func:`_flag`)
CTR_TRAIN_OPTIONS = ("epochs", "lr", "weight_decay", "optimizer", "batch_size", "patience", "valid_metric", "seed")
_CONFIG = CTRConfig()
COMMON_DEFAULTS: dict[str, Any] = {
    "task": "ctr", "max_history": 50, "sample_seed": 0, "samples": None, "cold_start": 0.0, "cold_seed": None,
    "item_graph": "none", "graph_k": 10, "cooccur_top_k": 20, "graph_layers": 2,
    **{name: getattr(_CONFIG, name) for name in CTR_TRAIN_OPTIONS},  # CTRConfig's defaults
    "device": "auto", "out": None, "overwrite": False, "resume": False, "threads": None, "quiet": False,
}
COMMON_TYPES: dict[str, Any] = {
    "task": Task, "max_history": MaxHistory, "sample_seed": SampleSeed, "samples": Samples, "cold_start": ColdStart,
    "cold_seed": ColdSeed,
    "item_graph": ItemGraph, "graph_k": GraphK, "cooccur_top_k": CooccurTopK, "graph_layers": GraphLayers,
    "epochs": Epochs, "lr": Lr, "weight_decay": WeightDecay, "optimizer": Optimizer, "batch_size": BatchSize,
    "patience": Patience, "valid_metric": ValidMetric, "seed": Seed,
    "device": Device, "out": Out, "overwrite": Overwrite, "resume": Resume, "threads": Threads, "quiet": TrainQuiet,
}


def make_command(entry: Any) -> Callable[..., None]:
    """The ``graphrec train NAME --task ctr`` command of a registered CTR model."""
    from graphrec.cli.train import _hidden, check_shared_options, command_help, model_parameter

    specs = [p for p in entry.params if p.option.cli]
    check_shared_options(entry, specs, {name: _flag(name) for name in COMMON}, "CTR")

    flags = {**{p.name: p.flags[0] for p in specs}, **{name: _flag(name) for name in COMMON}}

    @user_errors
    def command(**values: Any) -> None:
        ctx = values.pop("ctx")
        argv = ctx.meta.get(ARGV)
        given = {name: flag for name, flag in flags.items()
                 if ctx.get_parameter_source(name).name in ("COMMANDLINE", "ENVIRONMENT")}
        data = values.pop("data")
        common = {name: values.pop(name) for name in COMMON}
        for name in ("max_history", "sample_seed"):  # not typed: the stored samples' own, or the default
            if name not in given:
                common[name] = None
        params: dict[str, Any] = {}
        train_options: dict[str, Any] = {}
        for spec in specs:
            value = values[spec.name]
            if spec.option.invert:
                value = not value
            elif spec.option.to_value is not None:
                value = spec.option.to_value(value)
            (train_options if spec.option.target == "train" else params)[spec.name] = value
        for spec in entry.params:
            spec.check(entry.name, params.get(spec.name, train_options.get(spec.name)))
        command_line = None if argv is None else shlex.join(["graphrec", *argv])  # recorded; names the resume command
        ctr_command(entry.name, params, data, train_options=train_options, command=command_line, given=given,
                    **common)

    defaults = dict(COMMON_DEFAULTS, **entry.train_defaults)
    sig = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
           inspect.Parameter("data", inspect.Parameter.KEYWORD_ONLY, annotation=Data)]
    sig += [model_parameter(p) for p in specs]
    hidden = () if takes_item_graphs(entry.name) else GRAPH_OPTIONS
    sig += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=defaults[n],
                              annotation=_hidden(COMMON_TYPES[n]) if n in hidden else COMMON_TYPES[n])
            for n in COMMON]
    command.__signature__ = inspect.Signature(sig)  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = entry.name.replace("-", "_")
    command.__doc__ = command_help(entry)
    return command


def register(app: typer.Typer) -> None:
    """Add ``graphrec train <model>`` for every registered CTR model to the ``train`` app."""
    from graphrec.cli.train import command_help, plugin_command
    from graphrec.train.registry import registered_models

    for entry in registered_models("ctr"):
        fn = plugin_command(entry, make_command)
        if fn is None:
            continue
        app.command(entry.name, help=fn.__doc__, short_help=command_help(entry).split("\n\n")[0],
                    cls=GraphrecCommand)(fn)
