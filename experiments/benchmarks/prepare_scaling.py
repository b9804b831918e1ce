#!/usr/bin/env python
"""``graphrec prepare`` on large interaction files: wall time and peak memory per row.

Writes one synthetic interaction file per format (``--rows`` rows, ``--users`` users drawn
uniformly, ``--items`` items of power-law popularity, so a few pairs repeat; unix-second
timestamps) into ``--work``, then runs ``graphrec prepare`` on each in its own process and
reports the wall seconds of the command, the process's peak resident memory (``ru_maxrss``)
after its imports and at the end, and the peak above that baseline per interaction:

* ``recbole``: ``{name}.inter``, ``user_id:token item_id:token rating:float timestamp:float``,
  string ids (``U00a1b2c3``, ``B000012345``); no given split, so prepare splits at random;
* ``mmrec``: ``{name}.inter``, ``userID itemID rating timestamp x_label`` (integer ids,
  x_label 0/1/2 about 80/10/10), read with ``--unseen drop``;
* ``movielens``: ``ratings.csv``, ``userId,movieId,rating,timestamp``; random split;
* ``unisrec``: ``{name}.{train,valid,test}.inter`` (``user_id item_id_list item_id``, user
  and item indices) with ``{name}.user2index`` / ``{name}.item2index``: each user's rows,
  in drawn order, are the user's sequence; its last two items are the valid and test
  targets, every earlier item but the first the target of a train row whose history is
  the items before it (at most :data:`HISTORY` of them, newest last), as UniSRec writes
  its downstream sets; read with ``--unseen drop``. ``--rows`` counts sequence items, so
  the train file holds several times as many history entries (about 2.5x at 8 items per
  user: ``--users`` of ``--rows / 8``);
* ``lattice``: ``train.json``, ``val.json``, ``test.json`` (``{user index: [item
  index, ...]}``, the split drawn as for ``mmrec``), ``user2id.json`` and
  ``item2id.json``; read with ``--unseen drop``.

The files are kept in ``--work`` and reused when they exist for the same ``--rows``,
``--users``, ``--items`` and ``--seed`` (generating 10M rows takes a minute per format).
``--compare DIR`` also prepares each file with the graphrec checkout ``DIR`` (e.g. an
earlier commit, ``git worktree add /tmp/base COMMIT``), in the same run, and prints both
and the ratios, and whether the two prepared datasets have the same fingerprint.

Usage (from the repository root; nothing else running)::

    PYTHONPATH=. python experiments/benchmarks/prepare_scaling.py --rows 10000000 --work /tmp/prep-data
    PYTHONPATH=. python experiments/benchmarks/prepare_scaling.py --rows 1000000 --work /tmp/prep-data \\
        --compare /tmp/base --formats recbole
    PYTHONPATH=. python experiments/benchmarks/prepare_scaling.py --rows 5000000 --users 625000 \\
        --work /tmp/prep-data --formats unisrec,lattice --compare /tmp/base

Measured 2026-12-07 on a 2-core VM (23 GB), 10,000,000 rows, 500,000 users, 1,000,000
items; the process's imports take 54 MB::

    recbole      63.7 s  peak 1,146 MB: 114 bytes per row above the imports
    mmrec        48.5 s  peak   970 MB:  96 bytes per row
    movielens    44.0 s  peak   983 MB:  97 bytes per row

and the same files with commit 0122014 (``/usr/bin/time -v``, other work on the machine):
194 s / 8.7 GB, 146 s / 7.7 GB, 140 s / 7.7 GB. ``--rows 5000000 --compare`` in one run
(quiet machine): 1.95x, 2.59x, 2.61x the time and 7.4x, 8.5x, 7.6x the memory above the
imports before; fingerprints equal. See docs/scaling.md ("prepare at 10 million
interactions").

UniSRec and LATTICE, measured 2026-12-07 on the same VM (busy), ``--rows 5000000 --users
625000`` with ``/usr/bin/time -v``, commit 89c6540 before: unisrec 87 s / 9.2 GB before,
23 s / 0.86 GB now; lattice 26 s / 1.93 GB before, 14 s / 0.84 GB now; ``--rows 2000000
--users 250000 --compare``: 10.3x (unisrec) and 2.4x (lattice) the memory above the
imports before, fingerprints equal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO))  # after PYTHONPATH: a checkout named there is the one timed

from experiments._script import check_out_folder, cpu_wait_total, fail  # noqa: E402

FORMATS = ("recbole", "mmrec", "movielens", "unisrec", "lattice")
BLOCK = 1_000_000  # rows formatted at a time while writing
HISTORY = 50  # the longest history of a UniSRec row (UniSRec's MAX_ITEM_LIST_LENGTH)
#: the file of each format whose presence means it was written (the folder is written
#: whole under another name and renamed)
MAIN_FILE = {"recbole": "{tag}.inter", "mmrec": "{tag}.inter", "movielens": "ratings.csv",
             "unisrec": "{tag}.train.inter", "lattice": "train.json"}

# the child: import the command line, note the peak RSS, run `graphrec prepare`, print both peaks
_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import graphrec.cli, graphrec.data.formats, graphrec.data.splits
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
sys.argv = ["graphrec"] + sys.argv[2:]
try:
    graphrec.cli.main()
    rc = 0
except SystemExit as e:
    rc = e.code or 0
seconds = time.perf_counter() - t
print("RESULT", json.dumps({"rc": rc, "seconds": seconds, "before_kb": before,
      "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "graphrec": graphrec.__file__}))
"""


def draw(rows: int, users: int, items: int, seed: int) -> dict[str, np.ndarray]:
    """The synthetic interactions (module doc)."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, rows)
    pop = 1.0 / np.arange(1, items + 1) ** 0.8  # power law over items in a random order
    cdf = np.cumsum(pop)
    cdf /= cdf[-1]
    perm = rng.permutation(items)
    i = perm[np.minimum(np.searchsorted(cdf, rng.random(rows)), items - 1)]
    rating = rng.integers(1, 11, rows) / 2  # 0.5 .. 5.0
    ts = rng.integers(1_200_000_000, 1_700_000_000, rows)
    label = np.searchsorted([0.8, 0.9], rng.random(rows), side="right")
    return {"u": u, "i": i, "rating": rating, "ts": ts, "label": label}


def _lines(path: Path, lines: Iterator[str]) -> None:
    """Write ``lines`` (without line breaks) to ``path``, :data:`BLOCK` at a time."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        block: list[str] = []
        for line in lines:
            block.append(line)
            if len(block) == BLOCK:
                f.write("\n".join(block) + "\n")
                block.clear()
        if block:
            f.write("\n".join(block) + "\n")


def _sequences(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The users that have rows, where each one's rows start and end in ``order``, and
    ``order``: the rows grouped by user, in drawn order within a user."""
    order = np.argsort(cols["u"], kind="stable")
    users, starts, counts = np.unique(cols["u"][order], return_index=True, return_counts=True)
    return users, starts, order


def write_unisrec(folder: Path, tag: str, cols: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
    """The UniSRec files of ``cols`` (module doc) in ``folder``, prefix ``tag``."""
    users, starts, order = _sequences(cols)
    seq = cols["i"][order].tolist()
    ends = np.r_[starts[1:], len(order)].tolist()
    head = "user_id:token\titem_id_list:token_seq\titem_id:token"

    def rows(split: str) -> Iterator[str]:
        yield head
        for u, a, b in zip(users.tolist(), starts.tolist(), ends):
            s = [str(x) for x in seq[a:b]]
            if split == "train":  # newest prefix first, as UniSRec's files list them
                for t in range(len(s) - 3 if len(s) >= 3 else len(s) - 1, 0, -1):
                    yield f"{u}\t{' '.join(s[max(0, t - HISTORY):t])}\t{s[t]}"
            elif len(s) >= 3:
                t = len(s) - (2 if split == "valid" else 1)
                yield f"{u}\t{' '.join(s[max(0, t - HISTORY):t])}\t{s[t]}"

    for split in ("train", "valid", "test"):
        _lines(folder / f"{tag}.{split}.inter", rows(split))
    _lines(folder / f"{tag}.user2index", (f"A{k:08X}\t{k}" for k in range(n_users)))
    _lines(folder / f"{tag}.item2index", (f"B{k:09d}\t{k}" for k in range(n_items)))


def write_lattice(folder: Path, cols: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
    """The LATTICE files of ``cols`` (module doc) in ``folder``."""
    for label, name in enumerate(("train.json", "val.json", "test.json")):
        pick = cols["label"] == label
        part = {k: v[pick] for k, v in cols.items()}
        users, starts, order = _sequences(part)
        items = part["i"][order].tolist()
        ends = np.r_[starts[1:], len(order)].tolist()
        split = {str(u): items[a:b] for u, a, b in zip(users.tolist(), starts.tolist(), ends)}
        with open(folder / name, "w", encoding="utf-8") as f:
            json.dump(split, f)
        del split, items
    for name, ids in (("user2id.json", (f"A{k:08X}" for k in range(n_users))),
                      ("item2id.json", (f"B{k:09d}" for k in range(n_items)))):
        with open(folder / name, "w", encoding="utf-8") as f:
            json.dump({v: k for k, v in enumerate(ids)}, f)


def write(fmt: str, folder: Path, tag: str, cols: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
    """The files of ``fmt`` (module doc) in ``folder``, their names made from ``tag``."""
    if fmt == "unisrec":
        write_unisrec(folder, tag, cols, n_users, n_items)
        return
    if fmt == "lattice":
        write_lattice(folder, cols, n_users, n_items)
        return
    path = folder / MAIN_FILE[fmt].format(tag=tag)
    u, i, r, t, lab = cols["u"], cols["i"], cols["rating"], cols["ts"], cols["label"]
    heads = {
        "recbole": "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        "mmrec": "userID\titemID\trating\ttimestamp\tx_label",
        "movielens": "userId,movieId,rating,timestamp",
    }
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(heads[fmt] + "\n")
        for a in range(0, len(u), BLOCK):
            s = slice(a, a + BLOCK)
            rows = zip(u[s].tolist(), i[s].tolist(), r[s].tolist(), t[s].tolist(), lab[s].tolist())
            if fmt == "recbole":
                lines = [f"U{x:08x}\tB{y:09d}\t{z}\t{w}" for x, y, z, w, _ in rows]
            elif fmt == "mmrec":
                lines = [f"{x}\t{y}\t{z:g}\t{w}\t{v}" for x, y, z, w, v in rows]
            else:
                lines = [f"{x},{y},{z},{w}" for x, y, z, w, _ in rows]
            f.write("\n".join(lines) + "\n")


def source(work: Path, fmt: str, args: argparse.Namespace) -> Path:
    """The folder holding the file of ``fmt``, written unless it is there already."""
    tag = f"{fmt}-r{args.rows}-u{args.users}-i{args.items}-s{args.seed}"
    folder = work / tag
    if not (folder / MAIN_FILE[fmt].format(tag=tag)).is_file():
        tmp = work / f"{tag}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        t = time.perf_counter()
        # in a process of its own: a child starts with the resident size of the process it
        # is forked from in its ru_maxrss, so this one must stay small
        cmd = [sys.executable, __file__, "--generate", fmt, "--work", str(tmp), "--rows", str(args.rows),
               "--users", str(args.users), "--items", str(args.items), "--seed", str(args.seed)]
        if subprocess.run(cmd).returncode:
            fail(f"prepare_scaling.py: writing {folder} failed")
        if folder.exists():  # an earlier layout of the same tag: the file written alone
            shutil.rmtree(folder)
        tmp.rename(folder)
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"wrote {folder} ({size / 1e6:,.0f} MB) in {time.perf_counter() - t:.0f} s", flush=True)
    return folder


def prepare(checkout: Path, fmt: str, src: Path, out: Path) -> dict:
    """One ``graphrec prepare`` in a child process; its figures (module doc)."""
    options = ["--unseen", "drop"] if fmt in ("mmrec", "unisrec", "lattice") else []
    cmd = [sys.executable, "-c", _CHILD, str(checkout), "prepare", "--format", fmt, str(src), str(out),
           "--overwrite", *options]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not lines:
        fail(f"prepare_scaling.py: prepare --format {fmt} with {checkout} failed: "
             f"{(res.stderr.strip().splitlines() or ['(no output)'])[-1]}")
    r = json.loads(lines[-1][len("RESULT "):])
    if r["rc"]:
        fail(f"prepare_scaling.py: prepare --format {fmt} with {checkout} exited {r['rc']}: "
             f"{(res.stderr.strip().splitlines() or ['(no output)'])[-1]}")
    r["wrote"] = next((ln for ln in res.stdout.splitlines() if ln.startswith("wrote ")), "")
    return r


def fingerprint(out: Path) -> str:
    return json.loads((out / "dataset.json").read_text())["fingerprint"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=None, help="distinct users to draw from [rows / 20]")
    p.add_argument("--items", type=int, default=None, help="distinct items to draw from [rows / 10]")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated: {', '.join(FORMATS)}")
    p.add_argument("--work", required=True, help="folder for the generated files (kept) and the prepared datasets")
    p.add_argument("--compare", default=None, help="another graphrec checkout to prepare the same files with")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generate", choices=FORMATS, help=argparse.SUPPRESS)  # write one format (--work: its folder)
    args = p.parse_args(argv)
    if args.generate:
        folder = Path(args.work)
        tag = folder.name[: -len(".tmp")]
        write(args.generate, folder, tag, draw(args.rows, args.users, args.items, args.seed), args.users, args.items)
        return
    args.users = max(args.rows // 20, 1) if args.users is None else args.users
    args.items = max(args.rows // 10, 1) if args.items is None else args.items
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.rows < 1 or args.users < 1 or args.items < 1:
        fail("prepare_scaling.py: --rows, --users and --items must be >= 1")
    if not formats or set(formats) - set(FORMATS):
        fail(f"prepare_scaling.py: --formats {args.formats}: choose among {', '.join(FORMATS)}")
    checkouts = {"this": REPO}
    if args.compare:
        other = Path(args.compare).resolve()
        if not (other / "graphrec" / "__init__.py").is_file():
            fail(f"prepare_scaling.py: --compare {args.compare}: no graphrec/ package there: pass a checkout's root")
        checkouts = {"compare": other, "this": REPO}
    work = check_out_folder(args.work, "--work")
    work.mkdir(parents=True, exist_ok=True)
    print(f"{args.rows:,} rows, {args.users:,} users, {args.items:,} items, seed {args.seed}", flush=True)
    for fmt in formats:
        src = source(work, fmt, args)
        results = {}
        for label, checkout in checkouts.items():
            out = work / f"out-{label}-{fmt}"
            wait = cpu_wait_total()
            t = time.perf_counter()
            r = prepare(checkout, fmt, src, out)
            elapsed = time.perf_counter() - t
            r["fingerprint"] = fingerprint(out)
            r["cpu_wait"] = None if wait is None else (cpu_wait_total() - wait) / 1e6 / elapsed
            results[label] = r
            base, peak = r["before_kb"] / 1024, r["peak_kb"] / 1024
            per_row = (r["peak_kb"] - r["before_kb"]) * 1024 / args.rows
            print(f"{fmt:9s} {label:7s} {r['seconds']:7.1f} s  peak {peak:7,.0f} MB (after imports {base:4,.0f} MB): "
                  f"{per_row:5.0f} bytes per row above it"
                  + (f"; CPU wait {r['cpu_wait']:.0%}" if r["cpu_wait"] is not None else "")
                  + f"  [{Path(r['graphrec']).parent}]", flush=True)
            print(f"{'':18s}{r['wrote']}", flush=True)
            shutil.rmtree(out, ignore_errors=True) if label == "compare" else None
        if len(results) == 2:
            a, b = results["compare"], results["this"]
            inc = lambda r: max(r["peak_kb"] - r["before_kb"], 1)  # noqa: E731
            print(f"{fmt:9s} compare / this: {a['seconds'] / b['seconds']:.2f}x the time, "
                  f"{inc(a) / inc(b):.1f}x the memory above the imports; fingerprints "
                  f"{'equal' if a['fingerprint'] == b['fingerprint'] else 'DIFFER'}", flush=True)
            if a["fingerprint"] != b["fingerprint"]:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
