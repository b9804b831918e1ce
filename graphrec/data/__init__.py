"""Data layer: the :class:`Dataset` object, importers, splits and samplers (no devices)."""

from graphrec.data.dataset import SPLITS, Dataset, build_dataset, interactions_matrix
from graphrec.data.splits import cold_start, random_split, temporal_split

__all__ = [
    "SPLITS",
    "Dataset",
    "build_dataset",
    "interactions_matrix",
    "random_split",
    "temporal_split",
    "cold_start",
]
