"""Import a dataset from a community format into a graphrec dataset directory.

Example:

    graphrec prepare --format mmrec ../shared/data/lfm2k data/lfm2k --feature text=all-MiniLM-L6-v2.npy

Your own table of interactions (CSV/TSV with a header; side files are found beside it):

    graphrec prepare --format csv raw/orders.csv data/shop --user-col customer_id --item-col product_id \\
        --time-col ordered_at --items products.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from graphrec._atomic import check_output
from graphrec.cli._common import user_errors, warnings_as_lines
from graphrec.errors import ConfigError

SPLIT_CHOICES = ("auto", "keep", "random", "temporal")  # graphrec.data.splits.SPLIT_CHOICES
_CSV = "The csv format (a plain table of interactions)"  # the help panel of its options


def cross_split_note(ds) -> str | None:
    """A note on (user, item) pairs that a given split lists in more than one split (MMRec's
    x_label, RecBole's benchmark files allow it); None when there are none."""
    names = [s for s in ("train", "valid", "test") if s in ds.splits]
    total = sum((ds.splits[s] != 0).astype("int32") for s in names)
    n = int((total.data > 1).sum())
    if not n:
        return None
    parts = []
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            both = int(ds.splits[a].multiply(ds.splits[b]).nnz)
            if both:
                parts.append(f"{both} in {a} and {b}")
    with_train = any(p.split(" in ", 1)[1].startswith("train") for p in parts)
    return (
        f"note: {n} (user, item) pair{'s appear' if n > 1 else ' appears'} in more than one split "
        f"({', '.join(parts)}): kept in each, as MMRec/RecBole read {'them' if n > 1 else 'it'}; the recbole "
        f"protocol ranks a repeated pair in its later split, where it can be a hit (as RecBole)"
        + ("; --protocol mmrec masks the ones also in train (as MMRec)" if with_train else "")
    )


def duplicate_notes(ds) -> list[str]:
    """Notes on the rows a reader merged (``meta["duplicate_rows"]``: ``{file: rows}``)."""
    recbole = ds.meta.get("format") == "recbole"
    notes = []
    for path, n in (ds.meta.get("duplicate_rows") or {}).items():
        notes.append(
            f"note: {n} duplicate row{'s' if n > 1 else ''} of {path} merged (a (user, item) pair listed again in the "
            "same split is one interaction" + (", with its latest timestamp" if ds.timestamps is not None else "")
            + ("; RecBole keeps every row unless rm_dup_inter is set)" if recbole else ")")
        )
    return notes


def unused_items_note(ds) -> str | None:
    """A note on the items of an MMRec source without any interaction (feature rows or
    id-map entries beyond the items used, gaps in the itemIDs), or of a csv source's
    item table; None when there are none."""
    import numpy as np

    csv_items = ds.meta.get("format") == "csv" and ds.meta.get("items")
    if ds.meta.get("format") != "mmrec" and not csv_items:
        return None
    used = np.zeros(ds.n_items, dtype=bool)
    for m in ds.splits.values():
        used[m.indices] = True
    n = int((~used).sum())
    if not n:
        return None
    if csv_items:
        return (f"note: {n} of the {ds.n_items} items of {ds.meta['items']} {'has' if n == 1 else 'have'} no "
                "interactions: kept as items, ranked but never a target (new items: the content models can "
                "recommend them; an ID-only model, lightgcn or mf, ranks them by embeddings nothing trained)")
    dropped = " or whose rows --unseen drop removed" if ds.meta.get("unseen_dropped") else ""
    line = (
        f"note: {n} of {ds.n_items} items have no interactions in {ds.meta.get('source')} (feature rows, id-map "
        f"entries or itemIDs that no row uses{dropped}): they are kept as items, ranked but never a target"
    )
    if not used[-1]:
        last = int(np.flatnonzero(used)[-1]) if used.any() else -1
        line += (
            f"; MMRec counts max(itemID) + 1 items, so export-mmrec needs --drop-trailing-items to leave out the "
            f"last {ds.n_items - 1 - last} (or keep only the first {last + 1} rows of the feature files and of "
            "i_id_mapping.csv, and prepare again)"
        )
    return line


def unread_features_note(fmt: str, src: Path, features: dict[str, str]) -> str | None:
    """A note when an MMRec or LATTICE source folder holds ``.npy`` files and no
    ``--feature`` was given: the dataset gets no item features, which only the
    multimodal models miss, at training time; None otherwise."""
    if fmt not in ("mmrec", "lattice") or features:
        return None
    from graphrec.data.formats.mmrec import USER_GRAPH_FILE

    folder = src if src.is_dir() else src.parent
    # MMRec's user_graph_dict.npy (DRAGON's user-user graph) holds no item features
    found = sorted(p.name for p in folder.glob("*.npy") if p.is_file() and p.name != USER_GRAPH_FILE)
    if not found:
        return None
    # MMRec's own names (image_feat.npy, text_feat.npy) give their modality
    flags = " ".join(f"--feature {f[: -len('_feat.npy')]}={f}" for f in found if f.endswith("_feat.npy"))
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return (
        f"note: {folder} holds {shown} but no --feature was given: the dataset has no item features, which "
        f"the multimodal models need; to read them, pass {flags or '--feature MODALITY=FILE for each (e.g. --feature MODALITY=' + found[0] + '), MODALITY naming what the file holds: image, text, audio, ...'}"
    )


@user_errors
def prepare(
    src: Path = typer.Argument(..., help="Source file or directory in the chosen format."),
    out: Path = typer.Argument(..., help="Dataset directory to write."),
    fmt: str = typer.Option(..., "--format", "-f", help="mmrec, lattice, unisrec, recbole, movielens, or csv (a plain "
                            "CSV/TSV of interactions: the csv options below)."),
    feature: List[str] = typer.Option([], "--feature", help="A modality's features (repeatable). mmrec, lattice: MODALITY=FILE, a .npy "
                                       "(relative to the source folder), e.g. text=all-MiniLM-L6-v2.npy; csv: the same, row r = the r-th "
                                       "item of --items; unisrec: "
                                       "MODALITY=SUFFIX of the file NAME.SUFFIX, e.g. text=feat1CLS (default: "
                                       "text=feat1CLS, image=feat3CLS where they exist); recbole, movielens: none."),
    name: Optional[str] = typer.Option(None, help="Dataset name (default: from the source)."),
    split: str = typer.Option("auto", help="auto (keep a given split, else random), keep, random, temporal."),
    seed: int = typer.Option(0, help="Seed of a random split."),
    unseen: str = typer.Option("error", help="Users/items only in valid/test: error, drop or keep."),
    min_rating: Optional[float] = typer.Option(None, help="MovieLens, csv: keep ratings >= this value."),
    feature_dim: Optional[int] = typer.Option(None, help="unisrec: the dimension of the raw float32 feature files "
                                              "(needed without NAME.item2index, which fixes the item count)."),
    user_col: Optional[str] = typer.Option(None, help="csv: the user id column [user_id, userId or user].",
                                           rich_help_panel=_CSV),
    item_col: Optional[str] = typer.Option(None, help="csv: the item id column [item_id, itemId or item].",
                                           rich_help_panel=_CSV),
    time_col: Optional[str] = typer.Option(None, help="csv: the time column, unix seconds or ISO 8601 "
                                           "[timestamp when present; '' for none].", rich_help_panel=_CSV),
    rating_col: Optional[str] = typer.Option(None, help="csv: the rating column that --min-rating filters on "
                                             "[rating when present].", rich_help_panel=_CSV),
    split_col: Optional[str] = typer.Option(None, help="csv: a column labelling each row train, valid or test "
                                            "(a given split; default: none, every row is train).",
                                            rich_help_panel=_CSV),
    items: Optional[Path] = typer.Option(None, help="csv: a table of items (one row each, by item id): its columns "
                                         "become item fields, its rows the item order and the rows of --feature "
                                         "files; its items without interactions are kept.", rich_help_panel=_CSV),
    users: Optional[Path] = typer.Option(None, help="csv: a table of users (one row each, by user id): its columns "
                                         "become user fields.", rich_help_panel=_CSV),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Import a dataset from a community format into a graphrec dataset directory.

    Example: graphrec prepare --format mmrec ../shared/data/lfm2k data/lfm2k --feature text=all-MiniLM-L6-v2.npy

    Your own interactions: graphrec prepare --format csv orders.csv data/shop --user-col customer_id
    --item-col product_id --time-col ordered_at --items products.csv (docs/data-formats.md)
    """
    from graphrec.data.dataset import check_dataset_name, check_modality_name, check_replaceable
    from graphrec.data.splits import apply_split
    from graphrec.data.formats import read_source

    features = {}
    for spec in feature:
        mod, sep, file = spec.partition("=")
        if not sep or not mod or not file:
            raise ConfigError(f"--feature {spec!r} must look like MODALITY=FILE, e.g. image=image_feat.npy "
                              "(unisrec: MODALITY=SUFFIX, e.g. text=feat1CLS)")
        check_modality_name(mod, f"--feature {spec!r}", ConfigError)
        if mod in features:
            raise ConfigError(f"--feature gives modality {mod!r} twice ({features[mod]} and {file}): "
                              "give each modality once")
        features[mod] = file
    if split not in SPLIT_CHOICES:
        raise ConfigError(f"--split {split!r} is not one of {', '.join(SPLIT_CHOICES)}")
    if seed < 0:  # before the source is read (the split's own check says 'seed', not the flag)
        raise ConfigError(f"--seed must be at least 0, got {seed}")
    if name is not None:  # it becomes part of file names (NAME.inter of export-mmrec, graphs/NAME)
        check_dataset_name(name, "--name", ConfigError)
    check_output(out, overwrite, option="OUT", marker="dataset.json", what="graphrec dataset directory")
    if overwrite:  # --overwrite replaces the folder as a whole: nothing but a dataset's files may be in it
        check_replaceable(out, f"OUT {out}")
    # the readers' notes (e.g. a RecBole float_seq field read as text) once the input and
    # its split are accepted: a refused one is the only line
    with warnings_as_lines(defer=True):
        ds = read_source(fmt, src, features=features or None, name=name, unseen=unseen, min_rating=min_rating,
                         dim=feature_dim, user_col=user_col, item_col=item_col, time_col=time_col,
                         rating_col=rating_col, split_col=split_col, items=items, users=users)
        notes = [line for line in (*duplicate_notes(ds), unused_items_note(ds),
                                   unread_features_note(fmt, src, features)) if line]
        resplit = apply_split(ds, split, seed=seed, source=src)
    kept, ds = resplit is ds, resplit  # kept: the split as given; the dataset as read is freed
    for line in notes:  # once the split is accepted: a refused one is the only line
        typer.secho(line, err=True, fg=typer.colors.YELLOW)
    ds.save(out, overwrite=overwrite)
    st = ds.stats()
    typer.echo(
        f"wrote {out}: {st['users']} users, {st['items']} items, "
        + ", ".join(f"{s} {st[s + '_interactions']}" for s in ("train", "valid", "test") if s + "_interactions" in st)
        + (", features " + ", ".join(f"{m} ({d})" for m, d in st["modalities"].items()) if st["modalities"] else "")
    )
    if kept:
        typer.echo("split: as given in the source")
        note = cross_split_note(ds)
        if note:
            typer.echo(note)
    else:
        hint = "; --split temporal holds out each user's latest" if ds.timestamps is not None else ""
        typer.echo(f"split: {ds.meta.get('split')}"
                   + (f" (the source gives no valid/test split{hint})" if split == "auto" else ""))
