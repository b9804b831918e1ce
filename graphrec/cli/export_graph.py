"""Store a graph a trained run propagates over (with its learned weights), for `inspect`.

Example:

    graphrec export-graph runs/lattice-lfm2k --out graphs/lfm2k/lattice
    graphrec export-graph runs/mgcn-lfm2k --view text --out graphs/lfm2k/mgcn-text
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from graphrec._atomic import check_output
from graphrec.cli._common import exported_graph_name, format_graph_weights, user_errors, warnings_as_lines
from graphrec.errors import ConfigError


@user_errors
def export_graph(
    run_dir: Path = typer.Argument(..., help="A run directory of `graphrec train MODEL` (a model with an item graph)."),
    out: Path = typer.Option(..., help="Graph folder to write (e.g. graphs/NAME/lattice)."),
    view: Optional[str] = typer.Option(
        None, help="Which graph, for a model with several: a modality (MGCN, SMORE), fusion (SMORE), "
        "item or user (DRAGON); the error lists a run's."
    ),
    data: Optional[Path] = typer.Option(None, help="Dataset directory (default: the one in the run record)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a graph stored at OUT."),
) -> None:
    """Store a graph a trained run propagates over, with its learned weights, for `inspect`.

    The graph is the model's operator with its weights at the best epoch (MM-GEF: the
    attention-weighted sum of the normalised kNN and co-interaction graphs; LATTICE: its
    learned + original modality graphs, with the co-interaction graph under --cf-graph;
    FREEDOM and DRAGON: the frozen merged kNN graph, and DRAGON's user-user graph with
    --view user; MGCN: one frozen graph per modality; SMORE: one per modality and its
    fusion graph), written like a built graph (kind "model", with the run's provenance):
    `graphrec inspect OUT` reports its statistics, a node's neighbours, the overlap with
    the content kNN graph (--compare) and exports GraphML / networkx.

    Example: graphrec export-graph runs/lattice-lfm2k --out graphs/lfm2k/lattice
    """
    from graphrec.graphs.store import RECORD_FILE
    from graphrec.train import export_item_graph

    if (run_dir / RECORD_FILE).is_file():  # a stored graph is looked at, not exported
        raise ConfigError(f"{run_dir} is a stored graph, not a run: export-graph writes the graph a trained run "
                          f"propagates over; look at this one with `graphrec inspect {run_dir}`")
    if (out / RECORD_FILE).is_file() and not overwrite:  # checked before the run is loaded
        raise ConfigError(f"a graph already exists at {out}: pass --overwrite to replace it, or choose another --out")
    check_output(out, overwrite, option="--out", marker=RECORD_FILE, what="graph directory")
    with warnings_as_lines():  # e.g. a run too old to have its checkpoint hash
        rec = export_item_graph(run_dir, out, data_path=data, overwrite=overwrite, view=view)
    o = rec.options
    size = f"{rec.n_users} users" if rec.nodes == "users" else f"{rec.n_items} items"
    typer.echo(
        f"{o['model']} {exported_graph_name(rec)} of run {run_dir} (best epoch {o['best_epoch']}; "
        f"{format_graph_weights(o)}): {size}, {rec.nnz} edges -> {out}"
    )
    typer.echo(f"inspect it with: graphrec inspect {out}")
