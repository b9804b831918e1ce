"""`graphrec inspect` on graphs of cold-start splits, and its refusals (paths that hold
no graph, existing report files)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset, cold_start

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(res) -> str:
    """The single ``error:`` line of a refused command (exit status 1, no traceback)."""
    assert res.exit_code == 1, (res.exit_code, res.output, res.exception)
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("inspect", "syn", n_users=120, n_items=70, n_clusters=4, seed=0)


@pytest.fixture(scope="module")
def cold_saved(data_dir, tmp_path_factory):
    """The dataset saved with a 20% cold-start split (a folder holding cold_items.npy)."""
    out = tmp_path_factory.mktemp("inspect-cold") / "coldsaved"
    cold_start(Dataset.load(data_dir), 0.2, 0, "hidden").save(out)
    return out


@pytest.fixture(scope="module")
def cold_saved_graphs(cold_saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect-cold-graphs") / "g"
    res = run("build-graph", "--data", cold_saved, "--kind", "both", "--k", "5", "--out", out, "--quiet",
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    return out


def test_inspect_a_graph_of_a_dataset_saved_with_its_cold_split(cold_saved, cold_saved_graphs):
    """inspect drew the cold-start split again on the graph's dataset, which already held
    it: 'dataset ... already has a cold-start split'. The saved split is used as it is."""
    for kind in ("cooccur", "knn"):
        res = run("inspect", cold_saved_graphs / kind, "--sample", "20")
        assert res.exit_code == 0, res.output
        assert "nodes 70" in res.output
        res = run("inspect", cold_saved_graphs / kind, "--data", cold_saved, "--sample", "20")
        assert res.exit_code == 0, res.output


def test_a_second_cold_start_split_names_the_fix(cold_saved, tmp_path):
    line = one_error_line(run("build-graph", "--data", cold_saved, "--kind", "cooccur", "--cold-start", "0.2",
                              "--out", tmp_path / "g", "--quiet"))
    assert "already has a cold-start split (14 cold items, fraction 0.2 seed 0 protocol hidden" in line, line
    assert "drop --cold-start" in line, line
