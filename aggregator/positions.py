"""Replay stage of an apply: per partition, keep the events above its (seq, idx) watermark.

First of the four stages of `Store.apply` (admit → fold → columns → writes). Events at or
below the watermark were counted before (a replay after a crash, a duplicate): dropping
them here, before anything is folded, is what makes re-applying a batch change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas import Event

Watermark = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a partition stands: next offset to read, the highest (seq, idx) applied (the
    replay watermark) and the firehose seq committed (events and position markers)."""

    partition: str
    next_offset: int | None
    seq: int | None
    idx: int | None
    committed: int | None = None

    @property
    def watermark(self) -> Watermark | None:
        return None if self.seq is None or self.idx is None else (self.seq, self.idx)


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    events: Sequence[Event]
    next_offset: int | None = None
    mark: int | None = None  # the highest position marker read with these events


@dataclass(frozen=True, slots=True)
class Admitted:
    """The new events of one apply (partition by partition) and where each partition ends."""

    events: list[Event]
    partitions: list[str]  # the partition of each event
    positions: dict[str, Position]
    replayed: int


def drop_replayed(
    events: Sequence[Event], watermark: Watermark | None
) -> tuple[list[Event], int, Watermark | None]:
    """(kept, dropped, new watermark): keeps events strictly above the running (seq, idx) max."""
    kept: list[Event] = []
    high = watermark
    for event in events:
        key = (event.seq, event.idx)
        if high is not None and key <= high:
            continue
        kept.append(event)
        high = key
    return kept, len(events) - len(kept), high


def admit(batches: Mapping[str, PartitionBatch], positions: Mapping[str, Position]) -> Admitted:
    """The events to apply and each partition's next position (offset kept when None)."""
    events: list[Event] = []
    partitions: list[str] = []
    after: dict[str, Position] = {}
    replayed = 0
    for name, batch in batches.items():
        old = positions.get(name)
        kept, dropped, high = drop_replayed(batch.events, old.watermark if old else None)
        events.extend(kept)
        partitions.extend([name] * len(kept))
        replayed += dropped
        offset = batch.next_offset
        if offset is None and old is not None:
            offset = old.next_offset
        seq, idx = high if high is not None else (None, None)
        before = (old.committed, old.seq) if old is not None else (None, None)
        reached = [v for v in (*before, seq, batch.mark) if v is not None]
        after[name] = Position(name, offset, seq, idx, max(reached, default=None))
    return Admitted(events, partitions, after, replayed)
