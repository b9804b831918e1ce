"""The contract every graphrec ranking model must pass, as a reusable pytest mixin.

A model's test module supplies only a constructor::

    class TestLightGCN(RecommenderContract):
        def make_model(self, dataset):
            return build_model("lightgcn", dataset)

and inherits the checks: output shapes, deterministic reset, finite loss and gradients,
a loss that decreases when optimised, ``state_dict`` round trip through
``torch.load(weights_only=True)``, and training items never recommended. Third-party
models can run the same suite.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.models.base import Recommender
from graphrec.train.recommend import recommend

__all__ = ["RecommenderContract", "contract_dataset"]


def contract_dataset() -> Dataset:
    """A small synthetic dataset with features, shared by the contract tests."""
    return synthetic_catalogue(n_users=80, n_items=60, n_clusters=4, items_per_user=(5, 15), seed=0)


class RecommenderContract:
    """Mixin of contract tests; subclasses implement :meth:`make_model`."""

    def make_model(self, dataset: Dataset) -> Recommender:  # pragma: no cover - abstract
        raise NotImplementedError

    # helpers -------------------------------------------------------------
    def _dataset(self) -> Dataset:
        if not hasattr(type(self), "_ds"):
            type(self)._ds = contract_dataset()
        return type(self)._ds

    def _batch(self, ds: Dataset, n: int = 32):
        u, i = ds.pairs("train")
        rng = np.random.default_rng(0)
        sel = rng.choice(len(u), size=n, replace=False)
        neg = rng.integers(0, ds.n_items, size=n)
        return torch.as_tensor(u[sel]), torch.as_tensor(i[sel]), torch.as_tensor(neg)

    def _seeded(self, ds: Dataset, seed: int) -> Recommender:
        torch.manual_seed(seed)
        return self.make_model(ds)

    # checks --------------------------------------------------------------
    def test_shapes(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        assert model.n_users == ds.n_users and model.n_items == ds.n_items
        users_emb, items_emb = model.embeddings()
        assert users_emb.shape[0] == ds.n_users and items_emb.shape[0] == ds.n_items
        scores = model.scorer()(torch.arange(5))
        assert scores.shape == (5, ds.n_items)
        loss = model.loss(*self._batch(ds))
        assert loss.dim() == 0

    def test_deterministic_reset(self) -> None:
        ds = self._dataset()
        a, b = self._seeded(ds, 1), self._seeded(ds, 1)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka
        c = self._seeded(ds, 2)
        torch.manual_seed(5)
        a.reset_parameters()
        torch.manual_seed(5)
        c.reset_parameters()
        for (ka, va), (_, vc) in zip(a.state_dict().items(), c.state_dict().items()):
            assert torch.equal(va, vc), f"reset_parameters() after the same seed differs in {ka}"

    def test_finite_loss_and_gradients(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        loss = model.loss(*self._batch(ds))
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, "no parameter received a gradient"
        assert all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)

    def test_loss_decreases_when_optimised(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        batch = self._batch(ds, 64)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = float(model.loss(*batch).detach())
        for _ in range(30):
            opt.zero_grad()
            model.loss(*batch).backward()
            opt.step()
        assert float(model.loss(*batch).detach()) < first

    def test_state_dict_round_trip(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        other = self._seeded(ds, 123)
        other.load_state_dict(torch.load(buf, weights_only=True))
        users = torch.arange(10)
        with torch.no_grad():
            assert torch.allclose(model.scorer()(users), other.scorer()(users))

    def test_training_items_never_recommended(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        users = np.arange(ds.n_users)
        top, _ = recommend(model.scorer(), ds, users, k=20)
        train = ds.train.toarray().astype(bool)
        assert not train[users[:, None], top].any()
