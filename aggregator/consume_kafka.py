"""Consume stage, Kafka flavour: batches from a consumer group, positions owned by DuckDB.

Delivery is at least once, the effect exactly once: auto-commit is off, and on every partition
assignment the consumer seeks to the `next_offset` the store committed with the counters. A
message that does not decode is counted by reason and skipped, and its offset still advances.
Offsets are also committed to Kafka after each applied batch, for lag in Kafka tools and so a
partition moving to another group member resumes where this one stopped.

`owns(did)` says whether an account's events come to this member now (its partition, as the
streamer's producer picks it, is assigned here): /metrics exports an account's non-additive
gauges from its owner only, so Prometheus sums several aggregators without double counting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from aggregator.consume import SourceBatch
from aggregator.errors import MessageReason
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
REVOKE_WAIT_S: Final = 30.0
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
    ) -> None:
        self._settings = settings
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
        """The batch is in DuckDB: copy its offsets to Kafka, then let a pending revoke go on."""
        try:
            await self._commit(batch.next_offsets)
        finally:
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
            tp = TopicPartition(*split_partition_name(name))
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
            await self._seek_stored(assigned)
        except Exception as exc:  # aiokafka would only log it, then consume from the wrong place
            self._fatal = exc
            raise

    async def _seek_stored(self, assigned: set[TopicPartition]) -> None:
        stored = self._positions()
        for tp in sorted(assigned):
            name = partition_name(tp.topic, tp.partition)
            offset = stored.get(name)
            if offset is None:
                log.info(
                    "kafka partition assigned, no stored position partition=%s (group commit or earliest)",
                    name,
                )
                continue
            target = await self._resume_offset(tp, offset)
            self._consumer.seek(tp, target)
            log.info("kafka partition assigned partition=%s seek=%d", name, target)

    async def _resume_offset(self, tp: TopicPartition, stored: int) -> int:
        """The stored offset, unless the group already committed past it.

        This member commits to Kafka only after DuckDB, so a group commit beyond the stored
        offset means another member applied those messages to its own file (scale-out); going
        back would count them twice in the union.
        """
        try:
            committed = await self._consumer.committed(tp)
        except KafkaError as exc:
            log.warning("kafka committed offset unavailable partition=%s error=%r", tp, exc)
            return stored
        if committed is not None and committed > stored:
            log.info(
                "kafka group is ahead of the stored position partition=%s stored=%d committed=%d",
                partition_name(tp.topic, tp.partition),
                stored,
                committed,
            )
            return int(committed)
        return stored

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
