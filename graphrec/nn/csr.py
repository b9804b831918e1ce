"""The entries of some rows of a CSR matrix, vectorised (no Python loop over rows), the
same code on CPU and CUDA."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["csr_row_entries"]


def csr_row_entries(crow: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The entries of CSR rows ``rows`` (compressed row pointers ``crow``), row after row
    in the order given: for each entry, the position of its row in ``rows`` and its index
    into the CSR's column and value arrays."""
    start = crow[rows]
    count = crow[rows + 1] - start
    total = int(count.sum())
    owner = torch.repeat_interleave(torch.arange(rows.numel(), device=crow.device), count, output_size=total)
    first = torch.cumsum(count, 0) - count  # each row's first rank among the entries
    return owner, start[owner] + torch.arange(total, device=crow.device) - first[owner]
