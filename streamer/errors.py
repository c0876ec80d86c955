"""Streamer errors, and the closed sets its skip and message counters are labelled with.

    UsageError
    └── StateError (RuntimeError)          the state directory or cursor file is unusable
    PipelineError
    ├── OutputError (RuntimeError)         the JSONL output cannot be written
    └── KafkaPublishError (RuntimeError)   a Kafka send failed for good
    SkipError (ValueError)                 counted under its reason, never a stop
    ├── FrameError                         a frame that cannot be read (FrameReason)
    └── BoundsError                        a DAG-CBOR item breaks a bound (four FrameReasons)

The enum values are the metric labels: renaming one is a change to the /metrics contract.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.errors import PipelineError, SkipError, UsageError


class StateError(UsageError, RuntimeError):
    """The state directory cannot be used; the program stops with this message."""


class OutputError(PipelineError, RuntimeError):
    """The JSONL output cannot be written: the process stops (exit 1) with this message."""


class KafkaPublishError(PipelineError, RuntimeError):
    """A send failed for good: events after the last successful flush may be missing."""


class FrameReason(StrEnum):
    """Why a frame was skipped: `bluepulse_streamer_frames_skipped_total{reason}`."""

    UNTRACKED = "untracked"  # concerns no tracked account (the filter's verdict; not an error)
    OVERSIZED = "oversized"  # larger than --max-frame-bytes
    BAD_CBOR = "bad_cbor"
    BAD_HEADER = "bad_header"
    BAD_BODY = "bad_body"
    BAD_CAR = "bad_car"
    UNKNOWN_TYPE = "unknown_type"
    TOO_DEEP = "too_deep"  # nesting past cbor_bounds.MAX_DEPTH (envelope or record)
    BAD_LENGTH = "bad_length"  # a length or count claims more bytes than remain; truncated data
    TOO_MANY_ITEMS = "too_many_items"  # more than cbor_bounds.MAX_ITEMS items in one envelope or record
    BAD_JSON = "bad_json"  # a Jetstream frame that is not one JSON object
    BAD_UTF8 = "bad_utf8"  # a Jetstream frame that is not UTF-8
    BAD_ZSTD = "bad_zstd"  # a compressed Jetstream frame that does not decompress
    ZSTD_BOMB = "zstd_bomb"  # a compressed Jetstream frame that inflates past the cap (1 MB)
    INTERNAL = "internal"  # an unexpected exception while decoding or mapping: a bug, logged with a traceback


class OpReason(StrEnum):
    """Why one op of a readable commit was skipped: `bluepulse_streamer_ops_skipped_total{reason}`."""

    BAD_OP = "bad_op"  # no path, or an action that is not create/update/delete
    MISSING_BLOCK = "missing_block"  # the op's record block is not in the CAR
    BAD_RECORD = "bad_record"  # the record does not have its lexicon's shape


class RelayMessage(StrEnum):
    """Names of the relay's error and #info frames: `bluepulse_streamer_relay_messages_total{name}`;
    any name the lexicon does not define is counted as OTHER (bounded labels)."""

    FUTURE_CURSOR = "FutureCursor"
    CONSUMER_TOO_SLOW = "ConsumerTooSlow"
    OUTDATED_CURSOR = "OutdatedCursor"
    OTHER = "other"


class FrameError(SkipError[FrameReason]):
    """A frame that cannot be read: counted under `reason` and skipped."""


class BoundsError(SkipError[FrameReason]):
    """A DAG-CBOR item breaks a bound: bad_length, too_deep, too_many_items or bad_cbor."""
