"""Errors a user can act on. Each message says what went wrong and what to do next.

The CLI prints these as one line and exits non-zero; everything else is a bug and keeps its traceback.
"""


class TempscaleError(Exception):
    """Base class for every error caused by input, data or files rather than by a bug."""


class InvalidSpecError(TempscaleError, ValueError):
    """A run spec, profile or argument is out of range or names something unknown."""


class DataNotFoundError(TempscaleError, FileNotFoundError):
    """A data folder or file is missing or malformed."""


class CorruptCheckpointError(TempscaleError):
    """A stored checkpoint, weight file or evaluation cache failed its integrity check."""


class RunLockedError(TempscaleError):
    """Another process holds the lock of the run being trained."""


class RunStoreError(TempscaleError):
    """The run store's folder cannot be created or written."""
