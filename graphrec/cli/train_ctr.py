"""Train a click-through-rate model: `graphrec train din|gmmf|... --data DIR --task ctr`.

``--data`` is a source folder (UniSRec ``*.train.inter`` with CLIP features, a MovieLens
folder, a graphrec dataset directory with timestamps) or a CTR samples directory
written by an earlier run's ``--samples``. Samples follow DIN's protocol
(:mod:`graphrec.data.ctr`); ``--samples DIR`` stores them the first time and checks
them afterwards, so every model of an experiment sees the same samples.
``--cold-start F`` hides every interaction with a fraction F of the items (drawn with
``--seed``) from training and from all histories; they are then only valid/test
candidates, and the results table reports them as the cold slice.

The commands are registered under ``graphrec train`` by :func:`register`. Shared
options are declared once (``Annotated`` aliases) and every command adds its own.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from graphrec.cli._common import metric_table, resolve_device, set_threads, user_errors

__all__ = ["register", "COMMANDS", "load_ctr_data", "print_ctr_record"]

Data = Annotated[Path, typer.Option("--data", help="Source folder (UniSRec, MovieLens, graphrec dataset) or CTR samples directory.")]
Task = Annotated[str, typer.Option(help="Task: ctr (click-through rate, AUC).")]
MaxHistory = Annotated[Optional[int], typer.Option(help="Behaviours kept in a history [50].")]
SampleSeed = Annotated[int, typer.Option(help="Seed of the sampled negatives.")]
Samples = Annotated[Optional[Path], typer.Option(help="Store the samples here (first run) or check them against it.")]
ItemGraph = Annotated[str, typer.Option(help="Graph enrichment: none, knn, cooccur, both, or stored graph dir(s), comma-separated.")]
GraphK = Annotated[int, typer.Option(help="Neighbours per item of the kNN graph.")]
CooccurTopK = Annotated[int, typer.Option(help="Co-interactions kept per item (0: all).")]
GraphLayers = Annotated[int, typer.Option(help="Propagation layers on the item graph.")]
Epochs = Annotated[int, typer.Option(help="Maximum number of epochs.")]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
BatchSize = Annotated[int, typer.Option(help="Samples per step.")]
Patience = Annotated[int, typer.Option(help="Stop after this many epochs without a better validation AUC.")]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, shuffling and the cold-start items.")]
ColdStart = Annotated[float, typer.Option(help="Hide every interaction with a fraction of the items (drawn with --seed) from training and histories (0: off).")]
Device = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")]
Out = Annotated[Optional[Path], typer.Option(help="Run directory (default runs/MODEL-DATASET-TIME).")]
Threads = Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
Dim = Annotated[int, typer.Option(help="Item ID embedding size (papers: 32).")]
ModalityDim = Annotated[int, typer.Option(help="Projection size of each content modality (0: raw features).")]
Modalities = Annotated[Optional[str], typer.Option(help="Content modalities used, e.g. image,text [all].")]

COMMON = (
    "task", "max_history", "sample_seed", "samples", "item_graph", "graph_k", "cooccur_top_k", "graph_layers",
    "epochs", "lr", "batch_size", "patience", "seed", "device", "out", "threads", "quiet", "cold_start",
)


def load_ctr_data(data: Path, samples: Optional[Path], max_history: Optional[int], sample_seed: int,
                  cold_start: float = 0.0, cold_seed: int = 0):
    """CTR samples from ``--data`` (source or samples dir), stored/checked at ``--samples``;
    ``cold_start`` > 0 applies the cold-start protocol with the items of ``cold_seed``."""
    from graphrec.data.ctr import CTRData, load_ctr_source
    from graphrec.errors import ConfigError, DataError

    def _cold(meta: dict[str, Any]) -> str:
        c = meta.get("cold_start")
        return "no cold start" if not c else f"--cold-start {c['fraction']} --seed {c['seed']}"

    if (data / "ctr.json").is_file():
        loaded = CTRData.load(data)
        if max_history is not None and max_history != loaded.max_history:
            raise ConfigError(
                f"{data} holds samples with max history {loaded.max_history}, not {max_history}: "
                "drop --max-history or pass the source folder"
            )
        want = {"fraction": float(cold_start), "seed": int(cold_seed)} if cold_start else None
        have = loaded.meta.get("cold_start")
        if want is not None and (have is None or {k: have[k] for k in ("fraction", "seed")} != want):
            raise ConfigError(
                f"{data} holds samples built with {_cold(loaded.meta)}, not --cold-start {cold_start} --seed "
                f"{cold_seed}: drop --cold-start or pass the source folder"
            )
        return loaded
    built = load_ctr_source(data, max_history=max_history or 50, seed=sample_seed,
                            cold_start=cold_start or None, cold_seed=cold_seed)
    if samples is not None:
        if (samples / "ctr.json").is_file():
            stored = CTRData.load(samples)
            if stored.fingerprint() != built.fingerprint():
                raise DataError(
                    f"{samples} holds other samples than {data} gives with --max-history "
                    f"{built.max_history} --sample-seed {sample_seed} and {_cold(built.meta)}: pass the options it "
                    f"was built with (max history {stored.max_history}, seed {stored.meta.get('seed')}, "
                    f"{_cold(stored.meta)}) or another --samples"
                )
            return stored
        built.save(samples)
        typer.echo(f"samples saved to {samples}")
    return built


def print_ctr_record(record: dict[str, Any]) -> None:
    """The results table: AUC, GAUC, logloss (best validation epoch and test), then the
    test AUC per popularity level and for cold items."""
    keys = ["auc", "gauc", "logloss"]
    cols = {f"valid@{record['best_epoch']}": record["best_valid"], "test": record["test"]}
    typer.echo("")
    typer.echo(metric_table(cols, keys))
    slices = record["test"].get("slices") or {}
    if slices:
        names = [k for k in slices if k.startswith("level_")] + ["warm", "cold"]
        row = {k: {"test auc": slices[k]["auc"], "samples": slices[k]["samples"]} for k in names if k in slices}
        typer.echo("")
        cs = record["dataset"]["samples"].get("cold_start")
        cold_what = (f"cold = the {cs['n_cold_items']} cold-start items (--cold-start {cs['fraction']} --seed {cs['seed']})"
                     if cs else "cold = unseen in training")
        typer.echo(f"test AUC by candidate popularity (level 0 = least popular; {cold_what}):")
        typer.echo(metric_table({"test auc": {k: v["test auc"] for k, v in row.items()},
                                 "samples": {k: float(v["samples"]) for k, v in row.items()}}, list(row)))
    t = record["timings"]
    gan = [h for h in record["history"] if h.get("gan_d_loss") is not None]
    if gan:
        h = gan[-1]
        typer.echo(f"GAN losses at epoch {h['epoch']}: D {h['gan_d_loss']:.4f}, G {h['gan_g_loss']:.4f}")
    typer.echo(
        f"{record['model']} on {record['dataset']['name']} (item graph: {record['item_graph']['spec']}): best epoch "
        f"{record['best_epoch']} of {t['epochs']}, {t['seconds_per_epoch']:.2f} s/epoch"
    )


def ctr_command(model_name: str, params: dict[str, Any], data: Path, *, gan_start_epoch: int = 1, gan_lr: float = 1e-5,
                **common: Any) -> dict[str, Any]:
    """What every `graphrec train MODEL --task ctr` does; returns the run record."""
    from graphrec.errors import ConfigError
    from graphrec.train.ctr import CTRConfig, run_ctr

    if common["task"] != "ctr":
        raise ConfigError(f"--task {common['task']!r}: {model_name} is a CTR model; use --task ctr")
    set_threads(common["threads"])
    dev = resolve_device(common["device"])
    if not 0.0 <= common["cold_start"] < 1.0:
        raise ConfigError(f"--cold-start must be in [0, 1), got {common['cold_start']}")
    ctr = load_ctr_data(data, common["samples"], common["max_history"], common["sample_seed"],
                        common["cold_start"], common["seed"])
    config = CTRConfig(
        epochs=common["epochs"], lr=common["lr"], batch_size=common["batch_size"], patience=common["patience"],
        seed=common["seed"], gan_start_epoch=gan_start_epoch, gan_lr=gan_lr, progress=not common["quiet"],
    )
    item_graph = common["item_graph"]
    if item_graph != "none":
        params = dict(params, graph_layers=common["graph_layers"])
    out = common["out"]
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{ctr.dataset.name}-{stamp}"
    record, _ = run_ctr(
        ctr, model_name, params, config, device=dev, item_graph=item_graph,
        graph_options={"k": common["graph_k"], "cooccur_top_k": common["cooccur_top_k"] or None},
        out=out, data_path=data.resolve(),
    )
    print_ctr_record(record)
    typer.echo(f"run saved to {out}")
    return record


def _common(values: dict[str, Any]) -> dict[str, Any]:
    return {k: values[k] for k in COMMON}


def _mods(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    return [m.strip() for m in value.split(",") if m.strip()] or None


@user_errors
def lr(
    data: Data, task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train LR (McMahan et al. 2013) on user, item and side-field IDs (CTR task).

    Example: graphrec train lr --data ../shared/data/ml100k --task ctr --epochs 30
    """
    ctr_command("lr", {}, data, **_common(locals()))


@user_errors
def fm(
    data: Data, dim: Dim = 32,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train FM (Rendle 2010) on user, item and side-field IDs (CTR task)."""
    ctr_command("fm", {"dim": dim}, data, **_common(locals()))


@user_errors
def deepfm(
    data: Data, dim: Dim = 32, modalities: Modalities = None,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train DeepFM (Guo et al. 2017): FM + MLP, content modalities as dense fields (CTR task)."""
    ctr_command("deepfm", {"dim": dim, "modalities": _mods(modalities)}, data, **_common(locals()))


@user_errors
def youtubenet(
    data: Data, dim: Dim = 32, modality_dim: ModalityDim = 32, modalities: Modalities = None,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train YouTubeNet (Covington et al. 2016): mean-pooled history + MLP (CTR task)."""
    ctr_command("youtubenet", {"id_dim": dim, "modality_dim": modality_dim, "modalities": _mods(modalities)}, data,
                **_common(locals()))


@user_errors
def din(
    data: Data, dim: Dim = 32, modality_dim: ModalityDim = 32, modalities: Modalities = None,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train DIN (Zhou et al. 2018): candidate attention over the history (CTR task).

    Example: graphrec train din --data ../shared/data/amazon-scientific --task ctr --item-graph both
    """
    ctr_command("din", {"id_dim": dim, "modality_dim": modality_dim, "modalities": _mods(modalities)}, data,
                **_common(locals()))


@user_errors
def gmmf(
    data: Data, dim: Dim = 32, modalities: Modalities = None,
    gan_start_epoch: Annotated[int, typer.Option(help="K of Algorithm 1: the GAN trains in epochs > K.")] = 1,
    gan_lr: Annotated[float, typer.Option(help="Learning rate of generator and discriminator (paper: 1e-5).")] = 1e-5,
    recon_weight: Annotated[float, typer.Option(help="Weight of the reconstruction loss (eq. 14).")] = 1.0,
    no_autoencoder: Annotated[bool, typer.Option("--no-autoencoder", help="Ablation: original features, no AE.")] = False,
    no_cgan: Annotated[bool, typer.Option("--no-cgan", help="Ablation: no CGAN + auto-difference.")] = False,
    no_min: Annotated[bool, typer.Option("--no-min", help="Ablation: mean pooling, no user gates (no MIN).")] = False,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train GMMF (Xiao et al. 2022): difference-set network + modal-interest network (CTR task).

    Example: graphrec train gmmf --data ../shared/data/amazon-scientific --task ctr --gan-start-epoch 2 --item-graph both
    """
    params = {
        "id_dim": dim, "modalities": _mods(modalities), "recon_weight": recon_weight,
        "use_autoencoder": not no_autoencoder, "use_cgan": not no_cgan, "use_min": not no_min,
    }
    ctr_command("gmmf", params, data, gan_start_epoch=gan_start_epoch, gan_lr=gan_lr, **_common(locals()))


@user_errors
def marn(
    data: Data, dim: Dim = 32, modalities: Annotated[Optional[str], typer.Option(help="Modalities: id and/or content names, e.g. id,image,text [all].")] = None,
    fusion: Annotated[str, typer.Option(help="maf (attention) or concat (ablation).")] = "maf",
    adversarial: Annotated[str, typer.Option(help="ddma, adv (one-to-one) or none.")] = "ddma",
    sequence: Annotated[str, typer.Option(help="apgru or gru (ablation).")] = "apgru",
    adv_weight: Annotated[float, typer.Option(help="lambda_0 of the adversarial terms.")] = 0.1,
    task: Task = "ctr", max_history: MaxHistory = None, sample_seed: SampleSeed = 0, samples: Samples = None,
    cold_start: ColdStart = 0.0,
    item_graph: ItemGraph = "none", graph_k: GraphK = 10, cooccur_top_k: CooccurTopK = 20, graph_layers: GraphLayers = 2,
    epochs: Epochs = 30, lr: Lr = 1e-3, batch_size: BatchSize = 256, patience: Patience = 3, seed: Seed = 0,
    device: Device = "auto", out: Out = None, threads: Threads = None, quiet: Quiet = False,
) -> None:
    """Train MARN (Li et al. 2020): MAF + double-discriminator adversarial network + APGRU (CTR task)."""
    params = {
        "id_dim": dim, "dim": dim, "modalities": _mods(modalities), "fusion": fusion,
        "adversarial": adversarial, "sequence": sequence, "adv_weight": adv_weight,
    }
    ctr_command("marn", params, data, **_common(locals()))


COMMANDS = {"lr": lr, "fm": fm, "deepfm": deepfm, "youtubenet": youtubenet, "din": din, "gmmf": gmmf, "marn": marn}


def register(app: typer.Typer) -> None:
    """Add ``graphrec train <model>`` for every CTR model to the ``train`` app."""
    for name, fn in COMMANDS.items():
        app.command(name, help=fn.__doc__)(fn)
