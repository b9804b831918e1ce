"""MovieLens importer: real ml100k and ml-latest-small, the u.data layout, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphrec.data.dataset import Dataset
from graphrec.data.formats import read_movielens
from graphrec.errors import DataError


@pytest.fixture(scope="module")
def ml100k(shared_data: Path) -> Dataset:
    return read_movielens(shared_data / "ml100k")


def test_ml100k_counts(ml100k: Dataset) -> None:
    assert ml100k.name == "ml100k"
    assert (ml100k.n_users, ml100k.n_items, ml100k.train.nnz) == (943, 1682, 100000)
    assert set(ml100k.splits) == {"train"}
    assert ml100k.item_ids[0] == "1" and ml100k.item_ids[-1] == "1682"
    assert ml100k.user_ids[0] == "1" and ml100k.user_ids[-1] == "943"


def test_ml100k_timestamps(ml100k: Dataset) -> None:
    # first rating of the file: 196,242,3,881250949
    assert ml100k.timestamps is not None
    u = int(np.flatnonzero(ml100k.user_ids == "196")[0])
    i = int(np.flatnonzero(ml100k.item_ids == "242")[0])
    row = ml100k.train
    k = row.indptr[u] + int(np.flatnonzero(row.indices[row.indptr[u] : row.indptr[u + 1]] == i)[0])
    assert ml100k.timestamps["train"][k] == 881250949.0


def test_ml100k_text_features_aligned(ml100k: Dataset, shared_data: Path) -> None:
    raw = np.load(shared_data / "ml100k" / "text_minilm.npy")
    ids = np.load(shared_data / "ml100k" / "text_minilm_item_ids.npy")
    x = ml100k.item_features["text"]
    assert x.shape == (1682, 384) and x.dtype == np.float32
    for mid in (1, 50, 1682):
        k = int(np.flatnonzero(ml100k.item_ids == str(mid))[0])
        np.testing.assert_array_equal(x[k], raw[int(np.flatnonzero(ids == mid)[0])])


def test_ml100k_side_fields(ml100k: Dataset) -> None:
    assert ml100k.item_fields["title"][0] == "Toy Story"
    assert "Animation" in ml100k.item_fields["genres"][0]
    assert ml100k.item_fields["plot"][0].startswith("A cowboy doll")
    assert sorted(ml100k.user_fields) == ["age", "gender", "occupation"]
    assert ml100k.user_fields["age"][0] == "24" and ml100k.user_fields["gender"][1] == "F"
    assert ml100k.user_fields["occupation"][0] == "technician"


def test_ml100k_min_rating(shared_data: Path) -> None:
    ds = read_movielens(shared_data / "ml100k" / "ratings.csv", min_rating=4)
    assert ds.train.nnz == 55375
    assert ds.n_items < 1682 and ds.item_features["text"].shape[0] == ds.n_items


def test_ml100k_save_load(ml100k: Dataset, tmp_path: Path) -> None:
    ml100k.save(tmp_path / "ds")
    assert Dataset.load(tmp_path / "ds").fingerprint() == ml100k.fingerprint()


def test_movielens_small(shared_data: Path, tmp_path: Path) -> None:
    ds = read_movielens(shared_data / "movielens-small")
    # 9,742 movies are listed in movies.csv, 9,724 of them rated: only those are items
    assert (ds.n_users, ds.n_items, ds.train.nnz) == (610, 9724, 100836)
    assert ds.item_fields["title"][0] == "Toy Story (1995)"
    assert ds.item_fields["genres"][0] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert (ds.item_fields["title"] != "").all()
    assert ds.item_features == {} and ds.user_fields == {}
    ds.save(tmp_path / "ds")
    assert Dataset.load(tmp_path / "ds").fingerprint() == ds.fingerprint()


# ---------------------------------------------------------------- tiny files
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_udata_layout(tmp_path: Path) -> None:
    f = write(tmp_path / "ml" / "u.data", "3\t20\t4\t100\n1\t10\t2\t50\n3\t10\t5\t70\n")
    ds = read_movielens(tmp_path / "ml")
    assert list(ds.user_ids) == ["1", "3"] and list(ds.item_ids) == ["10", "20"]
    assert ds.train.nnz == 3 and ds.timestamps is not None
    assert read_movielens(f, min_rating=4).train.nnz == 2


def test_ml_latest_header_and_quoted_titles(tmp_path: Path) -> None:
    write(tmp_path / "m" / "ratings.csv", "userId,movieId,rating,timestamp\n1,11,4.0,5\n2,29,3.5,6\n")
    write(
        tmp_path / "m" / "movies.csv",
        'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama\n12,Unrated (1990),Drama\n',
    )
    ds = read_movielens(tmp_path / "m" / "ratings.csv", name="mini")
    assert ds.name == "mini" and list(ds.item_ids) == ["11", "29"]
    assert ds.item_fields["title"].tolist() == ["American President, The (1995)", ""]
    assert ds.item_fields["genres"].tolist() == ["Comedy|Drama", ""]


def test_features_aligned_by_id_not_row(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n1,2,4,2\n2,9,1,3\n")
    np.save(root / "text_minilm.npy", np.array([[9, 9], [5, 5], [7, 7], [2, 2]], np.float32))
    np.save(root / "text_minilm_item_ids.npy", np.array([9, 5, 7, 2]))
    ds = read_movielens(root)
    assert list(ds.item_ids) == ["2", "5", "9"]
    np.testing.assert_array_equal(ds.item_features["text"], [[2, 2], [5, 5], [9, 9]])


def test_missing_feature_row(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n1,2,4,2\n")
    np.save(root / "text_minilm.npy", np.ones((1, 2), np.float32))
    np.save(root / "text_minilm_item_ids.npy", np.array([5]))
    with pytest.raises(DataError, match=r"text_minilm_item_ids\.npy: movie 2 has no row in text_minilm\.npy"):
        read_movielens(root)


def test_feature_id_count_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n")
    np.save(root / "text_minilm.npy", np.ones((2, 2), np.float32))
    np.save(root / "text_minilm_item_ids.npy", np.array([5]))
    with pytest.raises(DataError, match=r"text_minilm_item_ids\.npy: 1 ids but .*text_minilm\.npy has 2 rows"):
        read_movielens(root)


def test_truncated_feature_ids(tmp_path: Path) -> None:
    # was "cannot be loaded without pickle (cannot reshape array ...)"
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n1,2,4,2\n")
    np.save(root / "text_minilm.npy", np.ones((2, 2), np.float32))
    np.save(root / "text_minilm_item_ids.npy", np.array([5, 2], np.int64))
    data = (root / "text_minilm_item_ids.npy").read_bytes()
    (root / "text_minilm_item_ids.npy").write_bytes(data[:-8])
    with pytest.raises(DataError, match=rf"text_minilm_item_ids\.npy: truncated: {len(data) - 8} of {len(data)} bytes "
                       r"\(the header's shape \(2,\), dtype int64\): re-save it$"):
        read_movielens(root)
    np.save(root / "text_minilm_item_ids.npy", np.array([5, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"text_minilm_item_ids\.npy: cannot be loaded without pickle \(an array of "
                       r"Python objects, dtype object, shape \(2,\)\): save the movie id of each feature row"):
        read_movielens(root)


def test_feature_ids_without_matrix(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n")
    np.save(root / "text_minilm_item_ids.npy", np.array([5]))
    with pytest.raises(DataError, match=r"text_minilm\.npy: feature file for modality 'text' not found"):
        read_movielens(root)


def test_nan_feature(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n")
    np.save(root / "text_minilm.npy", np.array([[np.nan, 1.0]], np.float32))
    np.save(root / "text_minilm_item_ids.npy", np.array([5]))
    with pytest.raises(DataError, match=r"text_minilm\.npy: modality 'text' row 0 \(item '5'\) contains NaN"):
        read_movielens(root)


def test_side_files_for_missing_entries(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "ratings.csv", "user_id,item_id,rating,timestamp\n1,5,4,1\n2,6,4,1\n")
    write(root / "users_info.csv", "user_id,age,gender,occupation,zip_code\n2,30,F,writer,000\n")
    (root / "items_info.json").write_text(json.dumps([{"movielens_id": "6", "title": "Six", "genres": "Drama", "plot": None}]))
    ds = read_movielens(root)
    assert ds.user_fields["age"].tolist() == ["", "30"]
    assert ds.item_fields["title"].tolist() == ["", "Six"] and ds.item_fields["plot"].tolist() == ["", ""]


def test_missing_ratings(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match=r"m: no ratings\.csv or u\.data found"):
        read_movielens(tmp_path / "m")
    with pytest.raises(DataError, match=r"r\.csv: MovieLens ratings file not found"):
        read_movielens(tmp_path / "m" / "r.csv")


def test_missing_column(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "user,movieId,rating\n1,2,3\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 1: header has no user id column .*userId or user_id"):
        read_movielens(f)


@pytest.mark.parametrize("sep, name", [("\t", "tab"), (";", "semicolon"), ("|", "pipe")])
def test_ratings_with_another_separator_are_named(tmp_path: Path, sep: str, name: str) -> None:
    # the columns are there, written with another separator: the message says so, not "name it userId"
    f = write(tmp_path / "ratings.csv", sep.join(["userId", "movieId", "rating", "timestamp"]) + "\n1,2,3,4\n")
    with pytest.raises(DataError, match=rf"ratings\.csv line 1: the file is not comma-separated \(its header .* is "
                                        rf"{name}-separated\): ratings\.csv is read as CSV: separate its columns"):
        read_movielens(f)
    g = write(tmp_path / "g" / "ratings.csv", "userId,movieId,rating\n1,2,3\n")
    write(tmp_path / "g" / "users_info.csv", sep.join(["user_id", "age", "gender"]) + "\n1,2,M\n")
    with pytest.raises(DataError, match=rf"users_info\.csv line 1: the file is not comma-separated .*{name}"):
        read_movielens(g)


def test_duplicate_rows_are_counted(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,9\n1,3,3,4\n1,2,5,1\n")
    ds = read_movielens(f)
    assert ds.meta["duplicate_rows"] == {str(f): 2} and ds.train.nnz == 2
    assert "duplicate_rows" not in read_movielens(write(tmp_path / "b" / "ratings.csv",
                                                        "userId,movieId,rating,timestamp\n1,2,3,4\n")).meta


def test_non_numeric_id(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,tt0114709,3,4\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: movieId 'tt0114709' is not a MovieLens movie id"):
        read_movielens(f)


def test_wrong_field_count(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: expected 4 comma-separated fields"):
        read_movielens(f)


def test_bad_rating_and_min_rating(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,3,five,4\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: rating 'five' is not a number"):
        read_movielens(f)
    g = write(tmp_path / "g" / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"ratings\.csv: no rating is >= min_rating=4"):
        read_movielens(g, min_rating=4)


def test_header_only(tmp_path: Path) -> None:
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match=r"ratings\.csv: no data rows"):
        read_movielens(f)


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_non_finite_timestamp_is_refused(tmp_path: Path, stamp: str) -> None:
    # a temporal split used to order a NaN timestamp as the latest
    write(tmp_path / "m" / "ratings.csv", f"userId,movieId,rating,timestamp\n1,10,4,100\n1,20,4,{stamp}\n1,30,4,200\n")
    with pytest.raises(DataError, match=rf"ratings\.csv line 3: timestamp {stamp!r} is not a finite number \(1 such "
                       r"row\): every timestamp must be a finite number"):
        read_movielens(tmp_path / "m")
    write(tmp_path / "u" / "u.data", f"1\t10\t4\t100\n1\t20\t4\t{stamp}\n")
    with pytest.raises(DataError, match=r"u\.data line 2: timestamp .* is not a finite number"):
        read_movielens(tmp_path / "u")


@pytest.mark.parametrize("min_rating", [None, 4.0])
def test_non_finite_ratings_are_refused(tmp_path: Path, min_rating: float | None) -> None:
    # a nan rating was dropped by --min-rating 4 while an inf one was kept, both silently
    write(tmp_path / "m" / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4,100\n1,20,nan,150\n2,10,inf,160\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: rating 'nan' is not a finite number \(2 such rows\): "
                       r"every rating must be a finite number: fix or remove the row$"):
        read_movielens(tmp_path / "m", min_rating=min_rating)


def test_prepare_refuses_a_name_that_is_no_file_name_and_makes_a_default_one_valid(shared_data, tmp_path):
    # '../x y' was accepted; export-mmrec then asked for a folder named '../x y'
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.testing import one_error_line

    write(tmp_path / "ml 100k" / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4,100\n2,10,3,150\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "movielens", str(tmp_path / "ml 100k"),
                                   str(tmp_path / "out"), "--name", "../x y"])
    assert one_error_line(res) == (
        "error: --name: dataset name '../x y' is not allowed: a dataset name becomes part of file names (NAME.inter, "
        "graphs/NAME), so it must be 1 to 100 letters, digits, '_', '.' or '-', not starting with '.' or '-': "
        "choose another name, e.g. 'x_y'")
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(app, ["prepare", "--format", "movielens", str(tmp_path / "ml 100k"), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert Dataset.load(tmp_path / "out").name == "ml_100k"  # the folder's name, made valid


def test_prepare_overwrite_refuses_a_dataset_folder_holding_other_files(tmp_path):
    # `prepare --overwrite` replaced the folder as a whole: a run kept inside it was deleted silently
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.testing import one_error_line

    write(tmp_path / "m" / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4,100\n2,10,3,150\n")
    args = ["prepare", "--format", "movielens", str(tmp_path / "m"), str(tmp_path / "out"), "--overwrite"]
    assert CliRunner().invoke(app, args).exit_code == 0
    (tmp_path / "out" / "run").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    line = one_error_line(CliRunner().invoke(app, args))
    assert line == (f"error: OUT {tmp_path / 'out'} holds notes.txt, run/, which a dataset does not write: move them "
                    "out of the dataset folder first (replacing it would delete them)")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine" and (tmp_path / "out" / "run").is_dir()
    (tmp_path / "out" / "notes.txt").unlink()
    (tmp_path / "out" / "run").rmdir()
    assert CliRunner().invoke(app, args).exit_code == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_min_rating_names_the_flag(shared_data: Path, tmp_path: Path, value: str) -> None:
    # was "no rating is >= min_rating=nan", after reading the whole file
    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.errors import ConfigError
    from graphrec.testing import one_error_line

    res = CliRunner().invoke(app, ["prepare", "--format", "movielens", str(shared_data / "ml100k"),
                                   str(tmp_path / "out"), "--min-rating", value])
    assert one_error_line(res) == (f"error: min_rating={float(value)} (--min-rating) is not a finite number: pass a "
                                   "rating, e.g. 4, or leave it out to keep every rating")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"min_rating=nan \(--min-rating\) is not a finite number"):
        read_movielens(tmp_path / "nowhere", min_rating=float("nan"))


def test_loose_integer_ids_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "m" / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4,100\n1,2_0,4,150\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: movieId '2_0' is not a MovieLens movie id"):
        read_movielens(tmp_path / "m")


def test_double_colon_ratings_dat_is_named_as_unsupported(tmp_path: Path) -> None:
    f = write(tmp_path / "ml-1m" / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    for src in (f, f.parent):
        with pytest.raises(DataError, match=r"ratings\.dat: the '::'-separated layout of MovieLens 1M/10M ratings\.dat is "
                           r"not supported: convert it to ratings\.csv with a header \(userId,movieId,rating,timestamp\) "
                           r"or u\.data .*sed 's/::/,/g' ratings\.dat\) > ratings\.csv$"):
            read_movielens(src)


def test_headerless_ratings_csv(tmp_path: Path) -> None:
    write(tmp_path / "m" / "ratings.csv", "1,10,4.0,100\n1,20,3.0,200\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 1: the header is missing: line 1 \['1', '10', '4\.0', '100'\] "
                       r"looks like a data row, not column names: add the header line first \(e\.g\. "
                       r"userId,movieId,rating,timestamp\)"):
        read_movielens(tmp_path / "m")


@pytest.mark.parametrize("sep, name", [(",", "comma"), (" ", "space")])
def test_headerless_u_data_with_another_separator_says_so(tmp_path, sep, name):
    write(tmp_path / "u" / "u.data", sep.join(("1", "10", "4", "100")) + "\n" + sep.join(("1", "20", "4", "200")) + "\n")
    with pytest.raises(DataError, match=rf"u\.data line 1: expected 4 tab-separated fields \(user_id, item_id, rating, "
                                        rf"timestamp\), found 1: the line is {name}-separated: write the file with tabs"):
        read_movielens(tmp_path / "u")


def test_columns_not_read_are_noted_and_a_missing_column_names_every_column_read(tmp_path: Path) -> None:
    """A time column named ts is not the timestamp column: the dataset gets no timestamps,
    which a note says when the file is read (not later, at --split temporal); a header
    without an id column names every column the reader takes."""
    import warnings

    from graphrec.errors import GraphrecNote

    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,ts\n1,10,4.0,100\n1,11,3.0,200\n2,10,5.0,300\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ds = read_movielens(tmp_path)
    notes = [str(w.message) for w in seen if issubclass(w.category, GraphrecNote)]
    assert ds.timestamps is None
    assert notes == [f"{tmp_path / 'ratings.csv'}: column 'ts' not read (the time of each rating is read from a "
                     "column named timestamp)"]
    (tmp_path / "ratings.csv").write_text("user,movieId,rating,timestamp\n1,10,4.0,100\n")
    with pytest.raises(DataError, match=r"header has no user id column .*: name it userId or user_id \(the columns read: "
                                        "userId or user_id, movieId or item_id, and, if given, rating and timestamp"):
        read_movielens(tmp_path)
