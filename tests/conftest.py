"""Shared fixtures: the real datasets in ../shared/data (beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

# The test problems are small: one BLAS/OpenMP thread is as fast as several, and on a
# busy machine an oversubscribed OpenMP pool (every process spinning on every core) makes
# the training tests 10-50x slower. Set before torch/numpy are first imported; an
# explicit OMP_NUM_THREADS in the environment wins.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

# the shared contract suites' assertions report their values (pytest rewrites the
# assertions of test files only, and of the modules registered before their import)
pytest.register_assert_rewrite("graphrec.testing", "graphrec.models.ctr.testing")

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """A ``GRAPHREC_TEST_DEVICE`` this machine lacks stops the run once, before collection,
    with graphrec.testing's one-line message (its module-level ``DEVICE`` checks the
    variable on import; left to the test modules, every one importing it would fail at
    collection with its own traceback)."""
    if (os.environ.get("GRAPHREC_TEST_DEVICE") or "cpu") == "cpu":
        return
    try:
        import graphrec.testing  # noqa: F401
    except RuntimeError as err:
        raise pytest.UsageError(str(err)) from None


def _shared_data() -> Path:
    env = os.environ.get("GRAPHREC_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real datasets; CI must have them, a local run without them skips."""
    root = _shared_data()
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {root}: CI needs ../shared/data beside the clone")
        pytest.skip(f"real data not found at {root} (set GRAPHREC_SHARED_DATA)")
    return root


@pytest.fixture()
def one_torch_thread():
    """One torch intra-op thread for the test (restored after): the model tests' problems
    are tiny and gain nothing from more, and on a shared 2-core machine an oversubscribed
    pool makes them 10-50x slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def saved_catalogue(tmp_path_factory):
    """Write a synthetic catalogue (graphrec.data.synthetic) to a fresh temporary folder
    and return the folder: ``saved_catalogue("cli", "synthetic", n_users=150, n_items=90,
    n_clusters=5, seed=0)`` writes ``<tmp>/cli<N>/synthetic``. A new folder each call, so
    a module that writes beside its data never meets another module's files."""
    from graphrec.data.synthetic import synthetic_catalogue

    def save(prefix: str, name: str, **sizes) -> Path:
        path = tmp_path_factory.mktemp(prefix) / name
        synthetic_catalogue(**sizes).save(path)
        return path

    return save


@pytest.fixture(scope="session")
def reference_backbone():
    """``R -> D^-1 (A + I)``, densely: the row-normalised bipartite graph of the user-item
    matrix ``R`` with self loops (LATTICE's reference code's backbone)."""
    import numpy as np

    def dense(r):
        r = np.asarray(r.toarray() if hasattr(r, "toarray") else r) > 0
        n_users, n_items = r.shape
        a = np.zeros((n_users + n_items,) * 2)
        a[:n_users, n_users:] = r
        a[n_users:, :n_users] = r.T
        a += np.eye(n_users + n_items)
        return a / a.sum(1, keepdims=True)

    return dense
