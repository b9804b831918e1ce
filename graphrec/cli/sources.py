"""Where a command's dataset comes from: a prepared directory or an importer spec.

Recipes (``graphs/*.yaml``) name their data either as ``data: DIR`` (a dataset directory
written by ``graphrec prepare``) or as ``source: {format, path, ...}`` (imported on the
fly, then split like ``prepare --split auto`` would). Relative paths are resolved
against the recipe's folder. The resolved description is stored in graph provenance so
``graphrec inspect`` can find the same data again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from graphrec.errors import ConfigError

SOURCE_KEYS = {"format", "path", "features", "unseen", "name", "min_rating", "dim", "split", "seed"}


def resolve_source(spec: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Absolute paths, validated keys; returns a JSON-able description."""
    unknown = set(spec) - SOURCE_KEYS
    if unknown:
        raise ConfigError(f"unknown source key(s) {', '.join(sorted(unknown))}: valid are {', '.join(sorted(SOURCE_KEYS))}")
    if "format" not in spec or "path" not in spec:
        raise ConfigError("a recipe's source needs 'format' and 'path'")
    out = dict(spec)
    out["path"] = str((base / str(spec["path"])).resolve())
    return out


def load_source(source: Mapping[str, Any]):
    """The Dataset a source description names (see module doc;
    :func:`graphrec.graphs.store.source_dataset`, which graph records are read with too)."""
    from graphrec.graphs.store import source_dataset

    return source_dataset(source)
