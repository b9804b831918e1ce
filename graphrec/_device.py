"""One rule for the ``device`` argument of every public function: ``"auto"`` (CUDA
when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
:class:`torch.device`; a CUDA device on a machine without one, or a name torch does not
know, is a one-line :class:`~graphrec.errors.ConfigError`."""

from __future__ import annotations

import torch

from graphrec.errors import ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, ``"auto"`` resolved (module doc)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device}: CUDA is not available on this machine: use cpu (or auto)")
    return dev
