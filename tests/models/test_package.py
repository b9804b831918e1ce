"""`from graphrec.models import FREEDOM`: every model class of the package is importable
from it, found from the model files themselves (adding a model touches no list)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import graphrec.models as models
from graphrec.models import Recommender

PACKAGE = Path(models.__file__).parent


def _exported_classes() -> dict[str, str]:
    """{class name: module} of the classes each model file lists in its __all__, read
    from the source text (not through the package's own discovery)."""
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in {"__init__", "base", "coldstart"}:
            continue
        tree = ast.parse(path.read_text())
        classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                for name in ast.literal_eval(node.value):
                    if name in classes:
                        out[name] = path.stem
    return out


def test_every_model_class_is_importable_from_the_package():
    exported = _exported_classes()
    assert {"FREEDOM", "BM3", "VBPR", "MGCN", "SMORE", "DRAGON", "LightGCN", "LATTICE", "MMGEF"} <= set(exported)
    for name, module in exported.items():
        cls = getattr(models, name)
        assert cls.__module__ == f"graphrec.models.{module}" and issubclass(cls, Recommender), name
        assert name in models.__all__ and name in dir(models)
    namespace: dict = {}
    exec("from graphrec.models import *", namespace)
    assert set(exported) <= set(namespace)


def test_an_unknown_name_is_an_import_error_and_submodules_stay_reachable():
    with pytest.raises(ImportError, match="cannot import name 'Nope'"):
        exec("from graphrec.models import Nope", {})
    assert models.freedom.FREEDOM is models.FREEDOM  # a submodule, as an attribute of the package
