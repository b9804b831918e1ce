"""Errors graphrec raises for problems the user can fix.

Every layer raises these for bad input (a missing file, a malformed row, an option that
does not fit the data). Their message is one line that names the problem, where it is
(file, line, column or id) and what to do. The CLI prints the message and exits with
status 1; library users catch :class:`GraphrecError`.
"""

from __future__ import annotations

import zipfile
import zlib

__all__ = [
    "GraphrecError", "DataError", "ConfigError", "ModelDefinitionError", "TrainingDiverged", "GraphrecNote",
    "ARRAY_FILE_ERRORS",
]

#: What ``numpy.load`` raises on a damaged ``.npy`` / ``.npz`` (truncated, not a zip, a
#: bad header, a missing member): readers turn these into one-line :class:`DataError`\ s.
ARRAY_FILE_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error,
)


class GraphrecError(Exception):
    """Base class of the user-facing errors of graphrec."""


class DataError(GraphrecError, ValueError):
    """A data file or dataset is missing, malformed or inconsistent."""


class ConfigError(GraphrecError, ValueError):
    """An option or configuration value is invalid."""


class ModelDefinitionError(GraphrecError, TypeError, ValueError):
    """A registered model's declaration or builder is inconsistent: a mistake of the model's
    author (a hyper-parameter without a type or default, two options on one flag, a search
    space naming an unknown parameter, a builder returning something other than a model),
    found when the model registers or is first built. One line naming the builder and the
    fix, like every :class:`GraphrecError`; also a ``TypeError`` and a ``ValueError``, what
    these mistakes raised before."""


class TrainingDiverged(GraphrecError, FloatingPointError):
    """A training loss became NaN or inf (too high a learning rate, or input features of
    a huge scale). Also a ``FloatingPointError``, which callers (``graphrec tune``) catch."""


class GraphrecNote(UserWarning):
    """Something the user should know about a run that is not an error (a graph row a
    model's normalisation leaves empty, ...): a warning for library users, one ``note:``
    line on stderr from the CLI (each message once per command)."""
