"""The contract every graphrec ranking model must pass, as a reusable pytest mixin.

A model's test module supplies only a constructor::

    class TestLightGCN(RecommenderContract):
        def make_model(self, dataset):
            return build_model("lightgcn", dataset)

and inherits the checks: output shapes, deterministic reset, finite loss and gradients,
a loss that decreases when optimised, ``state_dict`` round trip through
``torch.load(weights_only=True)``, and training items never recommended. Third-party
models can run the same suite.

The suite runs on the device named by the environment variable ``GRAPHREC_TEST_DEVICE``
(default ``cpu``): ``GRAPHREC_TEST_DEVICE=cuda pytest tests/models`` builds every model on
the CPU, moves it there and runs the same checks, plus one that only exists off the CPU:
the model's loss, gradients and scores on the device equal those of the same model on
the CPU.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Annotated, Any, Iterator, Mapping

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.data.synthetic import synthetic_catalogue
from graphrec.models.base import ItemGraphRecommender, Recommender
from graphrec.train.recommend import recommend_indices
from graphrec.train.registry import Option, register_model, unregister_model

__all__ = [
    "same_sparse_tensors",
    "store_built_graph",
    "ItemGraphRecommenderContract",
    "ScaledMF",
    "registered_toy_model",
    "RecommenderContract",
    "assert_same_loss_and_gradients",
    "contract_dataset",
    "contract_device",
]


def contract_device() -> torch.device:
    """The device the contract suites run on: ``$GRAPHREC_TEST_DEVICE``, else the CPU.

    Raises a one-line error when the variable names a device this machine lacks, rather
    than letting every test fail on its own.
    """
    dev = torch.device(os.environ.get("GRAPHREC_TEST_DEVICE") or "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"GRAPHREC_TEST_DEVICE={dev} but torch sees no CUDA device: unset it or run on a GPU machine")
    return dev


#: where the contract suites run (``GRAPHREC_TEST_DEVICE``)
DEVICE = contract_device()


def assert_same_loss_and_gradients(on_dev: torch.nn.Module, loss_dev: torch.Tensor,
                                   on_cpu: torch.nn.Module, loss_cpu: torch.Tensor) -> None:
    """The same model on the device and on the CPU: equal losses, and after backward the
    same parameters receive a gradient, with equal values (float32 tolerances)."""
    torch.testing.assert_close(loss_dev.detach().cpu(), loss_cpu.detach(), rtol=1e-4, atol=1e-6)
    loss_dev.backward()
    loss_cpu.backward()
    for (name, p_dev), (_, p_cpu) in zip(on_dev.named_parameters(), on_cpu.named_parameters()):
        assert (p_dev.grad is None) == (p_cpu.grad is None), name
        if p_cpu.grad is not None:
            torch.testing.assert_close(p_dev.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-6, msg=name)


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
        return tuple(torch.as_tensor(a, device=DEVICE) for a in (u[sel], i[sel], neg))

    def _seeded(self, ds: Dataset, seed: int) -> Recommender:
        """The model built on the CPU after ``torch.manual_seed(seed)``, on :data:`DEVICE`."""
        torch.manual_seed(seed)
        return self.make_model(ds).to(DEVICE)

    # checks --------------------------------------------------------------
    def test_shapes(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        # the messages say the values: pytest rewrites no assertion of an installed module
        # unless the project's conftest.py registers it (docs/models/adding-a-model.md)
        assert (model.n_users, model.n_items) == (ds.n_users, ds.n_items), \
            f"model.n_users, n_items = {model.n_users}, {model.n_items}; the dataset's {ds.n_users}, {ds.n_items}"
        users_emb, items_emb = model.embeddings()
        assert (users_emb.shape[0], items_emb.shape[0]) == (ds.n_users, ds.n_items), \
            f"embeddings() returned {tuple(users_emb.shape)} and {tuple(items_emb.shape)} for {ds.n_users} users, " \
            f"{ds.n_items} items"
        scores = model.scorer()(torch.arange(5, device=DEVICE))
        assert scores.shape == (5, ds.n_items), f"scorer()(5 users) returned {tuple(scores.shape)}, not (5, {ds.n_items})"
        loss = model.loss(*self._batch(ds))
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0, \
            f"loss() returned {tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}: " \
            "return the batch's mean, a 0-dimensional tensor"

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

    def test_a_step_splits_unless_the_loss_couples_the_batch(self) -> None:
        """What ``--nproc`` relies on (``Recommender.couples_batch``): unless a model says
        its loss couples a step's triples, the loss of a step is the size-weighted mean of
        its parts' losses, each computed from the same random state, as N ranks compute
        them (a model that draws a mask for the batch, or takes negatives from it, fails
        this and must set ``couples_batch = True``)."""
        ds = self._dataset()
        model = self._seeded(ds, 0)
        model.start_epoch(1)
        assert isinstance(model.couples_batch, bool)
        if model.couples_batch:
            return
        users, pos, neg = self._batch(ds, 32)

        def loss(part: slice) -> torch.Tensor:
            torch.manual_seed(7)
            return model.loss(users[part], pos[part], neg[part])

        whole = loss(slice(0, 32))
        parts = (loss(slice(0, 20)) * 20 + loss(slice(20, 32)) * 12) / 32
        torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6,
                                   msg="the loss is not a mean over the step's triples: set couples_batch = True")

    def test_state_dict_round_trip(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        other = self._seeded(ds, 123)
        other.load_state_dict(torch.load(buf, weights_only=True))
        users = torch.arange(10, device=DEVICE)
        with torch.no_grad():
            assert torch.allclose(model.scorer()(users), other.scorer()(users))

    def test_candidate_scores_are_columns_of_the_full_scores(self) -> None:
        """``scorer(candidates)`` (what ``recommend --items`` ranks with) gives the
        candidates' columns of ``scorer()``'s scores, in the candidates' order, unseen
        (cold) items among them included; no candidates, no columns."""
        ds = self._dataset()
        model = self._seeded(ds, 0)
        model.eval()
        users = torch.arange(ds.n_users, device=DEVICE)
        cold = np.asarray(ds.cold_items if ds.cold_items is not None else [], dtype=np.int64)
        rng = np.random.default_rng(0)
        picked = np.concatenate([rng.choice(ds.n_items, size=ds.n_items // 3, replace=False), cold[:3]])
        cand = torch.as_tensor(rng.permutation(np.unique(picked)), device=DEVICE)  # not sorted
        with torch.no_grad():
            full = model.scorer()(users)
            part = model.scorer(cand)(users)
            none = model.scorer(cand[:0])(users)
        assert part.shape == (ds.n_users, cand.numel()) and none.shape == (ds.n_users, 0)
        torch.testing.assert_close(part, full[:, cand], rtol=1e-5, atol=1e-6)

    def test_training_items_never_recommended(self) -> None:
        ds = self._dataset()
        model = self._seeded(ds, 0)
        users = np.arange(ds.n_users)
        top, _ = recommend_indices(model.scorer(), ds, users, k=20, device=DEVICE)
        train = ds.train.toarray().astype(bool)
        assert not train[users[:, None], top].any()

    def test_graphs_are_detached_sparse_operators(self) -> None:
        """What ``graphrec export-graph`` stores: every graph of ``item_graphs()`` is a
        detached sparse CSR n_items x n_items tensor on the model's device, every graph of
        ``user_graphs()`` n_users x n_users, under distinct names."""
        ds = self._dataset()
        model = self._seeded(ds, 0)
        model.eval()
        items, users = model.item_graphs(), model.user_graphs()
        assert not set(items) & set(users), "item and user graphs share a name"
        for graphs, n in ((items, ds.n_items), (users, ds.n_users)):
            for name, m in graphs.items():
                assert m.layout == torch.sparse_csr and tuple(m.shape) == (n, n), name
                assert m.device.type == DEVICE.type and not m.requires_grad, name
                assert torch.isfinite(m.values()).all() and m.values().numel() > 0, name

    if DEVICE.type != "cpu":

        def test_device_matches_cpu(self) -> None:
            """Same seed, same batch: loss, gradients and scores on the device equal the CPU's."""
            ds = self._dataset()
            on_dev = self._seeded(ds, 0)
            torch.manual_seed(0)
            on_cpu = self.make_model(ds)
            for model in (on_dev, on_cpu):
                model.start_epoch(1)
            batch = self._batch(ds)
            assert_same_loss_and_gradients(on_dev, on_dev.loss(*batch), on_cpu, on_cpu.loss(*(t.cpu() for t in batch)))
            users = torch.arange(ds.n_users)
            torch.testing.assert_close(on_dev.scorer()(users.to(DEVICE)).cpu(), on_cpu.scorer()(users), rtol=1e-4, atol=1e-5)


class ItemGraphRecommenderContract(RecommenderContract):
    """The contract plus the checks of item-graph models (LightGCN + an item branch:
    MM-GEF, LATTICE); :meth:`make_model` returns an :class:`ItemGraphRecommender`."""

    def test_item_graph_is_the_operator_of_the_item_branch(self) -> None:
        """``item_graph()`` (what ``graphrec export-graph`` stores) is the graph the branch
        propagates over: h^{L'} = M^{L'} h^0, with learned graph weights away from their
        initial values."""
        ds = self._dataset()
        model = self._seeded(ds, 0)
        assert isinstance(model, ItemGraphRecommender)
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("logits"):  # attention / modality / CF weights
                    p.copy_(torch.randn(p.shape, generator=gen).to(p.device))
        model.eval()
        with torch.no_grad():
            m = model.item_graph()
            assert m.layout == torch.sparse_csr and tuple(m.shape) == (ds.n_items, ds.n_items)
            assert m.device == model.lightgcn.item_embedding.weight.device
            want = model.lightgcn.item_embedding.weight
            for _ in range(model.item_layers):
                want = torch.sparse.mm(m, want)
            torch.testing.assert_close(model.item_propagate(), want, rtol=1e-4, atol=1e-6)


class ScaledMF(Recommender):
    r"""A toy ranking model for testing what works through the model registry (the CLI,
    ``evaluate``, the RecBole adapter): matrix factorisation whose scores are multiplied
    by a fixed ``scale``, :math:`\hat y_{ui} = s\, e_u^\top e_i`, trained with BPR."""

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 8, scale: float = 1.0) -> None:
        super().__init__()
        self.n_users, self.n_items, self.scale = n_users, n_items, scale
        self.user_embedding = torch.nn.Embedding(n_users, embedding_dim)
        self.item_embedding = torch.nn.Embedding(n_items, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.normal_(self.user_embedding.weight, std=0.1)
        torch.nn.init.normal_(self.item_embedding.weight, std=0.1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight * self.scale, self.item_embedding.weight

    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
        from graphrec.nn import bpr_loss

        return bpr_loss(*self.pairwise_scores(users, pos_items, neg_items))


@contextlib.contextmanager
def registered_toy_model(name: str = "toy-mf") -> Iterator[str]:
    """Register :class:`ScaledMF` as ranking model ``name`` for the duration of the block
    (its builder declares ``--dim`` and ``--scale``), then remove it."""
    def build_toy(
        dataset: Dataset,
        embedding_dim: Annotated[int, Option("--dim", help="Embedding size.", min=1)] = 8,
        scale: Annotated[float, Option(help="Score multiplier s.", min=0.0, min_open=True)] = 2.0,
    ) -> ScaledMF:
        """Sizes from the dataset, nothing else."""
        return ScaledMF(dataset.n_users, dataset.n_items, embedding_dim=embedding_dim, scale=scale)

    register_model(name, title="Toy MF", paper="a test fixture", summary="scaled matrix factorisation",
                   example=f"graphrec train {name} --data DIR --scale 3")(build_toy)
    try:
        yield name
    finally:
        unregister_model(name)


def store_built_graph(dataset: Any, folder: str | os.PathLike, **spec: Any) -> str:
    """Build ``GraphSpec(**spec)`` for ``dataset`` as ``graphrec build-graph`` does and store
    it in ``folder`` (replacing what is there): the stored graphs that models' ``--graph``
    tests hand to builders. Returns the folder as a string."""
    from graphrec.graphs.build import GraphSpec, build_item_graph
    from graphrec.graphs.store import save_graph

    built = build_item_graph(dataset, GraphSpec(**spec))
    save_graph(folder, built.graph, built.record, overwrite=True)
    return str(folder)


def same_sparse_tensors(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    """The same keys, in order, with the same sparse CSR tensors bit for bit (pattern and
    values)."""
    return list(a) == list(b) and all(
        torch.equal(a[k].crow_indices(), b[k].crow_indices()) and torch.equal(a[k].col_indices(), b[k].col_indices())
        and torch.equal(a[k].values(), b[k].values()) for k in a
    )


def one_error_line(result: Any) -> str:
    """The single ``error:`` line of a refused ``graphrec`` command run by typer's
    ``CliRunner`` (exit status 1, one line, no traceback): the contract of every user
    error of the command line."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    err = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def recorded_bars(monkeypatch: Any) -> list[dict[str, Any]]:
    """The keyword options (``desc``, ``unit``, ``total``, ``delay``, ...) of every tqdm bar
    made through ``tqdm.auto`` from now on, in order; the bars are drawn nowhere.
    ``monkeypatch``: pytest's fixture, which restores ``tqdm.auto.tqdm`` after the test."""
    import tqdm.auto

    bars: list[dict[str, Any]] = []

    class Recorder(tqdm.auto.tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            bars.append(dict(kwargs))
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    return bars
