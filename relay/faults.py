"""Fault injection for the relay emulator: drops, silent stalls, malformed frames.

Consumers must count bad upstream data and keep going (invariant 1), and must
notice dropped or silent sockets; these faults make each case reproducible.
Malformed frames rotate through a fixed set of kinds so a test sees them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.car import dag_cbor, link

MALFORMED_KINDS = ("truncated", "garbage", "bad_car", "header_only")
_ZERO_LINK = link(b"\x01\x71\x12\x20" + bytes(32))


@dataclass
class Faults:
    """Per-connection fault schedule; None disables a fault.

    drop_every: abort the TCP connection (no close frame) once N log frames were sent.
    stall_after: after N log frames, send nothing more (pings still answered) until changed.
    malformed_every: after every N-th log frame, send one malformed frame.
    """

    drop_every: int | None = None
    stall_after: int | None = None
    malformed_every: int | None = None

    def __post_init__(self) -> None:
        for name in ("drop_every", "stall_after", "malformed_every"):
            value = getattr(self, name)
            if value is not None and value < 1 and not (name == "stall_after" and value == 0):
                raise ValueError(f"{name} must be positive, got {value}")

    def budget(self, sent: int) -> int | None:
        """How many more log frames may go before the next fault applies (None: no limit)."""
        limits = []
        if self.drop_every is not None:
            limits.append(self.drop_every - sent)
        if self.stall_after is not None:
            limits.append(self.stall_after - sent)
        if self.malformed_every is not None:
            limits.append(self.malformed_every - sent % self.malformed_every)
        return max(0, min(limits)) if limits else None


def malformed_frame(kind: str, last_frame: bytes | None, last_seq: int | None) -> bytes:
    """One malformed frame of `kind`, derived from the last frame sent where useful."""
    if kind == "truncated":
        source = last_frame or dag_cbor({"op": 1, "t": "#commit"}) + dag_cbor({"seq": 1})
        return source[: max(1, len(source) // 2)]
    if kind == "garbage":
        return b"\xff\xfe not cbor \x00\x9f" + bytes(range(32))
    if kind == "bad_car":
        body = {
            "ops": [{"action": "create", "path": "app.bsky.feed.like/3kbadcar", "cid": _ZERO_LINK}],
            "rev": "3kbadcarrev22",
            "seq": last_seq or 0,
            "repo": "did:plc:malformedframe0000000000",
            "time": "1970-01-01T00:00:00.000Z",
            "blobs": [],
            "since": None,
            "blocks": b"\x0anot a car file",
            "commit": _ZERO_LINK,
            "rebase": False,
            "tooBig": False,
        }
        return dag_cbor({"op": 1, "t": "#commit"}) + dag_cbor(body)
    if kind == "header_only":
        return dag_cbor({"op": 1, "t": "#commit"})
    raise ValueError(f"unknown malformed kind {kind!r}")
