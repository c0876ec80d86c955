"""The streamer against the relay emulator over a real websocket.

What every firehose source must do (reconnect with backoff, cursor resume, no gap or double
across drops, malformed input counted) is tests/contract/test_source_contract.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import libipld

from relay.emulator import RelayEmulator
from relay.script import FrameScript
from tests.integration.harness import A, B, RunningStreamer, X, Y, facts


async def test_every_event_kind_arrives_with_its_subject(tmp_path: Path) -> None:
    s = FrameScript()
    post_a, post_b = s.post(A, "Vaccination"), s.post(B, "Canicule")
    like = s.like(X, post_a)
    s.delete(like)
    rp = s.repost(Y, post_b)
    s.delete(rp)
    s.post(X, "merci", reply_to=post_a)
    s.post(Y, "voir", quote=post_b, mentions=(A,))
    fol = s.follow(X, B)
    s.delete(fol)
    s.like(A, f"at://{X}/app.bsky.feed.post/3kx")
    s.delete(post_a)
    s.handle(A, "chu-nouveau.fr")
    s.status(B, False, "deactivated")
    s.like(X, f"at://{Y}/app.bsky.feed.post/3ky")  # concerns nobody tracked
    async with RelayEmulator() as relay:
        run = RunningStreamer(relay.url, tmp_path).start()
        await run.wait_connected()
        for frame in s.frames:
            relay.publish(frame)
        events = await run.wait_events(15)
        await run.wait_position(s.seq)
        await run.stop()
    assert facts(events) == [
        ("post", "create", "by", A, A),
        ("post", "create", "by", B, B),
        ("like", "create", "to", A, X),
        ("like", "delete", "to", A, X),
        ("repost", "create", "to", B, Y),
        ("repost", "delete", "to", B, Y),
        ("reply", "create", "to", A, X),
        ("quote", "create", "to", B, Y),
        ("mention", "create", "to", A, Y),
        ("follow", "create", "to", B, X),
        ("follow", "delete", "to", B, X),
        ("like", "create", "by", A, A),
        ("post", "delete", "by", A, A),
        ("handle", "update", "by", A, A),
        ("account", "update", "by", B, B),
    ]
    assert run.cursor.load() == s.seq
    assert run.streamer.tracked.get(A).handle == "chu-nouveau.fr"  # type: ignore[union-attr]


async def test_unlike_and_unfollow_resolve_after_a_restart(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    like, follow, repost = s.like(X, post), s.follow(Y, A), s.repost(X, post)
    async with RelayEmulator() as relay:
        first = RunningStreamer(relay.url, tmp_path).start()
        await first.wait_connected()
        for frame in s.frames:
            relay.publish(frame)
        await first.wait_events(4)
        await first.wait_position(s.seq)
        await first.stop()
        for uri in (like, follow, repost):
            s.delete(uri)
        for frame in s.frames[4:]:
            relay.publish(frame)  # published while the streamer is down
        second = RunningStreamer(relay.url, tmp_path).start()
        events = await second.wait_events(3)
        await second.stop()
    assert relay.connections[-1].cursor == 4
    assert facts(events) == [
        ("like", "delete", "to", A, X),
        ("follow", "delete", "to", A, Y),
        ("repost", "delete", "to", A, X),
    ]
    assert [e.subject_uri for e in events] == [post, None, post]
    assert second.streamer.tracked.get(A) is not None


async def test_each_kind_of_bad_input_is_counted_by_reason(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    good_like = s.like(X, post)
    s.create(X, "app.bsky.feed.like", {"subject": {"uri": 7, "cid": "c", "owner": A}})
    s.commit(A, [("create", "app.bsky.feed.like/3kbad", None)])  # op without a block
    like_frame = s.frames[1]
    wrong_type = libipld.encode_dag_cbor({"t": "#bogus", "op": 1}) + libipld.encode_dag_cbor({"a": A})
    corrupt_car = bytearray(like_frame)
    car_at = like_frame.index(b"blocks") + 9
    corrupt_car[car_at : car_at + 40] = b"\xff" * 40
    async with RelayEmulator() as relay:
        run = RunningStreamer(relay.url, tmp_path).start()
        await run.wait_connected()
        relay.publish(s.frames[0])
        truncated = like_frame[: like_frame.rindex(A.encode()) + 40]
        for junk in (truncated, wrong_type, bytes(corrupt_car), b"\x00" + A.encode()):
            relay.publish_raw(junk)
        for frame in s.frames[1:]:
            relay.publish(frame)
        await run.wait_position(s.seq)
        await run.stop()
    assert [e.uri for e in run.events] == [post, good_like]
    stats = run.streamer.stats
    # the truncation is caught by the bounds walk before libipld sees it
    assert stats.frames_skipped == {"bad_length": 1, "bad_header": 1, "unknown_type": 1, "bad_car": 1}
    assert stats.ops_skipped == {"bad_record": 1, "missing_block": 1}


async def test_a_silent_socket_is_closed_and_the_stream_resumes(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    for _ in range(9):
        s.like(X, post)
    async with RelayEmulator(stall_after=4) as relay:
        run = RunningStreamer(relay.url, tmp_path, receive_timeout=0.3).start()
        await run.wait_connected()
        for frame in s.frames:
            relay.publish(frame)
        events = await run.wait_events(10)
        await run.stop()
    assert [e.seq for e in events] == list(range(1, 11))
    assert run.source.reconnects >= 2


async def test_a_future_cursor_falls_back_to_the_live_tip(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    s.like(X, post)
    (tmp_path / "cursor").write_text("999999\n")
    async with RelayEmulator() as relay:
        relay.publish(s.frames[0])
        run = RunningStreamer(relay.url, tmp_path).start()
        async with asyncio.timeout(10):
            while run.streamer.stats.relay_messages["FutureCursor"] == 0 or not run.source.connected:
                await asyncio.sleep(0.01)
        relay.publish(s.frames[1])
        events = await run.wait_events(1)
        await run.stop()
    assert facts(events) == [("like", "create", "to", A, X)]
    assert relay.connections[0].cursor == 999999
    assert relay.connections[-1].cursor is None
    assert run.cursor.load() == 2
