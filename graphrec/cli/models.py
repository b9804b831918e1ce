"""List the registered models: `graphrec models [NAME...] [--task ranking|ctr] [--params]`."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from graphrec.cli._common import user_errors


@user_errors
def models(
    names: Annotated[Optional[List[str]], typer.Argument(help="Only these models (default: every one).")] = None,
    task: Annotated[Optional[str], typer.Option(help="Only ranking or ctr models.")] = None,
    params: Annotated[
        bool, typer.Option("--params", help="Also each model's hyper-parameters, defaults, reference grids and a "
                                            "reference implementation's names for them.")
    ] = False,
) -> None:
    """List the models graphrec can train: name, task, model and paper.

    `graphrec train NAME --help` shows a model's options. Models of other packages appear
    here once installed (entry-point group graphrec.models).

    Example: graphrec models freedom --params
    """
    from graphrec.errors import ConfigError
    from graphrec.train.registry import TASKS, registered_models

    if task is not None and task not in TASKS:
        raise ConfigError(f"--task {task!r} is not one of {', '.join(TASKS)}")
    entries = registered_models(task)
    if names:
        known = {e.name for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"no {task + ' ' if task else ''}model named {', '.join(unknown)}: "
                              f"choose among {', '.join(sorted(known))}")
        entries = [e for e in entries if e.name in names]
    rows = [(e.name, e.task, e.title, e.paper) for e in entries]
    widths = [max(len(r[i]) for r in rows + [("name", "task", "model", "paper")]) for i in range(3)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(("name", "task", "model"), widths)) + "  paper")
    for e, row in zip(entries, rows):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3])
        if params:
            for p in e.params:
                flag = p.flags[0].split("/")[0]
                typer.echo(f"{'':{widths[0]}}    {p.name} ({flag}) = {p.default!r}  {p.option.help}")
            if e.reference_grids:
                grids = ", ".join(e.reference_grids)
                typer.echo(f"{'':{widths[0]}}    reference grids (graphrec tune {e.name} --space NAME): {grids}")
            for ref, names_of in e.reference_names.items():
                pairs = ", ".join(f"{theirs} = {ours}" for theirs, ours in names_of.items())
                typer.echo(f"{'':{widths[0]}}    {ref}'s names for them: {pairs}")
