"""The Jetstream emulator on its wires: the atproto SDK's own client reads it (compressed and
not), and the rules a real client depends on hold: inclusive cursors, CursorTooOld below the
floor, UnknownZstdDictionary, timestamp cursors, filters, v1, and the injected faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import zstandard
from atproto_jetstream import AsyncJetstreamClient
from atproto_jetstream.exceptions import JetstreamCursorTooOldError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from relay.jetstream_emulator import JetstreamEmulator, JetstreamFaults, play
from relay.jetstream_wire import V1_PATH, V2_PATH

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def jetstream(real_frames: list[bytes]) -> AsyncIterator[JetstreamEmulator]:
    async with JetstreamEmulator() as emulator:
        for frame in real_frames:
            emulator.publish_relay_frame(frame)
        yield emulator


async def sdk_read(url: str, count: int, *, compress: bool, params: dict[str, Any]) -> tuple[list[Any], bool]:
    client = AsyncJetstreamClient(params, base_uri=url + "/xrpc", compress=compress)
    got: list[Any] = []
    done = asyncio.Event()

    async def on_message(message: Any) -> None:
        got.append(message)
        if len(got) >= count:
            done.set()

    task = asyncio.create_task(client.start(on_message))
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await client.stop()
        await asyncio.wait_for(task, 5)
    return got, client.compressed


@pytest.mark.parametrize("compress", [False, True])
async def test_the_sdk_client_reads_exactly_the_converted_events(
    jetstream: JetstreamEmulator, compress: bool
) -> None:
    stored = jetstream.events
    got, compressed = await sdk_read(jetstream.url, len(stored), compress=compress, params={"cursor": 1})
    await asyncio.sleep(0.2)  # nothing more arrives: no duplicates, no extra frames
    assert compressed is compress
    assert len(got) == len(stored) == 152
    assert [m.seq for m in got] == [e.seq for e in stored] == list(range(1, 153))
    assert [m.did for m in got] == [e.did for e in stored]
    commits = [(m, e) for m, e in zip(got, stored, strict=True) if e.kind == "commit"]
    assert [(m.collection, m.rkey, m.operation, m.cid) for m, _ in commits] == [
        (e.payload["collection"], e.payload["rkey"], e.payload["operation"], e.payload.get("cid"))
        for _, e in commits
    ]
    assert got[-1].py_type.endswith("#account")
    assert got[-2].py_type.endswith("#identity")
    (conn,) = jetstream.connections
    assert (conn.subprotocol, conn.compressed, conn.params["cursor"]) == ("xrpc.v1.json", compress, ["1"])
    assert len(jetstream.dictionary_fetches) == (1 if compress else 0)


async def test_the_sdk_sees_cursor_too_old_and_a_retired_dictionary(jetstream: JetstreamEmulator) -> None:
    jetstream.set_floor(100)
    client = AsyncJetstreamClient({"cursor": 50}, base_uri=jetstream.url + "/xrpc", compress=False)
    with pytest.raises(JetstreamCursorTooOldError, match="floor 100"):
        await asyncio.wait_for(client.start(_ignore), 10)
    assert jetstream.connections[-1].outcome == "rejected:CursorTooOld"
    # a client holding a retired dictionary id is refused, refetches, and reads compressed
    old = jetstream.dictionary_id
    got, compressed = await sdk_read(jetstream.url, 5, compress=True, params={"cursor": 100})
    assert compressed
    assert got[0].seq == 100
    jetstream.rotate_dictionary()
    status, body = await refused(jetstream, f"{V2_PATH}?zstdDictionary={old}")
    assert status == 400
    assert body["error"] == "UnknownZstdDictionary"
    assert f"current dictionary id is {jetstream.dictionary_id}" in body["message"]


async def _ignore(_message: Any) -> None:
    return None


async def refused(emulator: JetstreamEmulator, path: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(emulator.url + path):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("wantedCollections=app.bsky.feed.like", "InvalidRequest"),
        ("kinds=commits", "InvalidRequest"),
        ("kinds=identity&collections=app.bsky.feed.like", "InvalidRequest"),
        ("cursor=-1", "InvalidRequest"),
        ("zstdDictionary=1", "UnknownZstdDictionary"),
        ("cursor=3", "CursorTooOld"),
    ],
)
async def test_bad_requests_are_refused_before_the_upgrade(
    jetstream: JetstreamEmulator, query: str, error: str
) -> None:
    jetstream.set_floor(10)
    status, body = await refused(jetstream, f"{V2_PATH}?{query}")
    assert (status, body["error"]) == (400, error)
    if error == "CursorTooOld":
        assert "floor 10" in body["message"]
    assert jetstream.connections[-1].outcome == f"rejected:{error}"


async def read(url: str, count: int, *, compressed: bool = False, wait: float = 0.3) -> list[Any]:
    """Frames of one connection (decoded JSON), until `count` or `wait` seconds of silence."""
    out: list[Any] = []
    decompress = None
    if compressed:
        blob = await dictionary(url)
        decompress = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(blob)).decompress
    async with connect(url, max_size=None, max_queue=None, close_timeout=1) as ws:
        try:
            while len(out) < count:
                message = await asyncio.wait_for(ws.recv(), wait)
                if decompress is not None:
                    assert isinstance(message, bytes)
                    message = decompress(message)
                try:
                    out.append(json.loads(message))
                except ValueError:
                    out.append({"malformed": message})
        except (TimeoutError, ConnectionClosed):
            pass
    return out


async def dictionary(url: str) -> bytes:
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    writer.write(b"GET /xrpc/network.bsky.jetstream.getZstdDictionary HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    return body


async def test_cursors_are_inclusive_and_timestamps_resolve(jetstream: JetstreamEmulator) -> None:
    base = jetstream.url + V2_PATH
    frames = await read(f"{base}?cursor=150", 10)
    assert [f["payload"]["seq"] for f in frames] == [150, 151, 152]
    moment = jetstream.events[99].time_us
    frames = await read(f"{base}?cursor={moment}", 1)
    assert frames[0]["payload"]["seq"] == 100
    jetstream.set_floor(120)
    frames = await read(f"{base}?cursor={moment}", 2)  # below the floor: clamped, announced
    assert frames[0]["payload"] == {
        "$type": "network.bsky.jetstream.subscribeEvents#info",
        "message": frames[0]["payload"]["message"],
        "name": "OutdatedCursor",
    }
    assert frames[1]["payload"]["seq"] == 120
    assert await read(f"{base}?cursor=9999", 1) == []  # future cursor: the live tip
    v1 = await read(f"{jetstream.url}{V1_PATH}?cursor=1", 200)  # v1 clamps silently
    assert v1[0]["cursor"] == 120
    assert {"did", "time_us", "kind"} <= v1[0].keys()


async def test_filters_and_compression(jetstream: JetstreamEmulator) -> None:
    like = "app.bsky.feed.like"
    query = f"cursor=1&kinds=commit&collections=app.bsky.feed.*&zstdDictionary={jetstream.dictionary_id}"
    frames = await read(f"{jetstream.url}{V2_PATH}?{query}", 500, compressed=True)
    wanted = [e for e in jetstream.events if (e.collection or "").startswith("app.bsky.feed.")]
    assert [f["payload"]["seq"] for f in frames] == [e.seq for e in wanted]
    did = jetstream.events[-1].did  # the identity + account DID: dids filters every kind
    frames = await read(f"{jetstream.url}{V2_PATH}?cursor=1&dids={did}", 10)
    assert [f["payload"]["$type"].rsplit("#")[1] for f in frames] == ["identity", "account"]
    frames = await read(f"{jetstream.url}{V1_PATH}?cursor=1&wantedCollections={like}", 500)
    kinds = {f["kind"] for f in frames}
    assert kinds == {"commit", "identity", "account"}  # v1: identity/account whatever the collections
    assert {f["commit"]["collection"] for f in frames if f["kind"] == "commit"} == {like}


async def test_faults_drop_malform_and_end_with_consumer_too_slow(real_frames: list[bytes]) -> None:
    faults = JetstreamFaults(drop_every=40, malformed_every=7, unknown_type_every=11)
    async with JetstreamEmulator(faults=faults) as emulator:
        await play(emulator, real_frames)
        frames = await read(f"{emulator.url}{V2_PATH}?cursor=1", 200, wait=0.5)
        conn = emulator.connections[-1]
        assert conn.outcome == "dropped"
        assert conn.events_sent == 40
        assert conn.injected == [  # after events 7, 11, 14, 21, 22, 28, 33, 35
            "malformed:truncated",
            "unknown:payload",
            "malformed:not_json",
            "malformed:bad_utf8",
            "unknown:frame",
            "malformed:wrong_types",
            "unknown:payload",
            "malformed:record_not_object",
        ]
        assert len(frames) == 40 + len(conn.injected)
        assert sum(1 for f in frames if "malformed" in f) == 3  # truncated, not JSON, invalid UTF-8
        emulator.set_faults(drop_every=None, malformed_every=None, unknown_type_every=None, error_after=5)
        frames = await read(f"{emulator.url}{V2_PATH}?cursor=41", 100)
        assert [f["payload"]["seq"] for f in frames[:5]] == [41, 42, 43, 44, 45]
        assert frames[5] == {"$type": "error", "error": "ConsumerTooSlow", "message": "consumer is too slow"}
        assert emulator.connections[-1].outcome == "error:ConsumerTooSlow"


async def test_live_clients_get_new_events_only(real_frames: list[bytes]) -> None:
    async with JetstreamEmulator() as emulator:
        emulator.publish_relay_frame(real_frames[0])
        reader = asyncio.create_task(read(emulator.url + V2_PATH, 3, wait=2))
        await emulator.wait_for_connections(1)
        seqs = [s for frame in real_frames[1:4] for s in emulator.publish_relay_frame(frame)]
        frames = await reader
        assert [f["payload"]["seq"] for f in frames] == seqs[:3]
        assert seqs[0] == 2


async def test_the_jetstream_command_serves_a_capture(tmp_path: Path) -> None:
    from tests.conftest import corpus_path
    from tests.support.ports import free_port
    from tests.support.processes import ChildProcess, bluepulse_argv

    port = free_port()
    argv = bluepulse_argv("jetstream", "--capture", str(corpus_path("frames.bin.zst")), "--port", str(port))
    child = ChildProcess("jetstream", [*argv, "--floor", "3"], tmp_path / "jetstream.log").start()
    try:
        url = f"ws://127.0.0.1:{port}"
        for _ in range(100):  # until it listens
            with contextlib.suppress(OSError):
                frames = await read(f"{url}{V2_PATH}?cursor=3", 200, wait=1.0)
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(child.tail())
        assert [f["payload"]["seq"] for f in frames] == list(range(3, 153))
        with pytest.raises(InvalidStatus, match="400"):
            await read(f"{url}{V2_PATH}?cursor=2", 1)
        assert child.stop() == 0, child.tail()
    finally:
        child.close()
