"""The experiment drivers outside benchmarks/ check their inputs before any work: a missing
data folder, an unknown dataset or an unwritable output is one line on stderr and exit
status 1 (experiments/_script.py), not a DataError, KeyError or CalledProcessError
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPERIMENTS / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.mark.parametrize("command", [
    ["ctr/run.py", "--datasets", "ml100k"],
    ["coldstart/run.py", "--dataset", "lfm2k"],
    ["mmgef/run.py", "--dataset", "lfm2k", "--tables", "1", "--only", "MF-BPR", "--seeds", "0"],
])
def test_a_data_root_without_the_data_is_one_line(tmp_path, command):
    out = "--results" if command[0].startswith("coldstart") else "--out"
    _one_line_error(_run(*command, "--data-root", str(tmp_path / "nonexist"), out, str(tmp_path / "out")),
                    str(tmp_path / "nonexist"))


@pytest.mark.parametrize("command", [
    ["ctr/run.py", "--datasets", "ml100k", "--out"],
    ["coldstart/run.py", "--dataset", "lfm2k", "--results"],
    ["mmgef/run.py", "--dataset", "lfm2k", "--out"],
    ["distributed/run.py", "--results"],
    ["recbole/lightgcn_three_ways.py", "--out"],
])
def test_an_output_that_cannot_be_written_is_one_line(tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line_error(_run(*command, str(blocker / "results")), str(blocker), "is a file")


def test_ctr_names_the_datasets_it_knows(tmp_path):
    _one_line_error(_run("ctr/run.py", "--datasets", "nope", "--out", str(tmp_path)), "--datasets", "nope",
                    "amazon-scientific, ml100k")


def test_lightgcn_three_ways_checks_its_data(tmp_path):
    _one_line_error(_run("recbole/lightgcn_three_ways.py", "--data", str(tmp_path / "nonexist")), "--data",
                    str(tmp_path / "nonexist"))
    # a folder that is no MMRec split: graphrec's reader's one line (needs the heavy imports)
    _one_line_error(_run("recbole/lightgcn_three_ways.py", "--data", str(tmp_path), "--paths", "graphrec",
                         env=dict(os.environ, PYTHONPATH=str(REPO))), "not an MMRec directory")


def test_distributed_checks_the_shared_folder_and_its_settings(tmp_path):
    results = str(tmp_path / "results")
    _one_line_error(_run("distributed/run.py", "--shared", str(tmp_path / "nonexist"), "--results", results),
                    "--shared", "lfm2k")
    _one_line_error(_run("distributed/run.py", "--settings", "np3", "--results", results), "--settings", "np3")
    assert not (tmp_path / "results").exists()  # nothing was written into the results folder


def test_lightgcn_run_sh_checks_its_inputs(tmp_path):
    script = str(EXPERIMENTS / "lightgcn" / "run.sh")
    env = dict(os.environ, PYTHON=sys.executable)
    shown = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, timeout=30, env=env)
    assert shown.returncode == 0 and "--results DIR" in shown.stdout and "PYTHON" in shown.stdout
    for args, words in (([str(tmp_path / "nonexist")], ["amazon-baby"]),
                        (["--results", "/proc/x", str(tmp_path)], [])):
        if not words:  # data there, an output that cannot be written
            (tmp_path / "amazon-baby").mkdir(exist_ok=True)
            (tmp_path / "lfm2k").mkdir(exist_ok=True)
            words = ["--results", "/proc/x"]
        done = subprocess.run(["bash", script, *args], capture_output=True, text=True, timeout=30, env=env)
        _one_line_error(done, *words)
