"""Model builders, one module per model: each turns a :class:`~graphrec.data.Dataset`
plus hyper-parameters into a model, building the graphs the model receives, and
registers it (:func:`graphrec.train.registry.register_model`). This package is the one
place that knows how each model's inputs are derived from data, so training,
``graphrec evaluate``, checkpoint reloading and the RecBole adapter construct models
identically.

Adding a model: write ``graphrec/models/NAME.py`` (the paper, its math, typed
arguments) and ``graphrec/train/builders/NAME.py`` (a registered builder); every module
of this package is imported here, so nothing else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Mapping

from graphrec.data import Dataset
from graphrec.train.builders._common import load_stored_graphs
from graphrec.train.registry import RANKING_MODELS, ModelEntry, build_model, get_model, model_params

__all__ = ["MODELS", "ModelEntry", "build_model", "content_modalities", "load_stored_graphs", "model_params"]

#: ``name -> ModelEntry`` of every registered ranking model (``.defaults``, ``.build``)
MODELS = RANKING_MODELS

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def content_modalities(name: str, model: Any, dataset: Dataset, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The feature modalities behind a built model ``name``'s content graphs, as its
    builder resolved them (the entry's ``content_modalities`` hook); none when the model
    declares no content graph."""
    hook = get_model(name).content_modalities
    return tuple(hook(model, dataset, params)) if hook is not None else ()
