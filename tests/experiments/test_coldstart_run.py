"""experiments/coldstart/run.py skips an existing result only when it was trained with the
call's settings; another one (a smoke run left in the folder) stops the call before any
work, naming the file and the setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "coldstart" / "run.py"


def test_a_result_of_other_settings_stops_the_call(shared_data, tmp_path):
    def call(*args):
        return subprocess.run([sys.executable, str(SCRIPT), "--dataset", "lfm2k", "--rows", "warm LightGCN",
                               "--data-root", str(shared_data), "--results", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=300)

    first = call("--epochs", "1")
    assert first.returncode == 0, first.stderr
    result = tmp_path / "lfm2k" / "warm-lightgcn" / "seed0.json"
    recorded = json.loads(result.read_text())["run_settings"]
    assert recorded["max_epochs"] == 1 and recorded["lr"] == 1e-3
    again = call("--epochs", "1")
    assert again.returncode == 0 and again.stdout == "", again.stderr
    other = call("--epochs", "3")
    assert other.returncode == 1 and len(other.stderr.strip().splitlines()) == 1, other.stderr
    assert str(result) in other.stderr and "max_epochs: 1 there, 3 in this call" in other.stderr
    assert other.stdout == ""
    # a result written before run.py recorded its settings: judged by its epochs
    legacy = json.loads(result.read_text())
    del legacy["run_settings"]
    result.write_text(json.dumps(legacy))
    assert "max_epochs: 1 epochs run there" in call("--epochs", "3").stderr
