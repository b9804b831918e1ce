"""Model factories: turn a :class:`~graphrec.data.Dataset` plus hyper-parameters into a
model, building the graphs the model receives. This is the one place that knows how
each model's inputs are derived from data, so training, ``graphrec evaluate`` and
checkpoint reloading construct models identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from graphrec.data import Dataset
from graphrec.errors import ConfigError
from graphrec.graphs import normalized_bipartite
from graphrec.models import LightGCN, Recommender
from graphrec.nn import to_torch_sparse

__all__ = ["ModelSpec", "MODELS", "build_model", "model_params"]


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: its factory and default hyper-parameters."""

    name: str
    build: Callable[..., Recommender]
    defaults: Mapping[str, Any]


def _build_lightgcn(dataset: Dataset, embedding_dim: int, num_layers: int, reg_weight: float) -> LightGCN:
    adj = to_torch_sparse(normalized_bipartite(dataset.train, "sym"))
    return LightGCN(
        dataset.n_users,
        dataset.n_items,
        adj,
        embedding_dim=embedding_dim,
        num_layers=num_layers,
        reg_weight=reg_weight,
    )


MODELS: dict[str, ModelSpec] = {
    "lightgcn": ModelSpec(
        "lightgcn", _build_lightgcn, {"embedding_dim": 64, "num_layers": 2, "reg_weight": 1e-4}
    ),
}


def model_params(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of model ``name`` updated with ``overrides`` (unknown keys are errors)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: available are {', '.join(sorted(MODELS))}")
    params = dict(MODELS[name].defaults)
    for k, v in (overrides or {}).items():
        if k not in params:
            raise ConfigError(f"model {name!r} has no option {k!r}: valid are {', '.join(sorted(params))}")
        if v is not None:
            params[k] = v
    return params


def build_model(name: str, dataset: Dataset, params: Mapping[str, Any] | None = None) -> Recommender:
    """Construct model ``name`` for ``dataset`` (on CPU; move it with ``.to(device)``)."""
    return MODELS[name].build(dataset, **model_params(name, params))
