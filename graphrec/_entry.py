"""The ``graphrec`` console script and ``python -m graphrec``.

The command line's modules take a second or two to import (torch among them); a Ctrl-C
in that time ends the command as an interrupt at any later point does (one line,
status 130), not with the import's traceback. ``GRAPHREC_DEBUG=1`` keeps the traceback.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main() -> None:
    """Import the command line, then run it."""
    try:
        from graphrec.cli import main as cli_main
    except KeyboardInterrupt:
        if os.environ.get("GRAPHREC_DEBUG"):
            raise
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    cli_main()
