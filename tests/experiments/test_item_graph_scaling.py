"""experiments/benchmarks/item_graph_scaling.py's report over repeated processes: medians,
the step's range, and the ratio to LightGCN taken round by round."""

from __future__ import annotations

import pytest


def _run(step: float, peak: float = 1000.0, rss: float = 600.0) -> dict:
    return {"label": "m", "n_items": 10, "n_users": 10, "train": 100, "build_s": 1.0, "step_s": step,
            "start_epoch_s": 0.0, "epoch_start_step_s": step, "epoch_s": 10 * step, "rss_data_mb": rss,
            "peak_mb": peak}


def test_repeated_runs_report_medians_the_range_and_the_round_by_round_ratio(scaling):
    # three rounds; the second ran on a loaded machine: everything twice as slow
    base = [_run(0.2), _run(0.4), _run(0.2)]
    runs = [_run(0.3, peak=1100), _run(0.6, peak=1300), _run(0.32, peak=1200)]
    r = scaling.summarise(runs, base)
    assert r["step_s"] == 0.32 and (r["step_min"], r["step_max"]) == (0.3, 0.6)
    # per round 1.5, 1.5, 1.6: the loaded round does not move the ratio
    assert r["ratio"] == pytest.approx(1.5)
    assert r["peak_mb"] == 1200 and r["added_mb"] == 600 and r["epoch_s"] == pytest.approx(3.2)
    assert r["label"] == "m" and r["n_items"] == 10


def test_one_run_is_its_own_figures(scaling):
    r = scaling.summarise([_run(0.3)], [_run(0.2)])
    assert r["step_s"] == r["step_min"] == r["step_max"] == 0.3 and r["ratio"] == pytest.approx(1.5)
