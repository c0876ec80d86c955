"""The real broker started by scripts/kafka, with the settings the pipeline relies on.

An idempotent `acks="all"` producer and a manually committing consumer group round-trip keyed
messages; keys stay on one partition each; a broker restart keeps data and committed offsets.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:
    from tests.support.kafka_broker import BrokerControl

KEYS = [f"did:plc:account{i:02d}".encode() for i in range(12)]
PER_KEY = 10
PARTITIONS = 3


def safe_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")


def group_consumer(bootstrap: str, topic: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def produce_keyed(bootstrap: str, topic: str) -> dict[bytes, list[tuple[int, int]]]:
    """Send PER_KEY messages per key; return key → [(partition, offset)] in send order."""
    producer = safe_producer(bootstrap)
    await producer.start()
    try:
        sends = [
            (key, await producer.send(topic, key=key, value=f"{key.decode()}#{n}".encode()))
            for n in range(PER_KEY)
            for key in KEYS
        ]
        placed: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        for key, future in sends:
            meta = await future
            placed[key].append((meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


async def consume_all(consumer: AIOKafkaConsumer, expected: int) -> list[ConsumerRecord]:
    records: list[ConsumerRecord] = []
    async with asyncio.timeout(30):
        while len(records) < expected:
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(r for batch in batches.values() for r in batch)
    return records


async def test_idempotent_producer_and_manual_commit_group_round_trip_keyed_messages(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., Awaitable[str]],
    kafka_group_id: str,
) -> None:
    topic = await kafka_topic_factory(PARTITIONS)
    placed = await produce_keyed(kafka_bootstrap, topic)

    for key, spots in placed.items():
        assert {partition for partition, _ in spots} == {(murmur2(key) & 0x7FFFFFFF) % PARTITIONS}, (
            f"{key!r} is not on the partition every Kafka client's default partitioner picks"
        )
    assert len({spots[0][0] for spots in placed.values()}) == PARTITIONS

    consumer = group_consumer(kafka_bootstrap, topic, kafka_group_id)
    await consumer.start()
    try:
        records = await consume_all(consumer, len(KEYS) * PER_KEY)
        await consumer.commit()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        committed = {tp: await consumer.committed(tp) for tp in ends}
    finally:
        await consumer.stop()

    assert len(records) == len(KEYS) * PER_KEY
    for key in KEYS:
        mine = [r for r in records if r.key == key]
        assert [r.value for r in mine] == [f"{key.decode()}#{n}".encode() for n in range(PER_KEY)]
        assert [(r.partition, r.offset) for r in mine] == placed[key]
    assert committed == ends


async def test_broker_restart_keeps_messages_and_committed_offsets(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., Awaitable[str]],
    kafka_group_id: str,
    kafka_restart: BrokerControl,
) -> None:
    topic = await kafka_topic_factory(PARTITIONS)
    total = len(KEYS) * PER_KEY
    await produce_keyed(kafka_bootstrap, topic)
    consumer = group_consumer(kafka_bootstrap, topic, kafka_group_id)
    await consumer.start()
    try:
        await consume_all(consumer, total)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert await kafka_restart() == kafka_bootstrap

    producer = safe_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=KEYS[0], value=b"after-restart")
    finally:
        await producer.stop()
    same_group = group_consumer(kafka_bootstrap, topic, kafka_group_id)
    await same_group.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await same_group.end_offsets(tps)
        committed = {tp: await same_group.committed(tp) for tp in tps}
        resumed = await consume_all(same_group, 1)
    finally:
        await same_group.stop()
    assert sum(ends.values()) == total + 1
    assert sum(committed.values()) == total
    assert [r.value for r in resumed] == [b"after-restart"]

    fresh_group = group_consumer(kafka_bootstrap, topic, kafka_group_id + "-after-restart")
    await fresh_group.start()
    try:
        again = await consume_all(fresh_group, total + 1)
    finally:
        await fresh_group.stop()
    assert sorted(r.value for r in again) == sorted(
        [f"{key.decode()}#{n}".encode() for key in KEYS for n in range(PER_KEY)] + [b"after-restart"]
    )
