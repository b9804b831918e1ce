"""The CTR contract for the baselines (LR, FM, DeepFM, YouTubeNet, DIN)."""

from __future__ import annotations

from graphrec.models.ctr import DIN, FM, LR, DeepFM, YouTubeNet
from graphrec.models.ctr.testing import CTRModelContract


class TestLR(CTRModelContract):
    supports_item_graph = False

    def make_model(self, schema, item_graphs=None):
        return LR(schema)


class TestFM(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return FM(schema, dim=8, item_graphs=item_graphs)


class TestDeepFM(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return DeepFM(schema, dim=8, hidden=(16,), item_graphs=item_graphs)


class TestYouTubeNet(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return YouTubeNet(schema, id_dim=8, side_dim=4, modality_dim=8, hidden=(16,), item_graphs=item_graphs)


class TestDIN(CTRModelContract):
    def make_model(self, schema, item_graphs=None):
        return DIN(schema, id_dim=8, side_dim=4, modality_dim=8, attention_hidden=(8,), hidden=(16,), item_graphs=item_graphs)
