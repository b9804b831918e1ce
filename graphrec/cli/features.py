"""Embed item images and texts with CLIP into a dataset directory (resumable).

Example:

    graphrec features --data data/ml-small --images ../shared/data/movielens-small/posters \\
        --image-map ../shared/data/movielens-small/links.csv --image-key tmdbId \\
        --texts ../shared/data/movielens-small/movies.csv --text-fields title,genres \\
        --model ViT-B-32 --pretrained openai --fuse
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import typer

from graphrec._atomic import check_output, check_output_folder
from graphrec.cli._common import Quiet, Threads, command_progress, resolve_device, set_threads, user_errors
from graphrec.errors import ConfigError, DataError

_RANDOM = ("none", "random")


def _echo_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    from tqdm.auto import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def _check_work_dir_apart(wdir: Path, folders: dict[str, Path]) -> None:
    """The work folder must lie apart from the dataset folders: its chunks are written
    into it and removed at the end."""
    w = wdir.resolve()
    for option, folder in folders.items():
        f = folder.resolve()
        if w == f or f in w.parents:
            raise ConfigError(
                f"--work-dir {wdir} is {'the' if w == f else 'inside the'} {option} folder {folder}: the feature chunks "
                f"would be written into the dataset; choose a --work-dir outside --data and --out"
            )
        if w in f.parents:
            raise ConfigError(
                f"--work-dir {wdir} contains the {option} folder {folder}: choose a --work-dir outside --data and --out"
            )


def _named_folder(path: Path) -> Path:
    """``path`` resolved when its last part names no folder (``.``, ``..``, ``data/..``)."""
    return path.resolve() if path.name in ("", "..") else path


def _cwd_inside(folder: Path) -> bool:
    """Whether the working directory is ``folder`` or lies inside it."""
    try:
        cwd, f = Path.cwd(), folder.resolve()
    except OSError:  # the working directory was removed
        return False
    return cwd == f or f in cwd.parents


def _interrupted(wdir: Path) -> str:
    """The line of an interrupted extraction: what was kept, and how to resume."""
    chunks = sum(1 for _ in wdir.glob("*/[0-9]*.npz")) if wdir.is_dir() else 0
    if not chunks:
        return (f"interrupted before a chunk was finished (chunks go to {wdir}): run the same command again to "
                "start over")
    kept = f"the {chunks} finished chunks are" if chunks > 1 else "the finished chunk is"
    return f"interrupted: {kept} kept in {wdir}; running the same command again resumes (--restart discards them)"


@user_errors
def features(
    data: Path = typer.Option(..., help="Dataset directory (from `graphrec prepare`)."),
    images: Optional[Path] = typer.Option(None, help="Folder of item images (JPEG, PNG, WebP)."),
    image_key: str = typer.Option(
        "item_id",
        help="What names an item's image file: item_id (IMAGE_DIR/<item_id>.<ext>), a column of --image-map, "
        "or an item field of the dataset.",
    ),
    image_map: Optional[Path] = typer.Option(
        None, help="Table (CSV/TSV/JSONL) mapping item ids to image keys, e.g. MovieLens links.csv with --image-key tmdbId."
    ),
    texts: Optional[Path] = typer.Option(None, help="Table (CSV/TSV/JSONL) of item texts with an item id column."),
    text_fields: Optional[str] = typer.Option(
        None, help="Text columns joined per item, e.g. title,description [title]; without --texts, item fields of the dataset."
    ),
    id_column: Optional[str] = typer.Option(None, help="Item id column of --texts/--image-map [item_id, movieId, asin, id, ...]."),
    model: str = typer.Option("ViT-B-32", help="open_clip model name, hf-hub:/local-dir: reference, or a model config .json."),
    pretrained: Optional[str] = typer.Option(
        None, help="open_clip weights: a tag (openai, laion2b_s34b_b79k; needs internet), a checkpoint file, or none (random weights: tests only)."
    ),
    text_model: Optional[str] = typer.Option(
        None, help="Embed texts (--texts/--text-fields) with this sentence-transformers model (name or folder) instead of CLIP."
    ),
    batch_size: int = typer.Option(64, help="Items per forward pass."),
    chunk_size: Optional[int] = typer.Option(None, help="Items per resumable chunk [16 x batch size]."),
    workers: Optional[int] = typer.Option(None, help="Image decoding threads [min(8, CPUs)]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    precision: str = typer.Option("auto", help="auto (mixed precision on CUDA), fp32, amp."),
    threads: Threads = None,
    out: Optional[Path] = typer.Option(None, help="Dataset directory to write [--data, updated in place]."),
    work_dir: Optional[Path] = typer.Option(
        None, help="Folder of resumable chunks, new or empty, outside --data/--out [.<out>.features-work beside the output]; "
        "only graphrec's chunks in it are removed at the end."
    ),
    fuse: bool = typer.Option(False, "--fuse", help="Also store the early-fused vector as modality 'fused'."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing image/text features (or an existing --out)."),
    restart: bool = typer.Option(False, "--restart", help="Discard chunks of an interrupted run instead of resuming."),
    quiet: Quiet = False,
) -> None:
    """Embed item images and texts with CLIP into a dataset directory (resumable).

    Example: graphrec features --data data/ml --images posters --image-map links.csv --image-key tmdbId
    --texts movies.csv --text-fields title,genres --model ViT-B-32 --pretrained openai --fuse
    """
    from graphrec.data import Dataset
    from graphrec.data.dataset import check_replaceable
    from graphrec.features import (
        ClipEncoder,
        SentenceTextEncoder,
        UnreadableImageWarning,
        attach_features,
        check_work_dir,
        compose_texts,
        default_work_dir,
        discard_chunks,
        extract_item_features,
        find_images,
        image_keys,
        parse_fields,
        read_item_table,
        remove_work_dir,
    )
    from graphrec.features.encoders import LargeImageWarning
    from graphrec.features.extract import model_label
    from graphrec.train.state import sigterm_as_interrupt

    if image_map is not None and images is None:
        raise ConfigError("--image-map needs --images DIR (the folder the image keys refer to)")
    if images is None and texts is None and text_fields is None:
        raise ConfigError(
            "nothing to extract: pass --images DIR and/or --texts FILE (or --text-fields to embed "
            "the dataset's own item fields)"
        )
    # options that only act on an input that was not given
    embeds_texts = texts is not None or text_fields is not None
    if text_model is not None and not embeds_texts:
        raise ConfigError(
            "--text-model embeds item texts, and none are extracted: pass --texts FILE (or --text-fields for the "
            "dataset's own item fields), or drop --text-model"
        )
    if id_column is not None and texts is None and image_map is None:
        raise ConfigError(
            "--id-column names the item id column of --texts or --image-map, and neither is given: "
            "pass one of them, or drop --id-column"
        )
    if image_key != "item_id" and images is None:
        raise ConfigError(f"--image-key {image_key} names the items' image files, and no --images DIR is given: "
                          "pass --images, or drop --image-key")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if chunk_size is not None and chunk_size < 1:
        raise ConfigError(f"--chunk-size must be at least 1, got {chunk_size}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1 (threads decoding images), got {workers}: "
                          "pass a positive number, or leave it out for min(8, CPUs)")
    # `--data .` (or `..`) inside the dataset folder: the path's last part names no folder,
    # and the work folder beside the dataset and the atomic save need its real name
    data = _named_folder(data)
    out = None if out is None else _named_folder(out)
    out_dir = out if out is not None else data
    in_place = out is None or out.resolve() == data.resolve()
    if not in_place:  # before anything is read or encoded
        check_output(out_dir, overwrite, option="--out", marker="dataset.json", what="graphrec dataset directory")
    # the save replaces the folder whole: files of the user's in it are refused now, not after the encoding
    check_replaceable(out_dir, f"{'--out' if not in_place else '--data'} {out_dir}")
    wdir = work_dir if work_dir is not None else default_work_dir(out_dir)
    if work_dir is not None:  # the resumable chunks go there (it may exist: a run to resume)
        check_output_folder(work_dir, "--work-dir")
    _check_work_dir_apart(wdir, {"--data": data, "--out": out_dir})
    # a folder of other files (the dataset, the working directory) is refused: the chunks
    # are cleaned up at the end, and only what graphrec wrote may go
    check_work_dir(wdir, "--work-dir")
    ds = Dataset.load(data)
    item_ids = ds.item_ids

    # ---- inputs, aligned with the dataset's items
    paths = None
    sources: dict[str, dict[str, Any]] = {}
    if images is not None:
        table = read_item_table(image_map, id_column) if image_map is not None else None
        keys = image_keys(item_ids, image_key, table=table, item_fields=ds.item_fields)
        paths = find_images(images, keys)
        sources["image"] = {
            "images": str(images.resolve()),
            "image_key": image_key,
            "image_map": None if image_map is None else str(image_map.resolve()),
        }
    item_texts = None
    if texts is not None or text_fields is not None:
        fields = parse_fields(text_fields or "title")
        if texts is not None:
            ttable = read_item_table(texts, id_column)
            columns = {f: ttable.lookup(f, item_ids) for f in fields}
        else:
            missing = [f for f in fields if f not in ds.item_fields]
            if missing:
                raise ConfigError(
                    f"the dataset has no item field {missing[0]!r} (fields: {', '.join(sorted(ds.item_fields)) or 'none'}): "
                    "pass --texts FILE with that column or choose other --text-fields"
                )
            columns = {f: ds.item_fields[f] for f in fields}
        item_texts = compose_texts(columns, fields)
        sources["text"] = {"texts": None if texts is None else str(texts.resolve()), "fields": list(fields)}
    # nothing matched: an all-zero feature (and an edgeless kNN graph) would be written silently
    sample_ids = ", ".join(map(str, item_ids[:3]))
    if paths is not None and not any(p is not None for p in paths):
        via = f"--image-map {image_map}" if image_map is not None else f"--image-key {image_key}"
        raise DataError(
            f"no item of {data} has an image in {images} (keys from {via}, e.g. {', '.join(map(str, keys[:3]))}; "
            f"item ids e.g. {sample_ids}): check --images, --image-key or --image-map"
        )
    if item_texts is not None and not any(item_texts):
        if texts is not None:
            ids = ", ".join(ttable.columns[ttable.id_column][:3]) or "none"
            raise DataError(
                f"no item of {data} has a text in {texts} (its ids in column {ttable.id_column!r}, e.g. {ids}; "
                f"the dataset's item ids, e.g. {sample_ids}, match none, or their {', '.join(fields)} are empty): "
                "check --texts, --id-column and --text-fields"
            )
        raise DataError(f"no item of {data} has a non-empty {', '.join(fields)}: choose other --text-fields")
    existing = [m for m in (("image",) if paths is not None else ()) + (("text",) if item_texts is not None else ()) if m in ds.item_features]
    if existing and not overwrite:
        raise ConfigError(
            f"{data} already has {' and '.join(existing)} features: pass --overwrite to replace them"
        )

    # ---- encoders
    dev = resolve_device(device)
    set_threads(threads)
    clip = None
    if paths is not None or (item_texts is not None and text_model is None):
        if pretrained is None:
            raise ConfigError(
                "--pretrained is required: an open_clip tag (e.g. openai; needs internet), a local "
                "checkpoint file, or none for random weights (tests only)"
            )
        weights = None if pretrained.lower() in _RANDOM else pretrained
        clip = ClipEncoder(model, weights, device=dev, precision=precision)
        if weights is None:
            typer.echo(f"note: {clip.model_name} has RANDOM weights (--pretrained {pretrained}): for tests and benchmarks only", err=True)
    text_encoder = None
    if item_texts is not None:
        text_encoder = SentenceTextEncoder(text_model, device=dev) if text_model is not None else clip
    if fuse:  # image and text vectors are averaged: their dimensions must agree (one may be stored)
        extracted = {"image": clip.dim if clip is not None and paths is not None else None,
                     "text": text_encoder.dim if text_encoder is not None else None}
        dims = {m: int(ds.item_features[m].shape[1]) if d is None and m in ds.item_features else d
                for m, d in extracted.items()}
        if None not in extracted.values() and dims["image"] != dims["text"]:
            raise ConfigError(
                f"--fuse averages image and text vectors, but the image dimension is {dims['image']} and the text "
                f"dimension {dims['text']} ({text_model}): use CLIP for both or drop --fuse"
            )
        if None not in dims.values() and dims["image"] != dims["text"]:
            stored = "image" if extracted["image"] is None else "text"
            raise ConfigError(
                f"--fuse averages image and text vectors, but the stored {stored} features are {dims[stored]}-d and "
                f"this extraction's {'text' if stored == 'image' else 'image'} vectors {dims['text' if stored == 'image' else 'image']}-d: "
                f"extract both with one model (pass --{'images DIR' if stored == 'image' else 'texts FILE'} too), or drop --fuse"
            )
        # equal dimensions are not enough: vectors of two models live in different spaces
        stored_records = ds.meta.get("features", {})
        sources_of = {"image": clip.describe() if clip is not None and paths is not None else None,
                      "text": text_encoder.describe() if text_encoder is not None else None}
        labels = {m: model_label(rec if rec is not None else stored_records.get(m, {}) if m in ds.item_features else {})
                  for m, rec in sources_of.items()}
        if None not in labels.values() and labels["image"] != labels["text"]:
            where = {m: "this extraction's" if sources_of[m] is not None else "the stored" for m in labels}
            raise ConfigError(
                f"--fuse averages image and text vectors, but {where['image']} image features come from "
                f"{labels['image']} and {where['text']} text features from {labels['text']}: vectors of different "
                "models live in different spaces; extract both with the same --model and --pretrained (pass --images "
                "and --texts together), or drop --fuse"
            )

    # ---- extraction (resumable)
    if restart:
        discard_chunks(wdir)
    n_image = 0 if paths is None else sum(p is not None for p in paths)
    n_text = 0 if item_texts is None else sum(bool(t) for t in item_texts)
    typer.echo(
        f"{ds.name}: {ds.n_items} items"
        + (f"; {n_image} with an image file" if paths is not None else "")
        + (f"; {n_text} with a text" if item_texts is not None else "")
        + f"; device {dev}; chunks in {wdir}"
    )
    # Ctrl-C, or SIGTERM (kill, a batch system's time limit) as graphrec train treats it:
    # the finished chunks stay in the work folder and the same command resumes from them
    try:
        with sigterm_as_interrupt(), warnings.catch_warnings():
            warnings.simplefilter("always", UnreadableImageWarning)
            warnings.simplefilter("always", LargeImageWarning)
            warnings.showwarning = _echo_warning
            result = extract_item_features(
                ds.n_items,
                image_paths=paths,
                texts=item_texts,
                image_encoder=clip,
                text_encoder=text_encoder,
                batch_size=batch_size,
                chunk_size=chunk_size,
                work_dir=wdir,
                workers=workers,
                progress=command_progress(quiet),
            )
            # every matched image file unreadable: the check before the work knows only which
            # files exist, decoding tells which can be read (texts cannot fail: the empty ones
            # were refused above). Refused before anything is saved; the chunks stay, so the
            # same command resumes once the images are fixed.
            img = result.get("image")
            if img is not None and img.n_present == 0:
                raise DataError(
                    f"none of the {len(img.unreadable)} image files of {data}'s items in {images} could be read "
                    f"(first: {img.unreadable[0]}; see the warnings above), so the image features would be all "
                    "zero: fix or replace them (or check --images, --image-key, --image-map) and run the same "
                    f"command again; the finished chunks are kept in {wdir}"
                )
            new_ds, notes = attach_features(ds, result, fuse=fuse, sources=sources)
            cwd_inside = _cwd_inside(out_dir)
            new_ds.save(out_dir, overwrite=True)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_interrupted(wdir)) from None
    remove_work_dir(wdir)  # its chunks and marker; the folder only when graphrec made it
    for f in result.values():
        typer.echo(f.summary())
    for note in notes:
        typer.echo(note)
    # what build-graph can fuse: the fused vector, else image and text when their dimensions
    # agree, else the modalities extracted now
    have = [m for m in ("image", "text") if m in new_ds.item_features]
    if "fused" in new_ds.item_features:
        mods = "fused"
    elif len({new_ds.item_features[m].shape[1] for m in have}) <= 1:
        mods = ",".join(have)
    else:
        mods = ",".join(m for m in have if m in result)
    typer.echo(f"wrote {out_dir} (features: {', '.join(new_ds.modalities)}); next: graphrec build-graph --data {out_dir} --modalities {mods}")
    if cwd_inside:  # the save put a new folder in place of the old one
        typer.echo(
            f"note: {out_dir} was replaced by its new version: a shell whose working directory is inside it still "
            f"sees the old, removed folder: cd {out_dir} again",
            err=True,
        )
