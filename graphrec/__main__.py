"""``python -m graphrec ...`` runs the command line (the same as ``graphrec ...``)."""

from graphrec.cli import main

main()
