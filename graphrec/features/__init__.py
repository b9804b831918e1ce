"""Item content features from raw catalogues: CLIP image and text embeddings.

MM-GEF's early fusion (arXiv:2308.07222, section 3.1) starts from CLIP image and text vectors of
every item. This package produces them from a folder of item images and a table of
titles/descriptions, aligned with a :class:`graphrec.data.Dataset`'s item order:

* :mod:`graphrec.features.inputs`: reading item tables (CSV/TSV/JSON lines), mapping items
  to image files, composing texts (pure; no torch);
* :mod:`graphrec.features.encoders`: :class:`ClipEncoder` (open_clip, images and texts) and
  :class:`SentenceTextEncoder` (sentence-transformers, texts); both optional extras,
  imported only when an encoder is built;
* :mod:`graphrec.features.extract`: batched, resumable extraction with missing-content
  masks (:func:`extract_item_features`) and :func:`attach_features`, which stores the
  features (and optionally the early-fused vector) with their provenance in the dataset.

``graphrec features`` is the command line over these; ``docs/features.md`` the guide.
"""

from graphrec.features.encoders import ClipEncoder, LargeImageWarning, SentenceTextEncoder, load_image
from graphrec.features.extract import (
    ModalityFeatures,
    UnreadableImageWarning,
    WORK_MARKER,
    attach_features,
    check_work_dir,
    default_work_dir,
    discard_chunks,
    extract_item_features,
    feature_info,
    open_work_dir,
    present_mask,
    remove_work_dir,
)
from graphrec.features.inputs import (
    IMAGE_EXTENSIONS,
    ItemTable,
    compose_texts,
    find_images,
    image_keys,
    parse_fields,
    read_item_table,
)

__all__ = [
    "ClipEncoder",
    "SentenceTextEncoder",
    "load_image",
    "LargeImageWarning",
    "ModalityFeatures",
    "UnreadableImageWarning",
    "attach_features",
    "WORK_MARKER",
    "check_work_dir",
    "default_work_dir",
    "discard_chunks",
    "extract_item_features",
    "feature_info",
    "open_work_dir",
    "present_mask",
    "remove_work_dir",
    "IMAGE_EXTENSIONS",
    "ItemTable",
    "compose_texts",
    "find_images",
    "image_keys",
    "parse_fields",
    "read_item_table",
]
