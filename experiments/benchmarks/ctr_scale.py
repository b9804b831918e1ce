#!/usr/bin/env python
"""CTR path at catalogue scale: seconds per training step and the memory of the samples.

A synthetic CTR source (``--items`` items with one ``--dim``-d content feature, users
with behaviour sequences of 10..30 items, about ``--impressions`` samples over the three
splits) is generated in memory, and the script reports

* the peak resident memory (``ru_maxrss``) after generating the source, after building
  the samples (:func:`graphrec.data.ctr.build_ctr_data`) and after making the training
  split's tensors and one batch (:func:`graphrec.train.ctr.split_tensors`), with the
  stored history shape and the samples' fingerprint;
* for each model of ``--models``, the mean wall seconds of one training step (forward,
  backward; batch ``--batch-size``, after one warm-up step) over ``--steps`` random
  batches, optionally with ``--item-graph`` enrichment (the graph is built first and
  its build time printed);
* with ``--predict``, for each model, the seconds of :func:`graphrec.train.ctr.predict_ctr`
  over the validation split (batches of 4096), which propagates a graph-enriched item
  table once per call, against the same batches each propagating it again (the path
  before :func:`graphrec.models.ctr.base.item_tables_once`), alternated in one process
  over ``--rounds`` rounds, with whether the probabilities are identical.

Usage (from the repository root; one thread, nothing else running)::

    PYTHONPATH=. python experiments/benchmarks/ctr_scale.py --items 100000 --impressions 1e5 \\
        --models din,youtubenet,marn,gmmf,deepfm
    PYTHONPATH=. python experiments/benchmarks/ctr_scale.py --items 100000 --impressions 1e5 \\
        --models din,gmmf --item-graph cooccur --predict --steps 1
    PYTHONPATH=. python experiments/benchmarks/ctr_scale.py --items 100000 --impressions 5e6 --models none

To time another checkout of graphrec with the same script (before/after a change, back
to back on one machine), put that checkout first: ``PYTHONPATH=OTHER_CHECKOUT python
experiments/benchmarks/ctr_scale.py ...`` (the report prints which graphrec it
imported).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO))  # after PYTHONPATH: a checkout named there is the one timed

from experiments._script import fail, one_line_errors  # noqa: E402


def peak_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_source(n_items: int, dim: int, impressions: int, seed: int = 0):
    """A graphrec :class:`~graphrec.data.Dataset` with timestamps whose CTR samples number
    about ``impressions``: sequences of 10..30 distinct items (mean 20, so about 2 x 19
    samples per user), 70% of a user's items from one of 200 content clusters."""
    from graphrec.data import build_dataset

    rng = np.random.default_rng(seed)
    n_clusters = min(200, n_items)
    cluster = rng.integers(0, n_clusters, n_items)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    features = centres[cluster] + rng.normal(size=(n_items, dim)).astype(np.float32)
    by_cluster = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[by_cluster], np.arange(n_clusters + 1))
    n_users = max(1, impressions // 38)
    lengths = rng.integers(10, 31, n_users)
    users = np.repeat(np.arange(n_users), lengths)
    home = rng.integers(0, n_clusters, n_users)[users]
    lo, hi = bounds[home], bounds[home + 1]
    in_cluster = by_cluster[np.minimum(lo + (rng.random(len(users)) * (hi - lo)).astype(np.int64), n_items - 1)]
    items = np.where(rng.random(len(users)) < 0.7, in_cluster, rng.integers(0, n_items, len(users)))
    _, first = np.unique(users.astype(np.int64) * n_items + items, return_index=True)  # distinct per user
    first.sort()
    users, items = users[first], items[first]
    times = 1.6e9 + rng.integers(0, 10**7, len(users)).astype(np.float64)
    return build_dataset(users, items, np.full(len(users), "train"), timestamps=times, user_ids=np.arange(n_users),
                         item_ids=np.arange(n_items), item_features={"text": features}, name="ctr-scale")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512, help="content feature size")
    p.add_argument("--impressions", type=float, default=1e5, help="about this many samples (all splits)")
    p.add_argument("--models", default="din,youtubenet,marn,gmmf,deepfm",
                   help="models to time, comma-separated ('none': memory only)")
    p.add_argument("--item-graph", default=None, help="knn, cooccur or both: time the steps graph-enriched")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--predict", action="store_true", help="also time predict_ctr on the validation split")
    p.add_argument("--rounds", type=int, default=2, help="--predict: alternated rounds")
    args = p.parse_args(argv)
    if (args.items < 2 or args.dim < 1 or args.impressions < 100 or args.steps < 1 or args.batch_size < 1
            or args.rounds < 1):
        fail("ctr_scale.py: --items >= 2, --dim >= 1, --impressions >= 100, --steps >= 1, --batch-size >= 1 and "
             "--rounds >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import graphrec
    from graphrec.data.ctr import build_ctr_data, sequences_from_dataset
    from graphrec.train.ctr import _batch, build_ctr_model, resolve_item_graphs, split_tensors

    torch.set_num_threads(args.threads)
    print(f"graphrec from {Path(graphrec.__file__).parent}, torch {torch.__version__}, {args.threads} thread(s)")
    with one_line_errors():
        t = time.perf_counter()
        ds = synthetic_source(args.items, args.dim, int(args.impressions), args.seed)
        print(f"source: {ds.n_users:,} users, {ds.n_items:,} items, generated in {time.perf_counter() - t:.1f} s; "
              f"peak RSS {peak_mb():,.0f} MB")
        t = time.perf_counter()
        data = build_ctr_data(ds, sequences_from_dataset(ds), max_history=50, seed=args.seed)
        train = data.samples["train"]
        n = sum(len(s) for s in data.samples.values())
        print(f"samples: {n:,} ({len(train):,} train) built in {time.perf_counter() - t:.1f} s; peak RSS "
              f"{peak_mb():,.0f} MB; train history {train.history.shape} {train.history.dtype}; "
              f"fingerprint {data.fingerprint()[:16]}")
        t = time.perf_counter()
        tensors = split_tensors(train)
        _batch(tensors, torch.arange(min(args.batch_size, len(train))), torch.device("cpu"))
        print(f"train tensors + one batch in {time.perf_counter() - t:.1f} s; peak RSS {peak_mb():,.0f} MB")
        models = [m for m in args.models.split(",") if m.strip() and m != "none"]
        if not models:
            return
        graphs = None
        if args.item_graph:
            t = time.perf_counter()
            graphs, _ = resolve_item_graphs(data, args.item_graph)
            print(f"item graph {args.item_graph}: built in {time.perf_counter() - t:.1f} s, "
                  f"{sum(int(g._nnz()) for g in graphs):,} edges")
        gen = torch.Generator().manual_seed(args.seed)
        batches = [_batch(tensors, torch.randperm(len(train), generator=gen)[: args.batch_size], torch.device("cpu"))
                   for _ in range(args.steps + 1)]
        for name in models:
            torch.manual_seed(args.seed)
            model = build_ctr_model(name, data, {}, graphs)
            seconds = []
            for b in batches:
                t = time.perf_counter()
                model.zero_grad()
                model.losses(b)["loss"].backward()
                seconds.append(time.perf_counter() - t)
            print(f"{name:11s} {np.mean(seconds[1:]):.4f} s per step (batch {args.batch_size}, mean of {args.steps}"
                  f" after a warm-up; graph: {args.item_graph or 'none'})", flush=True)
            if args.predict:
                _time_predict(name, model, split_tensors(data.samples["valid"]), args.rounds, args.item_graph)


def _time_predict(name, model, valid, rounds: int, graph: str | None) -> None:
    """predict_ctr (item tables once per call) against per-batch propagation, alternated."""
    import torch

    from graphrec.train.ctr import _batch, predict_ctr

    def per_batch():  # each batch propagates the item table again
        model.eval()
        n = len(valid["users"])
        with torch.no_grad():
            return torch.cat([model.predict(_batch(valid, slice(s, min(n, s + 4096)), torch.device("cpu"))).float()
                              for s in range(0, n, 4096)]).numpy()

    best = {"per batch": np.inf, "once": np.inf}
    same = True
    for _ in range(rounds):
        t = time.perf_counter()
        ref = per_batch()
        best["per batch"] = min(best["per batch"], time.perf_counter() - t)
        t = time.perf_counter()
        got = predict_ctr(model, valid, "cpu", 4096)
        best["once"] = min(best["once"], time.perf_counter() - t)
        same = same and np.array_equal(ref, got)
    n = len(valid["users"])
    print(f"{name:11s} predict {n:,} valid samples ({-(-n // 4096)} batches of 4096; graph: {graph or 'none'}): "
          f"per-batch table {best['per batch']:.2f} s, table once {best['once']:.2f} s, "
          f"{best['per batch'] / best['once']:.1f}x; identical {same}", flush=True)


if __name__ == "__main__":
    main()
