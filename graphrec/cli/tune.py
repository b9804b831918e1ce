"""Search a model's hyper-parameters with Optuna: `graphrec tune MODEL --data DIR --trials N --storage URL`.

Example:

    graphrec tune lightgcn --data data/lfm2k --trials 20 --storage sqlite:///studies.db
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from graphrec.cli._common import ARGV, Threads, metric_table, ordered_metric_keys, resolve_device, set_threads, user_errors
from graphrec.cli.train import ColdProtocol, ColdSeed, ColdStart, Negatives, SelectOn
from graphrec.errors import ConfigError
from graphrec.train.commands import option_defaults, option_message

_DEFAULTS = option_defaults()  # graphrec train's (TrainConfig's)


@user_errors
def tune(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model to tune (graphrec models lists them).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset directory (from `graphrec prepare`).")],
    storage: Annotated[
        str, typer.Option(help="The study database, an SQLAlchemy URL, e.g. sqlite:///study.db (created when missing).")
    ],
    trials: Annotated[
        Optional[int], typer.Option(help="Trials this call adds to the study [20; with --grid: every point not run yet].")
    ] = None,
    grid: Annotated[
        bool, typer.Option("--grid", help="Run every point of the space once (lists or stepped ranges) instead of TPE.")
    ] = False,
    study: Annotated[Optional[str], typer.Option(help="Study name in the database (default MODEL-DATASET).")] = None,
    space: Annotated[
        Optional[Path],
        typer.Option(help="YAML file changing the model's search space entry by entry (docs/tune.md), or the name of "
                          "a reference grid the model declares instead of its space: mmrec (MMRec's yaml grid)."),
    ] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Start no trial after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every trial's training and of the sampler.")] = _DEFAULTS["seed"],
    repeats: Annotated[
        int, typer.Option(help="Train each trial on this many seeds (--seed, --seed + 1, ...) and select on the mean.")
    ] = 1,
    report_seeds: Annotated[
        int, typer.Option(help="Train the best configuration again on this many seeds no trial used, and report their "
                          "test mean and s.d. (OUT/report).", min=0)
    ] = 0,
    out: Annotated[
        Optional[Path], typer.Option(help="Folder of the trials' records, the best run and the plots (default runs/tune-STUDY).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs per trial.")] = _DEFAULTS["epochs"],
    patience: Annotated[
        int, typer.Option(help="Stop a trial after this many validations without improvement.")
    ] = _DEFAULTS["patience"],
    eval_every: Annotated[int, typer.Option(help="Validate (and report to the pruner) every N epochs.")] = _DEFAULTS["eval_every"],
    batch_size: Annotated[
        Optional[int], typer.Option(help="BPR triples per step, unless the space searches batch_size [2048 or the model's].")
    ] = None,
    metric: Annotated[str, typer.Option(help="Validation metric the study maximises.")] = _DEFAULTS["metric"],
    protocol: Annotated[
        str, typer.Option(help="recbole (test masks train+valid) or mmrec (train only).")
    ] = _DEFAULTS["protocol"],
    valid_users: Annotated[
        Optional[int],
        typer.Option(help="Validate every trial on this many users, drawn among those with a validation positive "
                          "(the same users for every trial and seed); the best trial's test ranks every user. "
                          "[default: every user]",
                     show_default=False),
    ] = None,
    cold_start: ColdStart = 0.0,
    cold_protocol: ColdProtocol = "papers",
    cold_seed: ColdSeed = None,
    select_on: SelectOn = _DEFAULTS["select_on"],
    negatives: Negatives = _DEFAULTS["negatives"],
    pruning: Annotated[Optional[bool], typer.Option(
        "--pruning/--no-pruning", show_default=False,
        help="Stop trials below the median validation curve. [default: pruning; no pruning with --grid]")] = None,
    prune_startup: Annotated[int, typer.Option(help="Finished trials before any trial is pruned.")] = 5,
    prune_warmup: Annotated[int, typer.Option(help="No trial is pruned before this epoch.")] = 10,
    tensorboard: Annotated[
        Optional[Path], typer.Option(help="Write TensorBoard scalars here, one run per trial (needs tensorboard).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")] = "auto",
    threads: Threads = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No line per trial.")] = False,
) -> None:
    """Search a model's hyper-parameters with Optuna, selecting on validation only.

    Every call adds --trials trials to the study in --storage (resumable: run the same
    command again for more; several processes may share one study). Each trial is
    recorded under OUT/trials/N; the best one is tested once and written as the run
    directory OUT/best, which graphrec evaluate and graphrec recommend accept. Needs
    Optuna: pip install 'graphrec[tune]'.

    With --cold-start F every trial trains on the same cold-start split (seed --cold-seed,
    default --seed; --cold-protocol), the study is named MODEL-DATASET-coldF, and --select-on
    cold selects on the cold items (under the papers' protocol validation holds cold items only).

    With --repeats R each trial trains seeds --seed .. --seed + R - 1 and its value is the
    mean of their best validation metrics (a steadier choice among near-equal points; the
    pruner sees the first seed's curve); the best trial's every seed is tested, and OUT/best
    holds its best-validated seed.

    With --grid the study runs every point of the search space once (every searched
    parameter a list of values or a stepped range, e.g. a --space file of lists: a
    reference grid), in several calls or processes if need be; --grid --repeats 3 selects
    on the 3-seed mean over the whole grid.

    With --report-seeds N the best configuration then trains again on the N seeds after
    those the trials used (--seed + R, ...), none of which chose anything, and their test
    mean and standard deviation are printed: the configuration's test figure without the
    luck of the seeds that selected it (kept in OUT/report; trained again only when the
    best changes).

    Example: graphrec tune lightgcn --data data/lfm2k --trials 20 --storage sqlite:///studies.db
    """
    from graphrec.train import TrainConfig
    from graphrec.train.tune import require_optuna, selected_label, tunable_model, tune as run_tune

    require_optuna()
    entry = tunable_model(model)
    overrides = _space(space) if space is not None else None
    set_threads(threads)
    dev = resolve_device(device)
    shared = dict(entry.train_defaults)  # the model's own defaults of lr, batch size, ...
    if batch_size is not None:
        shared["batch_size"] = batch_size
    try:
        config = TrainConfig(**{**shared, "epochs": epochs, "patience": patience, "eval_every": eval_every,
                                "valid_metric": metric, "select_on": select_on, "negatives": negatives,
                                "protocol": protocol, "valid_users": valid_users, "seed": seed, "progress": False})
    except ConfigError as e:  # named by the option (--batch-size), not TrainConfig's field
        raise ConfigError(option_message(str(e))) from None
    echo = (lambda line: None) if quiet else typer.echo
    if overrides == "mmrec" and protocol == "recbole" and ctx.get_parameter_source("protocol").name == "DEFAULT":
        typer.secho(
            "note: --space mmrec searches MMRec's grid under graphrec's default protocol, recbole (test masks train "
            "and valid items); --protocol mmrec evaluates as MMRec does (test masks train items only), "
            "docs/evaluation.md", err=True, fg=typer.colors.YELLOW)
    try:
        result = run_tune(
            data, model, trials, storage, study_name=study, space=overrides, space_source=f"--space {space}",
            config=config, timeout=timeout, seed=seed, out=out, device=dev, pruning=pruning,
            prune_startup=prune_startup, prune_warmup=prune_warmup, tensorboard=tensorboard, log=echo,
            cold_start=cold_start, cold_protocol=cold_protocol, repeats=repeats, grid=grid,
            report_seeds=report_seeds, cold_seed=cold_seed,
            command=None if ctx.meta.get(ARGV) is None else shlex.join(["graphrec", *ctx.meta[ARGV]]),
        )
    except KeyboardInterrupt as e:
        # what became of the running trial (graphrec.train.tune says: marked failed, or kept
        # when Optuna had stored it before the interrupt)
        said = str(e) or "interrupted; run the same command again to continue the study"
        typer.secho(f"error: {said}", err=True, fg=typer.colors.RED)
        raise typer.Exit(130) from None
    states = ", ".join(f"{n} {s}" for s, n in sorted(result.states.items()))
    typer.echo(f"study {result.study}: {result.n_trials} trials ({states}), {result.trials_run} run now")
    if result.best_trial is not None:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
        typer.echo(f"best: trial {result.best_trial}, valid {selected_label(metric, select_on)} {result.best_value:.4f}"
                   f"{_seeds_note(result.repeat_tests)}; {params}")
        when = "evaluated once now" if result.test_evaluated else "evaluated when this trial became the best"
        if result.repeat_tests:
            mean = result.test_mean
            typer.echo(f"test of the best trial, mean and standard deviation over its {len(result.repeat_tests)} "
                       f"seeds ({when}):")
            typer.echo(metric_table(_with_sd(mean, result.test_sd or {}), ordered_metric_keys(mean["all"])))
            kept = max(result.repeat_tests, key=lambda r: r["value"])["seed"]
            # the items the study selects on (all, cold or warm), as the trials' values
            per_seed = " / ".join(f"{r['test'][select_on][metric]:.4f}" for r in result.repeat_tests)
            typer.echo(f"test {selected_label(metric, select_on)} per seed: {per_seed}; "
                       f"the best run holds seed {kept} (best validation)")
        elif result.test:
            typer.echo(f"test of the best trial ({when}):")
            typer.echo(metric_table(result.test, ordered_metric_keys(result.test["all"])))
        if result.report_tests:
            seeds = [r["seed"] for r in result.report_tests]
            typer.echo(f"test of the best configuration on {len(seeds)} fresh seeds ({', '.join(map(str, seeds))}: "
                       "none chose anything), mean and standard deviation:")
            typer.echo(metric_table(_with_sd(result.report_mean, result.report_sd or {}),
                                    ordered_metric_keys(result.report_mean["all"])))
        typer.echo(f"best run: {result.best_run} (graphrec evaluate / graphrec recommend accept it)")
    for note in result.notes:
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
    if result.plots:
        typer.echo("plots: " + ", ".join(str(p) for p in result.plots))
    typer.echo(f"trials recorded in {result.out}/trials")


def _seeds_note(seeds: list[dict]) -> str:
    """`` (mean of seeds 0, 1, 2)`` for a study with --repeats, else nothing."""
    return f" (mean of seeds {', '.join(str(r['seed']) for r in seeds)})" if seeds else ""


def _space(space: Path) -> dict | str:
    """A --space file's mapping, or a bare name that is no file (``mmrec``): one of the
    model's reference grids (an unknown name is an error listing the model's grids)."""
    from graphrec.train.space import load_space_file

    if not space.exists() and len(space.parts) == 1 and not space.suffix:
        return str(space)
    return load_space_file(space)


def _with_sd(mean: dict[str, dict[str, float]], sd: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The columns of a seeds' metric table: each group's mean, then its seeds' s.d."""
    columns = {}
    for group, values in mean.items():
        columns[group] = values
        if group in sd:
            columns[f"{group} s.d."] = sd[group]
    return columns
