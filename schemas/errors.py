"""The roots every bluepulse error descends from, what the CLI makes of them, and schemas' own.

Both halves import `schemas`, so the roots live here; each package keeps its own classes in its
own `errors.py` and derives them from one of these. The CLI maps them once:

    BluepulseError
    ├── UsageError      exit 2: the user can fix it (flag, config, accounts file, lock held…)
    │   └── RegistryError (ValueError)   the accounts file is unusable
    └── PipelineError   exit 1: a running pipeline failed (store, transport, output, a task)
    SkipError (ValueError)  not a stop: upstream input counted under `reason` and skipped
    └── SchemaError                      an event that breaks the contract (SchemaReason)

Upstream data problems are not errors the CLI sees: a SkipError is counted by its reason (a
StrEnum whose values are the metric labels) where it is caught, and never ends the stream.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar


class BluepulseError(Exception):
    """Any failure bluepulse reports as one line."""


class UsageError(BluepulseError):
    """A usage or configuration problem: the command stops before (or instead of) working."""


class PipelineError(BluepulseError):
    """A runtime failure of our own pipeline: nothing past it was acknowledged."""


R = TypeVar("R", bound=StrEnum)


class SkipError(ValueError, Generic[R]):
    """One frame, op or message that cannot be read; `reason` is its skip counter's label."""

    def __init__(self, reason: R, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason: R = reason
        self.detail = detail


class RegistryError(UsageError, ValueError):
    """The registry file is unusable; the message lists every problem found."""


class SchemaReason(StrEnum):
    """Why an event breaks the contract (labels of the consumer's skipped-message counter)."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_VERSION = "unknown_version"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"


class SchemaError(SkipError[SchemaReason]):
    """An event that does not follow the contract."""
