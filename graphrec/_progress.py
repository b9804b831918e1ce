"""Progress of long work: a bar where a person watches, plain lines where a log is kept.

Every long loop of the package reports through this module, given its caller's
``progress`` switch (``enabled``): :func:`tracked` wraps an iterable (kNN and
co-interaction blocks, training steps, evaluation and recommendation batches),
:func:`counter` is a count advanced by hand (feature extraction, file writers), and
:func:`busy` covers one long call with no progress of its own (faiss's HNSW build).
What ``enabled`` shows depends on where the output goes:

* by default (the Python API, a notebook, the command line on a terminal): a tqdm bar;
* inside :func:`lines_to` (the command line when stderr is a file or a pipe: ``2>&1 |
  tee log``, nohup, a batch job, CI), where a bar's carriage returns are noise: no bar,
  but one plain line every ``every`` seconds (:data:`LINE_SECONDS`) while the work runs,
  and one when it ends if it wrote any, so that a short loop stays silent and an
  hour-long one says where it is::

      epoch 1: 1,200/3,500 steps (34%), 10:05 elapsed, about 19:20 left
      epoch 1: 3,500 steps in 29:31

* ``enabled`` False: nothing.

Numbers of a loop with a known total get a share and an estimate of the time left (the
average pace so far); one without gets its count and the time elapsed.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

from graphrec.errors import ConfigError

__all__ = ["BUSY_SECONDS", "LINE_SECONDS", "busy", "counter", "lines_to", "scope", "show_lines", "tracked"]

#: seconds between two progress lines of one loop (:func:`lines_to`)
LINE_SECONDS = 60.0
#: the shortest interval of :func:`busy`'s lines, which has no steps to pace them (an
#: interval of 0, a line per step elsewhere, would otherwise write as fast as it can)
BUSY_SECONDS = 1.0

#: where progress lines go, and how often, inside :func:`lines_to`; None: tqdm bars
_LINES: contextvars.ContextVar[Optional[tuple[Callable[[str], None], float]]] = contextvars.ContextVar(
    "graphrec_progress_lines", default=None
)


def _interval(every: float) -> float:
    """``every`` as seconds between lines: a number >= 0 (0: a line per step)."""
    seconds = float(every)
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"progress lines every {every!r} seconds: give a number of seconds >= 0")
    return seconds


@contextlib.contextmanager
def lines_to(log: Optional[Callable[[str], None]], every: float = LINE_SECONDS) -> Iterator[None]:
    """Within the block, enabled progress is written as lines to ``log`` (one every
    ``every`` seconds per loop) instead of drawn as bars; ``log=None`` restores bars."""
    token = _LINES.set(None if log is None else (log, _interval(every)))
    try:
        yield
    finally:
        _LINES.reset(token)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Whatever :func:`show_lines` sets inside the block ends with it (a command of the
    command line, so that one command's choice does not outlive it in a test runner)."""
    token = _LINES.set(_LINES.get())
    try:
        yield
    finally:
        _LINES.reset(token)


def show_lines(log: Callable[[str], None], every: float = LINE_SECONDS) -> None:
    """From here to the end of the enclosing :func:`scope` (or of the context), enabled
    progress is written as lines to ``log``: :func:`lines_to` without a block."""
    _LINES.set((log, _interval(every)))


def _clock(seconds: float) -> str:
    """``seconds`` as ``m:ss`` or ``h:mm:ss``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _plural(unit: str) -> str:
    """A tqdm unit (``"batch"``, ``" entries"``) as the lines count it (``"batches"``)."""
    unit = unit.strip() or "it"
    if unit.endswith(("ch", "sh", "x")):
        return unit + "es"
    return unit if unit.endswith("s") or unit == "it" else unit + "s"


def _word(n: int, unit: str, units: str) -> str:
    """The unit for a count of ``n``: ``step`` for 1, ``steps`` otherwise."""
    return (unit.strip() or "it") if n == 1 else units


def _count(n: int, unit: str, units: str) -> str:
    """``n`` with its unit: ``1 step``, ``1,200 steps``."""
    return f"{n:,} {_word(n, unit, units)}"


class _Lines:
    """A loop's progress as lines: :meth:`update` counts, a line at most every ``every``
    seconds; :meth:`close` writes the closing line when any was written."""

    def __init__(self, log: Callable[[str], None], every: float, desc: str, total: Optional[int], unit: str,
                 initial: int = 0) -> None:
        self.log, self.every, self.desc, self.total = log, every, desc, total
        self.unit, self.units = unit, _plural(unit)
        self.n = self.initial = int(initial)
        self.start = time.monotonic()
        self.next = self.start + every
        self.wrote = False
        self.lock = threading.Lock()

    def update(self, k: int = 1) -> None:
        self.n += int(k)
        now = time.monotonic()
        if now >= self.next:
            self.tick(now)

    def tick(self, now: Optional[float] = None) -> None:
        """Write the line now (a :func:`busy` ticker calls it from its thread)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            self.next = now + self.every
            self.wrote = True
            self.log(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        if self.total is None:
            done = _count(self.n, self.unit, self.units) if self.n else ""
            return f"{self.desc}: {done + ', ' if done else ''}{_clock(elapsed)} elapsed"
        share = self.n / self.total if self.total else 1.0
        of = _word(self.total, self.unit, self.units)
        text = f"{self.desc}: {self.n:,}/{self.total:,} {of} ({100 * share:.0f}%), {_clock(elapsed)} elapsed"
        fresh = self.n - self.initial  # the pace of this call (a resumed count's first part is not timed)
        if 0 < fresh and self.n < self.total:
            text += f", about {_clock(elapsed / fresh * (self.total - self.n))} left"
        return text

    def close(self) -> None:
        if self.wrote:
            done = f"{_count(self.n, self.unit, self.units)} in " if self.n else "done in "
            self.log(f"{self.desc}: {done}{_clock(time.monotonic() - self.start)}")
            self.wrote = False


class _Nothing:
    """:func:`counter` when nothing is shown."""

    def update(self, k: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _tqdm() -> Any:
    from tqdm.auto import tqdm  # here, at call time: tests replace tqdm.auto.tqdm to record the bars

    return tqdm


def tracked(it: Iterable[Any], enabled: bool, desc: str, total: Optional[int] = None, unit: str = "it",
            lines: bool = True, **bar: Any) -> Iterable[Any]:
    """``it`` with its progress shown (module doc): a tqdm bar (``bar``: tqdm's options,
    e.g. ``leave``, ``delay``), or lines inside :func:`lines_to` (``lines=False``: none,
    where the caller writes lines of its own, e.g. the training's epoch lines), or
    nothing when not ``enabled``. ``total`` defaults to ``len(it)`` where it has one."""
    if not enabled:
        return it
    if total is None and hasattr(it, "__len__"):
        total = len(it)  # type: ignore[arg-type]
    where = _LINES.get()
    if where is None:
        return _tqdm()(it, total=total, desc=desc, unit=unit, dynamic_ncols=True, **bar)
    if not lines:
        return it
    return _tracked_lines(it, _Lines(where[0], where[1], desc, total, unit))


def _tracked_lines(it: Iterable[Any], shown: _Lines) -> Iterator[Any]:
    for item in it:
        yield item
        shown.update()
    shown.close()  # not on an exception or a loop left early: the closing line says "done"


@contextlib.contextmanager
def counter(enabled: bool, desc: str, total: Optional[int] = None, unit: str = "it", initial: int = 0,
            **bar: Any) -> Iterator[Any]:
    """A count advanced by hand (``.update(k)``) with its progress shown as
    :func:`tracked` shows it; ``initial``: already done (a resumed extraction)."""
    if not enabled:
        yield _Nothing()
        return
    where = _LINES.get()
    if where is None:
        with _tqdm()(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, **bar) as shown:
            yield shown
        return
    lines = _Lines(where[0], where[1], desc, total, unit, initial)
    yield lines
    lines.close()


@contextlib.contextmanager
def busy(enabled: bool, desc: str) -> Iterator[None]:
    """Progress while the body runs one long call that reports none of its own: a tqdm
    line with the elapsed time refreshed twice a second, or inside :func:`lines_to` a
    line every ``every`` seconds. A daemon thread keeps it current; the call itself stays
    in the calling thread, unchanged (Ctrl-C still reaches it)."""
    if not enabled:
        yield
        return
    where = _LINES.get()
    if where is None:
        shown: Any = _tqdm()(total=None, desc=desc, leave=False, dynamic_ncols=True, bar_format="{desc}: {elapsed}")
        period, tick, close = 0.5, shown.refresh, shown.close
    else:
        shown = _Lines(where[0], max(where[1], BUSY_SECONDS), desc, None, "")
        period, tick, close = shown.every, shown.tick, shown.close
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(period):
            tick()

    ticker = threading.Thread(target=run, name="graphrec-busy", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        if where is None:
            close()  # the bar, whatever happened
    if where is not None:
        close()  # a closing line says "done": not after an error or an interrupt
