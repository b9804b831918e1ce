"""The ``graphrec train`` command line that trains a given configuration again.

A tune trial (and the best run of a study) records the command that reproduces it
(:func:`train_command_line`): the model's hyper-parameters are written with the flags
the registry derives for them (:attr:`graphrec.train.registry.ParamSpec.flags`, the
flags ``graphrec train MODEL`` is generated with), every training option explicitly,
the dataset's absolute path, the cold-start split (``--cold-seed`` where it was drawn
with another seed than the training's), the device and torch's thread count (float sums
on the CPU depend on it). A configuration the command line cannot express (a
hyper-parameter without a flag, a training option ``graphrec train`` has no flag for)
has no command: ``None``. Training options at ``graphrec train MODEL``'s defaults are left out, and so
is ``--lr-decay-every`` of a constant rate (``--lr-decay 1``), where it has no effect.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Mapping

from graphrec.errors import ConfigError
from graphrec.train.config import TrainConfig

__all__ = [
    "train_command_line", "TRAIN_OPTIONS", "CONFIG_FLAGS", "option_defaults", "config_from_options", "option_message",
]

#: the training options of ``graphrec train MODEL`` that set a :class:`TrainConfig`
#: field, by option name (the option is ``--name-with-dashes``; ``--metric`` sets the field
#: ``valid_metric``), in the order ``--help`` lists them. The one declaration the commands'
#: options, their defaults (the field's, or the model's ``train_defaults``) and the
#: recorded command lines (:data:`CONFIG_FLAGS`) come from.
TRAIN_OPTIONS: dict[str, str] = {
    "epochs": "epochs", "lr": "lr", "lr_decay": "lr_decay", "lr_decay_every": "lr_decay_every",
    "batch_size": "batch_size", "patience": "patience", "eval_every": "eval_every", "metric": "valid_metric",
    "select_on": "select_on", "negatives": "negatives", "protocol": "protocol", "valid_users": "valid_users",
    "seed": "seed",
}
#: the :class:`TrainConfig` fields that ``graphrec train`` sets, by their flag
CONFIG_FLAGS: dict[str, str] = {field: "--" + option.replace("_", "-") for option, field in TRAIN_OPTIONS.items()}


def option_defaults(train_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of the :data:`TRAIN_OPTIONS`, by option: :class:`TrainConfig`'s, with a
    model's own ``train_defaults`` (by field) over them."""
    fields = {**TrainConfig().to_dict(), **dict(train_defaults or {})}
    return {option: fields[field] for option, field in TRAIN_OPTIONS.items()}


def option_message(message: str, flags: Mapping[str, str] = CONFIG_FLAGS) -> str:
    """A config error as the command line says it: the field it starts with
    (``batch_size must be at least 1``) named by its flag (``--batch-size must ...``),
    ``flags`` mapping fields to flags (:data:`CONFIG_FLAGS`: :class:`TrainConfig`'s)."""
    field, sep, rest = message.partition(" ")
    flag = flags.get(field)
    if not sep or flag is None:
        return message
    return f"{flag} {rest.replace(f' ({flag})', '')}"


def config_from_options(options: Mapping[str, Any], **fields: Any) -> TrainConfig:
    """The :class:`TrainConfig` of the given :data:`TRAIN_OPTIONS` (by option name; every
    one must be given), with the other ``fields`` (e.g. ``progress``) set as given. A bad
    value is a :class:`ConfigError` naming its option (:func:`option_message`)."""
    missing = [o for o in TRAIN_OPTIONS if o not in options]
    unknown = [o for o in options if o not in TRAIN_OPTIONS]
    if missing or unknown:
        raise TypeError(f"training options: missing {missing}, unknown {unknown}")
    try:
        return TrainConfig(**{TRAIN_OPTIONS[o]: v for o, v in options.items()}, **fields)
    except ConfigError as e:  # named by the option that set the value
        raise ConfigError(option_message(str(e))) from None


#: fields that change no trained number (``graphrec train`` leaves them at their
#: defaults): progress bars, the evaluation's batch and the cut-offs reported besides
#: the selection metric's
_INERT = ("progress", "eval_batch_size", "ks")


def _text(value: Any) -> str:
    """A value as the command line writes it (floats exactly: ``repr`` round-trips)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Equal values, a tuple equal to the list JSON makes of it."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _param_words(spec: Any, value: Any) -> list[str] | None:
    """The words that give the hyper-parameter ``spec`` the ``value`` (none at its
    default); None when the command line cannot."""
    if value == spec.default or (value is None and spec.default is None):
        return []
    opt = spec.option
    if not opt.cli or opt.target != "model":
        return None
    flag = spec.flags[0]
    if opt.invert:  # one negative flag: given, the parameter is False
        return [flag] if value is False else None
    if isinstance(value, bool):
        on, _, off = flag.partition("/")
        chosen = on if value else off
        return [chosen] if chosen else None
    if value is None:
        return None  # no flag sets a parameter back to None
    if opt.to_value is not None and isinstance(value, (list, tuple)):  # a repeated option (e.g. --graph PATH)
        return [w for v in value for w in (flag, str(v))]
    return [flag, _text(value)]


def train_command_line(
    model: str,
    params: Mapping[str, Any],
    config: TrainConfig,
    data: str | os.PathLike,
    transforms: Mapping[str, Any] | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> str | None:
    """``graphrec train MODEL --data ABSOLUTE ...``: the command that trains ``model`` with
    the hyper-parameters ``params`` and the training options ``config`` on the dataset
    ``data`` (the cold-start split ``transforms``), on ``device`` with ``threads`` torch
    threads; None when the command line cannot express it (module doc)."""
    from graphrec.train.registry import get_model

    entry = get_model(model, "ranking")
    words = ["graphrec", "train", model, "--data", str(Path(data).resolve())]
    for spec in entry.params:
        part = _param_words(spec, params.get(spec.name, spec.default))
        if part is None:
            return None
        words += part
    defaults = TrainConfig().to_dict()
    cli_defaults = {**defaults, **dict(entry.train_defaults)}  # graphrec train MODEL's own defaults
    chosen = config.to_dict()
    for key, value in chosen.items():
        if _same(value, cli_defaults.get(key)) or key in _INERT:
            continue
        if key == "lr_decay_every" and chosen.get("lr_decay") == 1.0:
            continue  # no effect on a constant rate
        if key not in CONFIG_FLAGS:
            return None  # e.g. weight_decay or ks, which graphrec train does not set
        words += [CONFIG_FLAGS[key], _text(value)]
    tf = dict(transforms or {})
    if tf.get("cold_start"):
        words += ["--cold-start", _text(float(tf["cold_start"])),
                  "--cold-protocol", str(tf.get("cold_start_protocol", "papers"))]
        split_seed = int(tf.get("cold_start_seed", config.seed))
        if split_seed != config.seed:  # (graphrec train draws the split with --seed otherwise)
            words += ["--cold-seed", str(split_seed)]
    if device is not None:
        words += ["--device", str(device)]
    if threads is not None:
        words += ["--threads", str(int(threads))]
    return shlex.join(words)
