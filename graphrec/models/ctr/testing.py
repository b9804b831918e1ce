"""The contract every graphrec CTR model must pass, as a reusable pytest mixin.

A model's test module supplies only a constructor::

    class TestDIN(CTRModelContract):
        def make_model(self, schema, item_graphs=None):
            return DIN(schema, item_graphs=item_graphs)

and inherits the checks: output shapes and probabilities in (0, 1), deterministic
reset, finite loss and gradients, a loss that decreases when optimised, ``state_dict``
round trip through ``torch.load(weights_only=True)``, predictions that do not depend on
extra padding of the history, (for models with an item ID embedding) graph
enrichment that changes the item representation and trains the graph weights, and (for
models that score the candidate item alone, ``item_only = True``: LR and FM as the
papers give them) predictions that the user and the history do not change.

Like :class:`graphrec.testing.RecommenderContract`, the suite runs on
``$GRAPHREC_TEST_DEVICE`` (default ``cpu``) and, off the CPU, also checks that loss,
gradients and predictions on the device equal the CPU's.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data.ctr import CTRData, build_ctr_data, sequences_from_dataset
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.models.ctr.base import CTRBatch, CTRModel, CTRSchema
from graphrec.nn import to_torch_sparse
from graphrec.testing import DEVICE, assert_same_loss_and_gradients

__all__ = ["CTRModelContract", "contract_ctr_data", "contract_graphs"]


def contract_ctr_data() -> CTRData:
    """A small synthetic CTR set with two modalities, user and item side fields."""
    ds = synthetic_catalogue(n_users=60, n_items=50, n_clusters=4, items_per_user=(5, 12), seed=0)
    rng = np.random.default_rng(0)
    genres = np.array(["a", "b", "c", "a, c", ""])
    ds = ds.replace(
        user_fields={"gender": rng.choice(np.array(["M", "F"]), ds.n_users)},
        item_fields={"genres": genres[rng.integers(0, len(genres), ds.n_items)]},
    )
    return build_ctr_data(ds, sequences_from_dataset(ds), max_history=6, seed=0)


def contract_graphs(n_items: int) -> list[torch.Tensor]:
    """Two small symmetric normalised item graphs (a ring and a random graph)."""
    rng = np.random.default_rng(1)
    ring = sp.coo_matrix((np.ones(n_items), (np.arange(n_items), (np.arange(n_items) + 1) % n_items)), shape=(n_items, n_items))
    rand = sp.random(n_items, n_items, density=0.1, random_state=rng, format="csr")
    out = []
    for g in (ring, rand):
        g = sp.csr_matrix(g + g.T)
        d = np.asarray(g.sum(1)).ravel()
        inv = np.where(d > 0, d ** -0.5, 0.0)
        out.append(to_torch_sparse(sp.diags(inv) @ g @ sp.diags(inv)))
    return out


class CTRModelContract:
    """Mixin of contract tests; subclasses implement :meth:`make_model`."""

    #: set False for models without an item ID embedding (LR)
    supports_item_graph: bool = True
    #: set True for models that see the candidate item's fields only (GMMF and MARN
    #: section 4.2: LR and FM): no user, no history
    item_only: bool = False

    def make_model(self, schema: CTRSchema, item_graphs: list[torch.Tensor] | None = None) -> CTRModel:  # pragma: no cover
        raise NotImplementedError

    # helpers -------------------------------------------------------------
    def _data(self) -> CTRData:
        if not hasattr(type(self), "_ctr_data"):
            type(self)._ctr_data = contract_ctr_data()
        return type(self)._ctr_data

    def _schema(self) -> CTRSchema:
        return CTRSchema.from_data(self._data())

    def _batch(self, n: int = 32) -> CTRBatch:
        return CTRBatch.from_split(self._data().samples["train"], slice(0, n)).to(DEVICE)

    def _seeded(self, seed: int, **kw) -> CTRModel:
        """The model built on the CPU after ``torch.manual_seed(seed)``, on :data:`DEVICE`."""
        torch.manual_seed(seed)
        return self.make_model(self._schema(), **kw).to(DEVICE)

    # checks --------------------------------------------------------------
    def test_shapes(self) -> None:
        model = self._seeded(0)
        batch = self._batch()
        assert model.n_users == self._data().n_users and model.n_items == self._data().n_items
        logits = model(batch)
        assert logits.shape == (len(batch),)
        p = model.predict(batch)
        assert ((p > 0) & (p < 1)).all()
        parts = model.losses(batch)
        assert parts["loss"].dim() == 0 and "ctr" in parts

    def test_deterministic_reset(self) -> None:
        a, b = self._seeded(1), self._seeded(1)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka
        c = self._seeded(2)
        torch.manual_seed(5)
        a.reset_parameters()
        torch.manual_seed(5)
        c.reset_parameters()
        for (ka, va), (_, vc) in zip(a.state_dict().items(), c.state_dict().items()):
            assert torch.equal(va, vc), f"reset_parameters() after the same seed differs in {ka}"

    def test_finite_loss_and_gradients(self) -> None:
        model = self._seeded(0)
        loss = model.loss(self._batch())
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, "no parameter received a gradient"
        assert all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)

    def test_loss_decreases_when_optimised(self) -> None:
        model = self._seeded(0)
        batch = self._batch(64)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = float(model.losses(batch)["ctr"].detach())
        for _ in range(30):
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()
        assert float(model.losses(batch)["ctr"].detach()) < first

    def test_state_dict_round_trip(self) -> None:
        model = self._seeded(0)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        other = self._seeded(123)
        other.load_state_dict(torch.load(buf, weights_only=True))
        batch = self._batch()
        model.eval()
        other.eval()
        with torch.no_grad():
            assert torch.allclose(model(batch), other(batch))

    def test_padding_does_not_change_predictions(self) -> None:
        model = self._seeded(0)
        model.eval()
        batch = self._batch()
        pad = torch.full((len(batch), 3), -1, dtype=torch.long, device=DEVICE)
        wider = CTRBatch(batch.users, batch.items, torch.cat([batch.history, pad], 1),
                         torch.cat([batch.props, torch.zeros_like(pad)], 1), batch.labels)
        with torch.no_grad():
            assert torch.allclose(model(batch), model(wider), atol=1e-5)

    def test_item_only_models_ignore_the_user_and_the_history(self) -> None:
        if not self.item_only:
            return
        model = self._seeded(0)
        model.eval()
        batch = self._batch()
        assert not any("user" in name for name, _ in model.named_parameters())
        others = CTRBatch(batch.users.flip(0), batch.items, batch.history.flip(0), batch.props.flip(0), batch.labels)
        assert not torch.equal(others.users, batch.users)
        with torch.no_grad():
            assert torch.equal(model(batch), model(others))

    def test_graph_enrichment(self) -> None:
        if not self.supports_item_graph:
            return
        graphs = contract_graphs(self._data().n_items)
        plain = self._seeded(0)
        enriched = self._seeded(0, item_graphs=graphs)
        batch = self._batch()
        with torch.no_grad():
            assert not torch.allclose(plain(batch), enriched(batch))
        loss = enriched.loss(batch)
        loss.backward()
        logits = [p for n, p in enriched.named_parameters() if n.endswith("propagation.logits")]
        assert logits and logits[0].grad is not None and torch.isfinite(logits[0].grad).all()

    if DEVICE.type != "cpu":

        def test_device_matches_cpu(self) -> None:
            """Same seed, same batch: loss, gradients and predictions on the device equal the CPU's."""
            on_dev = self._seeded(0)
            torch.manual_seed(0)
            on_cpu = self.make_model(self._schema())
            batch = self._batch()
            assert_same_loss_and_gradients(on_dev, on_dev.loss(batch), on_cpu, on_cpu.loss(batch.to("cpu")))
            on_dev.eval()
            on_cpu.eval()
            with torch.no_grad():
                torch.testing.assert_close(on_dev.predict(batch).cpu(), on_cpu.predict(batch.to("cpu")), rtol=1e-4, atol=1e-6)
