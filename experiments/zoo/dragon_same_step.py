"""graphrec's DRAGON against MMRec's, one training step apart: the same parameters, graphs
and batch must give the same loss, final embeddings and gradients; and, optionally,
graphrec's DRAGON trained on MMRec's own graph files (the diagnostic of
docs/models/dragon.md).

    python experiments/zoo/dragon_same_step.py --mmrec MMREC_DEST --mmrec-data MMREC_DATA --dataset scientific
    python experiments/zoo/dragon_same_step.py ... --dataset scientific --train-seeds 0,1,2

The first command builds MMRec's DRAGON (its own code, in its own environment, through
../shared/peers/run_mmrec.py's import shims) at MMRec's default point (reg_weight 0.1),
samples its user neighbour lists for an epoch, takes the first training batch, and
writes the parameters, both graphs, the batch, the loss and the gradients to a
temporary file. graphrec's DRAGON is then built for the same data (read back from the
MMRec folder, as the zoo does), given those parameters and graphs, and evaluated on the
same batch. MMRec's loss uses log2, so graphrec's (natural-log BPR, regulariser
0.1 ln 2) must equal ln 2 times MMRec's loss, and so must its gradients.

``--train-seeds`` trains graphrec's DRAGON (zoo settings at MMRec's point ``--lr``,
``--reg-weight``, default its first grid point lr 0.1, reg_weight 0.1, passed as reg_weight
ln 2; patience 20, mmrec protocol) with the item graph MMRec cached (mm_adj_10.pt) and the
user graph of MMRec's user_graph_dict.npy (first 40 neighbours, softmax of the counts),
so that the two libraries' graphs differ in nothing, tie order included. It reports
validation and test recall@20 per seed; it is a diagnostic, never a selection.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mmrec_side(mmrec: Path, folder: Path, out: Path) -> None:
    """In MMRec's environment: one DRAGON step at its default point, dumped to ``out``."""
    import torch
    from mmrec_step import mmrec_model

    model, train = mmrec_model(mmrec, folder, "DRAGON", {"aggr_mode": "add", "reg_weight": 0.1, "learning_rate": 0.1})
    model.train()
    model.pre_epoch_processing()
    batch = next(iter(train))
    kept = batch.clone()  # DRAGON's forward shifts the item ids in place
    loss = model.calculate_loss(batch)
    loss.backward()
    torch.save({
        "batch": kept, "loss": loss.item(), "n_users": model.n_users, "n_items": model.n_items,
        "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "result_embed": model.result_embed.detach().clone(), "edge_index": model.edge_index.clone(),
        "user_index": torch.tensor(model.epoch_user_graph), "user_weight": model.user_weight_matrix.clone(),
        "mm_adj": model.mm_adj.coalesce(),
    }, out)


def _csr(matrix, shape):
    import numpy as np
    import scipy.sparse as sp

    m = matrix.coalesce()
    idx = m.indices().numpy()
    out = sp.csr_matrix((m.values().numpy().astype(np.float32), (idx[0], idx[1])), shape=shape)
    out.sort_indices()
    return out


def swap_graphs(model, item_graph, user_graph) -> None:
    """Give a built graphrec DRAGON other (scipy CSR) item and user graphs."""
    from graphrec.nn import SparseOperator, to_torch_sparse

    model.item_op = SparseOperator(to_torch_sparse(item_graph), "item_graph", model.n_items)
    model.user_op = SparseOperator(to_torch_sparse(user_graph), "user_graph", model.n_users)


def compare(dump: Path, data) -> dict:
    """graphrec's DRAGON on MMRec's parameters, graphs and batch: the differences."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    from graphrec.train import build_model

    d = torch.load(dump, weights_only=False)
    if (data.n_users, data.n_items) != (d["n_users"], d["n_items"]):
        raise SystemExit("the graphrec dataset and the MMRec folder disagree on the numbers of users and items")
    ei = d["edge_index"].numpy()
    fwd = ei[0] < data.n_users
    r = data.train.tocoo()
    same_edges = set(zip(ei[0][fwd].tolist(), (ei[1][fwd] - data.n_users).tolist())) == set(zip(r.row.tolist(), r.col.tolist()))
    model = build_model("dragon", data, {"reg_weight": 0.1 * math.log(2)})
    ui, uw = d["user_index"].numpy(), d["user_weight"].numpy()
    users_graph = sp.csr_matrix((uw.ravel().astype(np.float32), (np.repeat(np.arange(data.n_users), ui.shape[1]), ui.ravel())),
                                shape=(data.n_users,) * 2)
    users_graph.sum_duplicates()  # MMRec pads short lists with repeats: their weights add up
    users_graph.sort_indices()
    swap_graphs(model, _csr(d["mm_adj"], (data.n_items,) * 2), users_graph)
    p, g = d["params"], d["grads"]
    prefix = {"image": "v", "text": "t"}
    order = [0 if m == "image" else 1 for m in model.modalities]  # MMRec: image (v) first, then text (t)
    pairs = []
    with torch.no_grad():
        for m in model.modalities:
            s = prefix[m]
            ours = [model.preferences[m], model.projections[m][0].weight, model.projections[m][0].bias,
                    model.projections[m][2].weight, model.projections[m][2].bias]
            theirs = [f"{s}_preference", f"{s}_gcn.MLP.weight", f"{s}_gcn.MLP.bias", f"{s}_gcn.MLP_1.weight", f"{s}_gcn.MLP_1.bias"]
            for a, b in zip(ours, theirs):
                a.copy_(p[b])
                pairs.append((a, b))
        model.modality_weights.copy_(p["weight_u"][:, order, 0])
    users, pos, neg = d["batch"]
    loss = model.loss(users, pos, neg)
    loss.backward()
    with torch.no_grad():
        e_u, e_i = model.embeddings()
    ref = d["result_embed"].float()
    dim = model.embedding_dim
    cols = torch.cat([torch.arange(j * dim, (j + 1) * dim) for j in order])  # graphrec's column blocks in MMRec's order
    ref_u, ref_i = ref[: data.n_users][:, cols], ref[data.n_users:][:, cols]
    grad_rel = max(float((a.grad - math.log(2) * g[b]).abs().max() / g[b].abs().max()) for a, b in pairs if b in g)
    gw = g["weight_u"][:, order, 0]
    grad_rel = max(grad_rel, float((model.modality_weights.grad - math.log(2) * gw).abs().max() / gw.abs().max()))
    return {
        "same_training_edges": same_edges,
        "loss_graphrec": loss.item(), "loss_mmrec_times_ln2": math.log(2) * d["loss"],
        "loss_rel_diff": abs(loss.item() - math.log(2) * d["loss"]) / abs(loss.item()),
        "embedding_max_abs_diff": max(float((e_u - ref_u).abs().max()), float((e_i - ref_i).abs().max())),
        "embedding_max_abs": float(ref.abs().max()),
        "grad_max_rel_diff": grad_rel,
    }


def train_on_mmrec_graphs(data, folder: Path, seed: int, lr: float = 0.1, reg_weight: float = 0.1) -> dict:
    """graphrec's DRAGON (zoo settings at MMRec's point ``lr``, ``reg_weight``) trained over
    MMRec's cached item graph and user lists."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    from graphrec.train import build_model
    from graphrec.train.builders.dragon import softmax_rows
    from graphrec.train.config import TrainConfig
    from graphrec.train.fit import fit, seed_everything

    lists = np.load(folder / "user_graph_dict.npy", allow_pickle=True).item()
    rows, cols, counts = [], [], []
    for u in range(data.n_users):  # MMRec keeps each user's first 40 (its topk order)
        nb, c = list(lists[u][0][:40]), list(lists[u][1][:40])
        rows += [u] * len(nb)
        cols += nb
        counts += c
    users_graph = softmax_rows(sp.csr_matrix((np.asarray(counts, np.float64), (rows, cols)), shape=(data.n_users,) * 2))
    users_graph.sort_indices()
    items_graph = _csr(torch.load(folder / "mm_adj_10.pt", weights_only=False), (data.n_items,) * 2)
    seed_everything(seed)  # the order of run_training: seed, build, fit
    model = build_model("dragon", data, {"reg_weight": reg_weight * math.log(2)})
    swap_graphs(model, items_graph, users_graph)
    res = fit(model, data, TrainConfig(lr=lr, seed=seed, protocol="mmrec", progress=False))
    return {"seed": seed, "lr": lr, "reg_weight": reg_weight, "best_epoch": res.best_epoch, "valid_recall@20": res.best_valid["recall@20"],
            "test_recall@20": res.test["all"]["recall@20"], "test_ndcg@20": res.test["all"]["ndcg@20"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmrec", type=Path, required=True, help="DEST of ../shared/peers/setup_mmrec.sh")
    ap.add_argument("--mmrec-data", type=Path, required=True, help="folder of MMRec dataset folders (the zoo's)")
    ap.add_argument("--dataset", default="scientific")
    ap.add_argument("--cache", type=Path, default=HERE / "results" / "graphrec-data")
    ap.add_argument("--train-seeds", default="", help="also train over MMRec's graph files, these seeds")
    ap.add_argument("--lr", type=float, default=0.1, help="--train-seeds: MMRec's learning_rate")
    ap.add_argument("--reg-weight", type=float, default=0.1,
                    help="--train-seeds: MMRec's reg_weight (graphrec's is this times ln 2)")
    ap.add_argument("--_mmrec-side", dest="mmrec_side", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = (a.mmrec_data / a.dataset).resolve()
    if a.mmrec_side:
        mmrec_side(a.mmrec.resolve(), folder, a.mmrec_side)
        return
    for needed in ("user_graph_dict.npy", "mm_adj_10.pt"):
        if not (folder / needed).exists():
            raise SystemExit(f"{folder / needed} is missing: run MMRec's DRAGON on this folder once "
                             "(experiments/zoo/run.py --models dragon) so that it writes its graph files")
    from mmrec_step import graphrec_dataset, mmrec_dump

    data = graphrec_dataset(folder, a.cache)
    with tempfile.TemporaryDirectory(prefix="dragon-step-") as tmp:
        dump = Path(tmp) / "step.pt"
        mmrec_dump(__file__, a.mmrec, ["--mmrec", str(a.mmrec), "--mmrec-data", str(a.mmrec_data), "--dataset", a.dataset], dump)
        print(json.dumps({"dataset": a.dataset, **compare(dump, data)}, indent=1))
    for s in [int(x) for x in a.train_seeds.split(",") if x.strip()]:
        print(json.dumps({"dataset": a.dataset, "graphs": "MMRec's", **train_on_mmrec_graphs(data, folder, s, a.lr, a.reg_weight)}), flush=True)


if __name__ == "__main__":
    main()
