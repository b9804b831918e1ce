"""Bridges to other recommender libraries, imported only when used.

* :mod:`graphrec.interop.recbole`: graphrec's LightGCN, MM-GEF and LATTICE as RecBole
  1.2.1 ``GeneralRecommender`` models, and RecBole datasets as graphrec datasets
  (``docs/recbole.md``). It imports RecBole at import time; nothing in the rest of
  graphrec imports it, so the core never depends on RecBole.

The opposite direction (graphrec datasets as RecBole atomic files) needs no RecBole
and lives in :mod:`graphrec.data.formats.recbole` and ``graphrec export-recbole``.
"""

from __future__ import annotations

__all__: list[str] = []
