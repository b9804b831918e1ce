"""MM-GEF's Tables 1-3 (arXiv:2308.07222) on real data: methods and ablations, modalities,
cold start; several seeds, both evaluation protocols.

    python experiments/mmgef/run.py --dataset scientific --tables 1,2,3 --seeds 0,1,2,3,4
    python experiments/mmgef/summarize.py > experiments/mmgef/results/summary.md

Every (configuration, seed) is one training run: model selection and early stopping on
the validation split (recall@20), then the test split once. Validation masks the
training items under both protocols, so one run serves both: its test metrics are
reported with the RecBole protocol (test masks train + valid items) and with the mmrec
protocol (train items only). Cold start (Table 3) follows the papers' protocol
(LATTICE's data/cold_start.py: 20% of the items, half of them validation items, half test
items, every interaction of each moved there); Table 5 repeats it under graphrec's
``hidden`` protocol (the items lose their training interactions, valid/test keep their
per-user split), whose test metrics are also split into warm and cold items. Each result is written to ``results/<dataset>/<config>/seed<S>.json`` as soon
as it finishes (temporary name, then rename), with the settings it was trained with
(``run_settings``: ``--epochs``, learning rate, batch size, patience, validation
interval), and existing results are skipped, so an interrupted run continues where it
stopped. An existing result trained with other settings (a smoke run with ``--epochs 1``
left in the folder) is not skipped as if it were this call's: the call stops before any
work, naming the file and the setting (delete the file, or call with its settings). Hyper-parameters are fixed per dataset in
``SETTINGS`` below (chosen on validation, seed 0: see README.md); Table 7 searches the
paper's batch size x learning rate space for LightGCN, LATTICE and both MM-GEFs on seed 0
and Table 8 runs each one's best VALIDATION point on more seeds; nothing is selected on test.

Data: ``amazon-scientific`` (UniSRec files, CLIP ViT-B/32 image and text features, fused
early) and ``lfm2k`` (MMRec split; MiniLM text 384-d and VGGish audio 128-d: the two
dimensions differ, so MM-GEF fuses one modality at a time, while LATTICE, which keeps a
graph per modality, uses both).
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

from experiments._script import check_out_folder, one_line_errors  # noqa: E402
from graphrec.data import Dataset, cold_start  # noqa: E402
from graphrec.data.formats import read_mmrec, read_unisrec  # noqa: E402
from graphrec.train import TrainConfig, run_training  # noqa: E402
from graphrec.train.fit import evaluate_model  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    """One row of a table: a model with its options, optionally under cold start."""

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    cold_start: float = 0.0
    tables: tuple[int, ...] = (1,)
    select_on: str = "all"  # item group whose validation recall@20 selects the epoch
    cold_protocol: str = "papers"  # papers (LATTICE's cold_start.py) or hidden (graphrec's earlier one)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides (e.g. LATTICE's parity schedule)


def load(dataset: str, root: Path) -> Dataset:
    if dataset == "scientific":
        return read_unisrec(root / "amazon-scientific", unseen="keep")
    if dataset == "lfm2k":
        return read_mmrec(root / "lfm2k", features={"text": "all-MiniLM-L6-v2.npy", "audio": "vggish.npy"})
    raise SystemExit(f"unknown dataset {dataset!r}: scientific or lfm2k")


#: the paper's MM-GEF (its rows and ablations): LATTICE's learned structure on the fused feature
PAPER = {"structure": "learned"}


def configs(dataset: str) -> list[Config]:
    """The rows of Tables 1-3 for ``dataset``."""
    if dataset == "scientific":
        both, single = "image,text", ("image", "text")
    else:
        both, single = None, ("text", "audio")  # no early fusion of 384-d text with 128-d audio
    fused = both or "text"
    rows = [
        Config("CB", "cb", {"modalities": fused}, tables=(1,)),
        Config("MF-BPR", "mf", tables=(1,)),
        Config("LightGCN", "lightgcn", tables=(1,)),
        # lfm2k: MMRec's LightGCN grid starts at 1 layer, reg 1e-2 (its reference numbers)
        *([Config("LightGCN 1 layer", "lightgcn", {"num_layers": 1}, tables=(1,)),
           Config("LightGCN 1 layer reg 1e-2", "lightgcn", {"num_layers": 1, "reg_weight": 1e-2}, tables=(1,))]
          if dataset == "lfm2k" else []),
        Config("LATTICE", "lattice", tables=(1, 2)),
        # LATTICE as the authors' code trains it (docs/models/lattice.md, --parity reference)
        Config("LATTICE parity", "lattice", {"parity": "reference"}, tables=(1,), train=PARITY_TRAIN),
        # the paper's Table 2 row "LATTICE with CF" equals its Table 1 "w/o Att" (fixed weights)
        Config("LATTICE + CF", "lattice", {"use_cf_graph": True, "cf_weights": "fixed"}, tables=(2,)),
        Config("LATTICE + CF learned", "lattice", {"use_cf_graph": True, "cf_weights": "learned"}, tables=(2,)),
        # "w/o CF+Att" = LATTICE on the fused feature; "w/o CF" is the same model under our
        # reading (one graph: the softmax is 1; docs/models/mmgef.md)
        Config("MM-GEF w/o CF(+Att)", "mmgef", {"modalities": fused, "use_cf_graph": False, **PAPER}, tables=(1, 2)),
        Config("MM-GEF w/o Att", "mmgef", {"modalities": fused, "attention": False, **PAPER}, tables=(1,)),
        Config("MM-GEF", "mmgef", {"modalities": fused, **PAPER}, tables=(1, 2)),
        # MM-GEF as the paper's tables were run: on LATTICE's reference code (--parity reference,
        # LATTICE's training schedule, as "LATTICE parity")
        Config("MM-GEF parity", "mmgef", {"modalities": fused, **PAPER, "parity": "reference"}, tables=(1,),
               train=PARITY_TRAIN),
        # the fixed-graph variant (kNN graph only, no learned part; cheaper at scale)
        Config("MM-GEF fixed", "mmgef", {"modalities": fused, "structure": "fixed"}, tables=(1,)),
    ]
    for m in single:
        rows.append(Config(f"MM-GEF {m} w/o CF", "mmgef", {"modalities": m, "use_cf_graph": False, **PAPER}, tables=(2,)))
        rows.append(Config(f"MM-GEF {m}", "mmgef", {"modalities": m, **PAPER}, tables=(2,)))
    cold = [
        Config("CB", "cb", {"modalities": fused}),
        Config("LightGCN", "lightgcn"),
        Config("LATTICE", "lattice"),
        Config("LATTICE + CF", "lattice", {"use_cf_graph": True, "cf_weights": "fixed"}),
        Config("MM-GEF w/o CF", "mmgef", {"modalities": fused, "use_cf_graph": False, **PAPER}),
        Config("MM-GEF w/o Att", "mmgef", {"modalities": fused, "attention": False, **PAPER}),
        Config("MM-GEF", "mmgef", {"modalities": fused, **PAPER}),
        Config("MM-GEF fixed", "mmgef", {"modalities": fused, "structure": "fixed"}),
        Config("MM-GEF projected", "mmgef", {"modalities": fused, "feature_mode": "projected"}),
    ]
    for m in single:
        cold.append(Config(f"MM-GEF {m} w/o CF", "mmgef", {"modalities": m, "use_cf_graph": False, **PAPER}))
        cold.append(Config(f"MM-GEF {m}", "mmgef", {"modalities": m, **PAPER}))
    # Table 3 under the papers' protocol (valid and test hold the cold items only, so the
    # validation that selects IS the cold items'); table 5: the same rows under the hidden
    # protocol (valid/test keep warm items), selected on all items or on the cold ones
    rows += [Config(c.name, c.model, c.params, cold_start=0.2, tables=(3,)) for c in cold]
    rows += [Config(f"{c.name} [hidden]", c.model, c.params, cold_start=0.2, tables=(5,), cold_protocol="hidden")
             for c in cold]
    rows += [Config(f"{c.name} [hidden] (cold-selected)", c.model, c.params, cold_start=0.2, tables=(5,),
                    cold_protocol="hidden", select_on="cold")
             for c in cold if c.name in ("LATTICE", "LATTICE + CF", "MM-GEF", "MM-GEF fixed", "MM-GEF w/o CF")]
    # "table 6": the papers' protocol with BPR negatives that are never a cold item
    # (--negatives warm), beside table 3's default (negatives from all items, as LATTICE's
    # reference samples them): the effect of the choice per model (docs/training.md)
    rows += [Config(f"{c.name} [warm negatives]", c.model, c.params, cold_start=0.2, tables=(6,),
                    train={"negatives": "warm"})
             for c in cold if c.name in ("LightGCN", "LATTICE", "LATTICE + CF", "MM-GEF", "MM-GEF fixed")]
    # "table 7": the paper's own search space (section 4.2: batch size in {512, 1024, 2048,
    # 4096}, learning rate in {1e-2, 1e-3, 1e-4}) for the four models of the orderings,
    # seed 0; "table 8" runs each model's best point on seed-0 VALIDATION on more seeds
    grid_models = [c for c in rows if c.name in GRID_MODELS and not c.cold_start]
    rows += [Config(grid_name(c.name, bs, lr), c.model, c.params, tables=(7,), train={"batch_size": bs, "lr": lr})
             for c in grid_models for bs in GRID["batch_size"] for lr in GRID["lr"]]
    # "table 4": LightGCN's search space, selected on validation (as MMRec selects its runs):
    # layers 1-4 x reg 1e-5..1e-3 (squared L2 / 2B here; MMRec's EmbLoss is an unsquared
    # norm / B, so its reg values are not on our scale)
    rows += [
        Config(f"LightGCN grid L{layers} reg {reg:.0e}", "lightgcn", {"num_layers": layers, "reg_weight": reg}, tables=(4,))
        for layers in (1, 2, 3, 4) for reg in (1e-5, 1e-4, 1e-3)
    ]
    return rows


#: the models whose orderings the paper claims (MM-GEF > LATTICE > LightGCN), tuned in table 7
GRID_MODELS = ("LightGCN", "LATTICE", "MM-GEF", "MM-GEF fixed")
#: MM-GEF's search space (its section 4.2)
GRID = {"batch_size": (512, 1024, 2048, 4096), "lr": (1e-2, 1e-3, 1e-4)}


def grid_name(model: str, batch_size: int, lr: float) -> str:
    return f"{model} grid bs {batch_size} lr {lr:.0e}"


def grid_names(model: str) -> list[str]:
    """The names of ``model``'s table-7 rows, in grid order (batch size, then lr)."""
    return [grid_name(model, bs, lr) for bs in GRID["batch_size"] for lr in GRID["lr"]]


def best_of(names: list[str], valid: dict[str, float]) -> str:
    """The name with the highest seed-0 VALIDATION recall@20; the first of equals in the
    order given (grid order). The one selection rule of tables 7-8 (run.py and summarize.py)."""
    return max(names, key=lambda n: valid[n])


def tuned_rows(rows: list[Config], out: Path, dataset: str, epochs: int = 1000) -> list[Config]:
    """Each grid model's table-7 row with the best seed-0 validation recall@20 (a model is
    left out until all of its grid points ran on seed 0). Test metrics play no part; a
    grid result trained with other settings than ``epochs`` and the dataset's stops the
    call (:func:`check_settings`)."""
    settings = SETTINGS[dataset]
    by_name = {c.name: c for c in rows if 7 in c.tables}
    chosen = []
    for model in GRID_MODELS:
        names = grid_names(model)
        paths = {n: result_path(out, dataset, by_name[n], 0) for n in names}
        if not all(p.is_file() for p in paths.values()):
            print(f"{dataset} {model}: table 7 incomplete on seed 0, no tuned point yet", flush=True)
            continue
        results = {n: json.loads(p.read_text()) for n, p in paths.items()}
        for n, p in paths.items():
            check_settings(p, results[n], run_settings(by_name[n], settings, epochs))
        valid = {n: r["best_valid"]["recall@20"] for n, r in results.items()}
        chosen.append(by_name[best_of(names, valid)])
    return chosen


#: LATTICE's reference training (its codes/main.py; docs/models/lattice.md)
PARITY_TRAIN = {"lr": 5e-4, "lr_decay": 0.96, "lr_decay_every": 50, "batch_size": 1024}

#: training settings per dataset (chosen on validation; see README.md)
SETTINGS: dict[str, dict[str, Any]] = {
    # Scientific: validation recall peaks early (epoch ~7), dips, and rises again for
    # hundreds of epochs; patience 20 stopped every model at the first peak (seed 0:
    # LightGCN 0.2212 / MM-GEF 0.2054 / LATTICE 0.2095 valid recall@20 vs 0.2243 / 0.2436 /
    # 0.2547 with patience 100), so validate every 2 epochs with patience 50.
    # Cold start: the learning rate of the papers' cold-start runs (LATTICE's README runs
    # cold_start.py's split with --lr 1e-5; MM-GEF follows it, footnote 2), not tuned here.
    "scientific": {"lr": 1e-3, "batch_size": 2048, "cold_lr": 1e-5, "patience": 50, "eval_every": 2},
    "lfm2k": {"lr": 1e-3, "batch_size": 2048, "cold_lr": 1e-5, "patience": 20, "eval_every": 1},
}


def slug(c: Config) -> str:
    base = c.name.lower().replace(" ", "-").replace("/", "").replace("(", "").replace(")", "").replace("+", "")
    base = base.replace("[", "").replace("]", "")
    return f"cold-{base}" if c.cold_start else base


def result_path(out: Path, dataset: str, c: Config, seed: int) -> Path:
    return out / dataset / slug(c) / f"seed{seed}.json"


def training(c: Config, settings: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig overrides of a run of ``c``: the dataset's settings, then the row's."""
    train = {"lr": settings["cold_lr"] if c.cold_start else settings["lr"], "batch_size": settings["batch_size"]}
    train.update(c.train)
    return train


def signature(c: Config, settings: dict[str, Any]) -> str:
    """What a run of ``c`` depends on besides the seed (not its name or tables): a grid row
    at the dataset's own settings is the same run as the plain row."""
    return json.dumps([c.model, c.params, c.cold_start, c.select_on, c.cold_protocol, training(c, settings)],
                      sort_keys=True)


def run_settings(c: Config, settings: dict[str, Any], epochs: int) -> dict[str, Any]:
    """How a run of ``c`` is trained besides its row and seed, as its result records it:
    ``--epochs`` (max_epochs) and the TrainConfig values taken from the dataset's
    settings and the row. Empty for CB, which does not train."""
    if c.model == "cb":
        return {}
    return {"max_epochs": epochs, "patience": settings["patience"], "eval_every": settings["eval_every"],
            **training(c, settings)}


def settings_differ(result: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """The first setting in which the stored ``result`` differs from ``wanted``
    (:func:`run_settings`), as "NAME: the file's value, this call's value"; None when it
    is a result of the same settings. Shared with experiments/coldstart/run.py.

    A result written before the settings were recorded is judged by what it holds: its
    learning rate, and its epochs: it ran more than ``max_epochs``, or fewer without early
    stopping having ended it (no validation gain in the last ``patience`` validations),
    so a run capped by a smaller ``--epochs``."""
    if not wanted:
        return None
    recorded = result.get("run_settings")
    if recorded is not None:
        for name in sorted(set(recorded) | set(wanted)):
            if recorded.get(name) != wanted.get(name):
                return f"{name}: {recorded.get(name)} there, {wanted.get(name)} in this call"
        return None
    if "lr" in result and result["lr"] != wanted["lr"]:
        return f"lr: {result['lr']} there, {wanted['lr']} in this call"
    ran = result["epochs"] if "epochs" in result else result["timings"]["epochs"]
    stopped_early = ran - result["best_epoch"] >= wanted["patience"] * wanted["eval_every"]
    if ran > wanted["max_epochs"] or (ran < wanted["max_epochs"] and not stopped_early):
        return f"max_epochs: {ran} epochs run there without early stopping, {wanted['max_epochs']} in this call"
    return None


def check_settings(path: Path, result: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Stop (one line, exit 1) when the result at ``path`` was trained with other settings
    than ``wanted``: skipping it would mix it into this call's results as if it were one."""
    differ = settings_differ(result, wanted)
    if differ is not None:
        raise SystemExit(f"{path} was trained with other settings ({differ}): delete it to re-run it with "
                         "this call's, or call with the settings it was run with")


def find_twins(todo: list[Config], rows: list[Config], settings: dict[str, Any]) -> dict[str, list[Config]]:
    """For each row to run (keyed by its slug), the other rows that are the same run.

    Two rows of the tables can be one configuration (lfm2k: "MM-GEF text" is "MM-GEF",
    whose fused feature is text; a grid row at the dataset's settings is the plain row):
    a twin's result is reused, not re-run. Keyed by slug, not name: a warm row and a
    cold row share a name and are different runs.
    """
    signed = [(o, slug(o), signature(o, settings)) for o in rows]
    twins = {}
    for c in todo:
        key, sig_c = slug(c), signature(c, settings)
        twins[key] = [o for o, s, sig in signed if s != key and sig == sig_c]
    return twins


def run_one(ds: Dataset, c: Config, seed: int, settings: dict[str, Any], epochs: int, device: str) -> dict[str, Any]:
    data = cold_start(ds, c.cold_start, seed, c.cold_protocol) if c.cold_start else ds
    train = training(c, settings)
    lr = train["lr"]
    config = TrainConfig(epochs=epochs, seed=seed, progress=False, ks=(10, 20, 50), patience=settings["patience"],
                         eval_every=settings["eval_every"], select_on=c.select_on, **train)
    t0 = time.perf_counter()
    # the papers' models: without graphrec's cold-item path (experiments/coldstart/ measures it)
    params = c.params if c.model == "cb" else {"cold_path": "none", **c.params}
    record, model = run_training(data, c.model, params, config, device=device)
    mmrec = evaluate_model(model, data, "test", TrainConfig.from_dict(dict(config.to_dict(), protocol="mmrec")), device)
    history = record["history"]
    # validation of the selected model per item group (all / warm / cold under cold start),
    # as the fit loop recorded it at the best epoch
    best = next(h for h in history if h["epoch"] == record["best_epoch"])
    valid = {"all": best["valid"], **best.get("valid_groups", {})}
    return {
        "config": c.name,
        "model": c.model,
        "params": record["model_params"],
        "cold_start": c.cold_start,
        "cold_protocol": c.cold_protocol if c.cold_start else None,
        "select_on": c.select_on,
        "tables": list(c.tables),
        "seed": seed,
        "lr": lr,
        "best_epoch": record["best_epoch"],
        "epochs": record["timings"]["epochs"],
        "seconds_per_epoch": record["timings"]["seconds_per_epoch"],
        "eval_seconds_per_pass": record["timings"]["eval_seconds_per_pass"],
        "wall_seconds": time.perf_counter() - t0,
        "best_valid": record["best_valid"],
        "valid": valid,
        "test": {"recbole": record["test"], "mmrec": mmrec},
        "learned": next((h.get("model") for h in history if h["epoch"] == record["best_epoch"]), None),
        "threads": torch.get_num_threads(),
        "run_settings": run_settings(c, settings, epochs),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="scientific", choices=["scientific", "lfm2k"])
    ap.add_argument("--tables", default="1,2,3",
                    help="which tables to run, e.g. 1,3 (4: the LightGCN grid; 5: cold start under the hidden protocol; "
                         "6: table 3 with --negatives warm; 7: the paper's batch x lr grid for LightGCN, LATTICE, "
                         "MM-GEF and MM-GEF fixed, run it on seed 0; 8: each of those models at its best seed-0 "
                         "validation point of table 7)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--only", default=None, help="comma-separated config names (default: all of the tables)")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tables = {int(t) for t in args.tables.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    only = set(args.only.split(",")) if args.only else None
    rows = configs(args.dataset)
    settings = SETTINGS[args.dataset]
    todo = [c for c in rows if tables & set(c.tables) and (only is None or c.name in only)]
    if only is not None:  # a name that is no row of these tables would run nothing, silently
        named = {c.name for c in rows if tables & set(c.tables)}
        unknown = sorted(only - named)
        if unknown:
            raise SystemExit(f"--only {', '.join(repr(n) for n in unknown)}: no row of table(s) "
                             f"{args.tables} on {args.dataset}; the rows are: {', '.join(sorted(named))}")
    check_out_folder(args.out)
    if 8 in tables:
        todo += [c for c in tuned_rows(rows, args.out, args.dataset, args.epochs) if c not in todo]
    twins = find_twins(todo, rows, settings)
    # every existing result this call would skip or reuse: trained with this call's settings?
    for seed in seeds:
        for c in todo:
            for o in [c, *twins[slug(c)]]:
                path = result_path(args.out, args.dataset, o, seed)
                if path.is_file():
                    check_settings(path, json.loads(path.read_text()), run_settings(o, settings, args.epochs))
    with one_line_errors():
        ds = load(args.dataset, args.data_root)
    for seed in seeds:  # seeds outer: an interrupted run leaves every row with as many seeds
        for c in todo:
            path = result_path(args.out, args.dataset, c, seed)
            if path.is_file():
                continue
            twin = next((o for o in twins[slug(c)] if result_path(args.out, args.dataset, o, seed).is_file()), None)
            if twin is not None:
                res = json.loads(result_path(args.out, args.dataset, twin, seed).read_text())
                res.update(config=c.name, tables=list(c.tables), same_as=twin.name)
            else:
                res = run_one(ds, c, seed, settings, args.epochs, args.device)
            res["dataset"] = args.dataset
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(res, indent=1))
            tmp.rename(path)
            t = res["test"]["recbole"]
            extra = f" cold {t['cold']['recall@20']:.4f}" if "cold" in t else ""
            extra += f" [the run of {twin.name}]" if twin is not None else ""
            print(f"{args.dataset} {c.name:24s}{' (cold 0.2)' if c.cold_start else '':11s} seed {seed}: "
                  f"valid recall@20 {res['best_valid']['recall@20']:.4f}, test recall@20 {t['all']['recall@20']:.4f} ndcg@20 {t['all']['ndcg@20']:.4f}{extra} "
                  f"(best epoch {res['best_epoch']}, {res['seconds_per_epoch']:.3f} s/epoch, {res['wall_seconds']:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
