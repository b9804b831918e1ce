"""What a training shows while it runs, for the ranking and the CTR fit loops alike.

The fit loops (:func:`graphrec.train.fit`, :func:`graphrec.train.ctr.fit_ctr`) print
nothing of their own: they show the progress of their epochs, steps and evaluations when
their config's ``progress`` is on (:mod:`graphrec._progress`: tqdm bars, or a line a
minute inside :func:`graphrec._progress.lines_to`), and hand one plain line per validated
epoch to their ``log`` callback when they are given one (:func:`epoch_line`; None, the
default of the Python API, gives no line). The command line chooses
(:func:`graphrec.cli._common.training_progress`): bars on a terminal; when stderr is a
file or a pipe (``2>&1 | tee log``, nohup, CI) the epoch lines, opened by
:func:`start_line`, and a line a minute from within long work; neither with ``--quiet``.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

from graphrec._progress import lines_to, tracked

__all__ = ["epoch_line", "lines_to", "start_line"]


def epoch_line(
    epoch: int,
    epochs: int,
    loss: float,
    metric: str,
    score: float,
    best_score: float,
    best_epoch: int,
    train_seconds: float,
    valid_seconds: float,
) -> str:
    """The line of a validated epoch: its number of the most ``epochs``, its training
    loss, its validation ``metric`` (``score``), the best validation score so far (this
    epoch's included) and its epoch, and the seconds the epoch trained and validated::

        epoch 5/200  loss 0.4123  valid recall@20 0.1234  best 0.1250 (epoch 3)  2.10 s/epoch  0.31 s/validation

    Values are rounded to 4 decimals as the results table's are."""
    return (f"epoch {epoch}/{epochs}  loss {loss:.4f}  valid {metric} {score:.4f}  best {best_score:.4f} "
            f"(epoch {best_epoch})  {train_seconds:.2f} s/epoch  {valid_seconds:.2f} s/validation")


def start_line(
    model: str,
    dataset: str,
    device: str,
    epochs: int,
    eval_every: int = 1,
    done: int = 0,
    trainable: bool = True,
) -> str:
    """The line before the epoch lines: what trains on what, where, for how long; ``done``
    epochs already trained (a resumed run goes on from the next); a model without
    parameters (``trainable`` False) is only evaluated."""
    if not trainable:
        return f"evaluating {model} on {dataset} ({device}): no parameters to train, validated once"
    every = "every epoch" if eval_every == 1 else f"every {eval_every} epochs and the last"
    verb = f"resuming {model} after epoch {done}" if done else f"training {model}"
    return f"{verb} on {dataset} ({device}): at most {epochs} epochs, validated {every}"


def progress_bar(it: Iterable[Any], enabled: bool, **kw: Any) -> Iterable[Any]:
    """Deprecated: :func:`graphrec._progress.tracked` (a bar, or lines in a log)."""
    warnings.warn("graphrec.train.progress.progress_bar is deprecated: loops report through "
                  "graphrec._progress.tracked", FutureWarning, stacklevel=2)
    return tracked(it, enabled, str(kw.pop("desc", "")), **kw)
