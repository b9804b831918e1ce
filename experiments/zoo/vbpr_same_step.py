"""graphrec's VBPR against MMRec's, one training step apart: the same parameters and
batch must give the same loss, scores and gradients (the check behind the "same model"
reading of docs/models/vbpr.md).

    python experiments/zoo/vbpr_same_step.py --mmrec MMREC_DEST --mmrec-data MMREC_DATA --dataset lfm2k

MMRec's VBPR is built in its own environment (its code, its data pipeline, through
``mmrec_step.py``) at ``--reg-weight`` (default 1.0, the lfm2k point where the two
libraries' validations differ), and its first training batch, parameters, loss and
gradients are written to a temporary file. graphrec's VBPR with MMRec's projection bias
(``--projection-bias``; the zoo's other options: raw features, no biases) is built on
the same data (read back from the MMRec folder, as the zoo does), given those
parameters, and evaluated on the same batch. MMRec concatenates the features text
first, graphrec in its modality order, so the projection's input columns are permuted
to match. Both losses use the natural logarithm, but MMRec's BPR is
``-log(1e-10 + sigmoid(d))`` and graphrec's ``softplus(-d)``: equal to float rounding
while d is above about -23, while below it MMRec's is capped (about 23.03, no gradient)
and graphrec's keeps slope 1. So the check reports graphrec's loss as it trains and,
with MMRec's capped form swapped in, the loss that must equal MMRec's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mmrec_side(mmrec: Path, folder: Path, reg_weight: float, out: Path) -> None:
    """In MMRec's environment: one VBPR step on its first training batch, dumped to ``out``."""
    import torch
    from mmrec_step import mmrec_model

    model, train = mmrec_model(mmrec, folder, "VBPR", {"reg_weight": reg_weight})
    model.train()
    batch = next(iter(train))
    loss = model.calculate_loss(batch)
    loss.backward()
    users, pos, neg = batch
    u, items = model.forward()
    torch.save({
        "batch": batch.clone(), "loss": loss.item(), "n_users": model.n_users, "n_items": model.n_items,
        "text_dim": model.t_feat.shape[1], "features": model.item_raw_features.clone(),
        "pos_scores": (u[users] * items[pos]).sum(1).detach(), "neg_scores": (u[users] * items[neg]).sum(1).detach(),
        "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
    }, out)


def compare(dump: Path, data, reg_weight: float) -> dict:
    """graphrec's VBPR on MMRec's parameters and batch: the differences."""
    import torch
    import torch.nn.functional as F

    from graphrec.train import build_model

    d = torch.load(dump, weights_only=False)
    if (data.n_users, data.n_items) != (d["n_users"], d["n_items"]):
        raise SystemExit("the graphrec dataset and the MMRec folder disagree on the numbers of users and items")
    model = build_model("vbpr", data, {"reg_weight": reg_weight, "feature_norm": "none", "biases": False,
                                       "projection_bias": True})
    # MMRec's columns: text, then image; graphrec's: its modalities in order
    dims = {"text": d["text_dim"], "image": d["features"].shape[1] - d["text_dim"]}
    start = {"text": 0, "image": dims["text"]}
    cols = torch.cat([torch.arange(start[m], start[m] + dims[m]) for m in model_modalities(data)])
    p, g = d["params"], d["grads"]
    with torch.no_grad():
        model.user_embedding.weight.copy_(p["u_embedding"])
        model.item_embedding.weight.copy_(p["i_embedding"])
        model.projection.weight.copy_(p["item_linear.weight"][:, cols])
        model.projection.bias.copy_(p["item_linear.bias"])
    users, pos, neg = d["batch"]
    with torch.no_grad():
        pos_s, neg_s = model.pairwise_scores(users, pos, neg)
    diff = pos_s - neg_s
    out = {
        "same_features": bool(torch.equal(model.features, d["features"][:, cols].float())),
        "score_max_abs_diff": max(float((pos_s - d["pos_scores"]).abs().max()), float((neg_s - d["neg_scores"]).abs().max())),
        "score_max_abs": float(torch.cat([d["pos_scores"], d["neg_scores"]]).abs().max()),
        "pairs_below_-23": int((diff < -23).sum()), "pairs": len(diff),
        "loss_mmrec": d["loss"],
    }
    # graphrec's loss as it trains, then with MMRec's capped BPR swapped in (the same
    # regulariser): the first differs from MMRec's by the pairs below -23 only
    for name in ("graphrec", "graphrec_with_mmrec_bpr"):
        model.zero_grad()
        loss = model.loss(users, pos, neg)
        if name != "graphrec":
            p_s, n_s = model.pairwise_scores(users, pos, neg)
            loss = loss - F.softplus(n_s - p_s).mean() - torch.log(1e-10 + torch.sigmoid(p_s - n_s)).mean()
        loss.backward()
        pairs = {"users": (model.user_embedding.weight.grad, g["u_embedding"]),
                 "items": (model.item_embedding.weight.grad, g["i_embedding"]),
                 "projection": (model.projection.weight.grad, g["item_linear.weight"][:, cols]),
                 "projection_bias": (model.projection.bias.grad, g["item_linear.bias"])}
        out[f"loss_{name}"] = loss.item()
        out[f"loss_rel_diff_{name}"] = abs(loss.item() - d["loss"]) / abs(d["loss"])
        out[f"grad_max_rel_diff_{name}"] = {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in pairs.items()}
    return out


def model_modalities(data) -> list[str]:
    """The modalities graphrec's VBPR concatenates for ``data``, in its order."""
    from graphrec.graphs.fuse import default_modalities

    return list(default_modalities(data.item_features))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmrec", type=Path, required=True, help="DEST of ../shared/peers/setup_mmrec.sh")
    ap.add_argument("--mmrec-data", type=Path, required=True, help="folder of MMRec dataset folders (the zoo's)")
    ap.add_argument("--dataset", default="lfm2k")
    ap.add_argument("--reg-weight", type=float, default=1.0, help="MMRec's reg_weight (graphrec's is the same)")
    ap.add_argument("--cache", type=Path, default=HERE / "results" / "graphrec-data")
    ap.add_argument("--_mmrec-side", dest="mmrec_side", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = (a.mmrec_data / a.dataset).resolve()
    if a.mmrec_side:
        mmrec_side(a.mmrec.resolve(), folder, a.reg_weight, a.mmrec_side)
        return
    from mmrec_step import graphrec_dataset, mmrec_dump

    data = graphrec_dataset(folder, a.cache)
    with tempfile.TemporaryDirectory(prefix="vbpr-step-") as tmp:
        dump = Path(tmp) / "step.pt"
        mmrec_dump(__file__, a.mmrec, ["--mmrec", str(a.mmrec), "--mmrec-data", str(a.mmrec_data), "--dataset", a.dataset,
                                       "--reg-weight", str(a.reg_weight)], dump)
        print(json.dumps({"dataset": a.dataset, "reg_weight": a.reg_weight, **compare(dump, data, a.reg_weight)}, indent=1))


if __name__ == "__main__":
    main()
