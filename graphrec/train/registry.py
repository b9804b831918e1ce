"""The model registry: one entry per model, declared once, next to its builder.

A model is registered by decorating its *builder*, the function that turns data (a
:class:`~graphrec.data.Dataset` for ranking models, a CTR schema for CTR models) plus
hyper-parameters into a model. The builder's signature IS the model's typed
hyper-parameter declaration: every parameter after the data has a type, a default and,
through ``Annotated[..., Option(...)]``, its command-line flag and help text::

    from typing import Annotated
    from graphrec.train.registry import Option, register_model

    @register_model("lightgcn", title="LightGCN", paper="He et al., SIGIR 2020",
                    summary="the user-item graph with parameter-free propagation")
    def build_lightgcn(
        dataset: Dataset,
        embedding_dim: Annotated[int, Option("--dim", help="Embedding size.", min=1)] = 64,
        num_layers: Annotated[int, Option("--layers", help="Propagation layers.", min=0)] = 2,
    ) -> LightGCN:
        ...

Everything generic is derived from the entry: ``graphrec train MODEL`` (its options, help
and defaults), ``graphrec models``, ``graphrec evaluate`` and ``export-graph`` (they
rebuild the model from the run record's name and parameters), the RecBole adapter
(:func:`graphrec.interop.recbole.recbole_model`), cold start and run records.

Built-in builders live one module per model in :mod:`graphrec.train.builders` (every
module there is imported when the registry is first used). Other packages register
theirs through the ``graphrec.models`` entry-point group (the entry point names a module
whose import registers its models), or by calling :func:`register_model` before use.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Iterator, Mapping, Optional

from graphrec._checks import renamed
from graphrec.errors import ConfigError, ModelDefinitionError

__all__ = [
    "Option",
    "ParamSpec",
    "FloatRange",
    "IntRange",
    "Choice",
    "TUNABLE_TRAIN_OPTIONS",
    "ModelEntry",
    "TASKS",
    "register_model",
    "unregister_model",
    "get_model",
    "registered_models",
    "model_params",
    "build_model",
    "check_built",
    "reference_hint",
    "reference_renames",
]

#: the tasks a model can serve
TASKS = ("ranking", "ctr")

#: options of the generic fit loop (:class:`~graphrec.train.TrainConfig`) that a search
#: space may search besides the model's own hyper-parameters
TUNABLE_TRAIN_OPTIONS = ("lr", "weight_decay", "batch_size", "lr_decay", "lr_decay_every")


@dataclass(frozen=True)
class Option:
    """How one hyper-parameter appears on the command line (metadata of ``Annotated``).

    Args:
        flags: option names, e.g. ``"--dim"`` or ``"--cf-graph/--no-cf-graph"``; default
            ``--name-with-dashes``.
        help: one line of help text.
        invert: a boolean parameter shown as one negative flag (``--no-cf-graph``), which,
            when given, sets the parameter to ``False``.
        choices: the allowed values (checked on the command line and in Python).
        min, max: the allowed range of a number (inclusive; checked in both places).
        min_open: ``min`` itself is not allowed (e.g. a learning rate > 0).
        cli: whether the parameter gets a command-line option at all.
        cli_type: the type on the command line when it differs from the Python type
            (e.g. ``Optional[str]`` for a ``str | list[str] | None`` modality list).
        to_value: converts the command-line value to the Python value.
        target: ``"model"`` (passed to the builder) or ``"train"`` (a training option
            of the model's fit loop, e.g. GMMF's GAN learning rate).
    """

    flags: str | tuple[str, ...] = ()
    help: str = ""
    invert: bool = False
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    cli: bool = True
    cli_type: Any = None
    to_value: Callable[[Any], Any] | None = None
    target: str = "model"

    def __post_init__(self) -> None:
        if isinstance(self.flags, str):
            object.__setattr__(self, "flags", (self.flags,))
        if self.target not in ("model", "train"):
            raise ModelDefinitionError(f"Option.target must be 'model' or 'train', got {self.target!r}")


@dataclass(frozen=True)
class ParamSpec:
    """One declared hyper-parameter: name, Python type, default and its :class:`Option`."""

    name: str
    type: Any
    default: Any
    option: Option

    @property
    def flags(self) -> tuple[str, ...]:
        return self.option.flags or ("--" + self.name.replace("_", "-"),)

    def check(self, model: str, value: Any, name_flag: bool = True) -> Any:
        """``value`` checked against the declared choices and range (one-line errors, which
        name the command-line flag too unless ``name_flag`` is False: a value from a file)."""
        if value is None:
            return value
        opt = self.option
        # the Python name first, then the flag (not for a value from a file)
        flag = f" ({self.flags[0].split('/')[0]} on the command line)" if opt.cli and name_flag else ""
        want = _scalar_type(self.type)
        if want is not None and not _is_a(value, want):
            raise ConfigError(
                f"{model} option {self.name}={value!r} is a {type(value).__name__}, not a{'n' if want is int else ''} "
                f"{want.__name__}{flag}"
            )
        if opt.choices and value not in opt.choices:
            raise ConfigError(
                f"{model} option {self.name}={value!r} is not one of {', '.join(map(str, opt.choices))}{flag}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and math.isnan(value):
                raise ConfigError(f"{model} option {self.name} is NaN: give a number{flag}")
            if opt.min is not None and (value < opt.min or (opt.min_open and value == opt.min)):
                bound = f"> {opt.min}" if opt.min_open else f">= {opt.min}"
                raise ConfigError(f"{model} option {self.name} must be {bound}, got {value}{flag}")
            if opt.max is not None and value > opt.max:
                raise ConfigError(f"{model} option {self.name} must be <= {opt.max}, got {value}{flag}")
        return value


def _scalar_type(annotation: Any) -> type | None:
    """``bool``, ``int``, ``float`` or ``str`` where a declared type is one of them (or
    Optional of one); None for anything richer (lists, mappings, unions of several)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        annotation = args[0]
    return annotation if annotation in (bool, int, float, str) else None


def _is_a(value: Any, want: type) -> bool:
    """``value`` fits a declared ``bool`` / ``int`` / ``float`` / ``str`` (an integer is a
    float; a bool is neither an integer nor a float; numpy scalars count as theirs)."""
    import numpy as np

    if want is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if want is int:
        return isinstance(value, (int, np.integer))
    if want is float:
        return isinstance(value, (int, float, np.integer, np.floating))
    return isinstance(value, str)


@dataclass(frozen=True)
class FloatRange:
    """A searched real hyper-parameter in ``[low, high]`` (``graphrec tune``): uniform, or
    log-uniform with ``log=True``, or on the grid ``low, low + step, ...`` with ``step``."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        _check_range(self, float)


@dataclass(frozen=True)
class IntRange:
    """A searched integer hyper-parameter in ``[low, high]`` (both included), every
    ``step``-th value, or log-uniform with ``log=True`` (``graphrec tune``)."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        _check_range(self, int)


@dataclass(frozen=True)
class Choice:
    """A searched hyper-parameter taking one of ``values`` (``graphrec tune``)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise ModelDefinitionError("Choice needs at least one value")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ModelDefinitionError(f"Choice{self.values!r} repeats a value")


def _check_range(r: FloatRange | IntRange, typ: type) -> None:
    name = type(r).__name__
    for bound in (r.low, r.high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise ModelDefinitionError(f"{name} bounds must be finite numbers, got {r.low!r}, {r.high!r}")
        if typ is int and int(bound) != bound:
            raise ModelDefinitionError(f"{name} bounds must be integers, got {r.low!r}, {r.high!r}")
    if not r.low < r.high:
        raise ModelDefinitionError(f"{name} needs low < high, got {r.low!r}, {r.high!r}")
    if r.log and r.low <= 0:
        raise ModelDefinitionError(f"{name} with log=True needs low > 0, got {r.low!r}")
    plain_step = 1 if typ is int else None  # the step that means "every value"
    if r.step is not None and r.step != plain_step:
        if r.step <= 0 or r.log or (typ is int and int(r.step) != r.step):
            raise ModelDefinitionError(
                f"{name} step must be a positive {typ.__name__} and cannot be combined with log=True")


#: one entry of a search space
SearchDim = FloatRange | IntRange | Choice


@dataclass(frozen=True)
class ModelEntry:
    """A registered model (see the module doc).

    Attributes:
        name: the command and record name (``graphrec train NAME``).
        task: ``"ranking"`` (top-k, BPR-style, :class:`~graphrec.models.Recommender`) or
            ``"ctr"`` (click probability, :class:`~graphrec.models.ctr.CTRModel`).
        title: the model's usual name (``"LightGCN"``).
        paper: the citation, e.g. ``"He et al., LightGCN, SIGIR 2020"``.
        summary: one line on what it computes.
        build: the builder ``build(data, **params) -> model``.
        params: the declared hyper-parameters, in signature order.
        example: an example command line (shown by ``--help``).
        description: longer help text (the builder's docstring by default).
        needs_features: the model needs item content features (or a function of the
            parameters saying whether it does).
        trainable: ``False`` for a model without parameters (content kNN): ``graphrec
            train`` then hides the optimiser options.
        content_modalities: ``(model, dataset, params) -> modalities`` behind the item
            graph of a built model (for ``export-graph``'s provenance), if it has one.
        check: ``(dataset, params) -> None``, a cheap check that a complete set of
            hyper-parameters can train on a dataset, raising the builder's own one-line
            :class:`~graphrec.errors.ConfigError` or :class:`~graphrec.errors.DataError`
            where not (e.g. a parameter that has no effect there, a modality the data
            lack); ``graphrec tune --grid`` runs it on every grid point before any
            training, ``graphrec tune`` on the space's fixed settings (and the values
            it lists) before any study exists. Builders call it themselves, so the two
            cannot drift apart.
        train_defaults: defaults of the generic training options that differ for this
            model (e.g. ``{"lr": 1e-4}``; fields that ``graphrec train`` sets, by field name:
            :data:`graphrec.train.commands.TRAIN_OPTIONS`), used by ``graphrec train``.
        search_space: the default search space of ``graphrec tune``: hyper-parameter (or
            one of :data:`TUNABLE_TRAIN_OPTIONS`) -> :class:`FloatRange`,
            :class:`IntRange` or :class:`Choice`; empty when the model declares none.
        reference_grids: named grids of a reference implementation (``{"mmrec": {...}}``),
            each in the form of a ``--space`` file (hyper-parameter or training option ->
            list of values, or a fixed value) in graphrec's names and scales:
            ``graphrec tune MODEL --space mmrec --grid`` searches exactly that grid.
        reference_names: the names a reference implementation gives the model's
            hyper-parameters where they differ from graphrec's (``{"mmrec": {"knn_k": "k",
            "cl_loss": "cl_weight"}}``): its name -> graphrec's hyper-parameter of the same
            meaning, optionally followed by ``": "`` and how to write the value in
            graphrec's form where it is not the value itself (``"mm_image_weight":
            "modality_weights: {image: W, text: 1 - W}"``, ``W`` standing for the value
            written). The RecBole adapter refuses these names, naming graphrec's
            (:mod:`graphrec.interop.recbole`); the model's doc page lists them in its
            parameter table. A name the model declares itself cannot be one.
        loss: what the model's recorded training loss sums, as ``graphrec plot`` labels its
            axis: ``"BPR loss"`` where it is BPR (plus L2) alone, else ``"training loss"``
            (a self-supervised or auxiliary term in it).
        resolve: ``(params) -> params``, the complete hyper-parameters with the values the
            builder gives those left ``None`` whose default follows other parameters
            (e.g. LATTICE's ``reg_weight``, which follows ``parity``); a value that
            depends on the data stays ``None``. The builder uses the same rule, and
            ``graphrec tune`` places a new study's first trial at the resolved defaults.
    """

    name: str
    task: str
    title: str
    paper: str
    summary: str
    build: Callable[..., Any]
    params: tuple[ParamSpec, ...]
    example: str = ""
    description: str = ""
    needs_features: bool | Callable[[Mapping[str, Any]], bool] = False
    trainable: bool = True
    content_modalities: Callable[..., tuple[str, ...]] | None = None
    check: Callable[[Any, Mapping[str, Any]], None] | None = None
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, SearchDim] = field(default_factory=dict)
    reference_grids: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resolve: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    reference_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    loss: str = "training loss"

    @property
    def defaults(self) -> dict[str, Any]:
        """The model's hyper-parameters at their defaults (``target="model"`` only)."""
        return {p.name: p.default for p in self.params if p.option.target == "model"}

    @property
    def train_params(self) -> tuple[ParamSpec, ...]:
        """Declared training options of the model (``Option(target="train")``)."""
        return tuple(p for p in self.params if p.option.target == "train")

    @property
    def passes_more(self) -> bool:
        """The builder takes ``**kwargs``: undeclared keyword arguments pass through to
        the model's constructor (Python only; they get no command-line option)."""
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(self.build).parameters.values())

    def uses_features(self, params: Mapping[str, Any] | None = None) -> bool:
        """Whether the model, with ``params``, needs item content features."""
        nf = self.needs_features
        return bool(nf(dict(self.defaults, **(params or {})))) if callable(nf) else bool(nf)

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


_REGISTRY: dict[str, ModelEntry] = {}
_LOADED = False


def _load() -> None:
    """Import the built-in builders (one module per model) and the ``graphrec.models``
    entry points, once."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import graphrec.train.builders  # noqa: F401  (registers the built-in models)

    try:
        from importlib.metadata import entry_points

        eps = entry_points(group="graphrec.models")
    except Exception:  # pragma: no cover - importlib.metadata is in the standard library
        eps = ()
    for ep in eps:
        try:
            ep.load()
        except Exception as e:  # a broken plug-in must not break graphrec
            import warnings

            warnings.warn(f"graphrec: the model plug-in {ep.name!r} ({ep.value}) failed to load: {e}", stacklevel=2)


def _param_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The type hints of a builder's parameters, resolved in the builder's module (its return
    annotation is left alone: it may name a class imported only under ``TYPE_CHECKING``)."""
    annotations = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k != "return"}
    holder = types.SimpleNamespace(__annotations__=annotations)
    try:
        return typing.get_type_hints(holder, globalns=getattr(fn, "__globals__", {}), include_extras=True)
    except NameError as e:
        raise ModelDefinitionError(
            f"builder {fn.__qualname__}: a hyper-parameter's type names {getattr(e, 'name', None) or e}, which is not "
            "defined in the builder's module: import it at module level (not under TYPE_CHECKING)"
        ) from None


def _merged_option(options: list[Option]) -> Option:
    """The :class:`Option` metadata of a hyper-parameter's ``Annotated`` as one: each
    later one overrides the fields it sets (``Annotated[Reg, Option(help=...)]`` keeps the
    shared alias's flag and range and changes its help)."""
    if len(options) == 1:
        return options[0]
    plain = Option()
    fields: dict[str, Any] = {}
    for opt in options:
        for f in dataclasses.fields(Option):
            value = getattr(opt, f.name)
            if value != getattr(plain, f.name):
                fields[f.name] = value
    return Option(**fields)


def _declared_params(fn: Callable[..., Any]) -> tuple[ParamSpec, ...]:
    """The hyper-parameters of a builder: every parameter after the first (the data), each
    with a type annotation and a default."""
    hints = _param_hints(fn)
    sig = inspect.signature(fn)
    names = list(sig.parameters)
    if not names:
        raise ModelDefinitionError(f"builder {fn.__qualname__} takes no data argument: its first parameter is the "
                                   "dataset (ranking) or the CTR schema")
    out = []
    for name in names[1:]:
        p = sig.parameters[name]
        if p.kind == p.VAR_KEYWORD:  # further keyword arguments pass through (Python only)
            continue
        if p.kind == p.VAR_POSITIONAL:
            raise ModelDefinitionError(f"builder {fn.__qualname__}: *args cannot be declared hyper-parameters")
        if p.default is p.empty:
            raise ModelDefinitionError(f"builder {fn.__qualname__}: hyper-parameter {name!r} needs a default")
        if name not in hints:  # typer would pass the command line's text, and nothing could check a value
            typ = type(p.default).__name__ if isinstance(p.default, (bool, int, float, str)) else "float"
            raise ModelDefinitionError(
                f"builder {fn.__qualname__}: hyper-parameter {name!r} needs a type annotation (e.g. "
                f"`{name}: {typ} = {p.default!r}` or `{name}: Annotated[{typ}, Option(help=...)] = {p.default!r}`)"
            )
        hint = hints[name]
        option = Option()
        if typing.get_origin(hint) is Annotated:
            base, *meta = typing.get_args(hint)
            options = [m for m in meta if isinstance(m, Option)]
            if options:  # Annotated[SharedAlias, Option(...)]: the later ones override what they set
                option = _merged_option(options)
            hint = base
        out.append(ParamSpec(name, hint, p.default, option))
    return tuple(out)


def _check_flags(name: str, params: tuple[ParamSpec, ...]) -> None:
    """Every command-line flag of a model names one hyper-parameter (two options on one
    flag: the later one could never be set), and looks like ``--name``."""
    seen: dict[str, str] = {}
    for p in params:
        if not p.option.cli:
            continue
        for flag in p.flags:
            for part in flag.split("/"):
                part = part.strip()
                if not part.startswith("--") or len(part) < 3 or " " in part:
                    raise ModelDefinitionError(f"model {name!r}: hyper-parameter {p.name!r} has the flag {part!r}: "
                                               "a flag looks like --name-with-dashes")
                if part in seen:
                    raise ModelDefinitionError(
                        f"model {name!r}: hyper-parameters {seen[part]!r} and {p.name!r} both take the flag {part}: "
                        "give one of them another (Option('--other-flag'))"
                    )
                seen[part] = p.name


def _cold_path_options(
    data: Any,
    cold_path: Annotated[
        str,
        Option(
            help="Items without training interactions (cold-start, new) scored by the cold-item path "
            "(content tower + item-graph neighbours, docs/models/cold-start.md), or none: the model alone.",
            choices=("none", "content"),
        ),
    ] = "none",
    cold_k: Annotated[int, Option(help="Cold-item path: neighbours per item in its content kNN graph.", min=1)] = 50,
    cold_modalities: Annotated[
        Optional[str], Option(help="Cold-item path: modalities fused early for its content input [the model's "
                              "--modalities; all when it has none].")
    ] = None,
    cold_objective: Annotated[
        str,
        Option(
            help="Cold-item path training: regress its scores onto the model's (DropoutNet) or "
            "rank them with BPR against the model's.",
            choices=("regress", "rank"),
        ),
    ] = "regress",
) -> None:
    """The cold-item path's options, which every trainable ranking model accepts
    (:func:`graphrec.train.builders._cold.attach_cold_path`)."""


#: the options of the cold-item path, appended to every trainable ranking model's
COLD_PATH_PARAMS: tuple[ParamSpec, ...] = _declared_params(_cold_path_options)
COLD_PATH_KEYS = ("cold_path", "cold_k", "cold_modalities", "cold_objective")


def _first_line(text: str | None) -> str:
    return (inspect.cleandoc(text or "").split("\n\n")[0]).replace("\n", " ").strip()


def register_model(
    name: str,
    *,
    title: str,
    paper: str,
    summary: str,
    task: str = "ranking",
    example: str = "",
    needs_features: bool | Callable[[Mapping[str, Any]], bool] = False,
    trainable: bool = True,
    content_modalities: Callable[..., tuple[str, ...]] | None = None,
    check: Callable[[Any, Mapping[str, Any]], None] | None = None,
    train_defaults: Mapping[str, Any] | None = None,
    search_space: Mapping[str, SearchDim] | None = None,
    reference_grids: Mapping[str, Mapping[str, Any]] | None = None,
    resolve: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    reference_names: Mapping[str, Mapping[str, str]] | None = None,
    loss: str = "training loss",
    replace: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder as model ``name`` (see the module doc).

    ``search_space`` declares what ``graphrec tune`` searches by default (see
    :class:`ModelEntry`); every name in it must be a declared hyper-parameter or one of
    :data:`TUNABLE_TRAIN_OPTIONS`, and numeric bounds must satisfy the declared range.
    ``reference_grids`` names the grids of a reference implementation (see
    :class:`ModelEntry`); their keys are checked the same way, their values when a
    study resolves them (:func:`graphrec.train.space.search_space`). ``reference_names``
    maps a reference implementation's names to graphrec's (see :class:`ModelEntry`);
    every target must be a declared hyper-parameter, no name one.

    ``replace=True`` lets a plug-in or a test replace an existing entry; otherwise a name
    registered twice is an error (two models must not silently share a command).
    """
    if task not in TASKS:
        raise ModelDefinitionError(f"model {name!r}: task must be one of {', '.join(TASKS)}, got {task!r}")
    if not name or not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
        raise ModelDefinitionError(f"model name {name!r} must be lower-case letters, digits, '-' or '_'")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        try:
            _register(fn)
        except ModelDefinitionError as e:  # named by the builder's module: the file to fix
            raise ModelDefinitionError(f"{getattr(fn, '__module__', '?')}: {e}") from None
        return fn

    def _register(fn: Callable[..., Any]) -> None:
        if not (getattr(fn, "__module__", None) or "").startswith("graphrec.train.builders"):
            _load()  # a plug-in's name is checked against (and replaces) the built-in models, never the reverse
        if name in _REGISTRY and not replace and not _same_definition(_REGISTRY[name].build, fn):
            raise ModelDefinitionError(f"model {name!r} is already registered (by {_REGISTRY[name].build.__module__}): "
                                       "choose another name, or pass replace=True to replace it")
        if task == "ranking" and train_defaults:
            from graphrec.train.commands import TRAIN_OPTIONS  # here: that module imports the train package

            unknown = sorted(set(train_defaults) - set(TRAIN_OPTIONS.values()))
            if unknown:  # graphrec train could not apply them: its command and the Python API would differ
                raise ModelDefinitionError(
                    f"model {name!r}: train_defaults {', '.join(unknown)} are not options graphrec train "
                    f"sets (valid: {', '.join(TRAIN_OPTIONS.values())})")
        entry = ModelEntry(
            name=name,
            task=task,
            title=title,
            paper=paper,
            summary=summary,
            build=fn,
            params=_declared_params(fn) + (COLD_PATH_PARAMS if task == "ranking" and trainable else ()),
            example=example,
            description=inspect.cleandoc(fn.__doc__ or ""),
            needs_features=needs_features,
            trainable=trainable,
            content_modalities=content_modalities,
            check=check,
            train_defaults=dict(train_defaults or {}),
            search_space=dict(search_space or {}),
            reference_grids={k: dict(v) for k, v in (reference_grids or {}).items()},
            resolve=resolve,
            reference_names={k: dict(v) for k, v in (reference_names or {}).items()},
            loss=loss,
        )
        _check_flags(name, entry.params)
        _check_space(entry)
        _check_grids(entry)
        _check_reference_names(entry)
        _REGISTRY[name] = entry

    return decorate


def _same_definition(old: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """``new`` is ``old`` defined again: the same function of the same module (a notebook
    cell or a reloaded module run twice), which replaces it without ``replace=True``."""
    key = ("__module__", "__qualname__")
    return all(getattr(old, k, None) == getattr(new, k, None) is not None for k in key)


def _check_grids(entry: ModelEntry) -> None:
    """Reference grids have lower-case names and name declared hyper-parameters or
    tunable training options (a :class:`ModelDefinitionError` when not, found at registration)."""
    names = {p.name for p in entry.params if p.option.target == "model"} | set(TUNABLE_TRAIN_OPTIONS)
    for grid, values in entry.reference_grids.items():
        if not grid or grid != grid.lower() or not grid.replace("-", "").replace("_", "").isalnum():
            raise ModelDefinitionError(
                f"model {entry.name!r}: reference grid name {grid!r} must be lower-case letters or digits")
        unknown = sorted(set(values) - names)
        if unknown:
            raise ModelDefinitionError(
                f"model {entry.name!r}: reference grid {grid!r} names {', '.join(unknown)}, which are "
                            f"neither hyper-parameters nor one of {', '.join(TUNABLE_TRAIN_OPTIONS)}")


def _check_reference_names(entry: ModelEntry) -> None:
    """Reference names are lower-case identifiers that the model does not declare itself,
    each naming a declared hyper-parameter (a :class:`ModelDefinitionError` when not, found at registration)."""
    names = {p.name for p in entry.params if p.option.target == "model"}
    for ref, renames in entry.reference_names.items():
        if not ref or ref != ref.lower() or not ref.replace("-", "").replace("_", "").isalnum():
            raise ModelDefinitionError(f"model {entry.name!r}: reference {ref!r} must be lower-case letters or digits")
        for theirs, ours in renames.items():
            target = ours.partition(":")[0].strip()
            if not theirs.isidentifier() or theirs in names:
                raise ModelDefinitionError(
                    f"model {entry.name!r}: reference name {theirs!r} of {ref!r} must be an identifier "
                                "that is not one of the model's own hyper-parameters")
            if target not in names:
                raise ModelDefinitionError(
                    f"model {entry.name!r}: reference name {theirs!r} of {ref!r} stands for {target!r}, "
                                "which is not a hyper-parameter")


def _check_space(entry: ModelEntry) -> None:
    """A declared search space names declared hyper-parameters (or tunable training
    options) and stays inside their declared ranges and choices (a :class:`ModelDefinitionError`
    when not: a mistake of the model's author, found when the model registers)."""
    specs = {p.name: p for p in entry.params if p.option.target == "model"}
    for key, dim in entry.search_space.items():
        if not isinstance(dim, (FloatRange, IntRange, Choice)):
            raise ModelDefinitionError(
                f"model {entry.name!r}: search_space[{key!r}] must be a FloatRange, IntRange or Choice")
        if key in TUNABLE_TRAIN_OPTIONS:
            continue
        if key not in specs:
            raise ModelDefinitionError(
                f"model {entry.name!r}: search_space names {key!r}, which is neither a hyper-parameter "
                f"nor one of {', '.join(TUNABLE_TRAIN_OPTIONS)}"
            )
        values = dim.values if isinstance(dim, Choice) else (dim.low, dim.high)
        for value in values:
            try:
                specs[key].check(entry.name, value)
            except ConfigError as e:
                raise ModelDefinitionError(f"model {entry.name!r}: search_space[{key!r}]: {e}") from None


#: how the messages name a reference implementation of ``reference_names``
REFERENCE_TITLES = {"mmrec": "MMRec", "recbole": "RecBole"}

#: MMRec's and RecBole's names of the training options (their ``overall.yaml``) and of
#: the embedding size, graphrec's option for each: what an unknown-option message suggests
TRAINING_REFERENCE_NAMES = {
    "learning_rate": "lr", "train_batch_size": "batch_size", "stopping_step": "patience", "eval_step": "eval_every",
    "embedding_size": "embedding_dim", "learning_rate_scheduler": "lr_decay",
}


def reference_renames(entry: ModelEntry) -> dict[str, tuple[str, str, str]]:
    """``{their name: (reference, graphrec's hyper-parameter, how to write the value)}``
    of a model's ``reference_names``; ``how`` is empty where it is the value itself (the
    first reference naming a key wins)."""
    out: dict[str, tuple[str, str, str]] = {}
    for ref, names in entry.reference_names.items():
        for theirs, ours in names.items():
            target, _, how = ours.partition(":")
            out.setdefault(theirs, (ref, target.strip(), ours.strip() if how else ""))
    return out


def reference_hint(entry: ModelEntry, key: str) -> str | None:
    """What ``key``, a name the model does not declare, is in graphrec's names, when it is a
    reference implementation's (the entry's ``reference_names``, or MMRec's and RecBole's
    training names, :data:`TRAINING_REFERENCE_NAMES`): e.g. ``"knn_k is MMRec's name for
    FREEDOM's k (--k)"``; None otherwise. The unknown-option messages of the command line,
    :func:`model_params` and ``--space`` files add it."""
    key = key.replace("-", "_")
    rename = reference_renames(entry).get(key)
    if rename is not None:
        ref, target, how = rename
        flag = entry.param(target).flags[0].split("/")[0]
        hint = f"{key} is {REFERENCE_TITLES.get(ref, ref)}'s name for {entry.title}'s {target} ({flag})"
        return hint + (f", its value W meaning {how.partition(':')[2].strip()}" if how else "")
    ours = TRAINING_REFERENCE_NAMES.get(key)
    if ours is None:
        return None
    if ours == "embedding_dim":
        if "embedding_dim" not in {p.name for p in entry.params}:
            return None
        flag = entry.param("embedding_dim").flags[0]
    else:
        flag = "--" + ours.replace("_", "-")
    return f"{key} is MMRec's and RecBole's name for {ours} ({flag})"


def unregister_model(name: str) -> None:
    """Remove model ``name`` from the registry (tests, plug-ins replacing a model)."""
    _REGISTRY.pop(name, None)


def registered_models(task: str | None = None) -> list[ModelEntry]:
    """Every registered model (of ``task`` when given): ranking models first, by name."""
    _load()
    entries = [e for e in _REGISTRY.values() if task is None or e.task == task]
    return sorted(entries, key=lambda e: (TASKS.index(e.task), e.name))


def get_model(name: str, task: str | None = None) -> ModelEntry:
    """The entry of model ``name``; a one-line error listing the models otherwise."""
    if not isinstance(name, str):  # build_model(dataset, "lightgcn"): the arguments swapped
        raise ConfigError(f"a model name is a string, e.g. 'lightgcn', got a {type(name).__name__}: "
                          "build_model(name, dataset, params) takes the name first")
    _load()
    entry = _REGISTRY.get(name)
    if entry is None or (task is not None and entry.task != task):
        names = ", ".join(e.name for e in registered_models(task))
        what = {"ranking": "ranking model", "ctr": "CTR model"}.get(task or "", "model")
        if entry is not None:  # registered for the other task: "unknown" would be wrong
            other = {"ranking": "a ranking model", "ctr": "a CTR model"}[entry.task]
            raise ConfigError(f"{name!r} is {other}, and this takes a {what}: one of {names}")
        raise ConfigError(f"unknown {what} {name!r}: available are {names} (graphrec models lists them)")
    return entry


class _RegistryView(Mapping[str, ModelEntry]):
    """Read-only ``name -> entry`` view of the registry (loads it on first use)."""

    def __init__(self, task: str | None = None) -> None:
        self._task = task

    def _items(self) -> dict[str, ModelEntry]:
        _load()
        return {k: v for k, v in _REGISTRY.items() if self._task is None or v.task == self._task}

    def __getitem__(self, name: str) -> ModelEntry:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"<graphrec models: {', '.join(self._items())}>"


#: every registered ranking model, ``name -> ModelEntry`` (``.defaults``, ``.build``)
RANKING_MODELS: Mapping[str, ModelEntry] = _RegistryView("ranking")


def model_params(name: str, overrides: Mapping[str, Any] | None = None, task: str | None = "ranking") -> dict[str, Any]:
    """Defaults of model ``name`` updated with ``overrides``: unknown keys, values
    outside a declared range or choice are one-line errors; ``None`` keeps the default."""
    entry = get_model(name, task)
    params = entry.defaults
    specs = {p.name: p for p in entry.params}
    for key, value in (overrides or {}).items():
        if key not in specs or specs[key].option.target != "model":
            if entry.passes_more:
                params[key] = value
                continue
            hint = reference_hint(entry, key)
            raise ConfigError(f"model {name!r} has no option {key!r}" + (f" ({hint})" if hint else "")
                              + f": valid are {', '.join(sorted(params))}")
        if value is not None:
            params[key] = specs[key].check(name, value)
    return params


def cold_modalities(params: Mapping[str, Any], cold: Mapping[str, Any]) -> Any:
    """The modalities the cold-item path fuses: ``cold_modalities`` when given, else the
    model's own ``modalities`` (None, every modality of the dataset, where it has none), so
    that ``--modalities image`` trains the model and its path on the same content."""
    chosen = cold.get("cold_modalities")
    return params.get("modalities") if chosen is None else chosen


def check_built(entry: ModelEntry, model: Any) -> Any:
    """``model``, what ``entry``'s builder returned, when it is a model of the entry's task
    (a :class:`~graphrec.models.Recommender` or a :class:`~graphrec.models.ctr.CTRModel`);
    a one-line :class:`ModelDefinitionError` naming the builder otherwise (a forgotten
    ``return``, a tuple, a plain ``nn.Module``)."""
    if entry.task == "ranking":
        from graphrec.models.base import Recommender as base
    else:
        from graphrec.models.ctr.base import CTRModel as base
    if not isinstance(model, base):
        what = "None (no return statement?)" if model is None else f"a {type(model).__name__}"
        raise ModelDefinitionError(
            f"builder {entry.build.__module__}.{entry.build.__qualname__} of model {entry.name!r} returned {what}, "
            f"not a {base.__module__.rsplit('.', 1)[0]}.{base.__name__}: return the model it builds"
        )
    return model


@renamed(data="dataset")
def build_model(name: str, dataset: Any, params: Mapping[str, Any] | None = None, *, progress: bool = False) -> Any:
    """Construct ranking model ``name`` for ``dataset`` (a :class:`~graphrec.data.Dataset`)
    with the hyper-parameters ``params`` (on the CPU; move it with ``.to(device)``), with
    the cold-item path around it when ``cold_path`` asks for one. ``progress``: the
    item graphs the builder builds (kNN searches, co-interaction blocks) show progress
    bars (:func:`graphrec.graphs.build.build_progress`); the model does not depend on it."""
    from graphrec.graphs.build import build_progress

    entry = get_model(name, "ranking")
    params = model_params(name, params)
    cold = {k: params.pop(k) for k in COLD_PATH_KEYS if k in params}
    with build_progress(progress):
        model = check_built(entry, entry.build(dataset, **params))
        if cold.get("cold_path", "none") != "none":
            from graphrec.train.builders._cold import attach_cold_path

            model = attach_cold_path(model, dataset, k=cold["cold_k"], modalities=cold_modalities(params, cold),
                                     objective=cold["cold_objective"])
    from graphrec.train.fit import training_key  # (fit imports this module)

    model.built_on = training_key(dataset)  # fit refuses a dataset with other training interactions
    return model
