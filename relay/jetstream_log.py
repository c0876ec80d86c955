"""The Jetstream emulator's event log: stored events by absolute index, cut below a floor.

Seqs and witnessed times both strictly increase, so a cursor of either kind is one bisect, and
connections that read by index never skip or repeat an event when replay meets live.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from relay.jetstream_convert import Pending
from relay.log import Signal


@dataclass(frozen=True, slots=True)
class JetstreamEvent:
    """One stored event: its v2 frame as sent, and what filters look at."""

    seq: int
    time_us: int
    pending: Pending
    v2: bytes

    @property
    def did(self) -> str:
        return self.pending.did

    @property
    def kind(self) -> str:
        return self.pending.kind

    @property
    def collection(self) -> str | None:
        return self.pending.collection

    @property
    def payload(self) -> dict[str, Any]:
        """The v2 message payload, decoded (tests)."""
        payload: dict[str, Any] = json.loads(self.v2)["payload"]
        return payload

    def v1(self) -> bytes | None:
        """The legacy /subscribe event (None for #sync)."""
        return self.pending.v1(self.seq, self.time_us)


class EventLog:
    """Stored events by absolute index; `floor` drops older seqs (None: everything is kept).

    Seqs and witnessed times both strictly increase, so cursors of either kind are a bisect.
    """

    def __init__(self, floor: int | None = None) -> None:
        self.events: list[JetstreamEvent] = []
        self.seqs: list[int] = []
        self.times: list[int] = []
        self.base = 0  # absolute index of events[0]
        self.floor = floor
        self.news = Signal()

    @property
    def end(self) -> int:
        return self.base + len(self.events)

    @property
    def start(self) -> int:
        """Absolute index of the oldest retained event."""
        if self.floor is None:
            return self.base
        return self.base + bisect_left(self.seqs, self.floor)

    def append(self, event: JetstreamEvent) -> None:
        self.events.append(event)
        self.seqs.append(event.seq)
        self.times.append(event.time_us)
        self.news.fire()

    def set_floor(self, seq: int | None) -> None:
        """Raise (or clear) the floor; events below it are forgotten."""
        self.floor = seq
        cut = self.start - self.base
        if cut > 0:
            del self.events[:cut], self.seqs[:cut], self.times[:cut]
            self.base += cut

    def seek_seq(self, seq: int) -> int:
        """Index of the first retained event with seq >= `seq` (inclusive cursor)."""
        return self.base + bisect_left(self.seqs, seq, lo=self.start - self.base)

    def seek_time(self, time_us: int) -> int:
        """Index of the first retained event witnessed at or after `time_us`."""
        return self.base + bisect_left(self.times, time_us, lo=self.start - self.base)

    def oldest_time(self) -> int | None:
        at = self.start - self.base
        return self.times[at] if at < len(self.times) else None

    def slice(self, lo: int, hi: int) -> list[JetstreamEvent]:
        return self.events[lo - self.base : hi - self.base]
