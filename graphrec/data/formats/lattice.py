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

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphrec.data.dataset import Dataset, build_dataset
from graphrec.data.formats._common import (
    LazyWhere,
    PathLike,
    check_dense_indices,
    check_feature_matrix,
    check_unseen,
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


def _read_split(path: Path) -> tuple[list[str], list[int]]:
    """(user keys, item indices) of one split file, one entry per listed item."""
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
    users: list[str] = []
    items: list[int] = []
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
        users.extend([user] * len(lst))
        items.extend(lst)
    if not items:
        raise DataError(f"{path}: the split file has no interactions: add them or check the file")
    return users, items


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
    users: list[str] = []
    items: list[int] = []
    split: list[str] = []
    files: list[Path] = []
    for s, fname in SPLIT_FILES.items():
        path = root / fname
        u, i = _read_split(path)
        users.extend(u)
        items.extend(i)
        split.extend([s] * len(u))
        files.extend([path] * len(u))
    item_arr = np.asarray(items, dtype=np.int64)
    split_arr = np.asarray(split)

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
                item_arr, lambda k: f"{files[k]} (user key {users[k]!r})", "item index",
                "add item2id.json ({original id: index}, indices 0..n-1) and use its indices in the split files, "
                "or, if they really are indices, give the feature files, whose rows then define the items",
            ))
    if n_limit is not None:
        big = item_arr >= n_limit
        if big.any():
            k = int(np.flatnonzero(big)[0])
            raise DataError(
                f"{files[k]}: user {users[k]!r} has item index {items[k]}, outside "
                f"{limit_src}: indices must be 0..{n_limit - 1}"
            )
    item_features = {mod: check_feature_matrix(x, p, mod, item_ids) for mod, (x, p) in feats.items()}

    user_map = root / "user2id.json"
    user_arr = np.asarray(users, dtype=str)
    user_ids = None
    if user_map.is_file():
        user_ids = index_from_map(read_json(user_map, "user id map"), user_map, "user")
        u_idx, k = to_int64(users)
        if u_idx is None:
            raise DataError(
                f"{files[k]}: user key {users[k]!r} is not an integer index although {user_map} exists: "
                "use the indices of user2id.json as keys, or remove user2id.json"
            )
        bad_u = (u_idx < 0) | (u_idx >= len(user_ids))
        if bad_u.any():
            k = int(np.flatnonzero(bad_u)[0])
            raise DataError(
                f"{files[k]}: user index {users[k]!r} is outside {user_map} "
                f"(indices 0..{len(user_ids) - 1}): fix the key or the map"
            )
        user_arr = user_ids[u_idx]

    item_str = item_ids[item_arr]
    check_unseen(
        user_arr,
        item_str,
        split_arr,
        unseen,
        LazyWhere(lambda k: f"{files[k]} (user key {users[k]!r}, item index {items[k]})", len(users)),
    )
    return build_dataset(
        user_arr,
        item_str,
        split_arr,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        name=name or root.name,
        source=str(root / SPLIT_FILES["train"]),
        meta={"format": "lattice", "source": str(root)},
        unseen=unseen,
    )
