"""The CTR contract for the baselines (LR, FM, DeepFM, YouTubeNet, DIN), and LR's and
FM's fields."""

from __future__ import annotations

from graphrec.models.ctr import DIN, FM, LR, DeepFM, YouTubeNet
from graphrec.models.ctr.testing import CTRModelContract


class TestLR(CTRModelContract):
    supports_item_graph = False
    item_only = True  # GMMF and MARN section 4.2: the item's ID fields only

    def make_model(self, schema, item_graphs=None):
        return LR(schema)


class TestLRUserFields(CTRModelContract):
    supports_item_graph = False

    def make_model(self, schema, item_graphs=None):
        return LR(schema, user_fields=True)


class TestFM(CTRModelContract):
    item_only = True

    def make_model(self, schema, item_graphs=None):
        return FM(schema, dim=8, item_graphs=item_graphs)


class TestFMUserFields(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return FM(schema, dim=8, item_graphs=item_graphs, user_fields=True)


class TestDeepFM(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return DeepFM(schema, dim=8, hidden=(16,), item_graphs=item_graphs)


class TestYouTubeNet(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return YouTubeNet(schema, id_dim=8, side_dim=4, modality_dim=8, hidden=(16,), item_graphs=item_graphs)


class TestDIN(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return DIN(schema, id_dim=8, side_dim=4, modality_dim=8, attention_hidden=(8,), hidden=(16,), item_graphs=item_graphs)


def test_lr_and_fm_use_the_item_fields_only_unless_asked_for_the_user_fields():
    """The papers' LR and FM see the candidate item's ID fields only (GMMF section 4.2:
    "recommended item ID information only"; MARN: item, shop, brand and category ID);
    --user-fields adds the user ID and the user's side fields, one user x field term more
    in FM. The builders' default is the papers'."""
    from graphrec.models.ctr.base import CTRBatch, CTRSchema
    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.train.ctr import build_ctr_model

    data = contract_ctr_data()
    schema = CTRSchema.from_data(data)
    batch = CTRBatch.from_split(data.samples["train"], slice(0, 16))
    fields = {name: FM(schema, dim=4, user_fields=on).field_vectors(batch).shape[1] for name, on in
              (("item", False), ("user", True))}
    assert fields == {"item": 1 + len(schema.item_side), "user": 2 + len(schema.user_side) + len(schema.item_side)}
    for name in ("lr", "fm"):
        model = build_ctr_model(name, data)
        assert model.user_fields is False and not any("user" in n for n, _ in model.named_parameters())
        with_user = build_ctr_model(name, data, {"user_fields": True})
        assert with_user.user_fields is True and any(n.startswith("user_weight") for n, _ in with_user.named_parameters())
    assert build_ctr_model("deepfm", data).fm.user_fields is True  # DeepFM's FM part keeps the user fields



def test_fm_with_the_item_id_its_only_field_refuses_item_graphs():
    """Without item side fields and user fields (amazon-scientific, the papers' FM) the item
    vector enters no pair, so an item graph would be recorded without effect: refused."""
    import dataclasses

    import pytest

    from graphrec.errors import ConfigError
    from graphrec.models.ctr.base import CTRSchema
    from graphrec.models.ctr.testing import contract_ctr_data, contract_graphs
    from graphrec.train.ctr import build_ctr_model

    schema = dataclasses.replace(CTRSchema.from_data(contract_ctr_data()), item_side={})
    graphs = contract_graphs(schema.n_items)
    assert FM(schema, dim=4).n_fields == 1
    with pytest.raises(ConfigError, match="fm has one field on these data, the item ID .* pass --user-fields"):
        build_ctr_model("fm", schema, item_graphs=graphs)
    assert build_ctr_model("fm", schema, {"user_fields": True}, item_graphs=graphs).n_fields == 2 + len(schema.user_side)
