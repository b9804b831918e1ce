"""graphrec: multimodal graph recommenders with the item-item graph at the centre.

The main entry points, importable from here (each imported on first use, so that
``import graphrec`` stays light):

* data: :class:`Dataset` (``Dataset.load(DIR)``), :func:`read_source` (MMRec, LATTICE,
  UniSRec, RecBole, MovieLens files), :func:`cold_start` (the papers' cold-start split);
* graphs: :class:`GraphSpec` and :func:`build_item_graph` (kNN over fused features,
  co-interactions), :func:`to_networkx`, :func:`graph_dataset` (the dataset a stored graph
  was built from, its cold-start split included: the node attributes networkx shows);
* models and training: :func:`build_model` (any registered model, ``graphrec models``
  lists them), :class:`TrainConfig`, :func:`run_training` (seeded, recorded, saved),
  :func:`fit`, :func:`evaluate_ranking`;
* after training: :func:`recommend` (top-k with original ids from a saved run),
  :func:`recommend_model` (the same for a model in memory), :func:`load_run`;
* click-through rate: :func:`load_ctr_source` (CTR samples from a source folder),
  :class:`CTRConfig`, :func:`run_ctr` (``docs/models/ctr.md``, "Python").

Models themselves are in :mod:`graphrec.models` (``from graphrec.models import
FREEDOM``), the CTR models in :mod:`graphrec.models.ctr`.

Argument names across the entry points: ``dataset`` a loaded :class:`Dataset`, ``data``
loaded CTR samples, ``data_path`` a dataset folder beside them or instead of them (the
commands' ``--data``; a loader's own input is ``path``), ``run_dir`` a saved run's folder
(``RUN_DIR``), ``out`` what the call writes (``--out``), ``model_name`` (``name`` in
:func:`build_model`) and ``params`` the model and its hyper-parameters, ``k`` the length
of a top-k list. The earlier names of renamed arguments still work, with a
:class:`FutureWarning` naming the new one (:func:`graphrec._checks.renamed`).
"""

from importlib import import_module as _import_module
from typing import Any as _Any

__version__ = "0.1.0"

#: the subpackages, imported on first attribute access (``graphrec.train.reevaluate``
#: after a bare ``import graphrec``), as ``import graphrec.train`` would
_SUBPACKAGES = ("data", "features", "graphs", "models", "metrics", "nn", "train", "interop", "distributed", "testing",
                "errors")

#: name -> (module, attribute) of the lazily imported entry points
_EXPORTS: dict[str, tuple[str, str]] = {
    "recommend": ("graphrec.train.recommend", "recommend_run"),
    "recommend_model": ("graphrec.train.recommend", "recommend_model"),
    "Dataset": ("graphrec.data", "Dataset"),
    "read_source": ("graphrec.data.formats", "read_source"),
    "cold_start": ("graphrec.data", "cold_start"),
    "GraphSpec": ("graphrec.graphs.build", "GraphSpec"),
    "build_item_graph": ("graphrec.graphs.build", "build_item_graph"),
    "to_networkx": ("graphrec.graphs.export", "to_networkx"),
    "graph_dataset": ("graphrec.graphs.store", "graph_dataset"),
    "build_model": ("graphrec.train", "build_model"),
    "TrainConfig": ("graphrec.train", "TrainConfig"),
    "run_training": ("graphrec.train.run", "run_training"),
    "fit": ("graphrec.train", "fit"),
    "evaluate_ranking": ("graphrec.train.evaluate", "evaluate_ranking"),
    "load_run": ("graphrec.train.run", "load_run"),
    "load_ctr_source": ("graphrec.data.ctr", "load_ctr_source"),
    "CTRConfig": ("graphrec.train.ctr", "CTRConfig"),
    "run_ctr": ("graphrec.train.ctr", "run_ctr"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> _Any:
    """The entry points of :data:`_EXPORTS` and the subpackages, imported on first use."""
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        return getattr(_import_module(module), attr)
    if name in _SUBPACKAGES:
        return _import_module(f"graphrec.{name}")
    raise AttributeError(f"module 'graphrec' has no attribute {name!r}")


def _submodule(package: str, name: str) -> _Any:
    """``package.name`` imported, for a package's module ``__getattr__``: a submodule its
    ``__init__`` does not import (``graphrec.graphs.stats``) resolves on first attribute
    access, as ``import package.name`` would; anything else is an AttributeError."""
    from importlib.util import find_spec

    if not name.startswith("_") and find_spec(f"{package}.{name}") is not None:
        return _import_module(f"{package}.{name}")
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily imported entry points and subpackages too (tab completion,
    ``dir(graphrec)``), without the module's private helpers."""
    public = {n for n in globals() if not n.startswith("_")} | {"__version__"}
    return sorted(public | set(__all__) | set(_SUBPACKAGES))
