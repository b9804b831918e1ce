"""MMRec interaction files: read and write ``{name}.inter`` with an ``x_label`` split
column, the id maps and the two feature files.

Format (as used by MMRec and the datasets built for it, e.g. ``lfm2k/lfm2k.inter``):

* one tab-separated text file ``{name}.inter`` with a header line; columns are found by
  name, in any order:

  - ``userID``: the user id, taken as an opaque token (kept as the user id string,
    without surrounding whitespace, as MMRec's pandas reader has it; a value pandas
    reads as missing, ``NA``, ``nan``, ..., is an error), or a user index
    ``0..n-1`` when ``u_id_mapping.csv`` is present;
  - ``itemID``: the item id, a non-negative **integer index** (item ``i`` is row ``i``
    of every feature file);
  - ``x_label``: ``0`` = train, ``1`` = valid, ``2`` = test;
  - ``timestamp`` (optional): a number, kept as the interaction time;
  - any other column (``rating``, ...) is ignored: every row is an interaction.

* id maps (optional, in the folder of the ``.inter`` file; MMRec's preprocessing writes
  them): ``u_id_mapping.csv`` and ``i_id_mapping.csv``, tab-separated, a header of two
  columns, one of them ``userID`` (resp. ``itemID``, the index used in the ``.inter``
  file) and the other the original id, whatever its name (MMRec writes
  ``user_id`` and ``asin``). Cells are CSV-unquoted as pandas reads them (see
  :func:`~graphrec.data.formats._common.unquote_cell`). Indices must be ``0..n-1``.

* feature files (optional, passed as ``features={"text": "x.npy", ...}``, paths relative
  to the folder of the ``.inter`` file unless absolute): 2-D ``.npy`` arrays, row ``i`` =
  item index ``i``, loaded without pickle and cast to float32.

Mapping to :class:`~graphrec.data.dataset.Dataset`:

* the split of a row is its ``x_label``; a pair listed twice in a split is kept once
  (latest timestamp), the repeated rows counted in ``meta["duplicate_rows"]``
  (``{file: rows}``; ``graphrec prepare`` prints a note);
* with ``i_id_mapping.csv``: the item ids are the original ids in index order and
  ``n_items`` is the number of ids listed (also items without interactions); without
  it, the item ids are the indices as strings, ``item_ids = arange(n_items)``, so item
  index == MMRec item id, and ``n_items`` is the number of feature rows when features
  are given (an ``itemID`` >= that is an error), else ``max(itemID) + 1`` (ids that
  never occur become items without interactions, which keeps index == id);
* with ``u_id_mapping.csv``: the user ids are the original ids in index order (also
  users without interactions); without it, users are the distinct ``userID`` values,
  in numeric order when all are integers.

:func:`write_mmrec` writes this layout (``{name}.inter``, both id maps,
``image_feat.npy`` / ``text_feat.npy``); reading it back with the written modalities
gives the same :meth:`~graphrec.data.dataset.Dataset.fingerprint` for a dataset that
holds nothing MMRec cannot (see :func:`write_mmrec`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from graphrec._checks import counted
from graphrec._atomic import atomic_dir
from graphrec.data.dataset import SPLITS, Dataset, IdColumn, build_dataset, dataset_name_from
from graphrec.data.formats._common import (
    SPLIT_NAMES,
    ColumnCheck,
    Factorizer,
    FloatCheck,
    IntCheck,
    LazyWhere,
    PathLike,
    Table,
    TableScan,
    TokenCheck,
    check_earlier_export,
    check_feature_matrix,
    check_dense_indices,
    check_not_missing,
    check_tab_separated,
    check_unseen,
    duplicate_rows,
    find_prefix,
    id_column,
    index_from_map,
    index_ids,
    item_count_from_features,
    load_feature_files,
    parse_int,
    quote_cell,
    read_table,
    require_file,
    run_checks,
)
from graphrec.errors import DataError

__all__ = ["read_mmrec", "write_mmrec", "writes_timestamps", "mmrec_slots", "trailing_unused_items",
           "user_graph_dict", "FEATURE_FILES", "USER_MAP", "ITEM_MAP", "USER_GRAPH_FILE", "USER_GRAPH_NEIGHBOURS"]

USER_COL = "userID"
ITEM_COL = "itemID"
LABEL_COL = "x_label"
TIME_COL = "timestamp"
RATING_COL = "rating"
USER_MAP = "u_id_mapping.csv"
ITEM_MAP = "i_id_mapping.csv"
# the original-id column names MMRec's preprocessing writes (0rating2inter.ipynb)
USER_MAP_ID = "user_id"
ITEM_MAP_ID = "asin"
# MMRec's feature slots: {slot: file name} (its dataset yaml: vision_/text_feature_file)
FEATURE_FILES: dict[str, str] = {"image": "image_feat.npy", "text": "text_feat.npy"}
#: the user-user graph MMRec's DRAGON and DualGNN read (its dataset config's ``user_graph_dict_file``)
USER_GRAPH_FILE = "user_graph_dict.npy"
#: neighbours per user MMRec's preprocessing script keeps in it (the most co-occurring)
USER_GRAPH_NEIGHBOURS = 200


def _inter_file(path: Path, name: str | None) -> Path:
    if path.is_dir():
        prefix = find_prefix(path, ".inter", name, "MMRec")
        return require_file(
            path / f"{prefix}.inter", "MMRec interaction file", "check name= (CLI: --name) or pass the .inter file itself"
        )
    return require_file(path, "MMRec interaction file", "pass the dataset folder or its .inter file")


def _read_id_map(path: Path, index_col: str, what: str) -> np.ndarray:
    """Original ids in index order from an MMRec id map (module doc)."""
    table = read_table(path, quoted_cells=True)
    check_tab_separated(table, "MMRec id maps", f"{USER_MAP_ID if index_col == USER_COL else ITEM_MAP_ID}<TAB>{index_col}")
    others = [c for c in table.columns if c != index_col]
    if not table.has(index_col) or len(others) != 1:
        raise DataError(
            f"{path} line 1: header {table.header} is not an MMRec id map: write two "
            f"tab-separated columns, the original {what} id and {index_col}"
        )
    idx = parse_int(table, index_col, what=f"a {what} index")
    mapping: dict[str, int] = {}
    for k, (orig, i) in enumerate(zip(table.col(others[0]), idx.tolist())):
        if orig in mapping:
            raise DataError(
                f"{path} line {table.line(k)}: {what} {orig!r} is listed twice: keep one line per id"
            )
        mapping[orig] = i
    return index_from_map(mapping, path, what)


def _check_in_map(
    idx: np.ndarray, n: int, col: str, table_path: Path, line_of: Callable[[int], int], map_path: Path
) -> None:
    """An index of column ``col`` beyond the ``n`` ids of ``map_path`` is an error naming its line."""
    bad = idx >= n
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table_path} line {line_of(k)}: {col} {int(idx[k])} is not in {map_path.name} "
            f"(indices 0..{n - 1}): add it to {map_path} or remove the row"
        )


def _label_limit(table: Table, values: list[str], labels: np.ndarray) -> DataError | None:
    """An x_label above 2 (IntCheck's third check)."""
    bad = labels > 2
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        return DataError(
            f"{table.path} line {table.line(k)}: {LABEL_COL} {int(labels[k])} is not a split label: "
            "use 0 (train), 1 (valid) or 2 (test)"
        )
    return None


def _empty_user(table: Table, k: int) -> DataError:
    return DataError(f"{table.path} line {table.line(k)}: {USER_COL} is empty: give every row its user")


def _user_not_missing(table: Table, cells: list[str]) -> DataError | None:
    try:
        check_not_missing(table, USER_COL, cells, "user", "MMRec")
    except DataError as e:
        return e
    return None


def read_mmrec(
    path: PathLike,
    *,
    features: Mapping[str, PathLike] | None = None,
    unseen: str = "error",
    name: str | None = None,
    chunk_bytes: int | None = None,
) -> Dataset:
    """Read an MMRec dataset (module doc) into a :class:`Dataset`.

    Args:
        path: the dataset folder (its ``{name}.inter`` is used; ``name`` defaults to the
            folder name, or the only ``.inter`` file) or the ``.inter`` file itself.
            ``u_id_mapping.csv`` / ``i_id_mapping.csv`` beside the ``.inter`` file, when
            present, give the original ids (module doc).
        features: ``{modality: .npy file}``; relative paths are taken from the folder of
            the ``.inter`` file.
        unseen: users/items that occur in valid/test but never in train: ``"error"``,
            ``"drop"`` or ``"keep"``.
        name: dataset name (and file prefix when ``path`` is a folder); defaults to the
            ``.inter`` file's stem.
        chunk_bytes: the ``.inter`` file is read this many bytes at a time (default
            :data:`~graphrec.data.formats._common.CHUNK_BYTES`); only memory depends on it.
    """
    inter = _inter_file(Path(path), name)
    user_map, item_map = inter.parent / USER_MAP, inter.parent / ITEM_MAP
    scan = TableScan(inter, chunk_bytes=chunk_bytes)
    # the checks of the rows, in the order of the whole-file reader's; the user ids are
    # indices into u_id_mapping.csv when there is one (checked at the end, with the map)
    checks: dict[str, ColumnCheck] = {}
    if scan.has(ITEM_COL):
        checks[ITEM_COL] = IntCheck(ITEM_COL)
    if scan.has(LABEL_COL):
        checks[LABEL_COL] = IntCheck(LABEL_COL, what="a split label (0 train, 1 valid, 2 test)",
                                     limit=_label_limit, dtype=np.int8)
    if scan.has(TIME_COL):
        checks[TIME_COL] = FloatCheck(TIME_COL, finite=True)
    user_codes = Factorizer()
    has_user_map = user_map.is_file()
    if scan.has(USER_COL):
        if has_user_map:
            checks[USER_COL] = IntCheck(USER_COL, what=f"a user index (the users are listed in {USER_MAP})")
        else:
            # a token, without the whitespace around it: MMRec's pandas reader parses the
            # userID column as numbers, so ' 1', '1 ' and '1' are one user there too
            checks[USER_COL] = TokenCheck(USER_COL, user_codes, _user_not_missing, strip=True, empty=_empty_user)
    run_checks(scan, list(checks.values()))
    table = scan.head()
    check_tab_separated(table, "MMRec .inter files", f"{USER_COL}<TAB>{ITEM_COL}<TAB>{RATING_COL}<TAB>{LABEL_COL}")
    table.col(USER_COL, f"MMRec needs columns {USER_COL}, {ITEM_COL}, {LABEL_COL}")
    table.col(ITEM_COL)
    items = checks[ITEM_COL].values()
    table.col(LABEL_COL)
    labels = checks[LABEL_COL].values()
    ts = checks[TIME_COL].values() if TIME_COL in checks else None

    user_ids: np.ndarray | None = None
    if has_user_map:
        user_ids = _read_id_map(user_map, USER_COL, "user")
        uidx = checks[USER_COL].values()
        _check_in_map(uidx, len(user_ids), USER_COL, inter, scan.line, user_map)
        users = IdColumn(uidx, user_ids)
    else:
        users = id_column(checks[USER_COL].values(), user_codes)
    del user_codes, checks

    feats = load_feature_files(features, inter.parent)
    if item_map.is_file():
        item_ids = _read_id_map(item_map, ITEM_COL, "item")
        _check_in_map(items, len(item_ids), ITEM_COL, inter, scan.line, item_map)
        raw_items = IdColumn(items, item_ids)
    else:
        n_feat = item_count_from_features(feats)
        if n_feat is not None:
            too_big = items >= n_feat
            if too_big.any():
                k = int(np.flatnonzero(too_big)[0])
                mod, (_, fpath) = next(iter(feats.items()))
                raise DataError(
                    f"{inter} line {scan.line(k)}: itemID {int(items[k])} has no feature row "
                    f"({fpath} has {n_feat} rows for items 0..{n_feat - 1}): give one feature row "
                    "per item index"
                )
            n_items = n_feat
        else:
            n_items = check_dense_indices(
                items, lambda k: f"{inter} line {scan.line(k)}", ITEM_COL,
                f"map the original ids to indices 0..n-1 in the .inter file and list them in {ITEM_MAP} "
                f"({ITEM_MAP_ID}<TAB>{ITEM_COL}); if they really are indices, give the feature files, whose rows then "
                "define the items",
            )
        item_ids = index_ids(n_items)
        raw_items = IdColumn(items, item_ids)
    item_features = {
        mod: check_feature_matrix(x, fpath, mod, item_ids) for mod, (x, fpath) in feats.items()
    }

    meta: dict[str, object] = {"format": "mmrec", "source": str(inter)}
    maps = [f.name for f in (user_map, item_map) if f.is_file()]
    if maps:
        meta["id_maps"] = maps
    split = IdColumn(labels, SPLIT_NAMES)
    dups = duplicate_rows(users, raw_items, split, np.zeros(len(split), dtype=np.int8), [str(inter)])
    if dups:
        meta["duplicate_rows"] = dups
    check_unseen(users, raw_items, split, unseen, LazyWhere(lambda k: f"{inter} line {scan.line(k)}", len(split)))
    return build_dataset(
        users,
        raw_items,
        split,
        timestamps=ts,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        name=name or dataset_name_from(inter.stem),
        source=str(inter),
        meta=meta,
        unseen=unseen,
    )


# ---------------------------------------------------------------------- writing
def mmrec_slots(dataset: Dataset, image: str | None = None, text: str | None = None) -> dict[str, str]:
    """``{slot: modality}``: which modality :func:`write_mmrec` writes as
    ``image_feat.npy`` (slot ``image``) and ``text_feat.npy`` (slot ``text``).

    ``image`` / ``text`` name a modality of ``dataset``; ``None`` takes the modality named
    like the slot when the dataset has one (and no other slot took it). A modality that
    would be left out while a slot is free is an error (say which slot gets it); with
    both slots filled, further modalities are not written. A dataset without features
    gives ``{}``.
    """
    mods = list(dataset.item_features)
    has = ", ".join(mods) or "none"
    chosen: dict[str, str] = {}
    for slot, given in (("image", image), ("text", text)):
        if given is None:
            continue
        if given not in dataset.item_features:
            raise DataError(
                f"{slot}={given!r} (CLI: --{slot}): dataset {dataset.name!r} has no modality "
                f"{given!r} (it has: {has}): choose one of those"
            )
        chosen[slot] = given
    if image is not None and image == text:
        raise DataError(
            f"image and text (CLI: --image, --text) both name modality {image!r}: give each "
            "MMRec feature file a different modality"
        )
    for slot in FEATURE_FILES:
        if slot not in chosen and slot in dataset.item_features and slot not in chosen.values():
            chosen[slot] = slot
    left = [m for m in mods if m not in chosen.values()]
    free = [s for s in FEATURE_FILES if s not in chosen]
    if left and free:
        slot = free[0]
        raise DataError(
            f"dataset {dataset.name!r} has no modality named {slot!r} for MMRec's "
            f"{FEATURE_FILES[slot]} and {', '.join(repr(m) for m in left)} would not be written "
            f"(modalities: {has}): choose one with {slot}=MODALITY (CLI: --{slot} MODALITY)"
        )
    return {s: chosen[s] for s in FEATURE_FILES if s in chosen}


def _fmt_number(x: float) -> str:
    """Shortest text that reads back as the same float64 (integers without ``.0``)."""
    if np.isfinite(x) and float(x).is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(float(x))


def _check_ids(ids: np.ndarray, what: str) -> list[str]:
    cells = ids.tolist()
    for v in cells:
        if "\t" in v or "\n" in v or "\r" in v:
            raise DataError(
                f"{what} id {v!r} contains a tab or line break, which MMRec's tab-separated id "
                "map cannot hold: replace it before writing"
            )
    return [quote_cell(v) for v in cells]


def _write_lines(path: Path, header: list[str], rows: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        if rows:
            f.write("\n".join(rows) + "\n")


def writes_timestamps(dataset: Dataset) -> bool:
    """Whether :func:`write_mmrec` writes a ``timestamp`` column: when every split has
    timestamps (a partial column would mix times and blanks)."""
    return dataset.timestamps is not None and all(s in dataset.timestamps for s in SPLITS)


def write_mmrec(
    dataset: Dataset,
    out_dir: PathLike,
    name: str | None = None,
    *,
    image: str | None = None,
    text: str | None = None,
    overwrite: bool = False,
    drop_trailing_items: bool = False,
    user_graph: sp.spmatrix | sp.sparray | None = None,
) -> Path:
    """Write ``dataset`` as an MMRec dataset folder ``out_dir`` (atomically).

    ``name`` (default ``dataset.name``) must be ``out_dir``'s folder name: MMRec reads
    ``{data_path}/{name}/{name}.inter``. Files:

    * ``{name}.inter``: tab-separated, header ``userID itemID rating x_label``
      (``userID itemID rating timestamp x_label`` when every split has timestamps);
      ``userID`` / ``itemID`` are the dataset's user / item indices (0-based,
      contiguous), ``rating`` is ``1`` (graphrec datasets are implicit feedback),
      ``x_label`` ``0``/``1``/``2`` = train/valid/test. Rows: train, then valid, then
      test, each by user index then item index;
    * ``u_id_mapping.csv`` (header ``user_id userID``) and ``i_id_mapping.csv`` (header
      ``asin itemID``), MMRec's own id-map layout: the original id of every user/item
      index, users and items without interactions included;
    * ``image_feat.npy`` / ``text_feat.npy``: float32, row ``i`` = item ``i``, the
      modalities chosen by :func:`mmrec_slots` (``image`` / ``text``; none are written
      for a dataset without features);
    * ``user_graph_dict.npy``, with ``user_graph`` given (the n_users x n_users training
      co-occurrence counts, e.g. :func:`graphrec.graphs.user_cooccurrence_graph` with
      ``top_k=USER_GRAPH_NEIGHBOURS``): the user-user graph MMRec's DRAGON and DualGNN
      read, in the layout of its preprocessing script (:func:`user_graph_dict`).

    Refused (:class:`DataError`, nothing written): an existing ``out_dir`` without
    ``overwrite``, or with it a folder that holds no ``.inter`` file (``overwrite``
    replaces an earlier export only); ``name`` other than the folder name; a missing or empty train, valid
    or test split (MMRec stops early on valid and reports test); an item of the last
    index without any interaction (MMRec counts ``max(itemID) + 1`` items, so it would
    see fewer items than feature rows; ``drop_trailing_items=True`` leaves the items after
    the last one with interactions out of the id map and the feature files instead: see
    :func:`trailing_unused_items`); ids with tabs or line breaks.

    Written as they are: users without interactions (in the map only; MMRec never sees
    them), items without interactions before the last index (MMRec ranks them, as
    graphrec does), and users whose only interactions are in valid/test (MMRec's
    ``filter_out_cod_start_users`` removes them from its evaluation).

    :func:`read_mmrec` (``graphrec prepare --format mmrec``) reads the folder back, with
    ``features={modality: "image_feat.npy", ...}`` for the written modalities and the
    ``unseen`` setting the dataset was made with, to the same fingerprint, unless the
    dataset holds what MMRec's layout has no place for: modalities beyond the two
    written, user/item fields, cold-item marks, or timestamps for some splits only.
    """
    out = Path(out_dir)
    name = name or dataset.name
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists: choose another output folder or pass overwrite=True")
    check_earlier_export(out)
    folder = out.resolve().name
    if name != folder:
        raise DataError(
            f"dataset name {name!r} differs from the folder name {folder!r} of {out}: MMRec reads "
            f"{{data_path}}/NAME/NAME.inter, so write to a folder named {name!r} or pass "
            f"name={folder!r} (CLI: --name {folder})"
        )
    slots = mmrec_slots(dataset, image=image, text=text)
    for s in SPLITS:
        if s not in dataset.splits or dataset.splits[s].nnz == 0:
            state = "no" if s not in dataset.splits else "an empty"
            raise DataError(
                f"dataset {dataset.name!r} has {state} {s} split: MMRec trains on train, stops "
                "early on valid and reports test, so it needs all three: re-run `graphrec prepare` "
                "with --split random or --split temporal"
            )
    n_items = dataset.n_items - trailing_unused_items(dataset)
    if n_items < dataset.n_items and not drop_trailing_items:
        n = dataset.n_items - n_items
        raise DataError(
            f"item {str(dataset.item_ids[-1])!r} (index {dataset.n_items - 1}, the last) has no "
            f"interactions: MMRec counts max(itemID) + 1 = {n_items} items but the dataset has "
            f"{dataset.n_items} (and as many feature rows): pass drop_trailing_items=True (CLI: "
            f"--drop-trailing-items) to leave the {counted(n, 'trailing item')} without interactions out of "
            "the export"
        )
    user_cells = _check_ids(dataset.user_ids, "user")
    item_cells = _check_ids(dataset.item_ids[:n_items], "item")
    neighbours = None
    if user_graph is not None:
        if user_graph.shape != (dataset.n_users, dataset.n_users):
            raise DataError(
                f"user_graph is {user_graph.shape[0]} x {user_graph.shape[1]} but the dataset has {dataset.n_users} "
                "users: pass the user co-occurrence graph of this dataset's training split"
            )
        # MMRec counts max(userID) + 1 users: the graph's rows up to the last user written
        written = np.flatnonzero(sum(np.diff(dataset.splits[s].indptr) for s in SPLITS))
        neighbours = user_graph_dict(user_graph, int(written[-1]) + 1 if len(written) else 0)

    stamps = dataset.timestamps
    with_ts = writes_timestamps(dataset)
    header = [USER_COL, ITEM_COL, RATING_COL] + ([TIME_COL] if with_ts else []) + [LABEL_COL]
    rows: list[str] = []
    for label, s in enumerate(SPLITS):
        u, i = dataset.pairs(s)
        if with_ts and stamps is not None:
            rows.extend(
                f"{a}\t{b}\t1\t{_fmt_number(t)}\t{label}"
                for a, b, t in zip(u.tolist(), i.tolist(), stamps[s].tolist())
            )
        else:
            rows.extend(f"{a}\t{b}\t1\t{label}" for a, b in zip(u.tolist(), i.tolist()))
    with atomic_dir(out, overwrite) as tmp:
        _write_lines(tmp / f"{name}.inter", header, rows)
        _write_lines(tmp / USER_MAP, [USER_MAP_ID, USER_COL], [f"{c}\t{k}" for k, c in enumerate(user_cells)])
        _write_lines(tmp / ITEM_MAP, [ITEM_MAP_ID, ITEM_COL], [f"{c}\t{k}" for k, c in enumerate(item_cells)])
        for slot, mod in slots.items():
            np.save(tmp / FEATURE_FILES[slot],
                    np.ascontiguousarray(dataset.item_features[mod][:n_items], dtype=np.float32))
        if neighbours is not None:
            np.save(tmp / USER_GRAPH_FILE, np.array(neighbours, dtype=object), allow_pickle=True)
    return out


def user_graph_dict(graph: sp.spmatrix | sp.sparray, n_users: int | None = None,
                    max_neighbours: int = USER_GRAPH_NEIGHBOURS) -> dict[int, list[list[Any]]]:
    """A user-user graph in the layout MMRec's DRAGON and DualGNN load from
    ``user_graph_dict.npy`` (``np.load(..., allow_pickle=True).item()``), which MMRec's
    ``preprocessing/dualgnn-gen-u-u-matrix.py`` writes: ``{u: [neighbours, weights]}`` for
    every user ``u`` in ``0..n_users-1`` (default: the graph's rows), ``neighbours`` the
    user indices of row ``u``'s nonzero entries by weight, largest first (equal weights:
    the lower index first; MMRec's ``torch.topk`` leaves their order unspecified), at
    most ``max_neighbours`` of them, ``weights`` their values as floats; ``[[], []]`` for
    a user without neighbours. DRAGON keeps each user's first ``k`` of them."""
    g = sp.csr_matrix(graph)
    g.sum_duplicates()
    g.eliminate_zeros()
    n = g.shape[0] if n_users is None else n_users
    rows = np.repeat(np.arange(g.shape[0]), np.diff(g.indptr))
    order = np.lexsort((g.indices, -g.data, rows))  # by row, then weight descending, then index
    cols, vals = g.indices[order], g.data[order].astype(np.float64)
    out: dict[int, list[list[Any]]] = {}
    for u in range(n):
        a, b = (int(g.indptr[u]), int(g.indptr[u + 1])) if u < g.shape[0] else (0, 0)
        b = min(b, a + max_neighbours)
        out[u] = [cols[a:b].tolist(), vals[a:b].tolist()]
    return out


def trailing_unused_items(dataset: Dataset) -> int:
    """How many items after the last one with an interaction (in any split) the dataset
    has: MMRec counts ``max(itemID) + 1`` items, so it cannot hold them."""
    used = np.zeros(dataset.n_items, dtype=bool)
    for m in dataset.splits.values():
        used[m.indices] = True
    hit = np.flatnonzero(used)
    return dataset.n_items - (int(hit[-1]) + 1 if len(hit) else 0)
