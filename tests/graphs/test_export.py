"""networkx / GraphML export with item attributes."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data import build_dataset, cold_start
from graphrec.errors import ConfigError
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


def test_a_repeated_entry_is_one_edge_of_their_summed_weight(tmp_path):
    """A non-canonical CSR (an entry stored twice) is the matrix scipy reads, the entries
    summed: to_networkx, directed or not, and write_graphml give one edge of the sum."""
    dup = sp.csr_matrix((np.float32([0.3, 0.1, 0.6, 0.2]), np.array([2, 1, 2, 0]), np.array([0, 3, 3, 4])),
                        shape=(3, 3))
    want = {(0, 1): 0.1, (0, 2): 0.9, (2, 0): 0.2}
    for directed in (None, True):
        g = to_networkx(dup, directed=directed)
        assert g.is_directed() and {e: pytest.approx(w) for e, w in want.items()} == {
            (u, v): w for u, v, w in g.edges(data="weight")}
    undirected = to_networkx(dup, directed=False)  # the union of the directions, the larger weight
    assert {frozenset((u, v)): w for u, v, w in undirected.edges(data="weight")} == {
        frozenset((0, 1)): pytest.approx(0.1), frozenset((0, 2)): pytest.approx(0.9)}
    write_graphml(dup, tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert {(int(u), int(v)): w for u, v, w in back.edges(data="weight")} == {
        e: pytest.approx(w) for e, w in want.items()}
    assert dup.nnz == 4 and not dup.has_canonical_format  # the caller's matrix is left alone


def test_the_degree_plot_counts_the_graphs_nodes(tmp_path):
    # a user graph's plot said "items" on its y-axis
    import pytest

    pytest.importorskip("matplotlib")
    from graphrec.graphs.export import plot_degree_distribution

    g = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))
    users = plot_degree_distribution(g, tmp_path / "u.svg", nodes="users").read_text()
    items = plot_degree_distribution(g, tmp_path / "i.svg").read_text()
    # an existing file is kept unless overwrite (it was replaced without a word)
    with pytest.raises(ConfigError, match=r"u.svg already exists: pass overwrite=True \(CLI: --overwrite\)"):
        plot_degree_distribution(g, tmp_path / "u.svg")
    assert (tmp_path / "u.svg").read_text() == users
    plot_degree_distribution(g, tmp_path / "u.svg", nodes="users", overwrite=True)
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


# ---------------------------------------------------------------- GraphML written from the matrix
# write_graphml built a networkx graph and let networkx write it: about 2 KB per edge and
# no progress (a 5M-edge kNN graph took 167 s and 9.9 GB). It now writes the GraphML
# straight from the sparse matrix, in chunks of rows; these tests hold it to the file
# networkx writes for to_networkx's graph, read back with nx.read_graphml.

TITLES = ["Apple & <pie>", "", "  spaced\tand\nnewline  ", "quote \" ' ]]> é 😀 中文", "Cherry"]
ITEM_IDS = ["a&b", "<i>", "q\"'", "é😀", "id 5"]


def escaping_dataset():
    """Five items whose ids and titles need escaping (non-ASCII, an empty title), two
    users whose ids do; item 4 has no image."""
    feats = {"image": np.array([[1, 0], [0, 1], [1, 1], [2, 0], [0, 0]], np.float32),
             "text": np.ones((5, 2), np.float32)}
    return build_dataset(["u&1", "u&1", "ü<2", "ü<2", "ü<2"], ITEM_IDS[:4] + ITEM_IDS[:1], ["train"] * 5,
                         item_ids=ITEM_IDS, item_features=feats, item_fields={"title": np.array(TITLES)})


def every_type(attrs):
    """item_attributes plus a column of each type networkx declares, as numpy holds them."""
    n = len(attrs["item_id"])
    out = dict(attrs)
    out["f64"] = np.linspace(-1.5, 2.0, n)
    out["f32"] = (np.arange(n) / 3).astype(np.float32)  # tolist: Python floats of float32 values
    out["i32"] = np.arange(n, dtype=np.int32) - 2
    out["u8"] = np.arange(n, dtype=np.uint8)
    out["flag"] = np.arange(n) % 2 == 0
    mixed = [np.float32(0.1), np.int64(7), "x&y", True, 3, 2.5][:n]
    out["mixed"] = np.array(mixed + ["pad"] * (n - len(mixed)), dtype=object)  # a key per GraphML type
    out["obj_str"] = np.array([f"<{i}>" for i in range(n)], dtype=object)
    return out


def cases():
    """(name, matrix, dataset, keyword arguments) of the graphs compared with networkx's file."""
    ds = escaping_dataset()
    knn = sp.csr_matrix((np.float32([1.0, 0.5, 0.25, 0.2, 0.7, 0.4, 0.9, -0.3, 1e-7]),
                         ([0, 0, 1, 1, 2, 2, 3, 4, 4], [0, 1, 2, 3, 0, 1, 3, 0, 2])), shape=(5, 5))  # self loops
    sym = sp.csr_matrix((np.float32([0.5, 0.5, 1.0, 1.0000001, 0.3, 0.3, 2.0]),
                         ([0, 1, 1, 2, 2, 3, 4], [1, 0, 2, 1, 3, 2, 4])), shape=(5, 5))  # float32-rounded mirror
    # unsorted, (0, 2) stored twice: one edge weighing their sum, 0.9, whatever ``directed``
    # (test_a_repeated_entry_is_one_edge_of_their_summed_weight)
    dup = sp.csr_matrix((np.float32([0.3, 0.1, 0.6, 0.2]), np.array([2, 1, 2, 0]), np.array([0, 3, 3, 4, 4, 4])),
                        shape=(5, 5))
    users = sp.csr_matrix(np.array([[0, 2], [2, 0]], np.float32))
    users_directed = sp.csr_matrix(np.array([[1, 2], [0, 0]], np.float32))
    return [
        ("directed knn, self loops", knn, ds, {}),
        ("directed knn, no dataset", knn, None, {}),
        ("symmetric", sym, ds, {}),
        ("symmetric, directed=True", sym, ds, {"directed": True}),
        ("directed knn, directed=False", knn, ds, {"directed": False}),
        ("duplicate entries", dup, ds, {}),
        ("duplicate entries, directed=True", dup, ds, {"directed": True}),
        ("duplicate entries, directed=False", dup, None, {"directed": False}),
        ("no edges", sp.csr_matrix((5, 5), dtype=np.float32), ds, {}),
        ("user graph", users, ds, {"nodes": "users"}),
        ("directed user graph", users_directed, ds, {"nodes": "users"}),
        ("user graph, no dataset", users, None, {"nodes": "users"}),
    ]


def read_back(path):
    """What nx.read_graphml gives: graph class, nodes in order, attributes with their
    types, edges (a pair's two nodes as a set when undirected) with typed weights."""
    back = nx.read_graphml(path)
    nodes = {u: {k: (type(v), v) for k, v in d.items()} for u, d in back.nodes(data=True)}
    edges = [((u, v) if back.is_directed() else frozenset((u, v)), {k: (type(x), x) for k, x in d.items()})
             for u, v, d in back.edges(data=True)]
    return type(back), list(back.nodes), nodes, sorted(edges, key=repr), back.number_of_edges()


def declared(path):
    """The ``<key>`` declarations (scope, name, GraphML type), as a sorted list."""
    import xml.etree.ElementTree as ET

    ns = "{http://graphml.graphdrawing.org/xmlns}"
    return sorted((k.get("for"), k.get("attr.name"), k.get("attr.type")) for k in ET.parse(path).getroot().iter(f"{ns}key"))


def test_write_graphml_reads_back_as_networkxs_file(tmp_path, monkeypatch):
    import graphrec.graphs.export as export

    monkeypatch.setattr(export, "item_attributes", lambda ds, f=export.item_attributes: every_type(f(ds)))
    for i, (name, g, ds, kw) in enumerate(cases()):
        old = tmp_path / f"{i}-old.graphml"
        nx.write_graphml(to_networkx(g, ds, **kw), old)  # the way write_graphml wrote it
        new = write_graphml(g, tmp_path / f"{i}-new.graphml", ds, **kw)
        assert read_back(new) == read_back(old), name
        assert declared(new) == declared(old), name  # "long", "double", "string", "boolean", numpy's "int"/"float"
    # the cases cover what they claim
    back = nx.read_graphml(tmp_path / "0-new.graphml")
    assert back.is_directed() and back.has_edge("0", "0") and back.nodes["1"]["item_id"] == "<i>"
    assert back.nodes["3"]["title"] == TITLES[3] and back.nodes["2"]["title"] == TITLES[2]
    assert {type(v) for v in back.nodes["0"].values()} == {str, bool, float, int}
    sym = nx.read_graphml(tmp_path / "2-new.graphml")
    assert not sym.is_directed() and sym.number_of_edges() == 4 and sym.edges["1", "2"]["weight"] == float(np.float32(1.0000001))
    union = nx.read_graphml(tmp_path / "4-new.graphml")  # (0, 4) only as 4 -> 0, of weight -0.3: kept
    assert not union.is_directed() and union.edges["0", "4"]["weight"] == float(np.float32(-0.3))
    weights = [nx.read_graphml(tmp_path / f"{i}-new.graphml").edges["0", "2"]["weight"] for i in (5, 6, 7)]
    assert weights == [float(np.float32(0.3) + np.float32(0.6))] * 3  # one edge of the summed weight
    assert nx.read_graphml(tmp_path / "9-new.graphml").nodes["0"] == {"user_id": "u&1", "label": "u&1", "n_train_items": 2}


def test_write_graphml_gives_the_same_file_whatever_the_chunk_size(tmp_path):
    rng = np.random.default_rng(0)
    knn = sp.random(40, 40, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    dense = knn.toarray() + np.eye(40, dtype=np.float32)
    dense[3, :] = 1.0  # a row holding more than a chunk of 7
    big = sp.csr_matrix(dense)
    sym = sp.csr_matrix(knn.maximum(knn.T))
    ds = build_dataset(np.arange(40) % 7, np.arange(40), ["train"] * 40,
                       item_fields={"title": np.array([f"t&{i}<é>" for i in range(40)])})
    for name, g, kw in (("directed", knn, {}), ("a row over the chunk size", big, {}), ("symmetric", sym, {}),
                        ("union", knn, {"directed": False}), ("users", sp.csr_matrix((7, 7)), {"nodes": "users"})):
        files = [write_graphml(g, tmp_path / f"{c}.graphml", ds, chunk_size=c, progress=c == 7,
                               overwrite=True, **kw).read_bytes()  # each case replaces the last one's files
                 for c in (1, 7, 10**6)]
        assert files[0] == files[1] == files[2], name


def test_write_graphml_builds_no_networkx_graph(tmp_path, monkeypatch):
    """The memory of the export was networkx's: no import of it, hence no graph, now."""
    import sys

    g = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0.5, 0, 0]], np.float32))
    monkeypatch.setitem(sys.modules, "networkx", None)  # `import networkx` raises ImportError
    path = write_graphml(g, tmp_path / "g.graphml", tiny())
    monkeypatch.undo()
    back = nx.read_graphml(path)
    assert back.is_directed() and sorted(back.edges()) == [("0", "1"), ("1", "2"), ("2", "0")]
    assert back.nodes["2"] == {"item_id": "c", "title": "Cherry", "label": "Cherry", "has_image": True, "has_text": True,
                               "cold": False}


def test_row_chunks_hold_at_most_the_chunk_size_of_entries():
    from graphrec.graphs.export import _row_chunks

    indptr = np.array([0, 3, 3, 3, 10, 11, 12, 12])  # row 3 holds 7 entries
    for size in (1, 2, 5, 100):
        chunks = list(_row_chunks(indptr, size))
        assert [a for a, _ in chunks] == [0] + [b for _, b in chunks[:-1]] and chunks[-1][1] == 7  # every row once
        assert all(indptr[b] - indptr[a] <= size or b == a + 1 for a, b in chunks)
    assert list(_row_chunks(indptr, 100)) == [(0, 7)]


def test_graphml_text_that_xml_cannot_carry(tmp_path):
    """networkx wrote a control character (a scraped title's \\x0b) as is: a file no XML
    parser reads ('not well-formed (invalid token)'). Such characters are written as
    U+FFFD, with a note; a carriage return, which networkx's file reads as a newline,
    reads back."""
    import pytest

    from graphrec.errors import GraphrecNote

    ds = build_dataset([0, 0, 1], ["a", "b\x1f", "c"], ["train"] * 3,
                       item_fields={"title": np.array(["vertical\x0btab and \x00nul", "ok", "crlf\r\nand cr\r"])})
    g = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float32))
    # the title twice (as the node's label too) and the item id
    with pytest.warns(GraphrecNote, match=r"3 text value\(s\) held characters XML 1.0 cannot carry .* U\+FFFD "
                                          r"\(first: '(title|label)' of node 0\)"):
        path = write_graphml(g, tmp_path / "g.graphml", ds, chunk_size=2)
    back = nx.read_graphml(path)
    assert back.nodes["0"]["title"] == "vertical\ufffdtab and \ufffdnul" and back.nodes["1"]["item_id"] == "b\ufffd"
    assert back.nodes["2"]["title"] == "crlf\r\nand cr\r"


def test_graphml_refuses_a_value_networkx_cannot_write(tmp_path, monkeypatch):
    import pytest

    import graphrec.graphs.export as export
    from graphrec.errors import DataError

    monkeypatch.setattr(export, "item_attributes",
                        lambda ds: {"item_id": ds.item_ids, "score": np.array([1.0, None, 2.0], dtype=object)})
    g = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(DataError, match="node attribute 'score' holds a NoneType value, which GraphML cannot carry"):
        write_graphml(g, tmp_path / "g.graphml", tiny())
    assert not (tmp_path / "g.graphml").exists()


def test_write_graphml_refuses_an_existing_file_unless_overwrite(tmp_path):
    """write_graphml replaced an existing file silently, unlike write_recommendations,
    Dataset.save and save_graph: it is refused before any work without overwrite=True."""
    from graphrec.errors import ConfigError

    g = sp.csr_matrix(np.eye(3, dtype=np.float32))
    path = tmp_path / "g.graphml"
    path.write_text("keep")
    with pytest.raises(ConfigError) as e:
        write_graphml(g, path, tiny())
    assert str(e.value) == (f"{path} already exists: pass overwrite=True (CLI: --overwrite) to replace it, "
                            "or choose another path")
    assert path.read_text() == "keep"
    assert write_graphml(g, path, tiny(), overwrite=True) == path
    assert nx.read_graphml(path).number_of_nodes() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.graphml"]  # no temporary left
    with pytest.raises(ConfigError, match=f"^{tmp_path} is a folder, not a file: write the GraphML to a file path$"):
        write_graphml(g, tmp_path, overwrite=True)


def test_write_graphml_keeps_a_file_created_while_it_wrote(tmp_path, monkeypatch):
    import graphrec.graphs.export as export
    from graphrec.errors import ConfigError

    path = tmp_path / "g.graphml"
    xml_safe = export._xml_safe

    def meanwhile(text, *args):
        if not path.exists():
            path.write_text("someone else's")
        return xml_safe(text, *args)

    monkeypatch.setattr(export, "_xml_safe", meanwhile)
    with pytest.raises(ConfigError, match="already exists: pass overwrite=True"):
        write_graphml(sp.csr_matrix(np.eye(3, dtype=np.float32)), path, tiny())
    assert path.read_text() == "someone else's" and sorted(p.name for p in tmp_path.iterdir()) == ["g.graphml"]
