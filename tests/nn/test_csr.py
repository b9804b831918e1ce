"""csr_row_entries: the entries of some CSR rows, by hand."""

from __future__ import annotations

import torch

from graphrec.nn import csr_row_entries


def test_entries_of_rows_in_the_order_given_repeats_and_empty_rows_included():
    # rows: 0 -> entries 0, 1; 1 -> none; 2 -> entries 2, 3, 4
    crow = torch.tensor([0, 2, 2, 5])
    owner, entry = csr_row_entries(crow, torch.tensor([2, 1, 0, 2]))
    assert owner.tolist() == [0, 0, 0, 2, 2, 3, 3, 3]
    assert entry.tolist() == [2, 3, 4, 0, 1, 2, 3, 4]
    owner, entry = csr_row_entries(crow, torch.tensor([1], dtype=torch.long))
    assert owner.numel() == entry.numel() == 0
