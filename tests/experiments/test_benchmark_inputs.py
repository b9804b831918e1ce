"""The benchmark scripts check their path arguments before any work: a missing MMRec
checkout or data folder is one line on stderr and exit 1, not a traceback minutes later."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "experiments" / "benchmarks"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


def test_user_graph_benchmark_checks_the_mmrec_checkout_first(tmp_path):
    done = _run("user_graph_vs_mmrec.py", "--mmrec", str(tmp_path / "nowhere"))
    _one_line_error(done, "--mmrec", "dualgnn-gen-u-u-matrix.py")
    assert done.stdout == ""  # nothing was exported or timed

    # a checkout without its venv
    (tmp_path / "mmrec" / "preprocessing").mkdir(parents=True)
    (tmp_path / "mmrec" / "preprocessing" / "dualgnn-gen-u-u-matrix.py").touch()
    _one_line_error(_run("user_graph_vs_mmrec.py", "--mmrec", str(tmp_path / "mmrec")), "venv/bin/python")


def test_user_graph_benchmark_checks_its_data(tmp_path):
    mmrec = tmp_path / "mmrec"
    for folder in ("preprocessing", "venv/bin", "src/configs/dataset"):
        (mmrec / folder).mkdir(parents=True)
    (mmrec / "preprocessing" / "dualgnn-gen-u-u-matrix.py").touch()
    (mmrec / "venv" / "bin" / "python").touch(mode=0o755)
    _one_line_error(_run("user_graph_vs_mmrec.py", "--mmrec", str(mmrec), "--data", str(tmp_path / "none")),
                    "--data")
    _one_line_error(_run("user_graph_vs_mmrec.py", "--mmrec", str(mmrec), "--mmrec-folder", str(tmp_path)),
                    "--mmrec-folder", f"{tmp_path.name}.inter")


@pytest.mark.parametrize("command", [
    ["epoch_time.py", "--setting", "lfm2k"],
    ["epoch_time.py", "--setting", "scientific-adam"],
    ["epoch_time.py", "--setting", "baby"],
    ["recommend_speed.py"],
    ["clip_features.py"],
    ["lightgcn_vs_recbole.py"],
])
def test_benchmarks_check_the_data_root_first(tmp_path, command):
    _one_line_error(_run(*command, "--data-root", str(tmp_path)), "--data-root", str(tmp_path))


def test_cuda_check_has_a_usage_and_names_the_python_without_torch(tmp_path):
    script = str(BENCH / "cuda_check.sh")
    shown = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "Usage" in shown.stdout and "PYTHON" in shown.stdout
    assert not shown.stdout.lstrip().startswith(("#", "!"))
    fake = tmp_path / "python"  # an interpreter that cannot import torch
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    done = subprocess.run(["bash", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)})
    _one_line_error(done, str(fake), "cannot import torch", "PYTHON=")


def test_million_items_checks_its_out_file_first(tmp_path):
    _one_line_error(_run("million_items.py", "--out", str(tmp_path)), "--out", "is a folder")


@pytest.mark.parametrize("command", [
    ["knn_vs_faiss.py", "--sizes", "100"],
    ["item_graph_scaling.py", "--items", "100"],
    ["cooccur_scaling.py", "--sizes", "1000"],
    ["lightgcn_vs_recbole.py", "--quick"],
    ["million_items.py", "--items", "100"],
])
def test_benchmarks_check_their_out_file_before_any_work(tmp_path, command):
    """An --out that cannot be written was a FileNotFoundError traceback after all the
    measurements (million_items: minutes); now one line before the first."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out, words in (("/proc/x.md", ["--out", "/proc/x.md"]), (str(blocker / "x.md"), ["--out", "is a file"]),
                       (str(tmp_path), ["--out", "is a folder"])):
        done = _run(*command, "--out", out)
        _one_line_error(done, *words)
        assert "generated" not in done.stdout and "graphrec:" not in done.stdout  # nothing was measured


def test_cooccur_scaling_refuses_a_data_root_without_baby(tmp_path):
    """A --data-root named by the user must hold amazon-baby: it was skipped silently (exit 0)."""
    _one_line_error(_run("cooccur_scaling.py", "--data-root", str(tmp_path / "nonexist"), "--sizes", "1000"),
                    "--data-root", "does not exist")
    _one_line_error(_run("cooccur_scaling.py", "--data-root", str(tmp_path), "--sizes", "1000"),
                    "--data-root", "no amazon-baby")


def test_prepare_scaling_checks_its_arguments_first(tmp_path):
    (tmp_path / "file").touch()
    _one_line_error(_run("prepare_scaling.py", "--work", str(tmp_path / "file")), "--work")
    _one_line_error(_run("prepare_scaling.py", "--work", str(tmp_path / "w"), "--compare", str(tmp_path)),
                    "--compare", "graphrec/")
    _one_line_error(_run("prepare_scaling.py", "--work", str(tmp_path / "w"), "--formats", "csv"), "--formats")
    assert not (tmp_path / "w").exists()  # nothing was written


def test_prepare_scaling_runs_small(tmp_path):
    done = _run("prepare_scaling.py", "--rows", "3000", "--work", str(tmp_path), "--compare", str(REPO))
    assert done.returncode == 0, done.stderr
    for fmt in ("recbole", "mmrec", "movielens"):
        assert re.search(rf"{fmt} +compare / this: .*fingerprints equal", done.stdout), done.stdout
    assert (tmp_path / "mmrec-r3000-u150-i300-s0" / "mmrec-r3000-u150-i300-s0.inter").is_file()
