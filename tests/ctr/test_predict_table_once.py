"""predict_ctr propagates each graph-enriched item table once per call, not per batch.

Under ``torch.no_grad`` in eval mode the propagated ID table (a sparse product over
every item per graph and layer) is a constant; ``predict_ctr`` computes it once
(:func:`graphrec.models.ctr.base.item_tables_once`) and the probabilities stay
bit-identical to propagating it in every batch. Training still propagates afresh, with
the gradient through the table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.models.ctr import DIN, FM, GMMF, MARN, YouTubeNet
from graphrec.models.ctr.base import CTRSchema, ItemGraphPropagation, ItemIDEncoder, item_tables_once
from graphrec.models.ctr.testing import contract_ctr_data, contract_graphs
from graphrec.train.ctr import _batch, predict_ctr, split_tensors


@pytest.fixture(scope="module")
def data():
    return contract_ctr_data()


def _models(schema, graphs):
    small = dict(id_dim=8, side_dim=4, modality_dim=8, hidden=(16,), item_graphs=graphs)
    return {
        "din": DIN(schema, attention_hidden=(8,), **small),
        "youtubenet": YouTubeNet(schema, **small),
        "fm": FM(schema, dim=8, item_graphs=graphs),
        "gmmf": GMMF(schema, id_dim=8, side_dim=4, user_dim=8, ae_hidden=16, gan_hidden=8, hidden=(16,), item_graphs=graphs),
        "marn": MARN(schema, dim=8, id_dim=8, side_dim=4, hidden=(16,), item_graphs=graphs),
    }


def _per_batch(model, tensors, batch_size: int) -> np.ndarray:
    """predict_ctr as it was: every batch propagates the table again."""
    model.eval()
    n = len(tensors["users"])
    with torch.no_grad():
        out = [model.predict(_batch(tensors, slice(s, min(n, s + batch_size)), torch.device("cpu"))).float()
               for s in range(0, n, batch_size)]
    return torch.cat(out).numpy()


@pytest.mark.parametrize("name", ["din", "youtubenet", "fm", "gmmf", "marn"])
def test_predict_propagates_once_per_call_with_the_same_probabilities(data, name, monkeypatch):
    torch.manual_seed(0)
    model = _models(CTRSchema.from_data(data), contract_graphs(data.n_items))[name]
    encoders = [m for m in model.modules() if isinstance(m, ItemIDEncoder) and m.propagation is not None]
    assert encoders
    t = split_tensors(data.samples["valid"])
    batch_size = 16
    n_batches = -(-len(t["users"]) // batch_size)
    assert n_batches > 3
    calls = []
    forward = ItemGraphPropagation.forward
    monkeypatch.setattr(ItemGraphPropagation, "forward", lambda self, emb: calls.append(self) or forward(self, emb))
    ref = _per_batch(model, t, batch_size)
    per_batch_calls = len(calls)
    assert per_batch_calls >= n_batches  # before: at least once per batch
    calls.clear()
    got = predict_ctr(model, t, "cpu", batch_size)
    assert got.dtype == ref.dtype and np.array_equal(got, ref)  # bit-identical
    assert len(calls) == len(encoders)  # once per encoder and call
    assert all(e._once is None and e._once_depth == 0 for e in encoders)  # released after the call
    calls.clear()
    predict_ctr(model, t, "cpu", batch_size)  # a later call propagates again (weights may have changed)
    assert len(calls) == len(encoders)


def test_training_still_propagates_with_the_gradient(data):
    enc = ItemIDEncoder(data.n_items, 8, contract_graphs(data.n_items))
    with item_tables_once(enc):
        a, b = enc.table(), enc.table()
        assert a is not b and a.requires_grad  # gradients on: a fresh table per call
        a.sum().backward()
        assert enc.embedding.weight.grad is not None
        with torch.no_grad():
            c = enc.table()
            with item_tables_once(enc):  # nested: the outer table is kept
                assert enc.table() is c
            assert enc.rows(torch.tensor([3, 1])) is not None and enc.table() is c
    assert enc._once is None
    with torch.no_grad():
        assert enc.table() is not enc.table()  # outside the context: no cache


@pytest.mark.parametrize("name", ["din", "marn"])
def test_score_pairs_and_modality_attention_propagate_once_per_call(data, name, monkeypatch):
    """graphrec predict's loop (score_pairs) and the modality weights a run saves
    (modality_attention) cut their own batches: each propagated the table per batch."""
    from graphrec.train.ctr import modality_attention
    from graphrec.train.ctr_predict import score_pairs

    torch.manual_seed(0)
    model = _models(CTRSchema.from_data(data), contract_graphs(data.n_items))[name]
    n_encoders = sum(isinstance(m, ItemIDEncoder) and m.propagation is not None for m in model.modules())
    t = split_tensors(data.samples["valid"])
    calls = []
    forward = ItemGraphPropagation.forward
    monkeypatch.setattr(ItemGraphPropagation, "forward", lambda self, emb: calls.append(self) or forward(self, emb))
    ref = _per_batch(model, t, 16)
    calls.clear()
    got = score_pairs(model, t["users"].numpy(), t["items"].numpy(), t["history"].numpy(),
                      None if "hist_delta" not in t else t["hist_delta"].numpy(), batch_size=16)
    assert np.array_equal(got, ref) and len(calls) == n_encoders
    calls.clear()
    weights = modality_attention(model, data, "valid", batch_size=16)
    assert (weights is not None) == (name == "marn")  # DIN has no modality weights: it stops at the first batch
    if name == "marn":
        assert len(calls) == n_encoders
