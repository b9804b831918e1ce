"""The cold-item path (docs/models/cold-start.md) against the models without it and
content kNN, under the papers' cold-start protocol and on the normal (warm) split.

    python experiments/coldstart/run.py --dataset scientific --seeds 0,1,2,3,4
    python experiments/coldstart/run.py --dataset lfm2k --seeds 0,1,2,3,4 --rows "MM-GEF + path"
    python experiments/coldstart/summarize.py

Every (row, seed) is one training run: selection and early stopping on validation
recall@20 (under the papers' protocol valid holds cold items only), then the test split
once. Each result goes to ``results/<dataset>/<row>/seed<S>.json`` (temporary name, then
rename) with the settings it was trained with; existing results are skipped, so an
interrupted run continues, but one trained with other settings (``--epochs``, learning
rate, batch size, patience) stops the call before any work, naming the file and the
setting: delete it or call with its settings. Data loading, the per-dataset training
settings and that check are experiments/mmgef/run.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments" / "mmgef"))

from run import SETTINGS, check_settings, load  # noqa: E402  (experiments/mmgef/run.py)

from experiments._script import check_out_folder, one_line_errors  # noqa: E402

from graphrec.data import cold_start  # noqa: E402
from graphrec.train import TrainConfig, run_training  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = "papers"  # cold-start protocol (20% of the items); None: the normal split
    lr: float = 1e-3


def rows(dataset: str) -> list[Row]:
    fused = "image,text" if dataset == "scientific" else "text"
    path = {"cold_path": "content", "cold_modalities": fused}
    mmgef = {"modalities": fused}
    out = []
    for protocol, tag in (("papers", ""), ("hidden", " [hidden]")):
        out += [
            Row("CB" + tag, "cb", {"modalities": fused}, protocol),
            Row("MM-GEF" + tag, "mmgef", {**mmgef, "cold_path": "none"}, protocol),
            Row("MM-GEF + path" + tag, "mmgef", {**mmgef, **path}, protocol),
            Row("LightGCN + path" + tag, "lightgcn", path, protocol),
            Row("MM-GEF + path rank" + tag, "mmgef", {**mmgef, **path, "cold_objective": "rank"}, protocol),
        ]
    # the normal split: the path must not cost warm quality
    out += [
        Row("warm LightGCN", "lightgcn", {"cold_path": "none"}, None),
        Row("warm MM-GEF", "mmgef", {**mmgef, "cold_path": "none"}, None),
        Row("warm MM-GEF + path", "mmgef", {**mmgef, **path}, None),
    ]
    return out


def slug(name: str) -> str:
    return name.lower().replace(" ", "-").replace("+", "plus").replace("[", "").replace("]", "")


def cold_views(model, data, config) -> dict[str, Any]:
    """Test metrics of the cold items ranked among the cold items only (warm items
    masked: flooding the lists with unseen items gains nothing there), and the share of
    unseen items in the top-20 of every user (the catalogue share is 20%)."""
    import numpy as np

    from graphrec.train.evaluate import evaluate_cold_start
    from graphrec.train.recommend import recommend_indices

    model.eval()
    with torch.no_grad():
        scorer = model.scorer()
        warm = torch.ones(data.n_items, dtype=torch.bool)
        warm[torch.as_tensor(data.cold_items)] = False

        def cold_only(users):
            s = scorer(users).clone()
            s[:, warm] = torch.finfo(s.dtype).min  # below every cold score (the evaluator refuses -inf)
            return s

        among = evaluate_cold_start(cold_only, data, "test", ks=(20,), protocol=config.protocol)
        top, _ = recommend_indices(scorer, data, np.arange(data.n_users), k=20)
    return {"cold_among_cold": among.get("cold"), "unseen_share_top20": float((~warm.numpy())[top].mean())}


def run_settings(row: Row, settings: dict[str, Any], epochs: int) -> dict[str, Any]:
    """How a run of ``row`` is trained besides its row and seed, as its result records it
    (experiments/mmgef/run.py's check_settings compares them); empty for CB (no training)."""
    if row.model == "cb":
        return {}
    return {"max_epochs": epochs, "patience": settings["patience"], "eval_every": settings["eval_every"],
            "lr": row.lr, "batch_size": settings["batch_size"]}


def run_one(ds, row: Row, seed: int, settings: dict[str, Any], epochs: int) -> dict[str, Any]:
    data = cold_start(ds, 0.2, seed, row.protocol) if row.protocol else ds
    config = TrainConfig(epochs=epochs, lr=row.lr, batch_size=settings["batch_size"], patience=settings["patience"],
                         eval_every=settings["eval_every"], seed=seed, progress=False)
    t0 = time.perf_counter()
    record, model = run_training(data, row.model, row.params, config)
    extra = cold_views(model, data, config) if row.protocol else {}
    return {
        "row": row.name, "model": row.model, "params": record["model_params"], "protocol": row.protocol,
        "lr": row.lr, "seed": seed, "best_epoch": record["best_epoch"], "best_valid": record["best_valid"],
        "valid_history": [h.get("valid", {}).get("recall@20") for h in record["history"]],
        "test": record["test"], **extra, "timings": record["timings"], "wall_seconds": time.perf_counter() - t0,
        "threads": torch.get_num_threads(), "run_settings": run_settings(row, settings, epochs),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, choices=sorted(SETTINGS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wanted = None if args.rows is None else [r.strip() for r in args.rows.split(",")]
    todo = [r for r in rows(args.dataset) if wanted is None or r.name in wanted]
    if wanted is not None and len(todo) != len(wanted):
        raise SystemExit(f"unknown rows: {sorted(set(wanted) - {r.name for r in todo})}")
    seeds = [int(s) for s in args.seeds.split(",")]
    check_out_folder(args.results, "--results")
    settings = SETTINGS[args.dataset]
    for seed in seeds:  # the results this call would skip: trained with its settings?
        for row in todo:
            out = args.results / args.dataset / slug(row.name) / f"seed{seed}.json"
            if out.is_file():
                check_settings(out, json.loads(out.read_text()), run_settings(row, settings, args.epochs))
    with one_line_errors():
        ds = load(args.dataset, args.data_root)
    for seed in seeds:
        for row in todo:
            out = args.results / args.dataset / slug(row.name) / f"seed{seed}.json"
            if out.exists():
                continue
            res = run_one(ds, row, seed, settings, args.epochs)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(res, indent=1))
            tmp.replace(out)
            t = res["test"]
            g = t.get("cold", t["all"])
            among = res.get("cold_among_cold") or {}
            print(f"{args.dataset} {row.name:28s} seed {seed}: valid {res['best_valid']['recall@20']:.4f} "
                  f"test r@20 {g['recall@20']:.4f} n@20 {g['ndcg@20']:.4f} all {t['all']['recall@20']:.4f} "
                  f"among-cold {among.get('recall@20', float('nan')):.4f} unseen share {res.get('unseen_share_top20', 0):.2f} "
                  f"({res['timings']['seconds_per_epoch']:.2f} s/epoch, epoch {res['best_epoch']})", flush=True)


if __name__ == "__main__":
    main()
