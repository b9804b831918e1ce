#!/usr/bin/env python
"""LightGCN on CPU: graphrec vs RecBole 1.2.1's own LightGCN, in one process.

On one dataset (default: the Amazon Baby LATTICE split) and with the same torch thread
count for both libraries, this measures

1. seconds per training epoch (BPR, Adam, batch 2048, 2 layers, dim 64) and seconds
   per full-ranking validation pass (propagation + scoring + masking + top-K +
   metrics) of graphrec's LightGCN;
2. the same for RecBole 1.2.1's ``LightGCN`` + ``Trainer`` on the same splits, written
   as RecBole benchmark files with :func:`graphrec.data.formats.recbole.write_recbole`;
3. the metrics of both evaluators on the *same* embeddings: graphrec's trained layer-0
   embeddings are copied into RecBole's model (ids mapped through the original tokens),
   both propagate them over their own training graph and rank; the values should agree
   to float rounding (ties in top-K aside).

Usage (from the repository root)::

    PYTHONPATH=. python experiments/benchmarks/lightgcn_vs_recbole.py --threads 1 \
        --epochs 2 --repeats 3 --out experiments/benchmarks/results/lightgcn_vs_recbole.md

``--quick`` keeps only the first ``--quick-users`` users (fast debugging run).
See ``experiments/benchmarks/README.md`` for what is and is not comparable.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    repo = _repo_root()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch (and BLAS/OpenMP) threads for both libraries")
    p.add_argument("--epochs", type=int, default=2, help="training epochs timed per library")
    p.add_argument("--repeats", type=int, default=3, help="full validation passes timed per library (median)")
    p.add_argument("--data-root", default=str(repo.parent / "shared" / "data"), help="folder holding the dataset folder")
    p.add_argument("--dataset", default="amazon-baby", help="LATTICE dataset folder under --data-root")
    p.add_argument("--out", default=None, help="write the markdown report here (default: print only)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--quick", action="store_true", help="use only the first --quick-users users")
    p.add_argument("--quick-users", type=int, default=3000)
    p.add_argument(
        "--no-user-batches",
        action="store_true",
        help="skip the extra RecBole validation timing with batches of as many users as graphrec's validation "
             "(its eval_batch_size, 512 by default: 512 x n_items score cells in RecBole's count)",
    )
    args = p.parse_args(argv)
    for name in ("threads", "epochs", "repeats", "quick_users"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    from pathlib import Path

    sys.path.insert(0, str(repo))
    from experiments._script import check_data_root, check_out_file  # graphrec's checks: no numpy or torch imported yet

    check_out_file(args.out)  # now, not after the measurements
    check_data_root(args.data_root, f"{args.dataset}/train.json", "the LATTICE dataset folder (--dataset names it)")
    return args


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


# The thread count must reach OpenMP/BLAS before numpy and torch are imported, so the
# arguments are parsed first; the heavy imports follow.
if __name__ == "__main__":
    _ARGS = _parse_args()
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(_ARGS.threads)

import contextlib  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import torch  # noqa: E402

from graphrec.data import Dataset  # noqa: E402
from graphrec.data.formats.lattice import read_lattice  # noqa: E402
from graphrec.data.formats.recbole import write_recbole  # noqa: E402
from graphrec.train.builders import build_model  # noqa: E402
from graphrec.train.config import TrainConfig  # noqa: E402
from graphrec.train.fit import evaluate_model, fit, seed_everything  # noqa: E402
from graphrec.train.record import source_description  # noqa: E402

from experiments._script import cpu_wait_total  # noqa: E402

KS = (10, 20, 50)
METRIC_ORDER = ("recall", "ndcg", "precision", "hit", "mrr", "map")
LAYERS, DIM, BATCH, REG, LR = 2, 64, 2048, 1e-4, 1e-3
RECBOLE_EVAL_BATCH = 4096  # RecBole's default eval_batch_size (counted in user x item cells)


# ----------------------------------------------------------------------------- helpers
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def subsample_users(ds: Dataset, n: int) -> Dataset:
    """The first ``n`` users with all their interactions; every item is kept."""
    n = min(n, ds.n_users)
    return ds.replace(
        user_ids=ds.user_ids[:n],
        splits={s: m[:n] for s, m in ds.splits.items()},
        timestamps=None,
        user_fields={k: v[:n] for k, v in ds.user_fields.items()},
        name=ds.name,
    )


@contextlib.contextmanager
def recbole_sandbox(workdir: Path):
    """Run RecBole inside ``workdir`` with a bare ``sys.argv``.

    RecBole writes ``log_tensorboard/`` into the current directory, and its ``Config``
    parses every ``--key=value`` of ``sys.argv`` as a RecBole option.
    """
    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(workdir)
    sys.argv = sys.argv[:1]
    try:
        with warnings.catch_warnings():
            # deprecation noise raised from RecBole's own code (pandas inplace fillna,
            # torch.sparse.FloatTensor, torch.cuda.amp.GradScaler)
            warnings.filterwarnings("ignore", category=FutureWarning, module="recbole")
            warnings.filterwarnings("ignore", category=UserWarning, module="recbole")
            yield
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------- graphrec
def run_graphrec(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    seed_everything(args.seed)
    model = build_model("lightgcn", ds, {"embedding_dim": DIM, "num_layers": LAYERS, "reg_weight": REG})
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=BATCH,
        lr=LR,
        patience=10**9,
        eval_every=args.epochs + 1,  # fit still validates once, after the last epoch (not timed here)
        ks=KS,
        seed=args.seed,
        progress=False,
    )
    result = fit(model, ds, cfg, "cpu")
    epoch_secs = [float(h["train_seconds"]) for h in result.history]
    losses = [float(h["loss"]) for h in result.history]

    eval_cfg = TrainConfig(ks=KS, progress=False)
    valid_secs = []
    for _ in range(args.repeats):
        dt, res = timed(lambda: evaluate_model(model, ds, "valid", eval_cfg, "cpu"))
        valid_secs.append(dt)
    model.eval()
    with torch.no_grad():
        prop_secs = [timed(model.propagate)[0] for _ in range(args.repeats)]
    return {
        "model": model,
        "epoch_secs": epoch_secs,
        "losses": losses,
        "valid_secs": valid_secs,
        "valid_users": int(res["all"]["users"]),
        "prop_secs": prop_secs,
        "fit_seconds_per_epoch": float(result.timings["seconds_per_epoch"]),
    }


def graphrec_metrics(model, ds: Dataset) -> dict[str, dict[str, float]]:
    cfg = TrainConfig(ks=KS, progress=False)
    return {s: evaluate_model(model, ds, s, cfg, "cpu")["all"] for s in ("valid", "test")}


# ----------------------------------------------------------------------------- RecBole
def _numpy_aliases() -> None:
    # RecBole 1.2.1 still uses np.float / np.int / np.bool (e.g. evaluator/metrics.py:
    # np.zeros_like(..., dtype=np.float)), aliases removed in NumPy 1.24: restore them.
    for alias, typ in (("float", float), ("int", int), ("bool", bool)):
        if alias not in np.__dict__:
            setattr(np, alias, typ)


def setup_recbole(ds: Dataset, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    _numpy_aliases()
    # never recbole.quick_start: it imports ray, which fails here
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    name = "bench"
    write_recbole(ds, workdir / "data" / name, name)
    config = Config(
        model=LightGCN,
        dataset=name,
        config_dict={
            "data_path": str(workdir / "data"),
            "checkpoint_dir": str(workdir / "saved"),
            "benchmark_filename": ["train", "valid", "test"],
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            # .user/.item list every id: users/items without any interaction are kept, as in graphrec
            "load_col": {"inter": ["user_id", "item_id"], "user": ["user_id"], "item": ["item_id"]},
            # with benchmark files RecBole ignores "split" (the files are the splits)
            "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
            "metrics": ["Recall", "NDCG", "Precision", "Hit", "MRR", "MAP"],
            "topk": list(KS),
            "valid_metric": "Recall@20",
            "metric_decimal_place": 16,  # default 4 rounds away differences below 1e-4
            "n_layers": LAYERS,
            "embedding_size": DIM,
            "reg_weight": REG,
            "learning_rate": LR,
            "train_batch_size": BATCH,
            "eval_batch_size": RECBOLE_EVAL_BATCH,
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            "epochs": args.epochs,
            "seed": args.seed,
            "reproducibility": True,
            "use_gpu": False,
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "worker": 0,
            "state": "WARNING",
        },
    )
    config["device"] = torch.device("cpu")
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = LightGCN(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)
    return {
        "config": config,
        "dataset": dataset,
        "train": train_data,
        "valid": valid_data,
        "test": test_data,
        "model": model,
        "trainer": trainer,
    }


def check_counts(ds: Dataset, rb: dict[str, Any]) -> list[list[str]]:
    """Users/items/interactions per split of both (RecBole's counts without [PAD])."""
    d = rb["dataset"]
    rows = [
        ["users", str(ds.n_users), str(d.user_num - 1)],
        ["items", str(ds.n_items), str(d.item_num - 1)],
    ]
    for s in ("train", "valid", "test"):
        rows.append([f"{s} interactions", str(ds.splits[s].nnz), str(rb[s]._dataset.inter_num)])
    rows.append(
        ["valid users evaluated", str(int((np.diff(ds.valid.indptr) > 0).sum())), str(len(rb["valid"].uid_list))]
    )
    rows.append(["test users evaluated", str(int((np.diff(ds.test.indptr) > 0).sum())), str(len(rb["test"].uid_list))])
    bad = [r[0] for r in rows if r[1] != r[2]]
    if bad:
        raise SystemExit(f"graphrec and RecBole datasets differ in: {', '.join(bad)}\n{rows}")
    return rows


def run_recbole(rb: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    trainer, model = rb["trainer"], rb["model"]
    epoch_secs, losses = [], []
    n_batches = len(rb["train"])
    for epoch in range(args.epochs):
        dt, loss = timed(lambda: trainer._train_epoch(rb["train"], epoch_idx=epoch, show_progress=False))
        epoch_secs.append(dt)
        losses.append(float(loss) / n_batches)

    def valid_pass(loader):
        model.restore_user_e = model.restore_item_e = None  # include the propagation, as graphrec does
        return trainer.evaluate(loader, load_best_model=False, show_progress=False)

    valid_secs = [timed(lambda: valid_pass(rb["valid"]))[0] for _ in range(args.repeats)]
    model.eval()
    with torch.no_grad():
        prop_secs = [timed(model.forward)[0] for _ in range(args.repeats)]
    out = {
        "epoch_secs": epoch_secs,
        "losses": losses,
        "valid_secs": valid_secs,
        "prop_secs": prop_secs,
        "users_per_batch": rb["valid"].step,
    }
    if not args.no_user_batches:
        # RecBole counts eval_batch_size in user x item score cells: with its default
        # (4096) and more than 4096 items a batch holds ONE user. Also time batches of
        # as many users as graphrec's default eval_batch_size, for a like-for-like pass.
        from recbole.data.dataloader import FullSortEvalDataLoader

        config = rb["config"]
        n_items = rb["valid"]._dataset.item_num
        config["eval_batch_size"] = TrainConfig().eval_batch_size * n_items
        try:
            big = FullSortEvalDataLoader(config, rb["valid"]._dataset, rb["valid"]._sampler, shuffle=False)
        finally:
            config["eval_batch_size"] = RECBOLE_EVAL_BATCH
        out["valid_secs_user_batches"] = [timed(lambda: valid_pass(big))[0] for _ in range(args.repeats)]
        out["users_per_batch_big"] = big.step
    return out


def copy_embeddings(g_model, rb: dict[str, Any], ds: Dataset) -> dict[str, float]:
    """Load graphrec's layer-0 embeddings into RecBole's model; compare the propagations."""
    d, r_model = rb["dataset"], rb["model"]
    maps = {}
    for field, ids in (("user_id", ds.user_ids), ("item_id", ds.item_ids)):
        tokens = d.field2id_token[field]  # tokens[r] = original id of RecBole index r; 0 is [PAD]
        index = {t: j for j, t in enumerate(ids.tolist())}
        maps[field] = torch.as_tensor([index[t] for t in tokens[1:].tolist()], dtype=torch.long)
        if len(set(maps[field].tolist())) != len(ids):
            raise SystemExit(f"RecBole's {field} tokens do not cover graphrec's {len(ids)} ids")
    with torch.no_grad():
        for r_emb, g_emb, field in (
            (r_model.user_embedding, g_model.user_embedding, "user_id"),
            (r_model.item_embedding, g_model.item_embedding, "item_id"),
        ):
            r_emb.weight.zero_()  # [PAD] row: isolated in the graph, masked in ranking
            r_emb.weight[1:] = g_emb.weight[maps[field]]
        r_model.restore_user_e = r_model.restore_item_e = None
        r_model.eval()
        g_model.eval()
        ru, ri = r_model.forward()
        gu, gi = g_model.embeddings()
        return {
            "user": float((ru[1:] - gu[maps["user_id"]]).abs().max()),
            "item": float((ri[1:] - gi[maps["item_id"]]).abs().max()),
            "scale": float(max(gu.abs().max(), gi.abs().max())),
        }


def recbole_metrics(rb: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for s in ("valid", "test"):
        rb["model"].restore_user_e = rb["model"].restore_item_e = None
        res = rb["trainer"].evaluate(rb[s], load_best_model=False, show_progress=False)
        out[s] = {k.lower(): float(v) for k, v in res.items()}
    return out


# ----------------------------------------------------------------------------- report
def build_report(
    args: argparse.Namespace,
    ds: Dataset,
    g: dict[str, Any],
    r: dict[str, Any],
    counts: list[list[str]],
    emb_diff: dict[str, float],
    gm: dict[str, dict[str, float]],
    rm: dict[str, dict[str, float]],
    setup_secs: dict[str, float],
    pressure: float | None,
) -> tuple[str, dict[str, float]]:
    import recbole

    # medians: robust to a warm-up epoch and to a disturbed one on a shared machine
    g_epoch = statistics.median(g["epoch_secs"])
    r_epoch = statistics.median(r["epoch_secs"])
    g_val = statistics.median(g["valid_secs"])
    r_val = statistics.median(r["valid_secs"])
    rows = [
        [f"train epoch (s, median of {args.epochs})", fmt(g_epoch), fmt(r_epoch), f"{r_epoch / g_epoch:.2f}"],
        [
            f"full validation pass (s, median of {args.repeats}); RecBole default eval_batch_size "
            f"= {RECBOLE_EVAL_BATCH} cells = {r['users_per_batch']} user/batch",
            fmt(g_val),
            fmt(r_val),
            f"{r_val / g_val:.2f}",
        ],
    ]
    if "valid_secs_user_batches" in r:
        rb_val = statistics.median(r["valid_secs_user_batches"])
        rows.append(
            [
                f"full validation pass (s, median of {args.repeats}); both {r['users_per_batch_big']} users/batch",
                fmt(g_val),
                fmt(rb_val),
                f"{rb_val / g_val:.2f}",
            ]
        )
    g_prop, r_prop = statistics.median(g["prop_secs"]), statistics.median(r["prop_secs"])
    rows.append(
        [f"one 2-layer propagation, no grad (s, median of {args.repeats}; in every train step and valid pass)", fmt(g_prop, 4), fmt(r_prop, 4),
         f"{r_prop / g_prop:.2f}"]
    )
    timing_table = md_table(["", "graphrec", "RecBole 1.2.1", "ratio RecBole / graphrec"], rows)

    metric_rows, max_diff = [], {}
    for s in ("valid", "test"):
        max_diff[s] = 0.0
    for m in METRIC_ORDER:
        for k in KS:
            key = f"{m}@{k}"
            row = [key]
            for s in ("valid", "test"):
                a, b = gm[s][key], rm[s][key]
                d = abs(a - b)
                max_diff[s] = max(max_diff[s], d)
                row += [f"{a:.6f}", f"{b:.6f}", f"{d:.1e}"]
            metric_rows.append(row)
    metric_table = md_table(
        ["metric", "graphrec valid", "RecBole valid", "abs diff", "graphrec test", "RecBole test", "abs diff"],
        metric_rows,
    )

    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, _repo_root()), *sys.argv[1:]])
    lines = [
        "# LightGCN: graphrec vs RecBole 1.2.1 (CPU)",
        "",
        f"- command: `{cmd}`",
        f"- dataset: `{args.dataset}` (LATTICE split, unseen valid/test items kept)"
        + (f", **quick: first {ds.n_users} users only**" if args.quick else "")
        + f"; {ds.n_users} users, {ds.n_items} items, "
        + ", ".join(f"{s} {ds.splits[s].nnz}" for s in ("train", "valid", "test")),
        f"- threads: torch.set_num_threads({args.threads}) (torch.get_num_threads() = {torch.get_num_threads()}), "
        f"OMP/MKL/OPENBLAS_NUM_THREADS={args.threads}",
        f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)",
        "- CPU contention during the run: "
        + (
            f"some task waited for a CPU {100 * pressure:.1f}% of the wall time (/proc/pressure/cpu; "
            "more than a few % means the timings are disturbed)"
            if pressure is not None
            else "unknown (no /proc/pressure/cpu)"
        ),
        f"- graphrec: commit {source_description()}",
        f"- torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"RecBole {recbole.__version__}, Python {platform.python_version()}",
        f"- model: LightGCN, {LAYERS} layers, dim {DIM}, BPR, Adam lr {LR}, batch {BATCH}, reg_weight {REG} "
        "(graphrec: squared L2 / 2B; RecBole EmbLoss with require_pow False: un-squared norms / B), "
        "1 uniform negative per positive",
        f"- evaluation: full ranking over all items, metrics {', '.join(METRIC_ORDER)} @ {list(KS)}; "
        "valid masks train, test masks train + valid (graphrec protocol `recbole`); "
        f"graphrec eval_batch_size {TrainConfig().eval_batch_size} users",
        f"- setup (not timed above): graphrec dataset read {setup_secs['read']:.2f}s; RecBole write files + "
        f"create_dataset + data_preparation + model (graph) + Trainer {setup_secs['recbole_setup']:.2f}s",
        "",
        "## Timings",
        "",
        timing_table,
        "",
        "Per-epoch seconds: graphrec "
        + ", ".join(fmt(x) for x in g["epoch_secs"])
        + "; RecBole "
        + ", ".join(fmt(x) for x in r["epoch_secs"])
        + ". Validation passes: graphrec "
        + ", ".join(fmt(x) for x in g["valid_secs"])
        + "; RecBole "
        + ", ".join(fmt(x) for x in r["valid_secs"])
        + (
            "; RecBole (user batches) " + ", ".join(fmt(x) for x in r["valid_secs_user_batches"])
            if "valid_secs_user_batches" in r
            else ""
        )
        + ".",
        "",
        "Mean training loss per epoch (BPR + reg; the reg terms differ, see above): graphrec "
        + ", ".join(f"{x:.4f}" for x in g["losses"])
        + "; RecBole "
        + ", ".join(f"{x:.4f}" for x in r["losses"])
        + ".",
        "",
        "## Dataset as seen by both",
        "",
        md_table(["", "graphrec", "RecBole (without [PAD])"], counts),
        "",
        "## Same embeddings, both evaluators",
        "",
        f"graphrec's layer-0 embeddings after {args.epochs} training epoch(s) copied into RecBole's LightGCN "
        "(ids mapped through the original tokens); each library propagates over its own training graph. "
        f"Max |difference| of the propagated embeddings: users {emb_diff['user']:.2e}, items "
        f"{emb_diff['item']:.2e} (largest |value| {emb_diff['scale']:.2e}).",
        "",
        f"Max |metric difference|: valid {max_diff['valid']:.2e}, test {max_diff['test']:.2e}.",
        "",
        metric_table,
        "",
    ]
    summary = {"g_epoch": g_epoch, "r_epoch": r_epoch, "g_val": g_val, "r_val": r_val, **{f"diff_{k}": v for k, v in max_diff.items()}}
    return "\n".join(lines), summary


# ----------------------------------------------------------------------------- main
def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    psi0, t_start = cpu_wait_total(), time.perf_counter()
    root = Path(args.data_root) / args.dataset
    t_read, ds = timed(lambda: read_lattice(root, unseen="keep"))
    if args.quick:
        ds = subsample_users(ds, args.quick_users)
    print(
        f"{args.dataset}: {ds.n_users} users, {ds.n_items} items, "
        + ", ".join(f"{s} {m.nnz}" for s, m in ds.splits.items())
        + f"; threads {torch.get_num_threads()}",
        flush=True,
    )

    print("graphrec: training and timing ...", flush=True)
    g = run_graphrec(ds, args)
    print(
        f"  epoch s: {[round(x, 3) for x in g['epoch_secs']]}  valid pass s: {[round(x, 3) for x in g['valid_secs']]}",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="graphrec-recbole-") as tmp:
        work = Path(tmp)
        with recbole_sandbox(work):
            print("RecBole: writing files, building dataset/dataloaders/model ...", flush=True)
            t_setup, rb = timed(lambda: setup_recbole(ds, work, args))
            counts = check_counts(ds, rb)
            print(md_table(["", "graphrec", "RecBole (without [PAD])"], counts), flush=True)
            print("RecBole: training and timing ...", flush=True)
            r = run_recbole(rb, args)
            print(
                f"  epoch s: {[round(x, 3) for x in r['epoch_secs']]}  valid pass s: "
                f"{[round(x, 3) for x in r['valid_secs']]}"
                + (
                    f"  ({r['users_per_batch_big']}-user batches: "
                    f"{[round(x, 3) for x in r['valid_secs_user_batches']]})"
                    if "valid_secs_user_batches" in r
                    else ""
                ),
                flush=True,
            )
            print("Same embeddings: evaluating with both ...", flush=True)
            emb_diff = copy_embeddings(g["model"], rb, ds)
            rm = recbole_metrics(rb)
        gm = graphrec_metrics(g["model"], ds)

    psi1, wall = cpu_wait_total(), time.perf_counter() - t_start
    pressure = (psi1 - psi0) / 1e6 / wall if psi0 is not None and psi1 is not None else None
    report, _ = build_report(
        args, ds, g, r, counts, emb_diff, gm, rm, {"read": t_read, "recbole_setup": t_setup}, pressure
    )
    print()
    print(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
        print(f"written to {out}")


if __name__ == "__main__":
    main(_ARGS)
