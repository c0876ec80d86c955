"""Transport errors: what stops a pipeline between the streamer and the aggregator.

    UsageError
    └── KafkaSettingsError (ValueError)    inconsistent Kafka options, every problem listed
    PipelineError
    ├── ConsumerFailedError (RuntimeError) events handed over were never committed
    └── TaskFailedError (RuntimeError)     a supervised background job failed for good

The CLI turns the roots (schemas/errors.py) into exit codes 2 and 1.
"""

from __future__ import annotations

from schemas.errors import PipelineError, UsageError


class KafkaSettingsError(UsageError, ValueError):
    """Inconsistent Kafka options (every problem, one per line)."""


class ConsumerFailedError(PipelineError, RuntimeError):
    """Events were handed over but never committed: the cursor must not move past them."""


class TaskFailedError(PipelineError, RuntimeError):
    """A background job failed for good: the process stops (exit 1) with this message."""
