#!/usr/bin/env python
"""LightGCN on lfm2k three ways: graphrec's fit loop, graphrec's model inside RecBole's
Trainer (the adapter), and RecBole 1.2.1's own LightGCN; one set of numbers.

All three paths use the given lfm2k split (MMRec ``x_label``), the same hyper-parameters
(dim 64, 2 layers, reg_weight 1e-4, Adam lr 1e-3, batch 2048, one uniform negative per
positive), the same fixed number of epochs, validation every ``--eval-every`` epochs on
recall@20, and the test split evaluated once at the best validation epoch. Each path runs
once per seed; the report gives every run, mean and standard deviation over seeds,
seconds per training epoch and per validation pass, and the ratios to graphrec.

Usage (from the repository root; about 15 minutes with the defaults on one thread)::

    PYTHONPATH=. python experiments/recbole/lightgcn_three_ways.py \
        --out experiments/recbole/results/lightgcn_lfm2k.md
    PYTHONPATH=. python experiments/recbole/lightgcn_three_ways.py --epochs 4 --eval-every 2 --seeds 0   # smoke

See ``experiments/recbole/README.md`` for what is and is not comparable.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PATHS = ("graphrec", "adapter", "recbole")


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    repo = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(repo.parent / "shared" / "data" / "lfm2k"), help="the MMRec lfm2k folder")
    p.add_argument("--epochs", type=int, default=300, help="training epochs, the same for every path")
    p.add_argument("--eval-every", type=int, default=10, help="validate every this many epochs")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--paths", default=",".join(PATHS), help=f"which of {','.join(PATHS)} to run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the markdown report here (and the raw runs as .json)")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.paths = [s.strip() for s in args.paths.split(",") if s.strip()]
    bad = [s for s in args.paths if s not in PATHS]
    if bad or not args.paths:
        p.error(f"--paths: unknown {bad}; use some of {','.join(PATHS)}")
    if args.epochs < 1 or args.eval_every < 1 or not args.seeds:
        p.error("--epochs and --eval-every must be at least 1, --seeds non-empty")
    sys.path.insert(0, str(repo))
    from experiments._script import check_out_file, fail  # graphrec's checks: no numpy or torch imported yet

    if not Path(args.data).exists():
        fail(f"--data {args.data} does not exist: pass the MMRec lfm2k folder (or its .inter file)")
    if args.out:  # the report and its .json, now, not after the runs
        check_out_file(args.out)
        check_out_file(Path(args.out).with_suffix(".json"))
    return args


# The thread count must reach OpenMP/BLAS before numpy and torch are imported.
if __name__ == "__main__":
    _ARGS = _parse_args()
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)

import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from experiments._script import cpu_wait_total, one_line_errors  # noqa: E402
from graphrec.data import Dataset  # noqa: E402
from graphrec.data.formats import read_mmrec, write_recbole  # noqa: E402
from graphrec.train.builders import build_model  # noqa: E402
from graphrec.train.config import TrainConfig  # noqa: E402
from graphrec.train.fit import fit, seed_everything  # noqa: E402

DIM, LAYERS, REG, LR, BATCH = 64, 2, 1e-4, 1e-3, 2048
KS = (10, 20)
REPORTED = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "precision@20", "hit@20")
RECBOLE_EVAL_BATCH = 4096  # RecBole's default eval_batch_size, counted in user x item cells


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def timing_wrapper(fn: Callable[..., Any], out: list[float]) -> Callable[..., Any]:
    """``fn`` that appends its wall seconds to ``out``."""

    def wrapped(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        res = fn(*a, **k)
        out.append(time.perf_counter() - t0)
        return res

    return wrapped


# ----------------------------------------------------------------------------- graphrec
def run_graphrec(ds: Dataset, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    seed_everything(seed)
    model = build_model("lightgcn", ds, {"embedding_dim": DIM, "num_layers": LAYERS, "reg_weight": REG})
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=BATCH, lr=LR, patience=10**9, eval_every=args.eval_every,
        valid_metric="recall@20", ks=KS, seed=seed, progress=False,
    )
    res = fit(model, ds, cfg, "cpu")
    return {
        "best_epoch": res.best_epoch,
        "valid": res.best_valid,
        "test": res.test["all"],
        "epoch_seconds": [float(h["train_seconds"]) for h in res.history],
        "eval_seconds": [float(h["eval_seconds"]) for h in res.history if "eval_seconds" in h],
        "users_per_eval_batch": cfg.eval_batch_size,
    }


# ----------------------------------------------------------------------------- RecBole
def run_recbole(ds: Dataset, workdir: Path, seed: int, which: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run through RecBole's pipeline with the adapter or RecBole's LightGCN."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from graphrec.interop.recbole import GraphrecLightGCN, load_checkpoint, recbole_workdir

    model_cls = GraphrecLightGCN if which == "adapter" else LightGCN
    with recbole_workdir(workdir):
        config = Config(
            model=model_cls,
            dataset=ds.name,
            config_dict={
                "data_path": str(workdir / "data"),
                "checkpoint_dir": str(workdir / f"saved-{which}-{seed}"),
                "benchmark_filename": ["train", "valid", "test"],
                "load_col": {"inter": ["user_id", "item_id"], "user": ["user_id"], "item": ["item_id"]},
                "metrics": ["Recall", "NDCG", "Precision", "Hit"],
                "topk": list(KS),
                "valid_metric": "Recall@20",
                "metric_decimal_place": 16,
                "embedding_size": DIM,
                "n_layers": LAYERS,
                "reg_weight": REG,
                "learning_rate": LR,
                "train_batch_size": BATCH,
                "eval_batch_size": RECBOLE_EVAL_BATCH,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
                "epochs": args.epochs,
                "eval_step": args.eval_every,
                "stopping_step": 10**9,
                "seed": seed,
                "reproducibility": True,
                "use_gpu": False,
                "show_progress": False,
                "save_dataset": False,
                "save_dataloaders": False,
                "state": "WARNING",
            },
        )
        init_seed(seed, True)
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        init_seed(seed, True)
        model = model_cls(config, train.dataset).to(config["device"])
        trainer = Trainer(config, model)
        epoch_s: list[float] = []
        eval_s: list[float] = []
        trainer._train_epoch = timing_wrapper(trainer._train_epoch, epoch_s)
        trainer._valid_epoch = timing_wrapper(trainer._valid_epoch, eval_s)
        trainer.fit(train, valid, saved=True, show_progress=False)
        # best validation epoch: RecBole's own loader needs torch.load(weights_only=False) on torch >= 2.6
        if which == "adapter":
            ckpt = load_checkpoint(model, trainer.saved_model_file)
        else:
            ckpt = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
            model.load_state_dict(ckpt["state_dict"])
            model.restore_user_e = model.restore_item_e = None  # recompute from the loaded weights
        valid_res = trainer.evaluate(valid, load_best_model=False, show_progress=False)
        if which != "adapter":
            model.restore_user_e = model.restore_item_e = None
        test_res = trainer.evaluate(test, load_best_model=False, show_progress=False)
    return {
        "best_epoch": int(ckpt["epoch"]) + 1,
        "valid": {k.lower(): float(v) for k, v in valid_res.items()},
        "test": {k.lower(): float(v) for k, v in test_res.items()},
        "epoch_seconds": epoch_s,
        "eval_seconds": eval_s,
        "users_per_eval_batch": valid.step,
    }


# ----------------------------------------------------------------------------- report
def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


LABELS = {
    "graphrec": "graphrec (`fit`)",
    "adapter": "graphrec LightGCN in RecBole's Trainer (`GraphrecLightGCN`)",
    "recbole": "RecBole 1.2.1 `LightGCN` + Trainer",
}


def report(runs: dict[str, list[dict[str, Any]]], ds: Dataset, args: argparse.Namespace, pressure: float | None, wall: float) -> str:
    import recbole
    import scipy

    metric_rows = []
    for path, rs in runs.items():
        cells = []
        for m in REPORTED:
            mu, sd = mean_std([r["test"][m] for r in rs])
            cells.append(f"{mu:.4f} ± {sd:.4f}")
        mu_v, sd_v = mean_std([r["valid"]["recall@20"] for r in rs])
        best = ", ".join(str(r["best_epoch"]) for r in rs)
        metric_rows.append([LABELS[path], f"{mu_v:.4f} ± {sd_v:.4f}", *cells, best])
    metric_table = md_table(["path", "valid recall@20", *[f"test {m}" for m in REPORTED], "best epoch per seed"], metric_rows)

    base = runs.get("graphrec")
    g_epoch = statistics.median([x for r in base for x in r["epoch_seconds"]]) if base else None
    g_eval = statistics.median([x for r in base for x in r["eval_seconds"]]) if base else None
    time_rows = []
    for path, rs in runs.items():
        ep = statistics.median([x for r in rs for x in r["epoch_seconds"]])
        ev = statistics.median([x for r in rs for x in r["eval_seconds"]])
        total = statistics.fmean([sum(r["epoch_seconds"]) + sum(r["eval_seconds"]) for r in rs])
        time_rows.append([
            LABELS[path], f"{ep:.3f}", f"{ev:.3f}", str(rs[0]["users_per_eval_batch"]),
            f"{ev / ep:.2f}", f"{total:.0f}",
            f"{ep / g_epoch:.2f}" if g_epoch else "-", f"{ev / g_eval:.2f}" if g_eval else "-",
        ])
    time_table = md_table(
        ["path", "s / epoch (median)", "s / validation (median)", "users per eval batch",
         "validation / epoch", "train + validation s per run (mean)", "epoch vs graphrec", "validation vs graphrec"],
        time_rows,
    )
    per_seed = md_table(
        ["path", "seed", "best epoch", "valid recall@20", "test recall@20", "test ndcg@20"],
        [[path, str(s), str(r["best_epoch"]), f"{r['valid']['recall@20']:.4f}", f"{r['test']['recall@20']:.4f}",
          f"{r['test']['ndcg@20']:.4f}"] for path, rs in runs.items() for s, r in zip(args.seeds, rs)],
    )
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, Path(__file__).resolve().parents[2]), *sys.argv[1:]])
    return "\n".join([
        "# LightGCN on lfm2k: graphrec, graphrec inside RecBole, RecBole's own",
        "",
        f"- command: `{cmd}` (wall {wall / 60:.1f} min)",
        f"- data: lfm2k, given MMRec split; {ds.n_users} users, {ds.n_items} items, "
        + ", ".join(f"{s} {ds.splits[s].nnz}" for s in ("train", "valid", "test")),
        f"- every path: LightGCN dim {DIM}, {LAYERS} layers, reg_weight {REG}, Adam lr {LR}, batch {BATCH}, one uniform "
        f"negative per positive, **{args.epochs} epochs (fixed, no early stopping)**, validation every "
        f"{args.eval_every} epochs on recall@20, test once at the best validation epoch; seeds {args.seeds}",
        "- evaluation: full ranking, valid masks train, test masks train + valid (RecBole protocol) in all three; "
        f"RecBole paths with RecBole's default eval_batch_size {RECBOLE_EVAL_BATCH} (score cells per batch)",
        f"- threads: {torch.get_num_threads()}; CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        + (f"some task waited for a CPU {100 * pressure:.0f}% of the wall time (/proc/pressure/cpu)" if pressure is not None else "CPU pressure unknown"),
        f"- torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, RecBole {recbole.__version__}, "
        f"Python {platform.python_version()}",
        "",
        "## Test metrics (mean ± std over seeds)",
        "",
        metric_table,
        "",
        "## Time",
        "",
        time_table,
        "",
        "## Every run",
        "",
        per_seed,
        "",
    ])


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    t_start, psi0 = time.perf_counter(), cpu_wait_total()
    with one_line_errors():
        ds = read_mmrec(args.data)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in args.paths}
    with tempfile.TemporaryDirectory(prefix="graphrec-recbole-") as tmp:
        work = Path(tmp)
        write_recbole(ds, work / "data" / ds.name, ds.name)
        for seed in args.seeds:
            for path in args.paths:
                t0 = time.perf_counter()
                r = run_graphrec(ds, seed, args) if path == "graphrec" else run_recbole(ds, work, seed, path, args)
                runs[path].append(r)
                print(
                    f"{path} seed {seed}: best epoch {r['best_epoch']} valid recall@20 {r['valid']['recall@20']:.4f} "
                    f"test recall@20 {r['test']['recall@20']:.4f} ndcg@20 {r['test']['ndcg@20']:.4f}; "
                    f"{statistics.median(r['epoch_seconds']):.3f} s/epoch, {statistics.median(r['eval_seconds']):.3f} s/validation "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    wall = time.perf_counter() - t_start
    psi1 = cpu_wait_total()
    pressure = (psi1 - psi0) / 1e6 / wall if psi0 is not None and psi1 is not None else None
    text = report(runs, ds, args, pressure, wall)
    print()
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out.with_suffix(".json"), json.dumps({"args": vars(args), "runs": runs}, indent=1))
        write_atomic(out, text)
        print(f"written to {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main(_ARGS)
