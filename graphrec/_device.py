"""One rule for the ``device`` argument of every public function: ``"auto"`` (CUDA
when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
:class:`torch.device`; a CUDA device on a machine without one, or a name torch does not
know, is a one-line :class:`~graphrec.errors.ConfigError`.

Defaults: a Python function defaults to ``"cpu"`` (a library never moves work to a GPU
unasked; pass ``device="auto"`` for CUDA where there is one), except those that take a
model, which default to the model's own device (:func:`model_device`: ``model.cuda()``
then ``fit(model, ...)`` trains on the GPU); every command of the CLI defaults to
``--device auto``."""

from __future__ import annotations

from itertools import chain

import torch

from graphrec.errors import ConfigError


def resolve_device(device: str | torch.device, option: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device`, ``"auto"`` resolved (module doc). ``option``
    names the argument in the messages (the CLI's ``--device``)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option} {device!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        use = f"{option} cpu" if option.startswith("--") else "cpu"  # the CLI names its flag
        raise ConfigError(f"{option} {device}: CUDA is not available on this machine: use {use} (or auto)")
    return dev


def model_device(model: torch.nn.Module, device: str | torch.device | None = None) -> torch.device:
    """``device`` resolved (:func:`resolve_device`); ``None``: where the model's parameters
    are (its buffers for a model without parameters; the CPU for one with neither)."""
    if device is not None:
        return resolve_device(device)
    for tensor in chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
