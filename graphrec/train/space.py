"""Search spaces of ``graphrec tune``: a model's declared default, a YAML file over it.

A model declares its default search space with its builder
(``register_model(..., search_space={...})``, :mod:`graphrec.train.registry`). A YAML
file (``graphrec tune --space FILE``) changes it entry by entry: one key per
hyper-parameter (its Python name, e.g. ``reg_weight``, not the flag ``--reg``) or
searchable training option (:data:`~graphrec.train.registry.TUNABLE_TRAIN_OPTIONS`)::

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (log-uniform)
    num_layers: {low: 1, high: 3}                 # an integer range: the parameter is an int
    k: {low: 5, high: 40, step: 5}                # every 5th value
    embedding_dim: [32, 64, 128]                  # one of these values
    lambda_coeff: {choices: [0.5, 0.9]}           # the same, spelled out
    reg_weight: 1.0e-4                            # fixed: no longer searched
    item_layers: null                             # not searched: the model's default

A key replaces the model's entry of that name or adds one; a plain value fixes the
parameter; ``null`` drops the entry (the parameter keeps its default, e.g. MM-GEF's
``k`` when ``use_knn_graph: false`` leaves no content graph for it to size). Whether a range is of integers or reals follows the parameter's declared
type. Numbers PyYAML reads as text (``1e-4`` without a dot) are accepted.

Nothing here imports Optuna: :func:`suggest` only calls the trial's ``suggest_*``
methods.
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from graphrec.errors import ConfigError
from graphrec.train.config import TrainConfig
from graphrec.train.registry import (
    TUNABLE_TRAIN_OPTIONS, Choice, FloatRange, IntRange, ModelEntry, get_model, model_params, reference_hint,
)

__all__ = ["SearchSpace", "load_space_file", "search_space", "suggest", "split_options", "dim_to_dict",
           "dim_from_dict", "grid_values", "as_suggested", "yaml_flow"]

#: the declared type of each searchable training option
_TRAIN_TYPES: dict[str, type] = {"lr": float, "weight_decay": float, "batch_size": int, "lr_decay": float, "lr_decay_every": int}
_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class SearchSpace:
    """What a study searches: ``searched`` (name -> range or choice) and ``fixed`` (name
    -> value) hyper-parameters of ``model``; names in
    :data:`~graphrec.train.registry.TUNABLE_TRAIN_OPTIONS` are training options, the
    others the model's."""

    model: str
    searched: Mapping[str, FloatRange | IntRange | Choice]
    fixed: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored with the study; equal spaces give equal dicts)."""
        return {
            "searched": {k: dim_to_dict(v) for k, v in sorted(self.searched.items())},
            "fixed": {k: self.fixed[k] for k in sorted(self.fixed)},
        }

    def describe(self) -> list[str]:
        """One line per entry, e.g. ``lr: 0.0001 .. 0.01 (log)``."""
        out = []
        for k, dim in self.searched.items():
            if isinstance(dim, Choice):
                out.append(f"{k}: one of {', '.join(map(str, dim.values))}")
            else:
                extra = " (log)" if dim.log else (f" (step {dim.step})" if dim.step not in (None, 1) else "")
                out.append(f"{k}: {dim.low:g} .. {dim.high:g}{extra}")
        out += [f"{k}: {v!r} (fixed)" for k, v in self.fixed.items()]
        return out


def dim_to_dict(dim: FloatRange | IntRange | Choice) -> dict[str, Any]:
    """A range or choice as a JSON-able dict (the YAML entry's spelled-out form)."""
    if isinstance(dim, Choice):
        return {"choices": list(dim.values)}
    d: dict[str, Any] = {"type": "int" if isinstance(dim, IntRange) else "float", "low": dim.low, "high": dim.high}
    if dim.log:
        d["log"] = True
    if dim.step not in (None, 1):
        d["step"] = dim.step
    return d


def dim_from_dict(d: Mapping[str, Any]) -> FloatRange | IntRange | Choice:
    """Inverse of :func:`dim_to_dict`."""
    if "choices" in d:
        return Choice(tuple(d["choices"]))
    cls = IntRange if d["type"] == "int" else FloatRange
    kw = {k: d[k] for k in ("log", "step") if k in d}
    return cls(d["low"], d["high"], **kw)


def load_space_file(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML mapping of a ``--space`` file (entries unchecked: :func:`search_space`
    checks them against the model); a missing file, bad YAML or a non-mapping is a
    one-line :class:`ConfigError`."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--space {path} is a folder: give a YAML file (format in docs/tune.md)")
    if not path.is_file():
        raise ConfigError(f"--space {path}: no such file")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_unique_keys_loader())
    except _DuplicateKey as e:
        raise ConfigError(f"--space {path}: {e.key!r} is given twice (line {e.line}): keep one of them") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"--space {path}: not valid YAML{at}: fix the file (format in docs/tune.md)") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"--space {path}: must be a mapping of hyper-parameter names to ranges (docs/tune.md)")
    return values


class _DuplicateKey(Exception):
    """A YAML mapping names one key twice (``key``, at ``line``, 1-based)."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"{key!r} at line {line}")
        self.key, self.line = key, line


def _unique_keys_loader() -> type:
    """PyYAML's safe loader refusing a mapping that names a key twice (PyYAML keeps the
    last value silently): :class:`_DuplicateKey`."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    again = key in seen
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    break
                if again:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def search_space(
    model: str, overrides: Mapping[str, Any] | str | None = None, source: str = "--space"
) -> SearchSpace:
    """Model ``model``'s declared search space changed by ``overrides`` (the YAML
    mapping of :func:`load_space_file`, module doc), or, for a name (``"mmrec"``), the
    model's reference grid of that name INSTEAD of its declared space (what the grid
    does not name stays at the model's defaults). Every name, range and fixed value is
    checked against the model's declaration (one-line :class:`ConfigError` naming
    ``source`` and the entry); an empty result is an error."""
    entry = get_model(model, "ranking")
    searched: dict[str, Any] = dict(entry.search_space)
    if isinstance(overrides, str):
        grids = entry.reference_grids
        if overrides not in grids:
            known = f"its grids: {', '.join(sorted(grids))}" if grids else "it declares none"
            raise ConfigError(f"{source}: no such file, and {model} has no reference grid {overrides!r} ({known})")
        searched, overrides = {}, grids[overrides]
    fixed: dict[str, Any] = {}
    for key, raw in (overrides or {}).items():
        key = str(key)
        typ = _declared_type(entry, key, source)
        searched.pop(key, None)
        fixed.pop(key, None)
        if raw is None:  # dropped: the parameter keeps its default
            continue
        if isinstance(raw, list) or (isinstance(raw, dict) and "choices" in raw):
            dim = _choice(entry, key, raw, typ, source)
            if len(dim.values) == 1:
                fixed[key] = dim.values[0]
            else:
                searched[key] = dim
        elif isinstance(raw, dict):
            searched[key] = _range(entry, key, raw, typ, source)
        else:
            fixed[key] = _check_value(entry, key, _number(raw, typ, key, source), source)
    model_fixed = {k: v for k, v in fixed.items() if k not in TUNABLE_TRAIN_OPTIONS}
    model_params(model, model_fixed)  # the builder's own checks of names and values
    if not searched:
        if entry.search_space or isinstance(overrides, Mapping) and overrides:  # a space left with fixed values only
            raise ConfigError(
                f"nothing to search for {model}: {source} fixes every parameter it names and leaves no other "
                "searched; give at least one a list of values or a range (docs/tune.md)"
            )
        raise ConfigError(
            f"nothing to search for {model}: it declares no search space and {source} searches nothing; "
            "give ranges in a --space file (docs/tune.md)"
        )
    return SearchSpace(model, searched, fixed)


def split_options(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model parameters, training options)`` of a point's values: the names in
    :data:`~graphrec.train.registry.TUNABLE_TRAIN_OPTIONS` are training options."""
    train = {k: v for k, v in values.items() if k in TUNABLE_TRAIN_OPTIONS}
    return {k: v for k, v in values.items() if k not in train}, train


def suggest(trial: Any, space: SearchSpace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial's values: ``(model parameters, training options)``, fixed ones included."""
    values = dict(space.fixed)
    for key, dim in space.searched.items():
        if isinstance(dim, Choice):
            values[key] = trial.suggest_categorical(key, list(dim.values))
        elif isinstance(dim, IntRange):
            values[key] = trial.suggest_int(key, int(dim.low), int(dim.high), step=int(dim.step), log=dim.log)
        else:
            values[key] = _on_grid(dim, trial.suggest_float(key, float(dim.low), float(dim.high), step=dim.step,
                                                            log=dim.log))
    return split_options(values)


def _on_grid(dim: FloatRange | IntRange | Choice, value: Any) -> Any:
    """A value of ``dim`` as the model receives it: a stepped real range's rounded to its
    grid (Optuna's ``low + i * step`` is 0.30000000000000004 for 0.3); others unchanged.
    The one rounding of stepped values: :func:`suggest`, :func:`grid_values`,
    :func:`as_suggested`."""
    if isinstance(dim, FloatRange) and dim.step is not None and isinstance(value, (int, float)):
        return round(float(value), 12)
    return value


def as_suggested(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters (Optuna's ``trial.params``) as :func:`suggest` gave them to
    the model: stepped real values rounded to their grid (0.7, not 0.7000000000000001),
    for the records, ``trials.csv`` and the lines that show them."""
    return {k: _on_grid(space.searched[k], v) if k in space.searched else v for k, v in params.items()}


def grid_values(space: SearchSpace) -> dict[str, list[Any]]:
    """Every value of each searched parameter (``graphrec tune --grid``): a choice's
    values, an integer range's every ``step``-th integer, a real range's grid ``low, low +
    step, ..., high``; one-line :class:`ConfigError` for a real range without a step,
    which has no finite grid."""
    out: dict[str, list[Any]] = {}
    for key, dim in space.searched.items():
        if isinstance(dim, Choice):
            out[key] = list(dim.values)
        elif isinstance(dim, IntRange):
            out[key] = list(range(int(dim.low), int(dim.high) + 1, int(dim.step)))
        elif dim.step is not None:
            n = int(math.floor((dim.high - dim.low) / dim.step + 1e-9))
            out[key] = [_on_grid(dim, dim.low + i * dim.step) for i in range(n + 1)]
        else:
            scale = " (log)" if dim.log else ""
            raise ConfigError(
                f"--grid needs a finite set of values for every searched parameter; {key} is {dim.low:g} .. "
                f"{dim.high:g}{scale}: list its values in --space (e.g. {key}: [{dim.low:g}, {dim.high:g}]) "
                "or give the range a step"
            )
    return out


def _declared_type(entry: ModelEntry, key: str, source: str) -> type | None:
    """``int``, ``float`` or None (anything else) for a hyper-parameter or training option."""
    if key in _TRAIN_TYPES:
        return _TRAIN_TYPES[key]
    specs = {p.name: p for p in entry.params if p.option.target == "model"}
    if key not in specs:
        valid = sorted(specs) + list(TUNABLE_TRAIN_OPTIONS)
        hint = reference_hint(entry, key)
        raise ConfigError(f"{source}: {entry.name} has no hyper-parameter {key!r}" + (f" ({hint})" if hint else "")
                          + f": valid are {', '.join(valid)}")
    return _numeric(specs[key].type)


def _numeric(tp: Any) -> type | None:
    if tp in (int, float) or tp is bool:
        return None if tp is bool else tp
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Annotated:
        return _numeric(args[0])
    if int in args:
        return int
    if float in args:
        return float
    return None


def _number(value: Any, typ: type | None, key: str, source: str) -> Any:
    """``value`` as the declared number type (text such as ``1e-4`` converted)."""
    if typ is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{source}: {key}: {value!r} is not a number") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {key}: {value!r} is not a number")
    if typ is int:
        if not math.isfinite(value) or int(value) != value:
            raise ConfigError(f"{source}: {key} is an integer, got {value!r}")
        return int(value)
    return float(value)


def _check_value(entry: ModelEntry, key: str, value: Any, source: str) -> Any:
    """A fixed value inside the declared range or choices."""
    if key in _TRAIN_TYPES:
        if isinstance(value, (int, float)) and not (value > 0 or (key == "weight_decay" and value == 0)):
            raise ConfigError(f"{source}: {key} must be positive, got {value!r}")
        try:  # the training option's own bounds (lr_decay at most 1, ...)
            TrainConfig(**{key: value})
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return value
    try:
        return entry.param(key).check(entry.name, value, name_flag=False)  # the value is the file's
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _choice(entry: ModelEntry, key: str, raw: Any, typ: type | None, source: str) -> Choice:
    values = raw if isinstance(raw, list) else raw["choices"]
    if isinstance(raw, dict) and set(raw) != {"choices"}:
        raise ConfigError(f"{source}: {key}: a choice has only 'choices', got {', '.join(map(str, raw))}")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{source}: {key}: choices must be a non-empty list")
    values = [_check_value(entry, key, _number(v, typ, key, source), source) for v in values]
    seen: list[str] = []
    for value in values:
        if repr(value) in seen:
            raise ConfigError(f"{source}: {key}: {yaml_flow(raw)} lists {yaml_flow(value)} twice: list each value once")
        seen.append(repr(value))
    return Choice(tuple(values))


def _range(entry: ModelEntry, key: str, raw: Mapping[str, Any], typ: type | None, source: str) -> FloatRange | IntRange:
    unknown = sorted(set(map(str, raw)) - _RANGE_KEYS)
    if unknown or "low" not in raw or "high" not in raw:
        raise ConfigError(
            f"{source}: {key}: a range is {{low: .., high: .., log: true|false, step: ..}} or a list of choices"
            + (f" (unknown {', '.join(unknown)})" if unknown else "")
        )
    if typ is None:
        raise ConfigError(f"{source}: {key} is not a number: give a list of choices or a fixed value")
    low = _check_value(entry, key, _number(raw["low"], typ, key, source), source)
    high = _check_value(entry, key, _number(raw["high"], typ, key, source), source)
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{source}: {key}: log must be true or false, got {log!r}")
    kw: dict[str, Any] = {"log": log}
    if raw.get("step") is not None:
        kw["step"] = _number(raw["step"], typ, f"{key} step", source)
    where = f"{source}: {key}: {yaml_flow(raw)}"
    for bound, value in (("low", low), ("high", high)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: {bound} must be a finite number, got {yaml_flow(value)}")
    if low == high:
        raise ConfigError(f"{where}: low equals high: fix the value instead ({key}: {yaml_flow(low)})")
    if low > high:
        raise ConfigError(f"{where}: low must be below high: swap them")
    if log and low <= 0:
        raise ConfigError(f"{where}: log: true needs low > 0, got {yaml_flow(low)}")
    step = kw.get("step")
    if step is not None and step != (1 if typ is int else None):
        if log:
            raise ConfigError(f"{where}: step and log: true exclude each other: keep one of them")
        if step <= 0:
            raise ConfigError(f"{where}: step must be positive, got {yaml_flow(step)}")
    try:
        return (IntRange if typ is int else FloatRange)(low, high, **kw)
    except ValueError as e:  # the checks above say it in the file's terms; any other is the declaration's
        raise ConfigError(f"{where}: {e}") from None


def yaml_flow(value: Any) -> str:
    """``value`` as a --space file (or any YAML config) spells it, in flow style: ``[0.01, 0.01]``,
    ``{low: 4, high: 2}``, ``1.0e-05`` as ``1e-05``, ``true``, ``null``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    return str(value)
