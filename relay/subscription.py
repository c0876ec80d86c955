"""Where a subscription starts: a real relay's cursor rules, as a pure function.

No cursor → live tip. `cursor=N` → first retained frame after N. Older than
what is retained → `#info OutdatedCursor`, then the oldest retained. Newer than
the newest seq → `FutureCursor` error and close. `cursor=0` → everything retained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relay.car import error_frame, info_frame
from relay.log import FrameLog


@dataclass
class ConnectionInfo:
    """What the emulator saw of one subscriber (for test assertions)."""

    id: int
    cursor: int | None  # the `cursor` query parameter as sent, None when absent
    position: int = 0  # absolute log index of the next frame to send
    frames_sent: int = 0  # log frames (incl. published raw frames), not injected ones
    injected: list[str] = field(default_factory=list)  # e.g. "info:OutdatedCursor"
    malformed_sent: int = 0
    last_seq: int | None = None  # seq of the last log frame sent
    open: bool = True
    stalled: bool = False
    outcome: str | None = None  # dropped / future_cursor / too_slow / client_closed / …


@dataclass
class Plan:
    """Frames to send before the log (info/error), and whether to close after them."""

    preamble: list[tuple[bytes, str]] = field(default_factory=list)
    close: bool = False


def plan_start(log: FrameLog, conn: ConnectionInfo) -> Plan:
    """Set `conn.position` from its cursor and say what to send first."""
    cursor = conn.cursor
    if cursor is None:
        conn.position = log.end
        return Plan()
    if cursor > (log.last_seq or 0):
        conn.outcome = "future_cursor"
        frame = error_frame("FutureCursor", "Cursor in the future.")
        return Plan([(frame, "error:FutureCursor")], close=True)
    oldest = log.oldest_seq()
    if cursor == 0 or oldest is None:
        conn.position = log.start
        return Plan()
    if cursor < oldest - 1:  # cursor == oldest - 1 loses nothing
        conn.position = log.start
        frame = info_frame("OutdatedCursor", "Requested cursor exceeded limit.")
        return Plan([(frame, "info:OutdatedCursor")])
    conn.position = log.seek(cursor)
    return Plan()
