"""networkx / GraphML export with item attributes."""

from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp

from graphrec.data import build_dataset, cold_start
from graphrec.graphs.export import to_networkx, write_graphml


def tiny():
    feats = {"image": np.array([[1, 0], [0, 0], [1, 1]], np.float32), "text": np.ones((3, 2), np.float32)}
    ds = build_dataset([0, 0, 1, 1], ["a", "b", "b", "c"], ["train"] * 4, item_features=feats,
                       item_fields={"title": np.array(["Apple", "Banana", "Cherry"])})
    return ds


def test_symmetric_graph_becomes_undirected_with_attributes():
    ds = tiny()
    g = sp.csr_matrix(np.array([[0, 0.5, 0], [0.5, 0, 0.2], [0, 0.2, 0]], np.float32))
    nxg = to_networkx(g, ds)
    assert isinstance(nxg, nx.Graph) and not nxg.is_directed()
    assert sorted(nxg.edges(data="weight")) == [(0, 1, 0.5), (1, 2, 0.20000000298023224)]
    assert nxg.nodes[1]["item_id"] == "b" and nxg.nodes[1]["title"] == "Banana"
    assert nxg.nodes[1]["has_image"] is False and nxg.nodes[0]["has_image"] is True
    assert nxg.nodes[2]["cold"] is False


def test_knn_graph_is_directed_and_cold_flags_follow_the_dataset(tmp_path):
    ds = cold_start(tiny(), 0.34, seed=0, protocol="hidden")  # one cold item (too few for "papers")
    g = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32))
    nxg = to_networkx(g, ds)
    assert nxg.is_directed() and set(nxg.edges()) == {(0, 1), (1, 2)}
    assert [nxg.nodes[i]["cold"] for i in range(3)] == [i in set(ds.cold_items.tolist()) for i in range(3)]
    path = write_graphml(g, tmp_path / "g.graphml", ds)
    back = nx.read_graphml(path)
    assert back.number_of_edges() == 2 and back.nodes["0"]["item_id"] == "a"


def test_directedness_does_not_depend_on_the_scale_of_the_weights():
    import scipy.sparse as sp

    from graphrec.graphs.export import to_networkx

    # one edge 1 -> 0 of a tiny weight: directed (its mirror is missing), and kept
    g = to_networkx(sp.csr_matrix(([5e-7], ([1], [0])), shape=(2, 2)))
    assert g.is_directed() and list(g.edges(data="weight")) == [(1, 0, 5e-7)]
    both = to_networkx(sp.csr_matrix(([5e-7, 5e-7], ([1, 0], [0, 1])), shape=(2, 2)))
    assert not both.is_directed() and both.number_of_edges() == 1
    # float32 rounding of a mirrored weight is symmetric; a real difference is not
    assert not to_networkx(sp.csr_matrix(([1.0, 1.0000001], ([1, 0], [0, 1])), shape=(2, 2))).is_directed()
    assert to_networkx(sp.csr_matrix(([1.0, 1.1], ([1, 0], [0, 1])), shape=(2, 2))).is_directed()


def test_a_path_or_load_graphs_pair_is_refused_in_one_line(tmp_path):
    """to_networkx(path) failed in scipy ('no supported conversion for types'): a stored
    graph's folder, or load_graph's (matrix, record) pair, gets a line naming the fix."""
    import pytest

    from graphrec.errors import DataError
    from graphrec.graphs.store import GraphRecord

    for path in (str(tmp_path), tmp_path):
        with pytest.raises(DataError, match=r"not a matrix: load a stored graph first, .*load_graph\(path\)"):
            to_networkx(path, tiny())
        with pytest.raises(DataError, match="not a matrix"):
            write_graphml(path, tmp_path / "g.graphml")
    pair = (sp.csr_matrix((3, 3), dtype=np.float32), GraphRecord.__new__(GraphRecord))
    with pytest.raises(DataError, match=r"load_graph's \(matrix, record\) pair: pass its matrix"):
        to_networkx(pair)


def test_export_keeps_self_loops_leaves_the_matrix_alone_and_unions_directions():
    """Found by a brute-force audit: zeros dropped in the caller's matrix, self loops of an
    include_self graph lost, directed=False on a directed graph kept the upper triangle."""
    rows, cols = [0, 0, 0, 1, 2, 2], [0, 1, 2, 2, 0, 1]  # a self loop; (0, 2) a stored 0 (cosine exactly 0)
    g = sp.csr_matrix((np.float32([1.0, 0.5, 0.0, 0.2, 0.7, 0.4]), (rows, cols)), shape=(3, 3))
    before = (g.indptr.copy(), g.indices.copy(), g.data.copy())

    def edges(nxg, undirected=False):
        return sorted(((min(u, v), max(u, v)) if undirected else (u, v)) + (round(w, 6),)
                      for u, v, w in nxg.edges(data="weight"))

    assert edges(to_networkx(g)) == [(0, 0, 1.0), (0, 1, 0.5), (1, 2, 0.2), (2, 0, 0.7), (2, 1, 0.4)]
    assert all(np.array_equal(a, b) for a, b in zip(before, (g.indptr, g.indices, g.data)))  # unchanged
    # undirected: every pair once, from either direction, weight max over the directions present
    assert edges(to_networkx(g, directed=False), undirected=True) == [(0, 0, 1.0), (0, 1, 0.5), (0, 2, 0.7), (1, 2, 0.4)]


def test_the_degree_plot_counts_the_graphs_nodes(tmp_path):
    # a user graph's plot said "items" on its y-axis
    import pytest

    pytest.importorskip("matplotlib")
    from graphrec.graphs.export import plot_degree_distribution

    g = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))
    users = plot_degree_distribution(g, tmp_path / "u.svg", nodes="users").read_text()
    items = plot_degree_distribution(g, tmp_path / "i.svg").read_text()
    assert "<!-- users -->" in users and "<!-- items -->" not in users  # the SVG names each text it draws
    assert "<!-- items -->" in items and "<!-- users -->" not in items


def test_inspect_labels_user_neighbour_weights_from_the_record(tmp_path):
    # "(weight: shared training items)" was printed over normalised weights too
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.cli.inspect_graph import _weight_label
    from graphrec.data import Dataset
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.graphs.store import GraphRecord

    runner = CliRunner()
    data = tmp_path / "syn"
    synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0).save(data)
    user = str(Dataset.load(data).user_ids[0])
    for norm, label in (("none", "(weight: shared training items):"),
                        ("sym", "(weight: shared training items, sym-normalised):")):
        out = tmp_path / norm
        res = runner.invoke(app, ["build-graph", "--data", str(data), "--kind", "user-cooccur", "--normalization", norm,
                                  "--out", str(out), "--quiet"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["inspect", str(out / "user-cooccur"), "--user", user, "--top", "3"])
        assert res.exit_code == 0, res.output
        assert f"neighbours of user {user} {label}" in res.output, res.output
    # a user graph exported from a trained run holds the model's own weights
    rec = GraphRecord(kind="model", dataset_fingerprint="x", dataset_name="d", n_items=3, weighting="learned",
                      nodes="users", n_users=4, options={"model": "dragon"})
    assert _weight_label(rec) == "dragon's propagation weights, as the model applies them"
