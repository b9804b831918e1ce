"""Experiment scripts are not a package: tests import one by its path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _import_script(relative: str, name: str) -> Iterator[ModuleType]:
    """Import ``experiments/<relative>`` as module ``name`` for the duration of a fixture
    (registered in sys.modules while in use: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture(scope="module")
def zoo() -> Iterator[ModuleType]:
    """experiments/zoo/run.py"""
    yield from _import_script("zoo/run.py", "zoo_run")


@pytest.fixture(scope="module")
def mmgef_run() -> Iterator[ModuleType]:
    """experiments/mmgef/run.py"""
    yield from _import_script("mmgef/run.py", "mmgef_run")


@pytest.fixture(scope="module")
def patience_check() -> Iterator[ModuleType]:
    """experiments/zoo/patience_check.py (it imports the driver beside it as ``run``)."""
    zoo_dir = str(EXPERIMENTS / "zoo")
    try:
        yield from _import_script("zoo/patience_check.py", "zoo_patience_check")
    finally:
        sys.modules.pop("run", None)
        while zoo_dir in sys.path:
            sys.path.remove(zoo_dir)


@pytest.fixture(scope="module")
def scaling() -> Iterator[ModuleType]:
    """experiments/benchmarks/item_graph_scaling.py"""
    yield from _import_script("benchmarks/item_graph_scaling.py", "item_graph_scaling")
