"""Image and text encoders: open_clip (both modalities) and sentence-transformers (text).

Both backends are optional extras and are imported lazily, inside the constructors, so
``import graphrec.features`` works without them:

* :class:`ClipEncoder`: ``open_clip.create_model_and_transforms(model, pretrained=...)``,
  the model's own evaluation preprocessing for images and its tokenizer for texts
  (which truncates to the model's context length). ``pretrained`` is an open_clip tag
  (``openai``, ``laion2b_s34b_b79k``, ...; downloaded, needs internet), a local
  checkpoint file, or ``None`` for random weights (tests and benchmarks only; seeded,
  so two runs build the same model). ``model`` is an open_clip model name, an
  ``hf-hub:``/``local-dir:`` reference, or a path to a model config ``.json`` (registered
  with ``open_clip.add_model_config``; the model name is the file stem).
* :class:`SentenceTextEncoder`: ``sentence_transformers.SentenceTransformer(name)`` for
  texts only.

Encoders run in inference mode on the device they were given; on CUDA, ``precision="auto"``
uses mixed precision (``torch.autocast`` to float16). Outputs are float32 numpy arrays of
the raw (not normalised) embeddings. Decoding an image file is :func:`load_image`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from graphrec.errors import ConfigError

__all__ = [
    "ImageEncoder",
    "TextEncoder",
    "ClipEncoder",
    "SentenceTextEncoder",
    "load_image",
    "decode_image",
    "UnreadableImage",
    "LargeImageWarning",
    "PRECISIONS",
]

PRECISIONS = ("auto", "fp32", "amp")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class ImageEncoder(Protocol):
    """What the extraction loop needs from an image encoder."""

    dim: int

    def preprocess(self, image: Any) -> Any:
        """A decoded RGB PIL image -> the model's input tensor (no batch dimension)."""

    # Optional: ``input_size`` (int or None), the smallest image side the preprocessing
    # needs; where given, large JPEGs are decoded at a reduced scale (:func:`load_image`).

    def encode_images(self, pixels: Any) -> np.ndarray:
        """A batch tensor from :meth:`preprocess` outputs -> float32 ``(batch, dim)``."""

    def describe(self) -> dict[str, Any]:
        """Provenance recorded with the features (backend, model, weights, dim)."""


class TextEncoder(Protocol):
    """What the extraction loop needs from a text encoder."""

    dim: int

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> float32 ``(len(texts), dim)``."""

    def describe(self) -> dict[str, Any]:
        """Provenance recorded with the features."""


class UnreadableImage(Exception):
    """An image file that exists but cannot be decoded (truncated, not an image, ...)."""


#: Pillow's modes of 16-bit unsigned samples (native, little- and big-endian)
_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _to_8bit_gray(im: Any) -> Any:
    """A single-band image of 16-bit, 32-bit integer or float samples as an 8-bit ``L`` image.

    Pillow's ``convert("L"/"RGB")`` clips these samples to 0..255 instead of scaling them,
    so a 16-bit photo turns (almost) white. The rule, by the mode's range:

    * ``I;16`` (16-bit PNG, TIFF): ``value >> 8``, the full 0..65535 range onto 0..255;
    * ``I`` (32-bit integers): samples within 0..255 are 8-bit content and kept as they
      are; within 0..65535, 16-bit content (older Pillow opens 16-bit PNGs as ``I``):
      ``value >> 8``; anything else is stretched from its minimum to its maximum;
    * ``F`` (floats): samples within 0..1 are normalised intensities, scaled by 255;
      within 0..255 kept as they are; anything else stretched from its minimum to its
      maximum (NaN and infinite samples count as 0).

    Scaled values are rounded to whole levels; a constant image outside those ranges is black.
    """
    from PIL import Image

    a = np.asarray(im)
    if im.mode in _UINT16_MODES:
        return Image.fromarray((a.astype(np.uint16) >> 8).astype(np.uint8), mode="L")
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F" and lo >= 0 and hi <= 1:
        scaled = a * 255
    elif lo >= 0 and hi <= 255:
        scaled = a
    elif im.mode == "I" and lo >= 0 and hi <= 65535:
        scaled = np.floor(a / 256)  # value >> 8
    else:
        scaled = (a - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


class LargeImageWarning(UserWarning):
    """An image file above Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``);
    the message names the file. It is still read (a JPEG at a reduced scale)."""


#: formats Pillow can decode at 1/2, 1/4 or 1/8 scale (``Image.draft``): JPEG and its
#: multi-picture variant
_DRAFT_FORMATS = ("JPEG", "MPO")


def decode_image(path: str | os.PathLike, size: int | None = None) -> tuple[Any, str | None]:
    """:func:`load_image`'s work: ``(RGB image, note)``, the note a :class:`LargeImageWarning`
    message or ``None``. Issues no warning itself (it runs in decoding threads; Pillow's own
    decompression-bomb warning, which does not name the file, is the caller's to silence)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            w, h = im.size
            note = None
            limit = Image.MAX_IMAGE_PIXELS
            scale = min(w // size, h // size) if size else 0
            if scale >= 2 and im.format in _DRAFT_FORMATS:  # decoded at 1/2, 1/4 or 1/8 scale
                im.draft(None, (size, size))
            if limit and w * h > limit:
                how = f"decoded at {im.size[0]} x {im.size[1]}" if im.size != (w, h) else "decoded at full size"
                note = (
                    f"image {path} is {w} x {h} pixels ({w * h / 1e6:.3g} Mpx), above Pillow's decompression-bomb "
                    f"limit of {limit / 1e6:.3g} Mpx (PIL.Image.MAX_IMAGE_PIXELS): check that it is a genuine image "
                    f"({how}; twice the limit is refused as unreadable)"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB"), note
            if im.mode in ("I", "F", *_UINT16_MODES):
                im = _to_8bit_gray(im)
            return im.convert("RGB"), note
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UnreadableImage(" ".join(str(e).split()) or type(e).__name__) from None


def load_image(path: str | os.PathLike, size: int | None = None) -> Any:
    """Decode an image file into an RGB PIL image.

    EXIF orientation is applied; transparent images (RGBA, LA, palette with transparency)
    are composited on white rather than on black; grayscale images of 16-bit, 32-bit
    integer or float samples (Pillow modes ``I;16``, ``I``, ``F``) are scaled to 8 bits
    by their type's range (:func:`_to_8bit_gray`), not clipped.

    Args:
        path: the image file.
        size: the smallest side the caller needs (a model's input size, e.g. 224). A JPEG
            at least twice as large in both directions is decoded at a reduced scale
            (1/2, 1/4 or 1/8, Pillow's ``Image.draft``: libjpeg's DCT scaling), the
            smallest reduction that keeps both sides at least ``size``: a huge photo then
            takes a fraction of the memory and time. The pixels of such an image differ
            slightly from a full-size decode followed by a resize; smaller images and
            other formats are decoded as without ``size``. ``None``: full size.

    An image above Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``)
    warns with a :class:`LargeImageWarning` naming the file; above twice the limit it is
    unreadable. Raises :class:`UnreadableImage` when the file cannot be decoded.
    """
    from PIL import Image

    if threading.current_thread() is threading.main_thread():
        with warnings.catch_warnings():  # Pillow's own warning does not name the file: ours does
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image, note = decode_image(path, size)
    else:  # the warning filters are process-wide: not changed from another thread
        image, note = decode_image(path, size)
    if note is not None:
        warnings.warn(note, LargeImageWarning, stacklevel=2)
    return image


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as e:
        raise ConfigError(
            f"CLIP features need open_clip_torch ({e}): pip install 'graphrec[clip]' "
            "(or pip install open_clip_torch torchvision pillow)"
        ) from None
    except RuntimeError as e:  # torchvision built for another torch (e.g. CPU-only torch)
        raise ConfigError(
            f"open_clip could not be imported ({' '.join(str(e).split())}): install matching "
            "torch and torchvision builds, e.g. pip install torch==2.14.1 torchvision==0.29.1"
        ) from None
    return open_clip


def _use_amp(precision: str, device: str) -> bool:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "amp" and not str(device).startswith("cuda"):
        raise ConfigError(f"mixed precision needs a CUDA device (got {device}): use precision fp32 or auto")
    return precision == "amp" or (precision == "auto" and str(device).startswith("cuda"))


def _file_identity(path: Path) -> str:
    """Size, modification time and a hash of the first MiB: enough to notice another file."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()[:16]}"


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.lower().endswith(_CHECKPOINT_SUFFIXES)



#: where open_clip's pretrained tags download from (most tags; OpenAI's from their CDN)
_HUB_HOST = "huggingface.co"


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub opens within ``timeout`` seconds
    (no name resolution or no route: False at once)."""
    import socket

    try:
        socket.create_connection((_HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline():
    """huggingface_hub in offline mode, its download logging quiet: cached weights load,
    missing ones fail at once, instead of about a minute of retries and warnings when there
    is no network."""
    import logging

    try:
        import huggingface_hub.constants as hub
    except ImportError:  # no hub client: nothing to switch
        yield
        return
    before = getattr(hub, "HF_HUB_OFFLINE", None)
    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "root")]
    levels = [lg.level for lg in loggers]
    hub.HF_HUB_OFFLINE = True
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class ClipEncoder:
    """open_clip image + text encoder (see the module doc).

    Args:
        model: open_clip model name (``ViT-B-32``), ``hf-hub:ORG/REPO``,
            ``local-dir:PATH``, or a path to a model config ``.json``.
        pretrained: weights: an open_clip tag, a local checkpoint path, or ``None`` for
            random weights.
        device: ``cpu``, ``auto`` (CUDA when available), ``cuda``, ``cuda:N``.
        precision: ``auto`` (mixed precision on CUDA, float32 on CPU), ``fp32`` or ``amp``.
        seed: seed of the random initialisation (used when ``pretrained`` is ``None``).
        cache_dir: where open_clip stores downloaded weights (its default when ``None``).
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        device: str = "cpu",
        precision: str = "auto",
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        import torch

        from graphrec._device import resolve_device

        self.device = str(resolve_device(device))  # "auto" resolved; CUDA where there is none: one line
        self.amp = _use_amp(precision, self.device)
        self.precision = "amp" if self.amp else "fp32"
        open_clip = _import_open_clip()
        name = str(model)
        self.model_config: str | None = None
        if name.lower().endswith(".json"):
            cfg = Path(name)
            if not cfg.is_file():
                raise ConfigError(f"model config {cfg} not found: pass an open_clip model name or a config .json")
            open_clip.add_model_config(cfg)
            if cfg.stem not in open_clip.list_models():
                raise ConfigError(
                    f"{cfg} is not an open_clip model config (it needs embed_dim, vision_cfg, text_cfg)"
                )
            self.model_config = _file_identity(cfg)
            name = cfg.stem
        weights_id = "random"
        from_file = False  # --pretrained is a checkpoint file (else a tag, or random weights)
        if pretrained is not None:
            p = Path(pretrained).expanduser()
            if p.is_file():
                pretrained = str(p)
                weights_id = _file_identity(p)
                from_file = True
            elif _looks_like_path(pretrained):
                raise ConfigError(
                    f"checkpoint {pretrained} not found: pass an existing checkpoint file or an "
                    "open_clip pretrained tag (e.g. openai)"
                )
            else:
                weights_id = f"tag:{pretrained}"
        self.model_name = name
        self.pretrained = pretrained
        self._weights_id = weights_id
        offline = False
        try:
            if pretrained is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    model_, _, preprocess = open_clip.create_model_and_transforms(
                        name, pretrained=None, device=self.device, cache_dir=cache_dir
                    )
            else:
                offline = not from_file and not _hub_reachable()
                with _hub_offline() if offline else contextlib.nullcontext():
                    model_, _, preprocess = open_clip.create_model_and_transforms(
                        name, pretrained=pretrained, device=self.device, cache_dir=cache_dir
                    )
            tokenizer = open_clip.get_tokenizer(name)
        except ConfigError:
            raise
        except Exception as e:  # open_clip raises RuntimeError/ValueError/HF hub errors
            msg = " ".join(str(e).split())[:300]
            if not name.startswith(("hf-hub:", "local-dir:")) and name not in open_clip.list_models():
                raise ConfigError(
                    f"unknown open_clip model {name!r}: pick one of open_clip.list_models() "
                    "(e.g. ViT-B-32, ViT-L-14) or pass a model config .json"
                ) from None
            if pretrained is None:  # random weights: nothing was loaded, the model itself failed
                raise ConfigError(f"could not build open_clip model {name!r} ({msg})") from None
            if from_file:
                raise ConfigError(
                    f"could not load checkpoint {pretrained} into open_clip model {name!r} ({msg}): pass a "
                    f"checkpoint of {name} (an open_clip or OpenAI CLIP state dict), or the --model it belongs to"
                ) from None
            if offline:
                raise ConfigError(
                    f"pretrained {pretrained!r} of open_clip model {name!r} is not in the local cache and "
                    f"{_HUB_HOST} cannot be reached: run once with internet (the weights are cached), or pass "
                    "a local checkpoint file as --pretrained"
                ) from None
            raise ConfigError(
                f"could not load open_clip model {name!r} with pretrained {pretrained!r} ({msg}): "
                "a pretrained tag needs internet; offline, pass a local checkpoint file"
            ) from None
        model_.eval()
        self.seed = seed if pretrained is None else None
        self._model = model_
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self.dim = int(self._infer_dim())
        self.context_length = int(getattr(tokenizer, "context_length", 0) or 0)
        #: the smallest image side the preprocessing needs (see :func:`load_image`'s size)
        self.input_size: int | None = self._infer_input_size()

    def _infer_input_size(self) -> int | None:
        """The largest size the preprocessing resizes or crops to (its transforms' ``size``)
        and the vision tower's ``image_size``; ``None`` when neither is known."""
        sizes: list[int] = []
        for value in [getattr(t, "size", None) for t in getattr(self._preprocess, "transforms", [])] + [
            getattr(getattr(self._model, "visual", None), "image_size", None)
        ]:
            for v in value if isinstance(value, (tuple, list)) else [value]:
                if isinstance(v, int) and v > 0:
                    sizes.append(v)
        return max(sizes) if sizes else None

    def _infer_dim(self) -> int:
        import torch

        visual = getattr(self._model, "visual", None)
        dim = getattr(visual, "output_dim", None)
        if isinstance(dim, int):
            return dim
        proj = getattr(self._model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return int(proj.shape[-1])
        with torch.inference_mode():  # last resort: embed one empty text
            return int(self.encode_texts([""]).shape[1])

    def _autocast(self) -> Any:
        import torch

        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def preprocess(self, image: Any) -> Any:
        """The model's evaluation transform (resize, crop, normalise) of an RGB image."""
        return self._preprocess(image)

    def encode_images(self, pixels: Any) -> np.ndarray:
        """Image embeddings of a preprocessed batch ``(batch, 3, H, W)``."""
        import torch

        with torch.inference_mode(), self._autocast():
            out = self._model.encode_image(pixels.to(self.device, non_blocking=True))
        return out.float().cpu().numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings; the tokenizer truncates each text to the context length."""
        import torch

        tokens = self._tokenizer(list(texts))
        with torch.inference_mode(), self._autocast():
            out = self._model.encode_text(tokens.to(self.device))
        return out.float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "open_clip",
            "model": self.model_name,
            "pretrained": self.pretrained if self.pretrained is not None else "none (random weights)",
            "dim": self.dim,
            "precision": self.precision,
            "context_length": self.context_length,
        }

    def cache_key(self) -> str:
        """Identifies model + weights + numerics for resuming (device type included)."""
        dev = "cuda" if self.device.startswith("cuda") else self.device
        return "|".join(
            str(v)
            for v in ("open_clip", self.model_name, self.model_config, self._weights_id, self.seed, self.precision, dev)
        )


class SentenceTextEncoder:
    """sentence-transformers text encoder (``--text-model``), imported lazily.

    Args:
        model: a sentence-transformers model name or a local model folder.
        device: ``cpu``, ``auto`` (CUDA when available), ``cuda``, ``cuda:N``.
        normalize: return unit vectors (default ``False``: raw, as for CLIP).
    """

    def __init__(self, model: str, *, device: str = "cpu", normalize: bool = False) -> None:
        from graphrec._device import resolve_device

        device = str(resolve_device(device))
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "the sentence-transformers text backend is not installed: pip install sentence-transformers"
            ) from None
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as e:  # download/config errors of the library
            msg = " ".join(str(e).split())[:300]
            raise ConfigError(
                f"could not load sentence-transformers model {model!r} ({msg}): pass a local model "
                "folder when offline"
            ) from None
        self.model_name = str(model)
        self.device = str(device)
        self.normalize = bool(normalize)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        p = Path(model)
        self._weights_id = _file_identity(p / "config.json") if (p / "config.json").is_file() else str(model)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(
            list(texts),
            batch_size=max(len(texts), 1),
            convert_to_numpy=True,
            show_progress_bar=False,
            normalize_embeddings=self.normalize,
        )
        return np.asarray(out, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": "sentence-transformers", "model": self.model_name, "dim": self.dim}

    def cache_key(self) -> str:
        dev = "cuda" if self.device.startswith("cuda") else self.device
        return f"sentence-transformers|{self._weights_id}|{self.normalize}|{dev}"


def cache_key_of(encoder: Any) -> str:
    """An encoder's resume key: its ``cache_key()`` when it has one, else its description."""
    fn: Callable[[], str] | None = getattr(encoder, "cache_key", None)
    if fn is not None:
        return fn()
    return repr(sorted(encoder.describe().items()))
