"""MM-GEF trained end to end by RecBole's own pipeline (Config, create_dataset,
data_preparation, Trainer.fit / evaluate) on the whole of lfm2k, and RecBole's
evaluator agreeing with graphrec's on the trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("recbole", reason="needs RecBole 1.2.1 (the [recbole] extra, numpy < 2; the development lock has it)")

from graphrec.data import Dataset  # noqa: E402
from graphrec.interop.recbole import GraphrecMMGEF, load_checkpoint, recbole_workdir  # noqa: E402
from graphrec.train.evaluate import evaluate_ranking, most_popular_scorer  # noqa: E402


def test_mmgef_trains_in_recbole_on_lfm2k(lfm2k: Dataset, tmp_path: Path, load_recbole: Any) -> None:
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    extra = {"modalities": "text", "embedding_size": 32, "epochs": 3, "train_batch_size": 2048, "learning_rate": 1e-3}
    rb = load_recbole(lfm2k, tmp_path, GraphrecMMGEF, extra)
    with recbole_workdir(tmp_path):
        init_seed(0, True)
        model = GraphrecMMGEF(rb.config, rb.train.dataset)
        trainer = Trainer(rb.config, model)
        untrained = trainer.evaluate(rb.valid, load_best_model=False, show_progress=False)
        best, _ = trainer.fit(rb.train, rb.valid, saved=True, show_progress=False)
        load_checkpoint(model, trainer.saved_model_file)
        test = trainer.evaluate(rb.test, load_best_model=False, show_progress=False)
    assert model.epoch == 3 and model.inner.embedding_dim == 32
    assert model.inner.attention_weights()["cooccur"] != 0.5  # the graph attention was trained
    assert best > untrained["recall@20"] + 0.05
    pop = evaluate_ranking(most_popular_scorer(lfm2k), lfm2k, "test", ks=(20,))
    assert test["recall@20"] > pop["recall@20"]

    # the same model through graphrec's evaluator: same users, same masks, same numbers
    uid = rb.dataset.token2id("user_id", lfm2k.user_ids) - 1
    iid = rb.dataset.token2id("item_id", lfm2k.item_ids) - 1
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model.inner.embeddings()
    item_t = item_emb[torch.as_tensor(iid)].t()
    ours = evaluate_ranking(lambda users: user_emb[torch.as_tensor(uid)[users]] @ item_t, lfm2k, "test", ks=(20,))
    np.testing.assert_allclose(ours["recall@20"], test["recall@20"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["ndcg@20"], test["ndcg@20"], rtol=0, atol=1e-6)
