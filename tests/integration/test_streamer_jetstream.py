"""The Streamer on Jetstream (J1's emulator): v2 compressed and not, v1; every event exactly once
across drops, CursorTooOld and ConsumerTooSlow; bad frames counted; never a `dids` filter."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from relay.jetstream_emulator import JetstreamEmulator, JetstreamFaults
from relay.script import FrameScript
from streamer.cursor import CursorStore, source_id
from streamer.errors import RelayMessage
from tests.integration.harness import A, B, RunningStreamer, X, Y
from tests.unit.test_jetstream_records import Relay, identity

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def did(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice(_ALPHABET) for _ in range(24))


def big_scenario(events: int, seed: int = 13) -> FrameScript:
    """Engagement to A and B from untracked users, noise between untracked users, deletes."""
    rng = random.Random(seed)
    s = FrameScript()
    posts = [s.post(A, "annonce"), s.post(B, "alerte", mentions=(A,))]
    noise_post = s.post(X, "ailleurs")
    made: list[str] = []
    while len(s.frames) < events:
        actor, roll = did(rng), rng.random()
        if roll < 0.35:
            s.like(actor, noise_post)  # concerns nobody: skipped unread
        elif roll < 0.6:
            made.append(s.like(actor, rng.choice(posts)))
        elif roll < 0.7:
            made.append(s.repost(actor, rng.choice(posts)))
        elif roll < 0.78:
            made.append(s.follow(actor, rng.choice((A, B))))
        elif roll < 0.85:
            s.post(actor, "réponse", reply_to=rng.choice(posts))
        elif roll < 0.9 and made:
            s.delete(made.pop(rng.randrange(len(made))))
        elif roll < 0.95:
            posts.append(s.post(rng.choice((A, B)), "nouveau"))
        else:
            s.handle(rng.choice((A, X)), f"h{len(s.frames)}.example")
    return s


def truth(script: FrameScript) -> list[tuple[object, ...]]:
    return [identity(e) for e in Relay().run(script.frames)]


async def publish(js: JetstreamEmulator, client: RunningStreamer, script: FrameScript) -> list[int]:
    """Once the client is connected at the live tip: the script's frames, as Jetstream events."""
    await client.wait_connected()
    return [seq for frame in script.frames for seq in js.publish_relay_frame(frame)]


async def run_to_end(client: RunningStreamer, last: int) -> list[tuple[object, ...]]:
    await client.wait_position(last, timeout=60)
    await client.stop()
    return [identity(e) for e in client.events]


@pytest.mark.parametrize(
    ("wire", "compress"), [("v2", False), ("v2", True), ("v1", False)], ids=["v2-plain", "v2-zstd", "v1"]
)
async def test_every_kind_exactly_once_and_never_a_dids_filter(
    tmp_path: Path, wire: str, compress: bool
) -> None:
    script = big_scenario(600)
    async with JetstreamEmulator() as js:
        url = js.url + ("/subscribe" if wire == "v1" else "")
        client = RunningStreamer(url, tmp_path, jetstream=True, compress=compress).start()
        seqs = await publish(js, client, script)
        last = js.events[-1].time_us if wire == "v1" else seqs[-1]
        got = await run_to_end(client, last)
        conn = js.connections[0]
    assert got == truth(script)
    kinds = {row[0].value for row in got}  # type: ignore[attr-defined]
    assert {"post", "reply", "mention", "like", "repost", "follow", "handle"} <= kinds
    untracked_to_tracked = [
        e for e in client.events if e.direction.value == "to" and e.actor_did not in (A, B)
    ]
    assert len(untracked_to_tracked) > 100  # engagement FROM untracked repos is counted
    assert "dids" not in conn.params
    assert "wantedDids" not in conn.params
    if wire == "v2":
        assert conn.params["kinds"] == ["commit", "identity", "account"]
        assert "app.bsky.feed.like" in conn.params["collections"]
        assert conn.subprotocol == "xrpc.v1.json"
        assert conn.compressed is compress
        assert client.streamer.stats.frames_skipped == {}
    else:
        assert "app.bsky.feed.like" in conn.params["wantedCollections"]
    assert {e.source for e in client.events} == {source_id(url)}


async def test_drops_every_1800_events_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    script = big_scenario(7_000)
    async with JetstreamEmulator(faults=JetstreamFaults(drop_every=1_800)) as js:
        client = RunningStreamer(js.url, tmp_path, jetstream=True).start()
        seqs = await publish(js, client, script)
        got = await run_to_end(client, seqs[-1])
        cursors = [c.params.get("cursor") for c in js.connections]
    assert got == truth(script)
    assert client.source.reconnects >= 3
    assert client.streamer.stats.frames_replayed >= 3  # the inclusive cursor re-sent, dropped
    assert all(c is not None for c in cursors[1:])


async def test_cursor_too_old_counts_the_gap_and_resumes_at_the_floor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    for _ in range(30):
        s.like(Y, post)
    async with JetstreamEmulator() as js:
        seqs = [seq for frame in s.frames for seq in js.publish_relay_frame(frame)]
        js.set_floor(seqs[20])
        CursorStore.for_source(tmp_path, source_id(js.url)).save(seqs[5])
        client = RunningStreamer(js.url, tmp_path, jetstream=True).start()
        await client.wait_position(seqs[-1])
        await client.stop()
        outcomes = [(c.params.get("cursor"), c.outcome) for c in js.connections]
    assert outcomes[0] == ([str(seqs[5])], "rejected:CursorTooOld")
    assert outcomes[1][0] == [str(seqs[20])]
    assert [e.seq for e in client.events] == seqs[20:]  # resumed at the floor, inclusive
    assert (client.source.gaps, client.source.events_lost) == (1, seqs[20] - seqs[5])
    assert any(
        "below the retention floor" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records
    )


async def test_consumer_too_slow_reconnects_from_the_saved_position(tmp_path: Path) -> None:
    script = big_scenario(300)
    async with JetstreamEmulator(faults=JetstreamFaults(error_after=100)) as js:
        client = RunningStreamer(js.url, tmp_path, jetstream=True).start()
        seqs = await publish(js, client, script)
        got = await run_to_end(client, seqs[-1])
        conns = list(js.connections)
    assert got == truth(script)
    assert client.streamer.stats.relay_messages[RelayMessage.CONSUMER_TOO_SLOW] >= 1
    assert conns[0].outcome == "error:ConsumerTooSlow"
    assert conns[1].params["cursor"] == [str(seqs[99])]  # the last event handled, re-sent and dropped


async def test_malformed_json_and_unknown_types_are_counted_and_skipped(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    for n in range(200):
        s.like(X if n % 2 else Y, post)
    faults = JetstreamFaults(malformed_every=10, unknown_type_every=15)
    async with JetstreamEmulator(faults=faults) as js:
        client = RunningStreamer(js.url, tmp_path, jetstream=True, compress=False).start()
        seqs = await publish(js, client, s)
        got = await run_to_end(client, seqs[-1])
        injected = [label for c in js.connections for label in c.injected]
    assert got == truth(s)
    skipped = {reason.value: n for reason, n in client.streamer.stats.frames_skipped.items()}
    unknown = sum(1 for label in injected if label.startswith("unknown"))
    malformed = sum(1 for label in injected if label.startswith("malformed"))
    assert unknown >= 10
    assert skipped["unknown_type"] == unknown
    assert malformed >= 15
    assert skipped["bad_json"] >= 1
    assert skipped["bad_utf8"] >= 1
    assert skipped["bad_body"] >= 1
    stats = client.streamer.stats
    ignored = stats.frames - stats.frames_candidate - stats.frames_replayed
    # a like whose record is not an object names no tracked DID any more: dropped unread
    assert ignored <= sum(1 for label in injected if label == "malformed:record_not_object")
    assert sum(skipped.values()) + ignored == unknown + malformed
