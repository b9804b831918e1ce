"""GMMF Table 2 (all baselines + GMMF + MARN), with and without graph enrichment, and
both papers' ablation tables (GMMF Table 3, MARN Table 3), over several seeds.

    python experiments/ctr/run.py --datasets amazon-scientific,ml100k --seeds 5 \
        --parts table2,gmmf_ablation,marn_ablation
    python experiments/ctr/run.py --datasets amazon-scientific --parts cold --cold-start 0.2 --seeds 5
    python experiments/ctr/run.py --datasets amazon-scientific --parts gmmf_ablation,marn_ablation \
        --seeds 5 --ablation-graph both      # the ablation tables with graph enrichment

The ``cold`` part (cold-start protocol of :mod:`graphrec.data.ctr`, one sample set per
seed under ``results/<dataset>/cold<F>-s<seed>/``) compares FM (IDs only: content reaches
a cold item only through the graph), YouTubeNet, DIN, MARN and GMMF (``--models``) with the item graphs of ``--cold-graphs`` on all / warm-target /
cold-target test samples and writes ``results/<dataset>-cold<F>.md``.

The ``tune`` part gives LR, FM, YouTubeNet, DIN, MARN and GMMF the same small grid
(learning rates x one knob per model: the papers' tuned loss coefficients for GMMF and
MARN, the content projection size for the deep baselines, L2 for LR and FM; ``TUNE_KNOBS``;
then, for GMMF and MARN, their item representation size at the best point, ``TUNE_SIZES``),
selects each model's grid point by mean VALIDATION AUC over ``--tune-seeds`` seeds, runs it on all ``--seeds`` and
writes ``results/<dataset>-tune.md``:

    python experiments/ctr/run.py --datasets amazon-scientific --parts tune --seeds 5

For each dataset the samples are built once (DIN protocol, seed 0) and stored under
``results/<dataset>/samples``, so every model and seed sees exactly the same samples.
Every run is selected on VALIDATION AUC (early stopping); the test split is read once
per run. Each finished run is cached as ``results/<dataset>/runs/<key>.json`` (an
interrupted experiment resumes), and ``results/<dataset>.md`` gets the mean and
standard deviation over seeds of test AUC, GAUC and logloss, the papers' numbers for
orientation (other datasets: not comparable), and the test AUC per popularity level
(MARN Table 4) with and without graph enrichment. ``--parts``, ``--models`` and ``--rows``
choose what trains; the tables show every cached run of the current settings (Table 2 and
both ablation tables, whichever of them this call trains) and count the rows not run
yet. Results are git-ignored.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments._script import check_out_folder, fail, one_line_errors  # noqa: E402
from graphrec.data.ctr import CTRData, load_ctr_source  # noqa: E402
from graphrec.models.ctr import CTR_MODELS  # noqa: E402
from graphrec.train.ctr import CTRConfig, run_ctr  # noqa: E402

SOURCES = {"amazon-scientific": "amazon-scientific", "ml100k": "ml100k"}

TABLE2 = [  # (row, model, params, graph-enrichable)
    ("LR", "lr", {}, False),
    ("FM", "fm", {}, True),
    ("DeepFM", "deepfm", {}, True),
    ("YouTubeNet", "youtubenet", {}, True),
    ("DIN", "din", {}, True),
    ("MARN", "marn", {}, True),
    ("GMMF", "gmmf", {}, True),
]
#: the models whose fields changed: LR and FM see the candidate item's ID fields only (GMMF
#: and MARN section 4.2), no longer the user's; their runs cached before (no "user_fields"
#: key) are refused rather than reported as the papers' LR and FM
ITEM_FIELD_MODELS = ("lr", "fm")


def _enrichable(model: str, data: CTRData, params: dict) -> bool:
    """Whether ``model`` takes item graphs on ``data``: FM with the item ID its only field
    (no item side field, as on amazon-scientific) has nothing for a graph to change, and
    graphrec refuses it (as it does LR's)."""
    import scipy.sparse as sp

    from graphrec.errors import ConfigError
    from graphrec.nn import to_torch_sparse
    from graphrec.train.ctr import build_ctr_model

    try:
        build_ctr_model(model, data, params, item_graphs=[to_torch_sparse(sp.identity(data.n_items, format="csr"))])
    except ConfigError:
        return False
    return True


# GMMF Table 3, rows (a)-(h); the paper's AUC on Electronics / Home / Cell Phones
GMMF_ABLATION = [
    ("(a) Base", dict(use_autoencoder=False, use_cgan=False, use_min=False), (0.7999, 0.7316, 0.7613)),
    ("(b) +AE", dict(use_autoencoder=True, use_cgan=False, use_min=False), (0.8040, 0.7320, 0.7935)),
    ("(c) +CGAN+AD", dict(use_autoencoder=False, use_cgan=True, use_min=False), (0.8012, 0.7344, 0.7644)),
    ("(d) +MIN", dict(use_autoencoder=False, use_cgan=False, use_min=True), (0.8052, 0.7354, 0.8190)),
    ("(e) +DSN (AE+CGAN+AD)", dict(use_autoencoder=True, use_cgan=True, use_min=False), (0.8047, 0.7379, 0.8075)),
    ("(f) +AE+MIN", dict(use_autoencoder=True, use_cgan=False, use_min=True), (0.8077, 0.7466, 0.8255)),
    ("(g) +CGAN+AD+MIN", dict(use_autoencoder=False, use_cgan=True, use_min=True), (0.8091, 0.7444, 0.8228)),
    ("(h) GMMF", dict(use_autoencoder=True, use_cgan=True, use_min=True), (0.8198, 0.7484, 0.8300)),
]
# MARN Table 3; the paper's AUC on Electro. / Clothe.
MARN_ABLATION = [
    ("BaseModel+IDs", dict(modalities=["id"], fusion="concat", adversarial="none", sequence="gru"), (0.7897, 0.7729)),
    ("BaseModel+IMAGE", dict(modalities=["image"], fusion="concat", adversarial="none", sequence="gru"), (0.7631, 0.7564)),
    ("BaseModel+CONC", dict(fusion="concat", adversarial="none", sequence="gru"), (0.7929, 0.7792)),
    ("BaseModel+MAF", dict(fusion="maf", adversarial="none", sequence="gru"), (0.7961, 0.7827)),
    ("BaseModel+MAF+ADV", dict(fusion="maf", adversarial="adv", sequence="gru"), (0.7974, 0.7838)),
    ("BaseModel+MAF+DDMA", dict(fusion="maf", adversarial="ddma", sequence="gru"), (0.8013, 0.7889)),
    ("MARN (MAF+DDMA+APGRU)", dict(fusion="maf", adversarial="ddma", sequence="apgru"), (0.8034, 0.7909)),
]
# The `tune` part: every model of the comparison gets a small grid, the same learning
# rates for all, with one model-specific knob of 3-4 values each: the papers' own tuned
# coefficients for GMMF (lambda_m of eq. 14, "adjust the strictness of the constraints")
# and MARN (lambda_0 of eq. 10, "tuned ranging from 0.01 to 1.8"), the size of the
# content projection for the deep baselines, and L2 (Adam weight decay) for LR and FM,
# which have no content and overfit the ID fields. GMMF's paper trains at Adam 1e-4 (section 4.1);
# the cap of 60 epochs leaves the slower rates room (patience 3 still stops every run).
TUNE_LRS = (1e-3, 1e-4)
TUNE_EPOCHS = 60
TUNE_KNOBS = {  # "weight_decay" is the optimiser's (CTRConfig), the others are model options
    "lr": ("weight_decay", (0.0, 1e-5, 1e-4, 1e-3)),
    "fm": ("weight_decay", (0.0, 1e-5, 1e-4, 1e-3)),
    "youtubenet": ("modality_dim", (16, 32, 64, 128)),
    "din": ("modality_dim", (16, 32, 64, 128)),
    "marn": ("adv_weight", (0.01, 0.1, 1.0)),
    "gmmf": ("recon_weight", (0.01, 0.1, 1.0, 10.0)),
}
# Second stage, at the learning rate and knob value the first stage selected: the size
# of the item representation of GMMF (id_dim: the ID embedding and the auto-encoders'
# H_m) and MARN (dim: modality embeddings and fused item vector), default 32 in both
# papers, so that the two models get a size search as YouTubeNet and DIN do.
TUNE_SIZES = {
    "marn": ("dim", (64, 128)),
    "gmmf": ("id_dim", (64, 128)),
}
# (The first grid had three values per knob; where validation peaked at its edge -- the
# largest projection for YouTubeNet and DIN, the largest lambda_m for GMMF, the largest
# L2 for LR and FM -- one more value was added beyond it, for every such model alike.)


# GMMF Table 2 (Electronics, Home, Cell Phones) and MARN Table 2 (Electro., Clothe.)
PAPER_T2 = {
    "LR": ((0.7212, 0.6624, 0.6199), (0.7272, 0.7143)),
    "FM": ((0.7418, 0.6743, 0.6385), (0.7369, 0.7224)),
    "DeepFM": ((0.7697, 0.6870, 0.6877), None),
    "YouTubeNet": ((0.7954, 0.7373, 0.7818), (0.7675, 0.7593)),
    "DIN": ((0.7965, 0.7397, 0.8149), None),
    "MARN": ((0.8034, 0.6922, 0.7521), (0.8034, 0.7909)),
    "GMMF": ((0.8198, 0.7484, 0.8300), None),
}


def _fmt(values: list[float]) -> str:
    v = [x for x in values if x is not None and np.isfinite(x)]
    if not v:
        return "-"
    return f"{np.mean(v):.4f} ± {np.std(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"


#: the parts ``--parts`` names
PARTS = ("table2", "gmmf_ablation", "marn_ablation", "tune", "cold")


def _run(data: CTRData, key: str, model: str, params: dict, graph: str | None, seed: int, args, cache: Path,
         train: dict | None = None, cached_only: bool = False) -> dict | None:
    """One cached run; ``train`` overrides the command line's CTRConfig settings.
    ``cached_only``: None instead of training when the run is not cached."""
    path = cache / f"{key}-s{seed}.json"
    settings = dict(epochs=args.epochs, patience=args.patience, lr=args.lr, batch_size=args.batch_size,
                    gan_start_epoch=args.gan_start_epoch)
    settings.update(train or {})
    if path.is_file():
        cached = json.loads(path.read_text())
        if model in ITEM_FIELD_MODELS and "user_fields" not in cached:
            raise SystemExit(f"{path} is a run of {model} with the user fields it had before it took the papers' "
                             f"item fields only: delete the {model} runs of {cache} (t2-{model}-*, tu-{model}-*, "
                             f"cold-{model}-*) to train them again")
        differ = {k: (cached["train"].get(k), v) for k, v in settings.items()
                  if "train" in cached and cached["train"].get(k) != v}
        if differ and cached_only:  # another part's run of other settings: not one of these
            return None
        if differ:  # a cached run of other settings would be reported under these ones
            what = ", ".join(f"{k} {old} (now {new})" for k, (old, new) in differ.items())
            raise SystemExit(f"{path} was trained with {what}: pass its settings, or delete {cache} to train "
                             "every run again with the new ones")
        return cached
    if cached_only:
        return None
    cfg = CTRConfig(seed=seed, progress=False, **settings)
    t0 = time.perf_counter()
    rec, _ = run_ctr(data, model, params, cfg, item_graph=graph)
    out = {
        "key": key, "model": model, "params": params, "graph": graph or "none", "seed": seed,
        "best_epoch": rec["best_epoch"], "valid_auc": rec["best_valid"]["auc"],
        "test": {k: rec["test"][k] for k in ("auc", "gauc", "logloss")},
        "levels": [rec["test"]["slices"][f"level_{k}"]["auc"] for k in range(10)],
        "cold": rec["test"]["slices"]["cold"], "warm": rec["test"]["slices"]["warm"],
        "valid_slices": {k: rec["best_valid"]["slices"][k] for k in ("cold", "warm")},
        "seconds": time.perf_counter() - t0, "train": settings,
        **({"user_fields": bool(params.get("user_fields", False))} if model in ITEM_FIELD_MODELS else {}),
        "gan": [(h["epoch"], h.get("gan_d_loss"), h.get("gan_g_loss")) for h in rec["history"] if "gan_d_loss" in h],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(path)
    print(f"  {key} seed {seed}: valid {out['valid_auc']:.4f} test {out['test']['auc']:.4f} "
          f"({out['seconds']:.0f} s, best epoch {out['best_epoch']})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--datasets", default="amazon-scientific,ml100k")
    ap.add_argument("--parts", default="table2,gmmf_ablation,marn_ablation")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--models", default=None,
                    help="comma-separated model names (lr,fm,deepfm,youtubenet,din,marn,gmmf) of the table2 and "
                         "cold parts [all]")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-history", type=int, default=20)
    ap.add_argument("--gan-start-epoch", type=int, default=1)
    ap.add_argument("--graph", default="both", help="graph enrichment compared with none in table 2")
    ap.add_argument("--cold-start", type=float, default=0.2, help="fraction of cold items of the cold part")
    ap.add_argument("--cold-graphs", default="none,knn,both", help="item graphs compared in the cold part")
    ap.add_argument("--tune-seeds", type=int, default=3, help="seeds of the tune part's grid search")
    ap.add_argument("--ablation-graph", default="none", choices=("none", "knn", "cooccur", "both"),
                    help="item graph of the ablation tables' runs [none]")
    ap.add_argument("--rows", default=None,
                    help="comma-separated run keys of ablation rows to run, in this order (g3-a .. g3-g, m3-0 .. m3-5; "
                         "the full-model rows are Table 2's runs), e.g. to share a table between processes [all]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = args.parts.split(",")
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"--parts {','.join(unknown)}: not a part; the parts are {', '.join(PARTS)}")
    models = None if args.models is None else {m.strip() for m in args.models.split(",") if m.strip()}
    if models is not None and not models <= {m for _, m, _, _ in TABLE2}:
        ap.error(f"--models: unknown model(s) {sorted(models - {m for _, m, _, _ in TABLE2})}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in SOURCES]
    if unknown or not datasets:
        fail(f"--datasets {args.datasets}: {', '.join(unknown) or 'none given'}: the datasets are {', '.join(SOURCES)}")
    check_out_folder(args.out)
    for ds in datasets:  # every dataset's source now, not after the first one's runs
        if not (args.out / ds / "samples" / "ctr.json").is_file() and not (args.data_root / SOURCES[ds]).exists():
            fail(f"--data-root {args.data_root}: no {SOURCES[ds]} there (the source of {ds}): pass the folder "
                 "that holds it")
    for ds in datasets:
        root = args.out / ds
        cache = root / "runs"
        cache.mkdir(parents=True, exist_ok=True)
        sdir = root / "samples"
        if (sdir / "ctr.json").is_file():
            with one_line_errors():
                data = CTRData.load(sdir)
        else:
            with one_line_errors():
                data = load_ctr_source(args.data_root / SOURCES[ds], max_history=args.max_history, seed=0)
            data.save(sdir)
        print(f"{ds}: {data.stats()}", flush=True)
        ablation = _ablation_rows(data, args.ablation_graph)
        if args.rows is not None:  # refuse unknown keys before any run starts
            known = {r[-1] for p in parts if p in ablation for r in ablation[p]}
            unknown = [k.strip() for k in args.rows.split(",") if k.strip() not in known]
            if unknown:
                ap.error(f"--rows: {', '.join(unknown)} not among the rows of {ds}'s requested ablation tables "
                         f"({', '.join(sorted(known)) or 'no ablation part in --parts'})")
        seeds = range(args.seeds)
        lines = [f"# CTR experiments on {ds}", "",
                 f"{_samples_line(data)} Seeds {list(seeds)}; Adam lr {args.lr}, batch {args.batch_size}, "
                 f"at most {args.epochs} epochs, early stopping on validation AUC (patience {args.patience}); "
                 f"GAN after epoch {args.gan_start_epoch}. Mean ± std over seeds of the TEST metrics at the best "
                 f"validation epoch. torch {torch.__version__}, Python {platform.python_version()}, {args.threads} thread(s).",
                 "", "The papers' numbers are on other datasets (Amazon Electronics/Home/Cell Phones, "
                 "Clothing): for orientation only.", ""]
        # the tables of results/<ds>.md show every run of these settings: the requested
        # parts (and --models / --rows) train what is missing, the others are read from the cache
        not_run: dict[str, int] = {}

        def runs_of(part: str, allowed: bool, key: str, model: str, params: dict, graph: str | None) -> list[dict] | None:
            runs = [_run(data, key, model, params, graph, s, args, cache, cached_only=not allowed) for s in seeds]
            if any(r is None for r in runs):
                not_run[part] = not_run.get(part, 0) + 1
                return None
            return runs

        table2 = []
        if set(parts) & {"table2", "gmmf_ablation", "marn_ablation"}:
            table2 = ["## GMMF Table 2 structure (with and without graph enrichment)", "",
                      f"| model | item graph | test AUC | test GAUC | test logloss | valid AUC | GMMF paper (Elec/Home/Cell) | MARN paper (Elec/Cloth) |",
                      "|---|---|---|---|---|---|---|---|"]
            levels_rows = []
            refused = []
            for row, model, params, enrich in TABLE2:
                allowed = "table2" in parts and (models is None or model in models)
                if enrich and not _enrichable(model, data, params):
                    enrich = False
                    refused.append(row)
                for graph in ([None, args.graph] if enrich else [None]):
                    key = f"t2-{model}-{graph or 'none'}"
                    runs = runs_of("table2", allowed, key, model, params, graph)
                    if runs is None:
                        continue
                    g_p, m_p = PAPER_T2[row]
                    table2.append(
                        f"| {row} | {graph or 'none'} | {_fmt([r['test']['auc'] for r in runs])} | "
                        f"{_fmt([r['test']['gauc'] for r in runs])} | {_fmt([r['test']['logloss'] for r in runs])} | "
                        f"{_fmt([r['valid_auc'] for r in runs])} | {' / '.join(f'{x:.4f}' for x in g_p) if g_p else '-'} | "
                        f"{' / '.join(f'{x:.4f}' for x in m_p) if m_p else '-'} |")
                    lv = np.nanmean(np.array([r["levels"] for r in runs], dtype=float), axis=0)
                    cold = [r["cold"]["auc"] for r in runs]
                    levels_rows.append(f"| {row} | {graph or 'none'} | " + " | ".join(f"{x:.3f}" for x in lv)
                                       + f" | {_fmt(cold)} ({runs[0]['cold']['samples']}) |")
            if refused:
                table2 += ["", f"No item-graph row for {', '.join(refused)}: on these data the item ID is "
                           "its only field, so an item graph would change nothing (graphrec refuses it)."]
            table2 += ["", "## Test AUC per candidate popularity level (MARN Table 4; 0 = least popular), mean over seeds", "",
                      "| model | item graph | " + " | ".join(str(k) for k in range(10)) + " | cold (samples) |",
                      "|---|---|" + "---|" * 11] + levels_rows
            gan = [r for r in (json.loads(p.read_text()) for p in sorted(cache.glob("t2-gmmf-none-s*.json")))]
            if gan:
                table2 += ["", "GMMF GAN losses per epoch (seed 0; D, G; None before K): "
                          + ", ".join(f"{e}: {d if d is None else round(d, 3)}/{g if g is None else round(g, 3)}"
                                      for e, d, g in gan[0]["gan"])]
        ag = args.ablation_graph
        graph = None if ag == "none" else ag
        if table2 and levels_rows:  # else no Table 2 run of these settings yet
            lines += table2
        chosen = {r[-1] for p in ("gmmf_ablation", "marn_ablation") for r in _rows(args.rows, ablation[p])}
        if set(parts) & {"table2", "gmmf_ablation", "marn_ablation"}:
            for part, model, title, papers in (("gmmf_ablation", "gmmf", "GMMF", "Elec / Home / Cell"),
                                               ("marn_ablation", "marn", "MARN", "Electro / Clothe")):
                section = []
                for row, params, paper, key in ablation[part]:
                    runs = runs_of(part, part in parts and key in chosen, key, model, params, graph)
                    if runs is not None:
                        section.append(f"| {row} | {_fmt([r['test']['auc'] for r in runs])} | "
                                       f"{_fmt([r['valid_auc'] for r in runs])} | "
                                       + " / ".join(f"{x:.4f}" for x in paper) + " |")
                if section:  # a table with rows only
                    lines += ["", f"## {title} Table 3 ablations (item graph: {ag})", "",
                              f"| row | test AUC | valid AUC | paper {papers} |", "|---|---|---|---|", *section]
        if not_run:
            lines += ["", "Rows not run yet with these settings (train them with `--parts`): "
                      + ", ".join(f"{n} of {part}" for part, n in not_run.items()) + "."]
        if "tune" in parts:
            _write(args.out / f"{ds}-tune.md", lines[:2] + [_samples_line(data)] + _tune_part(data, cache, models, args))
        if set(parts) & {"table2", "gmmf_ablation", "marn_ablation"}:
            _write(args.out / f"{ds}.md", lines)
        if "cold" in parts:
            _write(args.out / f"{ds}-cold{args.cold_start}.md", _cold_part(ds, root, models, args))


def _samples_line(data: CTRData) -> str:
    st = data.stats()
    return (f"Samples: DIN protocol, max history {data.max_history}, negatives seed 0, {st['train_samples']} / "
            f"{st['valid_samples']} / {st['test_samples']} train / valid / test samples.")


def _same_as_table2(model: str, params: dict, graph: str = "none") -> str | None:
    """The Table 2 run key when ``params`` are the model's defaults (the full model row of an
    ablation table is the same run as Table 2's, so it is trained once)."""
    sig = inspect.signature(CTR_MODELS[model].__init__).parameters
    same = all(k in sig and sig[k].default == v for k, v in params.items())
    return f"t2-{model}-{graph}" if same else None


def _ablation_rows(data: CTRData, graph: str) -> dict[str, list[tuple]]:
    """Rows ``(label, model options, paper AUCs, run key)`` of both ablation tables with item
    graph ``graph``; plain rows keep their historical keys, graph rows get ``-<graph>``."""
    suffix = "" if graph == "none" else f"-{graph}"
    gmmf = [(row, params, paper, _same_as_table2("gmmf", params, graph) or "g3-" + row.split()[0].strip("()") + suffix)
            for row, params, paper in GMMF_ABLATION]
    content = list(data.stats()["modalities"])
    marn = []
    for k, (row, params, paper) in enumerate(MARN_ABLATION):
        if params.get("modalities") == ["image"] and "image" not in content:
            # one content modality (ml100k: plot text) stands in for the image
            params = dict(params, modalities=content[:1])
            row = f"BaseModel+{content[0].upper()}"
        marn.append((row, params, paper, _same_as_table2("marn", params, graph) or f"m3-{k}{suffix}"))
    return {"gmmf_ablation": gmmf, "marn_ablation": marn}


def _rows(keys: str | None, rows: list[tuple]) -> list[tuple]:
    """The ablation rows whose run key (last element) is in ``keys``, in that order (all if None)."""
    if keys is None:
        return rows
    by_key = {r[-1]: r for r in rows}
    return [by_key[k.strip()] for k in keys.split(",") if k.strip() in by_key]


def _write(md: Path, lines: list[str]) -> None:
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(md)
    print(f"wrote {md}", flush=True)


def _tune_point(point: dict, lr: float) -> tuple[dict, dict]:
    """(model options, CTRConfig overrides) of one grid point ``{knob: value}``."""
    train = dict(lr=lr, epochs=TUNE_EPOCHS)
    params = {}
    for knob, value in point.items():
        if knob == "weight_decay":
            train["weight_decay"] = value
        else:
            params[knob] = value
    return params, train


def _tune_part(data: CTRData, cache: Path, models: set[str] | None, args) -> list[str]:
    """Grid of TUNE_LRS x TUNE_KNOBS per model on seeds 0..tune_seeds-1, the grid point with the
    best MEAN VALIDATION AUC selected, then run on all --seeds seeds. Test AUC is reported,
    never used for the choice."""
    row_name = {m: r for r, m, _, _ in TABLE2}
    names = [m for m in TUNE_KNOBS if models is None or m in models]
    out = ["", f"## Tuned on validation (no graph enrichment; grid on seeds 0-{args.tune_seeds - 1}, "
           f"selected by mean validation AUC, then seeds 0-{args.seeds - 1})", "",
           f"Grid per model: Adam lr {' / '.join(f'{x:g}' for x in TUNE_LRS)} x one knob (below), at most "
           f"{TUNE_EPOCHS} epochs, patience {args.patience}; everything else as in Table 2. GMMF and MARN then "
           "try larger item representations at their best point (second knob).", "",
           "| model | knob | selected | grid valid AUC (mean over grid seeds) | valid AUC | test AUC | test GAUC | seeds |",
           "|---|---|---|---|---|---|---|---|"]
    for m in names:
        knob, values = TUNE_KNOBS[m]
        grid: dict[str, tuple[float, float, dict]] = {}

        def point(label: str, lr: float, knobs: dict) -> None:
            params, train = _tune_point(knobs, lr)
            runs = [_run(data, f"tu-{m}-{label}", m, params, None, s, args, cache, train=train)
                    for s in range(args.tune_seeds)]
            grid[label] = (float(np.mean([r["valid_auc"] for r in runs])), lr, knobs)

        for lr in TUNE_LRS:
            for v in values:
                point(f"lr{lr:g}-{knob}{v:g}", lr, {knob: v})
        knobs_used = knob
        if m in TUNE_SIZES:  # second stage: sizes at the first stage's best point
            size, sizes = TUNE_SIZES[m]
            first = max(grid, key=lambda k: grid[k][0])
            _, lr, knobs = grid[first]
            for v in sizes:
                point(f"{first}-{size}{v:g}", lr, dict(knobs, **{size: v}))
            knobs_used = f"{knob}, then {size}"
        best = max(grid, key=lambda k: grid[k][0])
        _, lr, knobs = grid[best]
        params, train = _tune_point(knobs, lr)
        runs = [_run(data, f"tu-{m}-{best}", m, params, None, s, args, cache, train=train) for s in range(args.seeds)]
        cells = ", ".join(f"{k}: {grid[k][0]:.4f}" for k in grid)
        out.append(f"| {row_name[m]} | {knobs_used} | **{best}** | {cells} | {_fmt([r['valid_auc'] for r in runs])} | "
                   f"{_fmt([r['test']['auc'] for r in runs])} | {_fmt([r['test']['gauc'] for r in runs])} | {len(runs)} |")
    return out


COLD_MODELS = ("fm", "youtubenet", "din", "marn", "gmmf")


def _cold_part(ds: str, root: Path, models: set[str] | None, args) -> list[str]:
    """Cold-start protocol (graphrec.data.ctr): per seed s the cold items are drawn with
    seed s (fraction --cold-start), the negatives with seed 0, the model with seed s.
    Seeds are the outer loop, so an interrupted run leaves whole seeds."""
    f = args.cold_start
    names = [m for _, m, _, _ in TABLE2 if m in (models or COLD_MODELS)]
    graphs = [g.strip() for g in args.cold_graphs.split(",") if g.strip()]
    rows: dict[tuple[str, str], list[dict]] = {(m, g): [] for m in names for g in graphs}
    n_cold, stats = [], None
    for s in range(args.seeds):
        sdir = root / f"cold{f}-s{s}" / "samples"
        if (sdir / "ctr.json").is_file():
            data = CTRData.load(sdir)
        else:
            data = load_ctr_source(args.data_root / SOURCES[ds], max_history=args.max_history, seed=0,
                                   cold_start=f, cold_seed=s)
            data.save(sdir)
        stats = data.stats()
        n_cold.append((data.meta["cold_start"]["n_cold_items"], int(data.samples["test"].labels[
            np.isin(data.samples["test"].items, data.dataset.cold_items)].sum()), stats["train_samples"]))
        cache = sdir.parent / "runs"
        cache.mkdir(exist_ok=True)
        for m in names:
            enrich = m != "lr" and _enrichable(m, data, {})
            for g in graphs:
                if g != "none" and not enrich:
                    continue
                rows[(m, g)].append(_run(data, f"cold-{m}-{g}", m, {}, None if g == "none" else g, s, args, cache))
    row_name = {m: r for r, m, _, _ in TABLE2}
    out = [f"# CTR cold start on {ds}", "",
           f"Cold-start protocol of graphrec.data.ctr: per seed s, round({f} x items) cold items drawn with seed s "
           "(all their interactions hidden from training samples, histories, negatives and the co-interaction "
           "graph; they appear only as valid/test candidates, each cold positive paired with a cold negative). "
           f"Seeds {list(range(args.seeds))} (cold items, initialisation); negatives seed 0; max history "
           f"{args.max_history}; Adam lr {args.lr}, batch {args.batch_size}, at most {args.epochs} epochs, early "
           f"stopping on validation AUC (all samples, patience {args.patience}). Per seed (cold items, cold test "
           f"positives, train samples): {n_cold}. torch {torch.__version__}, {args.threads} thread(s).", "",
           "Mean ± std over seeds of the TEST AUC at the best validation epoch, on all test samples, the warm-target "
           "and the cold-target samples; validation AUC beside it (model selection uses validation only).", "",
           "The Δ columns are paired per seed (same cold items and samples): this graph minus none.", "",
           "| model | item graph | test AUC all | test AUC warm | test AUC cold | Δ cold vs none | valid AUC all | "
           "valid AUC cold | Δ valid cold vs none | seeds |",
           "|---|---|---|---|---|---|---|---|---|---|"]

    def delta(runs: list[dict], base: list[dict], get) -> str:
        if not base or runs is base:
            return "-"
        d = [get(r) - get(b) for r, b in zip(runs, base)]
        return f"{np.mean(d):+.4f} ± {np.std(d):.4f}"

    for (m, g), runs in rows.items():
        if not runs:
            continue
        base = rows.get((m, "none"), [])
        out.append(f"| {row_name[m]} | {g} | {_fmt([r['test']['auc'] for r in runs])} | "
                   f"{_fmt([r['warm']['auc'] for r in runs])} | {_fmt([r['cold']['auc'] for r in runs])} | "
                   f"{delta(runs, base, lambda r: r['cold']['auc'])} | "
                   f"{_fmt([r['valid_auc'] for r in runs])} | {_fmt([r['valid_slices']['cold']['auc'] for r in runs])} | "
                   f"{delta(runs, base, lambda r: r['valid_slices']['cold']['auc'])} | {len(runs)} |")
    return out


if __name__ == "__main__":
    main()
