"""Through Kafka too, `bluepulse_aggregator_last_seq` is the committed position: the streamer's
position markers reach every partition, so frames without a tracked event advance it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import duckdb

from relay.emulator import RelayEmulator
from tests.integration.test_run_pipeline import scenario, write_accounts
from tests.integration.test_streamer_out import quiet_tail
from tests.kafka import processes

PARTITIONS = 3


async def test_aggregator_last_seq_reaches_the_streamer_cursor_through_kafka(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., Awaitable[str]],
    kafka_group_id: str,
) -> None:
    topic = await kafka_topic_factory(PARTITIONS)
    s = quiet_tail(scenario(), 20)
    accounts = write_accounts(tmp_path / "accounts.csv")
    async with RelayEmulator() as relay:
        streamer = processes.streamer(
            tmp_path,
            relay_url=relay.url,
            accounts=accounts,
            bootstrap=kafka_bootstrap,
            topic=topic,
            partitions=PARTITIONS,
            checkpoint_interval=0.2,
        )
        aggregator = processes.aggregator(
            tmp_path,
            "aggregator",
            accounts=accounts,
            bootstrap=kafka_bootstrap,
            topic=topic,
            group=kafka_group_id,
            partitions=PARTITIONS,
        )
        try:
            for proc in (aggregator, streamer):
                proc.start()
                await proc.wait_up()
            async with asyncio.timeout(20):
                await relay.wait_for_connections(1)
            for frame in s.frames:
                relay.publish(frame)
            last = "bluepulse_streamer_last_seq"
            await streamer.wait_for(f"{last} {s.seq}", lambda m: m.get(last) == s.seq, 60)
            committed = 'bluepulse_aggregator_last_seq{source="relay"}'
            await aggregator.wait_for(f"{committed} {s.seq}", lambda m: m.get(committed) == s.seq, 60)
            assert streamer.terminate() == 0, streamer.tail()
            assert aggregator.terminate() == 0, aggregator.tail()
        finally:
            streamer.close()
            aggregator.close()
    assert int((tmp_path / "state" / "cursor").read_text()) == s.seq
    assert aggregator.db is not None
    with duckdb.connect(str(aggregator.db), read_only=True) as con:
        rows = con.execute(
            "SELECT partition, committed_seq FROM source_positions WHERE source = 'relay' ORDER BY partition"
        ).fetchall()
        events = con.execute("SELECT max(seq) FROM events").fetchone()
    assert [seq for _, seq in rows] == [s.seq] * PARTITIONS  # the marker reached every partition
    assert events is not None
    assert events[0] < s.seq - 19  # no event among the last 20 frames
