"""How much gradient reaches the hidden items' ID embeddings under cold start: MM-GEF
(kNN + co-interaction graph) against MM-GEF without the co-interaction graph and LATTICE.

    PYTHONPATH=. python experiments/mmgef/cold_gradients.py --seeds 0,1,2

A hidden (cold) item has no training interaction, so its ID embedding learns only through
the item branch, from the warm items whose item-graph neighbour it is. With the
co-interaction graph MM-GEF mixes a second graph into every warm item's branch, where
hidden items have no edge. Per seed (the cold split and the initialisation), each model is
built after ``torch.manual_seed(seed)`` (same LightGCN initialisation), and one epoch of
BPR batches (same negatives) is run at the initial parameters without optimiser steps;
the report sums over the batches the mean L2 norm of the gradient rows of the hidden and
of the warm item embeddings. Models as in ``run.py``'s cold-start rows of 2026-11-22
(fused image + text for MM-GEF with its fixed structure, both modalities for LATTICE;
defaults otherwise), under the hidden protocol (``--protocol``) as then.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# MM-GEF's fixed structure, named (the model of the measurement in README.md's "Earlier
# results"; MM-GEF's default structure has changed once since)
ROWS = (
    ("MM-GEF", "mmgef", {"modalities": "image,text", "structure": "fixed"}),
    ("MM-GEF w/o CF", "mmgef", {"modalities": "image,text", "structure": "fixed", "use_cf_graph": False}),
    ("LATTICE", "lattice", {}),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cold-start", type=float, default=0.2)
    ap.add_argument("--protocol", default="hidden", choices=("hidden", "papers"),
                    help="cold-start protocol (default hidden: the one of the README's measurement, the only one "
                         "graphrec had then; papers: cold items only in valid/test)")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from graphrec.data import cold_start
    from graphrec.data.formats import read_unisrec
    from graphrec.data.sampling import NegativeSampler, bpr_batches
    from graphrec.train import build_model

    torch.set_num_threads(1)
    full = read_unisrec(args.data_root / "amazon-scientific", unseen="keep")
    print("| seed | model | gradient on hidden items | on warm items | hidden / warm | hidden vs MM-GEF w/o CF |")
    print("|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        ds = cold_start(full, args.cold_start, seed, args.protocol)
        cold = torch.from_numpy(np.asarray(ds.cold_items))
        warm = torch.from_numpy(np.setdiff1d(np.arange(ds.n_items), ds.cold_items))
        sums = {}
        for label, name, params in ROWS:
            torch.manual_seed(seed)
            model = build_model(name, ds, params)
            model.train()
            model.start_epoch(1)
            g_cold = g_warm = 0.0
            rng = np.random.default_rng(seed)
            sampler = NegativeSampler(ds.train, exclude_items=ds.cold_items)
            for users, pos, neg in bpr_batches(ds.train, 2048, rng, sampler):
                model.zero_grad(set_to_none=True)
                model.loss(*(torch.from_numpy(a) for a in (users, pos, neg))).backward()
                grad = model.lightgcn.item_embedding.weight.grad
                g_cold += float(grad[cold].norm(dim=1).mean())
                g_warm += float(grad[warm].norm(dim=1).mean())
            sums[label] = (g_cold, g_warm)
        base = sums["MM-GEF w/o CF"][0]
        for label, (c, w) in sums.items():
            print(f"| {seed} | {label} | {c:.3e} | {w:.3e} | {c / w:.2f} | {c / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
