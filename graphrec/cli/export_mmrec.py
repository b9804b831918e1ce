"""Write a graphrec dataset as an MMRec dataset folder that MMRec reads with no edits.

Example:

    graphrec export-mmrec data/lfm2k mmrec_data/lfm2k
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import typer

from graphrec._atomic import check_output
from graphrec.cli._common import read_back_line, user_errors


#: MMRec's config key of each feature slot
CONFIG_KEYS = {"image": "vision_feature_file", "text": "text_feature_file"}


def mmrec_config_lines(name: str, slots: Iterable[str], timestamps: bool = True,
                       user_graph: bool = False) -> list[str]:
    """MMRec's dataset config (``src/configs/dataset/{name}.yaml``) for an exported folder
    whose feature files are those of ``slots`` (``image``, ``text``). With one of the two
    written, the other key is set to ``''``: MMRec joins both keys into paths and skips
    one that is no file, so ``''`` loads nothing and names no file that was not written.
    ``TIME_FIELD`` is named only when the ``.inter`` file has a ``timestamp`` column,
    ``user_graph_dict_file`` only when ``user_graph_dict.npy`` was written."""
    from graphrec.data.formats.mmrec import FEATURE_FILES, TIME_COL, USER_GRAPH_FILE

    slots = set(slots)
    lines = [
        "USER_ID_FIELD: userID",
        "ITEM_ID_FIELD: itemID",
        *([f"TIME_FIELD: {TIME_COL}"] if timestamps else []),
        "filter_out_cod_start_users: True",
        f"inter_file_name: '{name}.inter'",
    ]
    if slots:
        lines += [f"{CONFIG_KEYS[slot]}: '{FEATURE_FILES[slot] if slot in slots else ''}'" for slot in CONFIG_KEYS]
    if user_graph:
        lines.append(f"user_graph_dict_file: '{USER_GRAPH_FILE}'")
    lines.append('field_separator: "\\t"')
    return lines


def merge_weights_note(slots: dict[str, str]) -> str | None:
    """A note when MMRec's fixed modality weights (``mm_image_weight``: image_feat.npy's
    item graph 0.1, text_feat.npy's 0.9, in FREEDOM and DRAGON) fall on modalities that
    graphrec's default weighs otherwise: its 0.1 / 0.9 belongs to modalities named image
    and text only (others weigh equally), so ``--image audio`` would train two mixes."""
    if set(slots) != {"image", "text"} or (slots["image"], slots["text"]) == ("image", "text"):
        return None
    from graphrec.train.builders.freedom import MMREC_IMAGE_WEIGHT, freedom_modality_weights
    from graphrec.train.registry import registered_models

    models = [e.title for e in registered_models("ranking")
              if "mm_image_weight" in e.reference_names.get("mmrec", {})]
    if not models:
        return None
    img, txt = slots["image"], slots["text"]
    ours = freedom_modality_weights({img: None, txt: None}, (img, txt))
    mmrec = {img: MMREC_IMAGE_WEIGHT, txt: 1.0 - MMREC_IMAGE_WEIGHT}
    return (
        f"note: MMRec's {' and '.join(models)} merge the item graphs of image_feat.npy ({img}) and text_feat.npy "
        f"({txt}) with weights {mmrec[img]:g} / {mmrec[txt]:g} (mm_image_weight), graphrec's default with "
        f"{ours[img]:g} / {ours[txt]:g}: train graphrec with --modality-weights {img}={mmrec[img]:g},"
        f"{txt}={mmrec[txt]:g} for MMRec's merge"
    )


@user_errors
def export_mmrec(
    data: Path = typer.Argument(..., help="A dataset directory written by `graphrec prepare`."),
    out: Path = typer.Argument(
        ..., help="Folder to write, named like the dataset MMRec should see: {data_path}/{name}."
    ),
    image: Optional[str] = typer.Option(
        None, help="Modality written as image_feat.npy (default: the modality named image, if any)."
    ),
    text: Optional[str] = typer.Option(
        None, help="Modality written as text_feat.npy (default: the modality named text, if any)."
    ),
    name: Optional[str] = typer.Option(
        None, help="Dataset name = file prefix = OUT's folder name (default: the dataset's name)."
    ),
    drop_trailing_items: bool = typer.Option(
        False, "--drop-trailing-items", help="Leave out the items after the last one with interactions (MMRec counts max(itemID) + 1 items, "
                    "so it cannot hold them; without this option they are refused)."
    ),
    user_graph: bool = typer.Option(
        False, "--user-graph", help="Also write user_graph_dict.npy, the user-user graph MMRec's DRAGON and DualGNN "
        "read: each user's 200 most co-occurring users in training, as MMRec's preprocessing script writes it "
        "(built sparse here, seconds where the script takes minutes)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it holds an earlier export (a folder with a .inter file)."),
) -> None:
    """Write a graphrec dataset as an MMRec dataset folder that MMRec reads with no edits.

    Written into OUT (its folder name must be the dataset name, see --name): NAME.inter
    (userID itemID rating [timestamp] x_label; ids are graphrec's 0-based indices,
    rating 1, x_label 0/1/2 = train/valid/test), u_id_mapping.csv and i_id_mapping.csv
    (the original ids, as MMRec's preprocessing writes them) and image_feat.npy /
    text_feat.npy (row i = item i) from the modalities chosen with --image / --text;
    with --user-graph, user_graph_dict.npy (for MMRec's DRAGON and DualGNN).
    `graphrec prepare --format mmrec OUT ...` reads it back (the command is printed).
    Prints the MMRec dataset config that reads the folder.

    Example: graphrec export-mmrec data/lfm2k mmrec_data/lfm2k
    """
    from graphrec.data import Dataset
    from graphrec.data.formats.mmrec import (FEATURE_FILES, USER_GRAPH_FILE, USER_GRAPH_NEIGHBOURS, mmrec_slots,
                                             trailing_unused_items, write_mmrec, writes_timestamps)

    # --overwrite replaces an earlier export (it holds a .inter file), never another folder
    check_output(out, overwrite, option="OUT", marker="*.inter", what="folder written by export-mmrec")
    ds = Dataset.load(data)
    name = name or ds.name
    slots = mmrec_slots(ds, image=image, text=text)
    users = None
    if user_graph:
        from graphrec.graphs import user_cooccurrence_graph

        users = user_cooccurrence_graph(ds.train, top_k=USER_GRAPH_NEIGHBOURS, progress=True)
    write_mmrec(ds, out, name, image=image, text=text, overwrite=overwrite, drop_trailing_items=drop_trailing_items,
                user_graph=users)

    dropped = trailing_unused_items(ds) if drop_trailing_items else 0
    counts = ", ".join(f"{s} {ds.splits[s].nnz}" for s in ("train", "valid", "test"))
    feats = ", ".join(f"{FEATURE_FILES[s]} = {m} ({ds.item_features[m].shape[1]}-d)" for s, m in slots.items())
    if users is not None:
        feats += (", " if feats else "") + f"{USER_GRAPH_FILE} ({users.nnz} user-user edges)"
    typer.echo(f"wrote {out}: {ds.n_users} users, {ds.n_items - dropped} items, {counts}"
               + (f"; {feats}" if feats else ""))

    exact = not dropped
    if dropped:
        typer.echo(
            f"note: the last {dropped} of {ds.n_items} items (from {str(ds.item_ids[ds.n_items - dropped])!r}, index "
            f"{ds.n_items - dropped}) have no interactions and are not written (--drop-trailing-items)"
        )
    left = [m for m in ds.item_features if m not in slots.values()]
    if left:
        exact = False
        typer.echo(f"note: modalities {', '.join(left)} are not written (MMRec reads two feature files)")
    if not slots:
        typer.echo("note: the dataset has no features: only MMRec's general models (BPR, LightGCN) run on it")
    for slot in FEATURE_FILES:
        if slots and slot not in slots:
            typer.echo(
                f"note: no {FEATURE_FILES[slot]} written (no modality for MMRec's {slot} features; --{slot} "
                f"MODALITY chooses one): the config sets {CONFIG_KEYS[slot]}: '' so MMRec loads no {slot} features"
            )
    merge = merge_weights_note(slots)
    if merge:
        typer.echo(merge)
    fields = [f"user {f}" for f in ds.user_fields] + [f"item {f}" for f in ds.item_fields]
    if fields:
        exact = False
        typer.echo(f"note: fields ({', '.join(fields)}) have no place in MMRec files and are not written")
    if ds.cold_items is not None:
        exact = False
        typer.echo(
            f"note: the {len(ds.cold_items)} cold-start items are not marked in MMRec files "
            "(their training interactions are absent, as in the dataset)"
        )
    with_ts = writes_timestamps(ds)
    if ds.timestamps is not None and not with_ts:
        exact = False
        typer.echo("note: timestamps are not written (some splits have none)")
    in_train_u = np.diff(ds.train.indptr) > 0
    for s in ("valid", "test"):
        u, _ = ds.pairs(s)
        cold_u = ~in_train_u[u]
        if cold_u.any():
            typer.echo(
                f"note: {int(cold_u.sum())} {s} interactions of {len(np.unique(u[cold_u]))} users without "
                "training interactions: MMRec drops them (filter_out_cod_start_users), graphrec evaluates them"
            )

    opts = [f"--feature {m}={FEATURE_FILES[s]}" for s, m in slots.items()]
    typer.echo(read_back_line(ds, "mmrec", out, opts, exact))
    typer.echo(f"MMRec dataset config (src/configs/dataset/{name}.yaml; data_path: {out.resolve().parent}/):")
    for line in mmrec_config_lines(name, slots, timestamps=with_ts, user_graph=users is not None):
        typer.echo(f"  {line}")
    if users is None and slots:
        typer.echo(f"(MMRec's DRAGON and DualGNN also read {USER_GRAPH_FILE}: --user-graph writes it)")
