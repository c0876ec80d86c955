"""The report's own errors, under the two roots the CLI maps to exit codes (`schemas.errors`):

UsageError                        exit 2: the user can fix it
└── PeriodError (ValueError)          --from/--to, --quarter, --month: none, several, or malformed
└── ReportUsageError (ValueError)     a --category no account has, a store too old to report on
PipelineError                     exit 1: the command was right, the world was not
└── ReportFailedError (RuntimeError)  the store cannot be read, the output cannot be written
"""

from __future__ import annotations

from schemas.errors import PipelineError, UsageError


class PeriodError(UsageError, ValueError):
    """The period options are missing, contradict each other or cannot be read."""


class ReportUsageError(UsageError, ValueError):
    """A report option the store cannot answer (unknown category, store schema too old)."""


class ReportFailedError(PipelineError, RuntimeError):
    """Reading the store or writing the report failed."""
