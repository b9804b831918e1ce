"""Evaluation metrics (pure torch functions; no dataset, no model).

:mod:`graphrec.metrics.ranking`: top-K ranking metrics (recall, ndcg, precision, hit,
mrr, map) with RecBole's definitions and names. The full-ranking evaluator that feeds
them lives in :mod:`graphrec.train.evaluate`.
"""

from graphrec.metrics.ranking import (
    METRICS,
    check_metrics,
    metric_names,
    ranking_metrics,
    ranking_per_user,
    ranking_sums,
)

__all__ = [
    "METRICS",
    "check_metrics",
    "metric_names",
    "ranking_per_user",
    "ranking_sums",
    "ranking_metrics",
]
