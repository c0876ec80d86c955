"""The relay emulator behaves like a relay on a real loopback websocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import libipld
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.protocol import State

from relay.capture import frame_seq, read_frames, rewrite_seq
from relay.car import commit_frame
from relay.recorder import record
from relay.server import PATH, RelayEmulator, play, serve_capture
from tests.conftest import corpus_path

DID = "did:plc:emulatortest0000000000000"
LIKE = {"$type": "app.bsky.feed.like", "createdAt": "2026-07-04T14:38:08.999Z"}


def frame(seq: int) -> bytes:
    return commit_frame(seq, DID, [("create", f"app.bsky.feed.like/3k{seq}", LIKE)])


def publish(relay: RelayEmulator, seqs: range) -> None:
    for seq in seqs:
        relay.publish(frame(seq), seq)


@pytest.fixture
async def relay() -> AsyncIterator[RelayEmulator]:
    async with RelayEmulator(retention=1000) as emulator:
        yield emulator


@contextlib.asynccontextmanager
async def subscribe(relay: RelayEmulator, cursor: int | None = None) -> AsyncIterator[ClientConnection]:
    url = relay.subscribe_url + ("" if cursor is None else f"?cursor={cursor}")
    async with connect(url, max_size=None, close_timeout=0.5) as ws:
        yield ws


async def recv(ws: ClientConnection, count: int) -> list[bytes]:
    async with asyncio.timeout(3):
        return [bytes(await ws.recv(decode=False)) for _ in range(count)]


async def assert_silent(ws: ClientConnection, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await ws.recv()


def seqs(frames: list[bytes]) -> list[int | None]:
    return [frame_seq(f) for f in frames]


async def test_cursorless_client_gets_only_frames_published_after_it_connected(
    relay: RelayEmulator,
) -> None:
    publish(relay, range(1, 4))
    async with subscribe(relay) as ws:
        publish(relay, range(4, 6))
        assert seqs(await recv(ws, 2)) == [4, 5]
        await assert_silent(ws)
        assert relay.connection_count == 1
    assert relay.connections[0].cursor is None


async def test_cursor_replays_then_continues_live_without_gap_or_duplicate(
    relay: RelayEmulator,
) -> None:
    publish(relay, range(1, 601))

    async def publish_during_replay() -> None:
        for seq in range(601, 901):
            relay.publish(frame(seq), seq)
            if seq % 7 == 0:
                await asyncio.sleep(0)

    async with subscribe(relay, cursor=200) as ws:
        producer = asyncio.create_task(publish_during_replay())
        got = await recv(ws, 700)
        await producer
        await assert_silent(ws, 0.1)
    assert seqs(got) == list(range(201, 901))
    assert relay.connections[0].cursor == 200
    assert relay.connections[0].frames_sent == 700


async def test_outdated_cursor_gets_info_then_the_oldest_retained() -> None:
    async with RelayEmulator(retention=10) as relay:
        publish(relay, range(1, 31))  # retains 21..30
        async with subscribe(relay, cursor=5) as ws:
            first, *rest = await recv(ws, 11)
        assert libipld.decode_dag_cbor_multi(first)[1]["name"] == "OutdatedCursor"
        assert seqs(rest) == list(range(21, 31))
        async with subscribe(relay, cursor=20) as ws:  # nothing lost: no info
            assert seqs(await recv(ws, 10)) == list(range(21, 31))
        async with subscribe(relay, cursor=0) as ws:
            assert seqs(await recv(ws, 10)) == list(range(21, 31))
        assert [c.injected for c in relay.connections] == [["info:OutdatedCursor"], [], []]


async def test_future_cursor_gets_an_error_frame_and_a_close(relay: RelayEmulator) -> None:
    publish(relay, range(1, 6))
    async with subscribe(relay, cursor=99) as ws:
        (error,) = await recv(ws, 1)
        with pytest.raises(ConnectionClosed):
            await recv(ws, 1)
    assert libipld.decode_dag_cbor_multi(error) == [
        {"op": -1},
        {"error": "FutureCursor", "message": "Cursor in the future."},
    ]
    assert relay.connections[0].outcome == "future_cursor"


async def test_drop_every_aborts_each_connection_after_n_frames(relay: RelayEmulator) -> None:
    relay.set_faults(drop_every=3)
    publish(relay, range(1, 11))
    async with subscribe(relay, cursor=0) as ws:
        assert seqs(await recv(ws, 3)) == [1, 2, 3]
        with pytest.raises(ConnectionClosedError) as closed:
            await recv(ws, 1)
        assert closed.value.rcvd is None  # no close frame: an abrupt drop
    async with subscribe(relay, cursor=3) as ws:
        assert seqs(await recv(ws, 3)) == [4, 5, 6]
        with pytest.raises(ConnectionClosedError):
            await recv(ws, 1)
    assert [(c.frames_sent, c.outcome) for c in relay.connections] == [(3, "dropped")] * 2


async def test_stall_keeps_the_socket_open_and_silent_until_cleared(
    relay: RelayEmulator,
) -> None:
    relay.set_faults(stall_after=2)
    publish(relay, range(1, 6))
    async with subscribe(relay, cursor=0) as ws:
        assert seqs(await recv(ws, 2)) == [1, 2]
        await assert_silent(ws)
        assert ws.state is State.OPEN
        async with asyncio.timeout(1):
            await (await ws.ping())  # only a receive timeout can tell it is stalled
        assert relay.connections[0].stalled
        assert relay.connection_count == 1
        relay.set_faults(stall_after=None)
        assert seqs(await recv(ws, 3)) == [3, 4, 5]


async def test_consumer_that_falls_out_of_retention_gets_consumer_too_slow() -> None:
    async with RelayEmulator(retention=5, stall_after=1) as relay:
        publish(relay, range(1, 3))
        async with subscribe(relay, cursor=0) as ws:
            await recv(ws, 1)
            publish(relay, range(3, 200))
            relay.set_faults(stall_after=None)
            (error,) = await recv(ws, 1)
            with pytest.raises(ConnectionClosed):
                await recv(ws, 1)
        assert libipld.decode_dag_cbor_multi(error)[1]["error"] == "ConsumerTooSlow"
        assert relay.connections[0].outcome == "too_slow"


async def test_malformed_every_injects_rotating_kinds_of_bad_frames(
    relay: RelayEmulator,
) -> None:
    relay.set_faults(malformed_every=2)
    publish(relay, range(1, 9))
    async with subscribe(relay, cursor=0) as ws:
        got = await recv(ws, 12)
    good, bad = [got[i] for i in range(12) if i % 3 != 2], got[2::3]
    assert seqs(good) == list(range(1, 9))
    assert relay.connections[0].injected == [
        "malformed:truncated",
        "malformed:garbage",
        "malformed:bad_car",
        "malformed:header_only",
    ]
    for data in bad[:2]:
        with pytest.raises(ValueError):  # noqa: PT011 - libipld raises plain ValueError
            libipld.decode_dag_cbor_multi(data)
    _, body = libipld.decode_dag_cbor_multi(bad[2])
    assert body["seq"] == 6  # the seq of the frame it follows: a cursor stays sane
    with pytest.raises(ValueError):  # noqa: PT011
        libipld.decode_car(body["blocks"])
    assert len(libipld.decode_dag_cbor_multi(bad[3])) == 1


async def test_publish_raw_reaches_live_clients_and_later_replays(
    relay: RelayEmulator,
) -> None:
    publish(relay, range(1, 3))
    third = frame(3)
    async with subscribe(relay) as live:
        relay.publish_raw(b"\x00garbage")
        relay.publish(third)
        assert await recv(live, 2) == [b"\x00garbage", third]
    async with subscribe(relay, cursor=2) as replay:
        assert await recv(replay, 2) == [b"\x00garbage", third]
    async with subscribe(relay, cursor=3) as after:
        await assert_silent(after, 0.1)


async def test_other_paths_get_404_and_bad_cursors_400(relay: RelayEmulator) -> None:
    with pytest.raises(InvalidStatus) as missing:
        async with connect(relay.url + "/xrpc/com.atproto.sync.other"):
            pass
    assert missing.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as bad:
        async with connect(relay.subscribe_url + "?cursor=abc"):
            pass
    assert bad.value.response.status_code == 400
    assert relay.connections == []


@pytest.mark.parametrize("name", ["rec.bin", "rec.bin.zst"])
async def test_recorder_writes_the_frames_byte_for_byte(
    relay: RelayEmulator, tmp_path: Path, name: str, real_frames: list[bytes]
) -> None:
    real = real_frames
    for f in real:
        relay.publish(f)
    out = tmp_path / name
    assert await record(relay.url, out, cursor=0, limit=150) == 150
    assert read_frames(out) == real
    assert relay.connections[0].cursor == 0
    again = rewrite_seq(real[0], real_last(real) + 1)
    relay.publish(again)
    appended = await record(relay.url + "/", out, cursor=real_last(real), limit=1)
    assert appended == 1
    assert read_frames(out) == [*real, again]


async def test_cancelled_recorder_leaves_a_readable_capture(relay: RelayEmulator, tmp_path: Path) -> None:
    out = tmp_path / "cancelled.bin.zst"
    recording = asyncio.create_task(record(relay.url, out))
    await relay.wait_for_audience()
    publish(relay, range(1, 51))
    await relay.wait_caught_up()
    await asyncio.sleep(0.05)
    recording.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await recording
    assert seqs(read_frames(out)) == list(range(1, 51))


def real_last(frames: list[bytes]) -> int:
    return frame_seq(frames[-1]) or 0


async def test_serving_the_real_capture_gives_its_frames_back_byte_for_byte(
    real_frames: list[bytes],
) -> None:
    real = real_frames
    ready: asyncio.Future[RelayEmulator] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve_capture(corpus_path("frames.bin.zst"), preload=True, on_ready=ready.set_result)
    )
    try:
        relay = await asyncio.wait_for(ready, 5)
        async with connect(relay.subscribe_url + "?cursor=0", max_size=None) as ws:
            assert await recv(ws, 150) == real
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def test_looping_playback_keeps_seqs_increasing(relay: RelayEmulator, real_frames: list[bytes]) -> None:
    real = real_frames
    async with subscribe(relay) as ws:
        player = asyncio.create_task(play(relay, real, loop=True, count=400, max_lag=100))
        got = await recv(ws, 400)
        assert await player == 400
    first = frame_seq(real[0]) or 0
    assert seqs(got) == list(range(first, first + 400))
    assert got[:150] == real
    assert got[150] != real[0]
    assert (
        libipld.decode_dag_cbor_multi(got[150])[1]["blocks"]
        == (libipld.decode_dag_cbor_multi(real[0])[1]["blocks"])
    )


async def test_rate_limited_playback_paces_frames(relay: RelayEmulator) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await play(relay, [frame(s) for s in range(1, 41)], rate=400) == 40
    assert loop.time() - started >= 0.09
    assert relay.last_seq == 40


def test_subscribe_path_is_the_relay_one() -> None:
    assert PATH == "/xrpc/com.atproto.sync.subscribeRepos"
