"""Graph store: round trip, atomic writes, and every refusal of a stale or foreign graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import graphrec
from graphrec.data import build_dataset, cold_start
from graphrec.errors import DataError
from graphrec.graphs import store
from graphrec.graphs.cooccur import cooccurrence_graph
from graphrec.graphs.store import GraphRecord, check_record, load_graph, save_graph


def _dataset(seed: int = 0, n_users: int = 30, n_items: int = 12, name: str = "toy"):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, 300)
    i = rng.integers(0, n_items, 300)
    split = rng.choice(["train", "valid", "test"], size=300, p=[0.8, 0.1, 0.1])
    return build_dataset(
        u, i, split, user_ids=np.arange(n_users), item_ids=np.arange(n_items), unseen="keep", name=name
    )


@pytest.fixture()
def ds():
    return _dataset()


def _build(ds, k=3, **extra):
    g = cooccurrence_graph(ds.train, top_k=k)
    rec = GraphRecord.for_dataset(
        ds, kind="cooccur", k=k, weighting="count/max", pruning={"min_count": 1}, build_seconds=0.01, **extra
    )
    return g, rec


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ round trip
def test_round_trip_keeps_matrix_and_every_field(ds, tmp_path):
    g, rec = _build(ds, modalities=["image", "text"], symmetric=False, options={"include_self": False})
    written = save_graph(tmp_path / "g", g, rec)
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["graph.json", "graph.npz"]
    g2, rec2 = load_graph(tmp_path / "g", dataset=ds)
    assert isinstance(g2, sp.csr_matrix) and g2.dtype == np.float32 and g2.shape == g.shape
    assert (g2 != g).nnz == 0 and g2.has_sorted_indices
    assert rec2 == written
    assert rec2.nnz == g.nnz and rec2.n_items == ds.n_items and rec2.checksum == store.graph_checksum(g2)
    assert rec2.dataset_fingerprint == ds.fingerprint() and rec2.dataset_name == "toy"
    assert rec2.split == "train" and rec2.builder == f"graphrec {graphrec.__version__}"
    assert rec2.cold_start_fraction is None and rec2.n_cold_items == 0
    assert rec2.options == {"include_self": False} and rec2.pruning == {"min_count": 1}
    # the file is plain JSON with a format header, and scipy can read the matrix itself
    header = json.loads((tmp_path / "g" / "graph.json").read_text())
    assert header["format"] == "graphrec-graph" and header["version"] == 1
    assert set(header) - {"format", "version"} == set(rec.to_dict())
    assert (sp.load_npz(tmp_path / "g" / "graph.npz") != g).nnz == 0
    assert GraphRecord.from_dict(rec2.to_dict()) == rec2


def test_matching_expectations_load(ds, tmp_path):
    g, rec = _build(ds, modalities=["image", "text"])
    save_graph(tmp_path / "g", g, rec)
    expect = {"kind": "cooccur", "k": 3, "min_count": 1, "modalities": ("text", "image"),
              "symmetric": False, "normalization": "none", "split": "train"}  # fmt: skip
    g2, _ = load_graph(tmp_path / "g", expect=expect, dataset=ds)
    assert g2.nnz == g.nnz
    load_graph(tmp_path / "g", expect={"k": 3.0})  # numbers compare by value


def test_canonicalises_on_save(ds, tmp_path):
    n = ds.n_items
    coo = sp.coo_matrix((np.array([1.0, 2.0, 0.0], np.float64), ([0, 0, 1], [1, 1, 2])), shape=(n, n))
    rec = GraphRecord.for_dataset(ds, kind="knn", k=1)
    out = save_graph(tmp_path / "g", coo, rec)
    g, _ = load_graph(tmp_path / "g")
    assert out.nnz == 1 and g[0, 1] == 3.0 and g.dtype == np.float32



def test_the_checksum_of_a_stored_graph_stays_what_it_was(ds, tmp_path):
    # pinned: a change of the canonical form (dtypes, order) would refuse every graph already stored
    g = sp.coo_matrix((np.array([0.5, 2.0, 1.0]), ([0, 1, 2], [1, 2, 0])), shape=(3, 3))
    assert store.graph_checksum(store.canonical_graph(g)) == (
        "fa768ff066c49e30794ef244e5d150725aa1ffb637eb6458ebec1b68b0fd6087"
    )


def _int64_forms(g: sp.csr_matrix) -> dict[str, sp.spmatrix | sp.sparray]:
    """``g`` as csr_array / csr_matrix / coo_array with int64 indices (networkx's
    ``to_scipy_sparse_array`` gives the first)."""
    coo = g.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    wide = g.copy()
    wide.indptr, wide.indices = g.indptr.astype(np.int64), g.indices.astype(np.int64)
    return {
        "csr_array": sp.csr_array((coo.data, (rows, cols)), shape=g.shape),
        "csr_matrix": wide,
        "coo_array": sp.coo_array((coo.data, (rows, cols)), shape=g.shape),
    }


def test_a_graph_with_int64_indices_saves_as_the_same_graph_and_loads(ds, tmp_path):
    g, rec = _build(ds)
    same = save_graph(tmp_path / "plain", g, rec).checksum
    for name, m in _int64_forms(store.canonical_graph(g)).items():
        assert name == "coo_array" or m.indices.dtype == np.int64
        written = save_graph(tmp_path / name, m, rec)
        assert written.checksum == same, name  # the container and its index dtype are no part of the graph
        g2, rec2 = load_graph(tmp_path / name, dataset=ds)
        assert rec2.checksum == store.graph_checksum(g2) == same
        assert g2.indices.dtype == g2.indptr.dtype == np.int32 and (g2 != g).nnz == 0


def test_a_graph_stored_with_int64_indices_by_an_earlier_version_loads(ds, tmp_path):
    # before the index dtype was fixed, save_graph stored a csr_array's int64 indices and
    # hashed them: the checksum is of the arrays as stored, so that graph loads (as int32)
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    wide = _int64_forms(store.canonical_graph(g))["csr_matrix"]
    sp.save_npz(tmp_path / "g" / "graph.npz", wide)
    header = json.loads((tmp_path / "g" / "graph.json").read_text())
    header["checksum"] = store.graph_checksum(wide)
    (tmp_path / "g" / "graph.json").write_text(json.dumps(header))
    g2, rec2 = load_graph(tmp_path / "g", dataset=ds)
    assert rec2.checksum == store.graph_checksum(wide) and g2.indices.dtype == np.int32 and (g2 != g).nnz == 0
    # and a changed weight is still found
    wide.data[0] += 1
    sp.save_npz(tmp_path / "g" / "graph.npz", wide)
    with pytest.raises(DataError, match="checksum is .* but graph.json says .*the matrix was modified"):
        load_graph(tmp_path / "g")


def test_only_a_graph_too_large_for_int32_indices_gets_int64():
    big = np.iinfo(np.int32).max
    assert store._index_dtype((big, big), big) is np.int32
    assert store._index_dtype((10, 10), big + 1) is np.int64
    assert store._index_dtype((big + 1, big + 1), 3) is np.int64

def test_cold_start_fields_come_from_the_dataset(ds, tmp_path):
    cold = cold_start(ds, 0.25, seed=3)
    g, rec = _build(cold)
    assert (rec.cold_start_fraction, rec.cold_start_seed, rec.n_cold_items) == (0.25, 3, 3)
    save_graph(tmp_path / "g", g, rec)
    _, rec2 = load_graph(tmp_path / "g", dataset=cold)
    assert rec2.n_cold_items == 3
    # a re-split drops the cold items and the cold-start record with them
    from graphrec.data import random_split

    resplit = random_split(cold, seed=1)
    assert resplit.cold_items is None and "cold_start" not in resplit.meta
    assert GraphRecord.for_dataset(resplit, kind="cooccur").cold_start_fraction is None


# ------------------------------------------------------------------ atomic writes
def test_no_overwrite_without_permission(ds, tmp_path):
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    before = (tmp_path / "g" / "graph.json").read_bytes()
    g5, rec5 = _build(ds, k=5)
    with pytest.raises(DataError, match="a graph already exists at .*: pass overwrite=True") as e:
        save_graph(tmp_path / "g", g5, rec5)
    _one_line(e)
    assert (tmp_path / "g" / "graph.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_overwrite_replaces_and_leaves_nothing_behind(ds, tmp_path):
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    g5, rec5 = _build(ds, k=5)
    save_graph(tmp_path / "g", g5, rec5, overwrite=True)
    g2, rec2 = load_graph(tmp_path / "g", expect={"k": 5})
    assert (g2 != g5).nnz == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_failed_write_keeps_the_old_graph_and_no_temp_files(ds, tmp_path, monkeypatch):
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    before = {p.name: p.read_bytes() for p in (tmp_path / "g").iterdir()}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.sp, "save_npz", boom)
    with pytest.raises(OSError, match="disk full"):
        save_graph(tmp_path / "g", *_build(ds, k=5), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        save_graph(tmp_path / "new", *_build(ds, k=5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "g").iterdir()} == before


def test_failed_final_rename_restores_the_old_graph(ds, tmp_path, monkeypatch):
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    before = (tmp_path / "g" / "graph.json").read_bytes()
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".g.tmp-"):
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(store.Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        save_graph(tmp_path / "g", *_build(ds, k=5), overwrite=True)
    monkeypatch.undo()
    assert (tmp_path / "g" / "graph.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
    load_graph(tmp_path / "g", dataset=ds, expect={"k": 3})


def test_never_replaces_something_that_is_not_a_graph(ds, tmp_path):
    g, rec = _build(ds)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.txt").write_text("precious")
    (tmp_path / "file").write_text("x")
    for target in ("results", "file"):
        with pytest.raises(DataError, match="is not a graphrec graph directory .*it will not be overwritten"):
            save_graph(tmp_path / target, g, rec, overwrite=True)
    assert (tmp_path / "results" / "keep.txt").read_text() == "precious"


def test_creates_parent_folders(ds, tmp_path):
    save_graph(tmp_path / "graphs" / "toy" / "cooccur-k3", *_build(ds))
    load_graph(tmp_path / "graphs" / "toy" / "cooccur-k3", dataset=ds)


# ------------------------------------------------------------------ refusals on save
def test_save_refuses_bad_graphs(ds, tmp_path):
    rec = GraphRecord.for_dataset(ds, kind="knn", k=3)
    with pytest.raises(DataError, match=r"the graph is 5 x 5 but its record says n_items=12"):
        save_graph(tmp_path / "g", sp.identity(5, format="csr"), rec)
    with pytest.raises(DataError, match="must be square"):
        save_graph(tmp_path / "g", sp.csr_matrix((12, 11)), rec)
    with pytest.raises(DataError, match="a graph must be a scipy sparse matrix, got ndarray"):
        save_graph(tmp_path / "g", np.eye(12), rec)
    bad = sp.identity(12, format="csr") * np.nan
    with pytest.raises(DataError, match="NaN or inf"):
        save_graph(tmp_path / "g", bad, rec)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ refusals on load
@pytest.mark.parametrize(
    "expect, field, have, want",
    [
        ({"k": 10}, "k", "3", "10"),
        ({"kind": "knn"}, "kind", "'cooccur'", "'knn'"),
        ({"modalities": ["image"]}, "modalities", "[]", "['image']"),
        ({"symmetric": True}, "symmetric", "False", "True"),
        ({"normalization": "sym"}, "normalization", "'none'", "'sym'"),
        ({"min_count": 2}, "min_count", "1", "2"),
        ({"weighting": "count"}, "weighting", "'count/max'", "'count'"),
    ],
)
def test_refuses_other_options(ds, tmp_path, expect, field, have, want):
    save_graph(tmp_path / "g", *_build(ds))
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g", expect=expect, dataset=ds)
    msg = _one_line(e)
    assert f": {field} is {have} but {want} was requested: " in msg
    kind = expect.get("kind", "cooccur")
    assert f"rebuild it with `graphrec build-graph --data DATASET_DIR --kind {kind} " in msg
    assert f"--out {tmp_path / 'g-rebuilt'}`, then replace {tmp_path / 'g'} with {tmp_path / 'g-rebuilt' / kind}" in msg
    if field in ("k", "min_count"):  # the co-interaction pruning options have recipe names
        assert f"--cooccur-{field.replace('k', 'top-k').replace('_', '-')} {want}" in msg


@pytest.mark.parametrize("key", ["include_self", "knn_k"])
def test_requesting_a_name_the_record_lacks_says_so(ds, tmp_path, key):
    # a co-interaction graph records no include_self (a kNN option), and no graph a "knn_k"
    save_graph(tmp_path / "g", *_build(ds))
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g", expect={key: True})
    msg = _one_line(e)
    assert f": its record has no {key!r} but True was requested (a record holds: " in msg
    assert "min_count" in msg.split("a record holds: ")[1]  # the graph's own pruning key is listed
    assert "request only names the record holds" in msg


def test_refusal_message_suggests_the_requested_value(ds, tmp_path):
    save_graph(tmp_path / "g", *_build(ds, k=20))
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g", expect={"k": 10})
    # a graph folder not named after its kind: rebuilt beside it and moved over it (the command
    # once wrote g/cooccur inside the graph g, which repaired nothing)
    assert (
        "k is 20 but 10 was requested: rebuild it with `graphrec build-graph --data DATASET_DIR --kind cooccur "
        f"--cooccur-top-k 10 --cooccur-min-count 1 --no-symmetric --normalization none --out {tmp_path / 'g-rebuilt'}`, "
        f"then replace {tmp_path / 'g'} with {tmp_path / 'g-rebuilt' / 'cooccur'}"
    ) in _one_line(e)
    save_graph(tmp_path / "h" / "cooccur", *_build(ds, k=20))  # named after its kind: rebuilt in place
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "h" / "cooccur", expect={"k": 10})
    assert f"--out {tmp_path / 'h'} --overwrite`" in _one_line(e) and "then replace" not in _one_line(e)


def test_refuses_a_graph_from_another_split(ds, tmp_path):
    g, rec = _build(ds)
    rec.split = "all"
    save_graph(tmp_path / "g", g, rec)
    with pytest.raises(DataError, match="split is 'all' but 'train' was requested"):
        load_graph(tmp_path / "g", dataset=ds)
    load_graph(tmp_path / "g", dataset=ds, expect={"split": "all"})  # explicit opt-in


def test_refuses_another_item_count(ds, tmp_path):
    save_graph(tmp_path / "g", *_build(ds))
    other = _dataset(n_items=15)
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g", dataset=other)
    assert "n_items is 12 but dataset 'toy' has 15 items: rebuild it with `graphrec build-graph" in _one_line(e)


def test_refuses_different_data_with_the_same_shape(ds, tmp_path):
    save_graph(tmp_path / "g", *_build(ds))
    other = _dataset(seed=1, name="toy2")
    assert other.n_items == ds.n_items
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g", dataset=other)
    msg = _one_line(e)
    assert f"dataset_fingerprint is {ds.fingerprint()[:12]} (built from 'toy') but dataset 'toy2' has {other.fingerprint()[:12]}" in msg
    assert "rebuild it with `graphrec build-graph --data DATASET_DIR --kind cooccur --cooccur-top-k 3 " in msg
    assert msg.endswith("with --data naming the dataset you use")
    # the same content under another name is fine (names are not compared)
    load_graph(tmp_path / "g", dataset=ds.replace(name="renamed"))


def test_refuses_a_warm_graph_for_a_cold_start_split_and_vice_versa(ds, tmp_path):
    save_graph(tmp_path / "warm", *_build(ds))
    cold = cold_start(ds, 0.25, seed=0)
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "warm", dataset=cold)
    msg = _one_line(e)
    assert "cold_start differs: the graph was built with no cold-start split but dataset 'toy' has cold-start fraction 0.25 seed 0 protocol papers (3 cold items)" in msg
    assert "--cooccur-top-k 3 --cooccur-min-count 1 --no-symmetric --normalization none --cold-start 0.25 --seed 0 --cold-protocol papers --out" in msg
    save_graph(tmp_path / "cold", *_build(cold))
    with pytest.raises(DataError, match="built with cold-start fraction 0.25 seed 0 .* but dataset 'toy' has no cold-start split"):
        load_graph(tmp_path / "cold", dataset=ds)
    with pytest.raises(DataError, match="seed 0 .*but dataset 'toy' has cold-start fraction 0.25 seed 1"):
        load_graph(tmp_path / "cold", dataset=cold_start(ds, 0.25, seed=1))
    # the same items drawn under the other protocol is another split: refused too
    with pytest.raises(DataError, match="protocol papers .*but dataset 'toy' has cold-start fraction 0.25 seed 0 protocol hidden"):
        load_graph(tmp_path / "cold", dataset=cold_start(ds, 0.25, seed=0, protocol="hidden"))


def test_a_cold_graph_recorded_before_protocols_existed_is_read_as_hidden(ds, tmp_path):
    """Records written before --cold-protocol have no protocol field: they were built on
    the only split there was, today's "hidden" one."""
    hidden = cold_start(ds, 0.25, seed=0, protocol="hidden")
    save_graph(tmp_path / "old", *_build(hidden))
    rec_file = tmp_path / "old" / "graph.json"
    header = json.loads(rec_file.read_text())
    assert header.pop("cold_start_protocol") == "hidden"
    rec_file.write_text(json.dumps(header))
    load_graph(tmp_path / "old", dataset=hidden)  # accepted
    with pytest.raises(DataError, match="protocol hidden .*but dataset 'toy' has .*protocol papers"):
        load_graph(tmp_path / "old", dataset=cold_start(ds, 0.25, seed=0))


def test_refuses_a_missing_graph(tmp_path):
    with pytest.raises(DataError, match=r"no graph at .* \(graph.json not found\): build it with `graphrec build-graph"):
        load_graph(tmp_path / "nothing")


def test_refuses_broken_or_foreign_records(ds, tmp_path):
    save_graph(tmp_path / "g", *_build(ds))
    rec_file = tmp_path / "g" / "graph.json"
    good = json.loads(rec_file.read_text())

    def check(header, match):
        rec_file.write_text(header if isinstance(header, str) else json.dumps(header))
        with pytest.raises(DataError, match=match) as e:
            load_graph(tmp_path / "g")
        _one_line(e)

    check("{not json", "invalid JSON")
    check(dict(good, format="other"), "is not graphrec-graph v1")
    check(dict(good, version=2), "is not graphrec-graph v1")
    check(dict(good, surprise=1), "unknown field 'surprise'")
    check({k: v for k, v in good.items() if k != "dataset_fingerprint"}, "lacks the field 'dataset_fingerprint'")
    check(dict(good, n_items="12"), "'n_items' is '12', not a count")
    check([1, 2], "is not graphrec-graph v1")
    (tmp_path / "g" / "graph.npz").unlink()
    rec_file.write_text(json.dumps(good))
    with pytest.raises(DataError, match=r"\(graph.npz not found\)"):
        load_graph(tmp_path / "g")


def test_refuses_a_matrix_that_does_not_belong_to_its_record(ds, tmp_path):
    g, rec = _build(ds)
    save_graph(tmp_path / "g", g, rec)
    npz = tmp_path / "g" / "graph.npz"
    # another shape
    sp.save_npz(npz, sp.identity(5, format="csr", dtype=np.float32))
    with pytest.raises(DataError, match=r"shape is \(5, 5\) but graph.json says n_items=12"):
        load_graph(tmp_path / "g", dataset=ds)
    # same shape, other entry count
    sp.save_npz(npz, sp.identity(12, format="csr", dtype=np.float32))
    with pytest.raises(DataError, match=f"holds 12 entries but graph.json says nnz={g.nnz}"):
        load_graph(tmp_path / "g")
    # same structure, one weight changed
    h = g.copy()
    h.data[0] += 1
    sp.save_npz(npz, h)
    with pytest.raises(DataError, match="checksum is .* but graph.json says .*the matrix was modified"):
        load_graph(tmp_path / "g")
    assert load_graph(tmp_path / "g", verify=False)[0][h.nonzero()[0][0], h.indices[0]] == h.data[0]
    npz.write_bytes(b"garbage")
    with pytest.raises(DataError, match="unreadable graph file"):
        load_graph(tmp_path / "g")


def test_check_record_without_loading(ds):
    _, rec = _build(ds)
    check_record(rec, dataset=ds, expect={"k": 3})
    with pytest.raises(DataError, match="k is 3 but 4 was requested"):
        check_record(rec, expect={"k": 4})
    assert rec.mismatches({"k": 4, "kind": "cooccur", "modalities": []}) == [("k", 3, 4)]


def test_a_dataset_read_from_a_folder_is_named_in_the_fix(ds, tmp_path):
    # a graph of other data: build one from the caller's folder into a new one, keep the given graph
    ds.save(tmp_path / "data")
    mine = graphrec.data.Dataset.load(tmp_path / "data")
    other = _dataset(seed=1)
    save_graph(tmp_path / "g" / "cooccur", *_build(other))
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g" / "cooccur", dataset=mine)
    msg = _one_line(e)
    data = (tmp_path / "data").resolve()
    assert "(the data differ): build a graph for this data with `graphrec build-graph " in msg
    assert f"--data {data} --kind cooccur " in msg and "--out NEW_DIR` and pass NEW_DIR/cooccur" in msg
    assert "--overwrite" not in msg and "--cold-start" not in msg
    # the dataset cold-split after loading: the command reproduces that split
    cold = cold_start(mine, 0.25, seed=3)
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g" / "cooccur", dataset=cold)
    msg = _one_line(e)
    assert "cold_start differs" in msg and f"--data {data} " in msg
    assert "--cold-start 0.25 --seed 3 --cold-protocol papers --out NEW_DIR" in msg, msg
    # stored with its cold split: the folder holds the split, the command adds none
    cold.save(tmp_path / "cold")
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "g" / "cooccur", dataset=graphrec.data.Dataset.load(tmp_path / "cold"))
    msg = _one_line(e)
    assert f"--data {(tmp_path / 'cold').resolve()} " in msg and "--cold-start" not in msg, msg


def _with_features(ds, seed=0):
    rng = np.random.default_rng(seed)
    return ds.replace(item_features={"image": rng.normal(size=(ds.n_items, 4)).astype(np.float32),
                                     "text": rng.normal(size=(ds.n_items, 3)).astype(np.float32)})


def test_a_knn_graph_fits_every_split_of_its_item_content(ds, tmp_path):
    from graphrec.data import random_split
    from graphrec.graphs import GraphSpec, build_item_graph

    warm = _with_features(ds)
    spec = GraphSpec(kind="knn", k=3, modalities=("image",))
    built = build_item_graph(warm, spec)
    save_graph(tmp_path / "knn", built.graph, built.record)
    cold = cold_start(warm, 0.25, seed=1)
    # the same graph, byte for byte, whichever split it is built from: it reads no interactions
    again = build_item_graph(cold, spec).graph
    assert (again != built.graph).nnz == 0 and np.array_equal(again.indices, built.graph.indices)
    for other in (cold, cold_start(warm, 0.5, seed=2, protocol="hidden"), random_split(warm, seed=3)):
        g, _ = load_graph(tmp_path / "knn", dataset=other)
        assert (g != built.graph).nnz == 0
    # other features of its modality, or other items: refused
    changed = warm.replace(item_features=dict(warm.item_features, image=warm.item_features["image"] + 1))
    with pytest.raises(DataError) as e:
        load_graph(tmp_path / "knn", dataset=changed)
    assert "built from other item content (image features of 'toy')" in _one_line(e)
    # a modality the graph does not read may change
    load_graph(tmp_path / "knn", dataset=warm.replace(item_features=dict(warm.item_features, text=-warm.item_features["text"])))
    # a co-interaction graph stays bound to its split
    save_graph(tmp_path / "cooccur", *_build(warm))
    with pytest.raises(DataError, match="cold_start differs"):
        load_graph(tmp_path / "cooccur", dataset=cold)


def test_a_knn_graph_stored_before_content_fingerprints_stays_bound_to_its_split(ds, tmp_path):
    from graphrec.graphs import GraphSpec, build_item_graph

    warm = _with_features(ds)
    built = build_item_graph(warm, GraphSpec(kind="knn", k=3, modalities=("image",)))
    built.record.content_fingerprint = None  # as written before the field existed
    save_graph(tmp_path / "knn", built.graph, built.record)
    assert "content_fingerprint" in json.loads((tmp_path / "knn" / "graph.json").read_text())
    with pytest.raises(DataError, match="cold_start differs"):
        load_graph(tmp_path / "knn", dataset=cold_start(warm, 0.25, seed=1))


def test_normalising_rows_of_negative_weight_sum_is_noted(ds):
    # items 0-2 point one way, item 3 the other: with k=1, item 3's only neighbour has
    # cosine -1 and row normalisation empties its row, which the build notes
    from graphrec.graphs import GraphSpec, build_item_graph

    small = _dataset(n_items=4)
    x = np.array([[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]], np.float32)
    small = small.replace(item_features={"text": x})
    built = build_item_graph(small, GraphSpec(kind="knn", k=1, normalization="row"))
    assert built.graph[3].nnz == 0
    assert any(n.startswith("note: 1 item(s) have neighbours whose weights sum to <= 0") for n in built.notes)
    plain = build_item_graph(small, GraphSpec(kind="knn", k=1))
    assert plain.graph[3].nnz == 1 and not any("sum to <= 0" in n for n in plain.notes)


def test_a_stored_graph_folder_gets_the_usual_mode(ds, tmp_path):
    import os

    save_graph(tmp_path / "g", *_build(ds))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "g").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700


def test_a_knn_record_says_which_backend_auto_chose(ds):
    from graphrec.graphs import GraphSpec, build_item_graph
    from graphrec.graphs.knn import _faiss_available

    warm = _with_features(ds)
    auto = build_item_graph(warm, GraphSpec(kind="knn", k=3, modalities=("image",))).record
    assert auto.options["backend"] == "auto"
    assert auto.options["backend_used"] == ("faiss" if _faiss_available() else "torch")
    torch_ = build_item_graph(warm, GraphSpec(kind="knn", k=3, modalities=("image",), backend="torch")).record
    assert torch_.options["backend"] == torch_.options["backend_used"] == "torch"
