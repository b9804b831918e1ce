"""``python -m graphrec ...`` runs the command line (the same as ``graphrec ...``)."""

import os
import signal

if os.environ.get("GRAPHREC_HOSTED_STORE") == "1":
    # a rank of graphrec's own launcher (graphrec.distributed.launch): the terminal's Ctrl-C
    # reaches it through the launcher (as SIGTERM), once, not a second time directly
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from graphrec._entry import main  # noqa: E402  (a Ctrl-C while the CLI imports: one line, 130)

main()
