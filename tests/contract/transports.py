"""The transports behind `Publisher → BatchSource`, each wired as its process wires it, and the
two ends the contract drives: an upstream that publishes like the streamer (mark, flush, then
move the cursor) and a sink that consumes like the aggregator (commit, then ack).

Memory is `bluepulse run`'s bounded queue: publisher and consumer share one process, so a
consumer crash ends both (the wiring fails the queue, every flush raises) and a restart is a
new queue fed again from the upstream's cursor. Kafka is `bluepulse streamer` + `bluepulse
aggregator`: separate processes, the topic outlives a consumer, positions come from the sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from aggregator.consume import BatchSource, QueueSource, SourceBatch
from aggregator.consume_kafka import KafkaSource
from schemas import Action, Direction, Event, Kind
from streamer.publish import Publisher, QueuePublisher
from streamer.publish_kafka import KafkaPublisher
from tests.support.kafka_broker import BrokerControl
from transport.kafka import KafkaSettings
from transport.memory import EventQueue

Key = tuple[int, int]  # (seq, idx): what the store's replay watermark compares
Positions = dict[str, int | None]
SUBJECTS = [f"did:plc:subject{i:02d}" for i in range(9)]
MAX_EVENTS = 40  # small batches: a test sees many of them


def frame(seq: int) -> list[Event]:
    """Frame `seq`: one like to each of three subjects, rotating."""
    subjects = [SUBJECTS[(seq + k) % len(SUBJECTS)] for k in range(3)]
    return [like(seq, idx, subject) for idx, subject in enumerate(subjects)]


def like(seq: int, idx: int, subject: str) -> Event:
    actor = f"did:plc:actor{seq % 7}"
    return Event(
        seq=seq,
        idx=idx,
        kind=Kind.LIKE,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did=subject,
        actor_did=actor,
        time="2025-01-01T00:00:00Z",
        uri=f"at://{actor}/app.bsky.feed.like/{seq}-{idx}",
    )


def keys(events: Sequence[Event]) -> list[Key]:
    return [(e.seq, e.idx) for e in events]


@dataclass
class Link:
    """One run's publisher → source pair."""

    publisher: Publisher
    source: BatchSource
    crashed: Callable[[BaseException], Awaitable[None]]  # what the wiring does when the consumer dies
    buffered: Callable[[], int]  # what the publisher's side holds, never above `bound`
    bound: int


class TransportUnderTest(Protocol):
    name: str
    shared_process: bool  # a consumer crash ends the publisher's process too
    mark_partitions: int  # partitions a position marker reaches
    stall_seconds: float  # how long the stall test waits for publish() to block

    async def open(self, positions: Positions) -> Link:
        """A new run: the source resumes from `positions` (what the sink committed)."""

    async def stall(self) -> None:
        """Make the downstream stop taking events (the sink stops reading too)."""

    async def resume(self) -> None: ...


class MemoryTransport:
    name, shared_process, mark_partitions, stall_seconds = "memory", True, 1, 0.3

    def __init__(self, bound: int = 64) -> None:
        self.bound = bound

    async def open(self, positions: Positions) -> Link:
        queue = EventQueue(self.bound)
        source = QueueSource(queue, max_events=MAX_EVENTS, wait_seconds=0.05)
        return Link(QueuePublisher(queue), source, queue.fail, queue.depth, self.bound)

    async def stall(self) -> None:
        return None  # a consumer that does not read is the stall

    async def resume(self) -> None:
        return None


class KafkaTransport:
    name, shared_process, mark_partitions, stall_seconds = "kafka", False, 3, 3.0

    def __init__(self, bootstrap: str, topic: str, group: str, broker: Callable[[], BrokerControl]) -> None:
        self.settings = KafkaSettings(bootstrap=bootstrap, topic=topic, partitions=self.mark_partitions)
        self.group = group
        self.broker = broker  # asked for only by the stall test (it cannot run on an external broker)
        self.window = 50

    async def open(self, positions: Positions) -> Link:
        publisher = KafkaPublisher(self.settings, max_in_flight=self.window)
        await publisher.start()
        source = KafkaSource(self.settings, self.group, lambda: positions, max_events=MAX_EVENTS)
        await source.start()

        async def crashed(error: BaseException) -> None:
            return None  # another process: the streamer goes on

        return Link(publisher, source, crashed, lambda: publisher.in_flight, self.window)

    async def stall(self) -> None:
        await self.broker().stop()

    async def resume(self) -> None:
        await self.broker().start()


def transport_for(name: str, request: pytest.FixtureRequest) -> TransportUnderTest:
    if name == "memory":
        return MemoryTransport()
    return KafkaTransport(
        request.getfixturevalue("kafka_bootstrap"),
        request.getfixturevalue("kafka_topic"),
        request.getfixturevalue("kafka_group_id"),
        lambda: request.getfixturevalue("kafka_restart"),
    )


@dataclass
class Upstream:
    """The streamer's side: frames 1..`frames` (the last `quiet` carry no event); every
    `every` frames and at the end: mark, flush, and only then move the cursor."""

    frames: int
    every: int = 10
    quiet: int = 0
    cursor: int = 0
    published: list[Event] = field(default_factory=list)
    replayed: set[Key] = field(default_factory=set)
    sent_frames: int = 0

    async def run(self, publisher: Publisher, *, flush: bool = True) -> None:
        """Publish from the cursor on (a restart replays what was never flushed)."""
        for seq in range(self.cursor + 1, self.frames + 1):
            events = frame(seq) if seq <= self.frames - self.quiet else []
            if events:
                if seq <= self.sent_frames:
                    self.replayed.update(keys(events))
                else:
                    self.published.extend(events)
                await publisher.publish(events)
            self.sent_frames = max(self.sent_frames, seq)
            if flush and (seq % self.every == 0 or seq == self.frames):
                await publisher.mark(seq)
                await publisher.flush()
                self.cursor = seq


@dataclass
class Sink:
    """The aggregator's side: commit a batch (events, positions, marks), then ack it."""

    acked: list[tuple[str, Event, int]] = field(default_factory=list)  # (partition, event, batch number)
    positions: Positions = field(default_factory=dict)
    marks: list[tuple[str, int, int]] = field(default_factory=list)  # (partition, seq, batch number)
    batches: int = 0

    def acked_keys(self) -> set[Key]:
        return {(e.seq, e.idx) for _, e, _ in self.acked}

    def events(self) -> list[Event]:
        return [e for _, e, _ in self.acked]

    async def take(self, source: BatchSource) -> SourceBatch:
        """The next batch that holds events, not committed (batches of markers only are)."""
        while True:
            batch = await source.next_batch()
            if batch is not None and len(batch):
                return batch
            if batch is not None:
                await self.commit(source, batch)

    async def commit(self, source: BatchSource, batch: SourceBatch) -> None:
        self.batches += 1
        for name, events in batch.events.items():
            self.acked.extend((name, e, self.batches) for e in events)
        self.positions.update({k: v for k, v in batch.next_offsets.items() if v is not None})
        self.marks.extend(
            (name, seq, self.batches) for name, by_source in batch.marks.items() for seq in by_source.values()
        )
        await source.ack(batch)

    async def drain(self, source: BatchSource, done: Callable[[], bool], timeout: float = 30.0) -> None:
        """Commit every batch until `done()`."""
        async with asyncio.timeout(timeout):
            while not done():
                batch = await source.next_batch()
                if batch is not None:
                    await self.commit(source, batch)

    def watermarks(self) -> Mapping[str, Key]:
        """Per partition, the highest (seq, idx) committed: the store drops what is not above."""
        high: dict[str, Key] = {}
        for name, e, _ in self.acked:
            high[name] = max(high.get(name, (e.seq, e.idx)), (e.seq, e.idx))
        return high
