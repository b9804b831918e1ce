"""LATTICE importer: real amazon-baby files and bad-input cases on tiny folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphrec.data.dataset import Dataset
from graphrec.data.formats import read_lattice
from graphrec.errors import DataError


@pytest.fixture(scope="module")
def baby(shared_data: Path) -> Dataset:
    # Two items (B001FSHJFU, B0029AWQOC) occur only in val/test in this split.
    return read_lattice(shared_data / "amazon-baby", unseen="keep")


def test_baby_counts(baby: Dataset) -> None:
    assert baby.name == "amazon-baby"
    assert (baby.n_users, baby.n_items) == (19445, 7050)
    counts = [baby.splits[s].nnz for s in ("train", "valid", "test")]
    assert counts == [119674, 20559, 20559] and sum(counts) == 160792


def test_baby_ids_kept(baby: Dataset, shared_data: Path) -> None:
    item2id = json.loads((shared_data / "amazon-baby" / "item2id.json").read_text())
    user2id = json.loads((shared_data / "amazon-baby" / "user2id.json").read_text())
    inv_items = {v: k for k, v in item2id.items()}
    inv_users = {v: k for k, v in user2id.items()}
    assert baby.item_ids[0] == inv_items[0]
    assert baby.item_ids[4321] == inv_items[4321]
    assert baby.user_ids[0] == inv_users[0]
    assert baby.user_ids[19444] == inv_users[19444]
    train = json.loads((shared_data / "amazon-baby" / "train.json").read_text())
    assert sorted(train["3"]) == sorted(baby.train[3].indices.tolist())


def test_baby_unseen_items(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"val\.json \(user key '\d+', item index \d+\): item 'B0"):
        read_lattice(shared_data / "amazon-baby")
    dropped = read_lattice(shared_data / "amazon-baby", unseen="drop")
    assert dropped.n_items == 7050
    assert dropped.valid.nnz + dropped.test.nnz == 20559 * 2 - 10


def test_baby_save_load(baby: Dataset, tmp_path: Path) -> None:
    baby.save(tmp_path / "ds")
    assert Dataset.load(tmp_path / "ds").fingerprint() == baby.fingerprint()


# ---------------------------------------------------------------- tiny folders
def make(root: Path, train=None, val=None, test=None, **extra: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "train.json": {"0": [0, 1], "1": [1, 2]} if train is None else train,
        "val.json": {"0": [2]} if val is None else val,
        "test.json": {"1": [0]} if test is None else test,
        **extra,
    }
    for fname, obj in files.items():
        (root / fname).write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return root


def test_tiny_without_maps(tmp_path: Path) -> None:
    ds = read_lattice(make(tmp_path / "t"))
    assert ds.name == "t" and list(ds.user_ids) == ["0", "1"] and list(ds.item_ids) == ["0", "1", "2"]
    assert ds.train.nnz == 4 and ds.valid.nnz == 1 and ds.test.nnz == 1


def test_tiny_with_maps_and_features(tmp_path: Path) -> None:
    root = make(
        tmp_path / "t",
        **{"item2id.json": {"X": 2, "Y": 0, "Z": 1, "W": 3}, "user2id.json": {"u1": 1, "u0": 0}},
    )
    np.save(root / "image_feat.npy", np.arange(8, dtype=np.float64).reshape(4, 2))
    ds = read_lattice(root, features={"image": "image_feat.npy"}, name="tiny")
    assert ds.name == "tiny"
    assert list(ds.item_ids) == ["Y", "Z", "X", "W"] and list(ds.user_ids) == ["u0", "u1"]
    np.testing.assert_array_equal(ds.item_features["image"][2], [4.0, 5.0])  # row 2 = item "X"
    assert ds.train[0].indices.tolist() == [0, 1]


def test_missing_split_file(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    (root / "val.json").unlink()
    with pytest.raises(DataError, match=r"val\.json: LATTICE split file not found"):
        read_lattice(root)


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: directory not found"):
        read_lattice(tmp_path / "nowhere")


def test_empty_split_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"test\.json: the split file has no interactions"):
        read_lattice(make(tmp_path / "t", test={"0": []}))


def test_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.json line 2 column \d+: invalid JSON"):
        read_lattice(make(tmp_path / "t", train='{"0": [0, 1],\n "1": [1, 2}'))


def test_non_integer_item(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.json: user '1' has item 'B00X', not an integer index"):
        read_lattice(make(tmp_path / "t", train={"0": [0, 1], "1": [1, "B00X"]}))


def test_not_a_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"val\.json: user '0' maps to int, not a list"):
        read_lattice(make(tmp_path / "t", val={"0": 2}))


def test_item_index_outside_item_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t", test={"1": [5]}, **{"item2id.json": {"a": 0, "b": 1, "c": 2}})
    with pytest.raises(DataError, match=r"test\.json: user '1' has item index 5, outside .*item2id\.json \(3 items\)"):
        read_lattice(root)


def test_bad_item_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t", **{"item2id.json": {"a": 0, "b": 0, "c": 2}})
    with pytest.raises(DataError, match=r"item2id\.json: index 0 is given to item 'a' and 'b'"):
        read_lattice(root)


def test_user_key_not_index_with_user_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t", val={"alice": [2]}, **{"user2id.json": {"A": 0, "B": 1}})
    with pytest.raises(DataError, match=r"val\.json: user key 'alice' is not an integer index"):
        read_lattice(root)


def test_feature_rows_mismatch(tmp_path: Path) -> None:
    root = make(tmp_path / "t", **{"item2id.json": {"a": 0, "b": 1, "c": 2}})
    np.save(root / "img.npy", np.ones((4, 2), np.float32))
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' has 4 rows but the dataset has 3 items"):
        read_lattice(root, features={"image": "img.npy"})


def test_nan_feature(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    x = np.ones((3, 2), np.float32)
    x[2, 0] = np.inf
    np.save(root / "img.npy", x)
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' row 2 \(item '2'\) contains NaN or inf"):
        read_lattice(root, features={"image": "img.npy"})


def test_user_only_in_test(tmp_path: Path) -> None:
    root = make(tmp_path / "t", test={"9": [0]})
    with pytest.raises(DataError, match=r"test\.json \(user key '9', item index 0\): user '9' appears in test but never in train"):
        read_lattice(root)


def test_item_only_in_val(tmp_path: Path) -> None:
    root = make(tmp_path / "t", val={"0": [3]})
    with pytest.raises(DataError, match=r"val\.json \(user key '0', item index 3\): item '3' appears in valid"):
        read_lattice(root)
    assert read_lattice(root, unseen="keep").valid.nnz == 1


def test_a_user_listed_twice_in_a_split_file_is_refused(tmp_path: Path) -> None:
    # json keeps the last value of a repeated key: user 0's items 0, 1, 3 were lost
    root = make(tmp_path / "t", train='{"0": [0, 1, 3], "1": [0, 1, 2], "0": [2]}')
    with pytest.raises(DataError, match=r"train\.json: key '0' appears twice in one JSON object, and only one of its "
                       r"values could be read: merge the two entries into one$"):
        read_lattice(root)


def test_an_id_listed_twice_in_an_id_map_is_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "t", **{"item2id.json": '{"X": 0, "Y": 1, "X": 2}'})
    with pytest.raises(DataError, match=r"item2id\.json: key 'X' appears twice in one JSON object"):
        read_lattice(root)


def test_item_indices_far_beyond_the_distinct_ones_are_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "t", train={"0": [0, 1], "1": [1, 99999999999]})
    with pytest.raises(DataError, match=r"train\.json \(user key '1'\): item index 99999999999 would make "
                       r"100,000,000,000 items .* only 4 distinct indices occur .*: add item2id\.json"):
        read_lattice(root)


def test_a_missing_split_file_says_what_the_folder_needs(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    (root / "val.json").unlink()
    with pytest.raises(DataError, match=r"val\.json: LATTICE split file not found: a LATTICE folder needs all three of "
                       r"train\.json, val\.json and test\.json, each \{\"<user>\": \[<item index>, \.\.\.\]\}: add the "
                       r"missing file"):
        read_lattice(root)
