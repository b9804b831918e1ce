"""Embed every item's image and text, in resumable chunks, and attach them to a dataset.

:func:`extract_item_features` takes, aligned with the dataset's item order, one image
path (or ``None``) and one text (or ``""``) per item, and an encoder per modality
(:mod:`graphrec.features.encoders`). For each modality it embeds the items that have
an input, in chunks of ``chunk_size`` items (a multiple of ``batch_size``), each chunk
in batches:

* images are decoded (:func:`~graphrec.features.encoders.load_image`, RGB) and
  preprocessed by the encoder in a thread pool, then encoded batch by batch; the pool
  decodes the next batch while the encoder runs on the current one (one batch ahead, no
  more, so memory stays flat);
* a file that cannot be decoded raises an :class:`UnreadableImageWarning` naming it
  and the item counts as having no image; JPEGs at least twice the encoder's
  ``input_size`` are decoded at a reduced scale, and a file above Pillow's
  decompression-bomb limit raises a :class:`~graphrec.features.encoders.LargeImageWarning`
  naming it;
* each finished chunk is written to ``work_dir/<modality>/NNNNNN.npz`` (temporary name,
  then renamed). A later call with the same inputs, encoder and sizes reuses the chunks
  that exist and embeds only the rest, so an interrupted run continues where it stopped.
  ``work_dir/<modality>/manifest.json`` holds a hash of everything the chunks depend on
  (encoder and weights, batch and chunk size, item positions, image paths with their size
  and modification time, texts); when it differs, the stale chunks are discarded.

The result per modality (:class:`ModalityFeatures`) is a float32 ``(n_items, dim)``
matrix of raw embeddings with **zero rows for items without that modality** (the way
graphrec datasets mark a missing modality, see :class:`graphrec.data.Dataset` and
:func:`graphrec.graphs.fuse.fuse_features`), a boolean ``present`` mask, and counts.

:func:`attach_features` returns the dataset with ``item_features["image"|"text"]``
replaced, optionally the early-fused vector ``item_features["fused"]``
(:func:`graphrec.graphs.fuse.fuse_features`: mean of the L2-normalised modalities an
item has), and ``meta["features"]``: per modality the encoder (backend, model,
pretrained weights, dimension, precision), counts and the presence mask
(:func:`present_mask` decodes it). Saving is the caller's (``Dataset.save`` is atomic).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from graphrec._checks import is_int
from graphrec._progress import counter
from graphrec.errors import ARRAY_FILE_ERRORS, ConfigError, DataError
from graphrec.features.encoders import (
    ImageEncoder,
    LargeImageWarning,
    TextEncoder,
    UnreadableImage,
    cache_key_of,
    decode_image,
)
from graphrec.graphs.fuse import check_same_model, fuse_features, model_label

if TYPE_CHECKING:  # pragma: no cover
    from graphrec.data import Dataset

__all__ = [
    "UnreadableImageWarning",
    "ModalityFeatures",
    "extract_item_features",
    "attach_features",
    "present_mask",
    "feature_info",
    "model_label",
    "check_same_model",
    "default_work_dir",
    "check_work_dir",
    "open_work_dir",
    "discard_chunks",
    "remove_work_dir",
    "WORK_MARKER",
]

#: chunk size, in batches, when none is given
CHUNKS_OF_BATCHES = 16
_MANIFEST = "manifest.json"
_WORK_VERSION = 1
#: how images are decoded (load_image); part of the image chunks' manifest, so that chunks
#: of an earlier decoding (16-bit images clipped, JPEGs always at full size) are not resumed
_DECODE_VERSION = 2
#: file that marks a folder as graphrec's work folder of feature chunks
WORK_MARKER = ".graphrec-features-work"
#: the chunk folders graphrec writes into a work folder (one per modality)
_CHUNK_FOLDERS = ("image", "text")


class UnreadableImageWarning(UserWarning):
    """An image file exists but cannot be decoded; its item is treated as having no image."""


@dataclass
class ModalityFeatures:
    """The features of one modality, aligned with the items.

    Attributes:
        modality: ``image`` or ``text``.
        x: float32 ``(n_items, dim)`` raw embeddings; zero rows where ``present`` is False.
        present: bool ``(n_items,)``: the item has this modality.
        n_without_input: items with no image file / an empty text.
        unreadable: image files that exist but could not be decoded.
        encoder: the encoder's provenance (backend, model, pretrained, dim, ...).
        n_resumed: items taken from chunks of an earlier, interrupted run.
        seconds: wall-clock time of this call for this modality.
    """

    modality: str
    x: np.ndarray
    present: np.ndarray
    n_without_input: int
    unreadable: list[str] = field(default_factory=list)
    encoder: dict[str, Any] = field(default_factory=dict)
    n_resumed: int = 0
    seconds: float = 0.0

    @property
    def n_items(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_present(self) -> int:
        return int(self.present.sum())

    def summary(self) -> str:
        """One line: how many items have this modality and why the others do not."""
        what = "no image file" if self.modality == "image" else "no text"
        line = f"{self.modality}: {self.n_present}/{self.n_items} items ({self.n_without_input} with {what}"
        if self.modality == "image":
            line += f", {len(self.unreadable)} unreadable"
        line += f"), dim {self.x.shape[1]}, {self.encoder.get('model', '?')}"
        encoded = self.n_present + len(self.unreadable) - self.n_resumed
        if self.n_resumed:
            line += f"; {self.n_resumed} resumed from an earlier run"
        if self.seconds > 0 and encoded > 0:
            line += f"; {encoded} encoded in {self.seconds:.1f} s ({encoded / self.seconds:.1f}/s)"
        return line


def default_work_dir(out: str | os.PathLike) -> Path:
    """Where the chunks of an extraction into dataset directory ``out`` are kept:
    ``.<name>.features-work`` beside it (removed once the dataset is saved).

    A path whose last part does not name the folder (``.``, ``..``, ``data/..``) is
    resolved first, so ``graphrec features --data .`` inside the dataset folder puts the
    chunks beside that folder, not inside it."""
    out = Path(out)
    if out.name in ("", ".."):
        out = out.resolve()
    return out.parent / f".{out.name}.features-work"


# --------------------------------------------------------------------------- work folder
# A work folder holds only what graphrec writes: the marker WORK_MARKER (which says whether
# graphrec created the folder) and one chunk folder per modality. A folder that exists
# without the marker is used only when it is empty, and cleaning up removes only the
# marker and the chunk folders (the folder itself when graphrec created it and it is then
# empty): a work folder named by mistake (the dataset, the working directory) is refused,
# never emptied.
def _is_legacy_work_dir(path: Path) -> bool:
    """A work folder of graphrec before the marker: only chunk folders with their manifest."""
    entries = list(path.iterdir())
    for e in entries:
        if e.name not in _CHUNK_FOLDERS or e.is_symlink() or not e.is_dir():
            return False
        try:
            mf = json.loads((e / _MANIFEST).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(mf, dict) or mf.get("modality") != e.name or "digest" not in mf:
            return False
    return bool(entries)


def check_work_dir(path: str | os.PathLike, option: str = "work_dir") -> Path:
    """Check, before any work, that ``path`` can serve as the work folder of feature chunks:
    absent, empty, or a work folder graphrec made (its :data:`WORK_MARKER`; an older one of
    only chunk folders is accepted too). Anything else is a one-line :class:`ConfigError`
    naming ``option``: cleaning up would otherwise delete files graphrec did not write."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return path
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"{option} {path} is not a folder: choose a new or empty folder for the feature chunks")
    if (path / WORK_MARKER).is_file() or not any(path.iterdir()) or _is_legacy_work_dir(path):
        return path
    raise ConfigError(
        f"{option} {path} is a folder of other files (no {WORK_MARKER} marker of graphrec's feature chunks): "
        f"it would be mixed with the chunks and cleaned up with them; choose a new or empty folder for {option}"
    )


def open_work_dir(path: str | os.PathLike, option: str = "work_dir") -> Path:
    """Make ``path`` graphrec's work folder (:func:`check_work_dir` first): create it when
    missing and write :data:`WORK_MARKER`, which records whether this call created it."""
    path = check_work_dir(path, option)
    marker = path / WORK_MARKER
    if marker.is_file():
        return path
    created = not path.exists() or _is_legacy_work_dir(path)
    parents = 0  # missing parent folders made here (removed with the folder when empty)
    while created and not path.absolute().parents[parents].exists():
        parents += 1
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{WORK_MARKER}.tmp"
    record = {"graphrec": "feature chunks", "version": _WORK_VERSION, "created": created, "created_parents": parents}
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, marker)
    return path


def discard_chunks(path: str | os.PathLike) -> None:
    """Remove the chunk folders of graphrec's work folder ``path`` (``--restart``); the
    marker and the folder stay. A folder that is not graphrec's is left alone."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return
    if not ((path / WORK_MARKER).is_file() or _is_legacy_work_dir(path)):
        return
    for name in _CHUNK_FOLDERS:
        folder = path / name
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def remove_work_dir(path: str | os.PathLike) -> None:
    """Remove what graphrec wrote into the work folder ``path`` once the features are
    saved: its chunk folders and marker, then the folder itself (and the missing parents
    made for it) when graphrec created it and it is empty. Other files, and a folder
    without the marker, are left alone."""
    path = Path(path)
    marker = path / WORK_MARKER
    if path.is_symlink() or not marker.is_file():
        return
    try:
        record = json.loads(marker.read_text())
        created, parents = record.get("created") is True, record.get("created_parents", 0)
    except (OSError, ValueError, AttributeError):
        created, parents = False, 0
    discard_chunks(path)
    with contextlib.suppress(OSError):
        marker.unlink()
    if created:  # the folder, and the parents made for it, when they are empty
        for folder in [path.absolute(), *path.absolute().parents[: parents if is_int(parents) else 0]]:
            try:
                folder.rmdir()
            except OSError:
                break


def _check_workers(workers: Any, option: str = "workers") -> None:
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ConfigError(f"{option} must be a whole number of at least 1 (image decoding threads), got {workers!r}")


# --------------------------------------------------------------------------- chunks
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _prepare_chunk_dir(folder: Path, manifest: dict[str, Any]) -> None:
    """Keep ``folder``'s chunks when its manifest equals ``manifest``, else start it afresh."""
    mf = folder / _MANIFEST
    if folder.is_dir():
        try:
            same = json.loads(mf.read_text()) == manifest
        except (OSError, ValueError):
            same = False
        if same:
            return
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tmp = folder / f".{_MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, mf)


def _read_chunk(path: Path, rows: int, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A saved chunk, or None when it is absent, truncated or of the wrong shape (a damaged
    chunk, e.g. a truncated zip that numpy reports as ``BadZipFile``, is computed again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            x, ok = z["x"], z["ok"]
    except ARRAY_FILE_ERRORS:
        return None
    if x.shape != (rows, dim) or ok.shape != (rows,) or x.dtype != np.float32 or ok.dtype != bool:
        return None
    return x, ok


def _write_chunk(path: Path, x: np.ndarray, ok: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    with open(tmp, "wb") as f:
        np.savez(f, x=x, ok=ok)
    os.replace(tmp, path)


def _embed_in_chunks(
    modality: str,
    inputs: Sequence[Any],
    encode_chunk: Callable[[Sequence[Any], Callable[[int], None], Sequence[Any]], tuple[np.ndarray, np.ndarray]],
    dim: int,
    *,
    chunk_size: int,
    work_dir: Path | None,
    manifest: dict[str, Any],
    progress: bool,
    on_chunk: Callable[[str, int, int], None] | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Embed ``inputs`` chunk by chunk, reusing saved chunks; (x, ok, rows resumed).

    ``encode_chunk(chunk_inputs, advance, upcoming)`` embeds one chunk; ``upcoming`` are
    the inputs of the chunk it will be called with next (empty after the last), so that
    it may start preparing them (images: decoding the first batch ahead)."""
    n = len(inputs)
    n_chunks = -(-n // chunk_size)
    x = np.zeros((n, dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    done = np.zeros(n_chunks, dtype=bool)
    folder = None
    if work_dir is not None and n:
        folder = Path(work_dir) / modality
        _prepare_chunk_dir(folder, manifest)
        for c in range(n_chunks):
            s, e = c * chunk_size, min(n, (c + 1) * chunk_size)
            got = _read_chunk(folder / f"{c:06d}.npz", e - s, dim)
            if got is not None:
                x[s:e], ok[s:e] = got
                done[c] = True
    resumed = int(sum(min(n, (c + 1) * chunk_size) - c * chunk_size for c in np.flatnonzero(done)))
    todo = [int(c) for c in np.flatnonzero(~done)]
    with counter(progress, modality, total=n, unit="item", initial=resumed, leave=False) as bar:
        advance = bar.update
        for i, c in enumerate(todo):
            s, e = c * chunk_size, min(n, (c + 1) * chunk_size)
            after = todo[i + 1] if i + 1 < len(todo) else None
            upcoming = inputs[after * chunk_size : min(n, (after + 1) * chunk_size)] if after is not None else []
            xc, okc = encode_chunk(inputs[s:e], advance, upcoming)
            if not np.isfinite(xc).all():
                raise ConfigError(
                    f"{modality} embeddings contain NaN or inf (items {s}..{e - 1} of those with a "
                    f"{modality}): with mixed precision, rerun with precision fp32 (--precision fp32)"
                )
            x[s:e], ok[s:e] = xc, okc
            if folder is not None:
                _write_chunk(folder / f"{c:06d}.npz", xc, okc)
            if on_chunk is not None:
                on_chunk(modality, c, n_chunks)
    return x, ok, resumed


# --------------------------------------------------------------------------- encoders
class _ImageChunks:
    """Embeds chunks of image files batch by batch (``encode_chunk`` of :func:`_embed_in_chunks`),
    decoding in ``pool`` while the encoder runs: when batch ``b`` goes to the encoder, the
    decoding of batch ``b + 1`` (the first batch of the next chunk, after a chunk's last)
    has been handed to the pool, and no later batch: at most two batches of decoded images
    exist at a time. Results and warnings come in item order, as without the overlap.
    :meth:`cancel` drops a batch decoded ahead that will not be used (the run stopped).
    """

    def __init__(self, encoder: ImageEncoder, batch_size: int, pool: ThreadPoolExecutor) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.pool = pool
        self.size: int | None = getattr(encoder, "input_size", None)  # large JPEGs decoded at a reduced scale
        self._ahead: tuple[list[Path], list[Future]] | None = None  # the next chunk's first batch, decoding

    def _prepare(self, path: Path) -> tuple[Any, str | None] | UnreadableImage:
        """In a decoding thread: (model input, LargeImageWarning message or None), or the error."""
        try:
            image, note = decode_image(path, self.size)
            return self.encoder.preprocess(image), note
        except UnreadableImage as e:
            return e

    def _submit(self, batch: Sequence[Path]) -> list[Future]:
        return [self.pool.submit(self._prepare, p) for p in batch]

    def cancel(self) -> None:
        """Cancel the decoding handed to the pool ahead of time (what has not started)."""
        if self._ahead is not None:
            for f in self._ahead[1]:
                f.cancel()
            self._ahead = None

    def __call__(
        self, paths: Sequence[Path], advance: Callable[[int], None], upcoming: Sequence[Path] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch

        encoder, bs = self.encoder, self.batch_size
        x = np.zeros((len(paths), encoder.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        batches = [list(paths[s : s + bs]) for s in range(0, len(paths), bs)]
        if not batches:
            return x, ok
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == batches[0]:
            current = ahead[1]
        else:  # not what was decoded ahead: drop that, start this chunk's first batch
            for f in ahead[1] if ahead is not None else ():
                f.cancel()
            current = self._submit(batches[0])
        following: list[Future] = []
        try:
            for b, batch in enumerate(batches):
                nxt = batches[b + 1] if b + 1 < len(batches) else list(upcoming[:bs])
                following = self._submit(nxt) if nxt else []  # decoded while batch b is encoded
                if b + 1 == len(batches) and nxt:
                    self._ahead = (nxt, following)
                prepared = [f.result() for f in current]
                good = []
                for k, (p, t) in enumerate(zip(batch, prepared)):
                    if isinstance(t, UnreadableImage):
                        warnings.warn(
                            f"cannot read image {p} ({t}): its item is treated as having no image",
                            UnreadableImageWarning,
                            stacklevel=2,
                        )
                    else:
                        good.append(k)
                        if t[1] is not None:  # warned here, in item order, not in the decoding thread
                            warnings.warn(t[1], LargeImageWarning, stacklevel=2)
                if good:
                    emb = encoder.encode_images(torch.stack([prepared[k][0] for k in good]))
                    idx = b * bs + np.asarray(good)
                    x[idx] = emb
                    ok[idx] = True
                advance(len(batch))
                current = following
        except BaseException:
            for f in current + following:
                f.cancel()
            self._ahead = None
            raise
        return x, ok


def _text_chunk_fn(
    encoder: TextEncoder, batch_size: int
) -> Callable[[Sequence[str], Callable[[int], None]], tuple[np.ndarray, np.ndarray]]:
    def encode_chunk(
        texts: Sequence[str], advance: Callable[[int], None], upcoming: Sequence[str] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        for s in range(0, len(texts), batch_size):
            batch = list(texts[s : s + batch_size])
            x[s : s + len(batch)] = encoder.encode_texts(batch)
            advance(len(batch))
        return x, np.ones(len(texts), dtype=bool)

    return encode_chunk


@contextlib.contextmanager
def _no_pillow_bomb_warning() -> Any:
    """Inside, Pillow's DecompressionBombWarning is silenced (it names no file, and shows
    once): the decoding threads report a :class:`LargeImageWarning` naming each file instead.
    Entered in the calling thread, around the decoding pool."""
    try:
        from PIL import Image
    except ImportError:  # no Pillow: no image is decoded either
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _path_identity(p: Path) -> tuple[str, int, int]:
    st = p.stat()
    return (str(p.resolve()), int(st.st_size), int(st.st_mtime_ns))


# --------------------------------------------------------------------------- public API
def extract_item_features(
    n_items: int,
    *,
    image_paths: Sequence[str | os.PathLike | None] | None = None,
    texts: Sequence[str] | None = None,
    image_encoder: ImageEncoder | None = None,
    text_encoder: TextEncoder | None = None,
    batch_size: int = 64,
    chunk_size: int | None = None,
    work_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = False,
    on_chunk: Callable[[str, int, int], None] | None = None,
) -> dict[str, ModalityFeatures]:
    """Embed the items' images and/or texts (see the module doc).

    Args:
        n_items: number of items; ``image_paths`` and ``texts`` have one entry per item,
            in item index order.
        image_paths: per item, its image file or ``None``.
        texts: per item, its text or ``""`` (see :func:`graphrec.features.compose_texts`).
        image_encoder, text_encoder: encoders for the modalities that are given
            (one :class:`~graphrec.features.ClipEncoder` may serve both).
        batch_size: items per forward pass.
        chunk_size: items per saved chunk (rounded up to a multiple of ``batch_size``;
            default ``16 * batch_size``).
        work_dir: folder of the resumable chunks (``None``: nothing saved, no resume):
            missing, empty or a work folder of an earlier call (:func:`check_work_dir`;
            a folder of other files is refused). The caller removes it once the result
            is saved (:func:`remove_work_dir`, which removes only what graphrec wrote;
            :func:`default_work_dir`).
        workers: threads decoding images, at least 1 (default ``min(8, cpu count)``).
        progress: show a tqdm bar per modality.
        on_chunk: called as ``on_chunk(modality, chunk_index, n_chunks)`` after each newly
            embedded chunk is saved (a hook for progress reports and tests).

    Returns:
        ``{modality: ModalityFeatures}`` for ``image`` and/or ``text``.

    Raises:
        ConfigError: no modality, a modality without its encoder, bad sizes or
            ``workers``, a ``work_dir`` holding other files.
        DataError: inputs not aligned with the items.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if image_paths is None and texts is None:
        raise ConfigError("nothing to embed: give image paths and/or texts")
    chunk = CHUNKS_OF_BATCHES * batch_size if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ConfigError(f"chunk size must be at least 1, got {chunk}")
    chunk = -(-chunk // batch_size) * batch_size
    _check_workers(workers)
    if work_dir is not None:  # refused when it holds other files; marked as graphrec's
        work_dir = open_work_dir(work_dir)
    results: dict[str, ModalityFeatures] = {}

    if image_paths is not None:
        if image_encoder is None:
            raise ConfigError("image paths were given without an image encoder")
        if len(image_paths) != n_items:
            raise DataError(f"{len(image_paths)} image paths for {n_items} items: give one (or None) per item")
        t0 = time.perf_counter()
        idx = np.array([k for k, p in enumerate(image_paths) if p is not None], dtype=np.int64)
        paths = [Path(image_paths[k]) for k in idx.tolist()]  # type: ignore[arg-type]
        manifest = {
            "version": _WORK_VERSION,
            "modality": "image",
            "n": len(paths),
            "chunk_size": chunk,
            "dim": image_encoder.dim,
            "digest": _digest(
                [cache_key_of(image_encoder), _DECODE_VERSION, batch_size, chunk, idx.tolist(),
                 [_path_identity(p) for p in paths]]
            ),
        }
        n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        with _no_pillow_bomb_warning(), ThreadPoolExecutor(max_workers=n_workers) as pool:
            chunks = _ImageChunks(image_encoder, batch_size, pool)
            try:
                x_c, ok_c, resumed = _embed_in_chunks(
                    "image", paths, chunks, image_encoder.dim,
                    chunk_size=chunk, work_dir=None if work_dir is None else Path(work_dir), manifest=manifest,
                    progress=progress, on_chunk=on_chunk,
                )
            finally:  # stopped between chunks: the next chunk's first batch is not needed
                chunks.cancel()
        x = np.zeros((n_items, image_encoder.dim), dtype=np.float32)
        present = np.zeros(n_items, dtype=bool)
        x[idx[ok_c]] = x_c[ok_c]
        present[idx[ok_c]] = True
        results["image"] = ModalityFeatures(
            modality="image",
            x=x,
            present=present,
            n_without_input=int(n_items - len(idx)),
            unreadable=[str(paths[k]) for k in np.flatnonzero(~ok_c).tolist()],
            encoder=image_encoder.describe(),
            n_resumed=resumed,
            seconds=time.perf_counter() - t0,
        )

    if texts is not None:
        if text_encoder is None:
            raise ConfigError("texts were given without a text encoder")
        if len(texts) != n_items:
            raise DataError(f"{len(texts)} texts for {n_items} items: give one (or \"\") per item")
        t0 = time.perf_counter()
        idx = np.array([k for k, t in enumerate(texts) if t and str(t).strip()], dtype=np.int64)
        chosen = [str(texts[k]) for k in idx.tolist()]
        manifest = {
            "version": _WORK_VERSION,
            "modality": "text",
            "n": len(chosen),
            "chunk_size": chunk,
            "dim": text_encoder.dim,
            "digest": _digest([cache_key_of(text_encoder), batch_size, chunk, idx.tolist(), chosen]),
        }
        x_c, ok_c, resumed = _embed_in_chunks(
            "text", chosen, _text_chunk_fn(text_encoder, batch_size), text_encoder.dim,
            chunk_size=chunk, work_dir=None if work_dir is None else Path(work_dir), manifest=manifest,
            progress=progress, on_chunk=on_chunk,
        )
        x = np.zeros((n_items, text_encoder.dim), dtype=np.float32)
        present = np.zeros(n_items, dtype=bool)
        x[idx] = x_c
        present[idx] = True
        results["text"] = ModalityFeatures(
            modality="text",
            x=x,
            present=present,
            n_without_input=int(n_items - len(idx)),
            encoder=text_encoder.describe(),
            n_resumed=resumed,
            seconds=time.perf_counter() - t0,
        )
    return results


def _encode_mask(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(np.asarray(mask, dtype=bool), bitorder="little").tobytes()).decode("ascii")


def _decode_mask(text: str, n: int) -> np.ndarray:
    bits = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(bits, count=n, bitorder="little").astype(bool)


def attach_features(
    dataset: "Dataset",
    features: dict[str, ModalityFeatures],
    *,
    fuse: bool = False,
    sources: dict[str, dict[str, Any]] | None = None,
) -> tuple["Dataset", list[str]]:
    """The dataset with these modalities' features and their record in ``meta["features"]``.

    Args:
        dataset: the dataset the features were extracted for (same item order).
        features: from :func:`extract_item_features`.
        fuse: also store ``item_features["fused"]``: the early fusion
            (:func:`graphrec.graphs.fuse.fuse_features`) of the dataset's ``image`` and
            ``text`` features after this update (whichever exist).
        sources: per modality, where the inputs came from (recorded as given).

    Returns:
        ``(new dataset, notes)``; ``notes`` are lines for the caller to print (the fusion
        summary; a stale ``fused`` modality that was removed).

    Raises:
        DataError: features not aligned with the items; fusing modalities of different
            dimensions or of different models (:func:`check_same_model`).
    """
    item_features = dict(dataset.item_features)
    meta = dict(dataset.meta)
    info = dict(meta.get("features", {}))
    notes: list[str] = []
    for mod, f in features.items():
        if f.x.shape[0] != dataset.n_items:
            raise DataError(f"{mod} features have {f.x.shape[0]} rows for {dataset.n_items} items: extract them for this dataset")
        item_features[mod] = f.x
        info[mod] = {
            **f.encoder,
            "dim": int(f.x.shape[1]),
            "n_items": f.n_items,
            "n_present": f.n_present,
            "n_without_input": f.n_without_input,
            "n_unreadable": len(f.unreadable),
            "unreadable": f.unreadable[:100],
            "present_mask": _encode_mask(f.present),
            "source": (sources or {}).get(mod, {}),
            "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    if fuse:
        mods = [m for m in ("image", "text") if m in item_features]
        if not mods:
            raise DataError("nothing to fuse: the dataset has neither image nor text features")
        check_same_model({m: info.get(m, {}) for m in mods})
        fused = fuse_features(item_features, mods)
        item_features["fused"] = fused.x
        present = np.logical_or.reduce([fused.present[m] for m in mods])
        info["fused"] = {
            "method": "mean of the L2-normalised modality vectors an item has (graphrec.graphs.fuse_features)",
            "modalities": mods,
            "dim": int(fused.x.shape[1]),
            "n_items": fused.n_items,
            "n_present": int(present.sum()),
            "present_mask": _encode_mask(present),
            "sources": {m: {k: info.get(m, {}).get(k) for k in ("model", "pretrained")} for m in mods},
        }
        notes.append(fused.describe(dataset.item_ids))
    elif "fused" in item_features and set(features) & set(info.get("fused", {}).get("modalities", ["image", "text"])):
        del item_features["fused"]
        info.pop("fused", None)
        notes.append("removed the stored fused features (their inputs changed): extract again with --fuse (fuse=True) to rebuild them")
    meta["features"] = info
    return dataset.replace(item_features=item_features, meta=meta), notes


def present_mask(dataset: "Dataset", modality: str) -> np.ndarray:
    """Bool ``(n_items,)``: which items have ``modality``.

    From the mask recorded by :func:`attach_features` when there is one, else from the
    features themselves (an all-zero row is a missing modality).
    """
    if modality not in dataset.item_features:
        raise DataError(
            f"dataset {dataset.name!r} has no {modality!r} features (it has "
            f"{', '.join(dataset.item_features) or 'none'}): extract them with `graphrec features`"
        )
    rec = dataset.meta.get("features", {}).get(modality, {})
    if "present_mask" in rec and rec.get("n_items") == dataset.n_items:
        return _decode_mask(rec["present_mask"], dataset.n_items)
    return np.abs(dataset.item_features[modality]).max(axis=1, initial=0.0) > 0


def feature_info(dataset: "Dataset") -> dict[str, dict[str, Any]]:
    """``meta["features"]`` without the encoded masks (for printing)."""
    return {
        m: {k: v for k, v in rec.items() if k != "present_mask"}
        for m, rec in dataset.meta.get("features", {}).items()
    }
