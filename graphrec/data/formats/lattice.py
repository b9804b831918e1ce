"""LATTICE json splits: ``train.json``, ``val.json``, ``test.json`` (+ id maps).

Format (LATTICE, MMHCL and their copies, e.g. ``amazon-baby/``), all in one folder:

* ``train.json``, ``val.json``, ``test.json`` (all three required): a JSON object
  ``{"<user index>": [<item index>, ...], ...}``. Item indices are non-negative JSON
  integers; a user may be missing from a file or have an empty list, but a file with no
  interaction at all is an error. The file decides the split: train, valid, test.
* ``item2id.json`` (optional): ``{"<original item id>": <index>}``, the indices being
  ``0..n-1``. When present the original ids (e.g. Amazon ASINs) become the item ids:
  ``item_ids[index] = original id``, and the dataset has exactly ``n`` items (also
  those without interactions).
* ``user2id.json`` (optional): the same for users; the user keys of the split files
  are then indices ``0..n-1`` and ``user_ids[index] = original id``. Without it the
  user keys themselves are the user ids.
* features (optional, ``features={"image": "image_feat.npy", ...}``, relative to the
  folder unless absolute): 2-D ``.npy`` arrays, row ``i`` = item index ``i``, float32.

Without ``item2id.json`` the item ids are the indices as strings and
``n_items`` = the number of feature rows when features are given, else
``max(index) + 1`` (index == id either way).
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphrec.data.dataset import Dataset, IdColumn, build_dataset, dataset_name_from
from graphrec.data.formats._common import (
    Factorizer,
    LazyWhere,
    PathLike,
    _small_ints,
    check_dense_indices,
    check_feature_matrix,
    check_unseen,
    id_column,
    index_from_map,
    index_ids,
    item_count_from_features,
    load_feature_files,
    read_json,
    to_int64,
)
from graphrec.errors import DataError

__all__ = ["read_lattice", "SPLIT_FILES"]

SPLIT_FILES: dict[str, str] = {"train": "train.json", "valid": "val.json", "test": "test.json"}
#: the largest item index a split file may hold (int64)
_MAX_INDEX = int(np.iinfo(np.int64).max)


class _Split:
    """One split file as arrays: its user keys (one per user, in file order, also those
    with an empty list), how many items each lists, and all the items, user by user
    (int32 while they fit). Row ``k`` of the split is item ``items[k]`` of the user
    whose items hold it (:meth:`key`)."""

    def __init__(self, path: Path, keys: list[str], counts: np.ndarray, items: np.ndarray):
        self.path, self.keys, self.counts, self.items = path, keys, counts, items
        self._ends = np.cumsum(counts)

    def __len__(self) -> int:
        return len(self.items)

    def key(self, row: int) -> str:
        """The user key of row ``row``."""
        return self.keys[int(np.searchsorted(self._ends, row, side="right"))]


def _check_entries(path: Path, data: dict[str, Any]) -> None:
    """The error of the first user (in file order) that maps to no list of non-negative
    integer item indices, or of its first such item."""
    for user, lst in data.items():
        if not isinstance(lst, list):
            raise DataError(
                f"{path}: user {user!r} maps to {type(lst).__name__}, not a list of item indices: "
                "write [<item index>, ...]"
            )
        for it in lst:
            if isinstance(it, bool) or not isinstance(it, int):
                raise DataError(
                    f"{path}: user {user!r} has item {it!r}, not an integer index: item ids in "
                    "split files must be integer indices (original ids go in item2id.json)"
                )
            if it < 0:
                raise DataError(f"{path}: user {user!r} has negative item index {it}: indices start at 0")
            if it > _MAX_INDEX:
                raise DataError(f"{path}: user {user!r} has item index {it}, beyond any catalogue (at most "
                                f"{_MAX_INDEX}): indices count the items from 0")


def _read_split(path: Path) -> _Split:
    """One split file (module doc) as arrays, its Python lists dropped as soon as they
    are read: every list checked at once (their types, then a vectorised sign check),
    one user at a time only to name the first bad entry."""
    data: Any = read_json(
        path, "LATTICE split file",
        "a LATTICE folder needs all three of train.json, val.json and test.json, each "
        "{\"<user>\": [<item index>, ...]}: add the missing file (or pass the folder that holds them)",
    )
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: expected a JSON object {{user: [items]}}, got {type(data).__name__}: "
            "write the split as {\"<user>\": [<item index>, ...]}"
        )
    lists = list(data.values())
    if set(map(type, lists)) - {list}:  # a user that maps to no list
        _check_entries(path, data)
    counts = np.fromiter(map(len, lists), np.int64, len(lists))
    total = int(counts.sum())
    if set(map(type, chain.from_iterable(lists))) - {int}:  # a bool, a float, a string, ...
        _check_entries(path, data)
    try:
        items = np.fromiter(chain.from_iterable(lists), np.int64, total)
    except OverflowError:  # an index past int64
        _check_entries(path, data)
        raise
    if total and items.min() < 0:
        _check_entries(path, data)
    keys = list(data)
    del data, lists
    if not total:
        raise DataError(f"{path}: the split file has no interactions: add them or check the file")
    return _Split(path, keys, counts, _small_ints(items))


def read_lattice(
    dir: PathLike,
    *,
    features: Mapping[str, PathLike] | None = None,
    unseen: str = "error",
    name: str | None = None,
) -> Dataset:
    """Read a LATTICE-style folder (module doc) into a :class:`Dataset`.

    Args:
        dir: folder with ``train.json``, ``val.json``, ``test.json``.
        features: ``{modality: .npy file}``, relative to ``dir`` unless absolute.
        unseen: users/items in valid/test but never in train: ``"error"``, ``"drop"``,
            ``"keep"``.
        name: dataset name (default: the folder name).
    """
    root = Path(dir)
    if not root.is_dir():
        raise DataError(f"{root}: directory not found: pass the folder holding train.json, val.json, test.json")
    parts = [_read_split(root / fname) for fname in SPLIT_FILES.values()]
    sizes = [len(p) for p in parts]
    offsets = np.cumsum([0] + sizes)
    item_arr = np.concatenate([p.items for p in parts])
    split_col = IdColumn(np.repeat(np.arange(len(parts), dtype=np.int8), sizes), np.asarray(list(SPLIT_FILES)))

    def origin(k: int) -> tuple[_Split, int]:
        """The split file of row ``k`` and the row there."""
        f = int(np.searchsorted(offsets, k, side="right")) - 1
        return parts[f], k - int(offsets[f])

    def file_key(k: int) -> str:
        part, row = origin(k)
        return f"{part.path} (user key {part.key(row)!r})"

    feats = load_feature_files(features, root)
    item_map = root / "item2id.json"
    if item_map.is_file():
        item_ids = index_from_map(read_json(item_map, "item id map"), item_map, "item")
        n_limit, limit_src = len(item_ids), f"{item_map} ({len(item_ids)} items)"
    else:
        n_feat = item_count_from_features(feats)
        if n_feat is not None:
            first = next(iter(feats.values()))[1]
            n_limit, limit_src = n_feat, f"{first} ({n_feat} rows)"
            item_ids = index_ids(n_feat)
        else:
            n_limit, limit_src = None, ""
            item_ids = index_ids(check_dense_indices(
                item_arr, file_key, "item index",
                "add item2id.json ({original id: index}, indices 0..n-1) and use its indices in the split files, "
                "or, if they really are indices, give the feature files, whose rows then define the items",
            ))
    if n_limit is not None:
        big = item_arr >= n_limit
        if big.any():
            k = int(np.flatnonzero(big)[0])
            part, row = origin(k)
            raise DataError(
                f"{part.path}: user {part.key(row)!r} has item index {item_arr[k]}, outside "
                f"{limit_src}: indices must be 0..{n_limit - 1}"
            )
    item_features = {mod: check_feature_matrix(x, p, mod, item_ids) for mod, (x, p) in feats.items()}

    # the users of the rows: the keys of the users with items (one per user), as codes
    listed = [(p, [k for k, n in zip(p.keys, p.counts.tolist()) if n], p.counts[p.counts > 0]) for p in parts]
    user_map = root / "user2id.json"
    user_ids = None
    if user_map.is_file():
        user_ids = index_from_map(read_json(user_map, "user id map"), user_map, "user")
        keys = [k for _, ks, _ in listed for k in ks]
        key_file = np.repeat(np.arange(len(listed)), [len(ks) for _, ks, _ in listed])
        u_idx, k = to_int64(keys)
        if u_idx is None:
            raise DataError(
                f"{parts[key_file[k]].path}: user key {keys[k]!r} is not an integer index although {user_map} exists: "
                "use the indices of user2id.json as keys, or remove user2id.json"
            )
        bad_u = (u_idx < 0) | (u_idx >= len(user_ids))
        if bad_u.any():
            k = int(np.flatnonzero(bad_u)[0])
            raise DataError(
                f"{parts[key_file[k]].path}: user index {keys[k]!r} is outside {user_map} "
                f"(indices 0..{len(user_ids) - 1}): fix the key or the map"
            )
        del keys
        users = IdColumn(np.repeat(_small_ints(u_idx), np.concatenate([n for _, _, n in listed])), user_ids)
    else:
        codes = Factorizer()
        users = id_column([np.repeat(codes.codes(ks), n) for _, ks, n in listed], codes)
    del listed

    items = IdColumn(item_arr, item_ids)

    def where(k: int) -> str:
        part, row = origin(k)
        return f"{part.path} (user key {part.key(row)!r}, item index {item_arr[k]})"

    check_unseen(users, items, split_col, unseen, LazyWhere(where, len(item_arr)))
    return build_dataset(
        users,
        items,
        split_col,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        name=name or dataset_name_from(root.name),
        source=str(root / SPLIT_FILES["train"]),
        meta={"format": "lattice", "source": str(root)},
        unseen=unseen,
    )
