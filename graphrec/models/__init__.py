"""Top-k ranking models: one paper per file, all following :class:`Recommender`.

Every model class a module of this package exports (its ``__all__``) is importable from
here too (``from graphrec.models import FREEDOM``): the names are found on first use, so
adding a model file adds its class without touching this module. The CTR models are in
:mod:`graphrec.models.ctr`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from graphrec.models.base import ItemGraphRecommender, Recommender, Scorer

#: modules of the package that hold no model of their own
_NOT_MODELS = frozenset({"base", "coldstart", "ctr"})
_BASE = ["ItemGraphRecommender", "Recommender", "Scorer"]
_classes: dict[str, type] | None = None


def _model_classes() -> dict[str, type]:
    """``{class name: class}`` of every :class:`Recommender` subclass the model modules
    export, in module order."""
    global _classes
    if _classes is None:
        found: dict[str, type] = {}
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name in _NOT_MODELS or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name)
                if isinstance(obj, type) and issubclass(obj, Recommender) and obj.__module__ == module.__name__:
                    found[name] = obj
        _classes = found
    return _classes


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return [*_BASE, *_model_classes()]
    classes = _model_classes()
    if name in classes:
        return classes[name]
    if name in globals():  # a submodule, set on the package by importing it
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_BASE, *_model_classes()})
