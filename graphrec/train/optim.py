"""The optimiser of every training loop: Adam, on torch's fused kernel where it applies.

``torch.optim.Adam`` updates parameter by parameter in Python unless told otherwise; its
fused kernel does the same update (the same moments, bias corrections and weight decay)
in one pass over each tensor, in C++ on the CPU and in one CUDA kernel on a GPU. On one
CPU thread it steps 1.9 M parameters about 4.5x faster (17.5 ms against 3.8 ms), which
takes up to a fifth off an epoch of the field's models: most where feature tables are
fine-tuned, nothing measurable where propagation dominates
(``experiments/benchmarks/epoch_time.py --setting scientific-adam``). The updates agree
with the loop's to float rounding (``tests/train/test_optim.py``).
"""

from __future__ import annotations

from typing import Iterable

import torch

#: the device types that torch's fused Adam kernel covers and graphrec runs on
FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over ``params``, fused when every tensor is floating point on a CPU or a
    CUDA device (torch checks that only at the first step, too late to fall back)."""
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)
    # otherwise None, not False: torch then keeps its own default (foreach on a GPU)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
