"""Re-evaluate a saved run on its dataset (valid and test).

Example:

    graphrec evaluate runs/lightgcn-lfm2k --protocol mmrec
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from graphrec.cli._common import (
    Quiet,
    Threads,
    metric_table,
    ordered_metric_keys,
    resolve_device,
    set_threads,
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
) -> None:
    """Re-evaluate a saved run on its dataset (valid and test).

    Example: graphrec evaluate runs/lightgcn-lfm2k --protocol mmrec
    """
    from graphrec.train import reevaluate

    set_threads(threads)
    with warnings_as_lines():  # e.g. a run too old to have its checkpoint hash
        res = reevaluate(run_dir, device=resolve_device(device), data_path=data, protocol=protocol, progress=not quiet)
    cols = {}
    for split, groups in res.items():
        for group, metrics in groups.items():
            cols[split if group == "all" else f"{split}-{group}"] = metrics
    typer.echo(metric_table(cols, ordered_metric_keys(res["valid"]["all"])))
