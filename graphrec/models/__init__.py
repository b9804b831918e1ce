"""Models, one paper per file. They receive graphs and features as tensors."""

from graphrec.models.base import Recommender, Scorer
from graphrec.models.lightgcn import LightGCN
from graphrec.models.mmgef import MMGEF

__all__ = ["Recommender", "Scorer", "LightGCN", "MMGEF"]
