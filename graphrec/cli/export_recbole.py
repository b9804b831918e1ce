"""Write a graphrec dataset as RecBole atomic files that RecBole reads with no edits.

Example:

    graphrec export-recbole data/lfm2k recbole_data/lfm2k
"""

from __future__ import annotations

from pathlib import Path

import typer

from graphrec._atomic import check_output
from graphrec.cli._common import read_back_line, user_errors


def recbole_config_lines(data_path: Path, name: str, split: bool, feature_fields: list[str]) -> list[str]:
    """The RecBole config (YAML) that reads an exported folder as it was written."""
    lines = [f"data_path: {data_path}", f"dataset: {name}"]
    if split:
        lines.append("benchmark_filename: [train, valid, test]")
    item_cols = ", ".join(["item_id", *feature_fields])
    # .user/.item list every id: users and items without interactions exist in RecBole too
    lines.append(f"load_col: {{inter: [user_id, item_id], user: [user_id], item: [{item_cols}]}}")
    return lines


@user_errors
def export_recbole(
    data: Path = typer.Argument(..., help="A dataset directory written by `graphrec prepare`."),
    out: Path = typer.Argument(
        ..., help="Folder to write, named like the dataset RecBole should see: {data_path}/{name}."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it holds an earlier export (a folder with a .inter file)."),
) -> None:
    """Write a graphrec dataset as RecBole atomic files that RecBole reads with no edits.

    The file prefix is OUT's folder name (RecBole reads {data_path}/{name}/{name}.inter).
    Written: {name}.inter (all interactions), {name}.train.inter / .valid.inter /
    .test.inter (the dataset's split, for RecBole's benchmark_filename; an empty split is
    not written, and the config then has no benchmark_filename), {name}.item (features as
    float_seq, item fields) and {name}.user. Prints the RecBole config that reads them
    and the `graphrec prepare --format recbole` command that reads the folder back. OUT's
    folder name must not be ml-100k: RecBole reads its bundled copy for that name.

    Example: graphrec export-recbole data/lfm2k recbole_data/lfm2k
    """
    import numpy as np

    from graphrec.data import Dataset
    from graphrec.data.formats.recbole import check_recbole_name, write_recbole

    name = out.resolve().name
    check_recbole_name(name, f"OUT {out}: the folder name ", "choose another OUT folder name")
    # --overwrite replaces an earlier export (it holds a .inter file), never another folder
    check_output(out, overwrite, option="OUT", marker="*.inter", what="folder written by export-recbole")
    ds = Dataset.load(data)
    write_recbole(ds, out, name, overwrite=overwrite)
    # RecBole's benchmark_filename needs all three files: read what write_recbole wrote
    given = (out / f"{name}.train.inter").is_file()
    empty = [s for s in ("valid", "test") if given and not (out / f"{name}.{s}.inter").is_file()]
    split = given and not empty
    counts = ", ".join(f"{s} {ds.splits[s].nnz}" for s in ("train", "valid", "test") if s in ds.splits)
    typer.echo(f"wrote {out}: {ds.n_users} users, {ds.n_items} items, {counts}")
    if ds.cold_items is not None:
        typer.echo(
            f"note: the {len(ds.cold_items)} cold-start items are not marked in RecBole files "
            f"(their training interactions are absent from {name}.train.inter, as in the dataset)"
        )
    if empty:
        files = " and ".join(f"{name}.{s}.inter" for s in empty)
        typer.echo(
            f"note: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty, so {files} "
            f"{'were' if len(empty) > 1 else 'was'} not written and the config has no benchmark_filename (RecBole "
            f"needs train, valid and test files): RecBole splits {name}.inter itself, as its eval_args say"
        )
    # prepare keeps a split only when all three files are there; otherwise it must re-split
    same_ts = ds.timestamps is None or all(s in ds.timestamps for s in ds.splits)
    plain_fields = all(
        np.asarray(v).dtype.kind == "U" or np.asarray(v).dtype == np.float64
        for fields in (ds.item_fields, ds.user_fields) for v in fields.values()
    )
    exact = split and ds.cold_items is None and same_ts and plain_fields
    typer.echo(read_back_line(ds, "recbole", out, [] if split else ["--split", "random"], exact))
    typer.echo("RecBole config:")
    for line in recbole_config_lines(out.resolve().parent, name, split, list(ds.item_features)):
        typer.echo(f"  {line}")
