"""graphrec models inside RecBole 1.2.1, and RecBole datasets as graphrec datasets.

Importing this module imports RecBole (``pip install 'graphrec[recbole]'``: RecBole
1.2.1 needs numpy < 2, pandas < 2.3 and, for its own LightGCN, scipy < 1.12). Nothing
else in graphrec imports it. On import it restores the ``np.float``/``np.int``/``np.bool``
aliases RecBole 1.2.1 still uses (removed in numpy 1.24); it never imports
``recbole.quick_start`` (which imports ray, broken on current numpy).

Models (``docs/recbole.md`` has a complete example):

* :class:`GraphrecLightGCN` (graphrec ``lightgcn``): the user-item graph only;
* :class:`GraphrecMMGEF` (``mmgef``): content kNN graph of the early-fused features and
  co-interaction graph;
* :class:`GraphrecLATTICE` (``lattice``): one original kNN graph per modality, plus the
  learned graphs it rebuilds every epoch;
* :func:`recbole_model` (``NAME``): the adapter of any other registered trainable ranking
  model (:mod:`graphrec.train.registry`); :data:`ADAPTERS` maps every name to its class.
  Each class is ``Graphrec`` + the model's title without its non-alphanumeric characters
  (``mf``, title MF-BPR: ``GraphrecMFBPR``; ``freedom``: ``GraphrecFREEDOM``), importable
  from this module by that name (``docs/recbole.md`` lists them).

Each is a ``recbole.model.abstract_recommender.GeneralRecommender`` with
``input_type = InputType.PAIRWISE`` (RecBole samples negatives for each positive:
``train_neg_sample_args`` must sample, ``None`` is refused when the model is built) and
``calculate_loss`` / ``predict`` / ``full_sort_predict``. The constructor receives
RecBole's TRAINING dataset (``train_data.dataset`` after ``data_preparation``, as for
every RecBole model), turns it into a graphrec :class:`~graphrec.data.Dataset`
(:func:`recbole_to_dataset`) and builds the graphrec model with
:func:`graphrec.train.builders.build_model`, so the bipartite graph, the kNN graphs and
the co-interaction graph come from graphrec's builders and from the training
interactions only. A dataset known to be another is refused (one-line ``ConfigError``):
the whole dataset (benchmark files or RecBole's own RS/LS/TS split alike), the valid or
test split. A dataset ``data_preparation`` never split is taken as training
interactions (the caller's own training file; dataloaders saved before this rule).
RecBole's splits are shallow
copies of the whole dataset, so to tell them apart importing this module wraps
``recbole.data.dataset.Dataset.build`` (which ``data_preparation`` calls) to mark the
datasets it returns ``train``/``valid``/``test`` and the dataset it split ``all``
(:data:`SPLIT_ATTR`; what ``build`` returns is otherwise unchanged). Import this module
before ``data_preparation`` (``Config(model=GraphrecLightGCN, ...)`` does).

Ids: RecBole reserves internal id 0 of users and items for ``[PAD]``. The graphrec
dataset drops it: graphrec index ``k`` is RecBole id ``k + 1``. ``full_sort_predict``
returns ``n_items`` scores per user with ``-inf`` for ``[PAD]`` (RecBole masks it too).

Hyper-parameters come from the RecBole config under graphrec's names (the model's
declared hyper-parameters, ``graphrec models --params``: ``embedding_dim``, ``num_layers``,
``reg_weight``, ``k``, ``modalities``, ``item_layers``, ...); RecBole's
``embedding_size`` (``embedding_dim``) and ``n_layers`` (``num_layers``, the user-item
layers, as in RecBole's LightGCN) are accepted as aliases (:data:`RECBOLE_ALIASES`),
``n_layers`` only where it means that: a model whose reference implementation gives it
another meaning refuses it (below). Missing keys take graphrec's defaults. A number
written as text is the number it spells (``"32.7"`` for an int is refused as 32.7 is);
errors name the config key that was written. ``graphs`` (stored graphs) is refused:
stored graphs are tied to a graphrec dataset's fingerprint, and the adapters build their
graphs themselves.

Other keys. A reference implementation's name for one of the model's hyper-parameters,
declared by its builder (``ModelEntry.reference_names``, e.g. MMRec's ``knn_k``,
``cl_loss``, ``n_ui_layers``, ``n_mm_layers``, ``dropout_rate``, ``mm_image_weight``,
FREEDOM's ``reg_weight``, MGCN's, SMORE's and LATTICE's ``n_layers``), is refused with a
one-line ``ConfigError`` naming graphrec's key and how to write the value ("knn_k is
MMRec's name for FREEDOM's k: write k: 5 instead in the RecBole config"), never read as
an alias: a copied reference config then cannot silently mean something else
(MMRec's ``n_layers`` is MGCN's item-graph layers; its ``mm_image_weight`` is a scalar,
graphrec's ``modality_weights`` a mapping), and a key the Python API
(:func:`~graphrec.train.build_model`) refuses is refused here too. A name graphrec uses
itself is graphrec's (DRAGON's ``reg_weight`` is MMRec's times ln 2,
``docs/models/dragon.md``). Any other key the user wrote (``file_config_dict``,
``variable_config_dict``, ``cmd_config_dict``, or set on the ``Config``) that is neither
the model's hyper-parameter, nor an alias, nor a feature key (below), nor one RecBole
defines (its ``internal_config_dict``: ``overall.yaml``, the dataset defaults such as
``load_col`` and ``USER_ID_FIELD``; its argument lists; :data:`RECBOLE_RUNTIME_KEYS`) gets
one :class:`~graphrec.errors.GraphrecNote` warning naming those keys (typos such as
``embeding_size``, keys of other models): RecBole's trainers, samplers and models read
keys no list declares and users keep their own keys in the config, so such a key is not
refused.

Errors of the model's builder speak RecBole config keys too: the adapter rewrites the
command-line flags of the model's hyper-parameters in them (``--modalities text`` as
``modalities: text``, ``--no-include-self`` as ``include_self: false``) and keeps the
exception type.

Item features (MM-GEF and LATTICE need at least one modality):

* ``feature_fields``: ``float_seq`` fields of the ``.item`` file used as modalities
  (default: every ``float_seq`` field RecBole loaded; RecBole loads ``.item`` columns
  only when ``load_col`` names them, e.g. ``load_col: {inter: [user_id, item_id],
  item: [item_id, text]}``, or with ``load_col: ~``). The fields must not be normalised
  or discretised by RecBole (``normalize_all``, ``normalize_field``, ``discretization``,
  ``numerical_features``): the kNN graphs need the raw vectors.
* ``feature_files``: ``{modality: path to a .npy matrix}`` (relative paths are relative
  to the RecBole dataset folder ``{data_path}/{dataset}``). Row ``r`` belongs to the item
  whose token is ``str(r)`` (the MMRec convention), or to the ``r``-th token of the text
  file ``feature_item_ids`` (one item token per line) when that key is set. Every item
  RecBole kept must have a row.

Epochs: LATTICE rebuilds its learned item graph once per epoch. RecBole's ``Trainer``
calls ``model.train()`` at the start of every training epoch (and ``model.eval()``
before each evaluation); the adapters count those calls and call the graphrec model's
``start_epoch(epoch)`` from ``train()``. A hand-written loop must do the same: call
``model.train()`` once at the start of each epoch.

Evaluation: ``full_sort_predict`` returns the graphrec model's own ``scorer()`` scores
and ``predict`` its ``forward(users, items)``, for every model: with ``cold_path:
content`` (:class:`~graphrec.models.coldstart.ColdItemRecommender`) the unseen items'
scores include the content-neighbour term, which no inner product of ``embeddings()``
has. The scorer, and for ``predict`` the final representations (of the base model under
a cold path; a model with another ``forward`` runs it per batch), are computed once per
evaluation pass (on the first call in eval mode) and reused for all batches;
``train()``, ``eval()``, ``calculate_loss`` and ``load_state_dict`` drop them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import typing
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.data import Dataset
from graphrec.data.formats._common import load_npy, resolve
from graphrec.errors import ConfigError, DataError, GraphrecNote
from graphrec.models import Recommender, Scorer
from graphrec.models.coldstart import ColdItemRecommender
from graphrec.train.builders import MODELS, build_model, model_params
from graphrec.train.registry import REFERENCE_TITLES, ModelEntry, ParamSpec, get_model, reference_renames
from graphrec.train.space import yaml_flow


def _prepare_numpy() -> None:
    """Refuse numpy 2 with a clear message; restore the aliases RecBole 1.2.1 uses."""
    if int(np.__version__.split(".")[0]) >= 2:
        raise ConfigError(
            f"RecBole 1.2.1 does not run on numpy {np.__version__} (it uses aliases removed in numpy 2): "
            "install the recbole extra, pip install 'graphrec[recbole]' (numpy<2, pandas<2.3, scipy<1.12)"
        )
    for alias, typ in (("float", float), ("int", int), ("bool", bool)):
        if alias not in np.__dict__:
            setattr(np, alias, typ)


_prepare_numpy()
try:
    from recbole.data.dataset import Dataset as RecBoleDataset
    from recbole.model.abstract_recommender import GeneralRecommender
    from recbole.utils import FeatureSource, FeatureType, InputType
except ImportError as e:  # pragma: no cover - the development lock installs recbole
    raise ImportError(
        f"graphrec.interop.recbole needs RecBole 1.2.1 ({e}): pip install 'graphrec[recbole]'"
    ) from e

__all__ = [
    "GraphrecRecommender",
    "GraphrecLightGCN",
    "GraphrecMMGEF",
    "GraphrecLATTICE",
    "ADAPTERS",
    "recbole_model",
    "RECBOLE_ALIASES",
    "REFERENCES",
    "recbole_to_dataset",
    "model_params_from_config",
    "load_checkpoint",
    "recbole_workdir",
    "SPLIT_ATTR",
]

#: RecBole's names for graphrec's hyper-parameters (RecBole's LightGCN, MF, ...), accepted
#: as aliases for every model that has the hyper-parameter, except where the model's
#: reference names (:data:`REFERENCES`) give the name another meaning: ``n_layers`` is
#: MGCN's, SMORE's and LATTICE's item-graph layers (``item_layers``) in MMRec
RECBOLE_ALIASES: dict[str, str] = {"embedding_size": "embedding_dim", "n_layers": "num_layers"}

#: how messages name the references of ``ModelEntry.reference_names``
REFERENCES: Mapping[str, str] = REFERENCE_TITLES

#: config keys the adapters read besides the model's hyper-parameters
FEATURE_KEYS = ("feature_fields", "feature_files", "feature_item_ids")

#: keys RecBole 1.2.1 sets or reads without a default in its property files (besides
#: ``overall.yaml``, ``dataset/sample.yaml`` and its argument lists, read from the package)
RECBOLE_RUNTIME_KEYS = (
    "model", "dataset", "config_files", "device", "local_rank", "single_spec", "nproc", "world_size", "offset",
    "ip", "port", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "loss_type", "valid_neg_sample_args",
    "test_neg_sample_args", "neg_sampling", "training_neg_sample_num",
)


# ----------------------------------------------------------------------------- splits
#: the attribute that RecBole's ``Dataset.build`` (wrapped below) sets on the datasets it
#: returns (``"train"``, ``"valid"``, ``"test"``, in data_preparation's order) and on the
#: dataset it split (``"all"``); plain data, so pickled (saved) dataloaders keep it
SPLIT_ATTR = "_graphrec_split"
SPLITS = ("train", "valid", "test")


def _mark_splits() -> None:
    """Make ``Dataset.build`` record which split each dataset it returns is.

    RecBole's ``data_preparation`` splits the dataset with ``dataset.build()``, whose
    results are shallow copies of it (``Dataset.copy``: the same attributes, other
    interaction rows) and go to the train, valid and test dataloaders in that order:
    nothing else tells the training split from the whole dataset. The wrapper only adds
    the mark; what ``build`` returns is unchanged."""
    build = RecBoleDataset.build
    if getattr(build, "_graphrec_marks_splits", False):
        return  # this module imported again

    @functools.wraps(build)
    def build_and_mark(self: Any, *args: Any, **kwargs: Any) -> Any:
        datasets = build(self, *args, **kwargs)
        for split, ds in zip(SPLITS, datasets):
            setattr(ds, SPLIT_ATTR, split)
        setattr(self, SPLIT_ATTR, "all")
        return datasets

    build_and_mark._graphrec_marks_splits = True  # type: ignore[attr-defined]
    RecBoleDataset.build = build_and_mark


_mark_splits()


def _check_training_split(model: str, dataset: Any) -> None:
    """Refuse a RecBole dataset known not to be the training split: one ``Dataset.build``
    split (the whole), its valid or test split, or (unmarked: built before this module was
    imported, or a dataset of training interactions the caller made) the whole dataset of
    benchmark files, or one of as many interactions as the valid or test file (a split
    built before this module was imported)."""
    split = getattr(dataset, SPLIT_ATTR, None)
    if split == "train":
        return
    n = len(dataset.inter_feat) if getattr(dataset, "inter_feat", None) is not None else 0
    sizes = getattr(dataset, "file_size_list", None)
    if split == "all":
        what = f"the whole RecBole dataset ({n} interactions of every split)"
    elif split is not None:
        what = f"RecBole's {split} split ({n} interactions)"
    elif sizes and len(sizes) > 1 and n == sum(sizes) and sizes[0] < n:
        what = f"the whole RecBole dataset ({n} interactions of all benchmark files)"
    elif sizes and len(sizes) > 1 and n != sizes[0] and n in sizes[1:]:
        # a valid or test split built before this module was imported (no mark): its size is its file's
        k = list(sizes[1:]).index(n)
        which = ("valid", "test")[k] if len(sizes) == 3 else f"number {k + 2}"
        what = (f"{n} interactions, the size of the benchmark {which} file, not of the training file "
                f"({sizes[0]})")
    else:
        return  # unmarked: its interactions are taken as the training interactions
    raise ConfigError(
        f"{model} got {what}, not the training split: pass train_data.dataset of data_preparation (run after "
        "importing graphrec.interop.recbole), so that the graphs see training interactions only"
    )


def _check_negative_sampling(model: str, config: Any) -> None:
    """The adapters train with BPR on (user, positive, negative) triples: RecBole must
    sample negatives for the training batches."""
    args = _get(config, "train_neg_sample_args")
    args = args if isinstance(args, Mapping) else {}
    distribution, sample_num = args.get("distribution"), args.get("sample_num")
    if distribution in ("uniform", "popularity") and isinstance(sample_num, int) and sample_num >= 1:
        return
    got = "None" if distribution in (None, "none") else f"{{distribution: {distribution}, sample_num: {sample_num}}}"
    raise ConfigError(
        f"{model} trains with BPR on (user, positive, negative item) triples, but train_neg_sample_args is {got}, "
        "which samples no negative items: set train_neg_sample_args: {distribution: uniform, sample_num: 1} "
        "in the RecBole config"
    )


# ----------------------------------------------------------------------------- config
def _get(config: Any, key: str) -> Any:
    """``config[key]`` of a RecBole ``Config`` or a plain mapping; None when absent."""
    if config is None:
        return None
    values = getattr(config, "final_config_dict", config)
    return values.get(key) if isinstance(values, Mapping) else None


def _number_type(declared: Any, default: Any) -> type | None:
    """int or float when the parameter is a number (``float``, ``Optional[float]``, or a
    numeric default), else None; None too for one that also takes text (SMORE's
    ``knn_k``: a number or ``MODALITY=K`` pairs, which its builder reads)."""
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return type(default)
    args = typing.get_args(declared)
    if str in args or any(str in typing.get_args(a) for a in args):
        return None
    for tp in (declared, *args):
        if tp in (int, float):
            return tp
    return None


def _coerce(name: str, key: str, written: str, value: Any, default: Any, declared: Any = None) -> Any:
    """A number written as text in a config (``"1e-4"``) becomes the number it spells (the
    parameter's declared type decides, so an ``Optional[float]`` defaulting to None
    converts too): ``"32"`` is the int 32, ``"32.7"`` the float 32.7, which an int
    parameter then refuses as it refuses 32.7 (never truncated). ``written`` is the
    RecBole config key the value came from (``key`` or its alias)."""
    number = _number_type(declared, default)
    if not isinstance(value, str) or number is None:
        return value
    text = value.strip()
    for parse in ((int, float) if number is int else (float,)):
        try:
            return parse(text)
        except ValueError:
            continue
    raise ConfigError(
        f"{name} option {key}={value!r} is not a number (RecBole config key {written}): "
        f"fix {written} in the RecBole config"
    )


def _check(name: str, key: str, written: str, value: Any, spec: ParamSpec | None) -> Any:
    """``value`` checked against the parameter's declared type, choices and range, the
    error naming the RecBole config key ``written`` instead of graphrec's CLI flag."""
    if spec is None:
        return value
    try:
        return replace(spec, option=replace(spec.option, cli=False)).check(name, value)
    except ConfigError as e:
        raise ConfigError(f"{e} (RecBole config key {written}): fix {written} in the RecBole config") from None


@functools.lru_cache(maxsize=1)
def _recbole_defaults() -> frozenset[str]:
    """The keys RecBole 1.2.1 itself defines: its ``overall.yaml`` and
    ``dataset/sample.yaml`` defaults, its argument lists and :data:`RECBOLE_RUNTIME_KEYS`."""
    import yaml
    from recbole.utils import argument_list

    props = Path(sys.modules["recbole"].__file__).parent / "properties"
    keys: set[str] = set(RECBOLE_RUNTIME_KEYS)
    for name in ("overall.yaml", "dataset/sample.yaml"):
        with open(props / name, encoding="utf-8") as f:
            keys |= set(yaml.safe_load(f) or {})
    for names in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        keys |= set(getattr(argument_list, names, ()))
    return frozenset(keys)


def _written_keys(config: Any) -> list[str]:
    """The keys of a RecBole ``Config`` (or a mapping) that the user wrote and RecBole does
    not define. A ``Config``'s ``final_config_dict`` is its ``internal_config_dict``
    (RecBole's property files: overall, dataset and model defaults) updated with what the
    user wrote (``file_config_dict``, ``variable_config_dict``, ``cmd_config_dict``: YAML
    files, ``config_dict``, ``--key=value`` arguments) and with what RecBole derives
    (device, ...); assignments ``config[key] = value`` land there too. Its keys outside the
    internal ones and RecBole's own are the user's."""
    if config is None:
        return []
    values = getattr(config, "final_config_dict", config)
    if not isinstance(values, Mapping):
        return []
    known = set(_recbole_defaults()) | set(getattr(config, "internal_config_dict", None) or ())
    for names in (getattr(config, "parameters", None) or {}).values():
        known |= set(names)
    return [k for k in values if isinstance(k, str) and k not in known]


def _refuse_reference_names(name: str, entry: ModelEntry, config: Any, written: list[str]) -> None:
    """A one-line ConfigError when the config uses a reference implementation's names
    (``ModelEntry.reference_names``) for the model's hyper-parameters, saying graphrec's
    names and how to write each value; an alias that means the same parameter is not one."""
    renames = reference_renames(entry)
    found = [k for k in written if k in renames and renames[k][1] != RECBOLE_ALIASES.get(k)]
    if not found:
        return
    refs = {renames[k][0] for k in found}
    who = " and ".join(REFERENCES.get(r, r) for r in sorted(refs))
    writes = []
    for k in found:
        _, target, how = renames[k]
        value = _get(config, k)
        if how and isinstance(value, (int, float)) and not isinstance(value, bool):  # the value written out
            writes.append(how.replace("1 - W", yaml_flow(round(1 - value, 12))).replace("W", yaml_flow(value)))
        else:
            writes.append(f"{how} with W = {yaml_flow(value)}" if how else f"{target}: {yaml_flow(value)}")
    targets = ", ".join(renames[k][1] for k in found)
    if len(found) == 1:
        head = f"{found[0]} is {who}'s name for {entry.title}'s {targets}"
    else:
        head = f"{', '.join(found)} are {who}'s names for {entry.title}'s {targets}"
    notes = [
        f"for {entry.title}, {k} is not RecBole's {k}, graphrec's {RECBOLE_ALIASES[k]}"
        for k in found
        if k in RECBOLE_ALIASES
    ]
    if any(isinstance(_get(config, k), (list, tuple)) for k in found):
        notes.append(f"one value each: RecBole trains one point; graphrec tune {name} --space {min(refs)} "
                     "searches the reference's grid")
    raise ConfigError(
        f"{head}: write {'; '.join(writes)} instead in the RecBole config"
        + "".join(f" ({note})" for note in notes)
    )


def model_params_from_config(name: str, config: Any) -> dict[str, Any]:
    """The hyper-parameters of graphrec model ``name`` found in a RecBole config (or a
    mapping), completed with graphrec's defaults (module doc). Errors name the RecBole
    config key that was written (``embedding_size`` or ``embedding_dim``). A reference
    implementation's name for one of the model's hyper-parameters (MMRec's ``knn_k`` for
    ``k``) is a ConfigError naming graphrec's; keys that are neither the model's, nor
    RecBole's, nor the adapters' (:data:`FEATURE_KEYS`) get one :class:`GraphrecNote`."""
    if name not in MODELS:
        raise ConfigError(f"unknown graphrec model {name!r}: available are {', '.join(sorted(MODELS))}")
    entry = get_model(name, "ranking")
    defaults = entry.defaults
    specs = {p.name: p for p in entry.params}
    renames = reference_renames(entry)
    aliases = {
        alias: key for alias, key in RECBOLE_ALIASES.items()
        if key in defaults and renames.get(alias, ("", key, ""))[1] == key
    }
    written = _written_keys(config)
    _refuse_reference_names(name, entry, config, written)
    given: dict[str, Any] = {}

    def read(key: str, written: str, value: Any) -> Any:
        spec = specs.get(key)
        value = _coerce(name, key, written, value, defaults[key], spec.type if spec else None)
        return _check(name, key, written, value, spec)

    for key in defaults:
        value = _get(config, key)
        if value is None:
            continue
        if key == "graphs":
            raise ConfigError(
                "the RecBole adapters build their item graphs from RecBole's training split; stored graphs "
                "(graphs=...) belong to a graphrec dataset: remove the graphs key"
            )
        given[key] = read(key, key, value)
    for alias, key in aliases.items():
        value = _get(config, alias)
        if value is None:
            continue
        value = read(key, alias, value)
        if key in given and given[key] != value:
            raise ConfigError(
                f"the config sets both {alias}={value!r} and {key}={given[key]!r}: keep one of them"
            )
        given[key] = value
    unknown = [k for k in written if k not in defaults and k not in aliases and k not in FEATURE_KEYS]
    if unknown:
        warnings.warn(
            f"graphrec {name} ignores the RecBole config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            f"neither {name}'s hyper-parameters (graphrec models {name} --params lists them) nor RecBole's options",
            GraphrecNote, stacklevel=2,
        )
    return model_params(name, given)


#: a command-line flag in a builder's message, and the word after it
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)( [^\s;()]+)?")


def _flag_keys(entry: ModelEntry) -> dict[str, tuple[str, str | None]]:
    """``--flag -> (config key, value)`` of the model's declared hyper-parameters: the
    value a switch sets (``"true"``/``"false"``), None for a flag that takes one."""
    out: dict[str, tuple[str, str | None]] = {}
    for spec in entry.params:
        if spec.option.target != "model":
            continue
        switch = spec.type in (bool, Optional[bool])
        for flag in spec.flags:
            on, _, off = flag.partition("/")
            if not switch:
                out[on] = (spec.name, None)
                continue
            out[on] = (spec.name, "false" if spec.option.invert else "true")
            if off:
                out[off] = (spec.name, "false")
    return out


def _config_keys_in_message(message: str, entry: ModelEntry, modalities: Iterable[str] = ()) -> str:
    """A builder's message with the command-line flags of the model's hyper-parameters
    written as RecBole config keys: ``--modalities text`` as ``modalities: text``,
    ``--no-include-self`` as ``include_self: false``, ``--k`` as ``k``. The word after a
    flag is its value when it is one of the parameter's choices, a modality (or a comma
    list of them) or holds a digit or ``=``; ``; in a tune space file, ...`` asides are
    dropped. Other flags (``graphrec`` commands') are left as they are."""
    flags = _flag_keys(entry)
    mods = set(modalities)
    choices = {spec.name: {str(c) for c in spec.option.choices} for spec in entry.params}

    def is_value(key: str, word: str) -> bool:
        if word.startswith("-") or word == "/":
            return False
        parts = word.split(",")
        return bool(re.search(r"[\d=]", word)) or all(p in mods or p in choices.get(key, ()) for p in parts)

    def key_of(match: re.Match[str]) -> str:
        flag, after = match.group(1), match.group(2) or ""
        if flag not in flags:
            return match.group(0)
        key, value = flags[flag]
        if value is not None:
            return f"{key}: {value}{after}"
        word = after[1:]
        stripped = word.rstrip(".,")
        if stripped and is_value(key, stripped):
            return f"{key}: {stripped}{word[len(stripped):]}"
        return f"{key}{after}"

    message = re.sub(r"; in a tune space file, [^)]*", "", message)
    return _FLAG.sub(key_of, message)


# ----------------------------------------------------------------------------- data
def _field_features(dataset: Any, config: Any) -> dict[str, np.ndarray]:
    """``float_seq`` fields of RecBole's item features as ``{field: (n_items - 1) x d}``."""
    item_feat = dataset.item_feat
    available = [
        f
        for f, t in dataset.field2type.items()
        if t == FeatureType.FLOAT_SEQ
        and dataset.field2source.get(f) == FeatureSource.ITEM
        and item_feat is not None
        and f in item_feat.columns
    ]
    wanted = _get(config, "feature_fields")
    if wanted is None:
        chosen = available
    else:
        chosen = [wanted] if isinstance(wanted, str) else [str(f) for f in wanted]
        missing = [f for f in chosen if f not in available]
        if missing:
            raise ConfigError(
                f"feature_fields names {', '.join(missing)}, but RecBole loaded "
                f"{'the float_seq item fields ' + ', '.join(available) if available else 'no float_seq item field'}: "
                f"add them to load_col (item: [{dataset.iid_field}, {', '.join(chosen)}]) or fix feature_fields"
            )
    normalized = set(_get(config, "normalize_field") or [])
    if _get(config, "normalize_all"):
        normalized |= set(chosen)
    changed = (
        normalized | set(_get(config, "discretization") or {}) | set(_get(config, "numerical_features") or [])
    )
    out: dict[str, np.ndarray] = {}
    for f in chosen:
        if f in changed:
            raise ConfigError(
                f"RecBole rescales or discretises the feature field {f!r} (normalize_all, normalize_field, "
                "discretization or numerical_features): the item graphs need the raw vectors: set "
                f"normalize_all: False and leave {f} out of those options"
            )
        x = _column(item_feat, f)
        if x.ndim != 2:
            raise DataError(
                f"RecBole item field {f!r} has shape {x.shape}, expected (items, dim): "
                "give every item a vector of the same length"
            )
        full = np.zeros((dataset.item_num, x.shape[1]), dtype=np.float32)
        full[_column(item_feat, dataset.iid_field).astype(np.int64)] = x  # rows by item id
        out[f] = full[1:]
    return out


def _column(feat: Any, field: str) -> np.ndarray:
    """One column of RecBole's item features, an ``Interaction`` (after
    ``data_preparation``) or a pandas frame (right after ``create_dataset``)."""
    col = feat[field]
    if isinstance(col, Tensor):
        return col.detach().cpu().numpy()
    values = list(col.values)
    if values and isinstance(values[0], np.ndarray):
        lengths = {len(v) for v in values if len(v)}
        if len(lengths) > 1:
            raise DataError(
                f"RecBole item field {field!r} holds vectors of lengths {sorted(lengths)}: "
                "give every item a vector of the same length"
            )
        d = lengths.pop() if lengths else 0
        return np.stack([v if len(v) else np.zeros(d) for v in values]).astype(np.float32)
    return np.asarray(values)


def _read_item_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: feature_item_ids file not found: give one item token per line, row order")
    return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _file_features(config: Any, item_tokens: np.ndarray) -> dict[str, np.ndarray]:
    """``feature_files`` of the config, rows reordered to RecBole's items."""
    files = _get(config, "feature_files")
    if not files:
        return {}
    if not isinstance(files, Mapping):
        raise ConfigError(
            f"feature_files must map modality -> .npy path (e.g. {{text: text.npy}}), got {files!r}"
        )
    base = Path(_get(config, "data_path") or ".")
    ids_file = _get(config, "feature_item_ids")
    row_tokens = _read_item_ids(resolve(ids_file, base)) if ids_file else None
    out: dict[str, np.ndarray] = {}
    for mod, p in files.items():
        path = resolve(p, base)
        x = load_npy(path, str(mod))
        tokens = row_tokens if row_tokens is not None else [str(r) for r in range(x.shape[0])]
        if len(tokens) != x.shape[0]:
            raise DataError(
                f"{path}: {x.shape[0]} rows but feature_item_ids lists {len(tokens)} items: "
                "give one token per feature row"
            )
        row_of = {t: r for r, t in enumerate(tokens)}
        rows = np.array([row_of.get(t, -1) for t in item_tokens.tolist()], dtype=np.int64)
        if (rows < 0).any():
            k = int(np.flatnonzero(rows < 0)[0])
            how = "in feature_item_ids" if row_tokens is not None else "as a row index (row r = item token 'r')"
            raise DataError(
                f"{path}: item {str(item_tokens[k])!r} has no feature row {how} ({int((rows < 0).sum())} items lack "
                "one): set feature_item_ids to a file listing the item token of every row"
            )
        out[str(mod)] = np.ascontiguousarray(x[rows], dtype=np.float32)
    return out


def recbole_to_dataset(dataset: Any, config: Any = None) -> Dataset:
    """A graphrec :class:`Dataset` of a RecBole dataset's interactions (all in ``train``).

    Pass RecBole's TRAINING dataset (``train_data.dataset`` after ``data_preparation``)
    so that graphs built from it use training interactions only. graphrec index ``k``
    is RecBole id ``k + 1`` (id 0 is ``[PAD]``); ids keep RecBole's tokens. Item
    features come from ``config`` as described in the module doc (none without a config
    or feature keys, except the ``float_seq`` fields RecBole loaded).
    """
    uid, iid = dataset.uid_field, dataset.iid_field
    user_tokens = np.asarray(dataset.field2id_token[uid][1:]).astype(str)
    item_tokens = np.asarray(dataset.field2id_token[iid][1:]).astype(str)
    r = sp.csr_matrix(dataset.inter_matrix(form="csr"))[1:, 1:]
    feats = _field_features(dataset, config)
    for mod, x in _file_features(config, item_tokens).items():
        if mod in feats:
            raise ConfigError(
                f"modality {mod!r} is both a .item float_seq field and a feature_files entry: rename one"
            )
        feats[mod] = x
    return Dataset(
        user_ids=user_tokens,
        item_ids=item_tokens,
        splits={"train": r},
        item_features=feats,
        name=str(getattr(dataset, "dataset_name", "recbole")),
        meta={"format": "recbole-dataset", "note": "interactions of the RecBole dataset given (training split)"},
    )


# ----------------------------------------------------------------------------- models
class GraphrecRecommender(GeneralRecommender):
    """A graphrec ranking model as a RecBole ``GeneralRecommender`` (module doc).

    Subclasses set :attr:`graphrec_model` (a registered ranking model);
    :func:`recbole_model` makes one for any registered model.

    Attributes:
        inner: the graphrec :class:`~graphrec.models.Recommender` (indices without [PAD]).
        graphrec_params: the hyper-parameters it was built with.
        epoch: training epochs started (``train()`` calls).
    """

    input_type = InputType.PAIRWISE
    graphrec_model: str = ""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        if not self.graphrec_model:
            raise TypeError("GraphrecRecommender is abstract: use recbole_model(NAME), e.g. GraphrecLightGCN")
        self._scorer: Scorer | None = None
        self._pairs: Callable[[Tensor, Tensor], Tensor] | None = None
        self.epoch = 0
        self.graphrec_params = model_params_from_config(self.graphrec_model, config)
        _check_negative_sampling(type(self).__name__, config)
        _check_training_split(type(self).__name__, dataset)
        data = recbole_to_dataset(dataset, config)
        if get_model(self.graphrec_model, "ranking").uses_features(self.graphrec_params) and not data.item_features:
            raise ConfigError(
                f"{type(self).__name__} needs item features: load float_seq columns of the .item file "
                f"(load_col: {{inter: [{self.USER_ID}, {self.ITEM_ID}], item: [{self.ITEM_ID}, FIELD]}}) or set "
                "feature_files: {MODALITY: FILE.npy} in the RecBole config"
            )
        self.graphrec_modalities = list(data.item_features)
        try:
            self.inner: Recommender = build_model(self.graphrec_model, data, self.graphrec_params)
        except (ConfigError, DataError) as e:  # the builders' messages name command-line flags
            entry = get_model(self.graphrec_model, "ranking")
            message = _config_keys_in_message(str(e), entry, self.graphrec_modalities)
            raise type(e)(f"{type(self).__name__}: {message}") from None
        self.to(self.device)

    # -------------------------------------------------------------- epochs and caches
    def _drop_caches(self) -> None:
        self._scorer = None
        self._pairs = None

    def train(self, mode: bool = True) -> "GraphrecRecommender":
        """Set the mode; ``train()`` starts a new epoch (``inner.start_epoch``)."""
        super().train(mode)
        self._drop_caches()
        if mode:
            self.epoch += 1
            self.inner.start_epoch(self.epoch)
        return self

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load through the graphrec model's own ``load_state_dict`` (which may reset
        derived state, as LATTICE's learned graph)."""
        prefix = "inner."
        other = [k for k in state_dict if not k.startswith(prefix)]
        if strict and other:
            raise RuntimeError(f"unexpected keys in the state dict of {type(self).__name__}: {other[:5]}")
        self._drop_caches()
        inner = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        return self.inner.load_state_dict(inner, strict=strict, assign=assign)

    def _full_scorer(self) -> Scorer:
        """``users -> scores of every item``: the graphrec model's own :meth:`scorer`
        (the cold path's neighbour term included), built once per evaluation pass."""
        if self.training:
            return self.inner.scorer()
        if self._scorer is None:
            with torch.no_grad():
                self._scorer = self.inner.scorer()
        return self._scorer

    def _pair_scorer(self) -> Callable[[Tensor, Tensor], Tensor]:
        """``(users, items) -> scores``: the graphrec model's ``forward``, with its
        propagation done once per evaluation pass where that is exact (module doc)."""
        if self.training:
            return self.inner.forward
        if self._pairs is None:
            with torch.no_grad():
                self._pairs = _pair_scores(self.inner)
        return self._pairs

    # -------------------------------------------------------------- RecBole contract
    def calculate_loss(self, interaction: Any) -> Tensor:
        """BPR loss (+ the model's L2) of a batch of (user, item, neg_item) triples."""
        self._drop_caches()
        users = interaction[self.USER_ID] - 1
        pos = interaction[self.ITEM_ID] - 1
        neg = interaction[self.NEG_ITEM_ID] - 1
        return self.inner.loss(users, pos, neg)

    def predict(self, interaction: Any) -> Tensor:
        """Scores of the batch's (user, item) pairs, shape (batch,): the graphrec
        model's ``forward(users, items)``."""
        users = interaction[self.USER_ID] - 1
        items = interaction[self.ITEM_ID] - 1
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return self._pair_scorer()(users, items)

    def full_sort_predict(self, interaction: Any) -> Tensor:
        """Scores of every item (``[PAD]`` first, ``-inf``) for the batch's users,
        flattened to (batch * n_items,) as RecBole expects: the graphrec model's
        ``scorer()`` scores."""
        users = interaction[self.USER_ID] - 1
        scores = self._full_scorer()(users)
        pad = scores.new_full((scores.shape[0], 1), float("-inf"))
        return torch.cat([pad, scores], dim=1).reshape(-1)


def _pair_scores(model: Recommender) -> Callable[[Tensor, Tensor], Tensor]:
    """``(users, items) -> model(users, items)`` for one evaluation pass. Where ``forward``
    is the inner product of ``embeddings()`` (the base class's) or the cold path's served
    score over the base model's embeddings, the propagation runs once here and each
    batch costs a gather; any other ``forward`` runs as it is, once per batch."""
    forward = type(model).forward
    if forward is Recommender.forward:
        user_emb, item_emb = model.embeddings()
        return lambda users, items: (user_emb[users] * item_emb[items]).sum(-1)
    if forward is ColdItemRecommender.forward:
        user_emb, item_emb = model.base.embeddings()
        return lambda users, items: model._served(user_emb, item_emb, users, items)
    return model.forward


class GraphrecLightGCN(GraphrecRecommender):
    """graphrec's LightGCN (:class:`graphrec.models.LightGCN`) for RecBole."""

    graphrec_model = "lightgcn"


class GraphrecMMGEF(GraphrecRecommender):
    """graphrec's MM-GEF (:class:`graphrec.models.MMGEF`) for RecBole; needs item features."""

    graphrec_model = "mmgef"


class GraphrecLATTICE(GraphrecRecommender):
    """graphrec's LATTICE (:class:`graphrec.models.LATTICE`) for RecBole; needs item features."""

    graphrec_model = "lattice"


_ADAPTER_CLASSES: dict[str, type[GraphrecRecommender]] = {
    "lightgcn": GraphrecLightGCN,
    "mmgef": GraphrecMMGEF,
    "lattice": GraphrecLATTICE,
}


def recbole_model(name: str) -> type[GraphrecRecommender]:
    """The RecBole adapter class of any registered graphrec ranking model ``name``
    (:mod:`graphrec.train.registry`), e.g. ``recbole_model("freedom")``; made once and
    reused, named ``Graphrec<Title>``."""
    entry = get_model(name, "ranking")
    if not entry.trainable:
        raise ConfigError(f"{name} has no parameters for RecBole's Trainer to train: evaluate it with graphrec train {name}")
    cls = _ADAPTER_CLASSES.get(name)
    if cls is None:
        cls = type(
            _adapter_name(name),
            (GraphrecRecommender,),
            {"graphrec_model": name, "__doc__": f"graphrec's {entry.title} ({entry.paper}) for RecBole.",
             "__module__": __name__},
        )
        # a module attribute, as a class statement makes: pickle finds classes by name, and
        # RecBole's Trainer pickles the model's class into every checkpoint (saved=True)
        globals()[cls.__name__] = cls
        _ADAPTER_CLASSES[name] = cls
    return cls


def _adapter_name(name: str) -> str:
    return "Graphrec" + "".join(ch for ch in get_model(name, "ranking").title if ch.isalnum())


def __getattr__(attr: str) -> type[GraphrecRecommender]:
    """``graphrec.interop.recbole.GraphrecFREEDOM`` etc. for an adapter not made yet in
    this process (unpickling a checkpoint written by another one)."""
    if attr.startswith("Graphrec"):
        for name, entry in MODELS.items():
            if entry.trainable and entry.task == "ranking" and _adapter_name(name) == attr:
                return recbole_model(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


class _Adapters(Mapping[str, type[GraphrecRecommender]]):
    """``name -> adapter class`` for every registered ranking model."""

    def __getitem__(self, name: str) -> type[GraphrecRecommender]:
        if name not in self._names():
            raise KeyError(name)
        return recbole_model(name)

    @staticmethod
    def _names() -> list[str]:
        return [n for n, e in MODELS.items() if e.trainable]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:  # `print(ADAPTERS)` lists them (docs/recbole.md)
        return "{" + ", ".join(f"{n!r}: {recbole_model(n).__name__}" for n in self._names()) + "}"


#: graphrec model name -> RecBole adapter class, for every registered trainable ranking model
ADAPTERS: Mapping[str, type[GraphrecRecommender]] = _Adapters()


# ----------------------------------------------------------------------------- helpers
def load_checkpoint(model: GraphrecRecommender, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by RecBole's ``Trainer`` (``trainer.saved_model_file``)
    into ``model`` and return it.

    RecBole 1.2.1's ``Trainer.evaluate(load_best_model=True)`` calls ``torch.load``
    without ``weights_only=False``, which fails on torch >= 2.6 (the checkpoint holds the
    RecBole config). Load the best model with this function, then call
    ``trainer.evaluate(test_data, load_best_model=False)``. Only load files you wrote.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: checkpoint not found: train with trainer.fit(..., saved=True) first")
    ckpt = torch.load(p, map_location=next(model.parameters()).device, weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    model.load_other_parameter(ckpt.get("other_parameter"))
    return ckpt


@contextlib.contextmanager
def recbole_workdir(workdir: str | os.PathLike) -> Iterator[Path]:
    """Run RecBole inside ``workdir``, with a bare ``sys.argv``, quietly.

    RecBole's ``Trainer`` writes ``log_tensorboard/`` into the current directory, and its
    ``Config`` parses every ``--key=value`` of ``sys.argv`` as an option (the arguments of
    the calling program would leak into it). RecBole's own deprecation warnings (pandas,
    torch) are silenced.
    """
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(path)
    sys.argv = sys.argv[:1]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="recbole")
            warnings.filterwarnings("ignore", category=UserWarning, module="recbole")
            warnings.filterwarnings("ignore", category=FutureWarning, module="torch")
            yield path
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
