"""In-process transport for `bluepulse run`: a bounded queue with an acknowledgement watermark.

Bounded (put blocks when full: back-pressure, never a drop). Each item is one frame's events,
so a batch never splits a frame; a PositionMarker item says how far the firehose was read
(the aggregator commits it as the partition's position). `wait_done(n)` lets the publisher's
flush wait until the aggregator has committed everything put before it, which gates the
cursor save.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from schemas import RELAY, Event
from transport.errors import ConsumerFailedError


@dataclass(frozen=True, slots=True)
class PositionMarker:
    """Every frame of `source` up to `seq` was put before this item: a position, not an event."""

    seq: int
    source: str = RELAY

    def __len__(self) -> int:  # counts as no event in a batch
        return 0


QueueItem = Sequence[Event] | PositionMarker


class EventQueue:
    def __init__(self, maxsize: int = 10_000, linger_seconds: float = 0.02) -> None:
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize)
        self._linger = linger_seconds
        self._put = 0
        self._done = 0
        self._done_changed = asyncio.Condition()
        self._failure: BaseException | None = None

    @property
    def put_count(self) -> int:
        return self._put

    def depth(self) -> int:
        return self._queue.qsize()

    async def put(self, events: QueueItem) -> None:
        await self._queue.put(events)
        self._put += 1

    async def get_batch(self, max_events: int, wait_seconds: float) -> list[QueueItem]:
        """Frames' event lists up to about `max_events` events; waits up to `wait_seconds` for the first."""
        if self._queue.empty():
            try:
                first = await asyncio.wait_for(self._queue.get(), wait_seconds)
            except TimeoutError:
                return []
            if self._linger and self._queue.qsize() < max_events:
                # events trickle in one frame at a time: waking the consumer per frame costs
                # more than the frame itself; gather a batch first
                await asyncio.sleep(self._linger)
        else:
            first = self._queue.get_nowait()
        items, count = [first], len(first)
        while count < max_events and not self._queue.empty():
            item = self._queue.get_nowait()
            items.append(item)
            count += len(item)
        return items

    async def mark_done(self, items: int) -> None:
        """Called by the consumer after the items are committed downstream."""
        self._done += items
        async with self._done_changed:
            self._done_changed.notify_all()

    async def fail(self, error: BaseException) -> None:
        """The consumer died: wake every flush with the error instead of leaving it waiting."""
        self._failure = error
        async with self._done_changed:
            self._done_changed.notify_all()

    async def wait_done(self, target: int) -> None:
        async with self._done_changed:
            await self._done_changed.wait_for(lambda: self._done >= target or self._failure is not None)
        if self._done < target:
            message = "the aggregator stopped before committing these events"
            raise ConsumerFailedError(message) from self._failure
