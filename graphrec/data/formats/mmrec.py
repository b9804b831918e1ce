"""MMRec interaction files: ``{name}.inter`` with an ``x_label`` split column.

Format (as used by MMRec and the datasets built for it, e.g. ``lfm2k/lfm2k.inter``):

* one tab-separated text file ``{name}.inter`` with a header line; columns are found by
  name, in any order:

  - ``userID``: the user id, taken as an opaque token (kept as the user id string);
  - ``itemID``: the item id, a non-negative **integer index** (item ``i`` is row ``i``
    of every feature file);
  - ``x_label``: ``0`` = train, ``1`` = valid, ``2`` = test;
  - ``timestamp`` (optional): a number, kept as the interaction time;
  - any other column (``rating``, ...) is ignored: every row is an interaction.

* feature files (optional, passed as ``features={"text": "x.npy", ...}``, paths relative
  to the folder of the ``.inter`` file unless absolute): 2-D ``.npy`` arrays, row ``i`` =
  item index ``i``, loaded without pickle and cast to float32.

Mapping to :class:`~graphrec.data.dataset.Dataset`:

* the split of a row is its ``x_label``; a pair listed twice in a split is kept once
  (latest timestamp);
* item ids are the indices as strings, ``item_ids = arange(n_items)``, so item index
  == MMRec item id. ``n_items`` is the number of feature rows when features are given
  (an ``itemID`` >= that is an error), else ``max(itemID) + 1`` (ids that never occur
  become items without interactions, which keeps index == id);
* users are the distinct ``userID`` values, in numeric order when all are integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats._common import (
    SPLIT_NAMES,
    LazyWhere,
    PathLike,
    check_feature_matrix,
    check_unseen,
    find_prefix,
    index_ids,
    item_count_from_features,
    load_feature_files,
    parse_float,
    parse_int,
    read_table,
    require_file,
)
from graphrec.errors import DataError

__all__ = ["read_mmrec"]

USER_COL = "userID"
ITEM_COL = "itemID"
LABEL_COL = "x_label"
TIME_COL = "timestamp"


def _inter_file(path: Path, name: str | None) -> Path:
    if path.is_dir():
        prefix = find_prefix(path, ".inter", name, "MMRec")
        return require_file(
            path / f"{prefix}.inter", "MMRec interaction file", "check name= or pass the .inter file itself"
        )
    return require_file(path, "MMRec interaction file", "pass the dataset folder or its .inter file")


def read_mmrec(
    path: PathLike,
    *,
    features: Mapping[str, PathLike] | None = None,
    unseen: str = "error",
    name: str | None = None,
) -> Dataset:
    """Read an MMRec dataset (module doc) into a :class:`Dataset`.

    Args:
        path: the dataset folder (its ``{name}.inter`` is used; ``name`` defaults to the
            folder name, or the only ``.inter`` file) or the ``.inter`` file itself.
        features: ``{modality: .npy file}``; relative paths are taken from the folder of
            the ``.inter`` file.
        unseen: users/items that occur in valid/test but never in train: ``"error"``,
            ``"drop"`` or ``"keep"``.
        name: dataset name (and file prefix when ``path`` is a folder); defaults to the
            ``.inter`` file's stem.
    """
    inter = _inter_file(Path(path), name)
    table = read_table(inter)
    table.col(USER_COL, f"MMRec needs columns {USER_COL}, {ITEM_COL}, {LABEL_COL}")
    items = parse_int(table, ITEM_COL)
    labels = parse_int(table, LABEL_COL, what="a split label (0 train, 1 valid, 2 test)")
    bad = labels > 2
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{inter} line {table.line(k)}: {LABEL_COL} {int(labels[k])} is not a split label: "
            "use 0 (train), 1 (valid) or 2 (test)"
        )
    users = np.array(table.col(USER_COL), dtype=str)
    ts = parse_float(table, TIME_COL) if table.has(TIME_COL) else None

    feats = load_feature_files(features, inter.parent)
    n_feat = item_count_from_features(feats)
    if n_feat is not None:
        too_big = items >= n_feat
        if too_big.any():
            k = int(np.flatnonzero(too_big)[0])
            mod, (_, fpath) = next(iter(feats.items()))
            raise DataError(
                f"{inter} line {table.line(k)}: itemID {int(items[k])} has no feature row "
                f"({fpath} has {n_feat} rows for items 0..{n_feat - 1}): give one feature row "
                "per item index"
            )
        n_items = n_feat
    else:
        n_items = int(items.max()) + 1
    item_ids = index_ids(n_items)
    item_features = {
        mod: check_feature_matrix(x, fpath, mod, item_ids) for mod, (x, fpath) in feats.items()
    }

    split = SPLIT_NAMES[labels]
    check_unseen(users, items, split, unseen, LazyWhere(lambda k: f"{inter} line {table.line(k)}", len(split)))
    return build_dataset(
        users,
        items,
        split,
        timestamps=ts,
        item_ids=item_ids,
        item_features=item_features,
        name=name or inter.stem,
        source=str(inter),
        meta={"format": "mmrec", "source": str(inter)},
        unseen=unseen,
    )
