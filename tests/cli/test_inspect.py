"""`graphrec inspect` on graphs of cold-start splits, and its refusals (paths that hold
no graph, existing report files)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.testing import one_error_line
from graphrec.data import Dataset, cold_start

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


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


def test_inspect_reports_the_cold_items_and_a_cold_item_without_neighbours(cold_saved, cold_saved_graphs):
    """A cold item of a co-interaction graph was shown as "neighbours of 3:" and nothing
    under it; the statistics did not say that the graph was built under a cold-start
    split, and the co-consumption rate of a kNN graph mixed in the edges touching a cold
    item (never co-consumed: a cold item has no training user)."""
    from graphrec.graphs.stats import coconsumption_rate
    from graphrec.graphs.store import load_graph

    ds = Dataset.load(cold_saved)
    n_cold = len(ds.cold_items)
    cold_id, warm_id = ds.item_ids[ds.cold_items[0]], ds.item_ids[np.setdiff1d(np.arange(ds.n_items), ds.cold_items)[0]]
    res = run("inspect", cold_saved_graphs / "cooccur", "--item", cold_id, "--sample", "20")
    assert res.exit_code == 0, res.output
    assert (f"neighbours of {cold_id}: none: {cold_id} is a cold item of the graph's cold-start split: it has no "
            "training interaction, hence no co-interaction edge") in res.output, res.output
    assert (f"cold items {n_cold} (cold-start split: fraction 0.2, seed 0, hidden protocol; no training interaction): "
            "all isolated, as in any co-interaction graph of the split") in res.output, res.output
    assert "edges whose two items share a training user: 1.0000\n" in res.output  # no edge touches a cold item
    # a kNN graph links cold items by content: the rate of the warm-warm edges is given beside
    g, _ = load_graph(cold_saved_graphs / "knn")
    is_cold = np.zeros(ds.n_items, bool)
    is_cold[ds.cold_items] = True
    r, c = g.nonzero()
    warm = ~(is_cold[r] | is_cold[c]) & (r != c)
    warm_rate = coconsumption_rate(sp_select(g, warm), ds.train)
    res = run("inspect", cold_saved_graphs / "knn", "--item", cold_id, "--sample", "20")
    assert res.exit_code == 0, res.output
    assert (f"of all edges; {warm_rate:.4f} of the {int(warm.sum())} warm-warm edges ({int((~warm).sum())} edges "
            "touch a cold item, which has no training user)") in res.output, res.output
    assert f"neighbours of {cold_id} [a cold item of the graph's cold-start split]:" in res.output
    # a warm item's neighbours are listed as before, cold ones marked
    res = run("inspect", cold_saved_graphs / "knn", "--item", warm_id, "--sample", "20")
    assert res.exit_code == 0 and f"neighbours of {warm_id}:" in res.output, res.output


def sp_select(g, keep):
    """The entries of sparse ``g`` (in ``g.nonzero()`` order) where ``keep`` holds."""
    import scipy.sparse as sp

    r, c = g.nonzero()
    return sp.csr_matrix((np.asarray(g[r[keep], c[keep]]).ravel(), (r[keep], c[keep])), shape=g.shape)


def test_a_run_folder_or_a_dataset_folder_is_refused_with_the_command_that_makes_a_graph(data_dir, tmp_path):
    """inspect RUN_DIR suggested `build-graph ... --out RUN_DIR` (writing graphs into the
    run), inspect DATA_DIR writing them into the dataset folder; the fix is export-graph
    for a run, build-graph into another folder for a dataset. --compare likewise."""
    run_dir = tmp_path / "run"
    res = run("train", "mf", "--data", data_dir, "--epochs", "1", "--dim", "4", "--device", "cpu", "--out", run_dir,
              "--quiet")
    assert res.exit_code == 0, res.output
    line = one_error_line(run("inspect", run_dir))
    assert line == (f"error: {run_dir} is a training run folder, not a graph: export the graph its model propagates "
                    f"over with `graphrec export-graph {run_dir} --out DIR` (a model with an item or user graph), "
                    "then use DIR"), line
    assert "build-graph" not in line
    # with --data too (the dataset as the graph saw it is read after the folder is checked)
    assert one_error_line(run("inspect", run_dir, "--data", data_dir)) == line
    line = one_error_line(run("inspect", data_dir))
    assert line == (f"error: {data_dir} is a dataset folder, not a graph: build its graphs outside it with "
                    f"`graphrec build-graph --data {data_dir} --out graphs/synthetic`, then use graphs/synthetic/knn "
                    "or graphs/synthetic/cooccur"), line
    assert one_error_line(run("inspect", data_dir, "--data", data_dir)) == line
    # Python: graph_dataset and read_record say the same
    from graphrec.errors import DataError
    from graphrec.graphs.store import graph_dataset

    with pytest.raises(DataError, match="is a training run folder, not a graph: export the graph"):
        graph_dataset(run_dir)
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "cooccur", "--out", out, "--quiet").exit_code == 0
    line = one_error_line(run("inspect", out / "cooccur", "--compare", run_dir))
    assert line.startswith(f"error: --compare {run_dir} is a training run folder, not a graph: "), line
    line = one_error_line(run("inspect", out / "cooccur", "--compare", data_dir))
    assert line.startswith(f"error: --compare {data_dir} is a dataset folder, not a graph: "), line


def test_existing_report_files_are_refused_before_any_work_unless_overwrite(data_dir, tmp_path):
    """inspect --plot/--graphml replaced an existing file silently, while every other
    command refuses an existing output: refused up front (before the graph is read),
    replaced with --overwrite."""
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "cooccur", "--out", out, "--quiet").exit_code == 0
    plot, graphml = tmp_path / "deg.png", tmp_path / "g.graphml"
    plot.write_text("keep")
    graphml.write_text("keep")
    for option, path in (("--plot", plot), ("--graphml", graphml)):
        # checked first: the missing graph is not what the error is about
        line = one_error_line(run("inspect", tmp_path / "missing", option, path))
        assert line == f"error: {path} already exists: choose another {option} or pass --overwrite", line
        assert path.read_text() == "keep"
    res = run("inspect", out / "cooccur", "--plot", plot, "--graphml", graphml, "--overwrite", "--sample", "10")
    assert res.exit_code == 0, res.output
    assert plot.read_bytes().startswith(b"\x89PNG") and graphml.read_text().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deg.png", "g", "g.graphml"]  # no temporary left
    line = one_error_line(run("inspect", out / "cooccur", "--plot", tmp_path / "x.png", "--graphml", tmp_path / "x.png"))
    assert "--plot and --graphml both name" in line and not (tmp_path / "x.png").exists()
    # the graph's own file was overwritten with GraphML (exit 0), the graph unreadable after it
    stored = (out / "cooccur" / "graph.npz").read_bytes()
    for option, path in (("--graphml", out / "cooccur" / "graph.npz"), ("--plot", out / "cooccur" / "deg.png")):
        line = one_error_line(run("inspect", out / "cooccur", option, path, "--overwrite"))
        assert line == (f"error: {option} {path} lies inside GRAPH {out / 'cooccur'}, which is an input (graphrec keeps "
                        "those folders as it wrote them): write it outside that folder"), line
    assert (out / "cooccur" / "graph.npz").read_bytes() == stored and not (out / "cooccur" / "deg.png").exists()


def test_a_warm_item_without_neighbours_says_so(data_dir, tmp_path):
    # no pair of items is co-consumed 1000 times: every item is isolated, none cold
    out = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "cooccur", "--cooccur-min-count", "1000", "--out", out,
              "--quiet")
    assert res.exit_code == 0, res.output
    item = Dataset.load(data_dir).item_ids[3]
    res = run("inspect", out / "cooccur", "--item", item, "--sample", "10")
    assert res.exit_code == 0, res.output
    assert f"neighbours of {item}: none: {item} has no edge to another item in this graph" in res.output, res.output
    assert "cold" not in res.output


def test_the_summary_counts_undirected_edges_self_loops_and_names_the_hubs(data_dir, tmp_path):
    """A researcher opening the GraphML saw half the edges inspect printed (a symmetric graph
    stores each twice), never saw the self loops a model propagates over (--item left the
    item's own out), nor which items the kNN graph piles onto, nor how many no row lists."""
    import scipy.sparse as sp

    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--k", "4", "--include-self", "--symmetric",
              "--out", tmp_path / "g", "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    g = sp.load_npz(tmp_path / "g" / "knn" / "graph.npz").tocsr()
    loops = int((g.diagonal() != 0).sum())
    assert loops == 70
    in_deg = np.bincount(g.indices, minlength=70) - (g.diagonal() != 0)
    hub = int(np.argsort(-in_deg, kind="stable")[0])
    ds = Dataset.load(data_dir)
    res = run("inspect", tmp_path / "g" / "knn", "--item", ds.item_ids[5], "--top", "2", "--sample", "20")
    assert res.exit_code == 0, res.output
    assert f"edges {g.nnz} ({(g.nnz + loops) // 2} undirected), symmetric True, self loops {loops}" in res.output
    assert (f"in-degree median/max {np.median(in_deg):.0f}/{in_deg.max()}; never another's neighbour "
            f"{int((in_deg == 0).sum())}; hubs {ds.item_ids[hub]} ({in_deg[hub]})") in res.output, res.output
    assert f"  {g[5, 5]:.4f}  {ds.item_ids[5]}  (its own self loop)" in res.output
