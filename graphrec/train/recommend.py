"""Top-k recommendation lists for users, with already-seen items masked.

>>> items, scores = recommend(model.scorer(), dataset, users=[0, 1], k=10)  # doctest: +SKIP
>>> dataset.item_ids[items]          # original item ids                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from graphrec.data import Dataset
from graphrec.models.base import Scorer

__all__ = ["recommend"]


@torch.no_grad()
def recommend(
    scorer: Scorer,
    dataset: Dataset,
    users: Sequence[int] | np.ndarray,
    k: int = 20,
    exclude: Sequence[str] = ("train",),
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (``len(users) x k``) and scores of each user's top-``k`` items.

    Items the user has in any split named in ``exclude`` are never returned.
    """
    users_np = np.asarray(users, dtype=np.int64)
    k = min(k, dataset.n_items)
    scores = scorer(torch.as_tensor(users_np, device=device)).float()
    for split in exclude:
        m = dataset.split(split)[users_np]
        rows = np.repeat(np.arange(len(users_np)), np.diff(m.indptr))
        scores[torch.as_tensor(rows, device=scores.device), torch.as_tensor(m.indices.astype(np.int64), device=scores.device)] = -torch.inf
    top = torch.topk(scores, k, dim=1)
    return top.indices.cpu().numpy(), top.values.cpu().numpy()
