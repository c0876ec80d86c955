"""The Kafka transport on the real broker: KafkaPublisher, KafkaSource and their settings.

Published events land on their subject's partition in order with the schema header, and are
acknowledged when flush() returns; the source resumes from stored positions, skips and counts
garbage while advancing, reports lag. What every transport must do (order per key, at least
once across a restart, acks as positions, markers, back-pressure with a stopped broker, close)
is tests/contract/test_transport_contract.py, run here on the same broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import murmur2

from aggregator.consume import SourceBatch
from aggregator.consume_kafka import KafkaSource
from schemas import SCHEMA_HEADER, SCHEMA_VERSION, Action, Direction, Event, Kind, decode, encode
from streamer.publish_kafka import KafkaPublisher
from tests.support.ports import free_port
from transport.backoff import Backoff
from transport.errors import KafkaSettingsError
from transport.kafka import KafkaSettings, ensure_topic, with_retry

TopicFactory = Callable[..., Awaitable[str]]
PARTITIONS = 3
SUBJECTS = [f"did:plc:subject{i:02d}" for i in range(9)]
HEADER = [(SCHEMA_HEADER, str(SCHEMA_VERSION).encode())]


def frames(count: int, first_seq: int = 1) -> list[list[Event]]:
    """`count` frames; frame n holds one like to each of three subjects, rotating."""
    out = []
    for n in range(count):
        seq = first_seq + n
        subjects = [SUBJECTS[(n + k) % len(SUBJECTS)] for k in range(3)]
        out.append([like(seq, idx, subject) for idx, subject in enumerate(subjects)])
    return out


def like(seq: int, idx: int, subject: str) -> Event:
    return Event(
        seq=seq,
        idx=idx,
        kind=Kind.LIKE,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did=subject,
        actor_did=f"did:plc:actor{seq % 7}",
        time="2025-01-01T00:00:00Z",
        uri=f"at://did:plc:actor{seq % 7}/app.bsky.feed.like/{seq}-{idx}",
    )


def partition_of(subject: str) -> int:
    return int(murmur2(subject.encode()) & 0x7FFFFFFF) % PARTITIONS


def settings_for(bootstrap: str, topic: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=bootstrap, topic=topic, partitions=PARTITIONS)


async def started_publisher(settings: KafkaSettings, max_in_flight: int = 10_000) -> KafkaPublisher:
    publisher = KafkaPublisher(settings, max_in_flight=max_in_flight)
    await publisher.start()
    return publisher


async def publish_all(publisher: KafkaPublisher, batches: Sequence[Sequence[Event]]) -> None:
    for batch in batches:
        await publisher.publish(batch)


async def end_offsets(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> dict[int, int]:
    """What the broker holds right now, from a client that shares nothing with the publisher."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every message in the topic, without a group."""
    expected = sum((await end_offsets(bootstrap, topic)).values())
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(30):
            while len(records) < expected:
                got = await consumer.getmany(timeout_ms=500)
                records.extend(r for batch in got.values() for r in batch)
        return records
    finally:
        await consumer.stop()


async def drain(source: KafkaSource, expected_events: int, *, ack: bool = True) -> list[SourceBatch]:
    """Batches until `expected_events` events arrived, acking each like the aggregator does."""
    batches: list[SourceBatch] = []
    async with asyncio.timeout(30):
        while sum(len(b) for b in batches) < expected_events:
            batch = await source.next_batch()
            if batch is None:
                continue
            batches.append(batch)
            if ack:
                await source.ack(batch)
    return batches


async def drain_to(source: KafkaSource, name: str, offset: int) -> list[SourceBatch]:
    """Batches (acked) until partition `name` has advanced to `offset`."""
    batches: list[SourceBatch] = []
    async with asyncio.timeout(30):
        while not batches or (batches[-1].next_offsets.get(name) or 0) < offset:
            batch = await source.next_batch()
            if batch is not None:
                batches.append(batch)
                await source.ack(batch)
    return batches


async def nothing_more(source: KafkaSource, seconds: float = 1.5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        batch = await source.next_batch()
        assert batch is None, f"unexpected redelivery: {batch}"


def events_of(batches: Sequence[SourceBatch]) -> list[Event]:
    return [e for b in batches for events in b.events.values() for e in events]


async def started_source(
    settings: KafkaSettings, group: str, positions: Mapping[str, int | None], **kwargs: int
) -> KafkaSource:
    source = KafkaSource(settings, group, lambda: positions, wait_seconds=0.2, **kwargs)  # type: ignore[arg-type]
    await source.start()
    return source


async def test_published_events_land_on_their_subjects_partition_in_order_with_schema_header(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    sent = frames(40)
    publisher = await started_publisher(settings_for(kafka_bootstrap, kafka_topic))
    try:
        await publish_all(publisher, sent)
        await publisher.flush()
    finally:
        await publisher.close()

    records = await read_topic(kafka_bootstrap, kafka_topic)
    flat = [e for frame in sent for e in frame]
    assert len(records) == len(flat)
    for record in records:
        event = decode(record.value)
        assert record.key == event.subject_did.encode()
        assert record.partition == partition_of(event.subject_did)
        assert list(record.headers) == HEADER
    for subject in SUBJECTS:
        mine = [decode(r.value) for r in sorted(records, key=lambda r: r.offset) if r.key == subject.encode()]
        assert mine == [e for e in flat if e.subject_did == subject]


async def test_flush_returns_only_when_every_earlier_event_is_acknowledged(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    publisher = await started_publisher(settings_for(kafka_bootstrap, kafka_topic))
    try:
        sent = frames(700)
        await publish_all(publisher, sent)
        await publisher.flush()
        held = await end_offsets(kafka_bootstrap, kafka_topic)
        assert publisher.in_flight == 0
        assert publisher.acked == publisher.sent == 3 * len(sent)
    finally:
        await publisher.close()
    assert sum(held.values()) == 3 * len(sent)


async def test_source_resumes_from_stored_positions_without_redelivering_earlier_events(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str
) -> None:
    settings = settings_for(kafka_bootstrap, kafka_topic)
    publisher = await started_publisher(settings)
    try:
        await publish_all(publisher, frames(30))
        await publisher.flush()
    finally:
        await publisher.close()
    ends = await end_offsets(kafka_bootstrap, kafka_topic)
    assert all(ends[p] > 5 for p in range(PARTITIONS))
    stored = {f"{kafka_topic}/0": 5, f"{kafka_topic}/1": None, f"{kafka_topic}/2": ends[2]}

    source = await started_source(settings, kafka_group_id, stored)
    try:
        batches = await drain(source, ends[0] - 5 + ends[1])
        await nothing_more(source)
    finally:
        await source.close()

    every = await read_topic(kafka_bootstrap, kafka_topic)
    expected = [r for r in every if (r.partition == 0 and r.offset >= 5) or r.partition == 1]
    assert sorted((e.seq, e.idx) for e in events_of(batches)) == sorted(
        (decode(r.value).seq, decode(r.value).idx) for r in expected
    )
    last = {name: off for b in batches for name, off in b.next_offsets.items()}
    assert last == {f"{kafka_topic}/0": ends[0], f"{kafka_topic}/1": ends[1]}


async def test_source_skips_and_counts_undecodable_messages_and_advances_past_them(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(1)
    good = like(7, 0, SUBJECTS[0])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"no header at all", key=b"k")
        await producer.send_and_wait(topic, b"{not json", key=b"k", headers=HEADER)
        await producer.send_and_wait(topic, encode(good), key=b"k", headers=[(SCHEMA_HEADER, b"999")])
        await producer.send_and_wait(topic, encode(good), key=b"k", headers=HEADER)
        await producer.send_and_wait(topic, b"{not json either", key=b"k", headers=HEADER)
    finally:
        await producer.stop()
    settings = KafkaSettings(bootstrap=kafka_bootstrap, topic=topic, partitions=1)

    source = await started_source(settings, kafka_group_id, {})
    try:
        batches = await drain_to(source, f"{topic}/0", 5)
        await nothing_more(source, 0.5)
        committed = await source._consumer.committed(TopicPartition(topic, 0))
    finally:
        await source.close()

    assert events_of(batches) == [good]
    skipped: dict[str, int] = {}
    for b in batches:
        for reason, n in b.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
    assert skipped == {"missing_schema_header": 1, "not_json": 2, "unknown_schema_header": 1}
    assert batches[-1].next_offsets == {f"{topic}/0": 5}
    assert committed == 5  # the courtesy copy in Kafka follows the acked batches

    again = await started_source(settings, kafka_group_id + "-resumed", {f"{topic}/0": 5})
    try:
        await nothing_more(again, 1.0)
    finally:
        await again.close()


async def test_lag_reports_the_backlog_per_partition_until_drained(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str
) -> None:
    settings = settings_for(kafka_bootstrap, kafka_topic)
    publisher = await started_publisher(settings)
    try:
        await publish_all(publisher, frames(50))
        await publisher.flush()
    finally:
        await publisher.close()
    total = 150

    source = await started_source(settings, kafka_group_id, {}, max_events=10)
    try:
        first: list[SourceBatch] = []
        async with asyncio.timeout(30):
            while len(source.lag()) < PARTITIONS:
                batch = await source.next_batch()
                if batch is not None:
                    first.append(batch)
                    await source.ack(batch)
        assert sum(source.lag().values()) == total - sum(len(b) for b in first)
        assert sum(source.lag().values()) > 0
        await drain(source, total - sum(len(b) for b in first))
        await source.next_batch()
        assert source.lag() == {f"{kafka_topic}/{p}": 0 for p in range(PARTITIONS)}
    finally:
        await source.close()


async def test_ensure_topic_creates_the_topic_with_its_partition_count_once(
    kafka_bootstrap: str, kafka_group_id: str
) -> None:
    settings = KafkaSettings(bootstrap=kafka_bootstrap, topic=f"topic-{kafka_group_id}", partitions=4)
    assert await ensure_topic(settings) == 4
    assert (
        await ensure_topic(KafkaSettings(bootstrap=kafka_bootstrap, topic=settings.topic, partitions=2)) == 4
    )


async def test_retry_gives_a_log_line_per_attempt_on_a_dead_broker_and_stays_cancellable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", topic="t")
    fast = Backoff(initial=0.01, maximum=0.05)
    caplog.set_level(logging.WARNING, logger="transport.kafka")
    with pytest.raises(KafkaConnectionError):
        await with_retry(lambda: ensure_topic(dead), "topic t", backoff=fast, attempts=3, log_interval=0.0)
    lines = [r.getMessage() for r in caplog.records if "kafka not reachable" in r.getMessage()]
    assert len(lines) == 2
    assert "what=topic t attempt=1" in lines[0]

    retrying = with_retry(lambda: ensure_topic(dead), "topic t", backoff=fast, log_interval=0.0)
    forever = asyncio.create_task(retrying)
    await asyncio.sleep(0.3)
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forever


def test_settings_keep_the_password_out_of_repr_and_logs_and_list_every_problem(tmp_path: Path) -> None:
    secret = "s3cret-pw"
    ca = tmp_path / "ca.pem"
    settings = KafkaSettings(
        bootstrap="b:9093",
        topic="t",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        username="svc",
        password=secret,
    )
    assert secret not in repr(settings)
    assert secret not in settings.describe()
    kwargs = settings.client_kwargs()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_password"] == secret
    assert "ssl_context" not in kwargs
    with pytest.raises(KafkaSettingsError) as err:
        KafkaSettings(bootstrap="b:9093", security_protocol="SASL_SSL", ca_file=ca, partitions=0)
    assert len(str(err.value).splitlines()) == 3  # credentials, missing CA file, partitions
