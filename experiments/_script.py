"""What the experiment scripts share: bad input is one line on stderr and exit status 1,
checked before the work (graphrec's own commands do the same, graphrec/cli/_common.py).

The scripts put the repository on ``sys.path`` and import this module as
``experiments._script``:

* :func:`check_out_file` / :func:`check_out_folder`: an output path that cannot be
  written (``/proc/x.md``, a folder where a file goes, a parent that is a file) stops the
  script before it measures or trains anything, not with a traceback at the end;
* :func:`one_line_errors`: a :class:`~graphrec.errors.GraphrecError` (a missing data
  folder, a malformed file) raised by graphrec's readers becomes its one-line message;
* :func:`check_data_root`: the data folder a script reads holds what it needs;
* :func:`fail`: a script's own check.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
import time
from typing import Any, Callable, Iterator, NoReturn

from graphrec._atomic import check_output, check_output_folder
from graphrec.errors import ConfigError, GraphrecError

__all__ = ["check_data_root", "check_out_file", "check_out_folder", "fail", "one_line_errors"]


def fail(message: str) -> NoReturn:
    """Stop the script: ``message`` on stderr (one line: the problem and the fix), exit 1."""
    raise SystemExit(message)


def check_out_file(path: str | os.PathLike | None, option: str = "--out") -> Path | None:
    """Check that the report file ``path`` can be written (it may exist: a report is
    replaced), before any work; None passes (no report asked for)."""
    if path is None:
        return None
    try:
        return check_output(path, overwrite=True, option=option, kind="file")
    except ConfigError as e:
        fail(str(e))


def check_out_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that results can be written into the folder ``path`` (which may exist and
    hold earlier results, or be created), before any work."""
    try:
        return check_output_folder(path, option=option)
    except ConfigError as e:
        fail(str(e))


def check_data_root(root: str | os.PathLike, needed: str, holding: str, option: str = "--data-root") -> None:
    """Before any work: ``root`` holds ``needed`` (a path relative to it; a glob pattern is
    allowed), else one line naming the script, the folder and what to pass (the folder
    holding ``holding``)."""
    if not any(Path(root).glob(needed)):
        fail(f"{Path(sys.argv[0]).name}: {option} {root}: no {needed} there: pass the folder holding {holding}")


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Within the block, graphrec's user-facing errors (and a missing file) end the
    script with their message instead of a traceback (``GRAPHREC_DEBUG=1`` shows the
    traceback, as graphrec's commands do)."""
    try:
        yield
    except (GraphrecError, FileNotFoundError) as e:
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        if isinstance(e, FileNotFoundError) and e.filename:
            fail(f"{e.filename}: no such file or folder ({e.strerror})")
        fail(str(e))


def cpu_wait_total() -> float | None:
    """(Benchmarks.) Microseconds some task waited for a CPU since boot (PSI), or None where unavailable."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def cpu_wait_seconds() -> float | None:
    """(Benchmarks.) :func:`cpu_wait_total` in seconds: its growth over a measurement says
    how much of it other jobs took."""
    total = cpu_wait_total()
    return None if total is None else total / 1e6


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Fastest wall-clock seconds of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
