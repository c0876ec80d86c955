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


def decode_blocks(body: dict[str, Any], wanted: set[bytes]) -> dict[bytes, Any]:
    """The CAR blocks whose CID is in `wanted` (the op records), keyed by CID bytes.

    Walks the CAR sections and decodes only those blocks: the MST nodes, most of a frame's
    bytes, are never decoded.
    """
    car = body.get("blocks")
    if not isinstance(car, bytes):
        raise FrameError("bad_body", "commit without CAR blocks")
    found: dict[bytes, Any] = {}
    size = len(car)
    try:
        pos, length = _varint(car, 0)
        pos += length  # the CAR header
        while pos < size and len(found) < len(wanted):
            pos, length = _varint(car, pos)
            end = pos + length
            if length < _CID_LEN or end > size:
                raise FrameError("bad_car", f"section of {length} bytes at {pos} overruns the CAR")
            cid = car[pos : pos + _CID_LEN]
            if cid in wanted:
                found[cid] = libipld.decode_dag_cbor(car[pos + _CID_LEN : end])
            pos = end
    except (ValueError, TypeError, OverflowError, IndexError) as exc:
        raise FrameError("bad_car", str(exc)[:120]) from exc
    return found


_CID_LEN: Final = 36  # CIDv1, dag-cbor or raw, sha2-256: what atproto repos hold


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """(position after, value) of an unsigned LEB128 varint."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return pos, value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def peek_seq(frame: bytes) -> int | None:
    """The seq of a frame, or None when it has none or cannot be read (used off the hot path)."""
    try:
        return decode_envelope(frame).seq
    except FrameError:
        return None
