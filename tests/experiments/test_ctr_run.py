"""experiments/ctr/run.py: results/<dataset>.md shows every cached run of the current
settings, whichever parts a call trains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphrec.data import build_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "ctr" / "run.py"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    # a tiny timestamped catalogue with image and text features, standing in for ml100k
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 40, 30, 9
    users = np.repeat([f"u{u}" for u in range(n_users)], per_user)
    items = np.array([f"i{i}" for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)])
    feats = {"image": rng.normal(size=(n_items, 8)).astype(np.float32),
             "text": rng.normal(size=(n_items, 6)).astype(np.float32)}
    ds = build_dataset(users, items, ["train"] * len(users), timestamps=np.arange(len(users)),
                       item_ids=[f"i{i}" for i in range(n_items)], item_features=feats, name="ml100k")
    root = tmp_path_factory.mktemp("ctr-run")
    ds.save(root / "data" / "ml100k")
    return root


def _run(root: Path, *args: str) -> str:
    cmd = [sys.executable, str(SCRIPT), "--data-root", str(root / "data"), "--datasets", "ml100k",
           "--seeds", "1", "--epochs", "1", "--out", str(root / "out"), *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return (root / "out" / "ml100k.md").read_text()


def test_one_part_at_a_time_keeps_the_other_parts_tables(root):
    md = _run(root, "--parts", "table2", "--models", "lr")
    assert "| LR | none |" in md and "Table 3 ablations" not in md
    assert "Rows not run yet with these settings" in md and "of table2" in md  # the other models
    md = _run(root, "--parts", "gmmf_ablation", "--rows", "g3-a")
    assert "| LR | none |" in md  # table 2's cached run is still reported
    assert "## GMMF Table 3 ablations" in md and "| (a) Base |" in md and "| (b) +AE |" not in md
    assert "## MARN Table 3 ablations" not in md  # nothing of it ran
    # runs cached with other settings are not reported under these ones, and not refused
    md = _run(root, "--parts", "marn_ablation", "--rows", "m3-0", "--epochs", "2")
    assert "| LR | none |" not in md and "| (a) Base |" not in md
    assert "## MARN Table 3 ablations" in md and md.count("| BaseModel") == 1
    assert not (root / "out" / "ml100k-tune.md").exists()


def test_fm_without_item_side_fields_has_no_graph_row_and_stale_lr_fm_runs_are_refused(root):
    """The papers' FM sees the item's ID fields only: on data without item side fields (this
    catalogue, amazon-scientific) the item ID is its one field, graphrec refuses item
    graphs for it, and Table 2 says so instead of failing. LR and FM runs cached before
    they dropped the user fields (no "user_fields" key) are refused, not reported."""
    import json

    out = root / "out-fields"
    cmd = [sys.executable, str(SCRIPT), "--data-root", str(root / "data"), "--datasets", "ml100k", "--seeds", "1",
           "--epochs", "1", "--out", str(out), "--parts", "table2", "--models", "lr,fm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    md = (out / "ml100k.md").read_text()
    assert "| LR | none |" in md and "| FM | none |" in md and "| FM | both |" not in md
    assert "No item-graph row for FM: on these data the item ID is its only field" in md
    cached = out / "ml100k" / "runs" / "t2-fm-none-s0.json"
    run = json.loads(cached.read_text())
    assert run["user_fields"] is False
    del run["user_fields"]  # as cached before the change
    cached.write_text(json.dumps(run))
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode != 0 and "with the user fields it had before" in res.stderr + res.stdout
