"""RecBole atomic files: round trips on real data, RecBole reading our output, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats import read_mmrec, read_movielens, read_recbole, read_unisrec, write_recbole
from graphrec.errors import DataError


@pytest.fixture(scope="module")
def lfm2k(shared_data: Path) -> Dataset:
    return read_mmrec(shared_data / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"})


def test_round_trip_lfm2k(lfm2k: Dataset, tmp_path: Path) -> None:
    out = write_recbole(lfm2k, tmp_path / "lfm2k", "lfm2k")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["lfm2k.inter", "lfm2k.train.inter", "lfm2k.valid.inter", "lfm2k.test.inter", "lfm2k.item", "lfm2k.user"]
    )
    head = (out / "lfm2k.item").read_text().split("\n", 1)[0]
    assert head == "item_id:token\ttext:float_seq\taudio:float_seq"
    assert (out / "lfm2k.train.inter").read_text().split("\n", 1)[0] == "user_id:token\titem_id:token"
    back = read_recbole(out)
    assert back.name == "lfm2k" and back.meta["given_split"] is True
    assert back.fingerprint() == lfm2k.fingerprint()
    np.testing.assert_array_equal(back.item_features["audio"], lfm2k.item_features["audio"])
    # {name}.inter alone: all interactions, no given split
    alone = read_recbole(out, split="none")
    assert set(alone.splits) == {"train"} and alone.train.nnz == 56345


def test_round_trip_scientific_with_text(shared_data: Path, tmp_path: Path) -> None:
    ds = read_unisrec(shared_data / "amazon-scientific", unseen="keep")
    out = write_recbole(ds, tmp_path / "sci")
    head = (out / "Scientific.item").read_text().split("\n", 1)[0]
    assert head == "item_id:token\ttext:float_seq\timage:float_seq\ttext_field:token_seq"
    back = read_recbole(out, unseen="keep")
    assert sorted(back.item_fields) == ["text"]
    assert back.fingerprint() == ds.fingerprint()


def test_round_trip_ml100k_timestamps_and_fields(shared_data: Path, tmp_path: Path) -> None:
    ds = read_movielens(shared_data / "ml100k")
    out = write_recbole(ds, tmp_path / "ml100k")
    assert not (out / "ml100k.train.inter").exists()  # no given split: only {name}.inter
    assert (out / "ml100k.inter").read_text().split("\n", 2)[1].count("\t") == 2
    back = read_recbole(out)
    assert back.user_fields["occupation"][0] == ds.user_fields["occupation"][0]
    assert back.timestamps is not None
    assert back.fingerprint() == ds.fingerprint()
    back.save(tmp_path / "saved")
    assert Dataset.load(tmp_path / "saved").fingerprint() == ds.fingerprint()


def test_round_trip_float_field_and_string_ids(tmp_path: Path) -> None:
    ds = build_dataset(
        ["ann", "bob", "ann", "bob"],
        ["x y", "z", "z", "x y"],  # an item id with a space is fine for a token
        ["train", "train", "test", "valid"],
        timestamps=[1.5, 2.0, 3.25, 1e12],
        item_ids=["z", "x y", "w"],
        item_features={"img": np.array([[0.1, -0.0], [1e-30, 3.4e38], [0.0, 0.0]], np.float32)},
        item_fields={
            "price": np.array([9.99, np.nan, 1.0]),
            "tag": np.array(["a", "", "c d"]),
            "quote": np.array(['"Rambo" parody', '"', 'ends with "']),
        },
        user_fields={"age": np.array(["20", "30"])},
        name="tiny",
    )
    out = write_recbole(ds, tmp_path / "tiny")
    assert '\t"""Rambo"" parody"' in (out / "tiny.item").read_text()  # CSV-quoted for RecBole
    back = read_recbole(out)
    assert back.fingerprint() == ds.fingerprint()
    assert list(back.item_ids) == ["z", "x y", "w"]
    assert back.item_fields["quote"].tolist() == ['"Rambo" parody', '"', 'ends with "']


def test_write_refuses_existing_and_bad_values(lfm2k: Dataset, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match=r"x already exists"):
        write_recbole(lfm2k, tmp_path / "x")
    write_recbole(lfm2k, tmp_path / "x", overwrite=True)
    assert (tmp_path / "x" / "lfm2k.item").is_file()
    bad = build_dataset(["a"], ["i"], ["train"], item_fields={"t": np.array(["two\tparts"])})
    with pytest.raises(DataError, match=r"item field 't' value 'two\\tparts' of item 'i' contains a tab"):
        write_recbole(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("kind", ["user", "item"])
@pytest.mark.parametrize("na", ["NA", "null", "nan", "N/A", "NaN", "", "None", "#N/A"])
def test_write_refuses_ids_pandas_reads_as_missing(tmp_path: Path, kind: str, na: str) -> None:
    # RecBole reads atomic files with pandas, whose default na_values would turn them into NaN
    users, items = (["u", na], ["i", "i"]) if kind == "user" else (["u", "u"], ["i", na])
    ds = build_dataset(users, items, ["train", "train"])
    with pytest.raises(DataError, match=rf"^{kind} id {na!r} is read as a missing value by RecBole .*"
                       rf"rename the {kind} ids before preparing"):
        write_recbole(ds, tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_recbole_reads_what_we_write(lfm2k: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    # a small real subset: the first 300 users of lfm2k, items they touch
    keep = np.arange(300)
    sub_splits = {s: m[keep] for s, m in lfm2k.splits.items()}
    used = np.unique(np.concatenate([m.indices for m in sub_splits.values()]))
    titles = np.array([f'"Artist" {k}' if k % 2 == 0 else f"artist {k}" for k in range(len(used))])
    sub = lfm2k.replace(
        user_ids=lfm2k.user_ids[keep],
        item_ids=lfm2k.item_ids[used],
        splits={s: m[:, used] for s, m in sub_splits.items()},
        item_features={k: v[used] for k, v in lfm2k.item_features.items()},
        item_fields={"title": titles},  # values starting with a quote must survive
    )
    data_path = tmp_path / "recbole_data"
    write_recbole(sub, data_path / "lfm2k_sub", "lfm2k_sub")
    monkeypatch.chdir(tmp_path)
    config = Config(
        model="BPR",
        dataset="lfm2k_sub",
        config_dict={
            "data_path": str(data_path),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": None,
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            "show_progress": False,
            "checkpoint_dir": str(tmp_path / "saved"),
            "save_dataset": False,
            "save_dataloaders": False,
            "use_gpu": False,
            "seed": 0,
        },
    )
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    assert dataset.user_num - 1 == sub.n_users  # RecBole adds a [PAD] id
    assert dataset.item_num - 1 == sub.n_items
    assert train.dataset.inter_num == sub.train.nnz
    assert valid.dataset.inter_num == sub.valid.nnz
    assert test.dataset.inter_num == sub.test.nnz
    # features land on the right item although RecBole remaps ids
    text = dataset.item_feat["text"].numpy()
    for k in (0, 5, sub.n_items - 1):
        rid = dataset.token2id("item_id", sub.item_ids[k])
        np.testing.assert_array_equal(text[rid], sub.item_features["text"][k])
    # a token_seq value that starts with a double quote is read as written
    title = dataset.item_feat["title"][dataset.token2id("item_id", sub.item_ids[0])]
    assert [dataset.id2token("title", int(t)) for t in title if t > 0] == ['"Artist"', "0"]
    # per-user counts survive the remap too
    u = sub.user_ids[3]
    uid = dataset.token2id("user_id", u)
    tr_users = train.dataset.inter_feat["user_id"].numpy()
    assert int((tr_users == uid).sum()) == sub.train[3].nnz


# ---------------------------------------------------------------- tiny files
INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write(root: Path, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (root / fname.replace("__", ".")).write_text(text)
    return root


def test_tiny_all_to_train_and_rating_ignored(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n2\t10\t1\t50\n1\t11\t0\t70\n1\t10\t4\t200\n")
    ds = read_recbole(root)
    assert ds.name == "r" and set(ds.splits) == {"train"} and ds.train.nnz == 3
    assert list(ds.item_ids) == ["10", "11"]
    assert ds.timestamps is not None and ds.timestamps["train"].tolist() == [200.0, 70.0, 50.0]


def test_tiny_item_and_user_files(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        r__inter="user_id:token\titem_id:token\nu\tb\nv\ta\n",
        r__item="item_id:token\temb:float_seq\tcats:token_seq\tprice:float\tragged:float_seq\n"
        "a\t1 2\tx y\t1.5\t1\nb\t\tz\t\t1 2\nc\t3 4\t\t2\t\n",
        r__user="user_id:token\tage:token\nv\t30\nu\t20\n",
    )
    with pytest.warns(UserWarning, match=r"r\.item line 3: float_seq field 'ragged' has 2 values there but 1 in 1 "
                                         r"of its 2 non-empty rows, so it is read as a text field, not as features "
                                         r"'ragged': give every row 1 values"):
        ds = read_recbole(root)
    assert list(ds.item_ids) == ["a", "b", "c"] and list(ds.user_ids) == ["v", "u"]
    np.testing.assert_array_equal(ds.item_features["emb"], [[1, 2], [0, 0], [3, 4]])
    assert ds.item_fields["cats"].tolist() == ["x y", "z", ""]
    assert np.isnan(ds.item_fields["price"][1]) and ds.item_fields["price"][2] == 2.0
    assert ds.item_fields["ragged"].tolist() == ["1", "1 2", ""]
    assert ds.user_fields["age"].tolist() == ["30", "20"]


def test_missing_inter(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__item="item_id:token\na\n")
    with pytest.raises(DataError, match=r"r\.inter: RecBole interaction file not found"):
        read_recbole(root, "r")
    with pytest.raises(DataError, match=r"no \*\.inter file found"):
        read_recbole(tmp_path / "r")


def test_header_without_type(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match=r"r\.inter line 1: header field 'user_id' has no type"):
        read_recbole(root)


def test_unknown_type(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id:token\titem_id:int\n1\t2\n")
    with pytest.raises(DataError, match=r"r\.inter line 1: field 'item_id' has type 'int'"):
        read_recbole(root)


@pytest.mark.parametrize("sep, shown", [(",", "comma"), (";", "semicolon"), (" ", "space")])
def test_file_not_tab_separated(tmp_path: Path, sep: str, shown: str) -> None:
    for header in ("user_id:token{}item_id:token", "user_id{}item_id"):
        root = write(tmp_path / "r", r__inter=header.format(sep) + f"\n1{sep}2\n")
        with pytest.raises(DataError, match=rf"r\.inter line 1: the file is not tab-separated \(its header looks "
                                            rf"{shown}-separated: .*\): RecBole atomic files are TSV"):
            read_recbole(root)


def test_missing_item_column(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id:token\titem:token\n1\t2\n")
    with pytest.raises(DataError, match=r"r\.inter line 1: header has no 'item_id' column"):
        read_recbole(root)


def test_bad_timestamp(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n2\t10\t1\tyesterday\n")
    with pytest.raises(DataError, match=r"r\.inter line 3: timestamp 'yesterday' is not a number"):
        read_recbole(root)


def test_item_not_in_item_file(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id:token\titem_id:token\n1\ta\n1\tq\n", r__item="item_id:token\na\n")
    with pytest.raises(DataError, match=r"r\.inter line 3: item 'q' is not in .*r\.item"):
        read_recbole(root)


def test_duplicate_item_row(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id:token\titem_id:token\n1\ta\n", r__item="item_id:token\na\nb\na\n")
    with pytest.raises(DataError, match=r"r\.item line 4: item 'a' is listed twice \(first on line 2\)"):
        read_recbole(root)


def test_bad_float_seq_value(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        r__inter="user_id:token\titem_id:token\n1\ta\n",
        r__item="item_id:token\temb:float_seq\na\t1 2\nb\t3 x\n",
    )
    with pytest.raises(DataError, match=r"r\.item line 3: emb value 'x' is not a number"):
        read_recbole(root)


def test_nan_float_seq(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        r__inter="user_id:token\titem_id:token\n1\ta\n",
        r__item="item_id:token\temb:float_seq\na\t1 2\n\nb\tnan 4\nc\t5 inf\n",
    )
    # the file line, as every other error of the reader (the row index was 1)
    with pytest.raises(DataError, match=r"r\.item line 4: modality 'emb' \(item 'b'\) contains NaN or inf \(2 rows\)"):
        read_recbole(root)


BENCH = "user_id:token\titem_id:token\n"


def test_given_split_and_unseen(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        r__train__inter=BENCH + "1\ta\n1\tb\n2\ta\n",
        r__valid__inter=BENCH + "2\tb\n",
        r__test__inter=BENCH + "1\ta\n3\ta\n",
    )
    with pytest.raises(DataError, match=r"r\.test\.inter line 3: user '3' appears in test but never in train"):
        read_recbole(root)
    ds = read_recbole(root, unseen="keep")
    assert ds.train.nnz == 3 and ds.valid.nnz == 1 and ds.test.nnz == 2
    assert read_recbole(root, unseen="drop").test.nnz == 1
    with pytest.raises(DataError, match=r"r\.inter: RecBole interaction file not found"):
        read_recbole(root, split="none")


def test_empty_split_file(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__train__inter=BENCH + "1\ta\n", r__test__inter=BENCH)
    with pytest.raises(DataError, match=r"r\.test\.inter: no data rows after the header"):
        read_recbole(root)


def test_split_given_requires_benchmark(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter=BENCH + "1\ta\n")
    with pytest.raises(DataError, match=r"r\.train\.inter: benchmark train file not found"):
        read_recbole(root, split="given")
    with pytest.raises(DataError, match=r"split='odd'"):
        read_recbole(root, split="odd")


def test_only_train_benchmark_file(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__train__inter=BENCH + "1\ta\n")
    ds = read_recbole(root)
    assert set(ds.splits) == {"train"}


def test_benchmark_files_of_other_suffixes_are_named(tmp_path: Path) -> None:
    """RecBole's benchmark_filename takes any suffixes: r.val.inter was not read, and the
    error said only that the given split had no valid part."""
    root = write(tmp_path / "r", r__train__inter=BENCH + "1\ta\n2\tb\n", r__val__inter=BENCH + "1\tb\n",
                 r__test__inter=BENCH + "2\ta\n")
    with pytest.raises(DataError, match=r"r\.val\.inter is not read: graphrec reads the benchmark files "
                                        r"r\.train\.inter, r\.valid\.inter and r\.test\.inter .*: rename r\.val\.inter "
                                        r"to r\.valid\.inter$"):
        read_recbole(root)
    (root / "r.val.inter").rename(root / "r.valid.inter")
    assert read_recbole(root).splits["valid"].nnz == 1


def test_rating_and_label_fields_and_knowledge_files_are_noted_as_not_read(tmp_path: Path) -> None:
    """A label 0 row is a negative to RecBole (LABEL_FIELD) and graphrec's reader took it as
    an interaction without a word; .kg/.link files were dropped silently."""
    from graphrec.errors import GraphrecNote

    root = write(tmp_path / "r", r__inter="user_id:token\titem_id:token\tlabel:float\nu\ta\t1\nu\tb\t0\n",
                 r__kg="head_id:token\trelation_id:token\ttail_id:token\nx\tr\ty\n")
    with pytest.warns(GraphrecNote) as notes:
        ds = read_recbole(root)
    said = [str(n.message) for n in notes]
    assert ds.train.nnz == 2
    assert any("field 'label' not read: every row is an interaction" in m for m in said), said
    assert any("r.kg not read" in m for m in said), said


def test_prepare_prints_the_ragged_float_seq_warning_as_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    root = write(tmp_path / "r", r__inter=BENCH + "u\ta\nu\tb\nv\ta\n",
                 r__item="item_id:token\tfeat:float_seq\na\t1 2\nb\t1 2 3\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "recbole", str(root), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "float_seq" in ln)
    assert line.startswith("warning: ") and "r.item line 3: float_seq field 'feat' has 3 values there" in line


def test_split_files_without_their_train_file_are_refused(tmp_path: Path) -> None:
    # r.inter beside r.valid.inter: reading r.inter alone would drop the valid rows silently
    root = write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n", r__valid__inter=INTER + "2\t10\t1\t50\n")
    with pytest.raises(DataError, match=r"r\.valid\.inter found but no r\.train\.inter: give all the benchmark files"):
        read_recbole(root)
    assert read_recbole(root, split="none").train.nnz == 1  # on purpose: r.inter alone


def test_non_finite_timestamp_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "r.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\nu\ta\t1\nu\tb\tinf\n")
    with pytest.raises(DataError, match=r"r\.inter line 3: timestamp 'inf' is not a finite number"):
        read_recbole(root)


def test_build_dataset_refuses_non_finite_timestamps() -> None:
    with pytest.raises(DataError, match=r"^src: the timestamp of interaction 1 \(user 'u', item 'b'\) is nan \(1 such\): "
                       "timestamps must be finite numbers"):
        build_dataset(["u", "u"], ["a", "b"], ["train", "train"], timestamps=[1.0, np.nan], source="src")


def test_a_float_seq_field_named_like_a_path_is_refused(tmp_path: Path) -> None:
    # the field became a modality, and Dataset.save wrote features/../../../pwned.npy
    root = tmp_path / "a" / "b" / "r"
    root.mkdir(parents=True)
    (root / "r.inter").write_text("user_id:token\titem_id:token\nu\t1\nu\t2\n")
    (root / "r.item").write_text("item_id:token\t../../../pwned:float_seq\n1\t1 2\n2\t3 4\n")
    with pytest.raises(DataError, match=r"r\.item line 1: float_seq field '\.\./\.\./\.\./pwned' is read as features: "
                       r"modality name '\.\./\.\./\.\./pwned' is not allowed"):
        read_recbole(root)


def test_ids_beyond_int64(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "r.inter").write_text("user_id:token\titem_id:token\nu1\t18446744073709551615\nu1\t5\n")
    ds = read_recbole(root)
    assert list(ds.item_ids) == ["18446744073709551615", "5"] and ds.train.nnz == 2


def test_a_missing_header_is_named(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "r.inter").write_text("1\t2\n1\t3\n")
    with pytest.raises(DataError, match=r"r\.inter line 1: the header is missing: line 1 \['1', '2'\] looks like a data "
                       r"row, not column names: add the header line first \(e\.g\. user_id:token<TAB>item_id:token\)"):
        read_recbole(root)


@pytest.mark.parametrize("body", [
    "u\ta\nu\tb\nv\ta\n\n\n",      # trailing blank lines
    "u\ta\n\nu\tb\n  \nv\ta\n",    # blank lines between rows (empty, or spaces only)
])
def test_blank_lines_are_skipped_as_recbole_skips_them(tmp_path: Path, body: str) -> None:
    root = write(tmp_path / "r", r__inter=BENCH + body, r__item="item_id:token\na\n\nb\n\n")
    ds = read_recbole(root)
    assert ds.train.nnz == 3 and list(ds.item_ids) == ["a", "b"]


def test_rows_after_a_blank_line_keep_their_line_numbers(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter=BENCH + "u\ta\n\n\nu\tb\textra\n")
    with pytest.raises(DataError, match=r"r\.inter line 5: expected 2 tab-separated fields"):
        read_recbole(root)


@pytest.mark.parametrize("na", ["NA", "null", "nan", "N/A", "", '""', "None", "#N/A"])
@pytest.mark.parametrize("where", ["inter_user", "inter_item", "item", "user"])
def test_ids_pandas_reads_as_missing_are_refused_on_reading(tmp_path: Path, na: str, where: str) -> None:
    # write_recbole refuses them (RecBole would read NaN): refuse them where they enter, naming the line
    inter = {"inter_user": f"u\ta\n{na}\tb\n", "inter_item": f"u\ta\nu\t{na}\n"}.get(where, "u\ta\nv\tb\n")
    files = {"r__inter": BENCH + inter}
    if where == "item":
        files["r__item"] = f"item_id:token\tt:token\na\tx\nb\ty\n{na}\tz\n"
    if where == "user":
        files["r__user"] = f"user_id:token\tage:token\nu\t1\n{na}\t2\nv\t3\n"
    root = write(tmp_path / "r", **files)
    col, kind, name, line = {"inter_user": ("user_id", "user", "inter", 3), "inter_item": ("item_id", "item", "inter", 3),
                             "item": ("item_id", "item", "item", 4), "user": ("user_id", "user", "user", 3)}[where]
    shown = repr("" if na == '""' else na)
    with pytest.raises(DataError, match=rf"^.*r\.{name} line {line}: {col} {re.escape(shown)} is read as a missing value "
                       rf"by RecBole \(pandas takes .* for NaN\), so RecBole would not see this {kind}: rename the {kind} "
                       "id in every file that lists it$"):
        read_recbole(root)


@pytest.mark.parametrize("field", ["user_id", "item_id"])
@pytest.mark.parametrize("ftype", ["float", "token_seq", "float_seq"])
def test_id_fields_must_be_tokens(tmp_path: Path, field: str, ftype: str) -> None:
    header = BENCH.replace(f"{field}:token", f"{field}:{ftype}")
    root = write(tmp_path / "r", r__inter=header + "1\t2\n")
    kind = field.split("_")[0]
    with pytest.raises(DataError, match=rf"r\.inter line 1: field '{field}' has type '{ftype}', but RecBole reads {kind} "
                       rf"ids as tokens: declare it {field}:token$"):
        read_recbole(root)


def test_every_float_column_must_hold_numbers_even_an_unused_one(tmp_path: Path) -> None:
    # graphrec ignores rating, but RecBole parses every :float column and fails on text
    root = write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n2\t10\tfive\t50\n")
    with pytest.raises(DataError, match=r"r\.inter line 3: rating 'five' is not a number: fix the value, or declare "
                       r"the column rating:token if it is text$"):
        read_recbole(root)
    write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n2\t10\t\t50\n")  # empty: NaN for RecBole too
    assert read_recbole(tmp_path / "r").train.nnz == 2


def test_a_timestamp_declared_token_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter="user_id:token\titem_id:token\ttimestamp:token\n1\t10\t100\n")
    with pytest.raises(DataError, match=r"r\.inter line 1: field 'timestamp' has type 'token': RecBole would read it as a "
                       r"token \(remapped to ids\), not as a time to order by: declare it timestamp:float"):
        read_recbole(root)


def test_a_float_field_holding_several_numbers_says_float_seq(tmp_path: Path) -> None:
    root = write(tmp_path / "r", r__inter=BENCH + "u\ta\n",
                 r__item="item_id:token\temb:float\tprice:float\na\t0.5 1 2\t3\n")
    with pytest.raises(DataError, match=r"r\.item line 2: emb '0\.5 1 2' is not a number: it holds 3 numbers, but a "
                       r"float field holds one: declare it emb:float_seq$"):
        read_recbole(root)
    write(tmp_path / "r", r__item="item_id:token\tprice:float\na\tcheap\n")
    with pytest.raises(DataError, match=r"r\.item line 2: price 'cheap' is not a number: fix the value, or declare the "
                       r"column price:token if it is text$"):
        read_recbole(root)


def test_a_token_seq_field_of_decimal_numbers_is_noted_as_likely_features(tmp_path: Path) -> None:
    import warnings

    from typer.testing import CliRunner

    from graphrec.cli import app
    from graphrec.errors import GraphrecNote

    root = write(tmp_path / "r", r__inter=BENCH + "u\ta\nu\tb\nv\ta\n",
                 r__item="item_id:token\temb:token_seq\tgenres:token_seq\na\t0.5 -1 2e-3\t3 17\nb\t\t4\n")
    with pytest.warns(GraphrecNote, match=r"r\.item line 1: token_seq field 'emb' holds 3 numbers in each row \(line 2: "
                      r"'0\.5 -1 2e-3'\), so it is read as a text field, not as features: declare it emb:float_seq"):
        ds = read_recbole(root)
    assert ds.item_fields["emb"].tolist() == ["0.5 -1 2e-3", ""] and not ds.item_features
    # integer tokens (category ids) are a real token_seq: no note
    write(tmp_path / "r", r__item="item_id:token\tgenres:token_seq\na\t3 17\nb\t4 5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_recbole(root)
    write(tmp_path / "r", r__item="item_id:token\temb:token_seq\na\t0.5 1\nb\t1.5 2\n")
    res = CliRunner().invoke(app, ["prepare", "--format", "recbole", str(root), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.output.splitlines() if "read as a text field" in ln]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "declare it emb:float_seq" in notes[0]


def test_duplicate_rows_are_merged_counted_and_noted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from graphrec.cli import app

    root = write(tmp_path / "r", r__inter=INTER + "1\t10\t5\t100\n2\t10\t1\t50\n1\t10\t4\t200\n1\t10\t3\t150\n")
    ds = read_recbole(root)
    assert ds.train.nnz == 2 and ds.timestamps is not None and ds.timestamps["train"].tolist() == [200.0, 50.0]
    assert ds.meta["duplicate_rows"] == {str(root / "r.inter"): 2}
    res = CliRunner().invoke(app, ["prepare", "--format", "recbole", str(root), str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (f"note: 2 duplicate rows of {root / 'r.inter'} merged (a (user, item) pair listed again in the same split "
            "is one interaction, with its latest timestamp; RecBole keeps every row unless rm_dup_inter is set)"
            ) in res.stderr.splitlines()
    # benchmark files: counted per file; a pair in two split files is no duplicate (the cross-split note covers it)
    root = write(tmp_path / "b", b__train__inter=BENCH + "u\ta\nu\tb\nv\ta\nu\ta\n", b__valid__inter=BENCH + "u\ta\n",
                 b__test__inter=BENCH + "v\tb\nv\tb\nv\tb\n")
    assert read_recbole(root).meta["duplicate_rows"] == {str(root / "b.train.inter"): 1, str(root / "b.test.inter"): 2}
    assert "duplicate_rows" not in read_recbole(write(tmp_path / "c", c__inter=BENCH + "u\ta\nu\tb\n")).meta


@pytest.mark.parametrize("missing", ["valid", "test"])
def test_a_missing_split_file_is_reported_before_unseen_items(tmp_path: Path, missing: str) -> None:
    # train + test only: the unseen-items error came first, and after --unseen keep the missing valid split
    other = "test" if missing == "valid" else "valid"
    root = write(tmp_path / "r", r__train__inter=BENCH + "u\ta\nv\ta\n", **{f"r__{other}__inter": BENCH + "u\tb\n"})
    with pytest.raises(DataError, match=rf"r: r\.train\.inter and r\.{other}\.inter found but no r\.{missing}\.inter, so "
                       rf"the given split has no {missing} part \(and its {other} rows have users or items never in "
                       rf"train\): add r\.{missing}\.inter, or re-split all interactions on purpose with --split random "
                       r"\(or --split temporal\) and --unseen keep"):
        read_recbole(root)
    assert read_recbole(root, unseen="keep").splits[other].nnz == 1
    # without unseen items nothing changes here: prepare refuses the half split (apply_split)
    write(tmp_path / "r", **{f"r__{other}__inter": BENCH + "u\ta\n"})
    assert set(read_recbole(root).splits) == {"train", other}
