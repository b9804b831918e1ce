"""A million items end to end, in one process and in two (issue 20).

    PYTHONPATH=. python experiments/benchmarks/million_items.py --items 100000,300000,1000000

For each catalogue size, synthetic data (``make_dataset``: as many users as items, 10
training interactions per user, so 10 million at 1,000,000 items; one 64-d content
modality, cluster centre + noise; 2,000 users hold one validation and one test
interaction each), then the pipeline as a user runs it, every stage a ``graphrec``
command in its own process tree:

1. ``build-graph --kind knn --backend faiss-hnsw`` (approximate kNN, k 10);
2. ``build-graph --kind cooccur --cooccur-top-k 10``;
3. ``train lightgcn`` for ``--epochs`` epochs (2) of ``--batch-size`` triples per step
   (262,144: 39 steps per epoch at 1,000,000 items; every step propagates the whole
   graph, so the step count, not the triples, sets an epoch's time), validation at the end;
4. ``train mmgef --structure fixed`` over the two stored graphs, the same epochs,

each with ``--nproc 1`` and ``--nproc 2`` (two local ranks on gloo that split every step,
so both train the same model: their validation recall@20 agrees). The report gives the
wall time of each stage (process start and data loading included), the training
seconds per epoch from the run record, and the peak resident memory of the largest
process of the stage (``ru_maxrss`` of the process tree, read by a wrapper process per
stage). The speed-up is the one-process time over the two-process time of the same
stage, measured in the same run: absolute seconds drift on shared machines, ratios less.
Nothing is n x n: the kNN graph and E^c are sparse top-k lists, the bipartite graph holds
the interactions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# runs a command and prints the peak RSS (KB) of its process tree: one per stage, so the
# figure is that stage's alone (ru_maxrss of RUSAGE_CHILDREN is the largest descendant)
_WRAP = "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; " \
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)"


def make_dataset(n_items: int, seed: int = 0, per_user: int = 10, n_eval_users: int = 2000):
    """The synthetic catalogue of the module doc (vectorised)."""
    import numpy as np

    from graphrec.data.dataset import build_dataset

    rng = np.random.default_rng(seed)
    n_users, n_clusters, dim = n_items, max(50, n_items // 1000), 64
    cluster = rng.integers(0, n_clusters, size=n_items)
    pop = rng.zipf(1.6, size=n_items).clip(max=100).astype(np.float64)
    order = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    cdf = np.cumsum(pop[order])
    glob_cdf = np.cumsum(pop) / pop.sum()
    draws = per_user + 4  # a few extra draws per user, duplicates removed below
    users = np.repeat(np.arange(n_users, dtype=np.int64), draws)
    pref = rng.integers(0, n_clusters, size=n_users)[users]
    inside = rng.random(len(users)) < 0.75
    lo = np.where(starts[pref] > 0, cdf[np.maximum(starts[pref] - 1, 0)], 0.0)
    hi = cdf[np.maximum(starts[pref + 1] - 1, 0)]
    pos = np.searchsorted(cdf, lo + rng.random(len(users)) * (hi - lo), side="right")
    in_cluster = order[np.minimum(pos, np.maximum(starts[pref + 1] - 1, 0))]
    anywhere = np.minimum(np.searchsorted(glob_cdf, rng.random(len(users)), side="right"), n_items - 1)
    items = np.where(inside, in_cluster, anywhere)
    key = np.unique(users * n_items + items)
    users, items = key // n_items, key % n_items
    rank = np.arange(len(users)) - np.searchsorted(users, users)  # position inside the user's list
    keep = rank < per_user + (users < n_eval_users) * 2
    users, items, rank = users[keep], items[keep], rank[keep]
    split = np.full(len(users), "train", dtype=object)
    evaluated = users < n_eval_users
    split[evaluated & (rank == per_user)] = "valid"
    split[evaluated & (rank == per_user + 1)] = "test"
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    feats = {"content": centres[cluster] + rng.normal(size=(n_items, dim)).astype(np.float32)}
    return build_dataset(users, items, split.astype(str), user_ids=np.arange(n_users), item_ids=np.arange(n_items),
                         item_features=feats, name=f"million-{n_items}", unseen="drop")


def stage(args: list[str], log: Path) -> dict:
    """One graphrec command: wall seconds, peak RSS of its largest process, exit status."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        res = subprocess.run([sys.executable, "-c", _WRAP, sys.executable, "-m", "graphrec", *args], stdout=f,
                             stderr=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - t0
    peak = [ln for ln in res.stderr.splitlines() if ln.startswith("PEAK_KB")]
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"stage failed: graphrec {' '.join(args)} (log {log})")
    return {"wall_s": round(wall, 1), "peak_mb": round(int(peak[-1].split()[1]) / 1024) if peak else None}


def run_size(n_items: int, work: Path, epochs: int, batch: int, nprocs: list[int]) -> dict:
    data = work / f"data-{n_items}"
    t0 = time.perf_counter()
    if not (data / "interactions.npz").exists():
        ds = make_dataset(n_items)
        ds.save(data)
    gen = time.perf_counter() - t0
    out: dict = {"items": n_items, "generate_s": round(gen, 1)}
    from graphrec.data import Dataset

    ds = Dataset.load(data)
    out.update(users=ds.n_users, interactions=int(ds.train.nnz))
    for n in nprocs:
        g = work / f"graphs-{n_items}-np{n}"
        shutil.rmtree(g, ignore_errors=True)
        common = ["--nproc", str(n), "--quiet", "--device", "cpu"]
        out[f"knn_np{n}"] = stage(["build-graph", "--data", str(data), "--kind", "knn", "--backend", "faiss-hnsw",
                                   "--k", "10", "--out", str(g), *common], work / f"knn-{n_items}-{n}.log")
        out[f"cooccur_np{n}"] = stage(["build-graph", "--data", str(data), "--kind", "cooccur", "--cooccur-top-k", "10",
                                       "--out", str(g), *common], work / f"co-{n_items}-{n}.log")
        train = ["--data", str(data), "--epochs", str(epochs), "--eval-every", str(epochs), "--batch-size",
                 str(batch), "--protocol", "mmrec", "--overwrite", *common]
        for model, extra in (("lightgcn", []),
                             ("mmgef", ["--structure", "fixed", "--graph", str(g / "knn"), "--graph", str(g / "cooccur"),
                                        "--cooccur-top-k", "10", "--cold-path", "none"])):
            run = work / f"run-{model}-{n_items}-np{n}"
            res = stage(["train", model, *train, "--out", str(run), *extra], work / f"{model}-{n_items}-{n}.log")
            rec = json.loads((run / "record.json").read_text())
            res.update(s_per_epoch=round(rec["timings"]["seconds_per_epoch"], 1),
                       build_s=round(rec["timings"]["build_seconds"], 1),
                       valid_recall20=round(rec["best_valid"]["recall@20"], 4))
            out[f"{model}_np{n}"] = res
        print(json.dumps(out), flush=True)
    return out


def table(results: list[dict], nprocs: list[int]) -> str:
    cols = ["knn", "cooccur", "lightgcn", "mmgef"]
    head = "| items | users | interactions | " + " | ".join(
        f"{c} np{n} wall s / peak MB" + (" / s per epoch" if c in ("lightgcn", "mmgef") else "")
        for c in cols for n in nprocs) + " |"
    lines = [head, "|" + " --- |" * (3 + len(cols) * len(nprocs))]
    for r in results:
        cells = [f"{r['items']:,}", f"{r['users']:,}", f"{r['interactions']:,}"]
        for c in cols:
            for n in nprocs:
                s = r.get(f"{c}_np{n}")
                if s is None:
                    cells.append("-")
                    continue
                cell = f"{s['wall_s']} / {s['peak_mb']}"
                if "s_per_epoch" in s:
                    cell += f" / {s['s_per_epoch']}"
                cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    if len(nprocs) == 2:
        lines.append("")
        for r in results:
            sp = ", ".join(
                f"{c} {r[f'{c}_np{nprocs[0]}']['wall_s'] / r[f'{c}_np{nprocs[1]}']['wall_s']:.2f}x"
                for c in cols if f"{c}_np{nprocs[1]}" in r)
            ep = ", ".join(
                f"{c} {r[f'{c}_np{nprocs[0]}']['s_per_epoch'] / r[f'{c}_np{nprocs[1]}']['s_per_epoch']:.2f}x"
                for c in ("lightgcn", "mmgef") if f"{c}_np{nprocs[1]}" in r)
            lines.append(f"- {r['items']:,} items, {nprocs[1]} processes against {nprocs[0]}: wall {sp}; "
                         f"training epoch {ep}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", default="100000,300000,1000000")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=262144, help="triples per optimiser step (the ranks split each step)")
    ap.add_argument("--nproc", default="1,2")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "graphrec-million",
                    help="where the data, graphs and runs go (several GB at 1,000,000 items)")
    ap.add_argument("--out", type=Path, help="also write the results (JSON) here")
    a = ap.parse_args()
    # both now, not after the hour of work that fills them
    sys.path.insert(0, str(REPO))
    from experiments._script import check_out_file, check_out_folder

    check_out_folder(a.work, "--work")
    check_out_file(a.out)
    a.work.mkdir(parents=True, exist_ok=True)
    nprocs = [int(n) for n in a.nproc.split(",")]
    results = [run_size(int(n), a.work, a.epochs, a.batch_size, nprocs) for n in a.items.split(",")]
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1))
    print(table(results, nprocs))


if __name__ == "__main__":
    main()
