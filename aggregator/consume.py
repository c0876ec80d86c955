"""Consume stage: batches of events with the position they came from.

A BatchSource hands out batches grouped by partition; the aggregator applies a batch to
DuckDB (events, counters and positions in one transaction) and only then calls `ack`, which
lets the queue publisher's flush (and so the streamer's cursor) move on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas import Event
from transport.memory import EventQueue, PositionMarker

QUEUE_PARTITION = "queue"


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Events per partition; `next_offsets` is the offset to resume each partition from."""

    events: Mapping[str, Sequence[Event]]
    next_offsets: Mapping[str, int | None]
    skipped: Mapping[str, int] = field(default_factory=dict)  # undecodable messages, by reason
    # per partition, the highest position marker of each source (source -> seq)
    marks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    token: int = 0  # what `ack` needs to release (queue: number of frames)

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())


class BatchSource(Protocol):
    async def next_batch(self) -> SourceBatch | None:
        """A batch, or None when nothing arrived within the source's wait time."""

    async def ack(self, batch: SourceBatch) -> None:
        """The batch is committed in DuckDB."""

    async def close(self) -> None: ...


class Fence(Protocol):
    """A source whose offsets are committed inside the DuckDB transaction, before COMMIT
    (Kafka: aggregator/handoff.py); `precommit` raises BatchRefusedError to roll it back."""

    async def precommit(self, batch: SourceBatch) -> None: ...

    async def refused(self, batch: SourceBatch) -> None:
        """The batch was rolled back: consume its partitions again from the stored offsets."""


class QueueSource:
    """The in-process queue of `bluepulse run`: one partition, frames never split."""

    def __init__(self, queue: EventQueue, max_events: int = 5_000, wait_seconds: float = 0.2) -> None:
        self._queue = queue
        self._max_events = max_events
        self._wait = wait_seconds

    async def next_batch(self) -> SourceBatch | None:
        items = await self._queue.get_batch(self._max_events, self._wait)
        if not items:
            return None
        events: list[Event] = []
        marks: dict[str, int] = {}
        for item in items:
            if isinstance(item, PositionMarker):
                marks[item.source] = max(marks.get(item.source, item.seq), item.seq)
            else:
                events.extend(item)
        partition = QUEUE_PARTITION
        return SourceBatch({partition: events}, {partition: None}, marks={partition: marks}, token=len(items))

    async def ack(self, batch: SourceBatch) -> None:
        await self._queue.mark_done(batch.token)

    async def close(self) -> None:
        return None
