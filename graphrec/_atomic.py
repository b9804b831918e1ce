"""Atomic outputs: write into a temporary sibling, rename into place at the end.

Every command that writes a directory (datasets, runs, exported files, graphs) goes
through :func:`atomic_dir`, so an interrupted or failing write never leaves a
half-written output and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from graphrec.errors import DataError

__all__ = ["atomic_dir"]


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``.

    Raises :class:`DataError` up front when ``path`` exists and ``overwrite`` is false.
    On an exception the temporary folder is removed and ``path`` is left untouched.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"{path} already exists: choose another output or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the output gets the usual mode
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
