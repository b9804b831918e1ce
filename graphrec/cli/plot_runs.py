"""Draw training curves: `graphrec plot RUN [RUN ...] --out FILE.png`.

Example:

    graphrec plot runs/lightgcn-lfm2k runs/mmgef-lfm2k --out curves.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from graphrec.cli._common import user_errors, warnings_as_lines


@user_errors
def plot(
    runs: Annotated[List[Path], typer.Argument(help="Run directories (graphrec train --out, or tune trials).")],
    out: Annotated[Path, typer.Option("--out", help="Image file to write (.png, .pdf, .svg).")],
    label: Annotated[
        Optional[List[str]], typer.Option("--label", help="Legend name of each run, in order (default: folder names).")
    ] = None,
    metric: Annotated[
        Optional[str], typer.Option(help="Validation metric to draw (default: the one the first run selected on).")
    ] = None,
    items: Annotated[
        Optional[str],
        typer.Option(help="Items the metric is of: all, cold or warm (default: what the first run selected on, --select-on)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
) -> None:
    """Draw loss and validation metric per epoch of one or several runs, overlaid, each
    run's best epoch marked; for item-graph models also the learned weights over the
    epochs. Needs matplotlib: pip install 'graphrec[plot]'.

    Example: graphrec plot runs/lightgcn-lfm2k runs/mmgef-lfm2k --out curves.png
    """
    from graphrec._atomic import check_image_output
    from graphrec.train.plots import draw_runs, require_matplotlib

    check_image_output(out, option="--out", overwrite=overwrite)  # before anything is read or drawn
    require_matplotlib()
    with warnings_as_lines():  # a run without the metric drawn: a line naming it
        draw_runs(runs, out, labels=label or None, metric=metric, items=items)
    typer.echo(f"curves of {len(runs)} run{'s' if len(runs) > 1 else ''} written to {out}")
