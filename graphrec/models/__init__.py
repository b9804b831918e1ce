"""Top-k ranking models: one paper per file, all following :class:`Recommender`."""

from graphrec.models.base import ItemGraphRecommender, Recommender, Scorer
from graphrec.models.cb import ContentKNN
from graphrec.models.lattice import LATTICE
from graphrec.models.lightgcn import LightGCN
from graphrec.models.mf import MF
from graphrec.models.mmgef import MMGEF

__all__ = ["ItemGraphRecommender", "Recommender", "Scorer", "ContentKNN", "LATTICE", "LightGCN", "MF", "MMGEF"]
