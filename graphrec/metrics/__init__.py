"""Evaluation metrics (pure torch functions; no dataset, no model).

:mod:`graphrec.metrics.ranking`: top-K ranking metrics (recall, ndcg, precision, hit,
mrr, map) with RecBole's definitions and names. The full-ranking evaluator that feeds
them lives in :mod:`graphrec.train.evaluate`.
:mod:`graphrec.metrics.ctr`: click-through-rate metrics (AUC, GAUC as GMMF eq. 18, logloss).
"""

from graphrec.metrics.ctr import CTR_METRICS, auc, ctr_metrics, gauc, logloss

from graphrec.metrics.ranking import (
    METRICS,
    check_metrics,
    metric_names,
    ranking_metrics,
    ranking_per_user,
    ranking_sums,
)

__all__ = [
    "CTR_METRICS",
    "auc",
    "gauc",
    "logloss",
    "ctr_metrics",
    "METRICS",
    "check_metrics",
    "metric_names",
    "ranking_per_user",
    "ranking_sums",
    "ranking_metrics",
]
