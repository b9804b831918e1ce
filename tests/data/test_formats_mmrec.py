"""MMRec importer: real lfm2k files and every bad-input case on tiny files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from graphrec.data.dataset import Dataset
from graphrec.data.formats import read_mmrec
from graphrec.errors import DataError

LFM_FEATURES = {"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy", "audio_whisper": "whisper.npy"}


@pytest.fixture(scope="module")
def lfm2k(shared_data: Path) -> Dataset:
    return read_mmrec(shared_data / "lfm2k", features=LFM_FEATURES)


def test_lfm2k_counts(lfm2k: Dataset) -> None:
    assert lfm2k.name == "lfm2k"
    assert (lfm2k.n_users, lfm2k.n_items) == (1858, 1425)
    assert [lfm2k.splits[s].nnz for s in ("train", "valid", "test")] == [44327, 4799, 7219]
    assert lfm2k.timestamps is None
    assert lfm2k.item_ids[0] == "0" and lfm2k.item_ids[-1] == "1424"
    np.testing.assert_array_equal(lfm2k.item_ids, [str(i) for i in range(1425)])


def test_lfm2k_rows_match_file(lfm2k: Dataset, shared_data: Path) -> None:
    raw = np.loadtxt(shared_data / "lfm2k" / "lfm2k.inter", skiprows=1, dtype=np.int64)
    for label, s in enumerate(("train", "valid", "test")):
        rows = raw[raw[:, 3] == label]
        u = np.searchsorted(lfm2k.user_ids.astype(np.int64), rows[:, 0])
        m = lfm2k.splits[s]
        assert m[u, rows[:, 1]].A1.all()  # every file row is an entry of its split


def test_lfm2k_features_aligned(lfm2k: Dataset, shared_data: Path) -> None:
    assert {m: x.shape[1] for m, x in lfm2k.item_features.items()} == {
        "text": 384, "audio": 128, "audio_whisper": 512
    }
    for mod, fname in LFM_FEATURES.items():
        raw = np.load(shared_data / "lfm2k" / fname)
        x = lfm2k.item_features[mod]
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x[7], raw[7].astype(np.float32))
        np.testing.assert_array_equal(x, raw.astype(np.float32))


def test_lfm2k_by_file_path_and_fast(shared_data: Path) -> None:
    t = time.perf_counter()
    ds = read_mmrec(shared_data / "lfm2k" / "lfm2k.inter")
    assert time.perf_counter() - t < 2.0
    assert ds.n_items == 1425 and ds.item_features == {}


def test_lfm2k_save_load(lfm2k: Dataset, tmp_path: Path) -> None:
    lfm2k.save(tmp_path / "ds")
    assert Dataset.load(tmp_path / "ds").fingerprint() == lfm2k.fingerprint()


# ---------------------------------------------------------------- tiny files
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD = "userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t1\t1\t0\n1\t1\t1\t0\n1\t0\t1\t2\n0\t2\t1\t0\n1\t2\t1\t1\n"


def test_tiny_columns_by_name_and_timestamps(tmp_path: Path) -> None:
    f = write(tmp_path / "d" / "d.inter", "x_label\ttimestamp\titemID\tuserID\n0\t5\t0\ta\n0\t7\t1\ta\n0\t1\t1\tb\n2\t9\t0\tb\n")
    ds = read_mmrec(f.parent)
    assert ds.name == "d" and list(ds.user_ids) == ["a", "b"] and list(ds.item_ids) == ["0", "1"]
    assert ds.timestamps is not None
    np.testing.assert_array_equal(ds.timestamps["train"], [5.0, 7.0, 1.0])
    assert ds.test.nnz == 1 and "valid" not in ds.splits


def test_without_features_items_are_range_of_max_id(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t4\t0\n")
    ds = read_mmrec(f)
    assert list(ds.item_ids) == ["0", "1", "2", "3", "4"]


def test_features_define_item_count(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "img.npy", np.arange(20, dtype=np.float64).reshape(5, 4))
    ds = read_mmrec(f, features={"image": "img.npy"})
    assert ds.n_items == 5 and ds.item_features["image"].dtype == np.float32
    np.testing.assert_array_equal(ds.item_features["image"][3], [12, 13, 14, 15])
    ds2 = read_mmrec(f, features={"image": tmp_path / "img.npy"})  # absolute path
    assert ds2.fingerprint() == ds.fingerprint()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.inter"):
        read_mmrec(tmp_path / "nope.inter")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*no \*\.inter"):
        read_mmrec(tmp_path / "empty")


def test_missing_header_column(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\trating\n0\t0\t1\n")
    with pytest.raises(DataError, match=r"d\.inter line 1: header has no 'x_label' column") as e:
        read_mmrec(f)
    assert "\n" not in str(e.value)


def test_non_numeric_item_id(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\tB00X\t0\n")
    with pytest.raises(DataError, match=r"d\.inter line 3: itemID 'B00X' is not an integer index"):
        read_mmrec(f)


def test_negative_item_id(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t-3\t0\n")
    with pytest.raises(DataError, match=r"d\.inter line 3: itemID '-3' is negative"):
        read_mmrec(f)


def test_bad_split_label(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t3\n")
    with pytest.raises(DataError, match=r"d\.inter line 3: x_label 3 is not a split label"):
        read_mmrec(f)


def test_wrong_field_count(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0 1 0\n")
    with pytest.raises(DataError, match=r"d\.inter line 3: expected 3 tab-separated fields"):
        read_mmrec(f)


def test_header_only(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n")
    with pytest.raises(DataError, match=r"d\.inter: no data rows"):
        read_mmrec(f)


def test_item_beyond_feature_rows(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "img.npy", np.ones((2, 4), np.float32))
    with pytest.raises(DataError, match=r"d\.inter line 6: itemID 2 has no feature row \(.*img\.npy has 2 rows"):
        read_mmrec(f, features={"image": "img.npy"})


def test_feature_files_disagree(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "img.npy", np.ones((3, 4), np.float32))
    np.save(tmp_path / "txt.npy", np.ones((4, 2), np.float32))
    with pytest.raises(DataError, match=r"txt\.npy: modality 'text' has 4 rows but .*img\.npy"):
        read_mmrec(f, features={"image": "img.npy", "text": "txt.npy"})


def test_missing_feature_file(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    with pytest.raises(DataError, match=r"img\.npy: feature file for modality 'image' not found"):
        read_mmrec(f, features={"image": "img.npy"})


def test_nan_features_name_file(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    x = np.ones((3, 4), np.float32)
    x[1, 2] = np.nan
    np.save(tmp_path / "img.npy", x)
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' row 1 \(item '1'\) contains NaN"):
        read_mmrec(f, features={"image": "img.npy"})


def test_pickled_features_are_not_loaded(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None, 3], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: cannot be loaded without pickle"):
        read_mmrec(f, features={"image": "obj.npy"})


def test_one_dimensional_features(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "v.npy", np.ones(3, np.float32))
    with pytest.raises(DataError, match=r"v\.npy: modality 'image' must be a 2-D numeric array"):
        read_mmrec(f, features={"image": "v.npy"})


def test_user_only_in_test(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n7\t1\t2\n")
    with pytest.raises(DataError, match=r"d\.inter line 4: user '7' appears in test but never in train"):
        read_mmrec(f)
    assert read_mmrec(f, unseen="drop").test.nnz == 0
    kept = read_mmrec(f, unseen="keep")
    assert kept.test.nnz == 1 and kept.n_users == 2


def test_item_only_in_valid(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n")
    with pytest.raises(DataError, match=r"d\.inter line 3: item '1' appears in valid but never in train"):
        read_mmrec(f)
