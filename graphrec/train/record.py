"""Run directories: the trained weights plus a JSON record of everything that made them.

A run directory holds

* ``record.json``: graphrec version, model name and hyper-parameters, training config,
  dataset (path as given, name, fingerprint, statistics), device, per-epoch losses and
  validation metrics, best epoch, final test metrics, timings;
* ``model.pt``: the best ``state_dict`` (tensors only; read back with
  ``torch.load(weights_only=True)``, so a crafted checkpoint cannot run code).

Both are written into a temporary folder that is renamed into place at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from graphrec._atomic import atomic_dir
from graphrec.errors import DataError

__all__ = ["save_run", "load_record", "load_state"]

RECORD = "record.json"
WEIGHTS = "model.pt"


def save_run(out: str | os.PathLike, record: dict[str, Any], state_dict: dict[str, Any]) -> Path:
    """Write ``record.json`` and ``model.pt`` to ``out`` atomically (replacing an old run)."""
    out = Path(out)
    with atomic_dir(out, overwrite=True) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp / WEIGHTS)
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=_jsonable))
    return out


def load_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / RECORD
    if not path.is_file():
        raise DataError(f"{run_dir} is not a graphrec run directory (no {RECORD}): pass the --out of `graphrec train`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON ({e})") from None


def load_state(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise DataError(f"{path} is missing: the run did not finish; train again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(f"{path} is not a graphrec checkpoint ({type(e).__name__}): train again") from None


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
