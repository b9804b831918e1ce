"""Score (user, item) pairs with a saved CTR run: one click probability per pair, with the original ids.

--pairs is a CSV with a user_id,item_id header (other columns ignored); --out gets
user_id,item_id,probability in the same order. Each user is scored with the history
the model sees when serving now: its most recent behaviours, the last one included (at
most the run's max history; time gaps to the last one). An id the run's data lack is an
error unless --unknown drop. A ranking run's top-k lists are `graphrec recommend`'s.

Example:

    graphrec predict runs/din-sci --pairs pairs.csv --out scores.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from graphrec.cli._common import (Quiet, Threads, check_apart, command_progress, resolve_device, set_threads,
                                  user_errors, warnings_as_lines)
from graphrec.errors import ConfigError


@user_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A CTR run directory written by `graphrec train MODEL --task ctr`.")],
    pairs: Annotated[
        Path,
        typer.Option("--pairs", help="CSV with a user_id,item_id header (other columns ignored), one pair a row."),
    ],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: user_id,item_id,probability, in the order of --pairs.")],
    data: Annotated[
        Optional[Path],
        typer.Option(help="The run's data (source folder or samples) where it moved (default: the recorded --data)."),
    ] = None,
    unknown: Annotated[
        str,
        typer.Option(help="A pair whose user or item the run's data lack: error (exit 1, nothing written) or drop "
                          "(left out of --out)."),
    ] = "error",
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")] = "auto",
    batch_size: Annotated[
        Optional[int],
        typer.Option(help="Pairs scored at a time (memory on --device grows with it) [the run's evaluation batch size]."),
    ] = None,
    threads: Threads = None,
    quiet: Quiet = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
) -> None:
    """Score (user, item) pairs with a saved CTR run: one click probability per pair, with the original ids.

    The run's samples are made again from its recorded data (checked against the run's
    fingerprint) and its model loaded, as `graphrec evaluate` does. Each user is scored
    with the history the model sees when serving now: the user's most recent behaviours
    (at most the run's max history, the last one included; time gaps to the user's last
    behaviour), see docs/models/ctr.md. An id the run's data lack is an error unless
    --unknown drop. The file is written under a temporary name and renamed at the end.
    A ranking run's top-k lists are `graphrec recommend`'s.

    Example: graphrec predict runs/din-sci --pairs pairs.csv --out scores.csv
    """
    from graphrec._atomic import atomic_file, check_output
    from graphrec.train.record import load_record

    if unknown not in ("error", "drop"):
        raise ConfigError(f"--unknown {unknown!r} is not one of error, drop")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    check_output(out, overwrite, option="--out", kind="file", suffixes=(".csv",),
                     format_note="the probabilities are CSV")  # before anything is read or scored
    check_apart(out, "--out", files={"--pairs": pairs}, folders={"RUN_DIR": run_dir, "--data": data})
    record = load_record(run_dir)
    if record.get("task", "ranking") != "ctr":
        raise ConfigError(f"run {run_dir} trained {record.get('model')} for top-k ranking, not CTR: graphrec predict "
                          "scores pairs with CTR runs; graphrec recommend writes a ranking run's top-k lists")
    set_threads(threads)

    from graphrec._checks import counted
    from graphrec._csv import write_columns
    from graphrec.cli.train_ctr import load_run_samples
    from graphrec.train.ctr_eval import ctr_run_source, load_ctr_run, recorded_config
    from graphrec.train.ctr_predict import predict_pairs, read_pairs

    src = ctr_run_source(run_dir)  # an unfinished run: one line
    users, items, lines = read_pairs(pairs)  # a wrong file fails before the samples are made
    samples = load_run_samples(run_dir, data, src)
    dev = resolve_device(device)
    with warnings_as_lines():
        record, model = load_ctr_run(run_dir, samples, dev, progress=command_progress(quiet))
    pred = predict_pairs(model, samples, users, items, unknown=unknown, device=dev,
                         batch_size=batch_size or recorded_config(record).eval_batch_size, source=str(pairs),
                         lines=lines)
    with atomic_file(out) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write_columns(f, pred.columns())
    dropped = f", {pred.dropped} with an unknown id left out" if pred.dropped else ""
    typer.echo(f"wrote {out}: {counted(len(pred), 'pair')}{dropped}")
    if pred.no_history:
        typer.echo(f"note: {pred.no_history} of them have a user without any known behaviour (scored from an empty "
                   "history)")
