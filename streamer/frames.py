"""Decode stage: the firehose frame envelope (header, body) and, on demand, its CAR blocks.

Malformed input raises FrameError with a closed set of reasons, so the service can count and
skip it; CAR blocks are decoded only for frames that survived the filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import libipld

# {"t": "#commit", "op": 1} in DAG-CBOR (keys sorted by length): every #commit frame starts so.
COMMIT_PREFIX: Final = b"\xa2at\x67#commit\x62op\x01"

REASONS: Final = (
    "bad_cbor",
    "bad_header",
    "bad_body",
    "bad_car",
    "missing_block",
    "bad_record",
    "oversized",
    "unknown_type",
)


class FrameError(ValueError):
    """A frame (or one op of it) that cannot be read; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Envelope:
    """Header and body of a frame; `kind` is the message type (#commit, #identity…) or 'error'."""

    kind: str
    body: dict[str, Any]

    @property
    def seq(self) -> int | None:
        seq = self.body.get("seq")
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def decode_envelope(frame: bytes) -> Envelope:
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FrameError("bad_cbor", str(exc)[:120]) from exc
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        raise FrameError("bad_header", f"expected header and body, got {len(parts)} part(s)")
    header, body = parts
    op = header.get("op")
    if op == -1:
        return Envelope("error", body)
    kind = header.get("t")
    if op != 1 or not isinstance(kind, str):
        raise FrameError("bad_header", f"op={op!r} t={kind!r}")
    return Envelope(kind, body)


def decode_blocks(body: dict[str, Any]) -> dict[bytes, Any]:
    """CAR blocks of a commit keyed by CID bytes (the form ops carry their `cid` in)."""
    car = body.get("blocks")
    if not isinstance(car, bytes):
        raise FrameError("bad_body", "commit without CAR blocks")
    try:
        _header, blocks = libipld.decode_car(car)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FrameError("bad_car", str(exc)[:120]) from exc
    return blocks


def peek_seq(frame: bytes) -> int | None:
    """The seq of a frame, or None when it has none or cannot be read (used off the hot path)."""
    try:
        return decode_envelope(frame).seq
    except FrameError:
        return None
