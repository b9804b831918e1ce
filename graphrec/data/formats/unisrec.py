"""UniSRec sequential files: ``{name}.{train,valid,test}.inter`` + raw feature files.

Format (UniSRec / DecoRec downstream sets, e.g. ``amazon-scientific/``), one folder:

* ``{name}.train.inter``, ``{name}.valid.inter``, ``{name}.test.inter`` (all required):
  tab-separated, a header line naming the columns, as RecBole writes it
  ``user_id:token  item_id_list:token_seq  item_id:token``; the ``:type`` suffixes are
  optional (the format fixes the types), ``user_id  item_id_list  item_id`` reads the same
  (columns found by field name; cells are read as RecBole reads them, see
  :mod:`graphrec.data.formats.recbole`). Each row is a user's history (space-separated item
  indices, oldest first) and the next item (the target). The train file has one row
  per prefix of each user's training sequence; valid and test have one row per user
  (leave-one-out: the second-to-last and the last item).
* ``{name}.item2index`` / ``{name}.user2index`` (optional): ``original id <TAB> index``
  without header. When present the ``.inter`` ids are indices ``0..n-1`` and the
  original ids (ASINs, reviewer ids) become the dataset ids; every listed item/user is
  in the dataset, also without interactions. Without them the ``.inter`` tokens are the
  ids, and ``n_items`` = ``max(item index) + 1``, or the feature files' row count (below).
* feature files ``{name}.{suffix}``: raw little-endian float32, ``n_items x dim``
  row-major, row ``i`` = item index ``i`` (read with ``numpy.fromfile``); the file holds
  no shape, so one of ``n_items`` and ``dim`` must be known. With ``{name}.item2index``
  ``n_items`` is its length and ``dim`` is ``file size / 4 / n_items`` unless given.
  Without it, ``dim`` given: ``n_items`` = ``file size / 4 / dim`` (at least
  ``max(item index) + 1``; items beyond it have no interactions); ``dim`` not given:
  the only ``n_items >= max(item index) + 1`` that divides the file into whole rows, and
  an error when several do (e.g. 40 values for item indices up to 4: 5 x 8, 8 x 5,
  10 x 4, ...), since reading the wrong one would misalign every row. Default
  modalities: ``{"text": "feat1CLS", "image": "feat3CLS"}`` for those files that exist.
  An empty (0-byte) feature file is an error.
* ``{name}.text`` (optional): header ``item_id:token  text:token_seq``, the item's
  original id and its text; stored in ``item_fields["text"]`` aligned by id (``""`` for
  an item without a text row; rows of unknown items are ignored).

Split assignment (the pairs of a user are distinct in a :class:`Dataset`): every train
row contributes ``(user, target)`` and ``(user, h)`` for each history item ``h`` to
train; a valid row contributes ``(user, target)`` to valid and a test row to test. The
histories of valid/test rows repeat the train sequence (plus the valid target) and are
not used. A pair that occurs in several splits goes to the **earliest** one
(train < valid < test): under leave-last-out a valid/test target that the user already
bought is a repeat purchase, which a non-sequential recommender cannot be asked to find
(training items are excluded from its ranking), so it is dropped from the later split.
The files carry no timestamps. The rows dropped so are counted in
``meta["repeats_dropped"]`` (``{split: [dropped, given]}``); when that empties the given
valid or test split, :func:`~graphrec.data.splits.apply_split` (``prepare``) refuses it
rather than re-splitting as if no split were given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from graphrec._checks import is_int
from graphrec.data.dataset import Dataset, IdColumn, build_dataset, check_modality_name, dataset_name_from
from graphrec.data.formats._common import (
    ColumnCheck,
    Factorizer,
    LazyWhere,
    PathLike,
    Table,
    TableScan,
    TokenCheck,
    _small_ints,
    check_dense_indices,
    check_feature_matrix,
    check_separator,
    check_unseen,
    find_prefix,
    id_column,
    index_ids,
    read_index_map,
    read_table,
    require_file,
    run_checks,
    split_token_seqs,
    to_int64,
)
from graphrec.errors import ConfigError, DataError

__all__ = ["read_unisrec", "DEFAULT_FEATURES"]

DEFAULT_FEATURES: dict[str, str] = {"text": "feat1CLS", "image": "feat3CLS"}
_SPLITS = ("train", "valid", "test")


def _check_header(table: Table, fields: tuple[str, ...]) -> None:
    """A one-line DataError when a ``.inter`` table lacks one of ``fields`` (or is not
    tab-separated at all)."""
    check_separator(table.path, table.header, "\t", fields,
                    "UniSRec .inter files are TSV: separate the columns with tabs (e.g. "
                    "user_id:token<TAB>item_id_list:token_seq<TAB>item_id:token)", strip_types=True)
    for f in fields:
        table.col(f, "UniSRec files need the header user_id:token, item_id_list:token_seq, item_id:token")


def _indices(
    values: list[str],
    table: Table,
    rows: np.ndarray | None,
    n: int | None,
    what: str,
    map_file: Path | None,
) -> tuple[np.ndarray | None, int, DataError | None]:
    """Integer indices of ``values`` (int32 while they fit), or the error of the first
    that is none (kind 0) or that is out of range (kind 1): ``(indices, -1, None)`` or
    ``(None, kind, error)``. ``rows``: how many of ``values`` each row of ``table`` holds
    (value ``k`` is in row ``k`` when None)."""

    def line(k: int) -> int:
        return table.line(k if rows is None else int(np.searchsorted(np.cumsum(rows), k, side="right")))

    idx, k = to_int64(values)
    if idx is None:
        return None, 0, DataError(
            f"{table.path} line {line(k)}: {what} {values[k]!r} is not an integer index: "
            f"ids in UniSRec .inter files are indices (original ids go in .{what}2index)"
        )
    bad = (idx < 0) if n is None else ((idx < 0) | (idx >= n))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        limit = f"outside {map_file} (indices 0..{n - 1})" if map_file is not None else "negative"
        return None, 1, DataError(
            f"{table.path} line {line(k)}: {what} index {values[k]} is {limit}: fix the "
            f"row or the {what} map"
        )
    return _small_ints(idx), -1, None


class _IndexCheck(ColumnCheck):
    """The indices in column ``column`` of a ``.inter`` file read in chunks (:func:`_indices`;
    ``n``: their count when ``map_file`` lists them), and with ``history`` those in the
    ``item_id_list`` cells too (:attr:`history`, :attr:`counts`: per row, how many). The
    whole-file reader checks a file's indices as one list, the column's before the
    histories', every value for being an integer before any for its range: so an error
    ranks 0 (the column) or 1 (a history) when a value is no integer, 2 or 3 when out of
    range, and the first of the lowest rank in the file is the one raised (by :meth:`values`)."""

    def __init__(self, column: str, what: str, n: int | None, map_file: Path | None, history: bool = False):
        super().__init__(column)
        self.what, self.n, self.map_file, self.with_history = what, n, map_file, history
        self._history: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    def _check(self, table: Table, values: list[str]) -> np.ndarray | None:
        out, kind, err = _indices(values, table, None, self.n, self.what, self.map_file)
        self._fail(2 * kind, err)
        if self.with_history:
            tokens, counts = split_token_seqs(table.col("item_id_list"))
            hist, kind, err = _indices(tokens, table, counts, self.n, self.what, self.map_file)
            self._fail(2 * kind + 1, err)
            if not self._errors:
                self._history.append(hist)  # type: ignore[arg-type]
                self._counts.append(counts)
        return out

    @property
    def history(self) -> np.ndarray:
        """The history indices of every row, in file order (after :meth:`values`)."""
        return np.concatenate(self._history) if self._history else np.zeros(0, np.int32)

    @property
    def counts(self) -> np.ndarray:
        """How many history indices each row holds (after :meth:`values`)."""
        return np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)


def _any_user(table: Table, values: list[str]) -> None:
    """Users without ``{name}.user2index`` are tokens, any text (a TokenCheck's check)."""
    return None


def _divisors_from(total: int, low: int) -> list[int]:
    """The divisors of ``total`` that are ``>= low``, ascending."""
    out: set[int] = set()
    k = 1
    while k * k <= total:
        if total % k == 0:
            out.update((k, total // k))
        k += 1
    return sorted(d for d in out if d >= low)


def _feature_sizes(root: Path, prefix: str, features: Mapping[str, str]) -> list[tuple[str, Path, int]]:
    """``(modality, path, number of float32 values)`` of each feature file, checked to
    exist and to hold a whole, non-zero number of float32 values."""
    out = []
    for mod, suffix in features.items():
        check_modality_name(mod, f"features={{{mod!r}: {str(suffix)!r}}}", ConfigError)
        path = root / f"{prefix}.{suffix}"
        require_file(
            path,
            f"feature file for modality {mod!r}",
            f"expected {prefix}.{suffix} (raw float32): UniSRec features are given by file suffix, "
            f"features={{{mod!r}: SUFFIX}} (CLI: --feature {mod}=SUFFIX) reads {prefix}.SUFFIX, e.g. "
            f"{mod}=feat1CLS for {prefix}.feat1CLS",
        )
        size = path.stat().st_size
        if size == 0:
            raise DataError(
                f"{path}: empty file (0 bytes), so modality {mod!r} has no feature values: write the "
                "n_items x dim float32 matrix, or leave the modality out (choose the modalities with "
                "features=, CLI --feature)"
            )
        if size % 4:
            raise DataError(
                f"{path}: {size} bytes is not a whole number of float32 values (4 bytes each): check that "
                "the file is complete"
            )
        out.append((mod, path, size // 4))
    return out


def _feature_rows(
    files: list[tuple[str, Path, int]], n_min: int, dim: int | None, prefix: str, max_where: str
) -> int:
    """The item count of feature files when no item map fixes it (module doc): their
    values divided by ``dim`` when given, else the only count ``>= n_min`` (the largest
    item index + 1, found at ``max_where``) that every file can be split into."""
    if dim is not None:
        rows = None
        for mod, path, total in files:
            if total % dim:
                raise DataError(
                    f"{path}: {total} float32 values are not rows of dim={dim}: fix dim= "
                    "(CLI: --feature-dim) or the file"
                )
            if rows is not None and total // dim != rows:
                raise DataError(
                    f"{path}: {total // dim} rows of dim {dim} but {files[0][1]} has {rows}: every "
                    "feature file needs one row per item"
                )
            rows = total // dim
            if rows < n_min:
                raise DataError(
                    f"{path}: {rows} rows of dim {dim}, but item index {n_min - 1} ({max_where}) needs "
                    f"{n_min}: fix dim= (CLI: --feature-dim) or the file"
                )
        assert rows is not None
        return rows
    fits: list[int] | None = None
    for mod, path, total in files:
        here = _divisors_from(total, n_min)
        if not here:
            raise DataError(
                f"{path}: {total} float32 values cannot hold a row for each of the at least {n_min} items "
                f"(item index {n_min - 1} at {max_where}): check that the file belongs to this dataset "
                "and is complete"
            )
        fits = here if fits is None else [n for n in fits if n in here]
        if not fits:
            raise DataError(
                f"{path}: no item count of at least {n_min} splits both it ({total} float32 values) and "
                f"{files[0][1]} into whole rows: check that both files belong to this dataset"
            )
    assert fits is not None
    if len(fits) > 1:
        path, total = files[0][1], files[0][2]
        a, b = fits[0], fits[1]
        raise DataError(
            f"{path}: the number of items is unknown, so its {total} float32 values have no single shape: "
            f"without {prefix}.item2index the items are only known to be at least {n_min} (item index "
            f"{n_min - 1} at {max_where}) and {a} x {total // a} and {b} x {total // b} both fit: add "
            f"{prefix}.item2index (one 'original id<TAB>index' line per item) or state the feature "
            "dimension with dim=D (CLI: --feature-dim D)"
        )
    return fits[0]


def _read_features(
    files: list[tuple[str, Path, int]], n_items: int, dim: int | None, item_ids: np.ndarray, count_from: str
) -> dict[str, np.ndarray]:
    """The feature matrices of ``files`` (``(modality, path, float32 values)``), ``n_items``
    rows each; ``count_from`` says where that item count comes from (the item map's
    lines), for the message of a file that does not split into those rows."""
    out: dict[str, np.ndarray] = {}
    for mod, path, total in files:
        size = 4 * total
        if dim is None:
            if n_items == 0 or total % n_items:
                whole = [(p, t // n_items) for _, p, t in files if n_items and not t % n_items]
                like = (f"; {whole[0][0].name} holds {whole[0][1]} values per item, {4 * n_items * whole[0][1]} "
                        "bytes at that dimension" if whole else "")
                raise DataError(
                    f"{path}: {size} bytes ({total} float32 values, {total / max(n_items, 1):.2f} per item) do not "
                    f"split into {n_items} rows, one per item ({count_from}): the file is truncated or belongs to "
                    f"other data: write it as {n_items} x dim float32 values (row i = item index i; the dimension "
                    f"is read as file size / 4 / {n_items}), {4 * n_items} x dim bytes in all{like}"
                )
            d = total // n_items
        else:
            d = int(dim)
            if size != 4 * n_items * d:
                raise DataError(
                    f"{path}: {size} bytes, expected {4 * n_items * d} for {n_items} items ({count_from}) x "
                    f"{d} float32 values: fix dim= (CLI: --feature-dim) or the file"
                )
        x = np.fromfile(path, dtype="<f4").reshape(n_items, d).astype(np.float32, copy=False)
        out[mod] = check_feature_matrix(x, path, mod, item_ids)
    return out


def _read_text(path: Path, item_ids: np.ndarray) -> np.ndarray:
    table = read_table(path, strip_types=True, allow_empty=True, quoted_cells=True)
    check_separator(path, table.header, "\t", ("item_id", "text"),
                    "the .text file is TSV: separate the columns with tabs (e.g. item_id:token<TAB>text:token_seq)",
                    strip_types=True)
    ids = table.col("item_id", "the .text file needs the header item_id:token, text:token_seq")
    texts = table.col("text", "the .text file needs the header item_id:token, text:token_seq")
    pos = {v: k for k, v in enumerate(item_ids.tolist())}
    out = np.full(len(item_ids), "", dtype=object)
    for iid, txt in zip(ids, texts):
        k = pos.get(iid)
        if k is not None:
            out[k] = txt
    return out.astype(str)


def read_unisrec(
    dir: PathLike,
    *,
    name: str | None = None,
    features: Mapping[str, str] | None = None,
    dim: int | None = None,
    unseen: str = "error",
    chunk_bytes: int | None = None,
) -> Dataset:
    """Read a UniSRec folder (module doc) into a :class:`Dataset`.

    Args:
        dir: folder with ``{name}.train.inter``, ``{name}.valid.inter``, ``{name}.test.inter``.
        name: file prefix and dataset name; default: the only ``*.train.inter`` prefix.
        features: ``{modality: file suffix}``; default :data:`DEFAULT_FEATURES` for the
            files that exist. Pass ``{}`` for none.
        dim: feature dimension (every feature file); inferred from the file size when
            omitted, which needs ``{name}.item2index`` unless only one shape fits (module doc).
        unseen: users/items in valid/test but never in train: ``"error"``, ``"drop"``,
            ``"keep"``.
        chunk_bytes: the ``.inter`` files are read this many bytes at a time (default
            :data:`~graphrec.data.formats._common.CHUNK_BYTES`); only memory depends on it.
    """
    root = Path(dir)
    if dim is not None and (not is_int(dim) or dim < 1):
        raise ConfigError(f"dim={dim!r} (CLI: --feature-dim) must be a whole number >= 1, the feature dimension")
    prefix = find_prefix(root, ".train.inter", name, "UniSRec")

    user_map_file = root / f"{prefix}.user2index"
    item_map_file = root / f"{prefix}.item2index"
    user_ids = read_index_map(user_map_file, "user") if user_map_file.is_file() else None
    item_ids = read_index_map(item_map_file, "item") if item_map_file.is_file() else None

    # the .inter files, read in chunks: item (and, with user2index, user) indices checked
    # and kept as arrays, users without a map as codes; an error is raised where the
    # whole-file reader raised it (after every file is read, items before users)
    scans: list[TableScan] = []
    item_checks: list[_IndexCheck] = []
    user_checks: list[ColumnCheck] = []
    user_codes = Factorizer()
    for s in _SPLITS:
        path = require_file(root / f"{prefix}.{s}.inter", f"UniSRec {s} file", f"expected {prefix}.{s}.inter")
        scan = TableScan(path, strip_types=True, quoted_cells=True, chunk_bytes=chunk_bytes)
        fields = ("user_id", "item_id_list", "item_id") if s == "train" else ("user_id", "item_id")
        checks: list[ColumnCheck] = []
        if all(scan.has(f) for f in fields):  # else the header check below refuses the file
            item_checks.append(_IndexCheck("item_id", "item", None if item_ids is None else len(item_ids),
                                           None if item_ids is None else item_map_file, history=s == "train"))
            user_checks.append(_IndexCheck("user_id", "user", len(user_ids), user_map_file) if user_ids is not None
                               else TokenCheck("user_id", user_codes, _any_user))
            checks = [item_checks[-1], user_checks[-1]]
        run_checks(scan, checks)
        _check_header(scan.head(), fields)
        scans.append(scan)

    feats_spec = dict(features) if features is not None else {
        m: s for m, s in DEFAULT_FEATURES.items() if (root / f"{prefix}.{s}").is_file()
    }
    feat_files = _feature_sizes(root, prefix, feats_spec)
    # Raw pairs, in this order: every train row's (user, target), then the (user, item)
    # pairs of the train rows' histories, then valid's and test's (user, target); a
    # label per pair (0 train, 1 valid, 2 test)
    item_parts = [c.values() for c in item_checks]
    counts = item_checks[0].counts
    item_parts.insert(1, item_checks[0].history)
    sizes = [len(p) for p in item_parts]
    i_idx = np.concatenate(item_parts)
    del item_parts
    lab = np.repeat(np.array([0, 0, 1, 2], dtype=np.int8), sizes)
    bounds = np.cumsum(sizes)
    hist_ends = np.cumsum(counts)

    def where(k: int) -> str:
        part = int(np.searchsorted(bounds, k, side="right"))
        if part == 1:  # a history item: the train row that holds it
            return f"{scans[0].path} line {scans[0].line(int(np.searchsorted(hist_ends, k - bounds[0], side='right')))}"
        scan = scans[max(part - 1, 0)]
        return f"{scan.path} line {scan.line(k - (int(bounds[part - 1]) if part else 0))}"

    # Item tokens are indices (they address feature rows); user tokens are indices only
    # when a user map exists. Without an item map the feature files fix the item count
    # (module doc), else max(index) + 1.
    if item_ids is None:
        top = int(np.argmax(i_idx))
        n_min = int(i_idx[top]) + 1
        if feat_files:
            n_rows = _feature_rows(feat_files, n_min, dim, prefix, where(top))
        else:
            n_rows = check_dense_indices(
                i_idx, where, "item index",
                f"add {prefix}.item2index (one 'original id<TAB>index' line per item, indices 0..n-1) and use its "
                "indices in the .inter files",
            )
        item_ids = index_ids(n_rows)
    user_parts = [c.values() for c in user_checks]
    user_parts.insert(1, np.repeat(user_parts[0], counts))
    users = IdColumn(np.concatenate(user_parts), user_ids) if user_ids is not None else id_column(user_parts, user_codes)
    del user_parts, user_codes, item_checks, user_checks

    # Earliest split wins for a pair seen in several splits (module doc): the pairs
    # sorted by (user, item, split), stably, the first of each pair kept
    key = users.codes.astype(np.int64)
    key *= len(item_ids)
    key += i_idx
    key *= 3
    key += lab
    order = np.argsort(key, kind="stable")
    key = key[order]
    key //= 3
    first = np.r_[True, key[1:] != key[:-1]]
    del key
    lab_sorted = lab[order]
    # valid/test rows whose pair an earlier split already has: {split: [dropped, given]}
    # (apply_split refuses a given split this empties instead of re-splitting silently)
    repeated = lab_sorted > lab_sorted[first][np.cumsum(first) - 1]
    repeats = {
        s: [int((repeated & (lab_sorted == k)).sum()), int((lab == k).sum())]
        for k, s in enumerate(_SPLITS) if k and (repeated & (lab_sorted == k)).any()
    }
    keep = np.sort(order[first])
    del order, first, lab_sorted, repeated
    users = IdColumn(users.codes[keep], users.values)
    items = IdColumn(i_idx[keep], item_ids)
    split = IdColumn(lab[keep], np.asarray(_SPLITS))
    del i_idx, lab

    count_from = (f"the {len(item_ids)} lines of {item_map_file}" if item_map_file.is_file()
                  else "the item count the .inter and feature files fix")
    item_features = _read_features(feat_files, len(item_ids), dim, item_ids, count_from)
    item_fields: dict[str, np.ndarray] = {}
    text_file = root / f"{prefix}.text"
    if text_file.is_file():
        item_fields["text"] = _read_text(text_file, item_ids)

    check_unseen(users, items, split, unseen, LazyWhere(lambda k: where(int(keep[k])), len(keep)))
    return build_dataset(
        users,
        items,
        split,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=item_features,
        item_fields=item_fields,
        name=name or dataset_name_from(prefix),
        source=str(scans[0].path),
        meta={
            "format": "unisrec",
            "source": str(root),
            "pair_rule": "earliest split wins (train < valid < test)",
            **({"repeats_dropped": repeats} if repeats else {}),
        },
        unseen=unseen,
    )
