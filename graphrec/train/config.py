"""Typed training configuration. Unknown keys are errors, never silently ignored."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from graphrec._checks import is_int as _is_int
from graphrec.errors import ConfigError

__all__ = ["TrainConfig", "SELECT_GROUPS", "NEGATIVES", "check_config"]


SELECT_GROUPS = ("all", "warm", "cold")
#: where BPR negatives come from: every item (cold ones included, as LATTICE's reference
#: samples them) or warm items only (never a cold-start item)
NEGATIVES = ("all", "warm")


@dataclass(frozen=True)
class TrainConfig:
    """Options of the generic fit loop (:func:`graphrec.train.fit`).

    Frozen: the values are checked once, here, so a change is a new config,
    ``dataclasses.replace(config, epochs=5)`` (checked again); setting an attribute raises.

    Attributes:
        epochs: maximum number of training epochs.
        batch_size: BPR triples per optimiser step.
        lr: Adam learning rate.
        lr_decay: the learning rate of epoch t (from 0) is ``lr * lr_decay ** (t / lr_decay_every)``
            (MMRec's ``learning_rate_scheduler: [lr_decay, lr_decay_every]``; 1.0: constant).
        lr_decay_every: epochs over which the rate is multiplied by ``lr_decay`` once.
        weight_decay: Adam weight decay (the models' own L2 is usually preferred).
        patience: stop after this many evaluations without a better validation metric.
        eval_every: validate every this many epochs.
        valid_metric: metric for model selection and early stopping (e.g. ``recall@20``).
        select_on: item group whose validation ``valid_metric`` selects the model: ``all``
            (default), or under cold start ``warm`` / ``cold`` (only the warm / the hidden
            items count as validation positives; the usual protocol of cold-start studies).
        negatives: ``all``: uniform over the items that are not a training positive of the
            user, cold-start items included (LATTICE's reference samples them so);
            ``warm``: never a cold-start item. Without a cold-start split both are the same.
        ks: cut-offs reported for every metric.
        protocol: ``recbole`` (test masks train + valid) or ``mmrec`` (masks train only).
        eval_batch_size: users scored per evaluation batch.
        valid_users: validate on this many users only, drawn among those with a validation
            positive in the ``select_on`` items, the same for every run on the data
            (:func:`graphrec.train.fit.validation_users`);
            the test split is always ranked for every user. ``None``: every user. Full
            ranking of a million users costs hours per validation (docs/scaling.md).
        seed: seeds shuffling and negative sampling (:func:`~graphrec.train.fit.fit`)
            and, through :func:`~graphrec.train.run.run_training` (which seeds before it
            builds the model), parameter initialisation; with ``build_model`` and ``fit``
            called directly, call ``seed_everything(config.seed)`` before ``build_model``.
        progress: show progress bars.
    """

    epochs: int = 1000
    batch_size: int = 2048
    lr: float = 1e-3
    lr_decay: float = 1.0
    lr_decay_every: int = 50
    weight_decay: float = 0.0
    patience: int = 20
    eval_every: int = 1
    valid_metric: str = "recall@20"
    select_on: str = "all"
    negatives: str = "all"
    ks: tuple[int, ...] = (10, 20, 50)
    protocol: str = "recbole"
    eval_batch_size: int = 512
    valid_users: int | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        # the types first: a string or a fraction fails here, not deep inside training
        for name in ("epochs", "batch_size", "lr_decay_every", "patience", "eval_every", "eval_batch_size", "seed"):
            if not _is_int(getattr(self, name)):
                raise ConfigError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("lr", "lr_decay", "weight_decay"):
            value = getattr(self, name)
            if not _is_int(value) and not (isinstance(value, (float, np.floating))):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        for name in ("valid_metric", "select_on", "negatives", "protocol"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        ks = [self.ks] if _is_int(self.ks) else self.ks
        if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__") or not all(_is_int(k) and k >= 1 for k in ks):
            raise ConfigError(f"ks must be cut-offs (integers >= 1), e.g. (10, 20, 50), got {self.ks!r}")
        object.__setattr__(self, "ks", tuple(int(k) for k in ks))
        if self.valid_users is not None:
            if not _is_int(self.valid_users):
                raise ConfigError(f"valid_users must be an integer, got {self.valid_users!r}")
            if self.valid_users < 1:
                raise ConfigError(f"valid_users must be at least 1, got {self.valid_users} (leave it unset to validate every user)")
            object.__setattr__(self, "valid_users", int(self.valid_users))
        for name in ("epochs", "batch_size", "patience", "eval_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be at least 0 (numpy's generators take no negative seed), got {self.seed}")
        if not 0 <= self.weight_decay < math.inf:  # also refuses NaN
            raise ConfigError(f"weight_decay must be at least 0 and finite, got {self.weight_decay}")
        if self.negatives not in NEGATIVES:
            raise ConfigError(f"negatives must be one of {', '.join(NEGATIVES)}, got {self.negatives!r} (--negatives)")
        if self.select_on not in SELECT_GROUPS:
            raise ConfigError(f"select_on must be one of {', '.join(SELECT_GROUPS)}, got {self.select_on!r}")
        if not 0 < self.lr < math.inf:  # also refuses NaN
            raise ConfigError(f"lr must be positive and finite (e.g. 0.001), got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.lr_decay_every < 1:
            raise ConfigError(f"lr_decay_every must be at least 1, got {self.lr_decay_every}")
        if self.protocol not in ("recbole", "mmrec"):
            raise ConfigError(f"protocol {self.protocol!r} is not one of recbole, mmrec")
        metric, _, k = self.valid_metric.partition("@")
        if not k.isdigit():
            raise ConfigError(f"valid_metric {self.valid_metric!r} (--metric) must look like recall@20")
        if int(k) not in self.ks:
            object.__setattr__(self, "ks", tuple(sorted(set(self.ks) | {int(k)})))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}: valid are {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-able dict (``ks`` a list), as a run record stores them;
        :meth:`from_dict` reads it back."""
        d = dataclasses.asdict(self)
        d["ks"] = list(self.ks)
        return d


def check_config(config: Any) -> TrainConfig:
    """``config`` itself when it is a :class:`TrainConfig`; else a one-line
    :class:`ConfigError` saying how to make one (a dict: :meth:`TrainConfig.from_dict`)."""
    if not isinstance(config, TrainConfig):
        how = "TrainConfig.from_dict(d)" if isinstance(config, Mapping) else "TrainConfig(epochs=..., lr=...)"
        raise ConfigError(f"config must be a graphrec.train.TrainConfig, got {type(config).__name__}: use {how}")
    return config
