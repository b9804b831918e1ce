"""The ``graphrec`` console script and ``python -m graphrec``.

The command line's modules take a second or two to import (torch among them), and typer
then builds the command tree; a Ctrl-C in that time, or in any other moment outside a
command's own handling, ends the command as an interrupt at any later point does (one
line, status 130), not with a traceback. A command's own interrupt handling (``graphrec
train`` says where it kept its state and how to resume) ends in its own exit status before
this one is reached. A :class:`~graphrec.errors.GraphrecError` raised while the commands are
made (a model whose declaration is refused, :class:`~graphrec.errors.ModelDefinitionError`)
is one ``error:`` line, status 1. ``GRAPHREC_DEBUG=1`` keeps the traceback.

SIGTERM (``kill``, a batch system's time limit) is a Ctrl-C for every command: the
temporary files of an unfinished output are removed on the way out (they were left behind
as hidden ``.NAME.tmp-*`` entries, and ``tune`` left its trial running) and the command
says ``interrupted``; ``graphrec train`` and ``features`` keep their state as for Ctrl-C.
A SIGTERM the parent process ignores stays ignored, and a rank of graphrec's own launcher
(``--nproc``) keeps the launcher's handling.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["main"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> None:
    """SIGTERM raises :class:`KeyboardInterrupt` from now on (see the module doc), where it
    still has its default action, in the main thread, outside the launcher's ranks."""
    if threading.current_thread() is not threading.main_thread() or os.environ.get("GRAPHREC_HOSTED_STORE") == "1":
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def main() -> None:
    """Import the command line, then run it; a Ctrl-C that no command handled is one line."""
    from graphrec.errors import GraphrecError

    _sigterm_as_interrupt()
    try:
        from graphrec.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except GraphrecError as e:  # outside every command: a model's declaration refused as the commands are made
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(1) from None
