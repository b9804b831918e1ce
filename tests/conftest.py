"""Shared fixtures: the real datasets in ../shared/data (beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("GRAPHREC_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real datasets; CI must have them, a local run without them skips."""
    root = _shared_data()
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {root}: CI needs ../shared/data beside the clone")
        pytest.skip(f"real data not found at {root} (set GRAPHREC_SHARED_DATA)")
    return root
