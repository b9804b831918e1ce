"""Print statistics of a graphrec dataset directory.

Example:

    graphrec info data/lfm2k
"""

from __future__ import annotations

from pathlib import Path

import typer

from graphrec.cli._common import user_errors


@user_errors
def info(
    data: Path = typer.Argument(..., help="A dataset directory written by `graphrec prepare`."),
) -> None:
    """Print statistics of a graphrec dataset directory.

    Example: graphrec info data/lfm2k
    """
    from graphrec.data import Dataset

    ds = Dataset.load(data)
    st = ds.stats()
    width = max(len(k) for k in st)
    for k, v in st.items():
        if isinstance(v, float):
            v = f"{v:.6f}"
        elif isinstance(v, (list, dict)):
            v = (", ".join(f"{a}:{b:.3g}" if isinstance(b, float) else f"{a}:{b}" for a, b in v.items())
                 if isinstance(v, dict) else ", ".join(v))
            v = v or "-"
        typer.echo(f"{k:<{width}}  {v}")
    typer.echo(f"{'fingerprint':<{width}}  {ds.fingerprint()[:16]}")
    split = ds.meta.get("split")
    if split:
        typer.echo(f"{'split':<{width}}  {split}")
