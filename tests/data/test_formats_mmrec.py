"""MMRec importer and exporter: real lfm2k files, every bad-input case on tiny files,
the written files line by line and the round trip (write, read back, same fingerprint)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats import read_mmrec, write_mmrec
from graphrec.data.formats.mmrec import mmrec_slots, user_graph_dict
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.errors import ConfigError, DataError

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


def test_lfm2k_by_file_path(shared_data: Path) -> None:
    ds = read_mmrec(shared_data / "lfm2k" / "lfm2k.inter")
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


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf"])
def test_non_finite_timestamp_is_refused(tmp_path: Path, stamp: str) -> None:
    f = write(tmp_path / "d.inter", f"userID\titemID\ttimestamp\tx_label\n0\t0\t5\t0\n0\t1\t{stamp}\t0\n1\t0\t1\t0\n")
    with pytest.raises(DataError, match=rf"d\.inter line 3: timestamp {stamp!r} is not a finite number"):
        read_mmrec(f)


def test_without_features_items_are_range_of_max_id(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t4\t0\n")
    ds = read_mmrec(f)
    assert list(ds.item_ids) == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("big", [99999999999, 5000000, 1001])
def test_item_ids_far_beyond_the_distinct_ones_are_refused(tmp_path: Path, big: int) -> None:
    # max(itemID) + 1 items were allocated: 99999999999 was killed for memory, 5,000,000
    # silently made 5,000,001 items, almost all phantoms ranked like real ones
    f = write(tmp_path / "d.inter", f"userID\titemID\tx_label\n0\t0\t0\n0\t{big}\t0\n1\t0\t0\n")
    with pytest.raises(DataError, match=rf"d\.inter line 3: itemID {big} would make {big + 1:,} items \(0\.\.{big}\) but "
                       r"only 2 distinct indices occur \(more than 10x\): they look like raw ids, not 0-based item "
                       r"indices: map the original ids to indices 0\.\.n-1 .*i_id_mapping\.csv"):
        read_mmrec(f)


def test_sparse_item_indices_below_the_floor_or_with_features_are_read(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t999\t0\n1\t0\t0\n")
    assert read_mmrec(f).n_items == 1000  # at the floor: max + 1 as before
    np.save(tmp_path / "img.npy", np.ones((5001, 2), np.float32))
    f = write(tmp_path / "e.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t5000\t0\n1\t0\t0\n")
    assert read_mmrec(f, features={"image": "img.npy"}).n_items == 5001  # the feature rows define the items


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


def test_not_found_messages_name_the_cli_options(tmp_path: Path) -> None:
    write(tmp_path / "d" / "d.inter", GOOD)
    with pytest.raises(DataError, match=r"nope\.inter: MMRec interaction file not found: check name= \(CLI: --name\)"):
        read_mmrec(tmp_path / "d", name="nope")
    with pytest.raises(DataError, match=r"img\.npy: feature file for modality 'image' not found: check the path in "
                                        r"features \(CLI: --feature MODALITY=FILE; a relative FILE is read from the "
                                        r"source folder\)"):
        read_mmrec(tmp_path / "d", features={"image": "img.npy"})


def test_nan_features_name_file(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    x = np.ones((3, 4), np.float32)
    x[1, 2] = np.nan
    np.save(tmp_path / "img.npy", x)
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' row 1 \(item '1'\) contains NaN"):
        read_mmrec(f, features={"image": "img.npy"})


def test_zero_width_features_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "img.npy", np.ones((3, 0), np.float32))
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' has shape \(3, 0\), zero feature columns"):
        read_mmrec(f, features={"image": "img.npy"})
    with pytest.raises(DataError, match=r"features 'image' have shape \(3, 0\), expected \(3, dim\) with dim >= 1"):
        build_dataset(["0"], ["0"], ["train"], item_ids=["0", "1", "2"],
                      item_features={"image": np.ones((3, 0), np.float32)})


def test_complex_and_out_of_float32_range_features_are_refused_without_numpy_warnings(tmp_path: Path) -> None:
    import warnings

    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "c.npy", np.ones((3, 2), np.complex128))
    x = np.ones((3, 2))
    x[2, 1] = -1e39
    x[0, 0] = np.inf  # inf is left to the NaN/inf check
    np.save(tmp_path / "big.npy", x)
    np.save(tmp_path / "inf.npy", np.where(np.abs(x) > 10, np.inf, x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning, no overflow RuntimeWarning
        with pytest.raises(DataError, match=r"c\.npy: modality 'image' is complex \(complex128\), features are real "
                                            r"numbers: save the real part"):
            read_mmrec(f, features={"image": "c.npy"})
        with pytest.raises(DataError, match=r"big\.npy: modality 'image' row 2 column 1 holds -1e\+39, outside "
                                            r"float32's range \(about \+-3\.4e38; 1 such value\)"):
            read_mmrec(f, features={"image": "big.npy"})
        with pytest.raises(DataError, match=r"inf\.npy: modality 'image' row 0 \(item '0'\) contains NaN or inf"):
            read_mmrec(f, features={"image": "inf.npy"})
    np.save(tmp_path / "td.npy", np.ones((3, 2), "timedelta64[s]"))  # numpy's np.number, yet no feature
    with pytest.raises(DataError, match=r"td\.npy: modality 'image' must be a 2-D numeric array .*dtype timedelta64"):
        read_mmrec(f, features={"image": "td.npy"})
    np.save(tmp_path / "edge.npy", np.full((3, 2), np.finfo(np.float32).max, np.float64))
    assert read_mmrec(f, features={"image": "edge.npy"}).item_features["image"].max() == np.finfo(np.float32).max


def test_a_modality_given_twice_on_the_command_line_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    write(tmp_path / "src" / "src.inter", GOOD)
    for name in ("a", "b"):
        np.save(tmp_path / "src" / f"{name}.npy", np.ones((3, 2), np.float32))
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out"),
                                   "--feature", "x=a.npy", "--feature", "x=b.npy"])
    assert res.exit_code == 1
    assert res.output.strip() == "error: --feature gives modality 'x' twice (a.npy and b.npy): give each modality once"
    assert not (tmp_path / "out").exists()


def test_pickled_features_are_not_loaded(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None, 3], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: cannot be loaded without pickle"):
        read_mmrec(f, features={"image": "obj.npy"})


def test_a_truncated_feature_file_says_truncated_not_pickle(tmp_path: Path) -> None:
    # was "cannot be loaded without pickle (cannot reshape array of size 2 into shape (3,2))"
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.testing import one_error_line

    write(tmp_path / "src" / "src.inter", GOOD)
    np.save(tmp_path / "src" / "full.npy", np.ones((3, 2), np.float32))
    data = (tmp_path / "src" / "full.npy").read_bytes()
    (tmp_path / "src" / "cut.npy").write_bytes(data[:-16])  # 2 of the 6 float32 values
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out"),
                                   "--feature", "text=cut.npy"])
    assert one_error_line(res) == (f"error: {tmp_path / 'src' / 'cut.npy'}: truncated: {len(data) - 16} of {len(data)} "
                                   "bytes (the header's shape (3, 2), dtype float32): re-save it")
    assert not (tmp_path / "out").exists()
    (tmp_path / "src" / "head.npy").write_bytes(data[:20])  # inside the header
    with pytest.raises(DataError, match=r"head\.npy: the \.npy header is damaged \(.*\): re-save it$"):
        read_mmrec(tmp_path / "src", features={"text": "head.npy"})


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
    with pytest.raises(DataError, match=r"d\.inter line 3: item '1' appears in valid but never in train \(1 such interaction\)"):
        read_mmrec(f)


# ---------------------------------------------------------------- writing (write_mmrec)
BACK = {"image": "image_feat.npy", "text": "text_feat.npy"}


def tiny(**changes) -> Dataset:
    """3 users x 4 items with original ids; user '"q' and item 'i2' have no interactions
    in any split; item 'i3' (the last) only in valid/test; timestamps (integral and
    fractional), image (2-d) and text (3-d) features."""
    ds = build_dataset(
        ["ub", "ub", "ua", "ua", "ub", "ua"],
        ["i1", "i0", "i0", "i1", "i3", "i3"],
        ["train", "train", "train", "valid", "valid", "test"],
        timestamps=[5, 7.25, 1, 2, 3e10, 0.1],
        user_ids=["ua", '"q', "ub"],
        item_ids=["i0", "i1", "i2", "i3"],
        item_features={
            "image": np.arange(8, dtype=np.float32).reshape(4, 2) / 3,
            "text": -np.arange(12, dtype=np.float32).reshape(4, 3),
        },
        name="tiny",
        unseen="keep",
    )
    return ds.replace(**changes) if changes else ds


def test_write_tiny_inter_and_maps_line_by_line(tmp_path: Path) -> None:
    out = write_mmrec(tiny(), tmp_path / "tiny")
    assert sorted(p.name for p in out.iterdir()) == [
        "i_id_mapping.csv", "image_feat.npy", "text_feat.npy", "tiny.inter", "u_id_mapping.csv"
    ]
    # users: ua=0, "q=1, ub=2; items: i0..i3 = 0..3; train, valid, test, each by user then item
    assert (out / "tiny.inter").read_text().split("\n") == [
        "userID\titemID\trating\ttimestamp\tx_label",
        "0\t0\t1\t1\t0",
        "2\t0\t1\t7.25\t0",
        "2\t1\t1\t5\t0",
        "0\t1\t1\t2\t1",
        "2\t3\t1\t30000000000\t1",
        "0\t3\t1\t0.1\t2",
        "",
    ]
    assert (out / "u_id_mapping.csv").read_text().split("\n") == [
        "user_id\tuserID", "ua\t0", '"""q"\t1', "ub\t2", ""
    ]
    assert (out / "i_id_mapping.csv").read_text().split("\n") == [
        "asin\titemID", "i0\t0", "i1\t1", "i2\t2", "i3\t3", ""
    ]
    img = np.load(out / "image_feat.npy", allow_pickle=False)
    assert img.dtype == np.float32 and img.shape == (4, 2)
    np.testing.assert_array_equal(img, tiny().item_features["image"])
    np.testing.assert_array_equal(np.load(out / "text_feat.npy"), tiny().item_features["text"])


def test_write_without_timestamps_has_the_plain_header(tmp_path: Path) -> None:
    out = write_mmrec(tiny(timestamps=None), tmp_path / "tiny")
    lines = (out / "tiny.inter").read_text().split("\n")
    assert lines[:3] == ["userID\titemID\trating\tx_label", "0\t0\t1\t0", "2\t0\t1\t0"]
    assert lines[-2] == "0\t3\t1\t2"


def test_tiny_round_trip_same_fingerprint(tmp_path: Path) -> None:
    ds = tiny()
    write_mmrec(ds, tmp_path / "tiny")
    back = read_mmrec(tmp_path / "tiny", features=BACK, unseen="keep")
    assert back.fingerprint() == ds.fingerprint()
    assert list(back.user_ids) == ["ua", '"q', "ub"] and list(back.item_ids) == ["i0", "i1", "i2", "i3"]
    for s in ("train", "valid", "test"):
        assert (back.splits[s] != ds.splits[s]).nnz == 0
        np.testing.assert_array_equal(back.timestamps[s], ds.timestamps[s])
    for m in ("image", "text"):
        np.testing.assert_array_equal(back.item_features[m], ds.item_features[m])
    assert back.meta["id_maps"] == ["u_id_mapping.csv", "i_id_mapping.csv"]
    # item 'i3' is only in valid/test: the default unseen="error" says so, as for the original
    with pytest.raises(DataError, match=r"tiny\.inter line 6: item 'i3' appears in valid but never in train"):
        read_mmrec(tmp_path / "tiny", features=BACK)


def test_synthetic_round_trip_through_save_and_load(tmp_path: Path) -> None:
    ds = synthetic_catalogue(n_users=80, n_items=50, n_clusters=4, seed=3).replace(item_fields={})
    ds.save(tmp_path / "graphrec")
    write_mmrec(Dataset.load(tmp_path / "graphrec"), tmp_path / "synthetic")
    back = read_mmrec(tmp_path / "synthetic" / "synthetic.inter", features=BACK)
    assert back.fingerprint() == ds.fingerprint() and back.name == "synthetic"
    for s in ("train", "valid", "test"):
        assert back.splits[s].nnz == ds.splits[s].nnz > 0


def test_lfm2k_export_is_mmrecs_own_file_and_reads_back(lfm2k: Dataset, shared_data: Path, tmp_path: Path) -> None:
    ds = lfm2k.replace(item_features={"text": lfm2k.item_features["text"], "image": lfm2k.item_features["audio"]})
    out = write_mmrec(ds, tmp_path / "lfm2k")
    written = (out / "lfm2k.inter").read_text().splitlines()
    original = (shared_data / "lfm2k" / "lfm2k.inter").read_text().splitlines()
    assert written[0] == original[0] == "userID\titemID\trating\tx_label"
    assert sorted(written[1:]) == sorted(original[1:])  # the same rows (ids are 0..n-1 there too)
    back = read_mmrec(out, features=BACK)
    assert back.fingerprint() == ds.fingerprint()
    np.testing.assert_array_equal(np.load(out / "image_feat.npy"), lfm2k.item_features["audio"])


def test_slots_defaults_and_choices() -> None:
    ds = tiny()
    assert mmrec_slots(ds) == {"image": "image", "text": "text"}
    assert mmrec_slots(ds, image="text", text="image") == {"image": "text", "text": "image"}
    three = ds.replace(item_features=dict(ds.item_features, audio=ds.item_features["image"]))
    assert mmrec_slots(three) == {"image": "image", "text": "text"}  # audio is left out
    assert mmrec_slots(three, image="audio") == {"image": "audio", "text": "text"}
    only_text = ds.replace(item_features={"text": ds.item_features["text"]})
    assert mmrec_slots(only_text) == {"text": "text"}
    assert mmrec_slots(ds.replace(item_features={})) == {}
    audio = ds.replace(item_features={"audio": ds.item_features["image"]})
    assert mmrec_slots(audio, text="audio") == {"text": "audio"}


@pytest.mark.parametrize(
    "changes, kwargs, message",
    [
        ({}, {"image": "audio"}, r"image='audio' \(CLI: --image\): dataset 'tiny' has no modality 'audio' \(it has: image, text\)"),
        ({}, {"image": "text", "text": "text"}, r"both name modality 'text'"),
        ({"item_features": {"audio": np.ones((4, 2), np.float32)}}, {},
         r"no modality named 'image' for MMRec's image_feat\.npy and 'audio' would not be written .*--image MODALITY"),
        ({}, {"name": "other"}, r"dataset name 'other' differs from the folder name 'tiny'.*--name tiny"),
        ({"splits": {"train": tiny().train, "test": tiny().test}, "timestamps": None}, {},
         r"dataset 'tiny' has no valid split: MMRec .* needs all three"),
        ({"splits": dict(tiny().splits, test=sp.csr_matrix((3, 4), dtype=np.float32)), "timestamps": None}, {},
         r"dataset 'tiny' has an empty test split"),
        ({"user_ids": np.array(["ua", "q\tq", "ub"])}, {}, r"user id 'q\\tq' contains a tab"),
    ],
)
def test_write_errors_write_nothing(tmp_path: Path, changes: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as e:
        write_mmrec(tiny(**changes), tmp_path / "tiny", **kwargs)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_a_last_item_without_interactions(tmp_path: Path) -> None:
    ds = tiny(timestamps=None)
    ds = ds.replace(
        item_ids=np.array(["i0", "i1", "i2", "i3", "i4"]),
        splits={s: sp.hstack([m, sp.csr_matrix((3, 1))]).tocsr() for s, m in ds.splits.items()},
        item_features={m: np.vstack([x, np.zeros((1, x.shape[1]), np.float32)]) for m, x in ds.item_features.items()},
    )
    with pytest.raises(DataError, match=r"item 'i4' \(index 4, the last\) has no interactions: MMRec counts "
                       r"max\(itemID\) \+ 1 = 4 items but the dataset has 5 .*: pass drop_trailing_items=True "
                       r"\(CLI: --drop-trailing-items\) to leave the 1 trailing item without interactions out"):
        write_mmrec(ds, tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []
    # drop_trailing_items: the first 4 items, written as the dataset without item 'i4'
    write_mmrec(ds, tmp_path / "tiny", drop_trailing_items=True)
    back = read_mmrec(tmp_path / "tiny", features={m: f"{m}_feat.npy" for m in ds.item_features}, unseen="keep")
    assert back.item_ids.tolist() == ["i0", "i1", "i2", "i3"] and back.user_ids.tolist() == ds.user_ids.tolist()
    for s, m in ds.splits.items():
        assert (back.splits[s] != m[:, :4]).nnz == 0
    for m, x in ds.item_features.items():
        np.testing.assert_array_equal(back.item_features[m], x[:4])


def test_write_refuses_an_existing_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="already exists"):
        write_mmrec(tiny(), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(DataError, match="holds no .inter file"):  # overwrite replaces an earlier export only
        write_mmrec(tiny(), out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    out.rmdir()
    write_mmrec(tiny(), out)
    (out / "keep.txt").write_text("x")
    write_mmrec(tiny(), out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "tiny.inter").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no temporary left


# ---------------------------------------------------------------- reading id maps
def test_reads_mmrec_preprocessing_maps(tmp_path: Path) -> None:
    """The layout MMRec's 0rating2inter notebook writes with pandas (quoted cells too)."""
    write(tmp_path / "d" / "d.inter", GOOD)
    write(tmp_path / "d" / "u_id_mapping.csv", 'user_id\tuserID\nA2\t1\n"say ""hi"""\t0\n')
    write(tmp_path / "d" / "i_id_mapping.csv", "asin\titemID\nB0\t0\nB1\t1\nB2\t2\nB3\t3\n")
    ds = read_mmrec(tmp_path / "d")
    assert list(ds.user_ids) == ['say "hi"', "A2"] and list(ds.item_ids) == ["B0", "B1", "B2", "B3"]
    assert ds.train[0].indices.tolist() == [0, 1, 2] and ds.test[1].indices.tolist() == [0]


@pytest.mark.parametrize(
    "umap, imap, message",
    [
        ("user_id\tuserID\nA\t0\n", None, r"d\.inter line 4: userID 1 is not in u_id_mapping\.csv \(indices 0\.\.0\)"),
        (None, "asin\titemID\nB0\t0\nB1\t1\n", r"d\.inter line 6: itemID 2 is not in i_id_mapping\.csv"),
        (None, "asin\titemID\tx\nB0\t0\t1\n", r"i_id_mapping\.csv line 1: header .* is not an MMRec id map"),
        ("user_id\tuserID\nA\t0\nA\t1\n", None, r"u_id_mapping\.csv line 3: user 'A' is listed twice"),
        ("user_id\tuserID\nA\t0\nB\t2\n", None, r"u_id_mapping\.csv: user 'B' maps to index 2, outside 0\.\.1"),
        ("user_id\tuserID\nA\t0\nB\t1\n", None, None),
    ],
)
def test_id_map_errors(tmp_path: Path, umap: str | None, imap: str | None, message: str | None) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    if umap is not None:
        write(tmp_path / "u_id_mapping.csv", umap)
    if imap is not None:
        write(tmp_path / "i_id_mapping.csv", imap)
    if message is None:
        assert list(read_mmrec(f).user_ids) == ["A", "B"]
        return
    with pytest.raises(DataError, match=message) as e:
        read_mmrec(f)
    assert "\n" not in str(e.value)


def test_item_map_and_feature_rows_must_agree(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    write(tmp_path / "i_id_mapping.csv", "asin\titemID\nB0\t0\nB1\t1\nB2\t2\nB3\t3\n")
    np.save(tmp_path / "img.npy", np.ones((3, 2), np.float32))
    with pytest.raises(DataError, match=r"img\.npy: modality 'image' has 3 rows but the dataset has 4 items"):
        read_mmrec(f, features={"image": "img.npy"})


# a given split with an empty part: x_label has train and test rows, no validation rows
NO_VALID = "userID\titemID\trating\tx_label\n" + "".join(
    f"{u}\t{i}\t1\t{2 if i == u % 5 else 0}\n" for u in range(6) for i in range(5)
)


def test_given_split_without_validation_rows_is_an_error_not_a_silent_resplit(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    write(tmp_path / "src" / "src.inter", NO_VALID)
    runner = CliRunner()
    res = runner.invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    line = lines[0]
    assert str(tmp_path / "src" / "src.inter") in line  # the file
    assert "no valid interactions (x_label 1)" in line and "6 test ones" in line  # the empty part
    assert "--split random" in line  # the fix
    assert not (tmp_path / "out").exists()
    # --split keep refuses it too; re-splitting is there when asked for
    res = runner.invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out"),
                              "--split", "keep"])
    assert res.exit_code == 1 and "no valid interactions" in res.output
    res = runner.invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out"),
                              "--split", "random"])
    assert res.exit_code == 0, res.output
    assert "split: random(seed=0)" in res.output
    ds = Dataset.load(tmp_path / "out")
    assert ds.valid.nnz > 0 and "random" in ds.meta["split"]


@pytest.mark.parametrize("rows, message", [
    ("0\t2\t1\n1\t2\t2\n",
     "the given valid and test splits are empty (1 of 1 valid rows dropped and 1 of 1 test rows dropped"),
    ("0\t3\t0\n0\t2\t1\n1\t3\t2\n", "the given valid split is empty (1 of 1 valid rows dropped"),
])
def test_unseen_drop_that_empties_a_given_split_is_an_error(tmp_path: Path, rows: str, message: str) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    # item 2 is never in train: --unseen drop removes its valid/test rows
    write(tmp_path / "src" / "src.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n1\t0\t0\n1\t1\t0\n" + rows)
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out"),
                                   "--unseen", "drop"])
    assert res.exit_code == 1, res.output
    lines = [l for l in res.output.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'src' / 'src.inter'}: after --unseen drop "), lines
    assert message in lines[0] and lines[0].endswith("use --unseen keep to keep them, or re-split all interactions "
                                                     "on purpose with --split random")
    assert not (tmp_path / "out").exists()


def test_prepare_notes_pairs_listed_in_more_than_one_split(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    # (0, 1) is in train and test: MMRec keeps it in both, and so does graphrec, with a note
    write(tmp_path / "src" / "src.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n1\t0\t0\n1\t1\t0\n"
          "0\t0\t1\n1\t1\t1\n0\t1\t2\n1\t0\t2\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert ("note: 4 (user, item) pairs appear in more than one split (2 in train and valid, 2 in train and test): "
            "kept in each, as MMRec/RecBole read them; the recbole protocol ranks a repeated pair in its later "
            "split, where it can be a hit (as RecBole); --protocol mmrec masks the ones also in train (as MMRec)"
            ) in res.output
    ds = Dataset.load(tmp_path / "out")
    assert (ds.train.nnz, ds.valid.nnz, ds.test.nnz) == (4, 2, 2)
    write(tmp_path / "one" / "one.inter", "userID\titemID\tx_label\n0\t0\t0\n0\t1\t0\n0\t3\t0\n1\t0\t0\n1\t2\t0\n"
          "0\t2\t1\n1\t1\t1\n0\t1\t2\n1\t3\t2\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "one"), str(tmp_path / "out1")])
    assert "note: 1 (user, item) pair appears in more than one split (1 in train and test): kept in each, " \
        "as MMRec/RecBole read it;" in res.output
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "src"), str(tmp_path / "out2"),
                                   "--split", "random"])
    assert res.exit_code == 0 and "note:" not in res.output  # a re-split holds each pair once


def test_features_must_be_a_mapping(shared_data: Path) -> None:
    from graphrec.errors import ConfigError

    with pytest.raises(ConfigError, match="features must map modalities to .npy files, e.g. .'image': 'image_feat.npy'."):
        read_mmrec(shared_data / "lfm2k", features=["vggish.npy"])


def test_overwrite_replaces_an_earlier_export_only(tmp_path: Path) -> None:
    from graphrec.data.formats import write_recbole

    ds = synthetic_catalogue(n_users=20, n_items=10, n_clusters=2, seed=0)
    source = ds.save(tmp_path / "synthetic")
    for write in (write_mmrec, write_recbole):
        with pytest.raises(DataError, match="holds no .inter file, so it is no earlier export"):
            write(ds, source, "synthetic", overwrite=True)
        assert (source / "dataset.json").is_file()


@pytest.mark.parametrize("mod", ["../../escaped", "/tmp/absolute", "a/b", ".hidden", "", "-x", "a b"])
def test_a_modality_name_that_is_no_plain_file_name_is_refused(tmp_path: Path, mod: str) -> None:
    # modality names become features/NAME.npy: '../../escaped' wrote outside OUT
    from typer.testing import CliRunner

    from graphrec.cli import app

    write(tmp_path / "w" / "src" / "src.inter", GOOD)
    np.save(tmp_path / "w" / "src" / "a.npy", np.ones((3, 2), np.float32))
    out = tmp_path / "w" / "out"
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(tmp_path / "w" / "src"), str(out),
                                   "--feature", f"{mod}=a.npy"])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    if mod:
        assert lines == [f"error: --feature '{mod}=a.npy': modality name {mod!r} is not allowed: a modality name is "
                         "also a file name (features/NAME.npy), so it must be 1 to 100 letters, digits, '_', '.' or "
                         "'-', not starting with '.' or '-': rename it"]
    else:
        assert len(lines) == 1 and "MODALITY=FILE" in lines[0]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["src"] and not list(tmp_path.glob("*.npy"))
    if mod:
        with pytest.raises(ConfigError, match=r"modality name .* is not allowed"):
            read_mmrec(tmp_path / "w" / "src", features={mod: "a.npy"})


def test_plain_modality_names_are_accepted(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    np.save(tmp_path / "a.npy", np.ones((3, 2), np.float32))
    ds = read_mmrec(f, features={"clip_vit-b.32": "a.npy", "_2": "a.npy"})
    ds.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "features").iterdir()) == ["_2.npy", "clip_vit-b.32.npy"]


def test_user_ids_are_stripped_like_mmrec_reads_them(tmp_path: Path) -> None:
    # ' 1', '1 ' and '1' were three users; MMRec's pandas reader has one
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n 1\t0\t0\n1 \t1\t0\n1\t2\t0\n 2 \t0\t0\n")
    ds = read_mmrec(f)
    assert list(ds.user_ids) == ["1", "2"] and ds.train[0].indices.tolist() == [0, 1, 2]
    f = write(tmp_path / "e.inter", "userID\titemID\tx_label\n1\t0\t0\n  \t1\t0\n")
    with pytest.raises(DataError, match=r"e\.inter line 3: userID is empty: give every row its user"):
        read_mmrec(f)


@pytest.mark.parametrize("cell", ["1_0", "+3", "1.0", "\u0663"])
def test_loose_integer_cells_are_refused(tmp_path: Path, cell: str) -> None:
    # int() reads '1_0' as 10, '+3' as 3 and the Arabic-Indic digit as 3
    f = write(tmp_path / "d.inter", f"userID\titemID\tx_label\n0\t0\t0\n0\t{cell}\t0\n")
    with pytest.raises(DataError, match=rf"d\.inter line 3: itemID {re.escape(repr(cell))} is not an integer index: itemID must be a "
                       r"whole number below 2\*\*63, written with the digits 0-9 \(no '\+', '_' or decimal point\)"):
        read_mmrec(f)
    f = write(tmp_path / "e.inter", f"userID\titemID\tx_label\n0\t 1 \t0\n0\t0\t{cell}\n")
    with pytest.raises(DataError, match=r"e\.inter line 3: x_label .* is not a split label"):
        read_mmrec(f)


@pytest.mark.parametrize("first", ["0\t0\t1\t0", "0\t1\t5\t2"])
def test_a_missing_header_is_named(tmp_path: Path, first: str) -> None:
    # a repeated value used to read as "column '0' appears twice in the header"
    f = write(tmp_path / "d.inter", f"{first}\n0\t1\t1\t0\n")
    with pytest.raises(DataError, match=r"d\.inter line 1: the header is missing: line 1 \[.*\] looks like a data row, "
                       r"not column names"):
        read_mmrec(f)


def test_feature_files_that_are_not_npy_say_what_they_are(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    (tmp_path / "t.npy").write_text("1 2\n3 4\n5 6\n")
    np.savez(tmp_path / "z.npz", a=np.ones((3, 2)))
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"t\.npy: not a \.npy file \(it does not start with numpy's magic bytes; a text "
                       r"file\?\): save the features as one items x dim matrix with numpy\.save$"):
        read_mmrec(f, features={"image": "t.npy"})
    with pytest.raises(DataError, match=r"z\.npz: a \.npz archive \(numpy\.savez\), not a \.npy array: save"):
        read_mmrec(f, features={"image": "z.npz"})
    with pytest.raises(DataError, match=r"e\.npy: empty \(0 bytes\), not a \.npy array"):
        read_mmrec(f, features={"image": "e.npy"})


@pytest.mark.parametrize("text", [GOOD + "\n\n", GOOD.replace("0\t1\t1\t0\n", "0\t1\t1\t0\n\n \n", 1)])
def test_blank_lines_are_skipped_as_mmrec_skips_them(tmp_path: Path, text: str) -> None:
    f = write(tmp_path / "d.inter", text)
    ds = read_mmrec(f)
    assert ds.train.nnz == 4 and ds.valid.nnz == 1 and ds.test.nnz == 1


def test_a_bad_row_after_a_blank_line_is_named_by_its_file_line(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", "userID\titemID\tx_label\n0\t0\t0\n\n0\tB00X\t0\n")
    with pytest.raises(DataError, match=r"d\.inter line 4: itemID 'B00X' is not an integer index"):
        read_mmrec(f)


@pytest.mark.parametrize("sep, shown", [(",", "comma"), (" ", "space"), (";", "semicolon")])
def test_a_file_not_tab_separated_is_named_so(tmp_path: Path, sep: str, shown: str) -> None:
    f = write(tmp_path / "d.inter", GOOD.replace("\t", sep))
    with pytest.raises(DataError, match=rf"^.*d\.inter line 1: the file is not tab-separated \(its header looks "
                       rf"{shown}-separated: 'userID{sep}itemID{sep}rating{sep}x_label'\): MMRec \.inter files are TSV, "
                       r"separate the columns with tabs"):
        read_mmrec(f)
    write(tmp_path / "d.inter", GOOD)
    write(tmp_path / "i_id_mapping.csv", f"asin{sep}itemID\na{sep}0\nb{sep}1\nc{sep}2\n")
    with pytest.raises(DataError, match=rf"i_id_mapping\.csv line 1: the file is not tab-separated .*MMRec id maps are "
                       r"TSV, separate the columns with tabs \(e\.g\. asin<TAB>itemID\)"):
        read_mmrec(f)


@pytest.mark.parametrize("na", ["NA", "null", "nan", "None"])
def test_user_ids_pandas_reads_as_missing_are_refused(tmp_path: Path, na: str) -> None:
    f = write(tmp_path / "d.inter", GOOD.replace("1\t1\t1\t0\n", f"{na}\t1\t1\t0\n"))
    with pytest.raises(DataError, match=rf"d\.inter line 4: userID {na!r} is read as a missing value by MMRec \(pandas "
                       rf"takes {na!r} for NaN\), so MMRec would not see this user: rename the user id"):
        read_mmrec(f)


def test_duplicate_pairs_in_a_split_are_merged_counted_and_noted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    f = write(tmp_path / "d" / "d.inter", GOOD + "0\t0\t1\t0\n1\t0\t1\t2\n1\t0\t1\t0\n")  # 2 repeats; (1, 0) also in train
    ds = read_mmrec(f)
    assert ds.train.nnz == 5 and ds.test.nnz == 1
    assert ds.meta["duplicate_rows"] == {str(f): 2}
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(f.parent), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (f"note: 2 duplicate rows of {f} merged (a (user, item) pair listed again in the same split is one "
            "interaction)") in res.stderr.splitlines()  # this file has no timestamps: no 'latest timestamp'
    assert "duplicate_rows" not in read_mmrec(write(tmp_path / "e.inter", GOOD)).meta


def test_boolean_features_are_read_as_zero_one_float32(tmp_path: Path) -> None:
    f = write(tmp_path / "d.inter", GOOD)
    x = np.array([[True, False], [False, False], [True, True]])
    np.save(tmp_path / "img.npy", x)
    ds = read_mmrec(f, features={"image": "img.npy"})
    assert ds.item_features["image"].dtype == np.float32
    np.testing.assert_array_equal(ds.item_features["image"], x.astype(np.float32))


def test_prepare_notes_items_without_interactions_and_what_export_mmrec_needs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    f = write(tmp_path / "d" / "d.inter", GOOD)  # items 0..2 interact
    np.save(tmp_path / "d" / "img.npy", np.ones((5, 2), np.float32))  # 2 feature rows beyond them
    args = ["prepare", "--format", "mmrec", str(f.parent), "--feature", "image=img.npy"]
    res = CliRunner().invoke(app, [*args, str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (f"note: 2 of 5 items have no interactions in {f} (feature rows, id-map entries or itemIDs that no row "
            "uses): they are kept as items, ranked but never a target; MMRec counts max(itemID) + 1 items, so "
            "export-mmrec needs --drop-trailing-items to leave out the last 2 (or keep only the first 3 rows of the "
            "feature files and of i_id_mapping.csv, and prepare again)") in res.stderr.splitlines()
    # a gap in the itemIDs (no features): kept, and export-mmrec takes it, so no export advice
    g = write(tmp_path / "g" / "g.inter", GOOD.replace("0\t2\t1\t0\n", "0\t4\t1\t0\n").replace("1\t2\t1\t1\n", "1\t4\t1\t1\n"))
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(g.parent), str(tmp_path / "out2")])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: 2 of 5 items have no interactions in {g} (feature rows, id-map entries or itemIDs that no "
                     "row uses): they are kept as items, ranked but never a target"]
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(write(tmp_path / "h" / "h.inter", GOOD).parent),
                                   str(tmp_path / "out3")])
    assert res.exit_code == 0 and "note:" not in res.stderr


def test_prepare_notes_feature_files_it_was_not_asked_to_read(tmp_path: Path) -> None:
    """An MMRec folder with MMRec's own image_feat.npy / text_feat.npy prepared without
    --feature gave a dataset without features and no word of it: a note names the files
    and the flags that read them (MMRec's names give their modality); none when a
    --feature is given or the folder holds no .npy file."""
    from typer.testing import CliRunner

    from graphrec.cli import app

    f = write(tmp_path / "d" / "d.inter", GOOD)
    for m in ("image", "text"):
        np.save(tmp_path / "d" / f"{m}_feat.npy", np.ones((3, 2), np.float32))
    np.save(tmp_path / "d" / "user_graph_dict.npy", np.array({0: [[], []]}, dtype=object), allow_pickle=True)
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(f.parent), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: {f.parent} holds image_feat.npy, text_feat.npy but no --feature was given: the dataset "
                     "has no item features, which the multimodal models need; to read them, pass --feature "
                     "image=image_feat.npy --feature text=text_feat.npy"]
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(f.parent), str(tmp_path / "out2"),
                                   "--feature", "image=image_feat.npy"])
    assert res.exit_code == 0 and "note:" not in res.stderr
    np.save(tmp_path / "d" / "vggish.npy", np.ones((3, 2), np.float32))
    (tmp_path / "d" / "image_feat.npy").unlink()
    (tmp_path / "d" / "text_feat.npy").unlink()
    res = CliRunner().invoke(app, ["prepare", "--format", "mmrec", str(f), str(tmp_path / "out3")])
    assert res.exit_code == 0, res.output
    # no guess at the modality: lfm2k's all-MiniLM-L6-v2.npy was offered as "audio"
    assert ("pass --feature MODALITY=FILE for each (e.g. --feature MODALITY=vggish.npy), MODALITY naming what the file "
            "holds: image, text, audio, ..." in res.stderr)


@pytest.mark.parametrize("files, hint", [
    (("train.json", "val.json", "test.json"), "it holds LATTICE's train.json, val.json and test.json: use --format lattice"),
    (("Sci.train.inter", "Sci.valid.inter", "Sci.test.inter"), "it holds UniSRec's NAME.train.inter: use --format unisrec"),
    (("ratings.csv",), "it holds MovieLens ratings (ratings.csv): use --format movielens"),
])
def test_another_formats_folder_names_its_format(tmp_path, files, hint):
    """`prepare --format mmrec` of amazon-baby (LATTICE's files) said only 'no *.inter file
    found'; of amazon-scientific (UniSRec's) it took the split files for three datasets."""
    for f in files:
        (tmp_path / f).write_text("x\n")
    with pytest.raises(DataError) as e:
        read_mmrec(tmp_path)
    assert str(e.value).startswith(f"{tmp_path}: ") and str(e.value).endswith(f"this is not an MMRec directory; {hint}")


def test_user_graph_dict_is_mmrecs_layout_largest_first_ties_by_index_capped():
    """MMRec's DRAGON reads ``{u: [neighbours, weights]}``, each user's neighbours by
    weight, largest first (at most 200): here by hand on 4 users, cap 2."""
    g = sp.csr_matrix(np.array([[0, 1, 3, 1],
                                [1, 0, 0, 0],
                                [3, 0, 0, 2],
                                [1, 0, 2, 0]], dtype=np.float32))
    assert user_graph_dict(g, max_neighbours=2) == {
        0: [[2, 1], [3.0, 1.0]],  # 1 and 3 tie at 1: the lower index first, then cut at 2
        1: [[0], [1.0]],
        2: [[0, 3], [3.0, 2.0]],
        3: [[2, 0], [2.0, 1.0]],
    }
    # users past the graph's rows (MMRec counts max(userID) + 1) have no neighbours
    assert user_graph_dict(sp.csr_matrix((1, 1), dtype=np.float32), n_users=2) == {0: [[], []], 1: [[], []]}
