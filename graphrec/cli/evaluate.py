"""Re-evaluate a saved run on its dataset (valid and test): a ranking run's top-k
metrics, or a CTR run's AUC, GAUC and logloss (and, with `--predictions`, every
sample's click probability).

Example:

    graphrec evaluate runs/lightgcn-lfm2k --protocol mmrec
    graphrec evaluate runs/gmmf-scientific --predictions preds.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from graphrec.errors import ConfigError
from graphrec.cli._common import (
    Quiet,
    Threads,
    command_progress,
    metric_table,
    ordered_metric_keys,
    resolve_device,
    set_threads,
    split_line,
    user_errors,
    warnings_as_lines,
)


@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `graphrec train`."),
    data: Optional[Path] = typer.Option(None, help="Dataset directory (default: the one in the run record)."),
    protocol: Optional[str] = typer.Option(None, help="recbole or mmrec (default: the run's)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    threads: Threads = None,
    quiet: Quiet = False,
    predictions: Optional[Path] = typer.Option(
        None, help="A CTR run: write every valid and test sample's click probability to this CSV "
                   "(split, user, item, label, probability)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --predictions if it exists."),
) -> None:
    """Re-evaluate a saved run on its dataset (valid and test).

    A ranking run (graphrec train lightgcn|mmgef|...) gives its top-k metrics; a CTR run
    (--task ctr) its AUC, GAUC and logloss, its samples made again from the recorded data
    and options.

    Example: graphrec evaluate runs/lightgcn-lfm2k --protocol mmrec
    """
    from graphrec.train import reevaluate
    from graphrec.train.record import load_record

    set_threads(threads)
    record = load_record(run_dir)
    if record.get("task", "ranking") == "ctr":
        if protocol is not None:
            raise ConfigError(f"--protocol is a ranking protocol; run {run_dir} is a CTR run: drop --protocol")
        _evaluate_ctr(run_dir, data, predictions, overwrite, device, quiet)
        return
    if predictions is not None:
        raise ConfigError(f"--predictions writes a CTR run's click probabilities; run {run_dir} ranks items: "
                          "graphrec recommend writes its top-k lists")
    with warnings_as_lines():  # e.g. a run too old to have its checkpoint hash
        res = reevaluate(run_dir, device=resolve_device(device), data_path=data, protocol=protocol,
                         progress=command_progress(quiet))
    cols = {}
    for split, groups in res.items():
        for group, metrics in groups.items():
            cols[split if group == "all" else f"{split}-{group}"] = metrics
    typer.echo(metric_table(cols, ordered_metric_keys(res["valid"]["all"])))
    users = ", ".join(f"{split} {group} {int(m.get('users', 0))}" for split, groups in res.items()
                      for group, m in groups.items())
    used = protocol or (record.get("train_config") or {}).get("protocol", "recbole")
    typer.echo(f"{record.get('model')} on {(record.get('dataset') or {}).get('name')} ({used} protocol): users {users}")
    split = split_line(record)
    if split:
        typer.echo(split)


def _evaluate_ctr(run_dir: Path, data: Optional[Path], predictions: Optional[Path], overwrite: bool, device: str,
                  quiet: bool) -> None:
    """``graphrec evaluate`` of a CTR run: its samples made again (checked against the
    recorded fingerprint), its model loaded, valid and test evaluated (printed as
    ``graphrec train`` prints them), and the probabilities written when asked."""
    from graphrec._atomic import atomic_file, check_output
    from graphrec.cli.train_ctr import load_run_samples, print_ctr_record
    from graphrec.train.ctr import evaluate_ctr
    from graphrec.train.ctr_eval import (ctr_predictions, ctr_run_source, load_ctr_run, recorded_config,
                                         write_predictions)

    src = ctr_run_source(run_dir)
    if predictions is not None:  # before anything is read or scored
        check_output(predictions, overwrite, option="--predictions", kind="file", suffixes=(".csv",),
                     format_note="the probabilities are CSV")  # --overwrite would replace RUN/record.json too
    samples = load_run_samples(run_dir, data, src)
    dev = resolve_device(device)
    with warnings_as_lines():
        record, model = load_ctr_run(run_dir, samples, dev, progress=command_progress(quiet))
    config = recorded_config(record)
    valid = evaluate_ctr(model, samples, "valid", config, dev)
    test = evaluate_ctr(model, samples, "test", config, dev, slices=True)
    print_ctr_record(dict(record, best_valid=valid, test=test))  # the run's table, its figures computed again
    if predictions is not None:
        cols = ctr_predictions(model, samples, device=dev, batch_size=config.eval_batch_size)
        with atomic_file(predictions) as tmp:
            write_predictions(cols, tmp)
        typer.echo(f"wrote {predictions}: {len(cols['split'])} samples (valid and test)")
