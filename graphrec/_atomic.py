"""Atomic outputs: write into a temporary sibling, rename into place at the end.

Every command that writes a directory (datasets, runs, exported files, graphs) goes
through :func:`atomic_dir`, so an interrupted or failing write never leaves a
half-written output and never destroys the previous one.

Temporaries are named ``.NAME.tmp-HOST.PID-XXXXXXXX`` (:func:`temporary_dir`): a run
that is killed leaves one behind, and the next write of the same output removes it once
its process no longer runs on this host (:func:`remove_stale_temporaries`).

Every command also calls :func:`check_output` on each of its outputs before it does any
work (reading data, training, building a graph): an output that exists (without
``--overwrite``), whose parent is a file or cannot be written is a one-line
:class:`~graphrec.errors.ConfigError` then, not a traceback after the work is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from graphrec.errors import ConfigError, DataError

__all__ = ["atomic_dir", "check_output", "check_output_folder", "temporary_dir", "remove_stale_temporaries"]


def check_output(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    option: str = "--out",
    kind: str = "dir",
    marker: str | None = None,
    what: str = "output",
) -> Path:
    """Check, before any work, that ``path`` can be written.

    Refused with a one-line :class:`ConfigError`: ``path`` exists and ``overwrite`` is
    false; ``path`` exists with the wrong type (a file where a folder is written, or the
    reverse); with ``overwrite``, an existing non-empty folder holding no file matching
    ``marker`` (a glob, e.g. ``record.json``: ``--overwrite`` replaces an earlier output of
    the same command, never an unrelated folder); an ancestor that is a file; a parent
    folder (or, when missing, its nearest existing ancestor) that cannot be written
    (probed by creating and removing a temporary folder in it, so read-only file systems
    are caught even for root). Nothing is left behind: missing parents are created by
    the write at the end. ``option`` names the
    option or argument in the message, ``what`` the thing written (``run directory``).
    """
    path = Path(path)
    shown = str(path)
    if kind not in ("dir", "file"):
        raise ValueError(f"kind={kind!r} is not dir or file")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ConfigError(f"{shown} already exists: choose another {option} or pass --overwrite")
        if kind == "dir" and not path.is_dir():
            raise ConfigError(f"{option} {shown} is a file, not a folder: remove it or choose another {option}")
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{option} {shown} is a folder, not a file: choose another {option}")
        if kind == "dir" and marker is not None and any(path.iterdir()) and not any(path.glob(marker)):
            raise ConfigError(
                f"{option} {shown} is not a {what} (no {marker} in it): --overwrite replaces only an earlier "
                f"{what}; choose another {option} or remove the folder yourself"
            )
    _check_folder(path.absolute().parent, option, shown)
    return path


def check_output_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work, that outputs can be created inside ``folder`` (it or, when
    missing, its nearest existing ancestor must be a writable folder): a one-line :class:`ConfigError` when it or an ancestor is a file or it
    cannot be written (used for default output locations such as ``runs/``)."""
    folder = Path(folder)
    _check_folder(folder.absolute(), option, f"into {folder}")
    return folder


def _check_folder(folder: Path, option: str, shown: str) -> None:
    """New entries can be made in ``folder``, else a one-line error about writing
    ``shown`` (the output as the user named it). A missing ``folder`` is not created
    (a refused command leaves nothing behind): its nearest existing ancestor must be a
    writable folder, which makes creating it at the end succeed."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(
            f"cannot write {option} {shown}: {_shown(ancestor)} is a file, not a folder: choose another {option}"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".graphrec-write-check-", dir=ancestor))
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"cannot write {option} {shown}: the folder {_shown(ancestor)} cannot be written ({reason}): "
            f"choose another {option}"
        ) from None


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
    tmp = temporary_dir(path)
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


def _host() -> str:
    """This machine's name as it appears in temporary names (letters and digits only)."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def temporary_dir(path: str | os.PathLike) -> Path:
    """A new empty folder ``.NAME.tmp-HOST.PID-XXXXXXXX`` beside ``path`` (whose parent
    must exist), after removing the stale temporaries of earlier writes of ``path``."""
    path = Path(path)
    remove_stale_temporaries(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_host()}.{os.getpid()}-", dir=path.parent))


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary folders of earlier writes of ``path`` whose writing process
    is gone (a killed or crashed run); returns what was removed.

    Only folders named by :func:`temporary_dir` for this ``path`` on this host are
    considered, and one is kept while its process ID runs (``os.kill(pid, 0)``): a
    concurrent write of the same output keeps its temporary. Names without a host and
    process ID (graphrec before they were recorded) are left alone.
    """
    path = Path(path)
    if os.name != "posix" or not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-{re.escape(_host())}\.(\d+)-[A-Za-z0-9_]+")
    removed = []
    for entry in path.parent.iterdir():
        found = pattern.fullmatch(entry.name)
        if found and entry.is_dir() and not entry.is_symlink() and not _running(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (ours, or another user's)."""
    if pid <= 0 or pid == os.getpid():
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, as another user
        return True
    return True
