"""Errors graphrec raises for problems the user can fix.

Every layer raises these for bad input (a missing file, a malformed row, an option that
does not fit the data). Their message is one line that names the problem, where it is
(file, line, column or id) and what to do. The CLI prints the message and exits with
status 1; library users catch :class:`GraphrecError`.
"""

from __future__ import annotations

__all__ = ["GraphrecError", "DataError", "ConfigError"]


class GraphrecError(Exception):
    """Base class of the user-facing errors of graphrec."""


class DataError(GraphrecError, ValueError):
    """A data file or dataset is missing, malformed or inconsistent."""


class ConfigError(GraphrecError, ValueError):
    """An option or configuration value is invalid."""
