"""The real window with hostile variants after each frame, over a real websocket: the streamer
keeps running, emits exactly the clean window's events, and counts each hostile frame by reason."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import libipld
from prometheus_client import CollectorRegistry

from relay.capture import frame_seq
from relay.car import dag_cbor
from relay.emulator import RelayEmulator
from relay.mutate import DEEP, Sample, deep_record, deep_value
from schemas import Event
from schemas.accounts import Account
from streamer.cbor_bounds import check
from streamer.filter import DID_TOKEN
from streamer.stats import StreamerCollector, StreamerStats
from tests.integration.harness import RunningStreamer

FIVE_MIB = 5 * 1024 * 1024
TRACKED = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


ENGAGEMENT = ("app.bsky.feed.post/", "app.bsky.feed.like/", "app.bsky.feed.repost/", "app.bsky.graph.follow/")


def one_engagement_create(sample: Sample) -> bool:
    ops = sample.body.get("ops") or []
    return len(ops) == 1 and ops[0]["action"] == "create" and ops[0]["path"].startswith(ENGAGEMENT)


def hostile_variants(sample: Sample, deep_commit: bytes) -> list[bytes]:
    """Frames that must each be skipped (or yield nothing), made from one real frame."""
    frame = sample.frame
    deep = sample.with_record(deep_record(DEEP)) if one_engagement_create(sample) else deep_commit
    deep_ops = (
        b"\xa2\x63ops" + deep_value(DEEP) + dag_cbor("repo") + dag_cbor(sample.body.get("repo", TRACKED))
    )
    body_at = check(frame)  # the body's map head: one byte (fewer than 24 keys)
    header_t = frame.index(b"\x61t") + 3  # the text after the header's "t" key
    return [
        deep,  # a tracked repo's record block nested 200 000 deep
        frame[: len(frame) // 2],  # truncated
        frame[:body_at] + b"\xbb" + (2**40).to_bytes(8) + frame[body_at + 1 :],  # a map length lie
        libipld.encode_dag_cbor({"t": "#zzz", "op": 1}) + frame[body_at:],  # an unknown message type
        frame[:header_t] + b"\xff" + frame[header_t + 1 :],  # invalid UTF-8 in the message type
        sample.with_body(ops="x", seq="1", did=[1], blocks=7),  # wrong types everywhere
        libipld.encode_dag_cbor({"t": "#commit", "op": 1}) + deep_ops,  # ops nested 200 000 deep
    ]


def window_accounts(frames: Sequence[bytes]) -> list[Account]:
    dids = sorted({d.decode() for f in frames for d in DID_TOKEN.findall(f)} | {TRACKED})
    return [Account(did, f"h{i}.example", f"H{i}") for i, did in enumerate(dids)]


def stopped(run: RunningStreamer) -> bool:
    return run._task is None or run._task.done()


async def play(stream: Sequence[tuple[bytes, bool]], accounts: list[Account], tmp: Path) -> RunningStreamer:
    """Publish (frame, has_seq) pairs to a relay emulator; return the streamer once all arrived."""
    async with RelayEmulator() as relay:
        run = RunningStreamer(relay.url, tmp, accounts=accounts).start()
        await run.wait_connected()
        for frame, has_seq in stream:
            if has_seq:
                relay.publish(frame)
            else:
                relay.publish_raw(frame)
        async with asyncio.timeout(60):
            while run.streamer.stats.frames < len(stream):
                assert not stopped(run), "the streamer stopped"
                await asyncio.sleep(0.02)
        await run.wait_position(max(frame_seq(f) or 0 for f, has_seq in stream if has_seq))
        assert not stopped(run), "the streamer stopped"
        assert run.source.reconnects == 0
        await run.stop()
    return run


def scraped(stats: StreamerStats) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(StreamerCollector(stats))
    return {
        s.labels["reason"]: s.value
        for metric in registry.collect()
        if metric.name == "bluepulse_streamer_frames_skipped"
        for s in metric.samples
        if s.name.endswith("_total")
    }


async def test_hostile_variants_after_every_real_frame_change_no_event(
    real_frames: list[bytes], tmp_path: Path
) -> None:
    accounts = window_accounts(real_frames)  # every DID tracked: every frame reaches the decoders
    samples = [Sample.of(f) for f in real_frames]
    deep_commit = next(s for s in samples if one_engagement_create(s)).with_record(deep_record(DEEP))
    clean = await play([(f, True) for f in real_frames], accounts, tmp_path / "clean")
    stream: list[tuple[bytes, bool]] = []
    for i, sample in enumerate(samples):
        stream.append((sample.frame, True))
        stream += [(bad, False) for bad in hostile_variants(sample, deep_commit)]
        if i == 75:
            stream.append((sample.with_body(blobs=[bytes(FIVE_MIB)]), False))  # past max_frame_bytes
    hostile = await play(stream, accounts, tmp_path / "hostile")

    events: list[Event] = hostile.events
    assert len(clean.events) == 280
    assert events == clean.events
    assert hostile.cursor.load() == clean.cursor.load() == frame_seq(real_frames[-1])
    skips = scraped(hostile.streamer.stats)
    assert skips["too_deep"] == 2 * len(real_frames)
    assert skips["bad_length"] == 2 * len(real_frames)
    assert skips["unknown_type"] == len(real_frames)
    assert skips["bad_cbor"] == len(real_frames)
    assert skips["oversized"] == 1
    assert skips.get("internal", 0) == 0
