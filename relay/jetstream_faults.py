"""Faults of the Jetstream emulator: the relay's (drop, stall, malformed) plus unknown `$type`s and a
terminal error frame, each per connection and counted in events sent on it.

Malformed frames rotate through kinds derived from the last event sent, so a client meets every
way JSON can be bad (truncated, not JSON, invalid UTF-8, wrong types, a record that is not an
object) without any of them carrying a seq that a real event will use later: a malformed frame
either has no usable seq or repeats the last one (which an inclusive-cursor client drops as seen).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relay.faults import Faults
from relay.jetstream_convert import NSID

MALFORMED_JSON_KINDS = ("truncated", "not_json", "bad_utf8", "wrong_types", "record_not_object")
UNKNOWN_TYPE_KINDS = ("payload", "frame")
CONSUMER_TOO_SLOW = b'{"$type":"error","error":"ConsumerTooSlow","message":"consumer is too slow"}'


@dataclass
class JetstreamFaults(Faults):
    """The relay's faults (in events, not frames) and two more.

    unknown_type_every: after every N-th event, one frame of a `$type` the client cannot know.
    error_after: after N events, `{"$type":"error","error":"ConsumerTooSlow"}` then close.
    """

    unknown_type_every: int | None = None
    error_after: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("unknown_type_every", "error_after"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, got {value}")

    def budget(self, sent: int) -> int | None:
        limits = [b for b in (super().budget(sent),) if b is not None]
        if self.unknown_type_every is not None:
            limits.append(self.unknown_type_every - sent % self.unknown_type_every)
        if self.error_after is not None:
            limits.append(self.error_after - sent)
        return max(0, min(limits)) if limits else None


def malformed_json(kind: str, last: bytes | None, v1: bool) -> bytes:
    """One malformed frame of `kind`, shaped like the last event sent on the wire."""
    source = last or b'{"$type":"message","payload":{"$type":"' + NSID.encode() + b'#commit","seq":1}}'
    if kind == "truncated":
        return source[: max(1, len(source) // 2)]
    if kind == "not_json":
        return b"<html>502 Bad Gateway</html>"
    if kind == "bad_utf8":
        at = source.find(b'"did":"') + 7
        return source[:at] + b"\xff\xfe" + source[at:]
    value = json.loads(source)
    event = value if v1 else value.get("payload", {})
    if kind == "wrong_types":
        key = "time_us" if v1 else "seq"
        event[key] = str(event.get(key))
        event["did"] = 42
    elif kind == "record_not_object":
        holder = event.get("commit", event) if v1 else event
        holder["record"] = "not an object"
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return json.dumps(value, separators=(",", ":")).encode()


def unknown_type(kind: str, last_seq: int | None) -> bytes:
    """A frame of a newer server: an unknown message `$type` (repeating the last seq) or frame type."""
    if kind == "payload":
        seq = last_seq or 0
        return json.dumps(
            {"$type": "message", "payload": {"$type": f"{NSID}#futureKind", "seq": seq, "did": "did:plc:x"}},
            separators=(",", ":"),
        ).encode()
    return b'{"$type":"heartbeat","at":"1970-01-01T00:00:00.000000Z"}'
