"""Train a model on a dataset directory: `graphrec train MODEL --data DIR`.

Shared options are declared once (``Annotated`` aliases below) and reused by every
model command; each command only adds its own hyper-parameters.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from graphrec.cli._common import format_learned, metric_table, ordered_metric_keys, resolve_device, set_threads, user_errors

app = typer.Typer(help="Train a model: graphrec train lightgcn --data DIR", no_args_is_help=True)

Data = Annotated[Path, typer.Option("--data", help="Dataset directory (from `graphrec prepare`).")]
Epochs = Annotated[int, typer.Option(help="Maximum number of epochs.")]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
BatchSize = Annotated[int, typer.Option(help="BPR triples per step.")]
Patience = Annotated[int, typer.Option(help="Stop after this many validations without improvement.")]
EvalEvery = Annotated[int, typer.Option(help="Validate every N epochs.")]
Metric = Annotated[str, typer.Option(help="Validation metric for model selection.")]
SelectOn = Annotated[
    str,
    typer.Option(
        help="Items whose validation metric selects the model: all, or with --cold-start warm / cold "
        "(only the hidden items count, the usual protocol of cold-start studies).",
    ),
]
Protocol = Annotated[str, typer.Option(help="recbole (test masks train+valid) or mmrec (train only).")]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, sampling and the cold-start items.")]
Device = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")]
Out = Annotated[Optional[Path], typer.Option(help="Run directory (default runs/MODEL-DATASET-TIME).")]
ColdStart = Annotated[float, typer.Option(help="Hide all training interactions of this fraction of items (e.g. 0.2).")]
Threads = Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
Graphs = Annotated[
    Optional[List[Path]],
    typer.Option(
        "--graph",
        help="A stored item graph (`graphrec build-graph --out DIR`) to use instead of building it; "
        "repeat for several. Refused when built from other data or another cold-start split.",
    ),
]
Modalities = Annotated[Optional[str], typer.Option(help="Modalities to use, e.g. image,text [all the dataset has].")]
Dim = Annotated[int, typer.Option(help="Embedding size.")]
Layers = Annotated[int, typer.Option(help="LightGCN propagation layers.")]
Reg = Annotated[float, typer.Option(help="L2 weight on the batch's layer-0 embeddings.")]


COMMON_OPTIONS = (
    "epochs", "lr", "batch_size", "patience", "eval_every", "metric", "select_on", "protocol",
    "seed", "device", "out", "cold_start", "threads", "quiet",
)


def _common_options(values: dict[str, Any]) -> dict[str, Any]:
    """The shared training options among a command's arguments."""
    return {name: values[name] for name in COMMON_OPTIONS}


def train_command(
    model_name: str,
    model_overrides: dict[str, Any],
    data: Path,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    patience: int,
    eval_every: int,
    metric: str,
    select_on: str,
    protocol: str,
    seed: int,
    device: str,
    out: Optional[Path],
    cold_start: float,
    threads: Optional[int],
    quiet: bool,
) -> dict[str, Any]:
    """What every `graphrec train MODEL` does; returns the run record."""
    from graphrec.data import Dataset
    from graphrec.train import TrainConfig, run_training
    from graphrec.train.run import prepare_dataset

    set_threads(threads)
    dev = resolve_device(device)
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        patience=patience,
        eval_every=eval_every,
        valid_metric=metric,
        select_on=select_on,
        protocol=protocol,
        seed=seed,
        progress=not quiet,
    )
    ds = Dataset.load(data)
    transforms = {}
    if cold_start:
        ds = prepare_dataset(ds, cold_start, seed)
        transforms = {"cold_start": cold_start, "cold_start_seed": seed}
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{ds.name}-{stamp}"
    record, _ = run_training(
        ds, model_name, model_overrides, config, device=dev, out=out, data_path=data.resolve(), transforms=transforms
    )
    print_record(record)
    typer.echo(f"run saved to {out}")
    return record


def print_record(record: dict[str, Any]) -> None:
    """The final table: best validation and test (all / warm / cold) metrics."""
    cols = {f"valid@{record['best_epoch']}": record["best_valid"]}
    best_row = next((h for h in record["history"] if h["epoch"] == record["best_epoch"]), None)
    for group, metrics in ((best_row or {}).get("valid_groups") or {}).items():
        cols[f"valid-{group}"] = metrics
    for group, metrics in record["test"].items():
        cols["test" if group == "all" else f"test-{group}"] = metrics
    keys = ordered_metric_keys(record["best_valid"])
    t = record["timings"]
    typer.echo("")
    typer.echo(metric_table(cols, keys))
    if best_row and best_row.get("model"):
        typer.echo("learned at the best epoch: " + format_learned(best_row["model"]))
    users = {g: int(m.get("users", 0)) for g, m in record["test"].items()}
    if t["epochs"]:
        training = (
            f"selected on {record['train_config'].get('select_on', 'all')} items): best epoch "
            f"{record['best_epoch']} of {t['epochs']}, {t['seconds_per_epoch']:.2f} s/epoch"
        )
    else:
        training = "no parameters, no training)"
    typer.echo(
        f"{record['model']} on {record['dataset']['name']} ({record['train_config']['protocol']} protocol, {training}, "
        f"{t['eval_seconds_per_pass']:.2f} s/validation, test users " + ", ".join(f"{g} {n}" for g, n in users.items())
    )


@app.command("lightgcn")
@user_errors
def lightgcn(
    data: Data,
    dim: Annotated[int, typer.Option(help="Embedding size.")] = 64,
    layers: Annotated[int, typer.Option(help="Propagation layers.")] = 2,
    reg: Annotated[float, typer.Option(help="L2 weight on the batch's layer-0 embeddings.")] = 1e-4,
    epochs: Epochs = 1000,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 2048,
    patience: Patience = 20,
    eval_every: EvalEvery = 1,
    metric: Metric = "recall@20",
    select_on: SelectOn = "all",
    protocol: Protocol = "recbole",
    seed: Seed = 0,
    device: Device = "auto",
    out: Out = None,
    cold_start: ColdStart = 0.0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train LightGCN (He et al. 2020) with BPR, early stopping on validation.

    Example: graphrec train lightgcn --data data/lfm2k --epochs 200 --layers 2 --out runs/lightgcn-lfm2k
    """
    train_command(
        "lightgcn",
        {"embedding_dim": dim, "num_layers": layers, "reg_weight": reg},
        data,
        **_common_options(locals()),
    )


@app.command("mmgef")
@user_errors
def mmgef(
    data: Data,
    dim: Annotated[int, typer.Option(help="Embedding size.")] = 64,
    layers: Annotated[int, typer.Option(help="LightGCN propagation layers.")] = 2,
    item_layers: Annotated[int, typer.Option(help="Propagation layers on the item graph.")] = 1,
    reg: Annotated[float, typer.Option(help="L2 weight on the batch's layer-0 embeddings.")] = 1e-4,
    k: Annotated[Optional[int], typer.Option(help="Neighbours per item in the content kNN graph [10, or the stored graph's].")] = None,
    modalities: Annotated[Optional[str], typer.Option(help="Modalities fused early, e.g. image,text [all].")] = None,
    graph: Graphs = None,
    no_cf_graph: Annotated[bool, typer.Option("--no-cf-graph", help="Ablation: drop the co-interaction graph.")] = False,
    no_knn_graph: Annotated[bool, typer.Option("--no-knn-graph", help="Drop the content kNN graph (co-interaction graph only; no features needed).")] = False,
    no_attention: Annotated[bool, typer.Option("--no-attention", help="Ablation: fixed equal graph weights.")] = False,
    feature_mode: Annotated[str, typer.Option(help="fixed (graph from stored features) or projected (trainable projection).")] = "fixed",
    cooccur_top_k: Annotated[Optional[int], typer.Option(help="Keep the top-k co-interactions per item [all].")] = None,
    epochs: Epochs = 1000,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 2048,
    patience: Patience = 20,
    eval_every: EvalEvery = 1,
    metric: Metric = "recall@20",
    select_on: SelectOn = "all",
    protocol: Protocol = "recbole",
    seed: Seed = 0,
    device: Device = "auto",
    out: Out = None,
    cold_start: ColdStart = 0.0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train MM-GEF (Wu et al.): LightGCN plus attention-merged content kNN and co-interaction item graphs.

    Example: graphrec train mmgef --data data/scientific --modalities image,text --cold-start 0.2
    """
    train_command(
        "mmgef",
        {
            "embedding_dim": dim,
            "num_layers": layers,
            "item_layers": item_layers,
            "reg_weight": reg,
            "k": k,
            "modalities": modalities,
            "use_cf_graph": not no_cf_graph,
            "attention": not no_attention,
            "feature_mode": feature_mode,
            "cooccur_top_k": cooccur_top_k,
            "graphs": _paths(graph),
            "use_knn_graph": not no_knn_graph,
        },
        data,
        **_common_options(locals()),
    )


@app.command("lattice")
@user_errors
def lattice(
    data: Data,
    dim: Dim = 64,
    layers: Layers = 2,
    item_layers: Annotated[int, typer.Option(help="Propagation layers on the item graph.")] = 1,
    reg: Reg = 1e-4,
    k: Annotated[int, typer.Option(help="Neighbours per item in the original and learned graphs.")] = 10,
    modalities: Modalities = None,
    lambda_: Annotated[float, typer.Option("--lambda", help="Weight of the original graphs in the skip mix.")] = 0.9,
    include_self: Annotated[bool, typer.Option("--include-self/--no-include-self", help="Each item is one of its own k neighbours (reference-code parity).")] = False,
    train_features: Annotated[bool, typer.Option("--train-features/--fixed-features", help="Fine-tune the feature tables (as the reference).")] = True,
    cf_graph: Annotated[bool, typer.Option("--cf-graph/--no-cf-graph", help="Also MM-GEF's co-interaction graph, merged with LATTICE's by learned weights (the LATTICE of MM-GEF's Tables 2-3).")] = False,
    graph: Graphs = None,
    epochs: Epochs = 1000,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 2048,
    patience: Patience = 20,
    eval_every: EvalEvery = 1,
    metric: Metric = "recall@20",
    select_on: SelectOn = "all",
    protocol: Protocol = "recbole",
    seed: Seed = 0,
    device: Device = "auto",
    out: Out = None,
    cold_start: ColdStart = 0.0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train LATTICE (Zhang et al. 2021): LightGCN plus learned and original per-modality item graphs.

    The learned kNN graphs are rebuilt from trainable projections at every epoch.

    Example: graphrec train lattice --data data/scientific --lambda 0.9 --cold-start 0.2
    """
    train_command(
        "lattice",
        {
            "embedding_dim": dim,
            "num_layers": layers,
            "item_layers": item_layers,
            "reg_weight": reg,
            "k": k,
            "modalities": modalities,
            "lambda_coeff": lambda_,
            "include_self": include_self,
            "train_features": train_features,
            "graphs": _paths(graph),
            "use_cf_graph": cf_graph,
        },
        data,
        **_common_options(locals()),
    )


@app.command("mf")
@user_errors
def mf(
    data: Data,
    dim: Dim = 64,
    reg: Reg = 1e-4,
    epochs: Epochs = 1000,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 2048,
    patience: Patience = 20,
    eval_every: EvalEvery = 1,
    metric: Metric = "recall@20",
    select_on: SelectOn = "all",
    protocol: Protocol = "recbole",
    seed: Seed = 0,
    device: Device = "auto",
    out: Out = None,
    cold_start: ColdStart = 0.0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train MF-BPR (Rendle et al. 2009): matrix factorisation with BPR, no graph.

    Example: graphrec train mf --data data/lfm2k --dim 64 --reg 1e-4
    """
    train_command("mf", {"embedding_dim": dim, "reg_weight": reg}, data, **_common_options(locals()))


@app.command("cb")
@user_errors
def cb(
    data: Data,
    k: Annotated[Optional[int], typer.Option(help="Neighbours per item in the content kNN graph [50, or the stored graph's].")] = None,
    modalities: Modalities = None,
    graph: Graphs = None,
    epochs: Annotated[int, typer.Option(hidden=True)] = 1,
    lr: Annotated[float, typer.Option(hidden=True)] = 1e-3,
    batch_size: Annotated[int, typer.Option(hidden=True)] = 2048,
    patience: Annotated[int, typer.Option(hidden=True)] = 20,
    eval_every: Annotated[int, typer.Option(hidden=True)] = 1,
    metric: Metric = "recall@20",
    select_on: SelectOn = "all",
    protocol: Protocol = "recbole",
    seed: Seed = 0,
    device: Device = "auto",
    out: Out = None,
    cold_start: ColdStart = 0.0,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Evaluate the content-only item-kNN recommender (CB); nothing is trained.

    A user's score for an item sums its content cosines to the user's training items.

    Example: graphrec train cb --data data/scientific --k 50 --cold-start 0.2
    """
    train_command("cb", {"k": k, "modalities": modalities, "graphs": _paths(graph)}, data, **_common_options(locals()))


def _paths(paths: Optional[List[Path]]) -> Optional[list[str]]:
    """Stored graph paths as absolute strings (recorded in the run), or None."""
    return [str(p.resolve()) for p in paths] if paths else None
