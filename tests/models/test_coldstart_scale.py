"""The cold-item path's serving cost (graphrec/models/coldstart.py, graphrec/models/cb.py):
the neighbour term of the unseen columns and the new items' scores, computed from the
batch's sparse histories, give the straightforward formulas' numbers (a hand-computed
graph; a random catalogue), and no dense (batch x n_items) or (n_items x new items)
intermediate is formed (every op's output recorded while scoring)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import graphrec.models.cb as cb
import graphrec.models.coldstart as coldstart
from graphrec.graphs import knn_graph
from graphrec.models import LightGCN
from graphrec.models.cb import ContentKNN
from graphrec.models.coldstart import _COSINE_TOLERANCE, ColdItemRecommender
from graphrec.nn import to_torch_sparse, unit_rows
from graphrec.testing import DEVICE


def _hand_knn() -> ContentKNN:
    """3 users, 4 items. Histories: u0 {0, 1}, u1 {1}, u2 {2}. S (row j = j's
    neighbours): S_03 = 0.5, S_13 = 0.25, S_21 = 0.75, S_30 = 0.5, S_31 = 0.125."""
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    sim = sp.csr_matrix(
        (np.array([0.5, 0.25, 0.75, 0.5, 0.125], dtype=np.float32),
         (np.array([0, 1, 2, 3, 3]), np.array([3, 3, 1, 0, 1]))),
        shape=(4, 4),
    )
    return ContentKNN(3, 4, to_torch_sparse(train), to_torch_sparse(sim)).to(DEVICE)


def test_unseen_columns_by_hand(monkeypatch):
    """nb(u, i) = sum_{j in R_u} S_ji for the columns [3, 1] only: u0 {0, 1} -> (0.5 +
    0.25, 0), u1 {1} -> (0.25, 0), u2 {2} -> (0, 0.75); the same in one-entry slices."""
    knn = _hand_knn()
    cols = knn.similarity_columns(torch.tensor([3, 1], device=DEVICE))
    assert cols.shape == (4, 2) and cols.nnz == 4  # S_03, S_13, S_21, S_31 (S_30 is not a column asked for)
    users = torch.tensor([0, 1, 2, 0], device=DEVICE)
    want = torch.tensor([[0.75, 0.0], [0.25, 0.0], [0.0, 0.75], [0.75, 0.0]], device=DEVICE)
    torch.testing.assert_close(knn.history_product(users, cols), want)
    monkeypatch.setattr(cb, "_GATHER_CHUNK", 1)  # products too large for one slice run in several (one user each)
    torch.testing.assert_close(knn.history_product(users, cols), want)
    # and the whole graph's columns give CB's scores
    every = knn.similarity_columns(torch.arange(4, device=DEVICE))
    torch.testing.assert_close(knn.history_product(users, every), knn.user_scores(users))


def _random_model(n_users: int = 100, n_items: int = 3000, n_feat: int = 16, dim: int = 8, k: int = 5,
                  n_cold: int = 300, seed: int = 0) -> ColdItemRecommender:
    """A random catalogue: clustered content, its top-k cosine graph, 2-30 training items
    per user among the seen items, the path with a random tower and gamma 1.5."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, n_feat))
    x = (centres[rng.integers(0, 20, n_items)] + 0.5 * rng.normal(size=(n_items, n_feat))).astype(np.float32)
    x = unit_rows(torch.from_numpy(x)).numpy()
    cold = rng.choice(n_items, n_cold, replace=False)
    warm = np.setdiff1d(np.arange(n_items), cold)
    rows, cols = [], []
    for u in range(n_users):
        items = rng.choice(warm, rng.integers(2, 31), replace=False)
        rows += [u] * len(items)
        cols += list(items)
    train = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    knn = ContentKNN(n_users, n_items, to_torch_sparse(train), to_torch_sparse(knn_graph(x, k)))
    torch.manual_seed(seed)
    adj = torch.zeros(n_users + n_items, n_users + n_items).to_sparse_csr()
    base = LightGCN(n_users, n_items, adj, embedding_dim=dim, num_layers=0)
    seen = torch.ones(n_items, dtype=torch.bool)
    seen[torch.from_numpy(cold)] = False
    model = ColdItemRecommender(base, torch.from_numpy(x), seen, knn, embedding_dim=dim, hidden_dim=12)
    with torch.no_grad():
        model.gamma.fill_(1.5)
    return model.to(DEVICE).eval()


def test_scorer_gives_the_whole_graph_formula():
    """The unseen columns: e_u . f(x_i) + gamma (R_u S)_i with R_u S the whole-graph
    product (the former computation); the seen ones exactly the base model's."""
    model = _random_model()
    users = torch.arange(0, 100, 3, device=DEVICE)
    idx = model.unseen_items
    with torch.no_grad():
        got = model.scorer()(users)
        user_emb, _ = model.base.embeddings()
        f = model.content_embeddings(model.features[idx])
        nb = model.neighbours.user_scores(users)[:, idx]
        assert nb.count_nonzero() > 0  # the neighbour term is exercised
        want = user_emb[users] @ f.t() + model.gamma * nb
        torch.testing.assert_close(got[:, idx], want)
        seen = torch.nonzero(model.seen).view(-1)
        assert torch.equal(got[:, seen], model.base.scorer()(users)[:, seen])


def _new_items_directly(model: ColdItemRecommender, users: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The straightforward formula (the former new_item_scores): the dense (n_items x m)
    cosines, thresholded, times the dense history rows."""
    user_emb, _ = model.base.embeddings()
    f = model.content_embeddings(x)
    sim = unit_rows(model.features) @ unit_rows(x).t()
    sim = torch.where(sim >= model.entry_threshold.unsqueeze(1) - _COSINE_TOLERANCE, sim, torch.zeros_like(sim))
    return user_emb[users] @ f.t() + model.gamma * (model.neighbours.history_rows(users) @ sim)


def test_new_items_give_the_dense_formula_and_their_catalogue_scores(monkeypatch):
    """New items (the catalogue's unseen items given again, plus random content) score as
    the dense formula does; the neighbour lists are the same whether the cosines come in
    one slice or in many. (Their catalogue scores: test_coldstart.py. On this random
    catalogue a few differ by design: a cosine within the rule's tolerance of an item's
    k-th neighbour's admits a near-tie that the stored top-k left out.)"""
    model = _random_model()
    users = torch.arange(100, device=DEVICE)
    idx = model.unseen_items
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([model.features[idx], torch.randn(50, model.features.shape[1], generator=gen).to(DEVICE)])
    with torch.no_grad():
        want = _new_items_directly(model, users, x)
        scorer = model.new_item_scorer(x)
        got = scorer(users)
        torch.testing.assert_close(got, want)
        lists = model._new_item_neighbours(x)
        assert lists.nnz > 0 and lists.shape == (model.n_items, x.shape[0])
        monkeypatch.setattr(coldstart, "_SIMILARITY_SLICE", 1000)  # 2 catalogue rows per slice
        sliced = model._new_item_neighbours(x)
        assert torch.equal(sliced.crow, lists.crow) and torch.equal(sliced.cols, lists.cols)
        torch.testing.assert_close(sliced.values, lists.values)
        torch.testing.assert_close(model.new_item_scorer(x)(users), got)
        # one batch at a time, as recommend calls it: the same rows
        torch.testing.assert_close(torch.cat([scorer(users[:40]), scorer(users[40:])]), got)
        assert torch.equal(model.new_item_scores(users[:7], x), model.new_item_scorer(x)(users[:7]))


class _Outputs(TorchDispatchMode):
    """The sizes of the tensors every op returns (in-place ops apart: they allocate nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.__name__.split(".")[0].endswith("_"):
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.sizes.append((func.__name__, t.numel()))
        return out

    def large(self, at_least: int) -> list[tuple[str, int]]:
        return [s for s in self.sizes if s[1] >= at_least]


def test_no_dense_batch_by_catalogue_or_catalogue_by_new_items_intermediate(monkeypatch):
    """Scoring a batch with the path allocates no (batch x n_items) tensor beyond the base
    model's own scores, and the new items' scorer no (n_items x m) one, neither when built
    nor per batch (every op's output recorded; the dense history rows are not asked for)."""
    model = _random_model()
    batch = 32
    users = torch.arange(batch, device=DEVICE)

    def refuse(*args, **kwargs):
        raise AssertionError("dense (batch x n_items) history rows")

    monkeypatch.setattr(ContentKNN, "history_rows", refuse)
    monkeypatch.setattr(ContentKNN, "user_scores", refuse)
    with torch.no_grad():
        base, cold = model.base.scorer(), model.scorer()
        with _Outputs() as on_base:
            base(users)
        with _Outputs() as on_cold:
            cold(users)
        n = batch * model.n_items
        assert len(on_cold.large(n)) == len(on_base.large(n)), on_cold.large(n)

        m = 200
        x = torch.randn(m, model.features.shape[1], device=DEVICE)
        monkeypatch.setattr(coldstart, "_SIMILARITY_SLICE", 1 << 12)
        with _Outputs() as building:
            scorer = model.new_item_scorer(x)
        # the largest: the base model's embeddings ((n_users + n_items) x 8), not n_items x m
        assert not building.large(model.n_items * m // 10), building.large(model.n_items * m // 10)
        with _Outputs() as scoring:
            scorer(users)
        assert not scoring.large(batch * model.n_items // 4), scoring.large(batch * model.n_items // 4)
