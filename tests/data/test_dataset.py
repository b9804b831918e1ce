"""The Dataset object: construction, validation, fingerprint, save/load round trip."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import scipy.sparse as sp
import pytest

from graphrec.data import Dataset, build_dataset, cold_start
from graphrec.errors import DataError


def small(**kw):
    users = ["u1", "u1", "u1", "u2", "u2", "u3", "u3", "u1"]
    items = ["a", "b", "c", "a", "c", "b", "c", "a"]
    split = ["train", "train", "valid", "train", "test", "train", "test", "train"]
    ts = [5, 6, 7, 1, 2, 3, 4, 9]
    kw.setdefault("unseen", "keep")  # item c only occurs in valid/test here
    return build_dataset(users, items, split, timestamps=ts, **kw)


def test_build_remaps_ids_and_merges_duplicates():
    ds = small()
    assert list(ds.user_ids) == ["u1", "u2", "u3"]
    assert list(ds.item_ids) == ["a", "b", "c"]
    # u1-a appears twice in train: one entry, with the LATEST timestamp (9)
    assert ds.train.toarray().tolist() == [[1, 1, 0], [1, 0, 0], [0, 1, 0]]
    assert ds.valid.toarray().tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert ds.test.toarray().tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert ds.timestamps["train"].tolist() == [9, 6, 1, 3]
    assert ds.meta["duplicate_rows"] == {"input": 1}  # counted, as the file readers count theirs
    assert "duplicate_rows" not in build_dataset(["u"], ["a"], ["train"]).meta


def test_numeric_ids_are_ordered_numerically():
    ds = build_dataset([10, 9, 100], [2, 1, 30], ["train"] * 3)
    assert list(ds.user_ids) == ["9", "10", "100"]
    assert list(ds.item_ids) == ["1", "2", "30"]


def test_given_id_lists_fix_the_order_and_reject_unknown_ids():
    ds = build_dataset(["x"], ["b"], ["train"], item_ids=["c", "b", "a"])
    assert ds.train.toarray().tolist() == [[0, 1, 0]]
    with pytest.raises(DataError, match="item id 'z' in f.inter"):
        build_dataset(["x"], ["z"], ["train"], item_ids=["a"], source="f.inter")


def test_unseen_user_or_item_in_test():
    with pytest.raises(DataError, match=r"user 'u9' appears in test but never in train \(1 such interaction\)"):
        build_dataset(["u1", "u9"], ["a", "a"], ["train", "test"], source="x.inter")
    with pytest.raises(DataError, match=r"\(2 such interactions\)"):
        build_dataset(["u1", "u9", "u9"], ["a", "a", "a"], ["train", "test", "valid"], source="x.inter")
    with pytest.raises(DataError, match="item 'b' appears in valid"):
        build_dataset(["u1", "u1"], ["a", "b"], ["train", "valid"])
    dropped = build_dataset(["u1", "u1", "u1"], ["a", "b", "c"], ["train", "valid", "test"], unseen="drop")
    assert dropped.valid.nnz == 0 and dropped.test.nnz == 0
    kept = build_dataset(["u1", "u1"], ["a", "b"], ["train", "test"], unseen="keep")
    assert kept.test.nnz == 1


def test_empty_train_split_is_an_error():
    with pytest.raises(DataError, match="train split is empty"):
        build_dataset(["u"], ["i"], ["test"])


def test_feature_validation_names_the_problem():
    with pytest.raises(DataError, match=r"features 'image' have shape \(2, 4\), expected \(3, dim\)"):
        small(item_features={"image": np.zeros((2, 4))})
    bad = np.ones((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match=r"row 1 \(item 'b'\) contains NaN"):
        small(item_features={"text": bad})


def test_fingerprint_tracks_content_not_name():
    a, b = small(name="one"), small(name="two")
    assert a.fingerprint() == b.fingerprint()
    c = small(item_features={"image": np.eye(3)})
    assert c.fingerprint() != a.fingerprint()


def test_save_load_round_trip_is_lossless(tmp_path):
    ds = small(
        item_features={"image": np.arange(12, dtype=np.float32).reshape(3, 4)},
        user_fields={"age": np.array([20, 30, 40])},
        item_fields={"title": np.array(["A", "B b", "C"])},
        meta={"source": "test"},
    )
    ds = cold_start(ds, 0.34, seed=1, protocol="hidden")  # one cold item: too few to split for "papers"
    out = ds.save(tmp_path / "ds")
    back = Dataset.load(out)
    assert back.fingerprint() == ds.fingerprint()
    assert back.name == ds.name and back.meta["source"] == "test"
    assert np.array_equal(back.cold_items, ds.cold_items)
    assert ds.hidden.nnz and (back.hidden != ds.hidden).nnz == 0  # the hidden split's removed interactions
    for s in ds.splits:
        assert (back.splits[s] != ds.splits[s]).nnz == 0
        assert np.array_equal(back.timestamps[s], ds.timestamps[s])
    assert np.array_equal(back.item_features["image"], ds.item_features["image"])
    assert back.item_fields["title"].tolist() == ["A", "B b", "C"]
    assert back.user_fields["age"].tolist() == [20, 30, 40]
    assert not list(tmp_path.glob(".*tmp*")), "temporary folders must not be left behind"


def test_save_refuses_to_overwrite_and_overwrites_when_asked(tmp_path):
    ds = small()
    ds.save(tmp_path / "ds")
    with pytest.raises(DataError, match="already exists"):
        ds.save(tmp_path / "ds")
    ds2 = small(item_features={"t": np.ones((3, 2))})
    ds2.save(tmp_path / "ds", overwrite=True)
    assert Dataset.load(tmp_path / "ds").modalities == ["t"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_save_writes_only_the_entries_it_declares(tmp_path):
    from graphrec.data.dataset import DATASET_FILES, FEATURES_DIR, foreign_entries

    ds = cold_start(small(item_features={"img": np.ones((3, 2), np.float32)}, item_fields={"t": np.array(["a", "b", "c"])}),
                    0.34, seed=1, protocol="hidden")
    out = ds.save(tmp_path / "ds")
    assert sorted(p.name for p in out.iterdir()) == sorted((*DATASET_FILES, FEATURES_DIR))
    assert foreign_entries(out) == []


def test_overwrite_refuses_a_folder_holding_what_a_dataset_does_not_write(tmp_path):
    # a run folder, stored graphs or notes kept inside the dataset folder were deleted silently
    from graphrec._atomic import _host
    from graphrec.errors import ConfigError

    out = small().save(tmp_path / "ds")
    before = (out / "dataset.json").read_text()
    (out / "run").mkdir()
    (out / "run" / "record.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    (out / "features").mkdir()
    (out / "features" / "readme.md").write_text("mine")
    (out / "graphs").mkdir()
    ds2 = small(item_features={"t": np.ones((3, 2))})
    with pytest.raises(ConfigError, match=re.escape(
            f"{out} holds features/readme.md, graphs/, notes.txt and 1 more, which a dataset does not write: move them "
            "out of the dataset folder first (replacing it would delete them)") + "$"):
        ds2.save(out, overwrite=True)
    assert (out / "dataset.json").read_text() == before and (out / "run" / "record.json").is_file()
    for name in ("features", "graphs", "notes.txt"):
        shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    with pytest.raises(ConfigError, match=re.escape(f"{out} holds run/, which a dataset does not write: move it out")):
        ds2.save(out, overwrite=True)
    shutil.rmtree(out / "run")
    # the temporary of a killed graphrec write (its process is gone) is garbage, not the user's
    (out / f".x.tmp-{_host()}.999999999-abcdefgh").mkdir()
    ds2.save(out, overwrite=True)
    assert Dataset.load(out).modalities == ["t"]
    # a folder that is no dataset at all is refused as well, by what it holds
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.csv").write_text("x")
    with pytest.raises(ConfigError, match="other holds a.csv, which a dataset does not write"):
        ds2.save(tmp_path / "other", overwrite=True)


def test_load_detects_tampering_and_non_datasets(tmp_path):
    with pytest.raises(DataError, match="no dataset.json"):
        Dataset.load(tmp_path)
    out = small().save(tmp_path / "ds")
    head = json.loads((out / "dataset.json").read_text())
    head["fingerprint"] = "0" * 64
    (out / "dataset.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match="does not match the fingerprint"):
        Dataset.load(out)


def test_missing_split_gives_a_clear_error():
    ds = build_dataset(["u"], ["i"], ["train"])
    with pytest.raises(DataError, match="has no valid split"):
        ds.valid


def test_pairs_and_users_with():
    ds = small()
    u, i = ds.pairs("train")
    assert list(zip(u.tolist(), i.tolist())) == [(0, 0), (0, 1), (1, 0), (2, 1)]
    assert ds.users_with("test").tolist() == [1, 2]


def test_fingerprint_does_not_depend_on_id_string_width():
    a = build_dataset([0, 1], [0, 1], ["train", "train"], user_ids=np.arange(2), item_ids=np.arange(2))
    b = build_dataset(["0", "1"], ["0", "1"], ["train", "train"])
    assert a.fingerprint() == b.fingerprint()


def test_an_id_that_appears_twice_is_refused_and_an_unknown_split_is_named(tmp_path):
    ds = build_dataset([0, 1, 1], [0, 1, 2], ["train", "train", "train"])
    with pytest.raises(DataError, match="item id 'x' appears 2 times .1 such ids.: every item needs its own id"):
        ds.replace(item_ids=np.array(["x", "y", "x"]))  # when the dataset is made, not when it is saved
    with pytest.raises(DataError, match="user id '7' appears 2 times"):
        Dataset(name="d", user_ids=np.array([7, 7]), item_ids=ds.item_ids, splits={"train": sp.csr_matrix((2, 3))})
    renamed = ds.replace(name="other")  # ids passed on unchanged: still checked ones
    assert renamed.user_ids.tolist() == ds.user_ids.tolist()
    renamed.item_ids[2] = renamed.item_ids[0]  # changed in place after it was made: save refuses
    with pytest.raises(DataError, match="every item needs its own id"):
        renamed.save(tmp_path / "d")
    assert not (tmp_path / "d").exists()
    with pytest.raises(DataError, match="unknown split 'bogus': one of train, valid, test"):
        ds.split("bogus")
    with pytest.raises(DataError, match="has no valid split"):
        ds.split("valid")


@pytest.mark.parametrize("mod", ["../x", "a/b", "/abs", ".."])
def test_modality_names_that_are_paths_are_refused(tmp_path, mod):
    x = np.ones((3, 2), np.float32)
    with pytest.raises(DataError, match=rf"dataset 'dataset': modality name {mod!r} is not allowed"):
        small(item_features={mod: x})
    # a hand-edited dataset.json must not make load read outside the directory
    small(item_features={"img": x}).save(tmp_path / "d")
    head = json.loads((tmp_path / "d" / "dataset.json").read_text())
    head["modalities"] = {mod: 2}
    (tmp_path / "d" / "dataset.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match=rf"dataset\.json: modality name {mod!r} is not allowed"):
        Dataset.load(tmp_path / "d")


@pytest.mark.parametrize("name", ["../x y", "a/b", ".hidden", "-x", "", "a b"])
def test_dataset_names_that_are_not_file_names_are_refused(tmp_path, name):
    # a name becomes part of file names (NAME.inter of export-mmrec, graphs/NAME)
    with pytest.raises(DataError, match=rf"^dataset name {re.escape(repr(name))} is not allowed: a dataset name "
                       r"becomes part of file names .*: choose another name, e\.g\. '"):
        small(name=name)
    # nor can a hand-edited dataset.json bring one in
    small(name="ok").save(tmp_path / "d")
    head = json.loads((tmp_path / "d" / "dataset.json").read_text())
    head["name"] = name
    (tmp_path / "d" / "dataset.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match=rf"dataset\.json: entry 'name': dataset name {re.escape(repr(name))} is not "
                       "allowed"):
        Dataset.load(tmp_path / "d")


def test_a_default_name_from_a_folder_name_is_made_valid():
    from graphrec.data.dataset import check_dataset_name, dataset_name_from

    for text, name in [("ml-100k", "ml-100k"), ("ml 100k", "ml_100k"), ("../x y", "x_y"), (".hidden", "hidden"),
                       ("_ok", "_ok"), ("", "dataset"), ("a" * 150, "a" * 100)]:
        assert dataset_name_from(text) == name
        assert check_dataset_name(name) == name


def test_integer_looking_ids_beyond_int64_fall_back_to_string_order():
    # np.array(["18446744073709551615"]).astype(np.int64) raises OverflowError, not ValueError
    ds = build_dataset(["u", "u", "u"], ["18446744073709551615", "5", "40"], ["train"] * 3)
    assert list(ds.item_ids) == ["18446744073709551615", "40", "5"]  # lexicographic, as for other non-int ids
    ds = build_dataset(["-9223372036854775809", "3"], ["a", "b"], ["train"] * 2)
    assert list(ds.user_ids) == ["-9223372036854775809", "3"]


def test_natural_order_only_for_plain_integers():
    # '1_0' sorted as 10 and '+3' as 3; such ids are tokens, in string order
    ds = build_dataset(["u"] * 3, ["1_0", "9", "+3"], ["train"] * 3)
    assert list(ds.item_ids) == ["+3", "1_0", "9"]
    assert list(build_dataset(["u"] * 3, ["10", "9", "-3"], ["train"] * 3).item_ids) == ["-3", "9", "10"]


@pytest.mark.parametrize("key, value, expected", [
    ("modalities", 5, "entry 'modalities' is 5, expected an object {modality: dim}"),
    ("modalities", {"img": "2"}, "entry 'modalities' is {\"img\": \"2\"}, expected an object {modality: dim}"),
    ("splits", ["train", "holdout"], "entry 'splits' is [\"train\", \"holdout\"], expected a list of split names (train, valid, test) with train"),
    ("timestamps", "yes", "entry 'timestamps' is \"yes\", expected true or false"),
    ("item_fields", [1], "entry 'item_fields' is [1], expected a list of field names"),
    ("name", None, "entry 'name' is null, expected a string"),
    ("meta", [], "entry 'meta' is [], expected an object"),
])
def test_a_hand_edited_header_of_the_wrong_type_is_one_line(tmp_path, key, value, expected):
    # "modalities": 5 was a TypeError traceback in `graphrec info`
    from typer.testing import CliRunner

    from graphrec.cli import app

    small(item_features={"img": np.ones((3, 2), np.float32)}).save(tmp_path / "d")
    head = json.loads((tmp_path / "d" / "dataset.json").read_text())
    head[key] = value
    (tmp_path / "d" / "dataset.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match=re.escape(expected) + r": the header was edited or damaged: re-run"):
        Dataset.load(tmp_path / "d")
    res = CliRunner().invoke(app, ["info", str(tmp_path / "d")])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and expected in res.output


def test_a_header_entry_that_is_missing_is_named(tmp_path):
    small().save(tmp_path / "d")
    head = json.loads((tmp_path / "d" / "dataset.json").read_text())
    del head["timestamps"]
    (tmp_path / "d" / "dataset.json").write_text(json.dumps(head))
    with pytest.raises(DataError, match=r"dataset\.json: entry 'timestamps' is missing: the header is damaged"):
        Dataset.load(tmp_path / "d")


def _damage_train(z, how):
    # small()'s train split: indptr [0, 2, 3, 4], indices [0, 1, 0, 1] (3 users, 3 items)
    ptr, idx = z["train_indptr"], z["train_indices"]
    if how == "index":
        idx[1] = 99999
    elif how == "negative":
        idx[1] = -1
    elif how == "indptr":
        ptr[1], ptr[2] = ptr[2], ptr[1]
    elif how == "start":
        ptr += 1
    elif how == "short":
        z["train_indices"] = idx[:-1]
    elif how == "users":
        z["train_indptr"] = ptr[:-1]
    elif how == "twice":
        idx[1] = idx[0]
    elif how == "stamps":
        z["train_timestamps"] = z["train_timestamps"][:-1]


@pytest.mark.parametrize("how, expected", [
    # a scipy traceback ("column index exceeds matrix dimensions") before
    ("index", "train_indices[1] is 99999, outside 0..2 (the 3 items of ids.npz; 1 such)"),
    ("negative", "train_indices[1] is -1, outside 0..2"),
    # "stores the pair (user ..) more than once and has timestamps" before
    ("indptr", "train_indptr decreases at user 1 (3 then 2; 1 such)"),
    ("start", "train_indptr starts at 1, not 0"),
    ("short", "train_indptr ends at 4, but train_indices has 3 entries"),
    ("users", "train_indptr has 3 entries, expected 4 (one more than the 3 users of ids.npz)"),
    ("twice", "the items of user 0 are not strictly increasing (train_indices[1] is 0 after 0)"),
    ("stamps", "train_timestamps has shape (3,), expected (4,): one per interaction"),
])
def test_damaged_interactions_are_one_line_naming_file_and_split(tmp_path, how, expected):
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.testing import one_error_line

    out = small().save(tmp_path / "d")
    z = dict(np.load(out / "interactions.npz"))
    _damage_train(z, how)
    np.savez_compressed(out / "interactions.npz", **z)
    with pytest.raises(DataError, match=re.escape(f"{out / 'interactions.npz'}: split 'train': {expected}")) as e:
        Dataset.load(out)
    assert str(e.value).endswith(": the dataset directory is damaged: re-run `graphrec prepare`")
    line = one_error_line(CliRunner().invoke(app, ["info", str(out)]))
    assert line == f"error: {e.value}"


def test_a_truncated_or_missing_feature_file_of_a_dataset_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.testing import one_error_line

    out = small(item_features={"img": np.ones((3, 2), np.float32)}).save(tmp_path / "d")
    npy = out / "features" / "img.npy"
    data = npy.read_bytes()
    npy.write_bytes(data[:-4])
    # was "incomplete or corrupt (cannot reshape array of size 5 into shape (3,2))"
    expected = (f"{npy}: truncated: {len(data) - 4} of {len(data)} bytes (the header's shape (3, 2), dtype float32): "
                "the dataset directory is damaged: re-run `graphrec prepare`")
    with pytest.raises(DataError, match=re.escape(expected) + "$"):
        Dataset.load(out)
    assert one_error_line(CliRunner().invoke(app, ["info", str(out)])) == f"error: {expected}"
    npy.unlink()
    with pytest.raises(DataError, match=re.escape(f"{npy}: no such file: the dataset directory is damaged")):
        Dataset.load(out)


def test_info_shows_each_modality_s_scale_and_items_without_content(tmp_path):
    """`graphrec info` lists what a diverged training's message points to: the largest
    |feature| per modality, and the items whose content is all zeros."""
    from typer.testing import CliRunner

    from graphrec.cli import app

    img = np.array([[1.0, -2.0], [0.0, 0.0], [0.5, 3e30]], np.float32)
    txt = np.array([[0.1, 0.2, 0.0], [0.0, -0.4, 0.0], [0.0, 0.0, 0.0]], np.float32)
    ds = small(item_features={"img": img, "txt": txt})
    st = ds.stats()
    assert st["feature_max_abs"] == {"img": pytest.approx(3e30), "txt": pytest.approx(0.4)}
    assert st["items_without_content"] == {"img": 1, "txt": 1}
    ds.save(tmp_path / "d")
    res = CliRunner().invoke(app, ["info", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line.split(None, 1)[1] for line in res.output.splitlines()}
    assert lines["feature_max_abs"] == "img:3e+30, txt:0.4"
    assert lines["items_without_content"] == "img:1, txt:1"


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array(["a", "bcd", ""]),
        np.array([b"ab", b"c"]),
        np.array([True, False, True]),
        np.array(["2020-01-01", "2021-02-03"], dtype="M8[D]"),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        np.ascontiguousarray(np.float64(3.5)),
        np.zeros((0, 5), dtype=np.float16),
        np.array(["x", None], dtype=object),
    ],
    ids=["float32", "str", "bytes", "bool", "datetime", "struct", "scalar", "empty", "object"],
)
def test_array_bytes_are_tobytes_without_a_copy(arr):
    """Fingerprints hash a view of the memory: the same bytes as tobytes(), which copies
    the array (2 GB for 1M x 512 features)."""
    import hashlib

    from graphrec.data.dataset import array_bytes

    b = array_bytes(arr)
    assert bytes(b) == arr.tobytes()
    assert hashlib.sha256(b).hexdigest() == hashlib.sha256(arr.tobytes()).hexdigest()
    if arr.size and arr.dtype != object:
        assert np.shares_memory(np.frombuffer(b, dtype=np.uint8), arr)


#: computed with the code before fingerprints hashed memory views (array_bytes)
FIXED_FINGERPRINT = "1a35b2fc0fd4b3ae5d5196ae3531310b2eba91bd90c4cc80f220f12e4a646638"
FIXED_CONTENT_FINGERPRINT = "604ed8ba385bbe68f9f7e79c47e533128eb51f0e8ecc9d5c0cfbda638fbcff9b"


def test_fingerprint_of_a_fixed_dataset_is_unchanged():
    """The fingerprint is recorded in stored datasets and runs: pinned on a tiny dataset
    with features, timestamps, fields and cold items."""
    ds = build_dataset(
        np.array(["u0", "u0", "u1", "u2", "u2"]), np.array(["a", "b", "b", "a", "c"]), np.array(["train"] * 5),
        timestamps=np.arange(5, dtype=np.float64),
        user_ids=np.array(["u0", "u1", "u2"]), item_ids=np.array(["a", "b", "c"]),
        item_features={"text": np.array([[1.0, 0.0], [0.0, 0.0], [1e-30, 1e30]], dtype=np.float32)},
        user_fields={"age": np.array([1, 2, 3], dtype=np.int64)}, item_fields={"cat": np.array(["x", "y", "x|y"])},
    ).replace(cold_items=np.array([2]))
    assert ds.fingerprint() == FIXED_FINGERPRINT
    assert ds.content_fingerprint(["text"]) == FIXED_CONTENT_FINGERPRINT


def test_nonfinite_rows_finds_nan_and_inf_rows_without_a_full_mask_for_clean_data():
    from graphrec.data.dataset import nonfinite_rows

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert nonfinite_rows(x) is None and nonfinite_rows(np.zeros((0, 3), np.float32)) is None
    for value in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[2, 1] = value
        np.testing.assert_array_equal(nonfinite_rows(y), [False, False, True, False])
    y = x.astype(np.float16)
    y[0, 0] = np.nan
    y[3, 2] = np.inf
    np.testing.assert_array_equal(nonfinite_rows(y), [True, False, False, True])


def test_timestamps_move_with_their_pairs_when_the_constructor_sorts_them():
    """A split given with unsorted indices (or as COO) is made canonical; its timestamps,
    given in the stored order, follow their pairs (they stayed in place, so a temporal
    split saw other times); stored zeros are no interactions; a pair stored twice with
    timestamps is refused."""
    ids = dict(name="t", user_ids=np.array(["u", "v"]), item_ids=np.array(["a", "b", "c"]))
    m = sp.csr_matrix((np.ones(3), np.array([2, 1, 0]), np.array([0, 3, 3])), shape=(2, 3))
    ds = Dataset(**ids, splits={"train": m}, timestamps={"train": np.array([100.0, 200.0, 300.0])})
    assert ds.train.indices.tolist() == [0, 1, 2] and ds.timestamps["train"].tolist() == [300.0, 200.0, 100.0]
    c = sp.coo_matrix((np.array([1.0, 1.0, 0.0, 1.0]), (np.array([1, 0, 0, 1]), np.array([0, 2, 1, 1]))), shape=(2, 3))
    ds = Dataset(**ids, splits={"train": c}, timestamps={"train": np.array([1.0, 2.0, 9.0, 3.0])})
    assert ds.train.indptr.tolist() == [0, 1, 3] and ds.train.indices.tolist() == [2, 0, 1]
    assert ds.timestamps["train"].tolist() == [2.0, 1.0, 3.0]  # the stored zero (user 0, item 1) is gone
    d = sp.coo_matrix((np.ones(2), (np.array([0, 0]), np.array([1, 1]))), shape=(2, 3))
    with pytest.raises(DataError, match=r"stores the pair \(user 0, item 1\) more than once and has timestamps"):
        Dataset(**ids, splits={"train": d}, timestamps={"train": np.array([1.0, 2.0])})


def test_negative_values_are_refused_and_object_fields_are_strings():
    """A negative or NaN value in a split is refused (every stored entry became an
    interaction); object-dtype fields (a pandas column's .values) are strings, so equal
    fields give equal fingerprints (they were hashed by address) and save/load keeps
    them."""
    ids = dict(name="t", user_ids=np.array(["u", "v"]), item_ids=np.array(["a", "b", "c"]))
    m = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    for bad in (-m, m.multiply(np.nan)):
        with pytest.raises(DataError, match="split 'train' holds .*negative or non-finite value"):
            Dataset(**ids, splits={"train": bad})
    make = lambda: Dataset(**ids, splits={"train": m}, item_fields={"title": np.array(["x", "y", "z"], dtype=object)})
    ds = make()
    assert ds.item_fields["title"].dtype.kind == "U" and make().fingerprint() == ds.fingerprint()


def test_a_run_records_the_data_it_trained_on_after_an_in_place_change(tmp_path):
    """The fingerprint is cached at load; features changed in place afterwards (e.g.
    normalised by the caller) were recorded under the fingerprint of the data on disk, and
    reloading the run silently scored with other features. The record now holds the
    fingerprint of the arrays trained on, so reloading from disk is refused."""
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train import TrainConfig
    from graphrec.train.run import load_run, run_training

    synthetic_catalogue(n_users=40, n_items=30, n_clusters=3, seed=0).save(tmp_path / "ds")
    ds = Dataset.load(tmp_path / "ds")
    on_disk = ds.fingerprint()
    for x in ds.item_features.values():
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert ds.fingerprint() == on_disk and ds.fingerprint(fresh=True) != on_disk
    record, _ = run_training(ds, "lightgcn", {"embedding_dim": 8}, TrainConfig(epochs=1, progress=False),
                             out=tmp_path / "run", data_path=tmp_path / "ds")
    assert record["dataset"]["fingerprint"] == ds.fingerprint(fresh=True) != on_disk
    with pytest.raises(DataError, match="differs from the data run run was trained on"):
        load_run(tmp_path / "run")


def test_a_dataset_prints_as_one_line_compares_by_identity_and_checks_its_cold_items():
    """repr dumped every array (34 KB for 120 x 80), == raised numpy's 'truth value is
    ambiguous', and cold_items=[-1] marked the last item cold."""
    ds = build_dataset(["u", "u", "v", "v"], ["a", "b", "a", "b"], ["train", "train", "train", "test"], name="tiny")
    assert repr(ds) == "Dataset('tiny': 2 users, 2 items, train 3 / test 1; features none)"
    assert ds == ds and ds != ds.replace() and ds.replace().fingerprint() == ds.fingerprint()
    for cold in ([-1], [2], ["a"]):
        with pytest.raises(DataError, match=r"cold_items must be item indices in \[0, 2\)"):
            ds.replace(cold_items=np.array(cold))
    assert repr(ds.replace(cold_items=np.array([1]))).endswith("features none, 1 cold items)")
