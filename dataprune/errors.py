"""Exception types shared by the whole toolkit.

Every error a user can fix (bad input, missing model, bad option) derives from
:class:`DataPruneError`; the CLI turns these into a one-line message and exit status 2.
"""

from __future__ import annotations

__all__ = [
    "DataPruneError",
    "DataValidationError",
    "ModelNotAvailableError",
    "NotFittedError",
    "OptionalDependencyError",
    "UnknownOptionError",
]


class DataPruneError(Exception):
    """Base class for errors the user can act on (reported without a traceback by the CLI)."""


class DataValidationError(DataPruneError, ValueError):
    """Input data does not have the expected shape.

    Parameters
    ----------
    message : str
        What was expected.
    source : str, optional
        File name or dataset description.
    record : int, optional
        Zero-based record index (or one-based line number when ``line`` is set).
    field : str, optional
        Offending field name.
    line : int, optional
        One-based line number in a line-oriented file.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        record: int | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.record = record
        self.field = field
        self.line = line
        self.reason = message
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelNotAvailableError(DataPruneError, RuntimeError):
    """No model could be resolved from an explicit path, an offline package, or the hub."""


class OptionalDependencyError(DataPruneError, ImportError):
    """An optional integration was used without its extra installed."""


class UnknownOptionError(DataPruneError, ValueError):
    """A string option did not match any registered name."""


class NotFittedError(DataPruneError, ValueError, AttributeError):
    """A fitted-only method was called before ``fit`` (as scikit-learn's, which has the same bases)."""
