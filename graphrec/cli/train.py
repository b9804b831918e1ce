"""Train a model on a dataset directory: `graphrec train MODEL --data DIR`.

One command per registered ranking model (:mod:`graphrec.train.registry`), generated
from the model's declared hyper-parameters: their flags, help text and defaults come
from the builder's signature, so a new model gets its command without touching this
file. The training options every ranking command shares are declared once below.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import inspect
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Mapping, Optional, get_args

import typer

from graphrec._atomic import check_output_folder, claimed_dir
from graphrec.cli._common import (
    ARGV,
    GraphrecCommand,
    check_apart,
    format_learned,
    metric_table,
    ordered_metric_keys,
    resolve_device,
    Threads,
    TrainQuiet,
    set_threads,
    split_line,
    training_progress,
    user_errors,
)
from graphrec.errors import ModelDefinitionError
from graphrec.train.commands import TRAIN_OPTIONS, config_from_options, option_defaults

Data = Annotated[Path, typer.Option("--data", help="Dataset directory (from `graphrec prepare`).")]
Epochs = Annotated[int, typer.Option(help="Maximum number of epochs.")]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
LrDecay = Annotated[float, typer.Option(help="Multiply the learning rate by this every --lr-decay-every epochs, smoothly (MMRec's learning_rate_scheduler; 1: constant).")]
LrDecayEvery = Annotated[int, typer.Option(help="Epochs per --lr-decay factor.")]
BatchSize = Annotated[int, typer.Option(help="BPR triples per step.")]
Patience = Annotated[int, typer.Option(help="Stop after this many validations without improvement.")]
EvalEvery = Annotated[int, typer.Option(help="Validate every N epochs.")]
Metric = Annotated[str, typer.Option(help="Validation metric for model selection.")]
SelectOn = Annotated[
    str,
    typer.Option(
        help="Items whose validation metric selects the model: all, or with --cold-start warm / cold "
        "(only the hidden items count; under --cold-protocol papers valid holds cold items only, so all = cold).",
    ),
]
Protocol = Annotated[str, typer.Option(help="recbole (test masks train+valid) or mmrec (train only).")]
ValidUsers = Annotated[
    Optional[int],
    typer.Option(
        help="Validate on this many users, drawn among those with a validation positive, the same for every run "
        "on the data "
        "(a million users take hours per full validation); the test ranks every user. [default: every user]",
        show_default=False,
    ),
]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, sampling and (unless --cold-seed) the cold-start items.")]
ColdSeed = Annotated[
    Optional[int],
    typer.Option(help="Seed of the cold-start items, to keep one split while --seed varies the training (as "
                 "LATTICE's fixed split). [default: --seed]", show_default=False),
]
Device = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")]
Out = Annotated[Optional[Path], typer.Option(help="Run directory (default runs/MODEL-DATASET-TIME).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run directory --out if it holds an earlier run.")]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the interrupted run in --out (Ctrl-C or SIGTERM keeps it), with the options it was started with.",
    ),
]
ColdStart = Annotated[float, typer.Option(help="Make this fraction of the items cold, never seen in training (e.g. 0.2; --cold-protocol says how).")]
ColdProtocol = Annotated[
    str,
    typer.Option(
        help="papers: half the cold items are validation items and half test items, all their interactions "
        "move there (valid/test hold cold items only; LATTICE's and MM-GEF's Table 3 protocol); hidden: "
        "their training interactions are removed, valid/test keep the per-user split (warm and cold items).",
    ),
]
Negatives = Annotated[str, typer.Option(help="BPR negatives: all (cold items included, as LATTICE's reference) or warm (never a cold item).")]
Nproc = Annotated[
    int,
    typer.Option(
        help="Train in N local processes on torch.distributed (gloo on CPU, NCCL with one GPU each): an optimiser "
        "step still takes --batch-size triples, rank r computing the loss of its r-th part; torchrun -m graphrec train ... does the same "
        "across machines (docs/scaling.md).",
    ),
]
TensorBoard = Annotated[
    Optional[Path],
    typer.Option(help="Write TensorBoard scalars here: loss, validation metrics, learned weights (needs tensorboard)."),
]
#: the options of a run that are not training options (:data:`TRAIN_OPTIONS`), with their defaults
RUN_DEFAULTS: dict[str, Any] = {
    "device": "auto", "out": None, "overwrite": False, "resume": False, "cold_start": 0.0, "cold_protocol": "papers",
    "cold_seed": None, "threads": None, "nproc": 1, "quiet": False, "tensorboard": None,
}
#: every option of every ``graphrec train MODEL`` command (the training options first)
COMMON_OPTIONS = (*TRAIN_OPTIONS, *RUN_DEFAULTS)
#: each option's typer annotation (flag, help)
OPTION_TYPES: dict[str, Any] = {
    "epochs": Epochs, "lr": Lr, "lr_decay": LrDecay, "lr_decay_every": LrDecayEvery, "batch_size": BatchSize,
    "patience": Patience, "eval_every": EvalEvery, "metric": Metric, "select_on": SelectOn, "negatives": Negatives,
    "protocol": Protocol, "valid_users": ValidUsers, "seed": Seed, "device": Device, "out": Out, "overwrite": Overwrite, "resume": Resume,
    "cold_start": ColdStart, "cold_protocol": ColdProtocol, "cold_seed": ColdSeed, "threads": Threads, "nproc": Nproc, "quiet": TrainQuiet,
    "tensorboard": TensorBoard,
}

#: the shared options that only training uses: hidden from the --help of a model without
#: parameters (cb), still accepted (the commands of graphrec 0.1 had them); given, they
#: get a note that they have no effect (--resume and --nproc still act: not noted)
UNTRAINED_OPTIONS: tuple[str, ...] = (
    "epochs", "lr", "lr_decay", "lr_decay_every", "batch_size", "patience", "eval_every", "resume", "nproc", "negatives",
)


def _hidden(annotation: Any) -> Any:
    """An ``Annotated[type, typer.Option(...)]`` of :data:`OPTION_TYPES`, hidden from --help."""
    base, info = get_args(annotation)
    info = copy.copy(info)
    info.hidden = True
    return Annotated[base, info]


def train_command(
    model_name: str,
    model_overrides: dict[str, Any],
    data: Path,
    *,
    train: Mapping[str, Any],
    device: str,
    out: Optional[Path],
    cold_start: float,
    threads: Optional[int],
    quiet: bool,
    overwrite: bool = False,
    cold_protocol: str = "papers",
    tensorboard: Optional[Path] = None,
    resume: bool = False,
    command: Optional[str] = None,
    nproc: int = 1,
    untrained: tuple[str, ...] = (),
    cold_seed: Optional[int] = None,
) -> dict[str, Any] | None:
    """What every `graphrec train MODEL` does; returns the run record.

    ``train`` holds the training options (:data:`TRAIN_OPTIONS`, by option name).

    Ctrl-C or SIGTERM during training keeps the best state so far in ``out`` as a run
    marked interrupted and ends with status 130 and one line naming the resume command
    (made from ``command``, the line as typed); ``resume`` continues such a run
    (:mod:`graphrec.train.state`).

    ``nproc`` > 1 checks the options and outputs, then runs the same command line as
    ``nproc`` ranks (:func:`graphrec.distributed.launch`) and exits with their status
    (None is returned only by a rank, other than 0, of a process group).

    ``untrained`` names the training options given to a model without parameters (a note
    says they have no effect).

    Progress goes to stderr as :func:`~graphrec.cli._common.training_progress` says: bars
    on a terminal, a start line and a line per validated epoch otherwise, nothing with
    ``quiet``.
    """
    from graphrec import distributed
    from graphrec.train import run_training
    from graphrec.errors import ConfigError
    from graphrec.train.run import check_cold_start, check_run_output
    from graphrec.train.state import check_resumable, sigterm_as_interrupt

    check_cold_start(cold_start, cold_protocol)
    writer = None
    if tensorboard is not None:  # checked before any work, like the run directory
        from graphrec.train.tensorboard import require_tensorboard, scalar_writer

        require_tensorboard()
        check_output_folder(tensorboard, "--tensorboard")

    # the run directory is checked before anything is read or trained
    interrupted = None
    if resume:
        if out is None or overwrite:
            raise ConfigError("--resume continues the interrupted run in --out: pass --out DIR, without --overwrite")
        interrupted = check_resumable(out)
    elif out is not None:
        # inside the dataset folder, the run would be deleted when the dataset is replaced
        check_apart(out, "--out", folders={"--data": data})
        check_run_output(out, overwrite)
    else:
        check_output_folder(Path("runs"), "--out")
    distributed.check_nproc(nproc)
    set_threads(threads)
    dev = resolve_device(device)
    # the training options are checked here, before any rank starts (a bad value is one
    # line, not one failure per rank)
    shown = training_progress(quiet)  # bars on a terminal, a line per validated epoch otherwise
    config = config_from_options(train, progress=shown.bars)
    seed = config.seed if cold_seed is None else cold_seed  # the cold-start split's
    if distributed.starts_ranks(nproc):
        if command is None:
            raise ConfigError("--nproc needs the command line: run graphrec train from the shell")
        _check_before_ranks(model_name, model_overrides, data, config, out, resume, cold_start, seed, cold_protocol)
        raise typer.Exit(distributed.launch(shlex.split(command)[1:], nproc, threads))
    shard = distributed.init_from_env(dev)
    if shard is not None and dev.startswith("cuda"):
        dev = f"cuda:{shard.local_rank}"
    main = shard is None or shard.is_main
    earlier_rows: list[dict[str, Any]] = []
    if tensorboard is not None and interrupted is not None:
        # the epochs trained before the interrupt go to a new TensorBoard folder too (the
        # whole curve); a folder that has events (the first part's, presumably) gets the new ones
        earlier_rows = [] if _has_events(tensorboard) else list(interrupted.get("history") or [])
    if main:
        notes = _without_effect(model_name, model_overrides, cold_start, cold_protocol, config.negatives, untrained,
                                config.lr_decay, config.lr_decay_every, cold_seed)
        if tensorboard is not None and interrupted is not None and not earlier_rows and interrupted.get("history"):
            done = int(interrupted.get("epochs_completed") or len(interrupted["history"]))
            notes.append(f"--tensorboard {tensorboard} already holds events: the resumed run adds epochs "
                         f"{done + 1} on (the first {done} are in the run's record.json and the earlier events)")
        for line in notes:
            typer.echo(f"note: {line}", err=True)
    ds, transforms = _load(data, cold_start, seed, cold_protocol)
    # torchrun starts each rank with its own command line: ranks that disagree are refused
    distributed.check_same_everywhere(
        {"model": model_name, "hyper-parameters": model_overrides, "data": ds.fingerprint(),
         "training options": {k: v for k, v in config.to_dict().items() if k != "progress"},
         "cold-start split": transforms, "--out": None if out is None else str(out), "--resume": resume},
        "start every rank with the same command line on the same data",
    )
    if main:
        from graphrec.train.registry import get_model

        shown.start(model_name, ds.name, dev, config.epochs, config.eval_every, interrupted,
                    get_model(model_name, "ranking").trainable)
    default_out = out is None
    if default_out:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{ds.name}-{stamp}"
    saved: list[Path] = []
    # the default name is claimed now (NAME-2 when a run started in the same second has it)
    with claimed_dir(out) if default_out and main else contextlib.nullcontext(out) as claimed:
        if default_out:
            out = distributed.broadcast(claimed)  # rank 0's: the ranks' clocks may read another second
        if tensorboard is not None and main:
            writer = scalar_writer(tensorboard)
            for row in earlier_rows:
                writer(row)
        with sigterm_as_interrupt(), _lost_rank_as_error(shard):  # a kill keeps the state as Ctrl-C does
            record, _ = run_training(
                ds, model_name, model_overrides, config, device=dev, out=out, data_path=data.resolve(),
                transforms=transforms, on_epoch=writer, overwrite=overwrite, resume=resume, command=command,
                claimed=default_out, on_saved=saved.append, log=shown.log,
            )
            if main and record.get("status") == "finished":
                distributed.report_finished()  # a stop from now on interrupts nothing (the launcher exits 0)
    if writer is not None:
        writer(None)
    if not main:
        return None
    report_saved(out, saved[0] if saved else out)
    print_record(record)
    typer.echo(f"run saved to {saved[0] if saved else out}")
    return record


def report_saved(out: Path, saved: Path) -> None:
    """One line when the run was written beside ``out``, which another process wrote
    while it trained (finished training is never discarded)."""
    if Path(saved) != Path(out):
        typer.echo(f"note: {out} appeared while this run trained (another process wrote it): the run is saved to "
                   f"{saved} instead", err=True)


def _has_events(folder: Path) -> bool:
    """Whether ``folder`` holds TensorBoard event files."""
    return Path(folder).is_dir() and any(Path(folder).glob("events.out.tfevents.*"))


def _without_effect(model_name: str, model_overrides: dict[str, Any], cold_start: float, cold_protocol: str,
                    negatives: str, untrained: tuple[str, ...] = (), lr_decay: float = 1.0,
                    lr_decay_every: int | None = None, cold_seed: int | None = None) -> list[str]:
    """The options given a value that changes nothing in this run (a run is still made: a
    note per option, so that a mistyped pairing is seen)."""
    from graphrec.train import TrainConfig
    from graphrec.train.registry import COLD_PATH_PARAMS, get_model

    out = []
    if untrained:
        out.append(f"{', '.join(untrained)} {'has' if len(untrained) == 1 else 'have'} no effect: "
                   f"{model_name} has no parameters to train")
    every = dict(get_model(model_name, "ranking").train_defaults).get("lr_decay_every", TrainConfig().lr_decay_every)
    if (lr_decay == 1.0 and lr_decay_every is not None and lr_decay_every != every
            and "--lr-decay-every" not in untrained):
        out.append(f"--lr-decay-every {lr_decay_every} has no effect without --lr-decay (the learning rate is constant)")
    if not cold_start and cold_protocol != "papers":
        out.append(f"--cold-protocol {cold_protocol} has no effect without --cold-start")
    if not cold_start and cold_seed is not None:
        out.append(f"--cold-seed {cold_seed} has no effect without --cold-start")
    if not cold_start and negatives != "all" and "--negatives" not in untrained:
        out.append(f"--negatives {negatives} has no effect without --cold-start (every item is warm)")
    if model_overrides.get("cold_path", "none") == "none":
        changed = [s for s in COLD_PATH_PARAMS if s.name != "cold_path" and s.name in model_overrides
                   and model_overrides[s.name] != s.default]
        out += [f"{s.flags[0]} {model_overrides[s.name]} has no effect without --cold-path content" for s in changed]
    return out


def _check_before_ranks(model_name: str, model_overrides: dict[str, Any], data: Path, config: Any,
                        out: Optional[Path], resume: bool, cold_start: float, seed: int, cold_protocol: str) -> None:
    """What every rank would refuse (the dataset, the model's own check of it, a resume
    with other options) is refused once, before the ranks start: one line, not one per
    rank."""
    from graphrec.train.record import load_record
    from graphrec.train.registry import get_model, model_params
    from graphrec.train.run import identity_defaults, run_identity
    from graphrec.train.state import check_same_run

    ds, transforms = _load(data, cold_start, seed, cold_protocol)
    params = model_params(model_name, model_overrides)
    entry = get_model(model_name, "ranking")
    if entry.check is not None:
        entry.check(ds, params)
    if resume and out is not None:
        check_same_run(load_record(out), out, run_identity(model_name, params, config, ds, transforms),
                       identity_defaults(model_name, config))


def _load(data: Path, cold_start: float, seed: int, cold_protocol: str) -> tuple[Any, dict[str, Any]]:
    """The dataset a run trains on (the cold-start split drawn, when asked) and the
    transforms its record names."""
    from graphrec.data import Dataset
    from graphrec.train.run import cold_start_transforms, prepare_dataset

    return (prepare_dataset(Dataset.load(data), cold_start, seed, cold_protocol),
            cold_start_transforms(cold_start, seed, cold_protocol))


@contextlib.contextmanager
def _lost_rank_as_error(shard: Any) -> Iterator[None]:
    """In a process group, a collective that fails because another rank stopped is a
    one-line error (:class:`graphrec.distributed.LostRank`; graphrec's launcher names the
    rank that failed first and prints this line only when it has nothing else to say)."""
    if shard is None:
        yield
        return
    import torch.distributed as dist

    from graphrec import distributed

    try:
        yield
    except (dist.DistError, RuntimeError) as e:
        first = distributed.clip(str(e).strip().splitlines()[0]) if str(e).strip() else type(e).__name__
        lost = isinstance(e, dist.DistError) or "gloo" in str(e).lower() or "nccl" in str(e).lower()
        if not lost and shard.rank != 0:
            # the launcher reports this rank's last error line; leaving the group can abort
            # the process (gloo's threads) before the exception is printed: write it first
            sys.stderr.write(f"error: {first}\n")
            sys.stderr.flush()
        distributed.leave()
        if lost:
            raise distributed.LostRank(distributed.lost_rank_message(shard, e)) from None
        raise
    except BaseException:
        distributed.leave()
        raise
    else:
        distributed.leave(wait=True)  # every rank done: leave together (see distributed.leave)


def print_record(record: dict[str, Any]) -> None:
    """The final table: best validation and test (all / warm / cold) metrics."""
    from graphrec.train.record import learned_weights

    cols = {f"valid@{record['best_epoch']}": record["best_valid"]}
    best_row = next((h for h in record["history"] if h["epoch"] == record["best_epoch"]), None)
    for group, metrics in ((best_row or {}).get("valid_groups") or {}).items():
        cols[f"valid-{group}"] = metrics
    for group, metrics in record["test"].items():
        cols["test" if group == "all" else f"test-{group}"] = metrics
    keys = ordered_metric_keys(record["best_valid"])
    t = record["timings"]
    typer.echo("")
    typer.echo(metric_table(cols, keys))
    if best_row and learned_weights(best_row):
        typer.echo("learned at the best epoch: " + format_learned(learned_weights(best_row)))
    users = {g: int(m.get("users", 0)) for g, m in record["test"].items()}
    if t["epochs"]:
        training = (
            f"selected on {record['train_config'].get('select_on', 'all')} items): best epoch "
            f"{record['best_epoch']} of {t['epochs']}, {t['seconds_per_epoch']:.2f} s/epoch"
        )
    else:
        training = "no parameters, no training)"
    sampled = ""
    if record["train_config"].get("valid_users") is not None:  # --valid-users: say the validation is a sample
        sampled = f" of {int(record['best_valid'].get('users', 0))} sampled users"
    typer.echo(
        f"{record['model']} on {record['dataset']['name']} ({record['train_config']['protocol']} protocol, {training}, "
        f"{t['eval_seconds_per_pass']:.2f} s/validation{sampled}, test users "
        + ", ".join(f"{g} {n}" for g, n in users.items())
    )
    split = split_line(record)
    if split:
        typer.echo(split)



def _common_parameters(trainable: bool, train_defaults: dict[str, Any]) -> list[inspect.Parameter]:
    """The shared options, as signature parameters: the training options at the
    model's defaults (:func:`option_defaults`), optimiser options hidden for a model
    without parameters."""
    defaults = {**option_defaults(train_defaults), **RUN_DEFAULTS}
    types = dict(OPTION_TYPES)
    if not trainable:
        for name in UNTRAINED_OPTIONS:
            types[name] = _hidden(types[name])
        defaults["epochs"] = 1
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=types[name], default=defaults[name])
        for name in COMMON_OPTIONS
    ]


def model_parameter(spec: Any) -> inspect.Parameter:
    """A declared hyper-parameter (:class:`graphrec.train.registry.ParamSpec`) as a typer option."""
    opt = spec.option
    if opt.invert:
        annotation: Any = Annotated[bool, typer.Option(*spec.flags, help=opt.help)]
        default: Any = False
    else:
        typ = opt.cli_type if opt.cli_type is not None else spec.type
        annotation = Annotated[typ, typer.Option(*spec.flags, help=opt.help)]
        default = spec.default
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def make_command(entry: Any) -> Callable[..., None]:
    """The ``graphrec train NAME`` command of a registered ranking model."""
    specs = [p for p in entry.params if p.option.cli]
    if any(p.option.target != "model" for p in specs):
        raise ModelDefinitionError(f"{entry.build.__module__}: ranking model {entry.name!r}: training options cannot be "
                                   "declared as hyper-parameters (Option(target='train') is for CTR models)")
    check_shared_options(entry, specs, {name: "--" + name.replace("_", "-") for name in COMMON_OPTIONS}, "training")

    @user_errors
    def command(**values: Any) -> None:
        ctx = values.pop("ctx")
        argv = ctx.meta.get(ARGV)
        data = values.pop("data")
        # training options given to a model without parameters: accepted, noted
        untrained = () if entry.trainable else tuple(
            "--" + name.replace("_", "-") for name in UNTRAINED_OPTIONS
            if name not in ("resume", "nproc") and ctx.get_parameter_source(name).name in ("COMMANDLINE", "ENVIRONMENT")
        )
        train = {name: values.pop(name) for name in TRAIN_OPTIONS}
        common = {name: values.pop(name) for name in RUN_DEFAULTS}
        overrides: dict[str, Any] = {}
        for spec in specs:
            value = values[spec.name]
            if spec.option.invert:
                value = not value
            elif spec.option.to_value is not None:
                value = spec.option.to_value(value)
            overrides[spec.name] = value
        command_line = None if argv is None else shlex.join(["graphrec", *argv])  # recorded; names the resume command
        train_command(entry.name, overrides, data, train=train, **common, command=command_line, untrained=untrained)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
              inspect.Parameter("data", inspect.Parameter.KEYWORD_ONLY, annotation=Data)]
    params += [model_parameter(p) for p in specs]
    params += _common_parameters(entry.trainable, dict(entry.train_defaults))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = entry.name.replace("-", "_")
    command.__doc__ = command_help(entry)
    return command


def check_shared_options(entry: Any, specs: list[Any], shared: Mapping[str, str], what: str) -> None:
    """A model's command-line options against the options every model's command has
    (``shared``: name -> flag): a hyper-parameter may take neither a shared option's name
    (both would be one keyword of the command) nor its flag (the shared option would take
    the value, and the hyper-parameter could never be set). A one-line
    :class:`ModelDefinitionError` naming the builder's module otherwise."""
    where = f"{entry.build.__module__}: model {entry.name!r}"
    names = sorted({p.name for p in specs} & (set(shared) | {"data", "ctx"}))
    if names:
        which = f"is a shared {what} option" if len(names) == 1 else f"are shared {what} options"
        raise ModelDefinitionError(f"{where} declares {', '.join(names)}, which {which}: give the hyper-parameter "
                                   "another name")
    taken = {flag: name for name, flag in shared.items()} | {"--data": "data", "--help": "help"}
    for p in specs:
        for flag in p.flags:
            for part in (f.strip() for f in flag.split("/")):
                if part in taken:
                    raise ModelDefinitionError(
                        f"{where}: hyper-parameter {p.name!r} takes the flag {part}, which is the shared {what} "
                        f"option {taken[part]!r}'s: give it another flag (Option('--other-flag'))"
                    )


def command_help(entry: Any) -> str:
    """Help of a model's command: what it is, its paper, its builder's notes, an example."""
    verb = "Train" if entry.trainable else "Evaluate"
    task = " (CTR task)" if entry.task == "ctr" else ""
    parts = [f"{verb} {entry.title} ({entry.paper}): {entry.summary}{task}."]
    if entry.description:  # each paragraph one line: typer re-flows none of a docstring's line breaks
        parts += [" ".join(par.split()) for par in entry.description.replace("``", "").split("\n\n") if par.strip()]
    if entry.example:
        parts.append(f"Example: {entry.example}")
    return "\n\n".join(parts)


def plugin_command(entry: Any, make: Callable[[Any], Callable[..., None]]) -> Optional[Callable[..., None]]:
    """``make(entry)``, the command of a registered model; for a plug-in's model (a builder
    outside graphrec) whose declaration the command refuses, None and a warning (a broken
    plug-in must not break graphrec's other commands, as at its import); graphrec's own
    models raise the one-line :class:`ModelDefinitionError`."""
    try:
        return make(entry)
    except ModelDefinitionError as e:
        module = getattr(entry.build, "__module__", "") or ""
        if module == "graphrec" or module.startswith("graphrec."):
            raise
        import warnings

        warnings.warn(f"graphrec: the model plug-in {entry.name!r} has no command: {e}", stacklevel=2)
        return None


#: the help of the ``graphrec train`` group
TRAIN_HELP = "Train a model: graphrec train lightgcn --data DIR (graphrec models lists them)"


def make_app() -> typer.Typer:
    """The ``graphrec train`` group: one command per registered ranking model, then the
    CTR models (:mod:`graphrec.cli.train_ctr`)."""
    from graphrec.cli import train_ctr
    from graphrec.train.registry import registered_models

    train_app = typer.Typer(help=TRAIN_HELP, no_args_is_help=True)
    for entry in registered_models("ranking"):
        fn = plugin_command(entry, make_command)
        if fn is None:
            continue
        train_app.command(entry.name, help=fn.__doc__, short_help=command_help(entry).split("\n\n")[0],
                          cls=GraphrecCommand)(fn)
    train_ctr.register(train_app)
    return train_app
