"""Early fusion of item content features (MM-GEF, arXiv:2308.07222, section 3.1).

MM-GEF averages the CLIP image and text vectors of an item before anything else is
learned ("early fusion"). With M the chosen modalities and x_{i,m} the raw vector of
item i in modality m, the fused vector is the mean of the L2-normalised vectors the item
actually has:

    M_i   = { m in M : x_{i,m} is present }
    x_i   = 1 / |M_i| * sum_{m in M_i} x_{i,m} / ||x_{i,m}||_2        (|M_i| > 0)
    x_i   = 0                                                          (|M_i| = 0)

A modality row is *missing* when it is all zeros (the way graphrec datasets mark a
missing image or text) or contains a NaN/inf (raw arrays that did not go through
:class:`graphrec.data.Dataset`, which rejects them). Averaging only the present
modalities keeps an item with text only on the same scale as one with both (its fused
vector is its unit text vector), instead of halving it. Items with no modality at all get
the zero vector, which :func:`graphrec.graphs.knn.knn_graph` treats as "no content": such
an item gets no kNN neighbours and is nobody's neighbour. They are counted in
:attr:`FusedFeatures.n_missing_all` and listed in :attr:`FusedFeatures.missing_all`;
:meth:`FusedFeatures.describe` gives a one-line summary for the caller to print (this
module never prints and never warns).

Normalising before averaging matters for CLIP: raw image vectors have norms about 10 and
text vectors about 7-8 (Amazon Scientific), so a plain mean would weight the image more.
The mean of two unit vectors is not a unit vector (its norm is cos(angle/2)); the kNN
graph normalises rows again, and the trainable projection of MM-GEF follows anyway.

All modalities must have the same dimension (CLIP image and text: 512 each). Mixing
dimensions (Last.fm: MiniLM text 384 and VGGish audio 128) is a :class:`DataError`:
project them to a common dimension first or fuse one modality. Pure numpy; arithmetic in
float64 per chunk of rows, result float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from graphrec.errors import ConfigError, DataError

__all__ = ["FUSED", "FusedFeatures", "default_modalities", "fuse_features", "check_fusable", "model_label",
           "check_same_model"]

#: name of the stored early-fused vector (``graphrec features --fuse``)
FUSED = "fused"

#: rows processed at a time (bounds the float64 temporaries to ~CHUNK x dim x 8 bytes)
_CHUNK = 1 << 15


@dataclass(frozen=True)
class FusedFeatures:
    """The result of :func:`fuse_features`.

    Attributes:
        x: fused features, float32 ``(n_items, dim)``; zero rows for items with no content.
        modalities: the modalities that were fused, in order.
        present: per modality, a bool ``(n_items,)`` mask of the items that have it.
        n_missing_all: number of items with none of the modalities.
        missing_all: their item indices (sorted int64).
        cancelled: items that have content whose unit vectors cancel exactly (e.g. an
            image vector opposite to the text vector): their fused row is zero too, so
            they get no kNN neighbours either (sorted int64).
    """

    x: np.ndarray
    modalities: tuple[str, ...]
    present: dict[str, np.ndarray]
    n_missing_all: int
    missing_all: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cancelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_items(self) -> int:
        return int(self.x.shape[0])

    def describe(self, item_ids: Sequence[str] | np.ndarray | None = None, max_items: int = 5) -> str:
        """One line for the caller to print: what was fused and which items have no content.

        ``item_ids`` (e.g. ``dataset.item_ids``) names the first ``max_items`` items
        without content by their original ids instead of their indices.
        """
        dim = self.x.shape[1]
        if len(self.modalities) == 1:  # nothing fused (and a stored "fused" modality would read "fused fused")
            (m,) = self.modalities
            line = f"{m!r} features (one modality; dim {dim}; present: {int(self.present[m].sum())}/{self.n_items})"
        else:
            counts = ", ".join(f"{m} {int(self.present[m].sum())}/{self.n_items}" for m in self.modalities)
            line = f"fused {' + '.join(self.modalities)} (dim {dim}; present: {counts})"
        if self.n_missing_all:
            first = self.missing_all[:max_items]
            names = [repr(str(item_ids[i])) if item_ids is not None else str(int(i)) for i in first]
            more = ", ..." if self.n_missing_all > len(first) else ""
            what = "ids" if item_ids is not None else "indices"
            line += (
                f"; {self.n_missing_all} {'item has' if self.n_missing_all == 1 else 'items have'} "
                f"{'none' if len(self.modalities) == 1 else 'none of them'} ({what} {', '.join(names)}{more}): "
                "they get a zero vector and no kNN neighbours"
            )
        if self.cancelled.size:
            first = self.cancelled[:max_items]
            names = [repr(str(item_ids[i])) if item_ids is not None else str(int(i)) for i in first]
            more = ", ..." if self.cancelled.size > len(first) else ""
            line += (
                f"; {self.cancelled.size} {'item has' if self.cancelled.size == 1 else 'items have'} modality "
                f"vectors that cancel to a zero vector ({'ids' if item_ids is not None else 'indices'} "
                f"{', '.join(names)}{more}): no kNN neighbours either"
            )
        return line


def default_modalities(features: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """The modalities used when none are chosen: all of them, except a stored early-fused
    vector (``"fused"``, written by ``graphrec features --fuse``) beside the modalities
    it was made from: fusing it again would count those modalities twice. A dataset
    whose only features are ``"fused"`` uses it."""
    names = tuple(features)
    raw = tuple(m for m in names if m != FUSED)
    return raw or names


def _select(features: Mapping[str, np.ndarray], modalities: Sequence[str] | None) -> tuple[str, ...]:
    available = list(features)
    if not available:
        raise DataError("no item features to fuse: import a dataset with item features (e.g. image, text)")
    if modalities is None:
        return default_modalities(features)
    if isinstance(modalities, str):
        modalities = [modalities]
    chosen = tuple(modalities)
    if not chosen:
        raise ConfigError(f"no modality selected: pick one or more of {', '.join(available)}")
    unknown = [m for m in chosen if m not in features]
    if unknown:
        raise ConfigError(
            f"unknown modality {unknown[0]!r}: the features have {', '.join(available)}"
        )
    dup = [m for m in set(chosen) if chosen.count(m) > 1]
    if dup:
        raise ConfigError(f"modality {dup[0]!r} is selected twice: list each modality once")
    return chosen


def model_label(record: Mapping[str, Any]) -> str | None:
    """The model and weights a modality's features come from, as one label (``open_clip
    ViT-B-32, pretrained openai``), from an encoder's ``describe()`` or a record of
    ``meta["features"]``; ``None`` when it names no model (features not extracted by
    graphrec). Features of two modalities can be fused only when their labels agree:
    vectors of different models live in different spaces, even at the same dimension."""
    model = record.get("model")
    if model is None:
        return None
    label = f"{record.get('backend', '?')} {model}"
    return label if record.get("pretrained") is None else f"{label}, pretrained {record['pretrained']}"


def check_same_model(records: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse to fuse modalities whose records (:func:`model_label`) name different models
    or weights: a one-line :class:`DataError` naming both. Records without a model pass."""
    labels = {m: label for m, label in ((m, model_label(r)) for m, r in records.items()) if label is not None}
    if len(set(labels.values())) > 1:
        (m1, l1), (m2, l2) = list(labels.items())[:2]
        raise DataError(
            f"cannot fuse {m1} features of {l1} with {m2} features of {l2}: vectors of different models live in "
            "different spaces; extract both with the same model and weights (--model, --pretrained)"
        )


def check_fusable(
    features: Mapping[str, np.ndarray],
    modalities: Sequence[str] | None = None,
    option: str = "--modalities",
    sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, ...]:
    """The checks of :func:`fuse_features`, reading shapes only (a model's cheap check
    runs them before any work): returns the chosen modalities.

    Raises:
        ConfigError: an unknown or repeated modality name, or an empty selection.
        DataError: no features, arrays that are not 2-D or not real numbers, differing
            numbers of rows, or differing dimensions (fuse one modality, or project them
            to one dimension first; ``option`` names the command-line option that chooses
            the modalities in the message); with ``sources`` (the records of
            ``dataset.meta["features"]``), modalities extracted by different models or
            weights (:func:`check_same_model`)."""
    chosen = _select(features, modalities)
    arrays = {m: features[m] if hasattr(features[m], "shape") else np.asarray(features[m]) for m in chosen}
    for m, a in arrays.items():
        if len(a.shape) != 2:
            raise DataError(f"features {m!r} have shape {tuple(a.shape)}: expected (n_items, dim)")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise DataError(f"features {m!r} have dtype {a.dtype}: expected real numbers")
    if len({a.shape[0] for a in arrays.values()}) > 1:
        shapes = ", ".join(f"{m} {a.shape[0]}" for m, a in arrays.items())
        raise DataError(f"modalities have different numbers of rows ({shapes}): one row per item in every modality")
    if len({a.shape[1] for a in arrays.values()}) > 1:
        shapes = ", ".join(f"{m} {a.shape[1]}" for m, a in arrays.items())
        one = " or ".join(f"{option} {m}" for m in arrays)
        key = option.lstrip("-").replace("-", "_")
        raise DataError(
            f"cannot average modalities of different dimensions ({shapes}) in one early-fused vector: fuse one "
            f"({one}; in a tune space file, {key}: {next(iter(arrays))}) or project them to one dimension first"
        )
    if sources and len(chosen) > 1:
        check_same_model({m: sources.get(m) or {} for m in chosen})
    return chosen


def fuse_features(
    features: Mapping[str, np.ndarray],
    modalities: Sequence[str] | None = None,
    option: str = "--modalities",
    sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> FusedFeatures:
    """Early fusion: per item, the mean of the L2-normalised modality vectors it has.

    Args:
        features: ``{modality: array (n_items, dim)}``, e.g. ``dataset.item_features``.
        modalities: the modalities to fuse, by name (default: all, in the mapping's order).
            A single modality gives its row-normalised features.
        option: the command-line option that chose ``modalities``, named by the error
            about differing dimensions (``--cold-modalities`` for the cold-item path).
        sources: the modalities' records (``dataset.meta["features"]``): features of
            different models are refused (:func:`check_same_model`).

    Returns:
        :class:`FusedFeatures` (fused float32 matrix, per-modality presence masks, the
        items with no content).

    Raises:
        ConfigError: an unknown or repeated modality name, or an empty selection.
        DataError: no features, arrays that are not 2-D, differing numbers of rows, or
            differing dimensions (project the modalities to one dimension or fuse one), or
            of different models (with ``sources``).
    """
    chosen = check_fusable(features, modalities, option, sources)
    arrays = [np.asarray(features[m]) for m in chosen]
    n, dim = arrays[0].shape[0], arrays[0].shape[1]

    out = np.zeros((n, dim), dtype=np.float32)
    present = {m: np.zeros(n, dtype=bool) for m in chosen}
    cancelled = []
    for s in range(0, n, _CHUNK):
        e = min(n, s + _CHUNK)
        acc = np.zeros((e - s, dim), dtype=np.float64)
        count = np.zeros(e - s, dtype=np.int64)
        for m, a in zip(chosen, arrays):
            src = a[s:e]
            if src.flags.c_contiguous and _add_unit_rows(src, acc, count, present[m], s, e):
                continue
            blk = np.asarray(src, dtype=np.float64)
            finite = np.isfinite(blk).all(axis=1)
            blk = np.where(finite[:, None], blk, 0.0)
            norm = np.sqrt(np.einsum("ij,ij->i", blk, blk))
            has = finite & (norm > 0)
            # tiny vectors whose squares underflow: rescale by the max-abs first
            # (norm == 0 while some entry is non-zero)
            tiny = finite & (norm == 0) & (np.abs(blk).max(axis=1, initial=0.0) > 0)
            if tiny.any():
                _rescale_tiny(blk, norm, tiny)
                has |= tiny
            present[m][s:e] = has
            acc[has] += blk[has] / norm[has, None]
            count += has
        nz = count > 0
        if nz.all():
            acc /= count[:, None]
        else:
            acc[nz] /= count[nz, None]
        out[s:e] = acc
        cancelled.append(s + np.flatnonzero(nz & ~out[s:e].any(axis=1)))  # content, yet a zero row
    missing = np.flatnonzero(~np.logical_or.reduce([present[m] for m in chosen])).astype(np.int64)
    return FusedFeatures(
        x=out,
        modalities=chosen,
        present=present,
        n_missing_all=int(missing.size),
        missing_all=missing,
        cancelled=np.concatenate(cancelled).astype(np.int64) if cancelled else np.zeros(0, dtype=np.int64),
    )


def _add_unit_rows(
    src: np.ndarray, acc: np.ndarray, count: np.ndarray, present: np.ndarray, s: int, e: int
) -> bool:
    """The fast path of one chunk of one modality of :func:`fuse_features`, when its rows
    are all finite: ``acc += src / ||src||`` on the rows with content, ``count`` and
    ``present[s:e]`` updated. Returns False, having changed nothing, when some squared
    norm is not finite (a NaN/inf entry, or a float64 overflow): the general path then
    runs. Bit for bit the general path's result: the same float64 copy (C order), the
    same einsum norms and float64 operations per element, only without the masking
    copy (``np.where`` of all-finite rows is the rows themselves), the full-size
    ``np.abs`` (only rows of norm 0 can be tiny) and the fancy-indexed gather/scatter
    when every row has content (the common case)."""
    blk = np.array(src, dtype=np.float64, order="C")  # a private copy, also of float64 input
    sq = np.einsum("ij,ij->i", blk, blk)
    if not np.isfinite(sq).all():  # a NaN/inf entry makes its row's sum NaN/inf
        return False
    norm = np.sqrt(sq)
    has = norm > 0
    zero = np.flatnonzero(~has)
    if zero.size:
        # tiny vectors whose squares underflow: rescale by the max-abs first
        tiny = zero[np.abs(blk[zero]).max(axis=1, initial=0.0) > 0]
        if tiny.size:
            _rescale_tiny(blk, norm, tiny)
            has[tiny] = True
    present[s:e] = has
    if has.all():
        np.divide(blk, norm[:, None], out=blk)
        acc += blk
    else:
        acc[has] += blk[has] / norm[has, None]
    count += has
    return True


def _rescale_tiny(blk: np.ndarray, norm: np.ndarray, tiny: np.ndarray) -> None:
    """Rows ``tiny`` (a mask or indices) of ``blk`` have content but squares that underflow
    (norm 0): divide them by their max-abs and recompute their norms, in place."""
    scale = np.abs(blk[tiny]).max(axis=1)
    blk[tiny] /= scale[:, None]
    norm[tiny] = np.sqrt(np.einsum("ij,ij->i", blk[tiny], blk[tiny]))
