"""One rule for the ``device`` argument of every public function: ``"auto"`` (CUDA
when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` (Apple
silicon's GPU) or a :class:`torch.device`. Refused before any work, with a one-line
:class:`~graphrec.errors.ConfigError` that names the devices usable here: a name torch
does not know; a device type graphrec does not run on (``xpu``, ``meta``, ...); CUDA on
a machine without it, or ``cuda:N`` beyond its GPUs; ``mps`` where this torch build or
machine has no MPS (torch itself failed only once the model and its graphs were built).

Defaults: a Python function defaults to ``"cpu"`` (a library never moves work to a GPU
unasked; pass ``device="auto"`` for CUDA where there is one), except those that take a
model, which default to the model's own device (:func:`model_device`: ``model.cuda()``
then ``fit(model, ...)`` trains on the GPU); every command of the CLI defaults to
``--device auto``."""

from __future__ import annotations

from itertools import chain

import torch

from graphrec.errors import ConfigError

#: the device types graphrec runs on (``resolve_device`` refuses the others torch knows)
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device, option: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device`, ``"auto"`` resolved, checked usable on this
    machine with this torch build (module doc). ``option`` names the argument in the
    messages (the CLI's ``--device``)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option} {device!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    use = f"{option} cpu" if option.startswith("--") else "cpu"  # the CLI names its flag
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(f"{option} {device}: graphrec runs on cpu, cuda and mps devices, not {dev.type}: "
                          f"use {use} or auto (usable here: {usable_devices()})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {device}: CUDA is not available on this machine: use {use} (or auto)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"{option} {device}: this machine has {n} CUDA device(s), cuda:0 to cuda:{n - 1}: "
                              "use one of them (or auto)")
    if dev.type == "mps":
        if not torch.backends.mps.is_built():
            why = f"torch {torch.__version__} is built without MPS (Apple silicon's GPU, in torch's macOS builds)"
        elif not torch.backends.mps.is_available():
            why = "MPS is not available on this machine (it needs Apple silicon and macOS 12.3 or later)"
        elif dev.index not in (None, 0):
            why = "MPS has one device, mps"
        else:
            return dev
        raise ConfigError(f"{option} {device}: {why}: use {use} or auto (usable here: {usable_devices()})")
    return dev


def usable_devices() -> str:
    """The devices graphrec can use here, for messages: ``"cpu"``, with ``"cuda"`` (and
    its indices when there are several GPUs) and ``"mps"`` where available."""
    found = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        found.append("cuda" if n == 1 else f"cuda:0 to cuda:{n - 1}")
    if torch.backends.mps.is_available():
        found.append("mps")
    return ", ".join(found)


def model_device(model: torch.nn.Module, device: str | torch.device | None = None) -> torch.device:
    """``device`` resolved (:func:`resolve_device`); ``None``: where the model's parameters
    are (its buffers for a model without parameters; the CPU for one with neither)."""
    if device is not None:
        return resolve_device(device)
    for tensor in chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
