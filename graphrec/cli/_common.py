"""Helpers shared by the CLI commands: error handling, device choice, tables."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Mapping, Optional, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from graphrec.errors import GraphrecError, GraphrecNote

F = TypeVar("F", bound=Callable[..., Any])

# click's UsageError (unknown command or option, a value that does not parse, a missing
# option), wherever this typer takes click from (recent typers vendor it)
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def user_errors(fn: F) -> F:
    """Turn a :class:`GraphrecError` into one red line on stderr and exit status 1.

    Set ``GRAPHREC_DEBUG=1`` to see the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from graphrec._progress import scope

        try:
            with notes_as_lines(), scope():  # command_progress's choice ends with the command
                return fn(*args, **kwargs)
        except (GraphrecError, OSError) as e:
            if os.environ.get("GRAPHREC_DEBUG"):
                raise
            line = str(e) if isinstance(e, (GraphrecError, FileNotFoundError)) else os_error_line(e)
            if not _left_to_launcher(e):
                typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def check_apart(out: Path | None, option: str, *, files: Mapping[str, Path | None] | None = None,
                folders: Mapping[str, Path | None] | None = None) -> None:
    """An output (``option``, e.g. ``--out``) that is one of the command's input ``files``
    or inside one of its input ``folders`` (a run, a stored graph, a dataset) is a one-line
    :class:`~graphrec.errors.ConfigError` before any work: ``--overwrite`` would replace
    the input itself (``recommend --users u.csv --out u.csv``), or write into a folder that
    graphrec checks by its checksums (``inspect GRAPH --graphml GRAPH/graph.npz``).
    Both map a flag or argument name to its path (None: not given)."""
    from graphrec.errors import ConfigError

    if out is None:
        return
    target = Path(out).resolve()
    for name, path in {**(files or {}), **(folders or {})}.items():
        if path is not None and target == Path(path).resolve():
            raise ConfigError(f"{option} {out} is the {name} input itself: write to another path")
    for name, path in (folders or {}).items():
        if path is not None and Path(path).resolve() in target.parents:
            raise ConfigError(f"{option} {out} lies inside {name} {path}, which is an input (graphrec keeps those "
                              "folders as it wrote them): write it outside that folder")


#: the fix of an OSError by its errno: the disk, or the permission
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def os_error_line(error: OSError) -> str:
    """One line for an :class:`OSError` a command met reading or writing (a full disk, a
    read-only or forbidden folder): the file where known, the system's reason, and what to
    do."""
    where = f"{error.filename}: " if error.filename else ""
    reason = error.strerror or str(error)
    if error.errno in _FULL:
        return f"{where}{reason}: free space there, or choose an output folder on another disk"
    if error.errno in _DENIED:
        return f"{where}{reason}: choose a folder you can write to, or change its permissions"
    return f"{where}{reason}"


def _left_to_launcher(error: BaseException) -> bool:
    """In a rank of graphrec's launcher (``--nproc N``), tell the launcher the error line
    (:func:`graphrec.distributed.report_error`), so that it says the failure once; True
    when rank 0 leaves the line to it: a lost-rank error (another rank stopped first),
    which the launcher prints only when it names no rank that failed of its own."""
    if os.environ.get("GRAPHREC_HOSTED_STORE") != "1":  # graphrec.distributed.HOSTED_STORE (no torch import here)
        return False
    from graphrec import distributed

    lost = isinstance(error, distributed.LostRank)
    told = distributed.report_error(str(error), lost=lost)
    return told and lost and os.environ.get("RANK") == "0"


@contextlib.contextmanager
def notes_as_lines() -> Iterator[None]:
    """Inside, a :class:`GraphrecNote` warning (what a builder noticed) is one yellow
    ``note: ...`` line on stderr, each message once (a tune's trials build the same graph
    again), printed by the main process only under ``--nproc``; other warnings pass."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", GraphrecNote)  # once per message: counted here
        shown, seen = warnings.showwarning, set()

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if not issubclass(category, GraphrecNote):
                shown(message, category, *args, **kwargs)
            else:
                _note_once(message, seen)

        warnings.showwarning = show
        yield


def _note_once(message: Any, seen: set[str]) -> None:
    """A GraphrecNote's ``note:`` line, unless ``seen`` holds it or this is not the main rank."""
    if str(message) not in seen and os.environ.get("RANK", "0") == "0":
        seen.add(str(message))
        typer.secho(f"note: {message}", err=True, fg=typer.colors.YELLOW)


@contextlib.contextmanager
def _usage_errors_as_lines() -> Iterator[None]:
    """A click usage error inside becomes one ``error: ...`` line and exit status 1 (the
    missing-arguments help of a bare ``graphrec`` / ``graphrec train`` passes through)."""
    try:
        yield
    except UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError" or os.environ.get("GRAPHREC_DEBUG"):
            raise
        message = " ".join(e.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
        ctx = getattr(e, "ctx", None)
        reference = _reference_option(e, ctx)  # --knn-k: MMRec's name for --k
        if reference:
            message += f"; {reference}"
        hint = f": see `{ctx.command_path} --help`" if ctx is not None else ""
        typer.secho(f"error: {message}{hint}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def _reference_option(error: Exception, ctx: Any) -> str | None:
    """For an unknown option of ``graphrec train MODEL`` that is a reference
    implementation's name (MMRec's ``--knn-k``, ``--learning-rate``), what it is in
    graphrec (:func:`graphrec.train.registry.reference_hint`); None otherwise."""
    name = getattr(error, "option_name", None)
    parent = getattr(ctx, "parent", None)
    if not name or ctx is None or parent is None or parent.command.name != "train":
        return None
    from graphrec.train.registry import get_model, reference_hint, registered_models

    try:
        entry = get_model(ctx.command.name)
    except GraphrecError:
        return None
    if name.startswith("--cold-") and not entry.trainable:  # the cold-item path of a model without parameters
        return (f"{entry.name} has no parameters to train a cold-item path with; it scores items without training "
                "interactions from their content already (docs/models/cold-start.md)")
    if name == "--task" and entry.task == "ranking":  # a CTR user on a ranking model
        ctr = [e.name for e in registered_models("ctr")]
        return (f"{entry.name} ranks items (top-k, recall/ndcg); the click-through-rate models ({', '.join(ctr)}) "
                f"take --task ctr, e.g. graphrec train {'gmmf' if 'gmmf' in ctr else ctr[0]} --task ctr")
    return reference_hint(entry, name.lstrip("-"))


#: ``ctx.meta`` key of the command line as typed after ``graphrec`` (a list of strings)
ARGV = "graphrec.argv"


@contextlib.contextmanager
def _interrupts_as_status_130() -> Iterator[None]:
    """Ctrl-C (KeyboardInterrupt) inside ends the command with status 130 and one line on
    stderr: the interrupt's own message (``graphrec train`` says where its state was kept
    and how to resume) or ``interrupted``."""
    try:
        yield
    except KeyboardInterrupt as e:
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        typer.secho(str(e) or "interrupted", err=True, fg=typer.colors.YELLOW)
        raise typer.Exit(130) from None


class GraphrecGroup(TyperGroup):
    """The ``graphrec`` command group: usage errors (an unknown command or model, an
    unknown or missing option, a value that does not parse) print one ``error:`` line and
    exit with status 1, like every other user error, instead of click's box and status 2.
    ``--help`` is unchanged (status 0). An interrupted command exits with status 130.
    The command line is kept in ``ctx.meta[ARGV]`` (``graphrec train`` records it)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        argv = list(args)
        # a Ctrl-C while the command line is parsed: typer would end with 130 and no line
        with _usage_errors_as_lines(), _interrupts_as_status_130():
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        if parent is None:
            ctx.meta.setdefault(ARGV, argv)
        return ctx

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_as_lines(), _interrupts_as_status_130():
            return super().invoke(ctx)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(super().get_help_option(ctx))


def _name_for_help(param: Any) -> None:
    """An argument's metavar in capitals (one that takes several values keeps typer's
    ``runs...``, which a metavar would drop); a flag's empty (no value type shown)."""
    if param.metavar is not None:
        return
    if param.param_type_name == "argument" and param.name and param.nargs == 1:
        param.metavar = param.name.upper()
    elif getattr(param, "is_flag", False):
        param.metavar = ""


def _help_option(option: Any) -> Any:
    """``--help`` named as the other flags (:func:`_name_for_help`)."""
    if option is not None:
        _name_for_help(option)
    return option


def _rich_help(command: Any) -> bool:
    """Whether typer draws ``command``'s help with rich (not with ``TYPER_USE_RICH=0``)."""
    import typer.core

    return bool(getattr(typer.core, "HAS_RICH", True)) and getattr(command, "rich_markup_mode", None) is not None


class GraphrecCommand(TyperCommand):
    """A ``graphrec`` command whose help prints its texts as written: the options' help
    strings state their defaults in brackets (``[both]``, ``[all]``), which typer's rich
    help would otherwise read as style tags and drop. They are escaped while the rich
    help is drawn (typer's plain help, ``TYPER_USE_RICH=0``, shows them as they are).
    Its arguments are named in capitals, as the docs write them (``RUN_DIR``, ``SRC``),
    in the usage line, the help and a missing argument's error, not as Python
    parameters; its flags (``--quiet``, ``--overwrite``, ``--help``) show no value type
    (a ``<bool>`` would read as ``--quiet true``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            _name_for_help(p)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(super().get_help_option(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if not _rich_help(self):  # the plain help prints the texts as they are
            super().format_help(ctx, formatter)
            return
        from rich.markup import escape

        texts = [(p, p.help) for p in self.params if getattr(p, "help", None)]
        doc = self.help
        try:
            for p, text in texts:
                p.help = escape(text)
            self.help = escape(doc) if doc else doc
            super().format_help(ctx, formatter)
        finally:
            for p, text in texts:
                p.help = text
            self.help = doc


@contextlib.contextmanager
def warnings_as_lines(defer: bool = False) -> Iterator[None]:
    """Python warnings raised inside print as one ``warning: ...`` line on stderr each
    (not the interpreter's two-line file:line form); a :class:`GraphrecNote` stays a
    ``note:`` line, once per message (:func:`notes_as_lines`). ``defer``: the lines are
    printed when the block ends, and not at all when it raises (an input refused after a
    note about it is one error line)."""
    seen: set[str] = set()
    pending: list[tuple[Any, type]] = []

    def emit(message: Any, category: type) -> None:
        if issubclass(category, GraphrecNote):
            _note_once(message, seen)
        else:
            typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if defer:
            pending.append((message, category))
        else:
            emit(message, category)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("always", GraphrecNote)
        warnings.showwarning = show
        yield
    for message, category in pending:
        emit(message, category)


def resolve_device(device: str) -> str:
    """``--device``: ``auto`` picks CUDA when available, else CPU; other values are
    checked (:func:`graphrec._device.resolve_device`, the rule of the Python API)."""
    from graphrec._device import resolve_device as resolve

    return str(resolve(device, option="--device"))


#: the ``--threads`` option of every command that runs torch on the CPU (see :func:`set_threads`)
Threads = Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")]
#: the ``--quiet`` option of the commands that show progress (:func:`command_progress`)
Quiet = Annotated[bool, typer.Option("--quiet", help="Show no progress on stderr (bars on a terminal, a line a minute "
                                                     "in a file or pipe).")]
#: the ``--quiet`` option of the training commands (:func:`training_progress`)
TrainQuiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        help="Show no progress on stderr: neither the progress bars (stderr a terminal) nor the line per validated "
        "epoch (stderr a file or pipe: `2>&1 | tee log`, nohup, CI). Notes, errors and the results table still print.",
    ),
]


@dataclass(frozen=True)
class TrainingProgress:
    """How a training command shows its progress (:func:`training_progress`)."""

    #: progress shown (bars, or lines in a log): the training config's ``progress``
    bars: bool
    #: the fit loop's ``log``: one line per validated epoch on stderr; None: no line
    log: Optional[Callable[[str], None]]

    def start(self, model: str, dataset: str, device: str, epochs: int, eval_every: int = 1,
              interrupted: Optional[Mapping[str, Any]] = None, trainable: bool = True) -> None:
        """The line before the epoch lines (:func:`graphrec.train.progress.start_line`),
        where there are lines; ``interrupted``: the record of the run being resumed."""
        if self.log is None:
            return
        from graphrec.train.progress import start_line

        done = 0 if interrupted is None else int(interrupted.get("epochs_completed") or 0)
        self.log(start_line(model, dataset, device, epochs, eval_every, done, trainable))


def stderr_is_terminal() -> bool:
    """Whether stderr, where the bars and lines go, is a terminal (not a file, a pipe, a
    notebook's captured stream or typer's test runner)."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):  # no stream, or a closed one
        return False


#: the environment variable that sets the seconds between two progress lines of a loop
PROGRESS_SECONDS_ENV = "GRAPHREC_PROGRESS_SECONDS"


def command_progress(quiet: bool) -> bool:
    """Whether a command shows progress (not ``--quiet``), and how: on a terminal, tqdm
    bars that clear as they end; when stderr is a file or a pipe (``2>&1 | tee log``,
    nohup, a batch job, CI), where bars are carriage-return noise, a plain line a minute
    for each long loop (``$GRAPHREC_PROGRESS_SECONDS`` seconds apart, default 60) and one
    when it ends (:mod:`graphrec._progress`), for the rest of the command."""
    if quiet:
        return False
    if not stderr_is_terminal():
        from graphrec._progress import LINE_SECONDS, show_lines
        from graphrec.errors import ConfigError

        raw = os.environ.get(PROGRESS_SECONDS_ENV, "").strip()
        try:
            every = float(raw) if raw else LINE_SECONDS
        except ValueError:
            every = -1.0
        if not every >= 0 or every == float("inf"):
            raise ConfigError(f"{PROGRESS_SECONDS_ENV}={raw!r} is not a number of seconds >= 0: set it to e.g. 60, "
                              "or unset it")
        show_lines(_progress_line, every)
    return True


def training_progress(quiet: bool) -> TrainingProgress:
    """The progress a training command shows, the same for the ranking and CTR commands
    and the demo (:func:`command_progress`): on a terminal, progress bars that clear as
    they end; when stderr is a file or a pipe, no bars but one plain line per validated
    epoch (:func:`graphrec.train.progress.epoch_line`), opened by a start line, and a
    line a minute from within a long epoch, graph build or evaluation; with ``--quiet``
    none. The Python API (``fit``, ``run_training``) has no lines unless it is given a
    ``log`` (and bars with ``progress``)."""
    shown = command_progress(quiet)
    return TrainingProgress(bars=shown, log=None if not shown or stderr_is_terminal() else _progress_line)


def _progress_line(line: str) -> None:
    """One progress line on stderr, flushed (a ``tee``'d log shows it at once)."""
    typer.echo(line, err=True)


def set_threads(threads: int | None) -> None:
    """torch's CPU threads (``--threads``); None keeps torch's choice."""
    if threads is not None:
        import torch

        from graphrec.errors import ConfigError

        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}: omit it for torch's choice")
        torch.set_num_threads(threads)


def metric_table(columns: Mapping[str, Mapping[str, float]], keys: Iterable[str] | None = None,
                 counts: Iterable[str] = ()) -> str:
    """Plain-text table: one row per metric name, one column per entry of ``columns``
    (values with 4 decimals; the columns named in ``counts``, e.g. sample counts, as
    whole numbers)."""
    cols = list(columns)
    whole = set(counts)
    if keys is None:
        keys = [k for k in next(iter(columns.values())) if "@" in k]
    keys = list(keys)
    width = max([len(k) for k in keys] + [6])
    colw = [max(len(c), 8) for c in cols]
    lines = ["  ".join([f"{'metric':<{width}}"] + [f"{c:>{w}}" for c, w in zip(cols, colw)])]
    lines.append("-" * len(lines[0]))
    for k in keys:
        cells = []
        for c, w in zip(cols, colw):
            v = columns[c].get(k)
            if not isinstance(v, (int, float)):
                cells.append(f"{'-':>{w}}")
            elif c in whole:
                cells.append(f"{int(v):>{w}d}")
            else:
                cells.append(f"{v:>{w}.4f}")
        lines.append("  ".join([f"{k:<{width}}"] + cells))
    return "\n".join(lines)


def ordered_metric_keys(metrics: Mapping[str, float], names: Iterable[str] = ("recall", "ndcg", "precision", "hit", "mrr", "map")) -> list[str]:
    """Metric keys grouped by metric name, K ascending."""
    out = []
    for n in names:
        ks = sorted(int(k.split("@")[1]) for k in metrics if k.startswith(n + "@"))
        out += [f"{n}@{k}" for k in ks]
    return out


def format_learned(values: Mapping[str, float] | None) -> str:
    """Learned scalars of a run (graph / modality weights) as ``name 0.1234, ...``;
    ``fixed`` when there are none."""
    return ", ".join(f"{k} {v:.4f}" for k, v in (values or {}).items()) or "fixed"


def format_graph_weights(options: Mapping[str, Any]) -> str:
    """The weights of a graph exported from a run (its record's ``options``): the learned
    ones (``learned weights: ...``, ``fixed`` when none) and, where it merges modality
    graphs with fixed weights, those (``fixed modality weights: image 0.5000, ...``) or
    the entry-wise maximum it takes (SMORE's fusion graph)."""
    line = f"learned weights: {format_learned(options.get('weights'))}"
    merge = options.get("merge") or {}
    if isinstance(merge.get("fixed_weights"), Mapping):
        line += f"; fixed modality weights: {format_learned(merge['fixed_weights'])}"
    if isinstance(merge.get("max_pooled"), list):
        line += f"; entry-wise max of the {', '.join(map(str, merge['max_pooled']))} graphs"
    return line


def exported_graph_name(record: Any) -> str:
    """What a graph exported from a trained run is (``graphrec export-graph``), for a
    message: ``"user graph"``, ``"item graph"`` or, for one view of several, e.g. ``"text
    item graph"`` (records from before views had none: an item graph)."""
    view = (record.options or {}).get("view")
    if record.nodes == "users":
        return "user graph"
    return "item graph" if view in (None, "item") else f"{view} item graph"


def unseen_in_eval(ds: Any) -> bool:
    """Whether a valid/test interaction of ``ds`` has a user or item without training
    interactions: reading an export of it back needs ``--unseen keep``."""
    import numpy as np

    in_train_u = np.diff(ds.train.indptr) > 0
    in_train_i = np.bincount(ds.train.indices, minlength=ds.n_items) > 0
    for s in ("valid", "test"):
        if s in ds.splits:
            u, i = ds.pairs(s)
            if (~in_train_u[u] | ~in_train_i[i]).any():
                return True
    return False


def read_back_line(ds: Any, fmt: str, out: Any, options: Iterable[str] = (), exact: bool = True) -> str:
    """The ``read back: graphrec prepare --format FMT OUT DATASET_DIR ...`` line an export
    command prints: ``options`` (``--feature ...``), ``--unseen keep`` when ``ds`` needs it
    (:func:`unseen_in_eval`), and the fingerprint the read-back dataset has when ``exact``."""
    import shlex

    words = ["graphrec", "prepare", "--format", fmt, shlex.quote(str(out)), "DATASET_DIR", *options]
    if unseen_in_eval(ds):
        words += ["--unseen", "keep"]
    same = f" (same fingerprint {ds.fingerprint()[:16]})" if exact else ""
    return f"read back{same}: {' '.join(words)}"



def split_line(record: dict[str, Any]) -> str | None:
    """One line on a run's cold-start split (None without one): how it was drawn, its
    cold items and the interactions of each split after it (the run record's figures)."""
    dataset = record.get("dataset") or {}
    tf = dataset.get("transforms") or {}
    stats = dataset.get("stats") or {}
    if tf.get("cold_start"):
        how = (f"cold-start split: {tf['cold_start']:g} of the items ({tf.get('cold_start_protocol', 'papers')} "
               f"protocol, seed {tf.get('cold_start_seed', 0)})")
    elif stats.get("cold_items") is not None:
        how = "cold-start split: the dataset's own"
    else:
        return None
    counts = [f"{s} {stats[f'{s}_interactions']:,}" for s in ("train", "valid", "test")
              if stats.get(f"{s}_interactions") is not None]
    cold = f", {stats['cold_items']:,} cold items" if stats.get("cold_items") is not None else ""
    return how + cold + (f"; interactions {' / '.join(counts)}" if counts else "")
