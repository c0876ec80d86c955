"""Aggregator errors, and the reasons a Kafka message is skipped.

    UsageError                       exit 2: the user can fix it
    ├── QueryRefusedError (ValueError)   the SQL guard refused the statement
    └── QueryError (RuntimeError)        the query was allowed but could not run
        └── StoreHeldError               the aggregator holds the file: read its snapshot
    PipelineError                    exit 1: the running pipeline failed
    ├── StoreError (RuntimeError)        the store cannot be used (open, migrate, a batch, a snapshot)
    ├── BatchRefusedError (RuntimeError) Kafka refused a batch's offsets: rolled back, never fatal
    ├── HandoffError (RuntimeError)      messages this file owes cannot be read back from Kafka
    └── PlcUnavailableError (RuntimeError)  a DID's PLC log unreadable now (retried, never fatal)
    SkipError
    └── IdentityParseError               a PLC audit log / DID document that cannot be read (PlcReason)

DuckDB raises one `IOException` for a held lock, a missing file and a corrupt one; `lock_held`
is the only place that reads its message, so every caller decides by type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

from schemas.errors import PipelineError, SkipError, UsageError

if TYPE_CHECKING:  # kept light: the CLI imports the error classes without loading DuckDB
    import duckdb


class StoreError(PipelineError, RuntimeError):
    """The store cannot be used as asked; the message says why and what to do."""


class BatchRefusedError(PipelineError, RuntimeError):
    """The group refused a batch's offset commit (a rebalance fenced this member out, or the
    broker is unreachable): the DuckDB transaction is rolled back and the batch is consumed
    again by whoever holds its partitions (aggregator/handoff.py). Never reaches the CLI."""


class HandoffError(PipelineError, RuntimeError):
    """Messages this file owes after a crash between its two commits could not be read back
    from Kafka (aggregator/handoff.py): stopping is better than a file silently short."""


class PlcUnavailableError(PipelineError, RuntimeError):
    """A DID's identity history could not be read after every attempt (the forensics job
    retries it later; it never stops the pipeline)."""


class PlcReason(StrEnum):
    """Why an identity fetch attempt failed (label of `bluepulse_plc_fetch_errors_total`)."""

    UNREACHABLE = "unreachable"
    HTTP_5XX = "http_5xx"
    THROTTLED = "throttled"
    HTTP_4XX = "http_4xx"
    NOT_FOUND = "not_found"
    MALFORMED = "malformed"
    BAD_ENTRY = "bad_entry"


class IdentityParseError(SkipError[PlcReason]):
    """A PLC audit log or did:web document that cannot be read as a whole (counted, skipped)."""

    def __init__(self, detail: str) -> None:
        super().__init__(PlcReason.MALFORMED, detail)


class QueryRefusedError(UsageError, ValueError):
    """The guard refused the statement; the message says why (without a "refused" prefix)."""


class QueryError(UsageError, RuntimeError):
    """The query was allowed but could not run (bad SQL, missing store, held file…)."""


class StoreHeldError(QueryError):
    """Another process (the aggregator) holds the store file for writing: its snapshot is the
    file to read."""


class MessageReason(StrEnum):
    """Why the Kafka consumer skipped a message (label of `bluepulse_aggregator_messages_skipped`);
    a message that fails the event contract is counted by its `schemas.errors.SchemaReason`."""

    BAD_POSITION_MARKER = "bad_position_marker"
    MISSING_SCHEMA_HEADER = "missing_schema_header"
    UNKNOWN_SCHEMA_HEADER = "unknown_schema_header"
    EMPTY_VALUE = "empty_value"


# DuckDB 2.x: 'IO Error: Could not set lock on file "…": Conflicting lock is held in …'
_LOCK_WORD: Final = "lock"


def lock_held(exc: duckdb.Error) -> bool:
    """Whether DuckDB refused to open a file because another process holds its lock.

    The exception type cannot tell (a missing or corrupt file is the same IOException), so this
    reads the message: the one place in bluepulse that does.
    """
    return _LOCK_WORD in str(exc).lower()
