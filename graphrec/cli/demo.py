"""Train LightGCN on a built-in synthetic multimodal catalogue (no downloads).

Example:

    graphrec demo --out graphrec-demo
"""

from __future__ import annotations

from pathlib import Path

import typer

from graphrec.cli._common import metric_table, resolve_device, user_errors


@user_errors
def demo(
    out: Path = typer.Option(Path("graphrec-demo"), help="Folder for the demo's dataset and run."),
    epochs: int = typer.Option(60, help="Maximum LightGCN epochs."),
    seed: int = typer.Option(0, help="Seed of the catalogue and of training."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train LightGCN on a built-in synthetic multimodal catalogue (no downloads).

    Example: graphrec demo --out graphrec-demo
    """
    from graphrec.data.synthetic import synthetic_catalogue
    from graphrec.train import TrainConfig, evaluate_ranking, run_training
    from graphrec.train.evaluate import most_popular_scorer

    dev = resolve_device(device)
    ds = synthetic_catalogue(seed=seed)
    st = ds.stats()
    typer.echo(
        f"synthetic catalogue: {st['users']} users, {st['items']} items in 16 clusters, "
        f"{st['interactions']} interactions (train {st['train_interactions']}, valid "
        f"{st['valid_interactions']}, test {st['test_interactions']}), image+text features"
    )
    data_dir = ds.save(out / "data", overwrite=True)
    config = TrainConfig(epochs=epochs, lr=5e-3, batch_size=1024, patience=10, ks=(10, 20), seed=seed, progress=not quiet)
    record, _ = run_training(
        ds, "lightgcn", {"num_layers": 2}, config, device=dev, out=out / "runs" / "lightgcn", data_path=data_dir
    )
    pop = evaluate_ranking(most_popular_scorer(ds, device=dev), ds, "test", ks=config.ks, device=dev)
    keys = [f"{m}@{k}" for m in ("recall", "ndcg", "precision") for k in config.ks]
    typer.echo("")
    typer.echo(metric_table({"MostPop": pop, "LightGCN": record["test"]["all"]}, keys))
    t = record["timings"]
    ratio = record["test"]["all"]["recall@20"] / max(pop["recall@20"], 1e-12)
    typer.echo(
        f"LightGCN: best epoch {record['best_epoch']}, {t['seconds_per_epoch']:.2f} s/epoch; "
        f"test recall@20 {ratio:.1f}x MostPop"
    )
    typer.echo(f"outputs in {out}/ (data/: the dataset, runs/lightgcn/: record.json + model.pt)")
