"""The state keeper holds one captured training state at a time (graphrec.train.state).

Every epoch starts by capturing the loop's state (weights, optimiser moments: about
three times the parameters); the previous capture used to stay referenced until the
new one was assigned, so the peak held two. ``StateKeeper.renew`` releases the old one
first, with SIGINT and SIGTERM held until the new one is in place: an interrupt still
always finds a whole state. Resuming stays exact (tests/train/test_resume.py,
tests/ctr/test_resume.py).
"""

from __future__ import annotations

import signal
import weakref

import pytest
import torch

from graphrec.data.synthetic import synthetic_catalogue
from graphrec.train import TrainConfig, run_training
from graphrec.train.state import StateKeeper, TrainState


def _state(epoch: int) -> TrainState:
    return TrainState(epoch=epoch, model={"w": torch.full((3,), float(epoch))}, optimizer={}, scheduler=None, rng={})


@pytest.fixture
def captures(monkeypatch):
    """Every TrainState.capture: how many earlier captures were still alive when it began."""
    alive_at_capture: list[int] = []
    refs: list[weakref.ref] = []
    real = TrainState.capture.__func__

    def capture(cls, *args, **kwargs):
        alive_at_capture.append(sum(r() is not None for r in refs))
        state = real(cls, *args, **kwargs)
        refs.append(weakref.ref(state))
        return state

    monkeypatch.setattr(TrainState, "capture", classmethod(capture))
    return alive_at_capture, refs


def test_fit_releases_the_previous_state_before_capturing_the_next(captures, tmp_path):
    alive_at_capture, refs = captures
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    config = TrainConfig(epochs=4, eval_every=2, batch_size=256, ks=(10,), progress=False, seed=1)
    run_training(ds, "lightgcn", {"embedding_dim": 8}, config, out=tmp_path / "run")
    assert alive_at_capture == [0, 0, 0, 0]  # before: [0, 1, 1, 1]
    assert len(refs) == 4


def test_a_resumed_fit_releases_the_loaded_state_too(monkeypatch, tmp_path):
    ds = synthetic_catalogue(n_users=60, n_items=40, n_clusters=3, seed=0)
    config = TrainConfig(epochs=4, eval_every=2, batch_size=256, ks=(10,), progress=False, seed=1)
    loaded: list[weakref.ref] = []
    real_init = StateKeeper.__init__

    def init(self, state=None):
        if state is not None:
            loaded.append(weakref.ref(state))
        real_init(self, state)

    monkeypatch.setattr(StateKeeper, "__init__", init)
    import graphrec.models.lightgcn as lg
    real_start = lg.LightGCN.start_epoch
    fired = []

    def start_epoch(model, epoch):  # interrupt epoch 3, then resume
        if epoch == 3 and not fired:
            fired.append(epoch)
            raise KeyboardInterrupt
        return real_start(model, epoch)

    monkeypatch.setattr(lg.LightGCN, "start_epoch", start_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_training(ds, "lightgcn", {"embedding_dim": 8}, config, out=tmp_path / "run")
    real_capture = TrainState.capture.__func__
    alive = []

    def capture(cls, *args, **kwargs):
        alive.append(any(r() is not None for r in loaded))
        return real_capture(cls, *args, **kwargs)

    monkeypatch.setattr(TrainState, "capture", classmethod(capture))
    run_training(ds, "lightgcn", {"embedding_dim": 8}, config, out=tmp_path / "run", resume=True)
    assert loaded and alive == [False, False]  # epochs 3 and 4: the loaded state was already released


@pytest.fixture
def python_ctrl_c():
    """Python's own SIGINT handler for the test (KeyboardInterrupt), restored after: a
    process started in the background by a shell (./dev test runs the two environments'
    suites side by side) inherits SIGINT ignored, where no Ctrl-C is ever raised."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("python_ctrl_c")
def test_renew_holds_one_state_and_an_interrupt_during_it_finds_the_new_one():
    keeper = StateKeeper(_state(1))
    old = weakref.ref(keeper.state)
    seen = []

    def capture():
        seen.append((old() is None, keeper.state))
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the new state is being made
        return _state(2)

    with pytest.raises(KeyboardInterrupt):
        keeper.renew(capture)
    assert seen == [(True, None)]  # the old state was gone before the capture began
    assert keeper.state.epoch == 2 and torch.equal(keeper.state.model["w"], torch.full((3,), 2.0))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
    keeper.renew(lambda: _state(3))  # without an interrupt: no exception
    assert keeper.state.epoch == 3


@pytest.mark.usefixtures("python_ctrl_c")
def test_a_failing_capture_leaves_the_handlers_as_they_were():
    keeper = StateKeeper(_state(1))

    def capture():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        keeper.renew(capture)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_ctr_releases_the_previous_state_before_capturing_the_next(captures):
    from graphrec.models.ctr.testing import contract_ctr_data
    from graphrec.train.ctr import CTRConfig, build_ctr_model, fit_ctr

    alive_at_capture, refs = captures
    data = contract_ctr_data()
    torch.manual_seed(0)
    model = build_ctr_model("din", data, {}, None)
    fit_ctr(model, data, CTRConfig(epochs=3, progress=False), "cpu", keeper=StateKeeper())
    assert alive_at_capture == [0, 0, 0] and len(refs) == 3
