"""TensorBoard scalars of training (``--tensorboard DIR`` of ``graphrec train`` and
``graphrec tune``), written with :mod:`torch.utils.tensorboard`.

Per epoch (the step is the epoch): ``train/loss``; ``valid/METRIC@K`` for every
validation metric (``valid-warm/...``, ``valid-cold/...`` under cold start); and
``model/NAME`` for every learned scalar the model logs (graph and modality weights of
the item-graph models, :meth:`graphrec.models.Recommender.log_values`). Needs the
``tensorboard`` package (``pip install 'graphrec[tensorboard]'``); view with
``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from graphrec.errors import ConfigError

__all__ = ["require_tensorboard", "scalar_writer"]


def require_tensorboard() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or a one-line :class:`ConfigError`
    saying to install tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install tensorboard (or pip install 'graphrec[tensorboard]')"
        ) from None
    return SummaryWriter


def scalar_writer(folder: str | os.PathLike) -> Callable[[dict[str, Any] | None], None]:
    """A function writing one history row of the fit loop (its ``on_epoch`` hook) as
    scalars into the TensorBoard run ``folder``; called with ``None`` it closes the file."""
    writer = require_tensorboard()(log_dir=str(folder))

    def write(row: dict[str, Any] | None) -> None:
        if row is None:
            writer.close()
            return
        step = int(row["epoch"])
        if "loss" in row:
            writer.add_scalar("train/loss", float(row["loss"]), step)
        groups = {"valid": row.get("valid") or {}}
        groups.update({f"valid-{g}": m for g, m in (row.get("valid_groups") or {}).items()})
        for prefix, metrics in groups.items():
            for name, value in metrics.items():
                if "@" in name:
                    writer.add_scalar(f"{prefix}/{name}", float(value), step)
        for name, value in (row.get("model") or {}).items():
            writer.add_scalar(f"model/{name}", float(value), step)
        writer.flush()

    return write
