"""Data-parallel training on lfm2k: one process against two (issue 20's bar).

    python experiments/distributed/run.py --seeds 0,1,2          # runs, then the table
    python experiments/distributed/run.py --summary               # the table only
    python experiments/distributed/run.py --seeds 0 --results /tmp/distributed   # outside the tree

Settings of LightGCN (``TRAIN`` below, graphrec's defaults otherwise; ``--settings``, by
default the first two), each on the seeds given, one after another on this machine:

* ``np1-b2048``: one process, ``--batch-size 2048`` (the fit loop without a group);
* ``np2-b2048``: the same command with ``--nproc 2``: the two ranks split every step of
  2,048 triples, so they train what one process trains, up to float summation order
  (the issue's bar: within seed noise of ``np1-b2048``);
* ``np2-b4096``: two ranks with steps of 4,096 triples, half as many per epoch: another
  hyper-parameter, for the speed (LightGCN's full-graph propagation is done by every
  rank once per step, so fewer steps save more of it than more ranks do).

Selection on validation recall@20 (patience 5); the table gives test recall@20 / ndcg@20
at the best validation epoch, seconds per epoch and epochs, and the paired per-seed
differences against ``np1-b2048``. Everything goes under ``--results`` (default
``experiments/distributed/results``, git-ignored): the prepared dataset in ``data/lfm2k``,
the runs in ``runs/<setting>-seed<S>`` (skipped when present, so an interrupted call
continues) and the table in ``summary.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# a budget that fits three settings x three seeds in well under an hour on two cores: a
# larger learning rate than the default 1e-3 (the one tests/models/test_lightgcn_real.py
# trains lfm2k with), at most 200 epochs, validation every 5 with patience 5 (25 epochs)
TRAIN = ["--lr", "5e-3", "--epochs", "200", "--eval-every", "5", "--patience", "5"]
SETTINGS = {"np1-b2048": (1, 2048), "np2-b2048": (2, 2048), "np2-b4096": (2, 4096)}
BASE = "np1-b2048"

sys.path.insert(0, str(REPO))
from experiments._script import check_out_folder, fail  # noqa: E402


def graphrec(*args: str) -> None:
    """Run a graphrec command; its failure (already reported on stderr by graphrec) ends
    the script with one line, not a CalledProcessError traceback."""
    done = subprocess.run([sys.executable, "-m", "graphrec", *args], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if done.returncode != 0:
        fail(f"graphrec {args[0]} failed (exit status {done.returncode}; its message is above)")


def run(shared: Path, results: Path, seeds: list[int], settings: list[str], threads: int | None) -> None:
    data = results / "data" / "lfm2k"
    if not data.exists():
        graphrec("prepare", "--format", "mmrec", str(shared / "lfm2k"), str(data))
    for seed in seeds:
        for name in settings:
            nproc, batch = SETTINGS[name]
            out = results / "runs" / f"{name}-seed{seed}"
            if (out / "record.json").exists():
                continue
            # by default the machine's cores split between the ranks (one process gets them all)
            per_process = threads or max(1, (os.cpu_count() or 1) // nproc)
            graphrec("train", "lightgcn", "--data", str(data), "--seed", str(seed), "--batch-size", str(batch), *TRAIN,
                     "--nproc", str(nproc), "--threads", str(per_process), "--device", "cpu", "--quiet",
                     "--out", str(out), "--overwrite")


def summary(results: Path, seeds: list[int]) -> str:
    rows = ["| setting | seeds | test recall@20 | test ndcg@20 | valid recall@20 | s/epoch | epochs | "
            f"recall@20 - {BASE} per seed |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    base: dict[int, float] = {}
    for name in SETTINGS:
        recs = {}
        for s in seeds:
            f = results / "runs" / f"{name}-seed{s}" / "record.json"
            if f.exists():
                recs[s] = json.loads(f.read_text())
        if not recs:
            continue
        rec = [r["test"]["all"]["recall@20"] for r in recs.values()]
        nd = [r["test"]["all"]["ndcg@20"] for r in recs.values()]
        va = [r["best_valid"]["recall@20"] for r in recs.values()]
        spe = [r["timings"]["seconds_per_epoch"] for r in recs.values()]
        ep = [r["timings"]["epochs"] for r in recs.values()]
        if name == BASE:
            base = {s: r["test"]["all"]["recall@20"] for s, r in recs.items()}
        diffs = [f"{r['test']['all']['recall@20'] - base[s]:+.4f}" for s, r in recs.items() if s in base]

        def ms(v: list[float], f: str = ".4f") -> str:
            return f"{statistics.mean(v):{f}}" + (f" ± {statistics.stdev(v):{f}}" if len(v) > 1 else "")

        rows.append(f"| {name} | {','.join(map(str, recs))} | {ms(rec)} | {ms(nd)} | {ms(va)} | {ms(spe, '.2f')} | "
                    f"{ms(ep, '.0f')} | {' '.join(diffs) if name != BASE else '-'} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--settings", default="np1-b2048,np2-b2048", help=f"of {', '.join(SETTINGS)}")
    ap.add_argument("--threads", type=int, help="torch threads per process (default: the CPU cores divided "
                    "between the processes; on a busy machine 1 avoids OpenMP threads spinning on shared cores)")
    ap.add_argument("--summary", action="store_true", help="print the table of the runs there are")
    ap.add_argument("--results", type=Path, default=HERE / "results",
                    help="folder of the prepared data, the runs and summary.md (default: experiments/distributed/"
                         "results, git-ignored)")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    settings = a.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        fail(f"--settings {', '.join(unknown)}: not a setting; the settings are {', '.join(SETTINGS)}")
    check_out_folder(a.results, "--results")
    if not a.summary and not (a.results / "data" / "lfm2k").exists() and not (a.shared / "lfm2k").is_dir():
        fail(f"--shared {a.shared}: no lfm2k folder there (MMRec's lfm2k split): pass the folder that holds it")
    if not a.summary:
        run(a.shared, a.results, seeds, settings, a.threads)
    table = summary(a.results, seeds)
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "summary.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
