"""Inspect a stored item graph: statistics, an item's neighbours, plots, GraphML.

Example:

    graphrec inspect graphs/scientific/knn --item B00O47ILVA --top 10 --plot knn-degrees.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from graphrec._atomic import check_image_output, check_output
from graphrec.cli._common import (check_apart, command_progress, exported_graph_name, format_graph_weights,
                                  user_errors)
from graphrec.errors import ConfigError, DataError, GraphrecError


def _graph_record(path: Path, option: str = ""):
    """The record of the graph at ``path`` (read_record, which refuses a training run or a
    dataset folder with the command that makes a graph of it), its error prefixed with
    ``option`` (``--compare``) when it names one."""
    from graphrec.graphs.store import read_record

    try:
        return read_record(path)
    except DataError as e:
        if option:
            raise DataError(f"{option}{e}") from None
        raise


def _weight_label(record) -> str:
    """What a graph's edge weights are, from its record (weighting and normalisation)."""
    if record.kind == "model":  # the operator a trained model propagates over
        return f"{record.options.get('model')}'s propagation weights, as the model applies them"
    what = {"count": "shared training items", "count/max": "co-interactions / max",
            "cosine": "cosine similarity", "binary": "1 per neighbour"}.get(record.weighting or "", record.weighting or "as stored")
    if record.normalization and record.normalization != "none":
        what += f", {record.normalization}-normalised"
    return what


def _in_degree_line(rep: dict[str, Any], ids: Any) -> str:
    """``in-degree median/max M/X; never another's neighbour Z; hubs ID (D), ...``: how
    unevenly the graph's edges point at its nodes (graph_report's in-degree from other
    nodes; ``ids``: the nodes' original ids, or None for indices)."""
    top = max((d for _, d in rep["hubs"]), default=0)
    line = (f"in-degree median/max {rep['in_degree_median_others']:.0f}/{top}; never another's neighbour "
            f"{rep['never_neighbour']}")
    if rep["hubs"]:
        line += "; hubs " + ", ".join(f"{ids[t] if ids is not None else t} ({d})" for t, d in rep["hubs"])
    return line


def _cold_line(rep, record) -> str:
    """The line about the cold items of the graph's cold-start split (graph_report's
    ``cold_*`` entries; the split as the record gives it)."""
    n, isolated = rep["cold_items"], rep["cold_isolated"]
    split = (f"fraction {record.cold_start_fraction}, seed {record.cold_start_seed}, "
             f"{record.cold_start_protocol or 'papers'} protocol")
    line = f"cold items {n} (cold-start split: {split}; no training interaction): "
    if record.kind == "cooccur" and isolated == n:
        return line + "all isolated, as in any co-interaction graph of the split"
    return line + f"{isolated} isolated, {rep['cold_edges']} of the {rep['edges']} edges touch one"


def _coconsumption_line(rep) -> str:
    """The share of edges whose two items share a training user; with edges touching a
    cold item (never co-consumed in training: it has no training user), that share among
    the warm-warm edges beside the share among all edges."""
    def share(rate) -> str:
        return "none (no edge between two items)" if rate != rate else f"{rate:.4f}"

    line = f"edges whose two items share a training user: {share(rep['coconsumption_rate'])}"
    if "coconsumption_rate_warm" not in rep:
        return line
    warm = rep["warm_edges"]
    return (line + f" of all edges; {share(rep['coconsumption_rate_warm']) if warm else 'none'} of the {warm} "
            f"warm-warm edges ({rep['cold_edges']} edges touch a cold item, which has no training user)")


@user_errors
def inspect_graph(
    graph: Path = typer.Argument(..., help="A graph folder written by `graphrec build-graph` (e.g. graphs/NAME/knn) or `graphrec export-graph`."),
    item: Optional[str] = typer.Option(None, help="Show this item's neighbours (original id)."),
    user: Optional[str] = typer.Option(None, help="Show this user's neighbours in a user graph (original id)."),
    top: Optional[int] = typer.Option(None, help="How many neighbours --item/--user shows [10]."),
    compare: Optional[Path] = typer.Option(None, help="Another graph to measure overlap with [the sibling graph of the same folder (knn <-> cooccur; an exported graph: knn), where it fits the data]."),
    data: Optional[Path] = typer.Option(None, help="Dataset directory [the graph's recorded source]."),
    plot: Optional[Path] = typer.Option(None, help="Write the degree distribution here (.png, .pdf, .svg, ...: the suffix picks the format)."),
    graphml: Optional[Path] = typer.Option(None, help="Export the graph with item attributes to GraphML."),
    sample: int = typer.Option(1000, help="Nodes sampled for the clustering coefficient."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot or --graphml file."),
) -> None:
    """Inspect a stored item graph: statistics, an item's neighbours, plots, GraphML.

    Example: graphrec inspect graphs/scientific/knn --item B00O47ILVA --top 10 --plot knn-degrees.png
    """
    import numpy as np

    from graphrec.graphs.export import plot_degree_distribution, write_graphml
    from graphrec.graphs.stats import graph_report, nearly_symmetric, neighbours
    from graphrec.graphs.store import GraphMismatch, graph_dataset, load_graph

    if top is not None and item is None and user is None:
        raise ConfigError(f"--top {top} sets how many neighbours --item or --user shows, and neither is given: "
                          "pass --item ITEM_ID (--user USER_ID for a user graph), or drop --top")
    top = 10 if top is None else top
    if top < 1:
        raise ConfigError(f"--top {top}: show at least one neighbour (--top 1 or more)")
    if sample < 1:
        raise ConfigError(f"--sample {sample}: sample at least one node for the clustering coefficient (--sample 1 or more)")
    # the files written at the end are checked before anything is read or computed: an
    # existing one is refused without --overwrite (like every command's output); they are
    # written to a temporary name and renamed into place (graphrec.graphs.export)
    if plot is not None:
        check_image_output(plot, option="--plot", overwrite=overwrite)
    if graphml is not None:
        check_output(graphml, overwrite=overwrite, option="--graphml", kind="file")
    if plot is not None and graphml is not None and plot.absolute() == graphml.absolute():
        raise ConfigError(f"--plot and --graphml both name {plot}: give them different files")
    check_apart(plot, "--plot", folders={"GRAPH": graph})
    check_apart(graphml, "--graphml", folders={"GRAPH": graph})
    # the dataset as the graph saw it (its cold-start split drawn again), when it is known;
    # without it, the statistics of the matrix alone
    known = _graph_record(graph).options.get("source") or data is not None  # a run or dataset folder: refused
    ds = graph_dataset(graph, data, option="--data DIR") if known else None
    g, record = load_graph(graph, dataset=ds)  # with a dataset: refuses a graph of other data
    users = record.nodes == "users"
    if users and item is not None:
        raise ConfigError(f"{graph} is a user graph: pass --user USER_ID instead of --item")
    if not users and user is not None:
        raise ConfigError(f"{graph} is an item graph: pass --item ITEM_ID instead of --user")
    # the node asked for is looked up before the statistics are computed
    node = None
    if item is not None or user is not None:
        if ds is None:
            raise ConfigError(f"--{'item' if item is not None else 'user'} needs the dataset: pass --data DIR")
        if item is not None:
            where = np.flatnonzero(ds.item_ids == item)
            if where.size == 0:
                raise ConfigError(f"item {item!r} is not in dataset {ds.name!r}: use an original item id")
        else:
            where = np.flatnonzero(ds.user_ids.astype(str) == str(user))
            if where.size == 0:
                raise ConfigError(f"user {user!r} is not in dataset {ds.name!r}: use an original user id")
        node = int(where[0])
    other = None
    if compare is not None:  # named: a graph that does not fit is an error (its fix: another graph)
        other_nodes = _graph_record(compare, "--compare ").nodes
        if other_nodes != record.nodes:  # its size is another node count: say which, not "different sizes"
            a = {"items": "an item", "users": "a user"}
            raise ConfigError(
                f"--compare {compare} is {a[other_nodes]} graph and {graph} {a[record.nodes]} graph: "
                f"compare {record.nodes[:-1]} graphs with {record.nodes[:-1]} graphs"
            )
        try:
            other, _ = load_graph(compare, dataset=ds) if ds is not None else load_graph(compare)
        except GraphMismatch as e:
            raise DataError(f"--compare {compare}: {e.problem}: compare with a graph of the same data and split") from None
    elif not users:
        # the sibling graph of the same build (graphs/NAME/knn beside graphs/NAME/cooccur;
        # an exported model graph beside its knn), compared when it fits: one built from
        # other data or another cold-start split is skipped with a note
        sibling = graph.parent / ("cooccur" if record.kind == "knn" else "knn")
        if (sibling / "graph.json").is_file() and sibling.resolve() != graph.resolve():
            try:
                other, _ = load_graph(sibling, dataset=ds) if ds is not None else load_graph(sibling)
                compare = sibling
            except (GraphrecError, FileNotFoundError) as e:
                why = e.problem if isinstance(e, GraphMismatch) else str(e)  # its fix is not this command's
                typer.secho(f"note: not compared with the sibling graph ({why}); name a graph to compare with --compare",
                            err=True, fg=typer.colors.YELLOW)
    # the co-consumption rate is about item pairs (every user-graph edge shares an item);
    # so are the cold items of a cold-start split (they have no training interaction)
    cold = None if ds is None or users or ds.cold_items is None else np.asarray(ds.cold_items)
    rep = graph_report(g, other=other, train=None if ds is None or users else ds.train, sample=sample, cold=cold)
    if record.kind == "model":  # exported from a trained run (graphrec export-graph)
        o = record.options
        layers = f"{o.get('user_layers')} user layer(s)" if users else f"{o.get('item_layers')} item layer(s)"
        typer.echo(f"{graph}: the {exported_graph_name(record)} of {o.get('model')} run {o.get('run')} on {record.dataset_name} "
                   f"(best epoch {o.get('best_epoch')}, {layers}, {format_graph_weights(o)}; "
                   f"modalities={','.join(record.modalities) or '-'})")
    else:
        typer.echo(f"{graph}: {record.kind} graph of {record.dataset_name} ({record.builder}, k={record.k}, "
                   f"modalities={','.join(record.modalities) or '-'}, {record.normalization} normalisation"
                   + (f", {record.n_users} user nodes)" if users else ")"))
    # a symmetric graph's stored entries count each edge twice (GraphML and Gephi show it once)
    undirected = f" ({rep['undirected_edges']} undirected)" if rep.get("undirected_edges") is not None else ""
    loops = f", self loops {rep['self_loops']}" if rep.get("self_loops") else ""
    symmetric = str(rep["symmetric"])
    if not rep["symmetric"] and nearly_symmetric(g):  # mirrored weights computed twice (cosines), float32 apart
        symmetric = "True up to float rounding (mirrored weights within a relative 1e-5; GraphML: undirected)"
    typer.echo(f"nodes {rep['nodes']}, edges {rep['edges']}{undirected}, symmetric {symmetric}{loops}, "
               f"isolated {rep['isolated']}")
    if cold is not None:
        typer.echo(_cold_line(rep, record))
    typer.echo(f"out-degree min/median/mean/max {rep['degree_min']}/{rep['degree_median']:.0f}/"
               f"{rep['degree_mean']:.1f}/{rep['degree_max']}; "
               f"{_in_degree_line(rep, None if ds is None else (ds.user_ids if users else ds.item_ids))}")
    typer.echo(f"weak components {rep['components']} (largest {rep['largest_component']} {record.nodes}); "
               f"mean local clustering on {min(sample, rep['nodes'])} sampled {record.nodes} "
               f"{rep['clustering_sample']:.4f}")
    if other is not None:
        typer.echo(f"edges also in {compare}: {rep['overlap_with_other']:.4f} "
                   f"(random item pairs: {rep['random_pair_overlap_other']:.4f}); Jaccard of the two edge sets "
                   f"{rep['jaccard_with_other']:.4f}, {int(rep['shared_with_other'])} shared edges, whose weights "
                   f"rank alike to a Spearman {rep['weight_spearman_with_other']:.4f}")
    if "coconsumption_rate" in rep:
        typer.echo(_coconsumption_line(rep))
    if item is not None:
        titles = None
        for field in ("title", "text"):
            if field in ds.item_fields:
                titles = np.asarray(ds.item_fields[field]).astype(str)
                break
        i = node
        is_cold = np.zeros(ds.n_items, dtype=bool)
        if cold is not None:
            is_cold[cold] = True
        head = f"neighbours of {item}" + (f" ({titles[i][:70]})" if titles is not None else "")
        found = neighbours(g, i, top)
        if not found:  # said, not an empty list under a heading
            why = f"{item} has no edge to another item in this graph"
            if is_cold[i]:
                why = (f"{item} is a cold item of the graph's cold-start split: it has no training interaction, "
                       "hence no co-interaction edge" if record.kind == "cooccur"
                       else f"{item} is a cold item of the graph's cold-start split, with no edge to another item "
                       "in this graph")
            typer.echo(f"{head}: none: {why}")
        else:
            typer.echo(head + (" [a cold item of the graph's cold-start split]" if is_cold[i] else "") + ":")
        for j, w in found:
            label = f"  {w:.4f}  {ds.item_ids[j]}"
            typer.echo(label + (f"  {titles[j][:70]}" if titles is not None else "") + ("  [cold]" if is_cold[j] else ""))
        own = float(g[i, i])
        if own:  # a self loop is part of what the model propagates (FREEDOM's, --include-self)
            typer.echo(f"  {own:.4f}  {item}  (its own self loop)")
    if user is not None:
        found = neighbours(g, node, top)
        if not found:
            typer.echo(f"neighbours of user {user}: none: user {user} has no edge to another user in this graph")
        else:
            typer.echo(f"neighbours of user {user} (weight: {_weight_label(record)}):")
        for j, w in found:
            typer.echo(f"  {w:.4f}  {ds.user_ids[j]}")
    if plot is not None:
        plot_degree_distribution(g, plot, title=f"{record.kind} graph of {record.dataset_name}", nodes=record.nodes,
                                 overwrite=overwrite)
        typer.echo(f"degree distribution plotted to {plot}")
    if graphml is not None:
        write_graphml(g, graphml, ds, nodes=record.nodes, overwrite=overwrite,
                      progress=command_progress(False))  # a bar past 1 s
        typer.echo(f"GraphML written to {graphml}")
