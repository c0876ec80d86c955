"""Consume stage, Kafka flavour: batches from a consumer group, positions owned by DuckDB.

Delivery is at least once, the effect exactly once: auto-commit is off, and on every partition
assignment the consumer seeks to the `next_offset` the store committed with the counters. A
message that does not decode is counted by reason and skipped, and its offset still advances.
A batch's offsets are committed to the group inside its DuckDB transaction, just before COMMIT
(`precommit`, with this file's stints in the metadata): a member fenced out by a rebalance rolls
the batch back, and the messages a crash left between the two commits are owed, and applied, by
the file that made the group's commit (aggregator/handoff.py) — so with several aggregators
every message lands in exactly one file.

`owns(did)` says whether an account's events come to this member now (its partition, as the
streamer's producer picks it, is assigned here): /metrics exports an account's non-additive
gauges from its owner only, so Prometheus sums several aggregators without double counting.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from aggregator.consume import SourceBatch
from aggregator.errors import BatchRefusedError, HandoffError, MessageReason
from aggregator.handoff import Stint, parse, render, settle
from aggregator.stats import AggregatorStats
from schemas import RELAY, SCHEMA_HEADER, SCHEMA_VERSION, Event, decode
from schemas.errors import SchemaError, SchemaReason
from transport.kafka import (
    POSITION_TYPE,
    SOURCE_HEADER,
    TYPE_HEADER,
    KafkaSettings,
    LogEvery,
    partition_name,
    split_partition_name,
    with_retry,
)

log = logging.getLogger(__name__)

Positions = Callable[[], Mapping[str, int | None]]
ConsumerFactory = Callable[..., Any]
Rebalance = Callable[[set[TopicPartition]], Awaitable[None]]
ApplyOwed = Callable[[SourceBatch], Awaitable[int]]
REVOKE_WAIT_S: Final = 30.0
OWED_WAIT_S: Final = 60.0  # reading back owed messages: no progress for this long is fatal
# fault injection for tests/kafka: exit (as a SIGKILL would) right after the Nth offset commit,
# before DuckDB's COMMIT — the window aggregator/handoff.py closes
EXIT_AFTER_COMMIT_ENV: Final = "BLUEPULSE_TEST_EXIT_AFTER_OFFSET_COMMIT"
_SCHEMA_VALUE: Final = str(SCHEMA_VERSION).encode()


class KafkaSource:
    """The aggregator's `BatchSource` over one consumer group of the events topic."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        positions: Positions,
        *,
        max_events: int = 5_000,
        wait_seconds: float = 0.2,
        linger_seconds: float = 0.05,
        consumer_factory: ConsumerFactory = AIOKafkaConsumer,
        store_id: str = "",
    ) -> None:
        self._settings = settings
        self.store_id = store_id  # the store file's id, named in the commit metadata
        self._group = group
        self._positions = positions
        self._max_events = max_events
        self._wait_ms = max(1, int(wait_seconds * 1000))
        self._linger = linger_seconds
        self._factory = consumer_factory
        self._consumer: Any = None
        self._lag: dict[str, int] = {}
        self._idle = asyncio.Event()  # set when no handed-out batch awaits its ack
        self._idle.set()
        self._limiter = LogEvery()
        self._fatal: BaseException | None = None  # raised in a rebalance callback, which aiokafka swallows
        self.skipped_total: Counter[str] = Counter()
        # read by the /metrics thread: each replaced whole, never mutated in place (but the cache)
        self._owned: frozenset[int] = frozenset()
        self._partitioning: tuple[int, dict[str, int]] = (0, {})  # partition count, did -> partition
        self._stints: dict[TopicPartition, tuple[list[Stint], int]] = {}  # history read, own start
        self._precommitted: SourceBatch | None = None
        self._unverified: set[TopicPartition] = set()
        self._apply_owed: ApplyOwed | None = None
        self.stats = AggregatorStats()  # replaced by the aggregator's (attach)
        self._commits = 0
        exit_after = os.environ.get(EXIT_AFTER_COMMIT_ENV, "")
        self._exit_after = int(exit_after) if exit_after.isdigit() else 0

    def attach(self, apply_owed: ApplyOwed, stats: AggregatorStats) -> None:
        """How to apply messages this file owes (read outside the group), and where to count."""
        self._apply_owed, self.stats = apply_owed, stats

    def owns(self, did: str) -> bool:
        """Whether the account's events come to this member now: the partition the streamer's
        producer sends its key to (the tracked DID, aiokafka's default partitioner) is assigned
        here. False before the first assignment and while a rebalance is under way."""
        count, cache = self._partitioning
        if not count:
            return False
        partition = cache.get(did)
        if partition is None:
            partition = cache[did] = key_partition(did.encode(), count)
        return partition in self._owned

    def owned_partitions(self) -> int:
        """How many partitions of the topic this member holds now."""
        return len(self._owned)

    async def start(self) -> None:
        """Connect (waiting out a dead broker) and join the group; seeking happens on assignment."""
        self._consumer = await with_retry(self._start_consumer, f"consumer {self._settings.bootstrap}")
        self._consumer.subscribe(
            [self._settings.topic], listener=_Listener(self._on_assigned, self._on_revoked)
        )
        log.info("kafka consumer started group=%s %s", self._group, self._settings.describe())

    async def _start_consumer(self) -> Any:
        consumer = self._factory(
            **self._settings.client_kwargs(),
            group_id=self._group,
            enable_auto_commit=False,  # DuckDB holds the positions; Kafka's are a courtesy copy
            auto_offset_reset="earliest",  # a partition nobody stored starts at its beginning
            isolation_level="read_uncommitted",
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def next_batch(self) -> SourceBatch | None:
        """Up to `max_events` messages; None when none arrived within the wait time.

        One fetch holds a few hundred messages, and a DuckDB transaction has a fixed cost:
        after the first fetch, keep fetching for up to `linger` to fill the batch.
        """
        records = await self._consumer.getmany(timeout_ms=self._wait_ms, max_records=self._max_events)
        if self._fatal is not None:
            raise self._fatal
        if not records:
            await self._refresh_lag()
            return None
        count = sum(len(m) for m in records.values())
        deadline = asyncio.get_running_loop().time() + self._linger
        while count < self._max_events and (left := deadline - asyncio.get_running_loop().time()) > 0:
            more = await self._consumer.getmany(
                timeout_ms=int(left * 1000), max_records=self._max_events - count
            )
            for tp, messages in more.items():
                records.setdefault(tp, []).extend(messages)
                count += len(messages)
        await self._refresh_lag()
        events: dict[str, list[Event]] = {}
        next_offsets: dict[str, int | None] = {}
        marks: dict[str, dict[str, int]] = {}
        skipped: Counter[str] = Counter()
        for tp, messages in records.items():
            name = partition_name(tp.topic, tp.partition)
            events[name] = self._decode_all(name, messages, skipped, marks)
            next_offsets[name] = messages[-1].offset + 1
        self.skipped_total.update(skipped)
        self._idle.clear()
        return SourceBatch(events, next_offsets, dict(skipped), marks)

    async def ack(self, batch: SourceBatch) -> None:
        """The batch is in DuckDB: let a pending revoke go on (its offsets are in Kafka already
        when `precommit` ran; otherwise they are copied now)."""
        try:
            if batch is not self._precommitted:
                await self._commit(batch.next_offsets)
        finally:
            self._precommitted = None
            self._idle.set()

    async def precommit(self, batch: SourceBatch) -> None:
        """Commit the batch's offsets, with this file's stints, inside its DuckDB transaction;
        BatchRefusedError (the transaction is rolled back) if the group refuses them."""
        assigned = self._consumer.assignment()
        offsets = {}
        for name, offset in batch.next_offsets.items():
            if offset is None:
                continue
            tp = _topic_partition(name)
            if tp not in assigned:
                raise BatchRefusedError(f"partition {name} is no longer assigned to this aggregator")
            if tp not in self._stints:  # settled on assignment: where its stint starts is unknown
                raise BatchRefusedError(f"partition {name} has no stint start (assignment not settled)")
            history, start = self._stints[tp]
            own = Stint(self.store_id, start)
            stints = history if history and history[-1] == own else [*history, own]
            offsets[tp] = (offset, render(stints))
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            raise BatchRefusedError(f"offset commit refused: {type(exc).__name__}: {exc}") from exc
        self._precommitted = batch
        self._commits += 1
        if self._commits == self._exit_after:
            log.warning(
                "%s=%d: exiting between the offset commit and COMMIT", EXIT_AFTER_COMMIT_ENV, self._commits
            )
            os._exit(137)

    async def refused(self, batch: SourceBatch) -> None:
        """The batch was rolled back: its partitions still here are consumed again from the
        stored offsets (the others went to another member, which starts at the group commit)."""
        try:
            stored = self._positions()
            assigned = self._consumer.assignment()
            for name in batch.next_offsets:
                tp = _topic_partition(name)
                if tp not in assigned:
                    continue
                offset = stored.get(name)
                if offset is None and tp in self._stints:
                    offset = self._stints[tp][1]
                if offset is not None:
                    self._consumer.seek(tp, offset)
        finally:
            self._precommitted = None
            self._idle.set()

    async def close(self) -> None:
        if self._consumer is None:
            return
        self._idle.set()
        consumer, self._consumer = self._consumer, None
        await consumer.stop()

    def lag(self) -> dict[str, int]:
        """Messages behind the partition end, per assigned partition (as of the last poll)."""
        return dict(self._lag)

    def _decode_all(
        self,
        name: str,
        messages: Iterable[ConsumerRecord],
        skipped: Counter[str],
        marks: dict[str, dict[str, int]],
    ) -> list[Event]:
        decoded = []
        for message in messages:
            event = _decode(message)
            if isinstance(event, tuple):  # a position marker: (source, seq)
                source, seq = event
                by_source = marks.setdefault(name, {})
                by_source[source] = max(by_source.get(source, seq), seq)
                continue
            if isinstance(event, Event):
                decoded.append(event)
                continue
            skipped[event] += 1
            self._log_skip(event, name, message.offset)
        return decoded

    async def _commit(self, next_offsets: Mapping[str, int | None]) -> None:
        assigned = self._consumer.assignment()
        offsets = {}
        for name, offset in next_offsets.items():
            tp = _topic_partition(name)
            if offset is not None and tp in assigned:
                offsets[tp] = offset
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # DuckDB is the truth: a lost courtesy commit is harmless here
            if self._limiter.ready("commit") is not None:
                log.warning(
                    "kafka offset commit failed group=%s error=%s: %s", self._group, type(exc).__name__, exc
                )

    async def _refresh_lag(self) -> None:
        lag: dict[str, int] = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:  # no fetch answered yet for this partition
                continue
            try:
                position = await self._consumer.position(tp)
            except KafkaError:  # revoked meanwhile
                continue
            lag[partition_name(tp.topic, tp.partition)] = max(0, highwater - position)
        self._lag = lag

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek each new partition to where DuckDB says the next message to apply is."""
        topic = self._settings.topic
        known = self._consumer.partitions_for_topic(topic) if self._consumer is not None else None
        count = len(known) if known else self._settings.partitions
        if count != self._partitioning[0]:
            self._partitioning = (count, {})
        self._owned = frozenset(tp.partition for tp in assigned if tp.topic == topic)
        try:
            await self._settle(assigned)
        except Exception as exc:  # aiokafka would only log it, then consume from the wrong place
            self._fatal = exc
            raise

    async def _settle(self, assigned: set[TopicPartition]) -> None:
        """Apply what this file owes on any partition (aggregator/handoff.py), then seek each
        assigned one to where this member resumes it."""
        topic = self._settings.topic
        stored = {
            _topic_partition(name): offset
            for name, offset in self._positions().items()
            if offset is not None and name.startswith(topic + "/")
        }
        seen = sorted(assigned | stored.keys())
        committed = await self._consumer._coordinator.fetch_committed_offsets(seen)
        for tp in seen:
            name = partition_name(tp.topic, tp.partition)
            found = committed.get(tp)
            offset = found.offset if found is not None and found.offset >= 0 else None
            stints = parse(found.metadata) if found is not None else None
            holds = tp in assigned
            settled = settle(self.store_id, stored.get(tp), offset, stints, holds=holds)
            if not settled.verified and tp not in self._unverified:  # counted once per partition
                self._unverified.add(tp)
                self.stats.handoffs_unverified += 1
                log.warning(
                    "kafka handoff not provable partition=%s stored=%s committed=%s stints=%s",
                    name,
                    stored.get(tp),
                    offset,
                    found.metadata if found is not None else None,
                )
            if settled.owed is not None:
                await self._read_owed(tp, *settled.owed)
            if not holds:
                continue
            if settled.resume is not None:
                self._consumer.seek(tp, settled.resume)
                start = settled.resume
            else:  # nothing stored, nothing committed: auto_offset_reset (earliest)
                start = await self._consumer.position(tp)
            self._stints[tp] = (list(stints or ()), start)
            log.info(
                "kafka partition assigned partition=%s start=%d stored=%s committed=%s",
                name,
                start,
                stored.get(tp),
                offset,
            )

    async def _read_owed(self, tp: TopicPartition, first: int, end: int) -> None:
        """Messages [first, end) of a partition that this file owes: read outside the group and
        applied with the positions they end at."""
        if self._apply_owed is None:
            raise HandoffError(
                f"{partition_name(tp.topic, tp.partition)}: owed messages and no store to apply them"
            )
        name = partition_name(tp.topic, tp.partition)
        log.warning(
            "kafka partition %s: applying messages %d..%d this file owes (a crash between its commits)",
            name,
            first,
            end - 1,
        )
        reader = self._factory(
            **self._settings.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",
        )
        await reader.start()
        try:
            reader.assign([tp])
            reader.seek(tp, first)
            position = first
            loop = asyncio.get_running_loop()
            deadline = loop.time() + OWED_WAIT_S
            while position < end:
                records = await reader.getmany(
                    tp, timeout_ms=500, max_records=min(self._max_events, end - position)
                )
                messages = [m for m in records.get(tp, ()) if first <= m.offset < end]
                skipped: Counter[str] = Counter()
                marks: dict[str, dict[str, int]] = {}
                events = self._decode_all(name, messages, skipped, marks)
                reached = min(end, await reader.position(tp))
                if messages and messages[0].offset > position:
                    log.error(
                        "kafka partition %s: owed messages %d..%d are gone (retention)",
                        name,
                        position,
                        messages[0].offset - 1,
                    )
                if reached > position:
                    self.skipped_total.update(skipped)
                    batch = SourceBatch({name: events}, {name: reached}, dict(skipped), marks)
                    await self._apply_owed(batch)
                    self.stats.messages_owed += len(messages)
                    position, deadline = reached, loop.time() + OWED_WAIT_S
                elif loop.time() > deadline:
                    raise HandoffError(
                        f"{name}: owed messages from {position} not readable in {OWED_WAIT_S:.0f} s"
                    )
        finally:
            await reader.stop()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Hold the rebalance until the batch in hand is applied and committed.

        Otherwise the next owner would start from the previous commit and apply that batch a
        second time, into its own file.
        """
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), REVOKE_WAIT_S)
            except TimeoutError:
                log.warning("kafka partitions revoked before the batch in hand was applied")
        for tp in revoked:
            self._lag.pop(partition_name(tp.topic, tp.partition), None)
        for tp in revoked:
            self._stints.pop(tp, None)
        gone = {tp.partition for tp in revoked if tp.topic == self._settings.topic}
        self._owned = self._owned - gone

    def _log_skip(self, reason: str, name: str, offset: int) -> None:
        held = self._limiter.ready(f"skip:{reason}")
        if held is not None:
            log.warning(
                "kafka message skipped reason=%s partition=%s offset=%d held_back=%d",
                reason,
                name,
                offset,
                held,
            )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards aiokafka's rebalance callbacks to the source."""

    def __init__(self, on_assigned: Rebalance, on_revoked: Rebalance) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(assigned)


def _topic_partition(name: str) -> TopicPartition:
    """The partition a store position's name (`topic/N`) stands for."""
    return TopicPartition(*split_partition_name(name))


def key_partition(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (Java's too) sends a keyed message to."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _decode(message: ConsumerRecord) -> Event | tuple[str, int] | MessageReason | SchemaReason:
    """The event, a position marker's (source, seq), or the reason the message is skipped."""
    headers = message.headers or ()
    if any(key == TYPE_HEADER and value == POSITION_TYPE for key, value in headers):
        value = message.value or b""
        source = next((v for k, v in headers if k == SOURCE_HEADER), None)
        if not value.isdigit() or source == b"":
            return MessageReason.BAD_POSITION_MARKER
        try:
            return (RELAY if source is None else source.decode()), int(value)
        except UnicodeDecodeError:
            return MessageReason.BAD_POSITION_MARKER
    version = next((value for key, value in headers if key == SCHEMA_HEADER), None)
    if version is None:
        return MessageReason.MISSING_SCHEMA_HEADER
    if version != _SCHEMA_VALUE:
        return MessageReason.UNKNOWN_SCHEMA_HEADER
    if message.value is None:
        return MessageReason.EMPTY_VALUE
    try:
        return decode(message.value)
    except SchemaError as exc:
        return exc.reason
