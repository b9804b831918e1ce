"""Train LightGCN and MM-GEF on a built-in synthetic multimodal catalogue (no
downloads), warm and under cold start.

Example:

    graphrec demo --out graphrec-demo
"""

from __future__ import annotations

from pathlib import Path

import typer

from graphrec._atomic import check_output_folder
from graphrec.cli._common import TrainQuiet, metric_table, resolve_device, training_progress, user_errors
from graphrec.errors import ConfigError

#: the runs of the cold-start part (OUT/runs/<name>)
COLD_RUNS = ("lightgcn-cold", "mmgef-cold", "mmgef-coldpath", "cb-cold")


@user_errors
def demo(
    out: Path = typer.Option(Path("graphrec-demo"), help="Folder for the demo's dataset and runs (OUT/data, "
                             "OUT/runs/NAME); a later demo replaces them there, nothing else."),
    epochs: int = typer.Option(60, help="Maximum epochs of every training run."),
    cold: float = typer.Option(0.2, "--cold-start", "--cold", help="Fraction of items made cold (never seen in training) in the cold-start part, in (0, 1) (0: skip it)."),
    seed: int = typer.Option(0, help="Seed of the catalogue and of training."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    quiet: TrainQuiet = False,
) -> None:
    """Train LightGCN and MM-GEF on a built-in synthetic catalogue (no downloads): warm,
    then with 20% of the items never seen in training (cold start, the papers' protocol),
    next to the content-only kNN.

    Example: graphrec demo --out graphrec-demo
    """
    from graphrec.data import cold_start
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train import TrainConfig, evaluate_ranking, run_training
    from graphrec.train.evaluate import most_popular_scorer
    from graphrec.train.run import cold_start_transforms

    # every option and output before any work: nothing is written, nothing trained, when one is wrong
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    if not (cold == 0 or 0 < cold < 1):  # NaN too
        raise ConfigError(f"--cold-start must be a fraction of the items in (0, 1), or 0 to skip the cold-start part, got {cold}")
    if seed < 0:
        raise ConfigError(f"--seed must be at least 0, got {seed}")
    dev = resolve_device(device)
    shown = training_progress(quiet)  # bars on a terminal, a line per validated epoch otherwise
    runs = ["lightgcn", "mmgef"] + (list(COLD_RUNS) if cold else [])
    earlier = _check_outputs(out, runs)
    if earlier:
        typer.echo(f"note: replacing the earlier demo's {', '.join(earlier)} in {out}", err=True)
    stale = [r for r in COLD_RUNS if not cold and (out / "runs" / r).is_dir()]
    if stale:
        typer.echo(f"note: {out}/runs holds {', '.join(stale)} of an earlier demo with --cold-start, which this one "
                   "(--cold-start 0) leaves as they were", err=True)
    ds = synthetic_catalogue(seed=seed)
    st = ds.stats()
    typer.echo(
        f"synthetic catalogue: {st['users']} users, {st['items']} items in 16 clusters, "
        f"{st['interactions']} interactions (train {st['train_interactions']}, valid "
        f"{st['valid_interactions']}, test {st['test_interactions']}), image+text features"
    )
    data_dir = ds.save(out / "data", overwrite=True)
    keys = [f"{m}@{k}" for m in ("recall", "ndcg", "precision") for k in (10, 20)]

    def train(name: str, data, lr: float, run: str, params: dict | None = None) -> dict:
        config = TrainConfig(epochs=epochs, lr=lr, batch_size=1024, patience=10, ks=(10, 20), seed=seed,
                             progress=shown.bars)
        if not quiet:
            typer.echo(f"training {run}")
        record, model = run_training(data, name, params or {}, config, device=dev, out=out / "runs" / run,
                                     data_path=data_dir, overwrite=True, log=shown.log,
                                     transforms=cold_start_transforms(cold, seed) if data is not ds else None)
        models[run] = model
        return record

    models: dict = {}

    lightgcn = train("lightgcn", ds, 5e-3, "lightgcn")
    mmgef = train("mmgef", ds, 5e-3, "mmgef")
    pop = evaluate_ranking(most_popular_scorer(ds, device=dev), ds, "test", ks=(10, 20), device=dev)
    typer.echo("")
    typer.echo("warm: test split, all items")
    typer.echo(metric_table({"MostPop": pop, "LightGCN": lightgcn["test"]["all"], "MM-GEF": mmgef["test"]["all"]}, keys))
    ratio = lightgcn["test"]["all"]["recall@20"] / max(pop["recall@20"], 1e-12)
    typer.echo(
        f"LightGCN: best epoch {lightgcn['best_epoch']}, {lightgcn['timings']['seconds_per_epoch']:.2f} s/epoch, "
        f"test recall@20 {ratio:.1f}x MostPop; MM-GEF: best epoch {mmgef['best_epoch']}, "
        f"{mmgef['timings']['seconds_per_epoch']:.2f} s/epoch"
    )
    if cold:
        cs = cold_start(ds, cold, seed)  # the papers' protocol (LATTICE's cold_start.py)
        info = cs.meta["cold_start"]
        # a smaller learning rate under cold start, as the MM-GEF paper (section 4.2)
        none = {"cold_path": "none"}  # the models alone, as the papers run them
        runs = {"LightGCN": train("lightgcn", cs, 1e-3, "lightgcn-cold", none),  # the names of COLD_RUNS
                "MM-GEF": train("mmgef", cs, 1e-3, "mmgef-cold", none),
                "MM-GEF + cold path": train("mmgef", cs, 1e-3, "mmgef-coldpath", {"cold_path": "content"}),
                "CB": train("cb", cs, 1e-3, "cb-cold")}
        typer.echo("")
        typer.echo(
            f"cold start ({cold:.0%} of the items, the papers' protocol): {info['valid_items']} validation items "
            f"and {info['test_items']} test items, never seen in training; valid and test hold only their "
            "interactions; test, ranked among all items"
        )
        typer.echo(metric_table({label: rec["test"]["cold"] for label, rec in runs.items()}, keys))
        lg, mm, mp, cb = (runs[k]["test"]["cold"]["recall@20"] for k in ("LightGCN", "MM-GEF", "MM-GEF + cold path", "CB"))
        typer.echo(
            f"new items, recall@20: LightGCN {lg:.4f} (it never saw them), MM-GEF {mm:.4f} (through its content "
            f"graph), MM-GEF with the cold-item path {mp:.4f} (content tower + item-graph neighbours: "
            f"--cold-path content), content-only kNN {cb:.4f}"
        )
        share = _new_item_share(models["mmgef-coldpath"], cs, dev)
        typer.echo(
            f"what you see: the cold-item path puts new items in the lists ({share:.0%} of its top-20 slots; they are "
            f"{cold:.0%} of the catalogue); this protocol's test holds new items only, which rewards that "
            "(docs/models/cold-start.md)"
        )
    typer.echo(f"outputs in {out}/ (data/: the dataset, runs/: record.json + model.pt of every run)")


def _check_outputs(out: Path, runs: list[str]) -> list[str]:
    """The demo replaces OUT/data and OUT/runs/<run> on every call: each must be absent,
    an empty folder, or an earlier output of its kind (a dataset, a run directory), never
    a folder of other files; and OUT must be writable, and neither a dataset nor a run
    folder itself. Returns the earlier outputs it will replace (``data``, ``runs/NAME``)."""
    from graphrec.train.record import RECORD

    check_output_folder(out, "--out")
    for marker, what in (("dataset.json", "a graphrec dataset"), (RECORD, "a run directory")):
        if (out / marker).is_file():
            raise ConfigError(f"--out {out} is {what} ({marker}), and the demo writes data/ and runs/ into --out: "
                              "choose another --out (default graphrec-demo)")
    wanted = [(out / "data", "dataset.json", "graphrec dataset")]
    wanted += [(out / "runs" / r, RECORD, "run directory") for r in runs]
    earlier = []
    for path, marker, what in wanted:
        if not (path.exists() or path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_dir():
            raise ConfigError(f"--out {out}: {path} is not a folder, and the demo writes its {what} there: "
                              f"choose another --out, or move {path} away")
        if any(path.iterdir()) and not (path / marker).is_file():
            raise ConfigError(f"--out {out}: {path} is not a {what} (no {marker} in it), and the demo replaces it: "
                              f"choose another --out, or move {path} away")
        check_output_folder(path.parent, "--out")
        if (path / marker).is_file():
            earlier.append(path.relative_to(out).as_posix())
    return earlier


def _new_item_share(model, dataset, device) -> float:
    """Share of the cold-start items in every user's top-20 (training items masked)."""
    import numpy as np
    import torch

    from graphrec.train.recommend import recommend_indices

    model.eval()
    with torch.no_grad():
        top, _ = recommend_indices(model.scorer(), dataset, np.arange(dataset.n_users), k=20, device=device)
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[dataset.cold_items] = True
    return float(is_cold[top].mean())
