"""Training cost of the item-graph models as the catalogue grows: seconds per step and
peak memory of LightGCN, MM-GEF (learned, fixed and projected structures), LATTICE, FREEDOM, BM3,
VBPR, MGCN, SMORE and DRAGON on synthetic
data with 10,000 to 60,000+ items. Nothing n x n is formed (the reference LATTICE holds
dense n x n similarity matrices: 14.4 GB each at 60,000 items in float32).

    PYTHONPATH=. python experiments/benchmarks/item_graph_scaling.py --items 10000,30000,60000 --threads 1

Data (generated, deterministic): as many users as items; every user has a preferred
cluster of items (50 clusters) and 10-30 interactions, three quarters inside the
cluster and a quarter anywhere, both drawn by Zipf item popularity; two content
modalities of 64 dimensions each, cluster centre + noise. All interactions train.

Every (size, model) runs in its own process, so that the peak memory is the model's
alone: the report gives the resident memory after the data is loaded, the peak of the
process (``ru_maxrss``) and their difference, the model building time (graphs included:
the kNN graph over the features, LATTICE's original graphs), and the median wall time of
a training step (sampling, forward, backward, Adam; batch 2048) over ``--steps`` steps
after two warm-up steps. Per-epoch work is timed on its own: ``start_epoch`` (FREEDOM
samples its pruned user-item graph there) and the first step after it (LATTICE rebuilds
its learned graphs in it, "epoch-start step"); "epoch s (est.)" is start_epoch + the
epoch-start step + the other steps of an epoch at the median step time. Ratios are against LightGCN's
step of the same size, measured in the same run. Models use their defaults (dim 64,
2 LightGCN layers, k 10, one item layer; MM-GEF's co-interaction graph unpruned, kept as
its factors).

One process's step time moves by 10-30% between runs on a shared machine. ``--repeat R``
runs every (size, model) in R processes, in R rounds over the models, and reports the
median of each figure, the step's range, and the median over the rounds of each model's
step over LightGCN's step of the same round (a load change hits a round's models alike).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = {
    "lightgcn": ("lightgcn", {}),
    "mmgef": ("mmgef", {"structure": "learned"}),  # the paper's: LATTICE's per-epoch rebuild on one view
    "mmgef-fixed": ("mmgef", {"structure": "fixed"}),  # graphrec's default structure
    "mmgef-projected": ("mmgef", {"feature_mode": "projected"}),
    "lattice": ("lattice", {}),
    "freedom": ("freedom", {}),
    "bm3": ("bm3", {}),
    "vbpr": ("vbpr", {}),
    "mgcn": ("mgcn", {}),
    "smore": ("smore", {}),
    "dragon": ("dragon", {}),  # also builds the user-user co-occurrence graph
}


def make_dataset(n_items: int, seed: int = 0):
    """The synthetic catalogue of the module doc (vectorised: seconds at 100,000 items)."""
    import numpy as np

    from graphrec.data.dataset import build_dataset

    rng = np.random.default_rng(seed)
    n_users, n_clusters, dim = n_items, 50, 64
    cluster = rng.integers(0, n_clusters, size=n_items)
    pop = rng.zipf(1.6, size=n_items).clip(max=100).astype(np.float64)
    order = np.argsort(cluster, kind="stable")  # items grouped by cluster
    starts = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    cdf = np.cumsum(pop[order])
    glob_cdf = np.cumsum(pop) / pop.sum()

    per_user = rng.integers(10, 31, size=n_users)
    users = np.repeat(np.arange(n_users), per_user)
    pref = rng.integers(0, n_clusters, size=n_users)[users]
    inside = rng.random(len(users)) < 0.75
    lo = np.where(starts[pref] > 0, cdf[np.maximum(starts[pref] - 1, 0)], 0.0)
    hi = cdf[starts[pref + 1] - 1]
    pos = np.searchsorted(cdf, lo + rng.random(len(users)) * (hi - lo), side="right")
    in_cluster = order[np.minimum(pos, np.maximum(starts[pref + 1] - 1, 0))]
    anywhere = np.minimum(np.searchsorted(glob_cdf, rng.random(len(users)), side="right"), n_items - 1)
    items = np.where(inside, in_cluster, anywhere)
    key = np.unique(users.astype(np.int64) * n_items + items)
    users, items = key // n_items, key % n_items

    centres = rng.normal(size=(n_clusters, dim))
    feats = {
        m: (centres[cluster] + rng.normal(size=(n_items, dim))).astype(np.float32) for m in ("image", "text")
    }
    return build_dataset(
        users, items, np.full(len(users), "train"), user_ids=np.arange(n_users), item_ids=np.arange(n_items),
        item_features=feats, name=f"scaling-{n_items}",
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def measure(data_dir: str, label: str, steps: int) -> dict:
    """One (size, model) in this process: build, warm up, time steps; peak memory."""
    import resource

    import numpy as np
    import torch

    from graphrec.data import Dataset
    from graphrec.data.sampling import NegativeSampler, bpr_batches
    from graphrec.train import build_model
    from graphrec.train.optim import adam

    ds = Dataset.load(data_dir)
    rss0 = _rss_mb()
    name, params = MODELS[label]
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = build_model(name, ds, params)
    build_s = time.perf_counter() - t0
    opt = adam(model.parameters(), lr=1e-3)  # the optimiser fit uses
    rng = np.random.default_rng(0)
    batches = bpr_batches(ds.train, 2048, rng, NegativeSampler(ds.train))

    def step() -> float:
        users, pos, neg = next(batches)
        s = time.perf_counter()
        loss = model.loss(*(torch.from_numpy(a) for a in (users, pos, neg)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - s

    model.train()
    model.start_epoch(1)
    first = step()  # LATTICE: the rebuild of its learned graphs happens here
    step()
    times = [step() for _ in range(steps)]
    s = time.perf_counter()
    model.start_epoch(2)  # FREEDOM: the pruned user-item graph is sampled here
    start_epoch_s = time.perf_counter() - s
    epoch_start = step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "label": label, "n_items": ds.n_items, "n_users": ds.n_users, "train": int(ds.train.nnz),
        "build_s": build_s, "step_s": float(np.median(times)), "first_step_s": first,
        "epoch_start_step_s": epoch_start, "start_epoch_s": start_epoch_s, "rss_data_mb": rss0, "peak_mb": peak,
        "epoch_s": start_epoch_s + epoch_start + (-(-int(ds.train.nnz) // 2048) - 1) * float(np.median(times)),
    }


def summarise(runs: list[dict], base_runs: list[dict]) -> dict:
    """One (size, model)'s runs (one per ``--repeat`` round) as the report's row: the
    median of each figure over the runs, the step's range, and the median over rounds of
    the step divided by LightGCN's step OF THE SAME ROUND (``base_runs``, round by round;
    the rounds alternate the models, so a load change on the machine hits a model and its
    LightGCN alike)."""
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("build_s", "step_s", "start_epoch_s", "epoch_start_step_s", "epoch_s", "rss_data_mb", "peak_mb")}
    med["added_mb"] = statistics.median(r["peak_mb"] - r["rss_data_mb"] for r in runs)
    med["step_min"], med["step_max"] = min(r["step_s"] for r in runs), max(r["step_s"] for r in runs)
    med["ratio"] = statistics.median(r["step_s"] / b["step_s"] for r, b in zip(runs, base_runs))
    med.update({k: runs[0][k] for k in ("label", "n_items", "n_users", "train")})
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", default="10000,30000,60000", help="catalogue sizes, comma-separated")
    ap.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1,
                    help="processes per (size, model), in rounds over the models; the report gives medians "
                         "(and the step's range), the ratio to LightGCN taken round by round")
    ap.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    ap.add_argument("--_measure", nargs=2, metavar=("DATA", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    import torch

    from experiments._script import check_out_file

    torch.set_num_threads(args.threads)
    if args._measure:
        print(json.dumps(measure(args._measure[0], args._measure[1], args.steps)))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or "lightgcn" not in models:
        raise SystemExit(f"--models: {unknown or 'lightgcn'} {'unknown' if unknown else 'is needed for the ratios'}; "
                         f"choose from {','.join(MODELS)}")
    if args.repeat < 1:
        raise SystemExit(f"--repeat {args.repeat}: at least one run per (size, model)")
    check_out_file(args.out)  # now, not after the measurements
    models = ["lightgcn"] + [m for m in models if m != "lightgcn"]  # the base of the ratios first
    sizes = [int(s) for s in args.items.split(",")]
    lines = [
        f"# Item-graph models at scale ({args.threads} thread(s), torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, batch 2048, median of {args.steps} steps"
        + (f"; medians over {args.repeat} processes, step range in brackets)" if args.repeat > 1 else ")"),
        "",
        f"`PYTHONPATH=. python experiments/benchmarks/item_graph_scaling.py --items {args.items} "
        f"--models {','.join(models)} --threads {args.threads} --steps {args.steps}"
        + (f" --repeat {args.repeat}`" if args.repeat > 1 else "`"),
        "",
        "| items | users | train pairs | model | build s | step s | step / LightGCN | start_epoch s | epoch-start step s "
        "| epoch s (est.) | RSS with data MB | peak MB | added MB | one dense n x n float32 MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            make_dataset(n).save(data)
            runs: dict[str, list[dict]] = {label: [] for label in models}
            for _ in range(args.repeat):  # rounds over the models
                for label in models:
                    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--steps", str(args.steps),
                           "--_measure", str(data), label]
                    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    if res.returncode != 0:
                        raise SystemExit(f"{label} at {n} items failed:\n{res.stderr[-2000:]}")
                    runs[label].append(json.loads(res.stdout.strip().splitlines()[-1]))
                    print(f"  {label} at {n:,} items, round {len(runs[label])}/{args.repeat}: step "
                          f"{runs[label][-1]['step_s']:.3f} s", file=sys.stderr, flush=True)
            for label in models:
                r = summarise(runs[label], runs["lightgcn"])
                step = f"{r['step_s']:.3f}"
                if args.repeat > 1:
                    step += f" ({r['step_min']:.3f}-{r['step_max']:.3f})"
                row = (
                    f"| {r['n_items']:,} | {r['n_users']:,} | {r['train']:,} | {label} | {r['build_s']:.1f} | "
                    f"{step} | {r['ratio']:.2f} | {r['start_epoch_s']:.3f} | {r['epoch_start_step_s']:.3f} | "
                    f"{r['epoch_s']:.1f} | {r['rss_data_mb']:.0f} | "
                    f"{r['peak_mb']:.0f} | {r['added_mb']:.0f} | {4 * n * n / 2**20:,.0f} |"
                )
                lines.append(row)
                print(row, flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
