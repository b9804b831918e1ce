"""CTR models encode only the batch's items: the same values as the table over every item.

A training step used to project every item's content features (DIN, YouTubeNet: the
concatenated item table; MARN: the (n_items, M, d) modality table, D1 over all items),
which at 10^5 items cost 0.16 s (DIN) and 0.5 s (MARN) per batch of 256. The models now
encode the batch's distinct candidates and history items and gather them; these tests
hold the result to the full-table computation (logits, every loss part and every
gradient) and check that the content projections see no other item.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphrec.models.ctr import DIN, FM, GMMF, LR, MARN, DeepFM, YouTubeNet
from graphrec.models.ctr.base import CTRBatch, CTRSchema, distinct_items
from graphrec.models.ctr.testing import contract_ctr_data, contract_graphs


@pytest.fixture(scope="module")
def data():
    return contract_ctr_data()


def _batch(data, n: int = 48, start: int = 0) -> CTRBatch:
    return CTRBatch.from_split(data.samples["train"], slice(start, start + n))


def _grads(model) -> dict[str, torch.Tensor]:
    return {k: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for k, p in model.named_parameters()}


def _assert_same(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert ref.keys() == got.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-6, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")


def _models(schema: CTRSchema, graphs):
    small = dict(id_dim=8, side_dim=4, modality_dim=8, hidden=(16,), item_graphs=graphs)
    return {
        "din": DIN(schema, attention_hidden=(8,), **small),
        "youtubenet": YouTubeNet(schema, **small),
        "marn-ddma": MARN(schema, dim=8, id_dim=8, side_dim=4, hidden=(16,), item_graphs=graphs),
        "marn-adv": MARN(schema, dim=8, id_dim=8, side_dim=4, hidden=(16,), adversarial="adv", item_graphs=graphs),
        "marn-none-gru": MARN(schema, dim=8, id_dim=8, side_dim=4, hidden=(16,), adversarial="none",
                              sequence="gru", fusion="concat", item_graphs=graphs),
    }


def _full_table_losses(model, batch: CTRBatch) -> dict[str, torch.Tensor]:
    """The losses as computed before: every item's representation, then indexed."""
    if isinstance(model, MARN):
        model._aux = {}
        table = model.item_table(aux_items=torch.unique(batch.items) if model.adversarial != "none" else None)
        logits = model._logits(batch, table[batch.items], table[batch.hist_index])
        out = {"ctr": F.binary_cross_entropy_with_logits(logits, batch.labels)}
        total = out["ctr"]
        if model._aux:
            aux = dict(model._aux)
            adv = aux["adv"] + aux.get("spec", torch.zeros(()))
            total = total + model.adv_weight * adv + aux.get("d1", torch.zeros(()))
            out.update(aux)
        out["loss"] = total
        return out
    table = model.item_enc.table()
    logits = model._score(batch, table[batch.items], table[batch.hist_index])
    bce = F.binary_cross_entropy_with_logits(logits, batch.labels)
    return {"ctr": bce, "loss": bce}


@pytest.mark.parametrize("graphs", [False, True], ids=["plain", "item-graph"])
@pytest.mark.parametrize("name", ["din", "youtubenet", "marn-ddma", "marn-adv", "marn-none-gru"])
def test_batch_items_equal_the_full_table(data, name, graphs):
    schema = CTRSchema.from_data(data)
    g = contract_graphs(data.n_items) if graphs else None
    torch.manual_seed(0)
    model = _models(schema, g)[name]
    model.set_progress(0.4)  # MARN: a non-zero reversal coefficient
    for start in (0, 48, 96):
        batch = _batch(data, start=start)
        model.zero_grad()
        ref = _full_table_losses(model, batch)
        ref["loss"].backward()
        ref_grads = _grads(model)
        model.zero_grad()
        got = model.losses(batch)
        got["loss"].backward()
        _assert_same({k: v.detach() for k, v in ref.items()},
                     {k: v.detach() for k, v in got.items() if k in ref})
        assert set(ref) <= set(got)
        _assert_same(ref_grads, _grads(model))
        model.eval()
        with torch.no_grad():  # prediction: the same logits as the full table's
            table = model.item_table() if isinstance(model, MARN) else model.item_enc.table()
            score = model._logits if isinstance(model, MARN) else model._score
            torch.testing.assert_close(model(batch), score(batch, table[batch.items], table[batch.hist_index]),
                                       rtol=1e-6, atol=1e-6)
        model.train()


def test_distinct_items_index_the_batch(data):
    batch = _batch(data, 40)
    items, cand, hist = distinct_items(batch)
    assert torch.equal(items, torch.unique(torch.cat([batch.items, batch.hist_index.reshape(-1)])))
    assert torch.equal(items[cand], batch.items) and torch.equal(items[hist], batch.hist_index)


@pytest.mark.parametrize("name", ["din", "youtubenet", "marn-ddma", "gmmf", "deepfm"])
def test_content_projections_see_only_the_batch_items(data, name):
    """A step projects the features of the batch's distinct items, not of every item."""
    schema = CTRSchema.from_data(data)
    torch.manual_seed(0)
    if name == "gmmf":
        model = GMMF(schema)
        layers = [model.encoders[m][0] for m in model.modalities]
    elif name == "deepfm":
        model = DeepFM(schema, dim=8, hidden=(16,))
        layers = list(model.proj.values())
    else:
        model = _models(schema, None)[name]
        layers = list((model.embed if isinstance(model, MARN) else model.item_enc.proj).values())
    rows: list[int] = []
    for layer in layers:
        layer.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    batch = _batch(data, 4)
    n_distinct = len(torch.unique(torch.cat([batch.items, batch.hist_index.reshape(-1)])))
    assert n_distinct < data.n_items
    model.losses(batch)["loss"].backward()
    model.eval()
    with torch.no_grad():
        model(batch)
    assert rows and max(rows) <= n_distinct, (rows, n_distinct, data.n_items)


@pytest.mark.parametrize("graphs", [False, True], ids=["plain", "item-graph"])
def test_side_and_id_rows_equal_their_tables(data, graphs):
    schema = CTRSchema.from_data(data)
    torch.manual_seed(0)
    fm = FM(schema, dim=8, item_graphs=contract_graphs(data.n_items) if graphs else None, user_fields=True)
    items = torch.tensor([3, 0, 3, 7, 49])
    users = torch.tensor([1, 1, 0, 59])
    assert fm.item_side.names and fm.user_side.names  # genres (multi-valued), gender
    assert torch.equal(fm.item_vec.rows(items), fm.item_vec.table()[items])
    assert torch.equal(fm.item_side.rows(items), fm.item_side.table()[items])
    assert torch.equal(fm.user_side.rows(users), fm.user_side.table()[users])
    for a, b in zip(fm.item_side.field_rows(items), fm.item_side.field_tables()):
        assert torch.equal(a, b[items])
    lr = LR(schema)
    assert torch.equal(lr.item_side.rows(items), lr.item_side.table()[items])
