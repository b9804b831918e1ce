"""LightGCN trained for a few epochs on real data beats a most-popular baseline."""

from __future__ import annotations

from graphrec.data.formats import read_mmrec
from graphrec.testing import DEVICE
from graphrec.train import TrainConfig, evaluate_ranking, run_training
from graphrec.train.evaluate import most_popular_scorer


def test_lightgcn_beats_most_popular_on_lastfm(shared_data):
    ds = read_mmrec(shared_data / "lfm2k")
    config = TrainConfig(epochs=8, lr=5e-3, batch_size=2048, ks=(20,), progress=False, seed=0)
    record, _ = run_training(ds, "lightgcn", {"embedding_dim": 32, "num_layers": 2}, config, device=DEVICE)
    pop = evaluate_ranking(most_popular_scorer(ds), ds, "test", ks=(20,))
    ours = record["test"]["all"]
    # Same split, same protocol, same users: the model must clearly beat popularity.
    assert ours["users"] == pop["users"]
    assert ours["recall@20"] > 1.5 * pop["recall@20"], (ours["recall@20"], pop["recall@20"])
    assert ours["ndcg@20"] > 1.5 * pop["ndcg@20"], (ours["ndcg@20"], pop["ndcg@20"])
