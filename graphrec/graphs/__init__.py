"""Pure functions that build, normalise and store item-item (and user-item) graphs."""

from graphrec.graphs.bipartite import bipartite_adjacency, normalized_bipartite
from graphrec.graphs.normalize import NORMALIZATIONS, normalize_adjacency

__all__ = ["bipartite_adjacency", "normalized_bipartite", "NORMALIZATIONS", "normalize_adjacency"]
