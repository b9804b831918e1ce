"""Import a dataset from a community format into a graphrec dataset directory.

Example:

    graphrec prepare --format mmrec ../shared/data/lfm2k data/lfm2k --feature text=all-MiniLM-L6-v2.npy
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from graphrec.cli._common import user_errors
from graphrec.errors import ConfigError


@user_errors
def prepare(
    src: Path = typer.Argument(..., help="Source file or directory in the chosen format."),
    out: Path = typer.Argument(..., help="Dataset directory to write."),
    fmt: str = typer.Option(..., "--format", "-f", help="mmrec, lattice, unisrec, recbole or movielens."),
    feature: List[str] = typer.Option([], "--feature", help="MODALITY=FILE feature file (repeatable), e.g. text=all-MiniLM-L6-v2.npy."),
    name: Optional[str] = typer.Option(None, help="Dataset name (default: from the source)."),
    split: str = typer.Option("auto", help="auto (keep a given split, else random), keep, random, temporal."),
    seed: int = typer.Option(0, help="Seed of a random split."),
    unseen: str = typer.Option("error", help="Users/items only in valid/test: error, drop or keep."),
    min_rating: Optional[float] = typer.Option(None, help="MovieLens: keep ratings >= this value."),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Import a dataset from a community format into a graphrec dataset directory.

    Example: graphrec prepare --format mmrec ../shared/data/lfm2k data/lfm2k --feature text=all-MiniLM-L6-v2.npy
    """
    from graphrec.data import random_split, temporal_split
    from graphrec.data.formats import read_source

    features = {}
    for spec in feature:
        mod, sep, file = spec.partition("=")
        if not sep or not mod or not file:
            raise ConfigError(f"--feature {spec!r} must look like MODALITY=FILE, e.g. image=image_feat.npy")
        features[mod] = file
    if split not in ("auto", "keep", "random", "temporal"):
        raise ConfigError(f"--split {split!r} is not one of auto, keep, random, temporal")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists: choose another OUT or pass --overwrite")
    ds = read_source(fmt, src, features=features or None, name=name, unseen=unseen, min_rating=min_rating)
    given = "valid" in ds.splits and "test" in ds.splits
    if split == "keep" and not given:
        raise ConfigError(f"{src} has no given valid/test split: use --split random or --split temporal")
    if split == "random" or (split == "auto" and not given):
        ds = random_split(ds, seed=seed)
    elif split == "temporal":
        ds = temporal_split(ds)
    ds.save(out, overwrite=overwrite)
    st = ds.stats()
    typer.echo(
        f"wrote {out}: {st['users']} users, {st['items']} items, "
        + ", ".join(f"{s} {st[s + '_interactions']}" for s in ("train", "valid", "test") if s + "_interactions" in st)
        + (f", features {st['modalities']}" if st["modalities"] else "")
    )
