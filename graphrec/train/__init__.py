"""Training: typed configs, the generic fit loop, evaluation, run records.

The names below are imported on first use (``from graphrec.train import fit`` as
before), so that importing a light submodule (:mod:`graphrec.train.config`,
:mod:`graphrec.train.commands`) does not import torch and every model: the CLI's start-up.
"""

import sys
import types
from importlib import import_module
from typing import Any

#: name -> module of the lazily imported names
_EXPORTS: dict[str, str] = {
    "MODELS": "graphrec.train.builders",
    "build_model": "graphrec.train.builders",
    "model_params": "graphrec.train.builders",
    "TrainConfig": "graphrec.train.config",
    "evaluate_ranking": "graphrec.train.evaluate",
    "FitResult": "graphrec.train.fit",
    "evaluate_model": "graphrec.train.fit",
    "fit": "graphrec.train.fit",
    "seed_everything": "graphrec.train.fit",
    "RunInterrupted": "graphrec.train.state",
    "TrainingInterrupted": "graphrec.train.state",
    "load_record": "graphrec.train.record",
    "load_state": "graphrec.train.record",
    "save_run": "graphrec.train.record",
    "run_training": "graphrec.train.run",
    "reevaluate": "graphrec.train.run",
    "load_run": "graphrec.train.run",
    "export_item_graph": "graphrec.train.run",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """The names of :data:`_EXPORTS`, imported on first use."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    from graphrec import _submodule  # a submodule (graphrec.train.progress), as `import` would

    return _submodule(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """This package, whose exported names win over its submodules of the same name:
    importing :mod:`graphrec.train.fit` sets the package's ``fit`` to the module, which
    would hide the function ``fit`` (the eager imports this package had bound the function
    last). The submodule stays importable from ``sys.modules`` (``from graphrec.train.fit
    import fit``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
