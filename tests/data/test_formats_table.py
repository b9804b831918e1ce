"""The csv format (a plain interaction table): real Last.fm and MovieLens files, string
ids, ISO times, side tables, feature rows, chunked reading, bad input."""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.data.dataset import Dataset
from graphrec.data.formats import read_movielens, read_source, read_table
from graphrec.errors import ConfigError, DataError, GraphrecNote

ORDERS = """customer_id,product_id,ordered_at,stars
alice,P1,2024-05-01 10:00:00,5
alice,P2,2024-05-02 10:00:00,2
bob,P1,2024-05-01T09:00:00Z,4
bob,P3,2024-05-03,5
carol,P2,2024-05-04T10:00:00+02:00,4
carol,P3,2024-05-05,5
carol,P1,2024-05-06,3
"""
PRODUCTS = 'product_id,title\nP1,"Red mug, large"\nP4,New kettle\nP2,Blue mug\nP3,Teapot\n'


def _shop(tmp_path: Path) -> Path:
    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "products.csv").write_text(PRODUCTS)
    return tmp_path / "orders.csv"


def _read(path: Path, **kw) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphrecNote)
        return read_table(path, **kw)


def _pairs(ds: Dataset, split: str = "train") -> set[tuple[str, str]]:
    m = ds.splits[split].tocoo()
    return {(str(ds.user_ids[u]), str(ds.item_ids[i])) for u, i in zip(m.row, m.col)}


def _time(ds: Dataset, user: str, item: str) -> float:
    u = int(np.flatnonzero(ds.user_ids == user)[0])
    i = int(np.flatnonzero(ds.item_ids == item)[0])
    row = ds.train
    k = row.indptr[u] + int(np.flatnonzero(row.indices[row.indptr[u]:row.indptr[u + 1]] == i)[0])
    return float(ds.timestamps["train"][k])


def test_lastfm_user_artists_tab_separated_crlf(shared_data: Path) -> None:
    # HetRec's raw file: tab-separated, CRLF line ends, userID artistID weight (play counts)
    src = shared_data / "lfm2k" / "user_artists.dat"
    ds = _read(src, user_col="userID", item_col="artistID")
    assert (ds.n_users, ds.n_items, ds.train.nnz) == (1892, 17632, 92834)  # readme.txt's counts
    assert ds.name == "user_artists" and ds.timestamps is None
    assert ("2", "51") in _pairs(ds)  # the file's first row
    heavy = _read(src, user_col="userID", item_col="artistID", rating_col="weight", min_rating=1000)
    weights = np.loadtxt(src, skiprows=1, usecols=2, delimiter="\t")
    assert heavy.train.nnz == int((weights >= 1000).sum())


def test_lastfm_artists_table_fixes_item_order_and_fields(shared_data: Path) -> None:
    root = shared_data / "lfm2k"
    ds = _read(root / "user_artists.dat", user_col="userID", item_col="artistID", items="artists.dat")
    ids = [line.split("\t")[0] for line in (root / "artists.dat").read_text(encoding="utf-8").splitlines()[1:] if line]
    assert ds.item_ids.tolist() == ids  # the table's row order, not numeric order
    assert sorted(ds.item_fields) == ["name", "pictureURL", "url"]
    assert ds.item_fields["name"][ids.index("1")] == "MALICE MIZER"
    plain = _read(root / "user_artists.dat", user_col="userID", item_col="artistID")
    assert _pairs(ds) == _pairs(plain)


def test_movielens_ratings_read_as_by_the_movielens_reader(shared_data: Path) -> None:
    src = shared_data / "movielens-small" / "ratings.csv"
    a = _read(src, user_col="userId", item_col="movieId", min_rating=4)
    b = read_movielens(src, min_rating=4)
    assert a.user_ids.tolist() == b.user_ids.tolist() and a.item_ids.tolist() == b.item_ids.tolist()
    assert (a.train != b.train).nnz == 0
    np.testing.assert_array_equal(a.timestamps["train"], b.timestamps["train"])


def test_string_ids_iso_times_and_rating_filter(tmp_path: Path) -> None:
    src = _shop(tmp_path)
    ds = _read(src, user_col="customer_id", item_col="product_id", time_col="ordered_at",
               rating_col="stars", min_rating=4)
    assert ds.user_ids.tolist() == ["alice", "bob", "carol"]  # lexicographic: the ids are no integers
    assert ds.item_ids.tolist() == ["P1", "P2", "P3"]
    assert _pairs(ds) == {("alice", "P1"), ("bob", "P1"), ("bob", "P3"), ("carol", "P2"), ("carol", "P3")}
    utc = timezone.utc
    assert _time(ds, "alice", "P1") == datetime(2024, 5, 1, 10, tzinfo=utc).timestamp()
    assert _time(ds, "bob", "P1") == datetime(2024, 5, 1, 9, tzinfo=utc).timestamp()  # Z
    assert _time(ds, "bob", "P3") == datetime(2024, 5, 3, tzinfo=utc).timestamp()  # a date alone: midnight UTC
    assert _time(ds, "carol", "P2") == datetime(2024, 5, 4, 8, tzinfo=utc).timestamp()  # +02:00
    assert ds.meta["columns"] == {"user": "customer_id", "item": "product_id", "time": "ordered_at",
                                  "rating": "stars", "split": None}


def test_items_table_fields_features_and_items_without_interactions(tmp_path: Path) -> None:
    src = _shop(tmp_path)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)  # row r = the r-th row of products.csv
    np.save(tmp_path / "emb.npy", x)
    ds = _read(src, user_col="customer_id", item_col="product_id", items="products.csv",
               features={"text": "emb.npy"})
    assert ds.item_ids.tolist() == ["P1", "P4", "P2", "P3"]
    assert ds.item_fields["title"].tolist() == ["Red mug, large", "New kettle", "Blue mug", "Teapot"]
    np.testing.assert_array_equal(ds.item_features["text"], x)
    assert ds.train[:, 1].nnz == 0  # P4: in the catalogue, never interacted with


def test_users_table_gives_fields(tmp_path: Path) -> None:
    src = _shop(tmp_path)
    (tmp_path / "customers.csv").write_text("customer_id,country\ncarol,FR\nalice,DE\nzoe,IT\n")
    ds = _read(src, user_col="customer_id", item_col="product_id", users="customers.csv")
    assert ds.user_ids.tolist() == ["alice", "bob", "carol"]
    assert ds.user_fields["country"].tolist() == ["DE", "", "FR"]  # bob has no row; zoe no interaction


def test_side_files_relative_to_the_current_directory_or_the_tables_folder(tmp_path: Path, monkeypatch) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _shop(raw)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.save(raw / "emb.npy", x)
    monkeypatch.chdir(tmp_path)
    for items, emb in (("raw/products.csv", "raw/emb.npy"), ("products.csv", "emb.npy")):
        # the folder was joined twice to a feature file named from it (raw/raw/emb.npy)
        ds = _read(Path("raw/orders.csv"), user_col="customer_id", item_col="product_id", items=items,
                   features={"text": emb})
        assert ds.n_items == 4
        np.testing.assert_array_equal(ds.item_features["text"], x)


def test_split_column_and_unseen(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,split\n1,10,train\n1,11,train\n2,10,train\n2,11,valid\n1,12,test\n")
    with pytest.raises(DataError, match=r"log.csv line 6: item '12' appears in test but never in train"):
        _read(src, split_col="split")
    ds = _read(src, split_col="split", unseen="drop")
    assert _pairs(ds, "valid") == {("2", "11")} and ds.splits["test"].nnz == 0
    src.write_text("user_id,item_id,split\n1,10,train\n2,10,validation\n")
    with pytest.raises(DataError, match=r"log.csv line 3: split 'validation' is not a split: label every row"):
        _read(src, split_col="split")


def test_repeated_pairs_merge_with_the_latest_time(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,timestamp\nu,a,5\nu,b,6\nu,a,9\n")
    ds = _read(src)
    assert ds.train.nnz == 2 and _time(ds, "u", "a") == 9.0
    assert ds.meta["duplicate_rows"] == {str(src): 1}


@pytest.mark.parametrize("chunk", [None, 16])
def test_chunks_give_the_same_dataset_and_error_lines(tmp_path: Path, chunk: int | None) -> None:
    rng = np.random.default_rng(0)
    rows = [f"u{rng.integers(30)},i{rng.integers(50)},{rng.integers(1, 6)},{1000 + k}" for k in range(400)]
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    whole = _read(src, min_rating=3)
    part = _read(src, min_rating=3, chunk_bytes=chunk)
    assert whole.fingerprint() == part.fingerprint()
    rows[300] = "u1,i1,4,yesterday"
    src.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"log.csv line 302: timestamp 'yesterday' is not a time"):
        _read(src, chunk_bytes=chunk)


def test_one_file_holds_one_kind_of_time(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,timestamp\nu,a,2024-05-01\nu,b,1714571100\n")
    with pytest.raises(DataError, match=r"line 3: timestamp '1714571100' is not a time, and the column's first row "
                                         r"makes it ISO 8601"):
        _read(src)


@pytest.mark.parametrize(("text", "kw", "message"), [
    ("customer,item_id\nc,a\n", {}, r"line 1: header has no user id column \(found \['customer', 'item_id'\]\): "
                                    r"name it with --user-col"),
    ("u,i\n1,2\n", {"user_col": "user"}, r"line 1: header has no column 'user' \(--user-col"),
    ("1,2\n3,4\n", {}, r"line 1: the header is missing"),
    ("user_id,item_id\nu,\n", {}, r"line 2: empty item id in column 'item_id'"),
    ("user_id,item_id\nu,a\n", {"min_rating": 4}, r"min_rating \(--min-rating\) needs a rating column"),
    ("user_id,item_id,rating\nu,a,1\n", {"min_rating": 4}, r"no rating is >= min_rating=4 \(the largest is 1\)"),
    ("user_id,item_id,rating\nu,a,nan\n", {"min_rating": 4}, r"log.csv line 2: .*nan"),
    ("user_id;item_id\nu;a\n", {}, r"not comma-separated"),
])
def test_bad_input_one_line(tmp_path: Path, text: str, kw: dict, message: str) -> None:
    src = tmp_path / "log.csv"
    src.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        _read(src, **kw)
    assert "\n" not in str(e.value)


def test_side_table_errors(tmp_path: Path) -> None:
    src = _shop(tmp_path)
    (tmp_path / "few.csv").write_text("product_id,title\nP1,a\nP2,b\n")
    with pytest.raises(DataError, match=r"orders.csv line 5: item 'P3' has no row in .*few.csv \(1 such item\)"):
        _read(src, user_col="customer_id", item_col="product_id", items="few.csv")
    (tmp_path / "twice.csv").write_text("product_id\nP1\nP2\nP3\nP1\n")
    with pytest.raises(DataError, match=r"twice.csv line 5: item 'P1' is listed again \(first on line 2\)"):
        _read(src, user_col="customer_id", item_col="product_id", items="twice.csv")
    np.save(tmp_path / "emb.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(DataError, match=r"has 3 rows but .*products.csv lists 4 items"):
        _read(src, user_col="customer_id", item_col="product_id", items="products.csv", features={"t": "emb.npy"})
    with pytest.raises(ConfigError, match=r"features need items=ITEMS.csv \(CLI: --items\)"):
        _read(src, user_col="customer_id", item_col="product_id", features={"t": "emb.npy"})


def test_notes_name_unread_columns_and_the_ratings(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,rating,ts\nu,a,1,5\n")
    with pytest.warns(GraphrecNote) as notes:
        read_table(src)
    said = " ".join(str(n.message) for n in notes)
    assert "column 'ts' not read (name a time column with --time-col)" in said
    assert "every row is an interaction, whatever its 'rating': --min-rating R" in said


def test_read_source_takes_csv_options_only_for_csv(tmp_path: Path, shared_data: Path) -> None:
    src = _shop(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphrecNote)
        ds = read_source("csv", src, user_col="customer_id", item_col="product_id", time_col="")
    assert ds.timestamps is None and ds.meta["format"] == "csv"
    with pytest.raises(ConfigError, match=r"format 'mmrec' does not take user_col .*--user-col"):
        read_source("mmrec", shared_data / "lfm2k", user_col="userID")


def test_prepare_csv_cli(tmp_path: Path) -> None:
    from graphrec.cli import app

    src = _shop(tmp_path)
    out = tmp_path / "shop"
    runner = CliRunner()
    r = runner.invoke(app, ["prepare", "--format", "csv", str(src), str(out), "--user-col", "customer_id",
                            "--item-col", "product_id", "--time-col", "ordered_at", "--items", str(tmp_path / "products.csv"),
                            "--split", "temporal"])
    assert r.exit_code == 0, r.output
    assert "1 of the 4 items of" in r.output and "has no interactions: kept as items" in r.output
    assert "column 'stars' not read" in r.output
    ds = Dataset.load(out)
    assert ds.n_items == 4 and ds.item_fields["title"][0] == "Red mug, large"
    r = runner.invoke(app, ["prepare", "--format", "csv", str(src), str(tmp_path / "x"), "--user-col", "who"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "header has no column 'who' (--user-col" in r.output
    assert not (tmp_path / "x").exists()
    # an input refused after a note about it (column 'stars' not read) is one line
    (tmp_path / "few.csv").write_text("product_id,title\nP1,a\n")
    r = runner.invoke(app, ["prepare", "--format", "csv", str(src), str(tmp_path / "x"), "--user-col", "customer_id",
                            "--item-col", "product_id", "--items", "few.csv"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "has no row in" in r.output, r.output
    # times and no split given: the random split says how to split by time
    r = runner.invoke(app, ["prepare", "--format", "csv", str(src), str(tmp_path / "y"), "--user-col", "customer_id",
                            "--item-col", "product_id", "--time-col", "ordered_at"])
    assert r.exit_code == 0 and "--split temporal holds out each user's latest" in r.output, r.output


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id\nu1,i1\n\nu2,i2\n\n\nu3,\n")
    with pytest.raises(DataError, match=r"log.csv line 7: empty item id"):
        _read(src)
    src.write_text("user_id,item_id\nu1,i1\n\nu2,i2\n")
    assert _pairs(_read(src)) == {("u1", "i1"), ("u2", "i2")}
    src.write_text("\nuser_id,item_id\nu1,i1\n")
    with pytest.raises(DataError, match=r"log.csv line 1: the line is empty: the header .* must be the first line"):
        _read(src)


def test_a_column_named_twice_is_refused(tmp_path: Path) -> None:
    # the CSV reader kept the last of the two: every item read as 'x'
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,item_id\nu1,i1,x\nu2,i2,x\n")
    with pytest.raises(DataError, match=r"log.csv line 1: column 'item_id' appears twice in the header"):
        _read(src)


def test_header_names_are_stripped_and_a_near_name_is_suggested(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id, item_id, timestamp\nu1,i1,5\n")
    ds = _read(src)
    assert _pairs(ds) == {("u1", "i1")} and _time(ds, "u1", "i1") == 5.0  # ' timestamp' found too
    src.write_text("UserID,ItemID\nu1,i1\n")
    with pytest.raises(DataError, match=r"header has no user id column .*: name it with --user-col .* "
                                        r"\(did you mean --user-col UserID\?\)"):
        _read(src)
    (tmp_path / "products.csv").write_text("sku,title\nP1,a\n")
    src.write_text("user_id,product_id\nu1,P1\n")
    with pytest.raises(DataError, match=r"products.csv line 1: header has no item id column \(found \['sku', "
                                        r"'title'\]\): rename its item id column to product_id or item_id"):
        _read(src, item_col="product_id", items="products.csv")


def test_millisecond_times_and_unmatched_users_are_noted(tmp_path: Path) -> None:
    src = tmp_path / "log.csv"
    src.write_text("user_id,item_id,timestamp\nu1,i1,1714571100000\nu2,i1,1714571200000\n")
    with pytest.warns(GraphrecNote, match=r"the times of 'timestamp' reach 1.715e\+12, .* look like milliseconds"):
        read_table(src)
    (tmp_path / "people.csv").write_text("user_id,age\n1,30\n2,40\n")
    with pytest.warns(GraphrecNote, match=r"people.csv: 2 of the 2 users have no row \(e.g. 'u1'\): their user "
                                          r"fields are empty; no user matches"):
        read_table(src, users="people.csv", time_col="")


def test_recommend_reads_the_tables_own_id_columns(tmp_path: Path) -> None:
    """After `prepare --format csv --user-col customer_id`, a customers file keyed by
    customer_id was refused by recommend --users (it wanted a user_id column)."""
    from graphrec.cli import app
    from graphrec.data.dataset import Dataset
    from graphrec import recommend_model
    from graphrec.train.registry import build_model

    src = _shop(tmp_path)
    runner = CliRunner()
    args = ["--format", "csv", str(src), str(tmp_path / "shop"), "--user-col", "customer_id", "--item-col",
            "product_id", "--items", str(tmp_path / "products.csv")]
    assert runner.invoke(app, ["prepare", *args]).exit_code == 0
    r = runner.invoke(app, ["train", "lightgcn", "--data", str(tmp_path / "shop"), "--epochs", "1", "--quiet",
                            "--device", "cpu", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    (tmp_path / "who.csv").write_text("country,customer_id\nDE,carol\n")
    (tmp_path / "what.csv").write_text("product_id\nP2\nP4\n")
    r = runner.invoke(app, ["recommend", str(tmp_path / "run"), "--users", str(tmp_path / "who.csv"), "--items",
                            str(tmp_path / "what.csv"), "--include-seen", "--k", "2", "--out", str(tmp_path / "r.csv")])
    assert r.exit_code == 0, r.output
    rows = (tmp_path / "r.csv").read_text().splitlines()[1:]
    assert sorted(row.split(",")[1] for row in rows) == ["P2", "P4"] and all(row.startswith("carol,") for row in rows)
    ds = Dataset.load(tmp_path / "shop")
    recs = recommend_model(build_model("lightgcn", ds, {}), ds, users=tmp_path / "who.csv", k=2)
    assert set(recs.user_id.tolist()) == {"carol"}
    (tmp_path / "bad.csv").write_text("country,client\nDE,carol\n")
    r = runner.invoke(app, ["recommend", str(tmp_path / "run"), "--users", str(tmp_path / "bad.csv"),
                            "--out", str(tmp_path / "r2.csv")])
    assert r.exit_code == 1 and "has no user_id or customer_id column" in r.output


def test_a_record_spanning_lines_is_named_by_its_first_line(tmp_path: Path) -> None:
    # a quoted field with a line break: the error named the record's last line
    src = tmp_path / "log.csv"
    src.write_text('user_id,item_id,note\nu1,i1,ok\n,i2,"two\nlines"\nu3,i3,x\n')
    with pytest.raises(DataError, match=r"log.csv line 3: empty user id"):
        _read(src)
    (tmp_path / "items.csv").write_text('item_id,title\ni1,"a\nb"\ni2,c\ni1,d\n')
    src.write_text("user_id,item_id\nu1,i1\nu2,i2\n")
    with pytest.raises(DataError, match=r"items.csv line 5: item 'i1' is listed again \(first on line 2\)"):
        _read(src, items="items.csv")


def test_quoted_ids_of_a_tab_separated_file_are_noted(tmp_path: Path) -> None:
    # a .tsv is read without quoting: "u1" stayed an id with its quotes, and recommend --users u1 failed
    src = tmp_path / "log.tsv"
    src.write_text('user_id\titem_id\n"u1"\t"i1"\n"u2"\t"i1"\n')
    with pytest.warns(GraphrecNote, match=r"the ids of 'user_id', 'item_id' are in double quotes .*read without "
                                          r"quoting"):
        ds = read_table(src)
    assert ds.user_ids.tolist() == ['"u1"', '"u2"']  # as documented: the quotes stay
