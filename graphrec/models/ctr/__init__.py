"""Click-through-rate models, one paper per file, sharing :class:`CTRModel`'s contract.

Baselines of the papers' tables: :class:`LR`, :class:`FM`, :class:`DeepFM`,
:class:`YouTubeNet`, :class:`DIN`; the multimodal models :class:`GMMF` and :class:`MARN`.
"""

from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema, ItemGraphPropagation
from graphrec.models.ctr.deepfm import DeepFM
from graphrec.models.ctr.din import DIN
from graphrec.models.ctr.fm import FM
from graphrec.models.ctr.gmmf import GMMF
from graphrec.models.ctr.lr import LR
from graphrec.models.ctr.marn import MARN
from graphrec.models.ctr.youtubenet import YouTubeNet

CTR_MODELS = {"lr": LR, "fm": FM, "deepfm": DeepFM, "youtubenet": YouTubeNet, "din": DIN, "gmmf": GMMF, "marn": MARN}

__all__ = [
    "CTRBatch",
    "CTRModel",
    "CTRSchema",
    "ItemGraphPropagation",
    "CTR_MODELS",
    "LR",
    "FM",
    "DeepFM",
    "YouTubeNet",
    "DIN",
    "GMMF",
    "MARN",
]
