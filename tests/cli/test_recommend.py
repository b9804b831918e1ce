"""`graphrec recommend`: from source files with string ids to a recommendations file with
the same ids; seen items, candidates, unknown users, outputs checked first."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.testing import one_error_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
K = 5


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """RecBole atomic files whose ids are strings, not 0..n-1 and not in index order (one
    item id holds a comma), prepared with `graphrec prepare` and trained with
    `graphrec train lightgcn`. Returns the paths and the source pairs per split."""
    root = tmp_path_factory.mktemp("recommend")
    ds = synthetic_catalogue(n_users=120, n_items=60, n_clusters=4, seed=0)
    rng = np.random.default_rng(7)
    user_names = [f"cust-{n}" for n in rng.choice(np.arange(1000, 99999), ds.n_users, replace=False)]
    item_names = [f"sku-{n:x}" for n in rng.choice(np.arange(4096, 65536), ds.n_items, replace=False)]
    item_names[3] = "sku-3,b"  # CSV-quoted in the output
    src = root / "src" / "shop"
    src.mkdir(parents=True)
    pairs: dict[str, set[tuple[str, str]]] = {}
    for split in ("train", "valid", "test"):
        users, items = ds.pairs(split)
        pairs[split] = {(user_names[u], item_names[i]) for u, i in zip(users, items)}
        lines = "".join(f"{user_names[u]}\t{item_names[i]}\n" for u, i in zip(users, items))
        (src / f"shop.{split}.inter").write_text("user_id:token\titem_id:token\n" + lines)
    data = root / "data"
    res = run("prepare", "--format", "recbole", src, data, "--unseen", "keep")
    assert res.exit_code == 0, res.output
    run_dir = root / "run"
    res = run("train", "lightgcn", "--data", data, "--epochs", "2", "--dim", "8", "--device", "cpu",
              "--out", run_dir, "--quiet")
    assert res.exit_code == 0, res.output
    users = {u for s in pairs.values() for u, _ in s}
    items = {i for s in pairs.values() for _, i in s}
    return {"run": run_dir, "data": data, "pairs": pairs, "users": users, "items": items, "root": root}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["user_id", "item_id", "rank", "score"]
    return rows


def by_user(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[r["user_id"]].append(r)
    return out


def check_lists(rows: list[dict[str, str]], k: int) -> dict[str, list[dict[str, str]]]:
    """k rows per user, ranks 1..k in order, scores non-increasing."""
    users = by_user(rows)
    for u, rs in users.items():
        assert [int(r["rank"]) for r in rs] == list(range(1, k + 1)), u
        scores = [float(r["score"]) for r in rs]
        assert all(a >= b for a, b in zip(scores, scores[1:])), (u, scores)
    return users


def assert_same_lists(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    """Same items and ranks; scores equal up to float32 rounding (a user scored in
    another batch may round differently in the matrix product)."""
    assert [(r["item_id"], r["rank"]) for r in a] == [(r["item_id"], r["rank"]) for r in b]
    np.testing.assert_allclose([float(r["score"]) for r in a], [float(r["score"]) for r in b], rtol=1e-5, atol=1e-7)


def test_help_has_an_example():
    res = run("recommend", "--help")
    assert res.exit_code == 0 and "Example" in res.output


def test_all_users_with_the_source_ids_and_no_seen_item(shop, tmp_path):
    out = tmp_path / "out" / "recs.csv"  # a missing folder is created
    res = run("recommend", shop["run"], "--all", "--k", K, "--out", out, "--device", "cpu", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output and f"{len(shop['users']) * K} rows" in res.output
    rows = read_csv(out)
    users = check_lists(rows, K)
    assert set(users) == shop["users"]  # the source's ids, every user once
    assert {r["item_id"] for r in rows} <= shop["items"]
    assert not {(r["user_id"], r["item_id"]) for r in rows} & shop["pairs"]["train"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["recs.csv"]  # no temporary file left


def test_default_is_every_user_and_seen_covers_the_named_splits(shop, tmp_path):
    out = tmp_path / "recs.csv"
    res = run("recommend", shop["run"], "--k", K, "--seen", "train,valid,test", "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    rows = read_csv(out)
    assert set(by_user(rows)) == shop["users"]
    every = shop["pairs"]["train"] | shop["pairs"]["valid"] | shop["pairs"]["test"]
    assert not {(r["user_id"], r["item_id"]) for r in rows} & every


def test_include_seen_ranks_every_item(shop, tmp_path):
    out = tmp_path / "recs.csv"
    n_items = len(shop["items"])
    res = run("recommend", shop["run"], "--include-seen", "--k", 1000, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    users = check_lists(read_csv(out), n_items)
    assert all({r["item_id"] for r in rs} == shop["items"] for rs in users.values())


def test_items_restricts_the_candidates(shop, tmp_path):
    some = sorted(shop["items"])[::4]  # includes "sku-3,b" only by chance: quote it anyway
    items = tmp_path / "new_items.csv"
    with open(items, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["title", "item_id"])
        w.writerows([f"title of {i}", i] for i in some)
    out = tmp_path / "recs.csv"
    res = run("recommend", shop["run"], "--items", items, "--k", 100, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    rows = read_csv(out)
    assert {r["item_id"] for r in rows} <= set(some)
    assert not {(r["user_id"], r["item_id"]) for r in rows} & shop["pairs"]["train"]
    for u, rs in by_user(rows).items():  # every unseen candidate, once
        unseen = {i for i in some if (u, i) not in shop["pairs"]["train"]}
        assert sorted(r["item_id"] for r in rs) == sorted(unseen)
        assert [int(r["rank"]) for r in rs] == list(range(1, len(rs) + 1))


def test_the_closing_line_counts_the_users_with_rows(shop, tmp_path):
    """'wrote OUT: N rows, M users': M counts the users that got a row (counted from the
    rows' ids without a set of them, 1.6 s at 10M rows): a user who has seen every candidate
    gets none and is not counted, an unknown user given the popular items is."""
    train = shop["pairs"]["train"]
    first, *others = sorted(shop["users"])[:5]
    items = tmp_path / "items.txt"
    items.write_text("".join(f"{i}\n" for i in sorted({i for u, i in train if u == first})))
    users = tmp_path / "users.txt"
    users.write_text("\n".join([others[0], first, "ghost", *others[1:]]) + "\n")
    out = tmp_path / "recs.csv"
    res = run("recommend", shop["run"], "--users", users, "--items", items, "--k", 3, "--unknown", "popular",
              "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    rows = read_csv(out)
    got = by_user(rows)
    assert first not in got and "ghost" in got and len(got) >= 2
    short = " at most" if len(rows) < 3 * len(got) else ""  # a user with fewer unseen candidates than 3
    assert f"wrote {out}: {len(rows)} rows, {len(got)} users, top 3{short} (seen train items excluded)" in res.output


def test_a_large_csv_shows_the_write_progress_unless_quiet(shop, tmp_path, monkeypatch):
    """Writing a CSV of several blocks (10M rows: ~15 s) shows its progress over its rows,
    as the scoring does over its batches: in a log (the test runner's stderr is no
    terminal) as plain lines, here one per step ($GRAPHREC_PROGRESS_SECONDS=0), never a
    bar's carriage returns; --quiet shows neither. The files are the same."""
    import graphrec._csv

    monkeypatch.setattr(graphrec._csv, "CHUNK_ROWS", 100)  # 120 users x 5 rows: 6 blocks
    monkeypatch.setenv("GRAPHREC_PROGRESS_SECONDS", "0")
    res = run("recommend", shop["run"], "--k", K, "--out", tmp_path / "bar.csv", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "write: 100/600 rows (17%)" in res.output and "write: 600 rows in 0:0" in res.output
    assert "recommend: 1/1 batch (100%)" in res.output and "\r" not in res.output
    res = run("recommend", shop["run"], "--k", K, "--out", tmp_path / "quiet.csv", "--device", "cpu", "--quiet")
    assert res.exit_code == 0 and "write: " not in res.output and "recommend: " not in res.output
    assert (tmp_path / "bar.csv").read_bytes() == (tmp_path / "quiet.csv").read_bytes()


def test_users_file_in_both_formats_keeps_its_order(shop, tmp_path):
    chosen = sorted(shop["users"])[:7][::-1]
    plain = tmp_path / "users.txt"
    plain.write_text("\n".join(chosen + [chosen[0], ""]) + "\n")  # a repeated id is kept once
    table = tmp_path / "users.csv"
    table.write_text("segment,user_id\n" + "".join(f"s{n},{u}\n" for n, u in enumerate(chosen)))
    outputs = []
    for n, f in enumerate((plain, table)):
        out = tmp_path / f"recs{n}.csv"
        res = run("recommend", shop["run"], "--users", f, "--k", K, "--out", out, "--quiet")
        assert res.exit_code == 0, res.output
        rows = read_csv(out)
        assert list(dict.fromkeys(r["user_id"] for r in rows)) == chosen
        check_lists(rows, K)
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    # --out naming the users file replaced it with --overwrite; inside the run folder: refused too
    kept = table.read_text()
    for out, what in ((table, f"is the --users input itself: write to another path"),
                      (shop["run"] / "recs.csv", f"lies inside RUN_DIR {shop['run']}, which is an input (graphrec keeps "
                                                 "those folders as it wrote them): write it outside that folder")):
        line = one_error_line(run("recommend", shop["run"], "--users", table, "--out", out, "--overwrite"))
        assert line == f"error: --out {out} {what}", line
    assert table.read_text() == kept and not (shop["run"] / "recs.csv").exists()
    whole = tmp_path / "all.csv"
    assert run("recommend", shop["run"], "--k", K, "--out", whole, "--quiet").exit_code == 0
    every = by_user(read_csv(whole))
    for u, rs in by_user(read_csv(tmp_path / "recs0.csv")).items():
        assert_same_lists(rs, every[u])


def test_an_unknown_user_is_one_line_and_nothing_is_written(shop, tmp_path):
    users = tmp_path / "users.txt"
    known = sorted(shop["users"])[0]
    users.write_text(f"{known}\nnobody-42\nnobody-43\n")
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "recs.csv"
    res = run("recommend", shop["run"], "--users", users, "--out", out)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output
    assert "'nobody-42'" in lines[0] and str(users) in lines[0] and "--unknown popular" in lines[0]
    assert list(folder.iterdir()) == []


def test_unknown_popular_gives_the_most_popular_training_items(shop, tmp_path):
    users = tmp_path / "users.txt"
    known = sorted(shop["users"])[0]
    users.write_text(f"nobody-42\n{known}\n")
    out = tmp_path / "recs.csv"
    res = run("recommend", shop["run"], "--users", users, "--unknown", "popular", "--k", K, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "note: 1 unknown user got the most popular training items" in res.output
    rows = by_user(read_csv(out))
    assert list(rows) == ["nobody-42", known]
    counts = Counter(i for _, i in shop["pairs"]["train"])
    top_counts = sorted(counts.values(), reverse=True)[:K]
    got = rows["nobody-42"]
    assert [float(r["score"]) for r in got] == top_counts
    assert all(counts[r["item_id"]] == float(r["score"]) for r in got)
    whole = tmp_path / "all.csv"
    assert run("recommend", shop["run"], "--k", K, "--out", whole, "--quiet").exit_code == 0
    assert_same_lists(rows[known], by_user(read_csv(whole))[known])  # known users: the model's list


def test_refuses_an_existing_out_unless_overwrite(shop, tmp_path):
    out = tmp_path / "recs.csv"
    out.write_text("keep me\n")
    res = run("recommend", shop["run"], "--out", out, "--quiet")
    assert res.exit_code == 1 and "already exists" in res.output and "--overwrite" in res.output
    assert out.read_text() == "keep me\n"
    res = run("recommend", shop["run"], "--out", out, "--k", K, "--overwrite", "--quiet")
    assert res.exit_code == 0, res.output
    check_lists(read_csv(out), K)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv"]


def test_parquet(shop, tmp_path):
    out = tmp_path / "recs.parquet"
    res = run("recommend", shop["run"], "--k", K, "--out", out, "--quiet")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert res.exit_code == 1
        assert len(res.output.strip().splitlines()) == 1 and "pyarrow" in res.output and ".csv" in res.output
        assert list(tmp_path.iterdir()) == []
        return
    assert res.exit_code == 0, res.output
    table = pq.read_table(out).to_pydict()
    assert list(table) == ["user_id", "item_id", "rank", "score"]
    csv_out = tmp_path / "recs.csv"
    assert run("recommend", shop["run"], "--k", K, "--out", csv_out, "--quiet").exit_code == 0
    rows = read_csv(csv_out)
    assert table["user_id"] == [r["user_id"] for r in rows] and table["item_id"] == [r["item_id"] for r in rows]
    assert table["rank"] == [int(r["rank"]) for r in rows]
    np.testing.assert_array_equal(np.float32(table["score"]), np.float32([r["score"] for r in rows]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "recs.txt"], "write a .csv or .parquet file"),
        (["--out", "recs.csv", "--all", "--users", "users.txt"], "exclude each other"),
        (["--out", "recs.csv", "--unknown", "maybe", "--users", "users.txt"], "--unknown 'maybe'"),
        (["--out", "recs.csv", "--unknown", "popular"], "--unknown applies to the ids of --users"),
        (["--out", "recs.csv", "--users", "missing.txt"], "missing.txt: file not found"),
        (["--out", "recs.csv", "--users", "bad.csv"], "no user_id column"),
        (["--out", "recs.csv", "--items", "items.txt"], "item id 'no-such-item'"),
        (["--out", "recs.csv", "--seen", "train,tests"], "unknown split 'tests'"),
        (["--out", "recs.csv", "--seen", ","], "--seen ',' names no split: give comma-separated split names"),
        (["--out", "recs.csv", "--users", "."], ".: a folder, not a file: give one id per line"),
        (["--out", "recs.csv", "--include-seen", "--seen", "valid"], "--include-seen keeps every item: drop one"),
        (["--out", "recs.csv", "--k", "0"], "k must be an integer >= 1"),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(shop, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "users.txt").write_text(sorted(shop["users"])[0] + "\n")
    (tmp_path / "bad.csv").write_text("customer,segment\nx,y\n")
    (tmp_path / "items.txt").write_text("no-such-item\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = run("recommend", shop["run"], *args)
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and message in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_not_a_ranking_run(tmp_path):
    run_dir = tmp_path / "ctr-run"
    run_dir.mkdir()
    (run_dir / "record.json").write_text('{"task": "ctr", "model": "din", "dataset": {"path": null}}')
    res = run("recommend", run_dir, "--out", tmp_path / "recs.csv")
    assert res.exit_code == 1 and "top-k ranking run" in res.output
    res = run("recommend", tmp_path / "nothing", "--out", tmp_path / "recs.csv")
    assert res.exit_code == 1 and "not a graphrec run directory" in res.output
    assert not (tmp_path / "recs.csv").exists()


def test_a_header_read_as_an_id_is_named_not_recommended_to(shop, tmp_path):
    """A one-column file whose header is not user_id (userid, users, user_id:token) is an
    id list whose first 'id' is the header: one line naming it, even with --unknown
    popular (which would give the header a list); an unknown id that merely starts like
    one (user9999) is an unknown id as before."""
    known = sorted(shop["users"])[0]
    for header in ("userid", "Users", "user_id:token"):
        users = tmp_path / f"{header.replace(':', '_')}.csv"
        users.write_text(f"{header}\n{known}\n")
        res = run("recommend", shop["run"], "--users", users, "--unknown", "popular", "--out", tmp_path / "r.csv")
        assert one_error_line(res) == (f"error: {users}: its first line, {header!r}, is no user of the run's dataset "
                                       "and reads as a column name: name the header user_id (or drop it and give one "
                                       "id per line)")
        assert not (tmp_path / "r.csv").exists()
    items = tmp_path / "items.txt"
    items.write_text("item\n" + "".join(f"{i}\n" for i in sorted({i for _, i in shop["pairs"]["train"]})[:3]))
    res = run("recommend", shop["run"], "--items", items, "--out", tmp_path / "r.csv")
    assert "its first line, 'item', is no item of the run's dataset" in one_error_line(res)
    users = tmp_path / "plain.txt"
    users.write_text(f"user9999\n{known}\n")
    res = run("recommend", shop["run"], "--users", users, "--unknown", "popular", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output
