"""The generic fit loop shared by every ranking model.

``fit`` trains with Adam on shuffled BPR triples (uniform negatives that are never a
training positive of the user; cold-start items included unless ``negatives="warm"``), validates every ``eval_every`` epochs
(every user with a validation positive, or ``valid_users`` of them: :func:`validation_users`),
keeps the best state by the validation metric, stops after ``patience`` evaluations
without improvement, restores the best state and evaluates the test split ONCE. Before
each epoch it calls ``model.start_epoch(epoch)`` (its time counts in the epoch's
``train_seconds``); a first epoch projected to take over an hour is noted once, with
the advice of larger steps (:func:`slow_epoch_note`); a model without trainable parameters
(content kNN) is validated once and tested, with nothing to train. The test
split is never looked at before that. Everything is seeded by ``config.seed``.

In a torch.distributed process group (:mod:`graphrec.distributed`: ``--nproc N`` or
torchrun) every rank runs this loop on the same data with the same seed, so all ranks
draw the same shuffled triples. ``batch_size`` is the step's size whatever the number of
ranks (as RecBole's ``train_batch_size``): rank ``r`` computes the loss of its part of
the step's triples, scaled by ``world * part / step`` so that DistributedDataParallel's
gradient average is the gradient of the step's mean loss. N ranks therefore take the
steps of one process on the same triples (the same training, up to float summation order,
which can grow past rounding as it does between one-process runs on different
``--threads``: Adam's ε-normalisation of near-zero gradient entries and a kink such as
DRAGON's LeakyReLU amplify it, measured in docs/scaling.md), each rank doing one N-th of
the per-triple work; the full-graph propagation of a LightGCN-style model is done by
every rank. A model whose loss couples the step's triples (``Recommender.couples_batch``:
in-batch negatives, a norm over the batch, a dropout mask drawn for the batch) has every
rank compute the whole step instead: the same training again, without the per-triple
saving. Validation and test split the user batches across ranks and gather the metrics
exactly. A group of one rank gives the numbers of no group, bit for bit.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, ParamSpec, TypeVar

import numpy as np
import torch

from graphrec import distributed
from graphrec._device import model_device
from graphrec.data import Dataset
from graphrec.data.dataset import max_abs
from graphrec.data.sampling import NegativeSampler, bpr_batches
from graphrec.errors import ConfigError, DataError, GraphrecNote, ModelDefinitionError, TrainingDiverged
from graphrec.models import Recommender
from graphrec.models.base import Scorer
from graphrec.train.config import TrainConfig, check_config
from graphrec.train.evaluate import evaluate_cold_start, evaluate_ranking
from graphrec.train.optim import adam
from graphrec._progress import tracked
from graphrec.train.progress import epoch_line
from graphrec.train.state import StateKeeper, TrainingInterrupted, TrainState

__all__ = ["FitResult", "fit", "seed_everything", "evaluate_model", "divergence_error", "validation_users"]

#: the fit loop's bars over an epoch's steps and over an evaluation's user batches appear
#: once that epoch or evaluation has run this many seconds: a quick one prints nothing new,
#: an hour-long one (a million items) shows its progress
_BAR_DELAY = 2.0


#: a first epoch projected to take longer than this (seconds) gets a note suggesting a
#: larger --batch-size (:func:`slow_epoch_note`), judged after :data:`_SLOW_EPOCH_STEPS` steps
_SLOW_EPOCH_SECONDS = 3600.0
_SLOW_EPOCH_STEPS = 10


def slow_epoch_note(step_seconds: float, n_steps: int, batch_size: int) -> str | None:
    """The note for an epoch of ``n_steps`` steps of ``step_seconds`` each, when it comes
    to more than :data:`_SLOW_EPOCH_SECONDS` and a larger step would shorten it (more than
    one step); else None. A LightGCN-style model propagates the whole graph at every step,
    so an epoch costs its step count times a propagation, and larger steps cut the count
    (docs/scaling.md); they also change the optimisation, so they are chosen on validation."""
    total = step_seconds * n_steps
    if n_steps <= 1 or total <= _SLOW_EPOCH_SECONDS:
        return None
    return (f"an epoch will take about {total / 3600:.1f} h ({n_steps} steps of {step_seconds:.1f} s at --batch-size "
            f"{batch_size}): models that propagate the whole graph at every step train an epoch in fewer, larger "
            "steps (e.g. --batch-size 262144 at a million items, docs/scaling.md); a larger step changes the "
            "optimisation, so compare on validation")


def _bars(config: TrainConfig) -> float | bool:
    """``progress`` of the fit loop's evaluations (:func:`evaluate_model`)."""
    return _BAR_DELAY if config.progress else False


def scalar_loss(loss: Any, model: torch.nn.Module, method: str = "loss") -> torch.Tensor:
    """``loss``, what ``model.<method>`` returned for a batch, when it is one number (a
    0-dimensional tensor) to step on; a one-line :class:`ModelDefinitionError` naming the
    model and the fix otherwise (a loss per triple or per sample, a Python float)."""
    if isinstance(loss, torch.Tensor) and loss.dim() == 0:
        return loss
    what = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}"
    raise ModelDefinitionError(
        f"{type(model).__name__}.{method} returned {what}, not a 0-dimensional tensor: return the batch's mean "
        "(e.g. loss.mean()) as a tensor, so that the optimiser can step on it"
    )


def divergence_error(
    what: str, value: float, epoch: int, features: Mapping[str, np.ndarray], lr_option: str = "--lr"
) -> TrainingDiverged:
    r"""The one-line error of a loss that became NaN or inf: it names the fixes, a lower
    learning rate and input features of a saner scale (with the largest feature magnitude,
    :math:`\max_{m,i,j} |X^m_{ij}|`, computed here only once training has failed)."""
    message = f"{what} became {value} at epoch {epoch}: lower {lr_option}"
    peak = max((max_abs(x) for x in features.values()), default=None)
    if peak is not None:
        message += (f", or check the scale of the input features (the largest |feature| is {peak:.3g}; "
                    "graphrec info lists each modality's; rescale huge features to about unit size)")
    return TrainingDiverged(message)


def _check_negatives_exist(sampler: NegativeSampler, dataset: Dataset, config: TrainConfig) -> None:
    """A one-line :class:`DataError` naming the first user (by id) whose training items
    cover every item a negative may be drawn from, with the fix: BPR needs a negative per
    triple."""
    full = sampler.full_users
    if not len(full):
        return
    user = str(dataset.user_ids[int(full[0])])  # numpy 2 writes np.str_(...) in a repr
    more = f" ({len(full)} such users)" if len(full) > 1 else ""
    if config.negatives == "warm" and dataset.cold_items is not None and len(dataset.cold_items):
        raise DataError(f"user {user!r} has every warm item among their training items{more}: --negatives warm "
                        "leaves them no negative; pass --negatives all, or another --cold-start / --seed")
    raise DataError(f"user {user!r} has every item among their training items{more}: BPR has no negative for "
                    "them; remove the user from the data")


_P = ParamSpec("_P")
_T = TypeVar("_T")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def keeps_global_rngs(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """``fn`` (a training that seeds the global generators with :func:`seed_everything`)
    restoring Python's, NumPy's and torch's global generators (CUDA's where initialised)
    when it returns or raises: the caller's own draws after it go on as without it."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        py, legacy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        try:
            return fn(*args, **kwargs)
        finally:
            random.setstate(py)
            np.random.set_state(legacy)
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state_all(cuda)

    return wrapper


@dataclass
class FitResult:
    """What :func:`fit` returns (the model is left in its best state)."""

    best_epoch: int
    best_valid: dict[str, float]
    test: dict[str, dict[str, float]]
    history: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    #: the metric the best epoch was selected by (``valid_metric`` of the ``select_on``
    #: items, :func:`selected_score`); ``best_valid`` holds all items' metrics
    best_score: float = float("nan")


def evaluate_model(
    model: Recommender,
    dataset: Dataset,
    split: str,
    config: TrainConfig,
    device: torch.device | str,
    progress: bool | float = False,
    scorer: Scorer | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of ``split`` for all items and, under cold start, warm and cold items (in a
    process group, every rank takes its share of the users: :mod:`graphrec.distributed`).
    Validation is over ``config.valid_users`` users when set (:func:`validation_users`).
    ``scorer``: the model's :meth:`~graphrec.models.Recommender.scorer`, made already (one
    propagation for several splits of an unchanged model); made here when None."""
    check_model_fits(model, dataset)
    model.eval()
    shard = distributed.current()
    with torch.no_grad():
        scorer = model.scorer() if scorer is None else scorer
        kw = dict(
            protocol=config.protocol,
            ks=config.ks,
            batch_size=config.eval_batch_size,
            device=device,
            progress=progress and (shard is None or shard.is_main),
            shard=shard,
            users=validation_users(dataset, config) if split == "valid" else None,
        )
        if dataset.cold_items is not None:
            return evaluate_cold_start(scorer, dataset, split, **kw)
        return {"all": evaluate_ranking(scorer, dataset, split, **kw)}


#: the seed of :func:`validation_users`' draw: fixed, so that every run on a dataset
#: validates on the same users whatever its ``seed`` (runs compare on them), and the
#: draw never touches training's random streams
VALID_USERS_SEED = 0x76616C6964  # "valid"


def validation_users(dataset: Dataset, config: TrainConfig) -> np.ndarray | None:
    """The users validation ranks under ``config.valid_users`` (None: every user).

    ``valid_users`` users drawn uniformly without replacement among those with a
    validation positive in the items selection is on (``config.select_on``: all items,
    or the warm / cold ones of a cold-start split), by a generator of fixed seed
    (:data:`VALID_USERS_SEED`): the same users at every validation of a run, in every rank
    of a process group, in a resumed run, in ``graphrec evaluate`` and in every run on the
    same data whatever its ``seed`` (tune's trials and repeats compare on the same users);
    training draws the same triples with or without it. All of them when there are no
    more. Sorted user indices."""
    if config.valid_users is None:
        return None
    valid = dataset.split("valid")
    has_pos = np.diff(valid.indptr) > 0
    if config.select_on != "all" and dataset.cold_items is not None:
        is_cold = np.zeros(dataset.n_items, dtype=bool)
        is_cold[np.asarray(dataset.cold_items, dtype=np.int64)] = True
        wanted = is_cold[valid.indices] if config.select_on == "cold" else ~is_cold[valid.indices]
        rows = np.repeat(np.arange(dataset.n_users), np.diff(valid.indptr))
        has_pos = np.bincount(rows[wanted], minlength=dataset.n_users) > 0
    candidates = np.flatnonzero(has_pos)
    if config.valid_users >= len(candidates):
        return candidates
    rng = np.random.default_rng(VALID_USERS_SEED)
    return np.sort(rng.choice(candidates, size=config.valid_users, replace=False))


def check_selection(dataset: Dataset, config: TrainConfig) -> None:
    """What :func:`fit` checks before any work: the dataset has valid and test splits,
    the validation metric is reported, and ``config.select_on`` fits the dataset's items
    (warm/cold selection needs a cold-start split; warm needs warm items in valid)."""
    for split in ("valid", "test"):
        if dataset.split(split).nnz == 0:  # dataset.split: a clear error when there is no such split
            raise DataError(_empty_split(dataset, split))
    if config.valid_metric not in _metric_names(config):
        from graphrec.metrics import METRICS

        raise ConfigError(f"valid_metric {config.valid_metric!r} (--metric) is not a reported metric: one of "
                          f"{', '.join(METRICS)} at a cut-off, e.g. recall@20")
    if config.select_on != "all" and dataset.cold_items is None:
        raise ConfigError(
            f"selecting on {config.select_on} items needs a cold-start split: add --cold-start (e.g. 0.2) "
            "or select on all items"
        )
    in_cold = None if dataset.cold_items is None else np.isin(dataset.split("valid").indices, dataset.cold_items)
    if config.select_on == "cold" and in_cold is not None:
        if not in_cold.any():
            raise DataError(
                f"validation holds no interaction with a cold item (dataset {dataset.name!r}, "
                f"{_cold_draw(dataset)}): nothing to select on; use a larger --cold-start fraction or another "
                "--seed, or select on all items"
            )
    if config.select_on == "warm" and in_cold is not None:
        if in_cold.all():
            raise ConfigError(
                "validation holds cold items only (the papers' cold-start protocol): select on all or cold, "
                "or use --cold-protocol hidden to keep warm items in valid/test"
            )


def _cold_draw(dataset: Dataset) -> str:
    """The cold-start split of ``dataset`` in words, for messages."""
    cs = dataset.meta.get("cold_start") or {}
    return (f"{len(dataset.cold_items)} cold items drawn, fraction {cs.get('fraction')}, seed {cs.get('seed')}, "
            f"protocol {cs.get('protocol')}")


def _empty_split(dataset: Dataset, split: str) -> str:
    """Why ``split`` holding no interaction stops a fit, with the fix."""
    if dataset.cold_items is not None and (dataset.meta.get("cold_start") or {}).get("protocol") == "papers":
        return (f"the {split} split holds no interaction after the cold-start split ({_cold_draw(dataset)}): its "
                f"cold items have no interaction in dataset {dataset.name!r}; use a larger --cold-start fraction or "
                "another --seed")
    return f"the {split} split of dataset {dataset.name!r} holds no interaction: nothing to {'select on' if split == 'valid' else 'test'}"


def training_key(dataset: Dataset) -> str:
    """A digest of ``dataset``'s training interactions (the pattern of ``dataset.train``):
    :func:`~graphrec.train.registry.build_model` stores it on the model it builds as
    ``model.built_on``, and :func:`fit` compares."""
    train = dataset.train
    h = hashlib.sha256(f"{train.shape}".encode())
    for arr in (train.indptr, train.indices):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).data)
    return h.hexdigest()[:16]


def check_model_fits(model: Recommender, dataset: Dataset) -> None:
    """A model built for other data is a one-line :class:`ConfigError` before any work:
    another number of users or items (not an index error or a wrong-shape score matrix
    an epoch later), or, for a model :func:`~graphrec.train.registry.build_model` built,
    other training interactions (its graphs would hold interactions the dataset holds out,
    e.g. a model built before ``cold_start``: the test would score items it saw)."""
    have = (getattr(model, "n_users", None), getattr(model, "n_items", None))
    if None not in have and have != (dataset.n_users, dataset.n_items):
        raise ConfigError(
            f"the model was built for {have[0]} users and {have[1]} items, dataset {dataset.name!r} has "
            f"{dataset.n_users} and {dataset.n_items}: build it for this dataset (build_model(name, dataset, params))"
        )
    built_on = getattr(model, "built_on", None)
    if isinstance(built_on, str) and built_on != training_key(dataset):
        raise ConfigError(
            f"the model was built on other training interactions than dataset {dataset.name!r} has (a split or "
            "cold-start split made after build_model?): its graphs hold interactions this dataset holds out, so its "
            "test would leak them; build it on the dataset it trains on (build_model(name, dataset, params))"
        )


def fit(
    model: Recommender,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device | str | None = None,
    log: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    evaluate_test: bool = True,
    keeper: StateKeeper | None = None,
) -> FitResult:
    """Train ``model`` on ``dataset.train``, select on valid, evaluate test once, on
    ``device`` (default: the model's own, so ``model.cuda()`` then ``fit(model, ...)``
    trains on the GPU).

    ``on_epoch`` is called with each epoch's history row once the row is complete (after
    the validation of an epoch that validates); an exception it raises (e.g. Optuna's
    ``TrialPruned``) ends training and propagates. ``evaluate_test=False`` never looks
    at the test split (``FitResult.test`` is empty): hyper-parameter search selects on
    validation only and tests the chosen configuration once, later.

    With a ``keeper`` (:mod:`graphrec.train.state`), every epoch starts by storing the
    loop's state in it, so that after an interrupt it holds the last completed epoch; a
    keeper made with a saved state resumes from it, to the numbers of an uninterrupted run.

    ``log`` receives one line per validated epoch (:func:`graphrec.train.progress.epoch_line`:
    loss, validation metric, best so far, seconds), from the main rank only; None (the
    default) prints nothing. ``config.progress`` draws tqdm bars instead or as well (the
    command line shows bars on a terminal and lines otherwise: docs/training.md).
    """
    check_config(config)
    check_selection(dataset, config)
    check_model_fits(model, dataset)
    device = model_device(model, device)
    model.to(device)
    if not any(p.requires_grad for p in model.parameters()):
        return _fit_nothing(model, dataset, config, device, on_epoch, evaluate_test)
    rng = np.random.default_rng(config.seed)
    sampler = NegativeSampler(dataset.train, exclude_items=dataset.cold_items if config.negatives == "warm" else None)
    _check_negatives_exist(sampler, dataset, config)
    opt = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    decay = config.lr_decay
    sched = (None if decay == 1.0 else
             torch.optim.lr_scheduler.LambdaLR(opt, lambda t: decay ** (t / config.lr_decay_every)))
    shard = distributed.current()
    main = shard is None or shard.is_main
    n_batches = -(-dataset.train.nnz // config.batch_size)
    step_loss = model.loss if shard is None else _data_parallel(model, device)
    # a loss that couples the step's triples is computed whole on every rank (Recommender.couples_batch)
    split_steps = shard is not None and not model.couples_batch

    best_score, best_epoch, best_state, best_valid = -np.inf, 0, None, {}
    history: list[dict[str, Any]] = []
    bad_evals = 0
    train_time, eval_time, n_evals = 0.0, 0.0, 0
    stopped = False
    kept = None if keeper is None else keeper.state
    if kept is not None:  # resume an interrupted run (graphrec.train.state)
        kept.restore(model, opt, sched, rng)
        best_score, best_epoch, best_state, best_valid = (kept.best_score, kept.best_epoch,
                                                        kept.best_state, kept.best_valid)
        history, bad_evals, (train_time, eval_time, n_evals) = list(kept.history), kept.bad_evals, kept.clock
    first = 1 if kept is None else kept.epoch + 1
    kept = None  # the keeper's copy alone: renew releases it before the next capture
    # lines=False: in a log the epoch lines (``log``) say it
    bar = tracked(range(first, config.epochs + 1), config.progress and main, desc="train", unit="epoch", lines=False)
    epoch = first - 1
    try:
        for epoch in bar:
            if keeper is not None:  # the state an interrupt in this epoch keeps (one copy at a time)
                keeper.renew(lambda: TrainState.capture(
                    epoch - 1, model, opt, sched, rng, best_epoch=best_epoch, best_score=best_score,
                    best_valid=best_valid, best_state=best_state, bad_evals=bad_evals, history=history,
                    clock=(train_time, eval_time, n_evals)))
            t0 = time.perf_counter()  # per-epoch work (LATTICE's rebuild, FREEDOM's pruning) counts
            model.train()
            model.start_epoch(epoch)
            total = 0.0
            # a bar over the epoch's steps, shown once an epoch has run 2 s (a million-item epoch takes hours)
            steps = tracked(bpr_batches(dataset.train, config.batch_size, rng, sampler), config.progress and main,
                            desc=f"epoch {epoch}", total=n_batches, unit="step", leave=False, delay=_BAR_DELAY)
            t_steps, done = time.perf_counter(), 0
            for users, pos, neg in steps:  # ranks split each step
                scale = 1.0
                if split_steps:  # this rank's part of the step (module doc)
                    mine = distributed.part(len(users), shard)
                    scale = shard.world * (mine.stop - mine.start) / len(users)
                    if mine.start == mine.stop:  # fewer triples than ranks: a zero-weight row keeps the step in sync
                        mine = slice(0, 1)
                    users, pos, neg = users[mine], pos[mine], neg[mine]
                loss = step_loss(
                    torch.from_numpy(users).to(device),
                    torch.from_numpy(pos).to(device),
                    torch.from_numpy(neg).to(device),
                )
                loss = scalar_loss(loss, model)
                if scale != 1.0:
                    loss = loss * scale
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                done += 1
                if epoch == first and done == _SLOW_EPOCH_STEPS and main:  # judged once per run, on the first epoch
                    note = slow_epoch_note((time.perf_counter() - t_steps) / done, n_batches, config.batch_size)
                    if note is not None:
                        warnings.warn(note, GraphrecNote, stacklevel=2)
            if shard is not None:  # the mean over the step's triples, averaged over the steps
                total = float(distributed.all_sum(torch.tensor([total], dtype=torch.float64))) / shard.world
            if sched is not None:
                sched.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            train_time += dt
            row: dict[str, Any] = {"epoch": epoch, "loss": total / n_batches, "train_seconds": dt}
            logged = model.log_values()
            if logged:
                row["model"] = logged
            if not np.isfinite(row["loss"]):
                raise divergence_error("training loss", row["loss"], epoch, dataset.item_features)
            if epoch % config.eval_every == 0 or epoch == config.epochs:
                t1 = time.perf_counter()
                groups = evaluate_model(model, dataset, "valid", config, device, progress=_bars(config))
                valid = groups["all"]
                et = time.perf_counter() - t1
                eval_time += et
                n_evals += 1
                row.update(_valid_entries(groups), eval_seconds=et)
                score = selected_score(row, config.select_on, config.valid_metric)
                if score > best_score:
                    best_score, best_epoch, best_valid = score, epoch, valid
                    best_state = copy.deepcopy(model.state_dict())
                    bad_evals = 0
                else:
                    bad_evals += 1
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{row['loss']:.4f}", **{config.valid_metric: f"{score:.4f}"},
                                    best=best_epoch)
                if log is not None and main:
                    log(epoch_line(epoch, config.epochs, row["loss"],
                                   selected_label(config.valid_metric, config.select_on),
                                   score, best_score, best_epoch, dt, et))
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if bad_evals >= config.patience:
                stopped = True
                break
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted) or not main:
            raise
        if best_state is not None:  # the model left behind is the best validated one, as after training
            model.load_state_dict(best_state)
        raise TrainingInterrupted(model, epoch, config.epochs, best_epoch, history) from None
    if hasattr(bar, "close"):
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    t2 = time.perf_counter()
    test = evaluate_model(model, dataset, "test", config, device, progress=_bars(config)) if evaluate_test else {}
    test_time = time.perf_counter() - t2
    epochs_run = len(history)
    return FitResult(
        best_epoch=best_epoch,
        best_valid=best_valid,
        best_score=float(best_score),
        test=test,
        history=history,
        timings={
            "epochs": epochs_run,
            "train_seconds": train_time,
            "seconds_per_epoch": train_time / max(epochs_run, 1),
            "eval_seconds_per_pass": eval_time / max(n_evals, 1),
            "test_seconds": test_time,
        },
        stopped_early=stopped,
    )


class _StepLoss(torch.nn.Module):
    """``model.loss`` as a module's forward, for DistributedDataParallel's hooks."""

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return self.model.loss(users, pos, neg)


def _data_parallel(model: Recommender, device: torch.device) -> torch.nn.Module:
    """``model.loss`` under DistributedDataParallel: gradients averaged over the ranks.

    Parameters a step does not use on any rank (a model's part that trains every other
    step) keep no gradient, as in one process; buffers are not broadcast (every rank
    builds the same graphs from the same data and seed, and sparse buffers cannot be).
    """
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    with warnings.catch_warnings():  # torch 2.14 deprecates broadcast_buffers, whose no-init-sync we need
        warnings.simplefilter("ignore", FutureWarning)
        return DistributedDataParallel(
            _StepLoss(model), device_ids=[device.index] if device.type == "cuda" and device.index is not None else None,
            find_unused_parameters=True, broadcast_buffers=False,
        )


def _fit_nothing(
    model: Recommender,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    evaluate_test: bool = True,
) -> FitResult:
    """A model without trainable parameters (e.g. content kNN): validate once, test once."""
    t1 = time.perf_counter()
    groups = evaluate_model(model, dataset, "valid", config, device, progress=_bars(config))
    et = time.perf_counter() - t1
    row = {"epoch": 0, **_valid_entries(groups), "eval_seconds": et}
    if on_epoch is not None:
        on_epoch(row)
    t2 = time.perf_counter()
    test = evaluate_model(model, dataset, "test", config, device, progress=_bars(config)) if evaluate_test else {}
    return FitResult(
        best_epoch=0,
        best_valid=groups["all"],
        best_score=selected_score(row, config.select_on, config.valid_metric),
        test=test,
        history=[row],
        timings={
            "epochs": 0,
            "train_seconds": 0.0,
            "seconds_per_epoch": 0.0,
            "eval_seconds_per_pass": et,
            "test_seconds": time.perf_counter() - t2,
        },
    )


def valid_metrics(row: Mapping[str, Any], items: str = "all") -> Mapping[str, float]:
    """A history row's validation metrics of ``items``: ``all`` (``row["valid"]``), or the
    ``cold`` / ``warm`` items of a cold-start run (``row["valid_groups"]``); empty where the
    row has none (no validation that epoch, or no such group)."""
    if items == "all":
        return row.get("valid") or {}
    return (row.get("valid_groups") or {}).get(items) or {}


def selected_score(row: Mapping[str, Any], select_on: str, metric: str) -> float:
    """The validation ``metric`` of the items selection is on (``select_on``) in a history
    row: what :func:`fit` selects epochs by, and tuning values trials by."""
    return float(valid_metrics(row, select_on)[metric])


def selected_label(metric: str, group: str) -> str:
    """How the selected metric is named in lines: ``recall@20``, ``recall@20 of the cold items``."""
    return metric if group == "all" else f"{metric} of the {group} items"


def _valid_entries(groups: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A history row's validation entries: ``valid`` (all items) and, under cold start,
    ``valid_groups`` (warm and cold items)."""
    out: dict[str, Any] = {"valid": groups["all"]}
    if len(groups) > 1:
        out["valid_groups"] = {g: m for g, m in groups.items() if g != "all"}
    return out


def _metric_names(config: TrainConfig) -> set[str]:
    from graphrec.metrics import METRICS

    return {f"{m}@{k}" for m in METRICS for k in config.ks}
