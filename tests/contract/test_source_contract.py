"""One contract for every firehose source (the relay's subscribeRepos today, Jetstream next):
reconnect with backoff, resume from the cursor, no gap and nothing twice across reconnects,
malformed input counted by reason and skipped. Event seqs are the source's own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.contract.firehoses import FirehoseUnderTest
from transport.backoff import Backoff

FAST = Backoff(initial=0.02, maximum=0.1)
OUTAGE_S = 1.5


async def test_reconnects_with_backoff_while_the_firehose_is_down_then_goes_on_with_no_gap(
    firehose: FirehoseUnderTest, tmp_path: Path
) -> None:
    await firehose.start()
    client = firehose.client(tmp_path, Backoff(initial=0.05, maximum=0.4))
    await client.wait_connected()
    before = firehose.publish(5)
    await client.wait_events(len(before))
    await firehose.down()
    failures = firehose.reconnects(client)
    await asyncio.sleep(OUTAGE_S)
    attempts = firehose.reconnects(client) - failures
    during = firehose.publish(5)  # logged while nobody can connect
    await firehose.up()
    events = await client.wait_events(len(before) + len(during))
    await client.wait_position(during[-1])
    await client.stop()
    # 0.05, 0.1, 0.2, 0.4, 0.4 … s (each jittered down to half): a handful, not a hot loop
    assert 3 <= attempts <= 14, attempts
    assert [e.seq for e in events] == before + during
    assert firehose.cursors()[-1] == before[-1]


async def test_a_restart_resumes_from_the_saved_cursor(firehose: FirehoseUnderTest, tmp_path: Path) -> None:
    await firehose.start()
    first = firehose.client(tmp_path, FAST)
    await first.wait_connected()
    handled = firehose.publish(4)
    await first.wait_position(handled[-1])
    await first.stop()  # checkpoint: the cursor is saved
    missed = firehose.publish(3)  # while the streamer is down
    second = firehose.client(tmp_path, FAST)
    events = await second.wait_events(len(missed))
    await second.wait_position(missed[-1])
    await second.stop()
    assert firehose.cursors()[-1] == handled[-1]
    assert [e.seq for e in events] == missed


async def test_dropped_connections_lose_nothing_and_deliver_nothing_twice(
    firehose: FirehoseUnderTest, tmp_path: Path
) -> None:
    await firehose.start(drop_every=7)
    client = firehose.client(tmp_path, FAST)
    await client.wait_connected()
    seqs = firehose.publish(60)
    events = await client.wait_events(len(seqs))
    await client.wait_position(seqs[-1])
    await client.stop()
    assert [e.seq for e in events] == seqs
    assert firehose.reconnects(client) >= len(seqs) // 7
    resumed = firehose.cursors()[1:]
    assert all(c is not None for c in resumed)
    assert resumed == sorted(resumed)  # type: ignore[type-var]


async def test_malformed_input_is_counted_by_reason_and_the_stream_goes_on(
    firehose: FirehoseUnderTest, tmp_path: Path
) -> None:
    await firehose.start(malformed_every=3)
    client = firehose.client(tmp_path, FAST)
    await client.wait_connected()
    seqs = firehose.publish(40)
    events = await client.wait_events(len(seqs))
    await client.wait_position(seqs[-1])
    await client.stop()
    assert [e.seq for e in events] == seqs
    junk = firehose.malformed_sent()
    assert junk >= len(seqs) // 3
    assert firehose.received(client) == len(seqs) + junk
    # junk that cannot concern a tracked account is dropped unread; the rest is counted by reason
    skipped = firehose.skipped(client)
    assert firehose.ignored(client) + sum(skipped.values()) == junk
    assert set(skipped) <= firehose.skip_reasons
