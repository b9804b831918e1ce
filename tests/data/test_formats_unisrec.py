"""UniSRec importer: real amazon-scientific files and bad-input cases on tiny folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.data.dataset import Dataset
from graphrec.data.formats import read_unisrec
from graphrec.errors import ConfigError, DataError

HEAD = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.fixture(scope="module")
def sci(shared_data: Path) -> Dataset:
    # 5 items occur only as valid/test targets: keep them (they have features).
    return read_unisrec(shared_data / "amazon-scientific", unseen="keep")


def _index_map(path: Path) -> dict[str, int]:
    return {a: int(b) for a, b in (ln.split("\t") for ln in path.read_text().splitlines())}


def test_scientific_counts(sci: Dataset) -> None:
    assert sci.name == "Scientific"
    assert (sci.n_users, sci.n_items) == (2928, 1585)
    counts = {s: m.nnz for s, m in sci.splits.items()}
    assert sum(counts.values()) == 19568
    # earliest split wins: 26 valid and 25 test targets were already bought earlier
    assert counts == {"train": 13763, "valid": 2928 - 26, "test": 2928 - 25}
    assert sci.timestamps is None


def test_scientific_splits_disjoint(sci: Dataset) -> None:
    tr, va, te = sci.train, sci.valid, sci.test
    assert tr.multiply(va).nnz == 0 and tr.multiply(te).nnz == 0 and va.multiply(te).nnz == 0


def test_scientific_ids_kept(sci: Dataset, shared_data: Path) -> None:
    root = shared_data / "amazon-scientific"
    items = _index_map(root / "Scientific.item2index")
    users = _index_map(root / "Scientific.user2index")
    inv_i = {v: k for k, v in items.items()}
    inv_u = {v: k for k, v in users.items()}
    assert sci.item_ids[0] == inv_i[0] and sci.item_ids[1584] == inv_i[1584]
    assert sci.user_ids[0] == inv_u[0] and sci.user_ids[2927] == inv_u[2927]
    # user 0: history "0 1 2" in valid -> target 3; test target 4
    assert sci.train[0].indices.tolist() == [0, 1, 2]
    assert sci.valid[0].indices.tolist() == [3] and sci.test[0].indices.tolist() == [4]


def test_scientific_features_aligned(sci: Dataset, shared_data: Path) -> None:
    root = shared_data / "amazon-scientific"
    for mod, suffix in (("text", "feat1CLS"), ("image", "feat3CLS")):
        raw = np.fromfile(root / f"Scientific.{suffix}", dtype=np.float32).reshape(-1, 512)
        x = sci.item_features[mod]
        assert x.shape == (1585, 512) and x.dtype == np.float32
        for i in (0, 17, 1584):
            np.testing.assert_array_equal(x[i], raw[i])


def test_scientific_text_by_asin(sci: Dataset, shared_data: Path) -> None:
    lines = (shared_data / "amazon-scientific" / "Scientific.text").read_text().split("\n")[1:]
    text = dict(ln.split("\t", 1) for ln in lines if ln)
    assert (sci.item_fields["text"] != "").all()
    for i in (0, 500, 1584):
        assert sci.item_fields["text"][i] == text[sci.item_ids[i]]


def test_scientific_unseen_error(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"Scientific\.valid\.inter line \d+: item 'B0\w+' appears in valid but never in train"):
        read_unisrec(shared_data / "amazon-scientific")


def test_scientific_save_load(sci: Dataset, tmp_path: Path) -> None:
    sci.save(tmp_path / "ds")
    assert Dataset.load(tmp_path / "ds").fingerprint() == sci.fingerprint()


def test_explicit_features_and_dim(shared_data: Path) -> None:
    ds = read_unisrec(shared_data / "amazon-scientific", features={"image": "feat3CLS"}, dim=512, unseen="drop")
    assert list(ds.item_features) == ["image"]
    with pytest.raises(DataError, match=r"Scientific\.feat3CLS: 3246080 bytes, expected .* 500 float32"):
        read_unisrec(shared_data / "amazon-scientific", features={"image": "feat3CLS"}, dim=500, unseen="keep")


# ---------------------------------------------------------------- tiny folders
def make(root: Path, train: str | None = None, valid: str | None = None, test: str | None = None, maps: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "x.train.inter": HEAD + "0\t0\t1\n0\t0 1\t2\n1\t1\t0\n" if train is None else train,
        "x.valid.inter": HEAD + "0\t0 1 2\t3\n1\t1 0\t2\n" if valid is None else valid,
        "x.test.inter": HEAD + "0\t0 1 2 3\t1\n1\t1 0 2\t3\n" if test is None else test,
    }
    if maps:
        files["x.item2index"] = "A\t0\nB\t1\nC\t2\nD\t3\n"
        files["x.user2index"] = "u0\t0\nu1\t1\n"
    for fname, text in files.items():
        (root / fname).write_text(text)
    return root


def test_tiny_pair_rule_and_ids(tmp_path: Path) -> None:
    ds = read_unisrec(make(tmp_path / "t"), unseen="keep")
    assert ds.name == "x" and list(ds.item_ids) == ["A", "B", "C", "D"] and list(ds.user_ids) == ["u0", "u1"]
    assert ds.train[0].indices.tolist() == [0, 1, 2] and ds.train[1].indices.tolist() == [0, 1]
    assert ds.valid[0].indices.tolist() == [3] and ds.valid[1].indices.tolist() == [2]
    # user 0's test target B (1) is a repeat of a train item -> stays in train only
    assert ds.test[0].indices.tolist() == [] and ds.test[1].indices.tolist() == [3]
    assert ds.item_features == {}


def test_tiny_without_maps(tmp_path: Path) -> None:
    ds = read_unisrec(make(tmp_path / "t", maps=False), unseen="keep")
    assert list(ds.item_ids) == ["0", "1", "2", "3"] and list(ds.user_ids) == ["0", "1"]


def test_tiny_features_and_text(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    feats = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    feats.tofile(root / "x.feat1CLS")
    (root / "x.text").write_text("item_id:token\ttext:token_seq\nC\tthird item \nZ\tunknown\nA\tfirst\n")
    ds = read_unisrec(root, unseen="keep")
    assert list(ds.item_features) == ["text"]
    np.testing.assert_array_equal(ds.item_features["text"][2], feats[2])
    assert ds.item_fields["text"].tolist() == ["first", "", "third item ", ""]


def test_missing_split_file(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    (root / "x.test.inter").unlink()
    with pytest.raises(DataError, match=r"x\.test\.inter: UniSRec test file not found"):
        read_unisrec(root)


def test_no_unisrec_files(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match=r"e: no \*\.train\.inter file found"):
        read_unisrec(tmp_path / "e")


def test_missing_header_column(tmp_path: Path) -> None:
    root = make(tmp_path / "t", valid="user_id:token\titem:token\n0\t3\n")
    with pytest.raises(DataError, match=r"x\.valid\.inter line 1: header has no 'item_id' column"):
        read_unisrec(root)


def test_empty_split_file(tmp_path: Path) -> None:
    root = make(tmp_path / "t", test=HEAD)
    with pytest.raises(DataError, match=r"x\.test\.inter: no data rows after the header"):
        read_unisrec(root)


def test_non_numeric_item(tmp_path: Path) -> None:
    root = make(tmp_path / "t", train=HEAD + "0\t0\t1\n0\t0 B\t2\n")
    with pytest.raises(DataError, match=r"x\.train\.inter line 3: item 'B' is not an integer index"):
        read_unisrec(root)


def test_item_index_outside_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t", test=HEAD + "0\t0 1 2 3\t9\n")
    with pytest.raises(DataError, match=r"x\.test\.inter line 2: item index 9 is outside .*x\.item2index"):
        read_unisrec(root)


def test_duplicate_in_index_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    (root / "x.item2index").write_text("A\t0\nB\t1\nA\t2\nD\t3\n")
    with pytest.raises(DataError, match=r"x\.item2index line 3: item 'A' is listed twice"):
        read_unisrec(root)


def test_feature_size_not_integral(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    np.ones(10, np.float32).tofile(root / "x.feat3CLS")
    with pytest.raises(DataError, match=r"x\.feat3CLS: 40 bytes \(10 float32 values, 2\.50 per item\) do not split "
                                        r"into 4 rows, one per item \(the 4 lines of .*x\.item2index\)") as e:
        read_unisrec(root, unseen="keep")
    assert "16 x dim bytes" in str(e.value) and "read_unisrec(" not in str(e.value)


@pytest.mark.parametrize("sep, name", [(",", "comma"), (";", "semicolon"), (" ", "space")])
def test_inter_file_with_another_separator_is_named(tmp_path: Path, sep: str, name: str) -> None:
    root = make(tmp_path / "t", valid=HEAD.replace("\t", sep) + "0" + sep + "0 1 2" + sep + "3\n")
    with pytest.raises(DataError, match=rf"x\.valid\.inter line 1: the file is not tab-separated \(its header "
                                        rf".* is {name}-separated\): UniSRec \.inter files are TSV"):
        read_unisrec(root, unseen="keep")


def test_missing_requested_feature(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    with pytest.raises(DataError, match=r"x\.clip: feature file for modality 'image' not found"):
        read_unisrec(root, features={"image": "clip"}, unseen="keep")


def test_feature_given_as_a_file_name_says_unisrec_takes_a_suffix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    root = make(tmp_path / "t")
    res = CliRunner().invoke(app, ["prepare", "--format", "unisrec", str(root), str(tmp_path / "out"),
                                   "--feature", "text=x.feat1CLS", "--unseen", "keep"])
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"error: {root / 'x.x.feat1CLS'}: feature file for modality 'text' not found: expected x.x.feat1CLS (raw "
        "float32): UniSRec features are given by file suffix, features={'text': SUFFIX} (CLI: --feature "
        "text=SUFFIX) reads x.SUFFIX, e.g. text=feat1CLS for x.feat1CLS"
    )
    res = CliRunner().invoke(app, ["prepare", "--help"], env={"COLUMNS": "400"})
    assert "unisrec: MODALITY=SUFFIX of the file NAME.SUFFIX, e.g. text=feat1CLS" in res.output


def test_nan_feature(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    x = np.ones((4, 3), np.float32)
    x[3, 1] = np.nan
    x.tofile(root / "x.feat1CLS")
    with pytest.raises(DataError, match=r"x\.feat1CLS: modality 'text' row 3 \(item 'D'\) contains NaN"):
        read_unisrec(root, unseen="keep")


def test_item_only_in_test(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    with pytest.raises(DataError, match=r"x\.valid\.inter line 2: item 'D' appears in valid but never in train"):
        read_unisrec(root)
    dropped = read_unisrec(root, unseen="drop")
    assert dropped.valid[0].indices.tolist() == [] and dropped.test[1].indices.tolist() == []


# ------------------------------------------------- feature shape without an item map
def test_features_without_item_map_refuse_an_ambiguous_shape(tmp_path: Path) -> None:
    # items 0..3 occur; 24 float32 values fit 4 x 6, 6 x 4, 8 x 3, ...: reading 4 x 6
    # when the file is 8 x 3 would misalign every row, so the shape must be stated
    root = make(tmp_path / "t", maps=False)
    np.arange(24, dtype=np.float32).tofile(root / "x.feat1CLS")
    with pytest.raises(DataError, match=r"x\.feat1CLS: the number of items is unknown, so its 24 float32 values "
                       r"have no single shape: without x\.item2index the items are only known to be at least 4 "
                       r"\(item index 3 at .*x\.valid\.inter line 2\) and 4 x 6 and 6 x 4 both fit: add "
                       r"x\.item2index .* or state the feature dimension with dim=D \(CLI: --feature-dim D\)$"):
        read_unisrec(root, unseen="keep")


def test_features_without_item_map_take_the_rows_from_dim(tmp_path: Path) -> None:
    root = make(tmp_path / "t", maps=False)
    feats = np.arange(24, dtype=np.float32).reshape(8, 3)
    feats.tofile(root / "x.feat1CLS")
    ds = read_unisrec(root, unseen="keep", dim=3)
    assert list(ds.item_ids) == [str(i) for i in range(8)]  # items 4..7: features, no interactions
    np.testing.assert_array_equal(ds.item_features["text"], feats)
    with pytest.raises(DataError, match=r"x\.feat1CLS: 2 rows of dim 12, but item index 3 \(.*\) needs 4"):
        read_unisrec(root, unseen="keep", dim=12)
    with pytest.raises(DataError, match=r"x\.feat1CLS: 24 float32 values are not rows of dim=5"):
        read_unisrec(root, unseen="keep", dim=5)
    with pytest.raises(ConfigError, match=r"dim=0 \(CLI: --feature-dim\) must be a whole number >= 1"):
        read_unisrec(root, unseen="keep", dim=0)


def test_features_without_item_map_and_a_single_fitting_shape(tmp_path: Path) -> None:
    root = make(tmp_path / "t", maps=False)
    np.arange(5, dtype=np.float32).tofile(root / "x.feat1CLS")  # only 5 x 1 has >= 4 rows
    ds = read_unisrec(root, unseen="keep")
    assert ds.item_features["text"].shape == (5, 1) and ds.n_items == 5


def test_feature_files_of_different_item_counts_without_item_map(tmp_path: Path) -> None:
    root = make(tmp_path / "t", maps=False)
    np.zeros(5 * 4, np.float32).tofile(root / "x.feat1CLS")
    np.ones(10 * 4, np.float32).tofile(root / "x.feat3CLS")
    with pytest.raises(DataError, match=r"x\.feat3CLS: 10 rows of dim 4 but .*x\.feat1CLS has 5: every feature "
                       "file needs one row per item"):
        read_unisrec(root, unseen="keep", dim=4)


def test_feature_dim_on_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    root = make(tmp_path / "t", maps=False)
    np.arange(24, dtype=np.float32).tofile(root / "x.feat1CLS")
    out = tmp_path / "out"
    args = ["prepare", "--format", "unisrec", str(root), str(out), "--unseen", "keep"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "--feature-dim D" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, args + ["--feature-dim", "3"])
    assert res.exit_code == 0, res.output
    assert Dataset.load(out).item_features["text"].shape == (8, 3)
    res = CliRunner().invoke(app, ["prepare", "--format", "lattice", str(root), str(tmp_path / "o2"),
                                   "--feature-dim", "3"])
    assert res.exit_code == 1 and "format 'lattice' does not take dim" in res.output


def test_empty_feature_file(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    (root / "x.feat1CLS").write_bytes(b"")
    with pytest.raises(DataError, match=r"x\.feat1CLS: empty file \(0 bytes\), so modality 'text' has no feature values"):
        read_unisrec(root, unseen="keep")


def test_modality_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "t")
    np.ones((4, 2), np.float32).tofile(root / "x.feat1CLS")
    with pytest.raises(ConfigError, match=r"features=\{'\.\./t': 'feat1CLS'\}: modality name '\.\./t' is not allowed"):
        read_unisrec(root, features={"../t": "feat1CLS"}, unseen="keep")


# ------------------------------------------- a given split that the pair rule empties
def test_a_given_split_emptied_by_repeats_is_refused_not_resplit(tmp_path: Path) -> None:
    from graphrec.data.splits import apply_split

    # every valid/test target is an item the user already has in train: earliest split
    # wins empties valid and test, which prepare used to re-split at random, silently
    # discarding the given split ("the source gives no valid/test split")
    root = make(tmp_path / "t", maps=False,
                valid=HEAD + "0\t0 1 2\t1\n1\t1 0\t0\n", test=HEAD + "0\t0 1 2\t2\n1\t1 0\t1\n")
    ds = read_unisrec(root)
    assert ds.meta["repeats_dropped"] == {"valid": [2, 2], "test": [2, 2]}
    assert "valid" not in ds.splits and "test" not in ds.splits  # as if the source gave no split
    for split in ("auto", "keep"):
        with pytest.raises(DataError, match=r": the given valid and test splits are empty after reading \(2 of 2 valid "
                           r"rows repeat a pair of an earlier split; 2 of 2 test rows repeat a pair of an earlier "
                           r"split\): .* re-split all interactions on purpose with --split random$"):
            apply_split(ds, split)
    assert apply_split(ds, "random").meta["split"] == "random(seed=0)"


def test_a_given_valid_split_emptied_by_repeats_and_unseen_drop(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    # valid: one repeat of a train pair, one row of an item never in train (dropped)
    root = make(tmp_path / "t", maps=False, valid=HEAD + "0\t0 1 2\t1\n1\t1 0\t5\n", test=HEAD + "1\t1 0\t2\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "unisrec", str(root), str(tmp_path / "out"),
                                   "--unseen", "drop"])
    assert res.exit_code == 1 and not (tmp_path / "out").exists()
    assert res.output.strip().splitlines() == [
        f"error: {root}: the given valid split is empty after reading (1 of 2 valid rows repeat a pair of an "
        "earlier split; 1 valid rows dropped by --unseen drop): a pair already in an earlier split is kept there "
        "only (earliest split wins), so nothing is left to evaluate on: give other valid/test targets, or "
        "re-split all interactions on purpose with --split random"]


def test_partial_repeats_keep_the_given_split(tmp_path: Path) -> None:
    from graphrec.data.splits import apply_split

    ds = read_unisrec(make(tmp_path / "t"), unseen="keep")  # user 0's test target repeats train
    assert ds.meta["repeats_dropped"] == {"test": [1, 2]}
    assert apply_split(ds, "auto") is ds


def test_item_indices_far_beyond_the_distinct_ones_are_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "t", maps=False, test=HEAD + "0\t0 1 2\t99999999999\n")
    with pytest.raises(DataError, match=r"x\.test\.inter line 2: item index 99999999999 would make 100,000,000,000 "
                       r"items .*: add x\.item2index"):
        read_unisrec(root, unseen="keep")


def test_loose_integer_indices_are_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "t", train=HEAD + "0\t0\t1\n0\t0 1_0\t2\n")
    with pytest.raises(DataError, match=r"x\.train\.inter line 3: item '1_0' is not an integer index"):
        read_unisrec(root)


def test_plain_header_names_read_like_the_typed_ones(tmp_path: Path) -> None:
    typed = read_unisrec(make(tmp_path / "a"), unseen="keep")
    plain = HEAD.replace(":token_seq", "").replace(":token", "")
    root = make(tmp_path / "b", train=plain + "0\t0\t1\n0\t0 1\t2\n1\t1\t0\n",
                valid=plain + "0\t0 1 2\t3\n1\t1 0\t2\n", test=plain + "0\t0 1 2 3\t1\n1\t1 0 2\t3\n")
    assert read_unisrec(root, unseen="keep").fingerprint() == typed.fingerprint()


def test_a_missing_header_is_named(tmp_path: Path) -> None:
    root = make(tmp_path / "t", train="0\t0\t1\n0\t0 1\t2\n")
    with pytest.raises(DataError, match=r"x\.train\.inter line 1: the header is missing: line 1 \['0', '0', '1'\] looks "
                       r"like a data row"):
        read_unisrec(root)
    root = make(tmp_path / "u", valid="0\t0 1 2\t3\n1\t1 0\t2\n")
    with pytest.raises(DataError, match=r"x\.valid\.inter line 1: the header is missing: line 1 \['0', '0 1 2', '3'\] "
                       r"looks like a data row"):
        read_unisrec(root)
