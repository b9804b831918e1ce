"""`graphrec build-graph`: recipes, options, provenance, refusals, real data."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import Dataset, cold_start
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.graphs.store import load_graph

runner = CliRunner()
REPO_GRAPHS = __import__("pathlib").Path(__file__).resolve().parents[2] / "graphs"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data_dir(saved_catalogue):
    return saved_catalogue("bg", "syn", n_users=120, n_items=70, n_clusters=4, seed=0)


def test_both_graphs_with_provenance(data_dir, tmp_path):
    out = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "both", "--k", "5", "--out", out, "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "knn: 70 nodes, 350 edges" in res.output
    assert "kNN edges that are co-interaction edges" in res.output
    ds = Dataset.load(data_dir)
    knn, rec = load_graph(out / "knn", dataset=ds, expect={"k": 5})
    assert rec.kind == "knn" and sorted(rec.modalities) == ["image", "text"]
    assert np.all(np.diff(knn.indptr) == 5) and knn.diagonal().sum() == 0
    co, rec = load_graph(out / "cooccur", dataset=ds)
    # the co-interaction graph is R^T R of the TRAINING split over its max, no diagonal
    c = (ds.train.T @ ds.train).toarray()
    np.fill_diagonal(c, 0)
    assert np.allclose(co.toarray(), c / c.max(), atol=1e-6)


def test_a_knn_graph_without_edges_says_so_instead_of_nan(data_dir, tmp_path):
    # all-zero features (every item without content, e.g. every image unreadable): no kNN edge
    ds = Dataset.load(data_dir)
    empty = tmp_path / "empty"
    ds.replace(item_features={"image": np.zeros((ds.n_items, 8), dtype=np.float32)}).save(empty)
    res = run("build-graph", "--data", empty, "--kind", "both", "--k", "5", "--out", tmp_path / "g", "--quiet",
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "knn: 70 nodes, 0 edges" in res.output
    assert "nan" not in res.output
    assert "kNN edges that are co-interaction edges: none (the kNN graph has no edges" in res.output


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_are_set_and_recorded(data_dir, tmp_path, torch_threads):
    # the kNN float sums depend on torch's thread count: build-graph takes train's --threads
    import torch

    torch.set_num_threads(2)
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--threads", 1, "--out", tmp_path / "g", "--quiet",
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 1
    assert load_graph(tmp_path / "g" / "knn")[1].options["threads"] == 1
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--threads", 0, "--out", tmp_path / "h", "--quiet")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--threads must be at least 1, got 0" in res.output and not (tmp_path / "h").exists()


def test_existing_output_is_refused_before_any_work(data_dir, tmp_path):
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--out", out, "--quiet").exit_code == 0
    res = run("build-graph", "--data", data_dir, "--kind", "knn", "--out", out, "--quiet")
    assert res.exit_code == 1 and "already exists" in res.output
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--out", out, "--quiet", "--overwrite", "--k", "3").exit_code == 0
    g, _ = load_graph(out / "knn", expect={"k": 3})
    assert g.nnz == 70 * 3


@pytest.mark.parametrize(
    "args, error",
    [
        (["--k", "0"], "error: --k must be an integer >= 1, got 0"),
        (["--weighting", "x"], "error: --weighting 'x' is not one of cosine, binary"),
        (["--kind", "cooccur", "--cooccur-min-count", "0"], "error: --cooccur-min-count must be an integer >= 1, got 0"),
        (["--kind", "cooccur", "--cooccur-top-k", "0"],
         "error: --cooccur-top-k must be an integer >= 1 (leave it out to keep all), got 0"),
        (["--backend", "annoy"], "error: --backend 'annoy' is not a kNN search backend: use one of auto, torch, faiss, faiss-hnsw"),
        (["--cold-start", "2"], "error: --cold-start must be in [0, 1), got 2.0"),
    ],
)
def test_bad_option_values_are_refused_before_the_data_is_read(data_dir, tmp_path, args, error):
    """--k 0 printed the dataset-loaded line before its error: the option values are
    checked before any data is read, one line and nothing else."""
    res = run("build-graph", "--data", data_dir, *args, "--out", tmp_path / "g", "--quiet", "--device", "cpu")
    assert res.exit_code == 1 and res.output.strip() == error, res.output
    assert not (tmp_path / "g").exists()


def test_bad_values_are_named_where_they_were_set(data_dir, tmp_path):
    """A bad value is named by its option when typed and by the recipe's key when only the
    recipe set it (the GraphSpec field's name is neither)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {data_dir}\nkind: cooccur\ncooccur_top_k: 0\n", encoding="utf-8")
    res = run("build-graph", "--recipe", recipe, "--out", tmp_path / "g", "--quiet")
    assert res.exit_code == 1
    assert res.output.strip() == f"error: recipe {recipe}: cooccur_top_k must be an integer >= 1 (null: keep all), got 0"
    res = run("build-graph", "--recipe", recipe, "--cooccur-top-k", "-2", "--out", tmp_path / "g", "--quiet")
    assert res.exit_code == 1 and res.output.strip().startswith("error: --cooccur-top-k must be an integer >= 1"), res.output
    assert not (tmp_path / "g").exists()


def test_cold_start_graph_hides_cold_items_from_cooccurrence(data_dir, tmp_path):
    out = tmp_path / "g"
    res = run("build-graph", "--data", data_dir, "--kind", "cooccur", "--cold-start", "0.2", "--seed", "3", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    cold = cold_start(Dataset.load(data_dir), 0.2, 3)
    g, rec = load_graph(out / "cooccur", dataset=cold)
    assert rec.n_cold_items == len(cold.cold_items)
    assert g[cold.cold_items].nnz == 0 and g[:, cold.cold_items].nnz == 0
    # the warm dataset is a different one: refused
    with pytest.raises(Exception, match="cold"):
        load_graph(out / "cooccur", dataset=Dataset.load(data_dir))


def test_device_and_threads_are_noted_for_co_interaction_graphs_only(data_dir, tmp_path):
    """The co-interaction build is scipy on the CPU: --device/--threads act on kNN only."""
    res = run("build-graph", "--data", data_dir, "--kind", "cooccur", "--device", "cpu", "--threads", "1",
              "--out", tmp_path / "c", "--quiet")
    assert res.exit_code == 0, res.output
    assert ("note: --device cpu and --threads 1 have no effect on co-interaction graphs (scipy on the CPU, one "
            "thread): they act on the kNN search only") in res.output
    for kind in ("cooccur", "both"):  # the defaults, or a kNN graph built too: no note
        args = () if kind == "cooccur" else ("--device", "cpu", "--threads", "1")
        res = run("build-graph", "--data", data_dir, "--kind", kind, *args, "--out", tmp_path / kind, "--quiet")
        assert res.exit_code == 0 and "no effect" not in res.output, res.output


def test_recipe_with_overrides(tmp_path, data_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {data_dir}\nkind: knn\nk: 4\nout: built\n")
    res = run("build-graph", "--recipe", recipe, "--k", "2", "--quiet")
    assert res.exit_code == 0, res.output
    g, rec = load_graph(tmp_path / "built" / "knn")
    assert rec.k == 2 and g.nnz == 140
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: knn\nneighbours: 3\n")
    res = run("build-graph", "--recipe", bad)
    assert res.exit_code == 1 and "unknown key(s) neighbours" in res.output


def test_modalities_of_different_dimension_are_a_clear_error(tmp_path):
    ds = synthetic_catalogue(n_users=50, n_items=30, n_clusters=3, seed=0)
    feats = dict(ds.item_features, audio=np.ones((30, 7), np.float32))
    path = ds.replace(item_features=feats).save(tmp_path / "d")
    res = run("build-graph", "--data", path, "--kind", "knn", "--out", tmp_path / "g", "--quiet")
    assert res.exit_code == 1 and "different dimensions" in res.output
    assert not (tmp_path / "g").exists()
    res = run("build-graph", "--data", path, "--kind", "knn", "--modalities", "audio", "--out", tmp_path / "g", "--quiet")
    assert res.exit_code == 0, res.output


def test_scientific_recipe_carries_real_signal(shared_data, tmp_path):
    recipe = REPO_GRAPHS / "scientific.yaml"
    res = run("build-graph", "--recipe", recipe, "--out", tmp_path / "sci", "--quiet")
    assert res.exit_code == 0, res.output
    from graphrec.graphs.stats import overlap, random_pair_overlap

    knn, _ = load_graph(tmp_path / "sci" / "knn")
    co, _ = load_graph(tmp_path / "sci" / "cooccur")
    # CLIP neighbours are co-purchased far more often than random pairs
    assert overlap(knn, co) > 4 * random_pair_overlap(co, 100_000, seed=0)


def test_inspect_prints_statistics_neighbours_and_writes_plot_and_graphml(data_dir, tmp_path):
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "both", "--k", "5", "--out", out, "--quiet").exit_code == 0
    ds = Dataset.load(data_dir)
    item = ds.item_ids[3]
    res = run("inspect", out / "knn", "--item", item, "--top", "3", "--plot", tmp_path / "deg.png",
              "--graphml", tmp_path / "g.graphml")
    assert res.exit_code == 0, res.output
    assert "nodes 70, edges 350" in res.output
    assert f"edges also in {out / 'cooccur'}" in res.output
    assert "share a training user" in res.output
    lines = res.output.split(f"neighbours of {item}:")[1].strip().splitlines()[:3]
    # the three strongest kNN neighbours of item 3, in order
    from graphrec.graphs.store import load_graph as lg

    g, _ = lg(out / "knn")
    row = g[3].toarray().ravel()
    expected = [ds.item_ids[j] for j in np.argsort(-row, kind="stable")[:3]]
    assert [l.split()[1] for l in lines] == expected
    assert (tmp_path / "deg.png").stat().st_size > 1000
    import networkx as nx

    assert nx.read_graphml(tmp_path / "g.graphml").number_of_edges() == 350
    res = run("inspect", out / "knn", "--item", "no-such-item")
    assert res.exit_code == 1 and "no-such-item" in res.output
    assert "nodes 70" not in res.output  # refused before the statistics are computed
    for args, message in ((["--item", item, "--top", "0"], "--top 0: show at least one neighbour"),
                          (["--item", item, "--top", "-1"], "--top -1: show at least one neighbour"),
                          (["--plot", tmp_path / "deg.txt"], "matplotlib cannot write .txt images")):
        res = run("inspect", out / "knn", *args)
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "deg.txt").exists()


def test_inspect_skips_a_sibling_graph_of_another_split_with_a_note(data_dir, tmp_path):
    """A graph's sibling (graphs/NAME/knn beside graphs/NAME/cooccur) is compared when it
    fits the graph's data; one built under another cold-start split is skipped with a
    note (it used to fail the command, suggesting to overwrite the sibling); named with
    --compare, it is an error that names --compare. A kNN graph reads item content only:
    it fits every split of it, so a warm kNN sibling is compared with a cold-start graph."""
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--k", "5", "--out", out, "--quiet").exit_code == 0
    res = run("build-graph", "--data", data_dir, "--kind", "cooccur", "--cold-start", "0.2", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    res = run("inspect", out / "cooccur")
    assert res.exit_code == 0, res.output
    assert "note: not compared" not in res.output and f"edges also in {out / 'knn'}" in res.output
    # the warm kNN graph's data (no cold split) do not fit the cold co-interaction graph
    res = run("inspect", out / "knn")
    assert res.exit_code == 0, res.output
    assert "note: not compared with the sibling graph" in res.output and "cold_start differs" in res.output
    assert "rebuild it" not in res.output and "edges also in" not in res.output
    res = run("inspect", out / "knn", "--compare", out / "cooccur")
    assert res.exit_code == 1 and f"--compare {out / 'cooccur'}" in res.output and "same data and split" in res.output


def test_inspect_and_recipe_messages_name_the_fix(data_dir, tmp_path):
    import shutil

    out = tmp_path / "g"
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    assert run("build-graph", "--data", moved, "--kind", "cooccur", "--out", out, "--quiet").exit_code == 0
    res = run("inspect", out / "cooccur", "--sample", "0")
    assert res.exit_code == 1 and "--sample 0: sample at least one node" in res.output, res.output
    # the folder build-graph wrote KIND/ into, and a path holding no graph
    res = run("inspect", out)
    assert res.exit_code == 1 and f"but it holds the graph(s) cooccur: pass one of them, e.g. {out / 'cooccur'}" in res.output
    res = run("inspect", tmp_path / "none" / "knn")
    assert res.exit_code == 1, res.output
    assert f"build it with `graphrec build-graph --data DATASET_DIR --kind knn --out {tmp_path / 'none'}`" in res.output
    # the graph's recorded dataset was moved away: --data is the fix
    shutil.rmtree(moved)
    res = run("inspect", out / "cooccur")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"the graph's recorded dataset {moved.resolve()} is not a graphrec dataset directory any more" in res.output
    assert "pass --data DIR" in res.output
    res = run("inspect", out / "cooccur", "--data", data_dir)
    assert res.exit_code == 0, res.output
    # a recipe naming two inputs
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {data_dir}\nsource:\n  format: mmrec\n  path: {data_dir}\nkind: cooccur\nout: {tmp_path / 'r'}\n")
    res = run("build-graph", "--recipe", recipe, "--quiet")
    assert res.exit_code == 1 and "names both data: and source:" in res.output, res.output


@pytest.mark.parametrize(
    "args, error",
    [
        (["--kind", "cooccur", "--k", "5", "--weighting", "binary"],
         "error: --k, --weighting act on kNN graphs only, and --kind cooccur builds none: drop them, "
         "or build --kind knn or --kind both"),
        (["--kind", "user-cooccur", "--modalities", "text"], "error: --modalities acts on kNN graphs only"),
        (["--kind", "cooccur", "--no-include-self"], "error: --no-include-self acts on kNN graphs only"),
        (["--kind", "cooccur", "--backend", "torch"], "error: --backend acts on kNN graphs only"),
        (["--kind", "knn", "--cooccur-top-k", "5", "--cooccur-min-count", "2"],
         "error: --cooccur-top-k, --cooccur-min-count act on co-interaction graphs (cooccur, user-cooccur) only, "
         "and --kind knn builds none: drop them, or build --kind cooccur, user-cooccur or both"),
        (["--kind", "knn", "--seed", "3"],
         "error: --seed acts on a cold-start split only, and no cold start is asked for: drop it, "
         "or pass --cold-start FRACTION (e.g. 0.2)"),
        (["--cold-start", "0", "--cold-protocol", "hidden"], "error: --cold-protocol acts on a cold-start split only"),
    ],
)
def test_options_for_a_graph_not_built_are_refused_before_any_work(data_dir, tmp_path, args, error):
    # they were silently ignored: the graph was built as if they had not been given
    res = run("build-graph", "--data", data_dir, *args, "--out", tmp_path / "g", "--quiet", "--device", "cpu")
    assert res.exit_code == 1 and res.output.strip().startswith(error), res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "g").exists()


def test_recipe_options_for_a_graph_not_built_are_noted(data_dir, tmp_path):
    # a recipe serves several kinds (--recipe R --kind cooccur is how stale graphs are
    # rebuilt): its options for the other kind are noted, not refused; under --kind both
    # each option applies to its kind and nothing is said
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {data_dir}\nkind: both\nk: 4\nmodalities: [text]\ncooccur_top_k: 3\nseed: 2\n")
    res = run("build-graph", "--recipe", recipe, "--kind", "cooccur", "--out", tmp_path / "g", "--quiet")
    assert res.exit_code == 0, res.output
    assert (f"note: recipe {recipe}: modalities, k act on kNN graphs only, and --kind cooccur builds none: "
            "not used") in res.output
    assert f"note: recipe {recipe}: seed acts on a cold-start split only, and no cold start is asked for: not used" in res.output
    _, rec = load_graph(tmp_path / "g" / "cooccur")
    assert rec.k == 3
    res = run("build-graph", "--recipe", recipe, "--cold-start", "0.2", "--out", tmp_path / "h", "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "note:" not in res.output
    assert load_graph(tmp_path / "h" / "knn")[1].k == 4 and load_graph(tmp_path / "h" / "cooccur")[1].k == 3


def test_inspect_top_without_a_node_is_refused(data_dir, tmp_path):
    # --top without --item/--user was ignored
    out = tmp_path / "g"
    assert run("build-graph", "--data", data_dir, "--kind", "knn", "--k", "3", "--out", out, "--quiet",
               "--device", "cpu").exit_code == 0
    res = run("inspect", out / "knn", "--top", "5")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert ("error: --top 5 sets how many neighbours --item or --user shows, and neither is given: pass --item ITEM_ID "
            "(--user USER_ID for a user graph), or drop --top") in res.output


def test_an_interrupt_while_the_second_kind_builds_stores_neither(data_dir, tmp_path, monkeypatch):
    """`--kind both` stored the kNN graph, then was interrupted building the co-interaction
    graph: the folder held knn alone, and the same command refused to run again (`knn
    already exists`)."""
    import graphrec.graphs.build as build

    real = build.build_item_graph

    def stop_at_cooccur(ds, spec, **kwargs):
        if spec.kind == "cooccur":
            raise KeyboardInterrupt
        return real(ds, spec, **kwargs)

    monkeypatch.setattr(build, "build_item_graph", stop_at_cooccur)
    out = tmp_path / "g"
    args = ("build-graph", "--data", data_dir, "--kind", "both", "--k", "5", "--out", out, "--quiet", "--device", "cpu")
    assert run(*args).exit_code != 0
    assert not (out / "knn").exists() and not (out / "cooccur").exists()
    monkeypatch.undo()
    res = run(*args)  # the same command, without --overwrite
    assert res.exit_code == 0, res.output
    assert (out / "knn" / "graph.npz").is_file() and (out / "cooccur" / "graph.npz").is_file()


def test_out_that_is_a_stored_graph_is_refused(tmp_path):
    """build-graph writes OUT/KIND: --out naming a graph folder nested a second graph inside
    it (the rebuild command printed for a graph folder named otherwise led there)."""
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.data.synthetic import synthetic_catalogue

    data = synthetic_catalogue(n_users=30, n_items=20, n_clusters=2, seed=0).save(tmp_path / "d")
    runner = CliRunner()
    res = runner.invoke(app, ["build-graph", "--data", str(data), "--kind", "cooccur", "--quiet", "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["build-graph", "--data", str(data), "--kind", "cooccur", "--quiet", "--out",
                              str(tmp_path / "g" / "cooccur"), "--overwrite"])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "is a stored graph (it holds graph.json): build-graph writes OUT/KIND" in res.output
    assert not (tmp_path / "g" / "cooccur" / "cooccur").exists()
