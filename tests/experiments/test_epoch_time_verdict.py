"""experiments/benchmarks/epoch_time.py judges each setting's bar from the run's own
epochs: met / NOT met with the figure, on the median wall time, with the CPU-time
judgement added where the two differ."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks" / "epoch_time.py"


@pytest.fixture(scope="module")
def epoch_time():
    spec = importlib.util.spec_from_file_location("epoch_time_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_has_a_checkable_bar(epoch_time):
    for name, setting in epoch_time.SETTINGS.items():
        kind, *spec = setting["check"]
        labels = {m[0] for m in setting["models"]}
        if kind == "seconds":
            assert spec[0] in labels and spec[0] in setting["reference"], name
        elif kind == "ratio":
            assert {spec[0], spec[1]} <= labels, name
        else:
            assert kind == "optimizers" and set(spec[:2]) == set(setting["optimizers"]), name


def test_lfm2k_lattice_against_mmrec_seconds(epoch_time):
    setting = epoch_time.SETTINGS["lfm2k"]
    fast = {"lightgcn": [0.1, 0.1, 0.1], "lattice": [0.2, 0.18, 0.5]}  # median 0.2 <= 0.216
    line = epoch_time.verdict(setting, fast, fast)
    assert line.startswith("bar: LATTICE epoch") and ": met (lattice 0.200 s, 5.4x faster" in line
    assert "on CPU time" not in line
    slow = {"lightgcn": [0.1], "lattice": [0.3]}
    cpu = {"lightgcn": [0.1], "lattice": [0.2]}
    line = epoch_time.verdict(setting, slow, cpu)
    assert ": NOT met (lattice 0.300 s, 3.6x faster" in line and line.endswith("on CPU time met (lattice 0.200 s, 5.4x faster than MMRec's 1.08 s)")


def test_ratio_and_optimizer_bars(epoch_time):
    baby = epoch_time.SETTINGS["baby"]
    t = {"lightgcn": [1.0], "mmgef-cooccur": [1.6]}
    assert "NOT met (mmgef-cooccur / lightgcn 1.60x" in epoch_time.verdict(baby, t, t)
    adam = epoch_time.SETTINGS["scientific-adam"]
    t = {f"{m[0]}/{o}": [1.0] for m in adam["models"] for o in ("loop", "fused")}
    assert ": met (fused / loop at most 1.00x" in epoch_time.verdict(adam, t, t)
    t["vbpr/fused"] = [1.1]
    assert ": NOT met (fused / loop at most 1.10x (vbpr)" in epoch_time.verdict(adam, t, t)
