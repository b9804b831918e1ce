"""Write top-k recommendations of a saved run, with the original user and item ids.

Example:

    graphrec recommend runs/lightgcn-baby --all --k 20 --out recs.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from graphrec.cli._common import (Quiet, Threads, check_apart, command_progress, resolve_device, set_threads,
                                  user_errors, warnings_as_lines)
from graphrec.errors import ConfigError


@user_errors
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `graphrec train`.")],
    out: Annotated[Path, typer.Option("--out", help="File to write: .csv, or .parquet (needs pyarrow: the [parquet] extra).")],
    users: Annotated[
        Optional[Path],
        typer.Option("--users", help="Original user ids: one per line, or a CSV with a user_id column (or the user column a csv-imported dataset was read from)."),
    ] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user of the run's dataset (the default).")] = False,
    k: Annotated[int, typer.Option("--k", help="Items per user.")] = 20,
    exclude_seen: Annotated[
        bool,
        typer.Option(
            "--exclude-seen/--include-seen",
            help="Never recommend a user's seen items (the interactions of the --seen splits).",
        ),
    ] = True,
    seen: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated splits whose interactions count as seen: train (what the model was "
            "trained on) or e.g. train,valid,test (everything the dataset knows). [default: train]",
        ),
    ] = None,
    items: Annotated[
        Optional[Path],
        typer.Option(help="Only these candidate items: original ids, one per line or a CSV with an item_id column."),
    ] = None,
    unknown: Annotated[
        str,
        typer.Option(
            help="A --users id the run does not know: error (exit 1, nothing written) or popular "
            "(the most popular training items, score = training interaction count).",
        ),
    ] = "error",
    new_items: Annotated[
        Optional[Path],
        typer.Option(
            help="Items that arrived after training: an .npz with item_id and one array per modality the run's "
            "cold-item path fuses (--cold-path content); ranked beside the catalogue.",
        ),
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option(help="Dataset directory (default: the one in the run record).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda, cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Users scored per batch.")] = 1024,
    threads: Threads = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    quiet: Quiet = False,
) -> None:
    """Write top-k recommendations of a saved run, with the original user and item ids.

    One row per (user, rank): user_id, item_id, rank (1..k), score. Seen items (the
    user's training interactions, see --seen) are excluded unless --include-seen; a user
    with fewer than k candidates left gets fewer rows. --items restricts the candidates
    (e.g. to new items). --new-items adds items that arrived after training, scored from
    their features by the run's cold-item path. An unknown --users id is an error unless
    --unknown popular.
    The file is written under a temporary name and renamed at the end.

    Example: graphrec recommend runs/lightgcn-baby --all --k 20 --out recs.csv
    """
    from graphrec.train.recommend import (
        UNKNOWN_CHOICES,
        check_recommendations_output,
        recommend_run,
        write_recommendations,
    )

    check_recommendations_output(out, overwrite)  # before anything is read or scored
    check_apart(out, "--out", files={"--users": users, "--items": items, "--new-items": new_items},
                folders={"RUN_DIR": run_dir, "--data": data})
    if users is not None and all_users:
        raise ConfigError("--users and --all exclude each other: pass one (no option = every user)")
    if unknown not in UNKNOWN_CHOICES:
        raise ConfigError(f"--unknown {unknown!r} is not one of {', '.join(UNKNOWN_CHOICES)}")
    if unknown != "error" and users is None:
        raise ConfigError("--unknown applies to the ids of --users: pass --users FILE")
    if seen is not None and not exclude_seen:
        raise ConfigError(f"--seen {seen} names the splits whose items --exclude-seen leaves out, and --include-seen "
                          "keeps every item: drop one of them")
    splits = [s.strip() for s in (seen or "train").split(",") if s.strip()]
    if not splits:
        raise ConfigError(f"--seen {seen!r} names no split: give comma-separated split names, e.g. --seen train,valid")
    set_threads(threads)
    shown = command_progress(quiet)
    with warnings_as_lines():  # e.g. a run too old to have its checkpoint hash
        recs = recommend_run(
            run_dir,
            users=users,
            k=k,
            exclude_seen=splits if exclude_seen else False,
            items=items,
            device=resolve_device(device),
            unknown=unknown,
            batch_size=batch_size,
            data_path=data,
            progress=shown,
            new_items=new_items,
        )
    write_recommendations(recs, out, overwrite=overwrite, progress=shown)
    n_users = recs.n_users  # users with a row
    masked = f"seen {'+'.join(recs.excluded)} items excluded" if recs.excluded else "seen items included"
    typer.echo(f"wrote {out}: {len(recs)} row{'' if len(recs) == 1 else 's'}, {n_users} user"
               f"{'' if n_users == 1 else 's'}, top {k}{' at most' if len(recs) < n_users * k else ''} ({masked})")
    if recs.popular_users:
        n = len(recs.popular_users)
        typer.echo(f"note: {n} unknown user{'' if n == 1 else 's'} got the most popular training items")
