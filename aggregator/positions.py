"""Replay stage of an apply: per partition and source, keep the events above its watermark.

First stage of `Store.apply` (admit → dedup → fold → columns → writes). Events at or below
the (seq, idx) watermark of their (partition, source) were counted before (a replay after
a crash, a duplicate): dropping them here, before anything is folded, is what makes
re-applying a batch change nothing. Watermarks are per source because a relay seq
(~3·10^10), a Jetstream v2 seq and a v1 time_us are different number spaces: comparing
two of them would drop new events or keep old ones. The Kafka offset stays per partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas import Event

Watermark = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where one source stands in a partition: the highest (seq, idx) applied (the replay
    watermark) and the seq committed (events and position markers)."""

    seq: int | None
    idx: int | None
    committed: int | None = None

    @property
    def watermark(self) -> Watermark | None:
        return None if self.seq is None or self.idx is None else (self.seq, self.idx)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a partition stands: next offset to read, and each source's position in it."""

    partition: str
    next_offset: int | None
    sources: Mapping[str, SourcePosition] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    events: Sequence[Event]
    next_offset: int | None = None
    marks: Mapping[str, int] = field(default_factory=dict)  # source -> highest position marker read


@dataclass(frozen=True, slots=True)
class Admitted:
    """The new events of one apply (partition by partition) and where each partition ends.

    `keys` (the identity key of each event) and `duplicates` are filled by the dedup stage.
    """

    events: list[Event]
    partitions: list[str]  # the partition of each event
    positions: dict[str, Position]
    replayed: int
    keys: list[int] = field(default_factory=list)
    duplicates: int = 0


def drop_replayed(
    events: Sequence[Event], watermarks: Mapping[str, Watermark]
) -> tuple[list[Event], int, dict[str, Watermark]]:
    """(kept, dropped, new watermarks): keeps events strictly above their source's running
    (seq, idx) max."""
    kept: list[Event] = []
    high = dict(watermarks)
    for event in events:
        key = (event.seq, event.idx)
        mark = high.get(event.source)
        if mark is not None and key <= mark:
            continue
        kept.append(event)
        high[event.source] = key
    return kept, len(events) - len(kept), high


def _advance(old: Position | None, name: str, batch: PartitionBatch) -> tuple[list[Event], int, Position]:
    before = old.sources if old is not None else {}
    marks = {s: w for s, p in before.items() if (w := p.watermark) is not None}
    kept, dropped, high = drop_replayed(batch.events, marks)
    sources = dict(before)
    for source in high.keys() | batch.marks.keys():
        prior = before.get(source, SourcePosition(None, None))
        seq, idx = high.get(source, (None, None))
        reached = [v for v in (prior.committed, prior.seq, seq, batch.marks.get(source)) if v is not None]
        sources[source] = SourcePosition(seq, idx, max(reached, default=None))
    offset = batch.next_offset
    if offset is None and old is not None:
        offset = old.next_offset
    return kept, dropped, Position(name, offset, sources)


def admit(batches: Mapping[str, PartitionBatch], positions: Mapping[str, Position]) -> Admitted:
    """The events to apply and each partition's next position (offset kept when None)."""
    events: list[Event] = []
    partitions: list[str] = []
    after: dict[str, Position] = {}
    replayed = 0
    for name, batch in batches.items():
        kept, dropped, after[name] = _advance(positions.get(name), name, batch)
        events.extend(kept)
        partitions.extend([name] * len(kept))
        replayed += dropped
    return Admitted(events, partitions, after, replayed)
