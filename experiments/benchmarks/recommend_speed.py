"""Seconds to write top-20 recommendations over the whole catalogue for every user of
Amazon Baby with ``graphrec.recommend`` (issue 22's bar: under 10 s on one thread).

    PYTHONPATH=. python experiments/benchmarks/recommend_speed.py --threads 1
    PYTHONPATH=. python experiments/benchmarks/recommend_speed.py --threads 1 --repeats 5 --format parquet
    PYTHONPATH=. python experiments/benchmarks/recommend_speed.py --run RUN --users 20000 --candidates 1000

Set-up (not timed): the LATTICE split of ``<data-root>/amazon-baby`` (19,445 users,
7,050 items) read with ``unseen="keep"`` and saved as a graphrec dataset directory, and a
LightGCN with its defaults (dim 64, 2 layers) trained for ONE epoch and saved as a run
directory, both in a temporary folder (``--work`` keeps them). The scores of a one-epoch
model are as expensive to rank as a converged model's.

Timed, ``--repeats`` times (median and minimum reported):

* ``recommend``: ``graphrec.recommend(run, k=20, device="cpu")`` for all users: reads
  the record, the dataset (fingerprint checked) and the weights, builds the model,
  propagates once, scores every item for every user in batches, masks the training
  items, ``torch.topk`` per batch, maps back to the original ids;
* ``write``: ``write_recommendations`` to ``recs.csv`` (or ``.parquet``), through a
  temporary file renamed into place;
* ``total`` = the two: what ``graphrec recommend RUN --all --out recs.csv`` does after
  the interpreter and the imports are up;

* ``recommend, N candidates`` (``--candidates N``, 1,000 by default, 0 skips it): the
  same users ranked over N items of the catalogue drawn at random (seed 0) and given as
  ``items=`` (``graphrec recommend --items FILE``), printed as a ratio to ``recommend``
  (all items) of the same run: ranking N candidates should cost about N / n_items of the
  scoring, not the whole catalogue's;

and, in the same run, two references: ``load_run`` alone (the share of the total spent
reading the run), and one full-ranking validation pass of the same model
(``evaluate_model``: the evaluator's scoring, masking and top-50 for the users with a
validation interaction), as the baseline the ratio is printed against. The CPU pressure
during the timed part (share of time tasks waited for a CPU, ``/proc/pressure/cpu``)
says whether the machine was busy: more than a few % means disturbed timings.

``--run DIR`` times an existing ranking run instead (set-up skipped), e.g. a LightGCN
trained on the synthetic catalogue of ``million_items.py`` (``make_dataset``: as many
users as items); ``--users N`` ranks for the first N users of its dataset only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BAR_SECONDS = 10.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=1024, help="users scored per batch")
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--candidates", type=int, default=1000,
                    help="also rank for this many candidate items (items=, --items FILE); 0: skip")
    ap.add_argument("--run", type=Path, default=None,
                    help="time this run directory instead of a LightGCN on Amazon Baby (no set-up)")
    ap.add_argument("--users", type=int, default=None, help="rank for the first N users only (default: all)")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the dataset, run and output here, reused by the next call (default: a temporary folder)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from experiments._script import check_data_root, cpu_wait_seconds  # graphrec's checks: no numpy or torch yet

    if args.run is not None and not (args.run / "record.json").is_file():
        raise SystemExit(f"--run {args.run}: no record.json there: give a run directory written by graphrec train")
    if args.candidates < 0 or (args.users is not None and args.users < 1):
        raise SystemExit("--candidates must be 0 or more and --users 1 or more")
    reused = args.work is not None and (args.work / "amazon-baby" / "dataset.json").is_file()
    if not reused and args.run is None:
        check_data_root(args.data_root, "amazon-baby/train.json", "amazon-baby (the LATTICE split)")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    import graphrec
    from graphrec.data.formats import read_lattice
    from graphrec.train import TrainConfig, evaluate_model, load_run, run_training
    from graphrec.train.recommend import write_recommendations

    torch.set_num_threads(args.threads)
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="recommend-speed-")
        work = Path(tmp.name)
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
    data_dir, run_dir = work / "amazon-baby", args.run or work / "lightgcn-1epoch"
    out = work / f"recs.{args.format}"

    t0 = time.perf_counter()
    if args.run is None and not (data_dir / "dataset.json").is_file():
        read_lattice(args.data_root / "amazon-baby", unseen="keep").save(data_dir)
    if not (run_dir / "record.json").is_file():
        from graphrec.data import Dataset

        ds = Dataset.load(data_dir)
        run_training(ds, "lightgcn", {}, TrainConfig(epochs=1, progress=False), device="cpu",
                     out=run_dir, data_path=data_dir)
    setup = time.perf_counter() - t0
    _, ds, _ = load_run(run_dir, "cpu")
    users = None if args.users is None else list(ds.user_ids[: args.users])
    n_cand = min(args.candidates, ds.n_items)
    items = None
    if n_cand:
        items = list(ds.item_ids[np.sort(np.random.default_rng(0).choice(ds.n_items, n_cand, replace=False))])
    cand_step = f"recommend, {n_cand} candidates"

    times: dict[str, list[float]] = {"recommend": [], "write": [], "total": [], "load_run": [], "validation pass": []}
    if items is not None:
        times[cand_step] = []
    p0, w0 = cpu_wait_seconds(), time.perf_counter()
    recs = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        recs = graphrec.recommend(run_dir, users=users, k=args.k, device="cpu", batch_size=args.batch_size)
        t1 = time.perf_counter()
        write_recommendations(recs, out, overwrite=True)
        t2 = time.perf_counter()
        times["recommend"].append(t1 - t0)
        times["write"].append(t2 - t1)
        times["total"].append(t2 - t0)
        if items is not None:
            t0 = time.perf_counter()
            graphrec.recommend(run_dir, users=users, k=args.k, items=items, device="cpu", batch_size=args.batch_size)
            times[cand_step].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        record, ds, model = load_run(run_dir, "cpu")
        times["load_run"].append(time.perf_counter() - t0)
        cfg = TrainConfig.from_dict(dict(record["train_config"], progress=False))
        t0 = time.perf_counter()
        evaluate_model(model, ds, "valid", cfg, "cpu")
        times["validation pass"].append(time.perf_counter() - t0)
    p1, wall = cpu_wait_seconds(), time.perf_counter() - w0

    assert recs is not None
    n_users = recs.n_users
    name = "amazon-baby" if args.run is None else str(run_dir)
    print(
        f"{name}: {ds.n_users} users, {ds.n_items} items, {ds.train.nnz} training interactions; "
        f"{record['model']} (dim {record['model_params'].get('embedding_dim')}, {record.get('best_epoch')} "
        f"epoch(s)); top {args.k} for {n_users} users = "
        f"{len(recs)} rows to {out.name} ({out.stat().st_size / 1e6:.1f} MB); {args.threads} thread(s), "
        f"batch {args.batch_size}, torch {torch.__version__}; set-up {setup:.1f} s (not timed)"
    )
    if p0 is not None and p1 is not None:
        print(f"CPU pressure during the timed part: {100 * (p1 - p0) / wall:.1f}% of wall time (more than a few % = disturbed)")
    print(f"{args.repeats} repeats:")
    print("| step | median s | min s |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {np.median(ts):.3f} | {min(ts):.3f} |")
    total = float(np.median(times["total"]))
    print(f"total / one validation pass: {total / np.median(times['validation pass']):.2f}")
    if items is not None:
        ratio = np.median(times[cand_step]) / np.median(times["recommend"])
        print(f"{n_cand} candidates / all {ds.n_items} items (recommend, same users): {ratio:.2f} "
              f"(candidates' share of the catalogue {n_cand / ds.n_items:.3f})")
    verdict = "met" if total < BAR_SECONDS else "NOT met"
    if args.run is None and args.users is None:
        print(f"bar: all users, whole catalogue, written, < {BAR_SECONDS:.0f} s on one thread: "
              f"{verdict} ({total:.2f} s median, {min(times['total']):.2f} s min)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
