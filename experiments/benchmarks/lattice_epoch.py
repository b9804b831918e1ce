"""Seconds per training epoch of graphrec's LATTICE and LightGCN, timed in the same run.

    PYTHONPATH=. python experiments/benchmarks/lattice_epoch.py --threads 1 --epochs 10

Data: lfm2k (MMRec split, MiniLM text 384-d + VGGish audio 128-d features), the set the
reference timings of MMRec were taken on (one core, one thread: LightGCN 0.28 s, LATTICE
1.08 s per epoch). Both models with their defaults (dim 64, 2 LightGCN layers, batch
2048, Adam lr 1e-3; LATTICE k 10, lambda 0.9, one item layer, learned graphs rebuilt at
the first batch of every epoch). An epoch is what ``fit`` times: sampling, forward,
backward and Adam for every batch, plus LATTICE's rebuild; no validation. The models
alternate epoch by epoch so that load on the machine hits both alike; the report gives
the median and the minimum wall time and the median CPU time of the process over
``--epochs`` epochs after one warm-up epoch, and the CPU pressure (share of time tasks
waited for a CPU) measured during the run: on a busy machine the CPU time is the
better estimate of the quiet wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: MMRec's per-epoch seconds on lfm2k, one core, one thread (issue 4)
REFERENCE = {"lightgcn": 0.28, "lattice": 1.08}


def _cpu_pressure() -> float | None:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.split("total=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from graphrec.data.formats import read_mmrec
    from graphrec.data.sampling import NegativeSampler, bpr_batches
    from graphrec.train import build_model

    torch.set_num_threads(args.threads)
    ds = read_mmrec(args.data_root / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"})
    runs = {}
    for name in ("lightgcn", "lattice"):
        torch.manual_seed(0)
        model = build_model(name, ds)
        runs[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3), np.random.default_rng(0))
    sampler = NegativeSampler(ds.train)
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    p0, w0 = _cpu_pressure(), time.perf_counter()
    for epoch in range(args.epochs + 1):
        for name, (model, opt, rng) in runs.items():
            model.train()
            c0, t0 = time.process_time(), time.perf_counter()
            model.start_epoch(epoch + 1)
            for users, pos, neg in bpr_batches(ds.train, 2048, rng, sampler):
                loss = model.loss(torch.from_numpy(users), torch.from_numpy(pos), torch.from_numpy(neg))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if epoch:  # epoch 0 warms up
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    p1, wall = _cpu_pressure(), time.perf_counter() - w0
    print(f"lfm2k, {args.threads} thread(s), {args.epochs} epochs each after a warm-up, torch {torch.__version__}")
    if p0 is not None and p1 is not None:
        print(f"CPU pressure during the run: {100 * (p1 - p0) / wall:.1f}% of wall time (more than a few % = disturbed)")
    print("| model | median s/epoch | min s/epoch | median CPU s/epoch | MMRec s/epoch | speed-up vs MMRec (median wall) |")
    print("|---|---|---|---|---|---|")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {np.median(cpu[name]):.3f} | {REFERENCE[name]:.2f} | "
              f"{REFERENCE[name] / med:.1f}x |")
    ratio = np.median(times["lattice"]) / np.median(times["lightgcn"])
    print(f"LATTICE / LightGCN epoch: {ratio:.2f} here, {REFERENCE['lattice'] / REFERENCE['lightgcn']:.2f} in MMRec")


if __name__ == "__main__":
    main()
