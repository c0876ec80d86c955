"""Position markers name their source, so the aggregator commits each firehose's position
apart; a marker without one (an older streamer) is the relay's."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from aggregator.consume import QUEUE_PARTITION, QueueSource
from aggregator.consume_kafka import _decode
from aggregator.errors import MessageReason
from streamer.publish import QueuePublisher
from transport.kafka import POSITION_TYPE, SOURCE_HEADER, TYPE_HEADER
from transport.memory import EventQueue

JET = "jetstream2@jetstream.example"


def record(value: bytes, headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, 0, 0, 0, None, value, None, 0, len(value), headers)


async def test_queue_markers_keep_the_highest_seq_of_each_source() -> None:
    queue = EventQueue(linger_seconds=0)
    publisher = QueuePublisher(queue)
    for seq, source in ((31_000_000_005, "relay"), (40, JET), (31_000_000_009, "relay"), (12, JET)):
        await publisher.mark(seq, source)
    await publisher.mark(31_000_000_007)  # the default is the relay
    batch = await QueueSource(queue).next_batch()
    assert batch is not None
    assert batch.marks == {QUEUE_PARTITION: {"relay": 31_000_000_009, JET: 40}}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(TYPE_HEADER, POSITION_TYPE)], ("relay", 650)),
        ([(TYPE_HEADER, POSITION_TYPE), (SOURCE_HEADER, JET.encode())], (JET, 650)),
        ([(TYPE_HEADER, POSITION_TYPE), (SOURCE_HEADER, b"")], MessageReason.BAD_POSITION_MARKER),
        ([(TYPE_HEADER, POSITION_TYPE), (SOURCE_HEADER, b"\xff")], MessageReason.BAD_POSITION_MARKER),
    ],
)
def test_kafka_markers_name_their_source_in_a_header(
    headers: list[tuple[str, bytes]], expected: object
) -> None:
    assert _decode(record(b"650", headers)) == expected
