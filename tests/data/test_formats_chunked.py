"""Interaction files read in chunks of rows (RecBole, MMRec, MovieLens): the dataset does
not depend on the chunk size (down to one line per chunk), equals what the rows say when
read naively, and an error found in a later chunk names the same line, and is the same
error, as when the file is read whole.

``chunk_bytes`` is the size of the blocks a file is read in (a block is cut after a line
break): 1 gives one line per chunk, 40 a few lines, the default the whole tiny file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import graphrec.data.formats._common as common
from graphrec.data.dataset import Dataset, IdColumn, build_dataset
from graphrec.data.formats import read_mmrec, read_movielens, read_recbole
from graphrec.data.formats._common import TableScan, read_table
from graphrec.data.splits import SPLITS, cold_start, random_split, temporal_split
from graphrec.errors import DataError

CHUNKS = (1, 7, 40, None)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def same(a: Dataset, b: Dataset) -> None:
    assert a.fingerprint() == b.fingerprint()
    assert a.meta == b.meta
    assert list(a.splits) == list(b.splits)


def draws(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n rows over few users and items (every id repeats across chunks, some pairs twice)."""
    rng = np.random.default_rng(seed)
    return {"u": rng.integers(0, 12, n), "i": rng.integers(0, 20, n), "t": rng.integers(10**9, 2 * 10**9, n),
            "r": rng.integers(1, 6, n), "label": np.searchsorted([0.7, 0.85], rng.random(n), side="right")}


# ---------------------------------------------------------------------- same dataset, any chunk size
def test_recbole_chunks_give_the_same_dataset_as_the_rows(tmp_path: Path) -> None:
    d = draws(300)
    root = tmp_path / "rb"
    lines = {s: ["user_id:token\titem_id:token\trating:float\ttimestamp:float\tnote:token_seq"] for s in SPLITS}
    for u, i, t, r, lab in zip(d["u"].tolist(), d["i"].tolist(), d["t"].tolist(), d["r"].tolist(), d["label"].tolist()):
        # ids that are not numbers, one quoted cell, spaces in a token_seq, a blank line now and then
        uid = f'"u{u}"' if u == 3 else f"u{u}"
        lines[SPLITS[lab]].append(f"{uid}\tB{i:03d}\t{r}\t{t}\tword {r}")
        if (u + i) % 17 == 0:
            lines[SPLITS[lab]].append("")
    for s in SPLITS:
        write(root / f"rb.{s}.inter", "\r\n".join(lines[s]) + "\r\n")
    # what the rows say: user, item, split, timestamp per row, with the given ids
    users, items, splits, ts = [], [], [], []
    for s in SPLITS:
        for ln in lines[s][1:]:
            if ln:
                c = ln.split("\t")
                users.append(c[0].strip('"'))
                items.append(c[1])
                splits.append(s)
                ts.append(float(c[3]))
    expected = build_dataset(users, items, splits, timestamps=ts, unseen="keep")
    for chunk in CHUNKS:
        ds = read_recbole(root, unseen="keep", chunk_bytes=chunk)
        assert ds.fingerprint() == expected.fingerprint(), chunk
        assert "u3" in ds.user_ids.tolist()
        same(ds, read_recbole(root, unseen="keep"))


def test_mmrec_chunks_give_the_same_dataset_as_the_rows(tmp_path: Path) -> None:
    d = draws(400, seed=1)
    rows = ["userID\titemID\trating\ttimestamp\tx_label"]
    rows += [f" {u}\t{i}\t{r}\t{t}\t{lab}" if u == 5 else f"{u}\t{i}\t{r}\t{t}\t{lab}"
             for u, i, r, t, lab in zip(d["u"].tolist(), d["i"].tolist(), d["r"].tolist(), d["t"].tolist(),
                                        d["label"].tolist())]
    write(tmp_path / "m" / "m.inter", "\n".join(rows))  # no final line break
    expected = build_dataset([str(u) for u in d["u"]], d["i"], SPLITS_OF(d["label"]), timestamps=d["t"],
                             item_ids=[str(k) for k in range(int(d["i"].max()) + 1)], unseen="keep")
    first = read_mmrec(tmp_path / "m", unseen="keep")
    assert first.meta["duplicate_rows"]  # pairs listed twice in a split are merged
    for chunk in CHUNKS:
        ds = read_mmrec(tmp_path / "m", unseen="keep", chunk_bytes=chunk)
        assert ds.fingerprint() == expected.fingerprint(), chunk
        same(ds, first)
    drop = read_mmrec(tmp_path / "m", unseen="drop")
    for chunk in (1, 40):
        same(read_mmrec(tmp_path / "m", unseen="drop", chunk_bytes=chunk), drop)


def SPLITS_OF(labels: np.ndarray) -> list[str]:
    return [SPLITS[k] for k in labels.tolist()]


def test_mmrec_id_maps_with_chunks(tmp_path: Path) -> None:
    d = draws(200, seed=2)
    root = tmp_path / "m"
    rows = ["userID\titemID\tx_label"] + [f"{u}\t{i}\t{lab}" for u, i, lab in
                                          zip(d["u"].tolist(), d["i"].tolist(), d["label"].tolist())]
    write(root / "m.inter", "\n".join(rows) + "\n")
    write(root / "u_id_mapping.csv", "user_id\tuserID\n" + "".join(f"user-{k}\t{k}\n" for k in range(12)))
    write(root / "i_id_mapping.csv", "asin\titemID\n" + "".join(f"B{k:04d}\t{k}\n" for k in range(25)))
    expected = build_dataset([f"user-{u}" for u in d["u"]], [f"B{i:04d}" for i in d["i"]], SPLITS_OF(d["label"]),
                             user_ids=[f"user-{k}" for k in range(12)], item_ids=[f"B{k:04d}" for k in range(25)],
                             unseen="keep")
    for chunk in CHUNKS:
        assert read_mmrec(root, unseen="keep", chunk_bytes=chunk).fingerprint() == expected.fingerprint()


def test_movielens_chunks_give_the_same_dataset_as_the_rows(tmp_path: Path) -> None:
    d = draws(300, seed=3)
    ratings = ["userId,movieId,rating,timestamp"] + [
        f"{u + 100},{i * 7},{r / 2},{t}" for u, i, r, t in zip(d["u"].tolist(), d["i"].tolist(), d["r"].tolist(),
                                                               d["t"].tolist())]
    csv_file = write(tmp_path / "ml" / "ratings.csv", "\n".join(ratings) + "\n\n")  # a trailing empty line
    keep = d["r"] / 2 >= 1.5
    expected = build_dataset([str(u + 100) for u in d["u"][keep]], [str(i * 7) for i in d["i"][keep]],
                             ["train"] * int(keep.sum()), timestamps=d["t"][keep],
                             user_ids=[str(u + 100) for u in np.unique(d["u"][keep])],
                             item_ids=[str(i * 7) for i in np.unique(d["i"][keep])])
    for chunk in CHUNKS:
        ds = read_movielens(csv_file, min_rating=1.5, chunk_bytes=chunk)
        assert ds.fingerprint() == expected.fingerprint(), chunk
    # u.data (tab-separated, no header) reads the same rows
    udata = write(tmp_path / "u" / "u.data", "".join(line.replace(",", "\t") + "\n" for line in ratings[1:]))
    for chunk in (1, None):
        assert (read_movielens(udata, min_rating=1.5, chunk_bytes=chunk).fingerprint() == expected.fingerprint())


def test_movielens_quoted_records_across_chunks(tmp_path: Path) -> None:
    # plain lines, then a quoted field with a line break (a record over two lines), then plain lines again:
    # the reader takes over at the first quote; the line numbers after it count both lines of that record
    rows = ["userId,movieId,rating,timestamp"] + [f"{k},{k % 3},4,{k}" for k in range(1, 30)]
    rows += ['30,"1",4,30', '31,"2\n",4,31'] + [f"{k},{k % 3},4,{k}" for k in range(32, 60)] + ["60,x,4,60"]
    f = write(tmp_path / "ratings.csv", "\n".join(rows) + "\n")
    for chunk in CHUNKS:
        with pytest.raises(DataError) as e:
            read_movielens(f, chunk_bytes=chunk)
        assert re.search(r"ratings\.csv line 62: movieId 'x' is not a MovieLens movie id", str(e.value)), chunk
    good = write(tmp_path / "ok" / "ratings.csv", "\n".join(rows[:-1]).replace('"2\n"', '"2"') + "\n")
    base = read_movielens(good)
    for chunk in CHUNKS:
        same(read_movielens(good, chunk_bytes=chunk), base)


# ---------------------------------------------------------------------- errors in later chunks
def inter_file(tmp_path: Path, n: int = 60, bad: dict[int, str] | None = None, name: str = "m") -> Path:
    """An MMRec .inter of n rows; ``bad``: {file line: replacement line}."""
    lines = ["userID\titemID\ttimestamp\tx_label"] + [f"{k % 7}\t{k % 9}\t{1000 + k}\t0" for k in range(n)]
    for line, text in (bad or {}).items():
        lines[line - 1] = text
    return write(tmp_path / name / f"{name}.inter", "\n".join(lines) + "\n")


def error_of(read, chunk: int | None) -> str:
    with pytest.raises(DataError) as e:
        read(chunk)
    return str(e.value)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_bad_value_in_a_later_chunk_names_its_line(tmp_path: Path, chunk: int | None) -> None:
    f = inter_file(tmp_path, bad={50: "3\tx\t1050\t0"})
    assert re.search(r"m\.inter line 50: itemID 'x' is not an integer index", error_of(
        lambda c: read_mmrec(f, chunk_bytes=c), chunk))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_the_first_kind_of_error_wins_wherever_it_is(tmp_path: Path, chunk: int | None) -> None:
    # a negative itemID early, a non-integer one late: the whole-file check reports the non-integer first
    f = inter_file(tmp_path, bad={4: "3\t-2\t1003\t0", 55: "3\t1.5\t1054\t0"})
    assert "line 55: itemID '1.5' is not an integer index" in error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)
    # an x_label of 7 early and a non-integer itemID late: the itemID column is checked first
    f = inter_file(tmp_path, bad={3: "3\t2\t1002\t7", 58: "3\tB7\t1057\t0"}, name="n")
    assert "line 58: itemID 'B7'" in error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)
    # a wrong field count on the last line beats a bad value on the second
    f = inter_file(tmp_path, bad={2: "0\tq\t1000\t0", 61: "0\t1\t2"}, name="o")
    assert "line 61: expected 4 tab-separated fields" in error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)
    # a byte that is no UTF-8 at the end beats a wrong field count at the start
    f = inter_file(tmp_path, bad={2: "0\t1"}, name="p")
    f.write_bytes(f.read_bytes() + b"9\t\xff\t1\t0\n")
    size = f.stat().st_size
    assert f"not UTF-8 text (byte {size - 6})" in error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_counts_span_chunks(tmp_path: Path, chunk: int | None) -> None:
    # the message counts every non-finite timestamp of the file, names the first
    f = inter_file(tmp_path, bad={10: "1\t1\tinf\t0", 45: "1\t2\tnan\t0", 59: "1\t3\t1e999\t0"})
    msg = error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)
    assert "line 10: timestamp 'inf' is not a finite number (3 such rows)" in msg


@pytest.mark.parametrize("chunk", CHUNKS)
def test_lines_after_blank_lines_and_crlf(tmp_path: Path, chunk: int | None) -> None:
    lines = ["userID\titemID\tx_label"] + [f"{k % 4}\t{k % 5}\t0" for k in range(30)]
    lines[12:12] = ["", "   "]  # two blank lines (skipped) after line 12
    lines.append("2\tz\t0")  # line 34
    f = write(tmp_path / "b" / "b.inter", "\r\n".join(lines) + "\r\n")
    assert "b.inter line 34: itemID 'z'" in error_of(lambda c: read_mmrec(f, chunk_bytes=c), chunk)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_whole_file_checks_name_lines_after_blank_lines(tmp_path: Path, chunk: int | None) -> None:
    # the checks made once the file is read (unseen ids, ids beyond the id map) still name file lines
    lines = ["userID\titemID\tx_label"] + [f"{k % 4}\t{k % 5}\t0" for k in range(30)]
    lines[5:5] = ["", ""]
    lines += ["", "1\t9\t2"]  # line 35: item 9 only in test
    f = write(tmp_path / "c" / "c.inter", "\n".join(lines) + "\n")
    assert "c.inter line 35: item '9' appears in test but never in train" in error_of(
        lambda c: read_mmrec(f, chunk_bytes=c), chunk)
    write(tmp_path / "c" / "i_id_mapping.csv", "asin\titemID\n" + "".join(f"B{k}\t{k}\n" for k in range(5)))
    assert "c.inter line 35: itemID 9 is not in i_id_mapping.csv" in error_of(
        lambda c: read_mmrec(f, chunk_bytes=c), chunk)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_csv_empty_line_inside_the_file_is_a_row(tmp_path: Path, chunk: int | None) -> None:
    # an empty line before more rows is a record of no fields (refused), at the end it is dropped
    rows = ["userId,movieId,rating"] + [f"{k},{k},4" for k in range(20)]
    f = write(tmp_path / "ratings.csv", "\n".join(rows[:12] + [""] + rows[12:]) + "\n\n")
    assert "ratings.csv line 13: expected 3 comma-separated fields (userId, movieId, rating), found 0" in error_of(
        lambda c: read_movielens(f, chunk_bytes=c), chunk)
    f.write_text("\n".join(rows) + "\n\n\n")
    assert read_movielens(f, chunk_bytes=chunk).train.nnz == 20


@pytest.mark.parametrize("chunk", CHUNKS)
def test_recbole_errors_in_later_files_and_chunks(tmp_path: Path, chunk: int | None) -> None:
    root = tmp_path / "r"
    head = "user_id:token\titem_id:token\ttimestamp:float\n"
    write(root / "r.train.inter", head + "".join(f"u{k % 5}\ti{k % 6}\t{k}\n" for k in range(40)))
    write(root / "r.valid.inter", head + "".join(f"u{k % 5}\ti{k % 6}\t{k}\n" for k in range(30)) + "NA\ti1\t5\n")
    write(root / "r.test.inter", head + "u1\ti1\t1\n")
    msg = error_of(lambda c: read_recbole(root, chunk_bytes=c), chunk)
    assert re.search(r"r\.valid\.inter line 32: user_id 'NA' is read as a missing value by RecBole", msg)
    # an unknown item of a later chunk of valid: the unseen check names its file and line
    write(root / "r.valid.inter", head + "".join(f"u{k % 5}\ti{k % 6}\t{k}\n" for k in range(30)) + "u1\tnew\t5\n")
    msg = error_of(lambda c: read_recbole(root, chunk_bytes=c), chunk)
    assert re.search(r"r\.valid\.inter line 32: item 'new' appears in valid but never in train", msg)


def test_read_table_in_chunks_is_the_whole_table(tmp_path: Path) -> None:
    text = "a:token\tb:float\n" + "".join(f"x{k}\t{k}\n" + ("\n" if k % 9 == 0 else "") for k in range(50))
    f = write(tmp_path / "t.tsv", text)
    whole = read_table(f, strip_types=True)
    for chunk in (1, 7, 40):
        t = read_table(f, strip_types=True, chunk_bytes=chunk)
        assert t.columns == whole.columns and t.header == whole.header
        assert [t.line(k) for k in range(len(t))] == [whole.line(k) for k in range(len(whole))]
        scan = TableScan(f, strip_types=True, chunk_bytes=chunk)
        parts = list(scan.chunks())
        assert len(parts) > 1 and sum(len(p) for p in parts) == len(whole) == scan.rows
        assert [scan.line(k) for k in range(scan.rows)] == [whole.line(k) for k in range(len(whole))]


def test_default_chunk_size_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = inter_file(tmp_path, n=30)
    whole = read_mmrec(f)
    monkeypatch.setattr(common, "CHUNK_BYTES", 3)
    same(read_mmrec(f), whole)


# ---------------------------------------------------------------------- compact columns, splits
def test_build_dataset_from_id_columns_equals_plain_columns() -> None:
    rng = np.random.default_rng(4)
    users = np.array([f"u{k}" for k in rng.integers(0, 30, 500)])
    items = np.array([str(k) for k in rng.integers(0, 40, 500)])
    split = np.array(SPLITS)[np.searchsorted([0.8, 0.9], rng.random(500), side="right")]
    ts = rng.random(500)
    plain = build_dataset(users, items, split, timestamps=ts, unseen="drop")
    # codes in first-seen order, as the chunked readers make them
    def coded(values: np.ndarray) -> IdColumn:
        uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        seen = np.argsort(first)  # the distinct values in the order they first occur
        code_of = np.empty(len(uniq), np.int64)
        code_of[seen] = np.arange(len(uniq))
        return IdColumn(code_of[inverse], uniq[seen])

    compact = build_dataset(coded(users), coded(items), coded(split), timestamps=ts, unseen="drop")
    same(plain, compact)
    with pytest.raises(DataError, match="item id 'zz' in input is not in the item id list"):
        build_dataset(coded(users), IdColumn(np.r_[np.zeros(499, int), 1], np.array(["0", "zz"])), split,
                      item_ids=[str(k) for k in range(40)])


def _reference_random_split(ds: Dataset, seed: int) -> Dataset:
    """The per-user rule of random_split written out plainly (int64 throughout): same
    draws, same ranks, so the same dataset."""
    u, i, t = [], [], []
    for s in SPLITS:
        if s in ds.splits:
            uu, ii = ds.pairs(s)
            u.append(uu)
            i.append(ii)
            t.append(ds.timestamps[s])
    keys = np.concatenate(u) * ds.n_items + np.concatenate(i)
    tt = np.concatenate(t)
    order = np.lexsort((tt, keys))
    last = np.r_[keys[order][1:] != keys[order][:-1], True]
    keys, tt = keys[order][last], tt[order][last]
    u, i = keys // ds.n_items, keys % ds.n_items
    rng = np.random.default_rng(seed)
    counts = np.bincount(u, minlength=ds.n_users)
    order = np.lexsort((rng.random(len(u)), u))
    rank = np.empty(len(u), np.int64)
    rank[order] = np.arange(len(u)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    n = counts[u]
    held = np.where(n < 3, 0, np.where(n < 10, 2, np.rint(0.2 * n).astype(np.int64)))
    valid = np.where(n < 10, np.minimum(held, 1), held // 2)
    label = np.where(rank < valid, 1, np.where(rank < held, 2, 0))
    return build_dataset(ds.user_ids[u], ds.item_ids[i], np.array(SPLITS)[label], timestamps=tt,
                         user_ids=ds.user_ids, item_ids=ds.item_ids, unseen="keep")


def test_splits_of_compact_pairs_equal_the_plain_rule() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    users, items = rng.integers(0, 60, n), rng.integers(0, 80, n)
    split = np.array(SPLITS)[np.searchsorted([0.8, 0.9], rng.random(n), side="right")]  # pairs in several splits
    ds = build_dataset(users, items, split, timestamps=rng.integers(0, 100, n), unseen="keep")
    for seed in (0, 3):
        ours = random_split(ds, seed=seed)
        ref = _reference_random_split(ds, seed)
        for s in SPLITS:
            assert (ours.splits[s] != ref.splits[s]).nnz == 0
            np.testing.assert_array_equal(ours.timestamps[s], ref.timestamps[s])
    one = random_split(ds, seed=1)  # a dataset of one split per pair: the pairs are taken as they are stored
    assert random_split(one, seed=2).fingerprint() == _reference_random_split(one, 2).fingerprint()
    t = temporal_split(ds)
    assert sum(t.splits[s].nnz for s in SPLITS) == len(np.unique(users * 80 + items))
    cold = cold_start(ds, 0.2, seed=0)
    assert sum(cold.splits[s].nnz for s in SPLITS) == sum(t.splits[s].nnz for s in SPLITS)
