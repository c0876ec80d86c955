"""One contract for every transport between the streamer's Publisher and the aggregator's
BatchSource (memory queue and Kafka today): per-key order, at least once across a consumer
restart, acks as the resume position, position markers, back-pressure, clean close.

"Restart" is what a crashed consumer's process gets: the memory queue dies with it and the
upstream replays from its cursor; a Kafka consumer resumes from the positions the sink
committed while the streamer goes on. The contract holds either way.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.contract.transports import Key, Link, Sink, TransportUnderTest, Upstream, keys


def in_order_per_subject(got: list[Key], sent: list[Key], subject_of: dict[Key, str]) -> bool:
    return all(
        [k for k in got if subject_of[k] == s] == [k for k in sent if subject_of[k] == s]
        for s in set(subject_of.values())
    )


async def run_to_the_end(transport: TransportUnderTest, up: Upstream, sink: Sink, link: Link) -> None:
    producing = asyncio.create_task(up.run(link.publisher))
    await sink.drain(link.source, lambda: sink.acked_keys() >= set(keys(up.published)) and producing.done())
    await producing


async def crash_and_restart(
    transport: TransportUnderTest, link: Link, producing: asyncio.Task[None], sink: Sink
) -> Link:
    """The consumer dies (its source is closed, nothing more acked); the wiring reacts; the
    upstream stops with its process (memory) or runs on (Kafka); a new run starts."""
    await link.source.close()
    await link.crashed(RuntimeError("the consumer crashed"))
    if transport.shared_process:
        producing.cancel()
    await asyncio.gather(producing, return_exceptions=True)
    return await transport.open(sink.positions)


async def test_each_subjects_events_arrive_once_in_publish_order(transport: TransportUnderTest) -> None:
    up, sink = Upstream(frames=60), Sink()
    link = await transport.open({})
    try:
        await run_to_the_end(transport, up, sink, link)
    finally:
        await link.publisher.close()
        await link.source.close()
    got, sent = keys(sink.events()), keys(up.published)
    assert sorted(got) == sorted(sent)  # every event, none twice
    assert in_order_per_subject(got, sent, {(e.seq, e.idx): e.subject_did for e in up.published})


async def test_events_not_acked_are_delivered_again_after_a_consumer_restart(
    transport: TransportUnderTest,
) -> None:
    up, sink = Upstream(frames=60, every=5), Sink()
    link = await transport.open({})
    producing = asyncio.create_task(up.run(link.publisher))
    await sink.drain(link.source, lambda: len(sink.acked) >= 30)
    in_hand = await sink.take(link.source)  # taken, never acked
    before = len(sink.acked)
    second = await crash_and_restart(transport, link, producing, sink)
    try:
        await run_to_the_end(transport, up, sink, second)
    finally:
        await second.publisher.close()
        await second.source.close()
    after = {(e.seq, e.idx) for _, e, _ in sink.acked[before:]}
    lost = [k for events in in_hand.events.values() for k in keys(events) if k not in after]
    assert not lost, f"events of the batch in hand never came back: {lost}"
    assert sink.acked_keys() == set(keys(up.published))


async def test_a_restarted_consumer_resumes_from_what_it_acked(transport: TransportUnderTest) -> None:
    up, sink = Upstream(frames=60, every=5), Sink()
    link = await transport.open({})
    producing = asyncio.create_task(up.run(link.publisher))
    await sink.drain(link.source, lambda: len(sink.acked) >= 30)
    acked, watermarks, before = sink.acked_keys(), dict(sink.watermarks()), len(sink.acked)
    second = await crash_and_restart(transport, link, producing, sink)
    try:
        await run_to_the_end(transport, up, sink, second)
    finally:
        await second.publisher.close()
        await second.source.close()
    again = [(name, (e.seq, e.idx)) for name, e, _ in sink.acked[before:]]
    # what comes back was acked already only when the upstream replayed it, never from the transport
    assert {k for _, k in again if k in acked} <= up.replayed
    # and the acked position splits old from new: nothing new at or below a partition's watermark
    fresh_below = [(n, k) for n, k in again if k not in acked and n in watermarks and k <= watermarks[n]]
    assert not fresh_below
    assert sink.acked_keys() == set(keys(up.published))


async def test_position_marks_reach_every_partition_behind_the_events_before_them(
    transport: TransportUnderTest,
) -> None:
    up, sink = Upstream(frames=40, every=10, quiet=5), Sink()
    link = await transport.open({})
    last = up.frames

    def every_partition_marked() -> bool:
        return len({name for name, seq, _ in sink.marks if seq == last}) == transport.mark_partitions

    producing = asyncio.create_task(up.run(link.publisher))
    try:
        await sink.drain(link.source, lambda: every_partition_marked() and producing.done())
        await producing
    finally:
        await link.publisher.close()
        await link.source.close()
    assert sink.acked_keys() == set(keys(up.published))
    for name, seq, batch in sink.marks:
        late = [e for n, e, b in sink.acked if n == name and e.seq <= seq and b > batch]
        assert not late, f"mark {seq} on {name} overtook events before it: {late[:3]}"


async def test_publish_blocks_while_the_downstream_is_stalled_and_loses_nothing(
    transport: TransportUnderTest,
) -> None:
    up, sink = Upstream(frames=300, every=10_000), Sink()  # one flush, at the end
    link = await transport.open({})
    try:
        await transport.stall()
        producing = asyncio.create_task(up.run(link.publisher))
        await asyncio.sleep(transport.stall_seconds)
        blocked, held, stuck_at = not producing.done(), link.buffered(), up.sent_frames
        await transport.resume()
        await sink.drain(link.source, lambda: sink.acked_keys() >= set(keys(up.published)), 60)
        await asyncio.wait_for(producing, 60)
    finally:
        await link.publisher.close()
        await link.source.close()
    assert blocked, "publish() must block while nothing downstream takes events"
    assert held <= link.bound
    assert stuck_at < up.frames
    got, sent = keys(sink.events()), keys(up.published)
    assert sorted(got) == sorted(sent)  # nothing dropped, nothing doubled by a retried send
    assert in_order_per_subject(got, sent, {(e.seq, e.idx): e.subject_did for e in up.published})


async def test_close_delivers_everything_published_before_it_and_may_be_repeated(
    transport: TransportUnderTest,
) -> None:
    up, sink = Upstream(frames=50), Sink()
    link = await transport.open({})
    producing = asyncio.create_task(up.run(link.publisher, flush=False))
    closing = asyncio.create_task(_close_after(producing, link))
    try:
        await sink.drain(link.source, lambda: sink.acked_keys() >= set(keys(up.published)) and closing.done())
        await closing
        await link.source.close()
    finally:
        with contextlib.suppress(Exception):
            await link.source.close()
    await asyncio.wait_for(link.publisher.close(), 10)  # a second close returns at once
    assert sorted(keys(sink.events())) == sorted(keys(up.published))


async def _close_after(producing: asyncio.Task[None], link: Link) -> None:
    await producing
    await asyncio.wait_for(link.publisher.close(), 30)
