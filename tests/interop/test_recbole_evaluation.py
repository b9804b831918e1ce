"""graphrec's evaluation under the ``recbole`` protocol against RecBole's own pipeline
(its dataloaders' masks, its collector and metrics, ``Trainer.evaluate``) on one fixed
score matrix, with pairs that appear in two splits: RecBole masks a user's earlier items
except the evaluated split's positives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")

from graphrec.data import Dataset  # noqa: E402
from graphrec.interop.recbole import recbole_workdir  # noqa: E402
from graphrec.train.evaluate import evaluate_ranking  # noqa: E402

KS = (1, 5, 10, 20)
METRICS = ("recall", "ndcg", "mrr", "hit", "precision")


def _with_repeats(ds: Dataset, seed: int = 0) -> Dataset:
    """``ds`` with 120 training pairs repeated in test and 60 in valid (a user who
    listened to an artist in training and again later)."""
    rng = np.random.default_rng(seed)
    train = ds.train.tocoo()
    picked = rng.choice(train.nnz, size=180, replace=False)
    splits = dict(ds.splits)
    for split, rows in (("test", picked[:120]), ("valid", picked[120:])):
        extra = sp.csr_matrix((np.ones(len(rows), np.float32), (train.row[rows], train.col[rows])), shape=train.shape)
        splits[split] = sp.csr_matrix(((splits[split] + extra) > 0).astype(np.float32))
    return ds.replace(splits=splits, name=f"{ds.name}_repeats")


def test_recbole_protocol_equals_recbole_trainer_with_repeated_pairs(lfm2k_small: Dataset, tmp_path: Path,
                                                                     load_recbole: Any) -> None:
    from recbole.model.abstract_recommender import GeneralRecommender
    from recbole.trainer import Trainer
    from recbole.utils import InputType

    ds = _with_repeats(lfm2k_small)
    overlap = ds.train.multiply(ds.split("test")).nnz
    assert overlap == 120
    # a model that scores the items a user trained on highest (as trained models do): a
    # repeated pair ranks at the top where it is not masked
    noise = np.random.default_rng(1).standard_normal((ds.n_users, ds.n_items))
    scores = torch.from_numpy((noise + 4.0 * ds.train.toarray()).astype(np.float32))

    class FixedScores(GeneralRecommender):
        """Scores from one matrix, in RecBole's ids (its item 0 is the padding)."""

        input_type = InputType.PAIRWISE

        def __init__(self, config: Any, dataset: Any) -> None:
            super().__init__(config, dataset)
            self.unused = torch.nn.Parameter(torch.zeros(1))
            users = {str(t): k for k, t in enumerate(ds.user_ids)}
            items = {str(t): k for k, t in enumerate(ds.item_ids)}
            self.users = torch.tensor([users.get(str(t), 0) for t in dataset.field2id_token["user_id"]])
            self.items = torch.tensor([items.get(str(t), 0) for t in dataset.field2id_token["item_id"]])

        def calculate_loss(self, interaction: Any) -> torch.Tensor:
            return self.unused.sum()

        def full_sort_predict(self, interaction: Any) -> torch.Tensor:
            out = scores[self.users[interaction["user_id"]]][:, self.items]
            out[:, 0] = -np.inf
            return out.reshape(-1)

    extra = {"metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision"], "topk": list(KS),
             "load_col": {"inter": ["user_id", "item_id"], "user": ["user_id"], "item": ["item_id"]}}
    rb = load_recbole(ds, tmp_path, FixedScores, extra)
    with recbole_workdir(tmp_path):
        trainer = Trainer(rb.config, FixedScores(rb.config, rb.train.dataset))
        for split, loader in (("valid", rb.valid), ("test", rb.test)):
            theirs = trainer.evaluate(loader, load_best_model=False, show_progress=False)
            ours = evaluate_ranking(lambda u: scores[u].clone(), ds, split, protocol="recbole", ks=KS, metrics=METRICS)
            assert set(theirs) == set(ours) - {"users"}
            for key, value in theirs.items():
                assert ours[key] == pytest.approx(float(value), abs=1e-9), (split, key)
