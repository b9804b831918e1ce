"""Atomic outputs: write into a temporary sibling, rename into place at the end.

Every command that writes a directory (datasets, runs, exported files, graphs) goes
through :func:`atomic_dir`, so an interrupted or failing write never leaves a
half-written output and never destroys the previous one.

Temporaries are named ``.NAME.tmp-HOST.PID-XXXXXXXX`` (folders, :func:`temporary_dir`;
files, :func:`atomic_file`, which keep the output's suffix), and an output being
replaced is first renamed aside to ``.NAME.old-HOST.PID-XXXXXXXX`` (:func:`replace_dir`).
A run that is killed leaves one behind, and the next write of the same output removes
it once it is stale: its process no longer runs on this host, or the process now
running under that ID started after the temporary was last written (the ID was reused)
(:func:`remove_stale_temporaries`).

Every command also calls :func:`check_output` on each of its outputs before it does any
work (reading data, training, building a graph): an output that exists (without
``--overwrite``), whose parent is a file or cannot be written is a one-line
:class:`~graphrec.errors.ConfigError` then, not a traceback after the work is done.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from graphrec.errors import ConfigError, DataError

__all__ = [
    "atomic_dir",
    "atomic_file",
    "check_image_output",
    "check_output",
    "check_output_folder",
    "claimed_dir",
    "is_stale_temporary",
    "remove_stale_temporaries",
    "replace_dir",
    "temporary_dir",
]


def check_output(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    option: str = "--out",
    kind: str = "dir",
    marker: str | None = None,
    what: str = "output",
    suffixes: tuple[str, ...] = (),
    format_note: str = "the suffix picks the format",
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
    ``suffixes``: the file suffixes the output may have (e.g. ``(".csv",)``: with
    ``--overwrite``, a path such as ``RUN/record.json`` would be replaced by the output);
    ``format_note`` says why in the message.
    """
    path = Path(path)
    shown = str(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {shown}: write a {' or '.join(suffixes)} file ({format_note})")
    if kind not in ("dir", "file"):
        raise ValueError(f"kind={kind!r} is not dir or file")
    if path.exists() or path.is_symlink():
        # the wrong type first: --overwrite would not help, so it is not suggested
        if kind == "dir" and not path.is_dir():
            raise ConfigError(f"{option} {shown} is a file, not a folder: remove it or choose another {option}")
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{option} {shown} is a folder, not a file: choose another {option}")
        if not overwrite:
            raise ConfigError(f"{shown} already exists: choose another {option} or pass --overwrite")
        if kind == "dir" and marker is not None and any(path.iterdir()) and not any(path.glob(marker)):
            raise ConfigError(
                f"{option} {shown} is not a {what} (no {marker} in it): --overwrite replaces only an earlier "
                f"{what}; choose another {option} or remove the folder yourself"
            )
    _check_folder(path.absolute().parent, option, shown)
    return path


def check_image_output(path: str | os.PathLike, option: str = "--out", overwrite: bool = False) -> Path:
    """:func:`check_output` for an image a report writes (an existing one is replaced
    only with ``overwrite``), and its format: matplotlib picks it by the suffix, so a
    suffix it cannot write (``.txt``) is a one-line :class:`ConfigError` now, naming
    those it can; no suffix writes PNG."""
    path = check_output(path, overwrite=overwrite, option=option, kind="file")
    if path.suffix:
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:  # the command says that it needs matplotlib
            return path
        formats = FigureCanvasBase.get_supported_filetypes()
        if path.suffix[1:].lower() not in formats:
            common = [f for f in ("png", "pdf", "svg") if f in formats]
            others = sorted(f for f in formats if f not in common)
            raise ConfigError(f"{option} {path}: matplotlib cannot write {path.suffix} images: end the name with "
                              f".{', .'.join(common)} (or .{', .'.join(others)})")
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
def atomic_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    claimed: bool = False,
    fallback: bool = False,
    placed: list[Path] | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``
    (:func:`replace_dir`) with ``overwrite``, else takes the name only while it is free
    (:func:`place_new_dir`: an output that appeared meanwhile is never replaced).

    Raises :class:`DataError` up front when ``path`` exists and neither ``overwrite``,
    ``claimed`` (``path`` is the empty folder :func:`claimed_dir` made for this output)
    nor ``fallback`` is given; with ``fallback`` a taken name is no error: the folder is
    written beside it as ``NAME-2`` (``-3``, ...). ``placed`` receives the folder
    written. On an exception (Ctrl-C included) the temporary folder is removed, ``path``
    is left untouched, and the missing parent folders this call created are removed again.
    """
    path = Path(path)
    if path.exists() and not (overwrite or claimed or fallback):
        raise DataError(f"{path} already exists: choose another output or pass overwrite=True (CLI: --overwrite)")
    with _made_parents(path):
        tmp = temporary_dir(path)
        try:
            yield tmp
            if overwrite:
                replace_dir(tmp, path)
                final = path
            else:
                final = place_new_dir(tmp, path, claimed=claimed, fallback=fallback)
            if placed is not None:
                placed.append(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def place_new_dir(tmp: str | os.PathLike, path: str | os.PathLike, *, claimed: bool = False,
                  fallback: bool = False) -> Path:
    """Rename the complete folder ``tmp`` to ``path`` only if nothing holds that name (an
    empty folder is made there exclusively first, then replaced by the rename; a
    ``claimed`` ``path`` is this output's own empty folder). When the name is taken:
    with ``fallback``, the first free ``NAME-2``, ``NAME-3``, ... beside it (so that
    finished work is never discarded); without, a one-line :class:`DataError`. Returns
    the folder written."""
    tmp, path = Path(tmp), Path(path)
    if _take(tmp, path, claimed):
        return path
    if not fallback:
        raise DataError(f"{path} already exists: choose another output or pass overwrite=True (CLI: --overwrite)")
    for n in itertools.count(2):
        other = path.with_name(f"{path.name}-{n}")
        if _take(tmp, other, False):
            return other
    raise AssertionError("unreachable")


def _take(tmp: Path, path: Path, claimed: bool) -> bool:
    """Rename ``tmp`` to ``path`` if the name is free (or ``claimed``: still the empty
    folder made for it); False when it is taken."""
    if not claimed:
        try:
            os.mkdir(path)  # exclusive: two writers never get the same name
        except FileExistsError:
            return False
    try:
        os.rename(tmp, path)  # replaces the empty folder just made (or claimed), atomically
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        return False  # something was written into the claimed folder meanwhile
    return True


@contextlib.contextmanager
def claimed_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Claim an output folder name at the start of a long job (a run's default
    ``runs/MODEL-DATASET-STAMP``): ``path``, or the first free ``NAME-2``, ``NAME-3``,
    ... when it is taken (two runs started in the same second), made as an empty folder
    exclusively, so that no other process picks it. Yields the name; write it with
    :func:`atomic_dir` ``(..., claimed=True)``. When the block ends with the folder
    still empty (the job failed before writing it), it is removed, with the parent
    folders made for it on failure."""
    path = Path(path)
    with _made_parents(path):
        name = path
        for n in itertools.count(2):
            try:
                os.mkdir(name)
                break
            except FileExistsError:
                name = path.with_name(f"{path.name}-{n}")
        try:
            yield name
        finally:
            with contextlib.suppress(OSError):
                name.rmdir()  # only while empty: a written output stays


@contextlib.contextmanager
def _made_parents(path: Path) -> Iterator[None]:
    """Make ``path``'s missing parent folders; when the block fails (Ctrl-C included),
    remove again those made here that are still empty (something written there meanwhile
    stays), so that a failed write leaves nothing behind."""
    created = []  # deepest first
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty temporary file ``.NAME.tmp-HOST.PID-XXXXXXXX.SUFFIX`` beside
    ``path`` (the output's suffix kept, for writers that pick a format by it), after
    removing the stale temporaries of earlier writes of ``path``; on success it replaces
    ``path`` (``os.replace``), on an exception it is removed, ``path`` left untouched and
    the missing parent folders this call created removed again.
    The file gets the usual mode, not ``mkstemp``'s 0600."""
    path = Path(path)
    with _made_parents(path):
        remove_stale_temporaries(path)
        fd, name = tempfile.mkstemp(prefix=_temporary_prefix(path, "tmp"), suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            yield tmp
            os.replace(tmp, path)
        finally:
            if os.path.lexists(tmp):
                tmp.unlink()


def replace_dir(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the complete folder ``tmp`` to ``path``. An existing ``path`` is first
    renamed aside to ``.NAME.old-HOST.PID-XXXXXXXX``, renamed back when the second rename
    fails (or is interrupted), and removed once it succeeded."""
    tmp, path = Path(tmp), Path(path)
    if not (path.exists() or path.is_symlink()):
        tmp.rename(path)
        return
    old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path, "old"), dir=path.parent))
    old.rmdir()  # a unique name; rename needs it absent
    try:
        path.rename(old)
        tmp.rename(path)
    except BaseException:
        if os.path.lexists(old) and not os.path.lexists(path):
            old.rename(path)  # put the previous output back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _temporary_prefix(path: Path, kind: str) -> str:
    """``.NAME.KIND-HOST.PID-``: the start of a temporary's name (``kind``: tmp or old)."""
    return f".{path.name}.{kind}-{_host()}.{os.getpid()}-"


def _host() -> str:
    """This machine's name as it appears in temporary names (letters and digits only)."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def temporary_dir(path: str | os.PathLike) -> Path:
    """A new empty folder ``.NAME.tmp-HOST.PID-XXXXXXXX`` beside ``path`` (whose parent
    must exist), after removing the stale temporaries of earlier writes of ``path``; it
    has the mode a new folder gets (the umask's), not mkdtemp's 0700, since it becomes
    the output."""
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path, "tmp"), dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


#: seconds a process's start time may appear late (``/proc/stat``'s boot time is whole seconds)
_START_SLACK = 2.0


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of earlier writes of ``path`` that are stale; returns what
    was removed.

    Considered: the folders and files named by :func:`temporary_dir`,
    :func:`atomic_file` and :func:`replace_dir` for this ``path`` on this host
    (``.NAME.tmp-HOST.PID-*``, ``.NAME.old-HOST.PID-*``). One is stale when its process
    no longer runs (``os.kill(pid, 0)``), or when the process running under that ID
    started after the temporary was last modified (Linux ``/proc``: the ID was reused,
    so that process cannot have written it). A concurrent write of the same output keeps
    its temporary. A stale ``.old`` folder is removed only when ``path`` exists (its
    replacement was completed); otherwise it is the only copy of the earlier output (the
    writer was killed between its two renames) and is left for the user to rename back.
    Names without a host and process ID (graphrec before they were recorded) are left
    alone.
    """
    path = Path(path)
    if os.name != "posix" or not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.(tmp|old)-{re.escape(_host())}\.(\d+)-[A-Za-z0-9_]+(?:{re.escape(path.suffix)})?"
    )
    removed = []
    for entry in path.parent.iterdir():
        found = pattern.fullmatch(entry.name)
        if not found or entry.is_symlink() or not _stale(entry, int(found.group(2))):
            continue
        if found.group(1) == "old" and not (path.exists() or path.is_symlink()):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def is_stale_temporary(entry: str | os.PathLike) -> bool:
    """Whether ``entry`` is the temporary of a write that no longer runs
    (``.NAME.tmp-HOST.PID-XXXXXXXX``, :func:`temporary_dir` / :func:`atomic_file`, of this
    host, :func:`_stale`): garbage that the next write of that output removes. A ``.old``
    folder is never counted (it may be the only copy of an earlier output), nor is a
    temporary that is still being written."""
    entry = Path(entry)
    found = re.fullmatch(rf"\..+\.tmp-{re.escape(_host())}\.(\d+)-[A-Za-z0-9_]+(?:\.[^.]*)?", entry.name)
    return bool(found) and not entry.is_symlink() and _stale(entry, int(found.group(1)))


def _stale(entry: Path, pid: int) -> bool:
    """Whether the temporary ``entry`` written by process ``pid`` is no longer being written."""
    if not _running(pid):
        return True
    started = _process_start(pid)
    try:
        modified = entry.lstat().st_mtime
    except OSError:
        return False  # gone meanwhile
    return started is not None and started > modified + _START_SLACK


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from Linux's ``/proc``;
    None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


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
