"""UniSRec ``.inter`` files read in chunks of rows, and LATTICE split files read into
arrays: the dataset does not depend on the chunk size (down to one line per chunk) and
equals what the rows say when read naively, and an error in a later chunk names the
same file and line, and is the same error, as when the files are read whole.

``chunk_bytes`` is the size of the blocks a file is read in (a block is cut after a line
break): 1 gives one line per chunk, 7 and 40 a few lines, the default the whole tiny file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphrec.data.formats._common as common
from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats import read_lattice, read_unisrec
from graphrec.data.formats._common import split_token_seqs
from graphrec.data.splits import SPLITS
from graphrec.errors import DataError

CHUNKS = (1, 7, 40, None)
HEAD = "user_id:token\titem_id_list:token_seq\titem_id:token"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def same(a: Dataset, b: Dataset) -> None:
    assert a.fingerprint() == b.fingerprint()
    assert a.meta == b.meta
    assert list(a.splits) == list(b.splits)


def error_of(read, chunk: int | None) -> str:
    with pytest.raises(DataError) as e:
        read(chunk)
    return str(e.value)


# ---------------------------------------------------------------------- UniSRec
def sequences(n_users: int = 15, n_items: int = 25, seed: int = 0) -> dict[int, list[int]]:
    """A sequence of 3 to 12 items per user (some items repeat within a sequence)."""
    rng = np.random.default_rng(seed)
    return {u: rng.integers(0, n_items, rng.integers(3, 13)).tolist() for u in range(n_users)}


def unisrec_folder(root: Path, seqs: dict[int, list[int]], maps: bool, crlf: bool = False) -> Path:
    """UniSRec files of ``seqs`` (the last two items: valid and test targets), with a blank
    line now and then and one quoted user cell."""
    rows: dict[str, list[str]] = {s: [HEAD] for s in SPLITS}
    for u, seq in seqs.items():
        user = f'"{u}"' if u == 4 else str(u)
        for t in range(len(seq) - 3, 0, -1):
            rows["train"].append(f"{user}\t{' '.join(map(str, seq[:t]))}\t{seq[t]}")
            if (u + t) % 7 == 0:
                rows["train"].append("")
        for s, t in (("valid", len(seq) - 2), ("test", len(seq) - 1)):
            rows[s].append(f"{user}\t{' '.join(map(str, seq[:t]))}\t{seq[t]}")
    end = "\r\n" if crlf else "\n"
    for s in SPLITS:
        write(root / f"x.{s}.inter", end.join(rows[s]) + end)
    if maps:
        write(root / "x.user2index", "".join(f"user-{u}\t{u}\n" for u in range(len(seqs))))
        write(root / "x.item2index", "".join(f"B{i:03d}\t{i}\n" for i in range(30)))
    return root


def unisrec_expected(seqs: dict[int, list[int]], maps: bool, unseen: str) -> Dataset:
    """What the rows say (module doc of unisrec): history and target pairs of the train
    rows, the valid and test targets, a pair kept in its earliest split."""
    seen: set[tuple[int, int]] = set()
    cols: dict[str, list] = {"u": [], "i": [], "s": []}
    repeats = {"valid": [0, 0], "test": [0, 0]}
    for split in SPLITS:
        for u, seq in seqs.items():
            if split == "train":
                pairs = [(u, i) for t in range(1, len(seq) - 2) for i in seq[:t + 1]]
            else:
                pairs = [(u, seq[-2] if split == "valid" else seq[-1])]
                repeats[split][1] += 1
            for p in pairs:
                if p in seen:  # an earlier row has the pair (for valid/test: an earlier split)
                    if split != "train":
                        repeats[split][0] += 1
                    continue
                seen.add(p)
                cols["u"].append(p[0])
                cols["i"].append(p[1])
                cols["s"].append(split)
    user = (lambda u: f"user-{u}") if maps else str
    item = (lambda i: f"B{i:03d}") if maps else str
    meta = {"format": "unisrec", "pair_rule": "earliest split wins (train < valid < test)"}
    dropped = {s: r for s, r in repeats.items() if r[0]}
    if dropped:
        meta["repeats_dropped"] = dropped
    n_items = 30 if maps else max(max(s) for s in seqs.values()) + 1
    return build_dataset([user(u) for u in cols["u"]], [item(i) for i in cols["i"]], cols["s"],
                         user_ids=[user(u) for u in range(len(seqs))] if maps else None,
                         item_ids=[item(i) for i in range(n_items)], unseen=unseen, meta=meta)


@pytest.mark.parametrize("maps", [True, False])
def test_unisrec_chunks_give_the_same_dataset_as_the_rows(tmp_path: Path, maps: bool) -> None:
    seqs = sequences()
    root = unisrec_folder(tmp_path / "u", seqs, maps, crlf=not maps)
    whole = read_unisrec(root, unseen="keep")
    expected = unisrec_expected(seqs, maps, "keep")
    assert whole.fingerprint() == expected.fingerprint()
    assert whole.meta["repeats_dropped"] == expected.meta["repeats_dropped"]
    for chunk in CHUNKS:
        same(read_unisrec(root, unseen="keep", chunk_bytes=chunk), whole)
    drop = read_unisrec(root, unseen="drop")
    for chunk in (1, 40):
        same(read_unisrec(root, unseen="drop", chunk_bytes=chunk), drop)


def test_unisrec_default_chunk_size_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = unisrec_folder(tmp_path / "u", sequences(seed=1), maps=True)
    whole = read_unisrec(root, unseen="keep")
    monkeypatch.setattr(common, "CHUNK_BYTES", 3)
    reads: list[int] = []
    blocks = common._Blocks._blocks

    def counted(self):  # the blocks read, over the three .inter files
        for block in blocks(self):
            reads.append(self.size)
            yield block

    monkeypatch.setattr(common._Blocks, "_blocks", counted)
    same(read_unisrec(root, unseen="keep"), whole)
    assert len(reads) > 3 and set(reads) == {3}  # many blocks of the default's 3 bytes, not one per file


def late(root: Path, split: str, line: int, text: str) -> None:
    """Replace file line ``line`` of ``x.{split}.inter`` (1-based) by ``text``."""
    path = root / f"x.{split}.inter"
    lines = path.read_text().split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_unisrec_bad_value_in_a_later_chunk_names_its_line(tmp_path: Path, chunk: int | None) -> None:
    seqs = sequences()
    root = unisrec_folder(tmp_path / "a", seqs, maps=True)
    n = len((root / "x.train.inter").read_text().splitlines())
    late(root, "train", n - 2, "3\t1 2 B7 4\t5")  # a history item near the end
    assert re.search(rf"x\.train\.inter line {n - 2}: item 'B7' is not an integer index", error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk))
    # a target that is no integer, later still, is reported before it (the targets are checked first)
    late(root, "train", n, "3\t1 2\tq")
    assert f"x.train.inter line {n}: item 'q' is not an integer index" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)
    # an index outside the map early, one that is no integer late: the integer check comes first
    root = unisrec_folder(tmp_path / "b", seqs, maps=True)
    late(root, "train", 3, "3\t1 2 99\t5")
    late(root, "train", n - 1, "3\t1 2 x\t5")
    assert f"x.train.inter line {n - 1}: item 'x' is not an integer index" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)
    late(root, "train", n - 1, "3\t1 2\t5")
    assert re.search(r"x\.train\.inter line 3: item index 99 is outside .*x\.item2index \(indices 0\.\.29\)",
                     error_of(lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_unisrec_errors_keep_their_order_over_files(tmp_path: Path, chunk: int | None) -> None:
    seqs = sequences()
    root = unisrec_folder(tmp_path / "a", seqs, maps=True)
    # items of every file before users: a bad user in train, a bad item late in test
    late(root, "train", 2, "u9\t1\t2")
    late(root, "test", 14, "3\t1 2\t-4")
    assert "x.test.inter line 14: item index -4 is outside" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)
    late(root, "test", 14, "3\t1 2\t4")
    assert "x.train.inter line 2: user 'u9' is not an integer index" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)
    # a user index outside the map in a later chunk of valid
    late(root, "train", 2, "0\t1\t2")
    late(root, "valid", 13, "44\t1 2\t4")
    assert re.search(r"x\.valid\.inter line 13: user index 44 is outside .*x\.user2index \(indices 0\.\.14\)",
                     error_of(lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk))
    # a wrong field count at the end of test beats every bad value before it
    late(root, "test", 16, "3\t1 2")
    assert "x.test.inter line 16: expected 3 tab-separated fields" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_unisrec_whole_file_checks_name_later_lines(tmp_path: Path, chunk: int | None) -> None:
    # every valid/test target is in some other user's train sequence: nothing unseen but what is written below
    seqs = {u: [(u + k) % 10 for k in range(6)] for u in range(15)}
    root = unisrec_folder(tmp_path / "a", seqs, maps=False)
    assert read_unisrec(root).meta.get("repeats_dropped") is None
    n = len((root / "x.train.inter").read_text().splitlines())
    # the largest item index, in a history near the end of train: the dense-index check names its row
    late(root, "train", n - 1, "3\t1 123456 2\t5")
    assert f"x.train.inter line {n - 1}: item index 123456 would make 123,457 items" in error_of(
        lambda c: read_unisrec(root, unseen="keep", chunk_bytes=c), chunk)
    late(root, "train", n - 1, "3\t1 2\t5")
    # an item only in test, on its last line: the unseen check names it
    late(root, "test", 16, "14\t1 2\t28")
    assert "x.test.inter line 16: item '28' appears in test but never in train" in error_of(
        lambda c: read_unisrec(root, chunk_bytes=c), chunk)


# the messages of tests/data/test_formats_unisrec.py's tiny folders, at every chunk size
TINY = {
    "x.train.inter": HEAD + "\n0\t0\t1\n0\t0 1\t2\n1\t1\t0\n",
    "x.valid.inter": HEAD + "\n0\t0 1 2\t3\n1\t1 0\t2\n",
    "x.test.inter": HEAD + "\n0\t0 1 2 3\t1\n1\t1 0 2\t3\n",
    "x.item2index": "A\t0\nB\t1\nC\t2\nD\t3\n",
    "x.user2index": "u0\t0\nu1\t1\n",
}


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("file, text, message", [
    ("x.train.inter", HEAD + "\n0\t0\t1\n0\t0 B\t2\n", r"x\.train\.inter line 3: item 'B' is not an integer index"),
    ("x.train.inter", HEAD + "\n0\t0\t1\n0\t0 1_0\t2\n", r"x\.train\.inter line 3: item '1_0' is not an integer"),
    ("x.test.inter", HEAD + "\n0\t0 1 2 3\t9\n", r"x\.test\.inter line 2: item index 9 is outside .*x\.item2index"),
    ("x.valid.inter", "user_id:token\titem:token\n0\t3\n", r"x\.valid\.inter line 1: header has no 'item_id' column"),
    ("x.test.inter", HEAD + "\n", r"x\.test\.inter: no data rows after the header"),
    ("x.valid.inter", HEAD.replace("\t", ",") + "\n0,0 1 2,3\n",
     r"x\.valid\.inter line 1: the file is not tab-separated \(its header .* is comma-separated\)"),
    ("x.train.inter", "0\t0\t1\n0\t0 1\t2\n", r"x\.train\.inter line 1: the header is missing"),
    ("x.valid.inter", HEAD + "\n0\t0 1 2\t3\n1\t1 0\t2\n", r"x\.valid\.inter line 2: item 'D' appears in valid"),
])
def test_unisrec_tiny_errors_at_every_chunk_size(tmp_path: Path, chunk: int | None, file: str, text: str,
                                                 message: str) -> None:
    for name, content in {**TINY, file: text}.items():
        write(tmp_path / "t" / name, content)
    assert re.search(message, error_of(lambda c: read_unisrec(tmp_path / "t", chunk_bytes=c), chunk))


def test_split_token_seqs_reads_cells_as_str_split() -> None:
    cells = ["1 2", "", "  3\t4 ", "5", "a\x1cb", " ", "é 6"]
    for part in (cells, cells[:6], []):
        tokens, counts = split_token_seqs(part)
        assert tokens == [t for c in part for t in c.split()]
        assert counts.tolist() == [len(c.split()) for c in part]


# ---------------------------------------------------------------------- LATTICE
def lattice_folder(root: Path, splits: dict[str, dict[str, list]], maps: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for s, fname in (("train", "train.json"), ("valid", "val.json"), ("test", "test.json")):
        (root / fname).write_text(json.dumps(splits[s]))
    if maps:
        (root / "user2id.json").write_text(json.dumps({f"user-{u}": u for u in range(12)}))
        (root / "item2id.json").write_text(json.dumps({f"B{i:03d}": i for i in range(40)}))
    return root


def lattice_splits(seed: int = 0) -> dict[str, dict[str, list]]:
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, list]] = {}
    for s, (low, high) in (("train", (0, 15)), ("valid", (0, 3)), ("test", (0, 3))):
        out[s] = {str(u): rng.integers(0, 35, rng.integers(low, high)).tolist() for u in rng.permutation(12).tolist()}
    return out


@pytest.mark.parametrize("maps", [True, False])
def test_lattice_arrays_give_the_same_dataset_as_the_rows(tmp_path: Path, maps: bool) -> None:
    splits = lattice_splits()
    root = lattice_folder(tmp_path / "l", splits, maps)
    rows = [(u, i, s) for s in SPLITS for u, items in splits[s].items() for i in items]
    user = (lambda u: f"user-{u}") if maps else str
    item = (lambda i: f"B{i:03d}") if maps else str
    n_items = 40 if maps else max(i for _, i, _ in rows) + 1
    for unseen in ("keep", "drop"):
        expected = build_dataset([user(u) for u, _, _ in rows], [item(i) for _, i, _ in rows], [s for *_, s in rows],
                                 user_ids=[user(u) for u in range(12)] if maps else None,
                                 item_ids=[item(i) for i in range(n_items)], unseen=unseen)
        assert read_lattice(root, unseen=unseen).fingerprint() == expected.fingerprint()


def test_lattice_errors_name_the_first_bad_entry_in_file_order(tmp_path: Path) -> None:
    splits = lattice_splits()
    root = lattice_folder(tmp_path / "l", splits, maps=False)
    train = dict(splits["train"])
    keys = list(train)
    # a negative index early and a string later: the first in file order wins, whatever its kind
    train[keys[2]] = [1, -3]
    train[keys[8]] = [1, "B2"]
    (root / "train.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train\.json: user '{keys[2]}' has negative item index -3"):
        read_lattice(root)
    train[keys[2]] = [1, True]
    (root / "train.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train\.json: user '{keys[2]}' has item True, not an integer index"):
        read_lattice(root)
    train[keys[2]] = [1, 2]
    train[keys[5]] = 4.5
    (root / "train.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train\.json: user '{keys[5]}' maps to float, not a list"):
        read_lattice(root)
    train[keys[5]] = [1.0]
    (root / "train.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train\.json: user '{keys[5]}' has item 1\.0, not an integer index"):
        read_lattice(root)
    train[keys[5]] = [1, 2**64]  # past int64: named, not an OverflowError
    (root / "train.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train\.json: user '{keys[5]}' has item index {2**64}, beyond any catalogue"):
        read_lattice(root)


def test_lattice_row_origins_across_files(tmp_path: Path) -> None:
    splits = {"train": {str(u): [u, u + 1, u + 2] for u in (5, 0, 3, 11, 1, 10, 2, 4, 6, 7, 8, 9)},
              "valid": {"2": [9], "0": []},
              "test": {"3": [], "7": [1], "10": [2, 38]}}  # empty lists before the rows named
    root = lattice_folder(tmp_path / "l", splits, maps=True)
    (root / "item2id.json").write_text(json.dumps({f"B{i:03d}": i for i in range(36)}))
    with pytest.raises(DataError, match=r"test\.json: user '10' has item index 38, outside .*item2id\.json \(36 items\)"):
        read_lattice(root)
    (root / "item2id.json").write_text(json.dumps({f"B{i:03d}": i for i in range(40)}))
    with pytest.raises(DataError, match=r"test\.json \(user key '10', item index 38\): item 'B038' appears in test"):
        read_lattice(root)
    # only the keys of users with items are looked up in user2id.json, in file order
    (root / "user2id.json").write_text(json.dumps({f"user-{u}": u for u in range(12)}))
    splits["valid"]["x"] = []
    (root / "val.json").write_text(json.dumps(splits["valid"]))
    assert read_lattice(root, unseen="keep").n_users == 12
    (root / "user2id.json").write_text(json.dumps({f"user-{u}": u for u in range(10)}))
    with pytest.raises(DataError, match=r"train\.json: user index '11' is outside .*user2id\.json \(indices 0\.\.9\)"):
        read_lattice(root, unseen="keep")
