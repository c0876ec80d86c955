"""A hostile frame is a counted, logged skip in the streamer; never an exception out of the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from relay.car import commit_frame, identity_frame
from relay.mutate import DEEP, Sample, deep_record
from schemas import Event
from schemas.accounts import Account
from streamer import wire
from streamer.cursor import CursorStore
from streamer.publish import CollectingPublisher
from streamer.service import Streamer
from streamer.skiplog import SkipLog
from streamer.stats import StreamerCollector
from streamer.tracked import StreamerState, TrackedAccounts

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"


def make(tmp_path: Path, publisher: CollectingPublisher | None = None) -> Streamer:
    tracked = TrackedAccounts([Account(A, "a.example", "A")])
    return Streamer(
        tracked, StreamerState(tmp_path), CursorStore(tmp_path), publisher or CollectingPublisher()
    )


async def feed(streamer: Streamer, frames: Sequence[bytes]) -> None:
    for frame in frames:
        pending = streamer.handle(frame)
        if pending is not None:
            await pending


def skipped(streamer: Streamer, reason: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(StreamerCollector(streamer.stats))
    return registry.get_sample_value("bluepulse_streamer_frames_skipped_total", {"reason": reason})


def deep_like_frame(seq: int) -> bytes:
    """A tracked repo's commit whose record block is valid DAG-CBOR nested 200 000 deep."""
    real = commit_frame(seq, A, [("create", "app.bsky.feed.post/3k", {"text": "x", "createdAt": "2026"})])
    return Sample.of(real).with_record(deep_record(DEEP))


async def test_a_200000_deep_record_is_counted_too_deep_and_the_next_frame_still_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    streamer = make(tmp_path)
    good = commit_frame(2, X, [("create", "app.bsky.feed.like/3k", {"subject": {"uri": f"at://{A}/p/1"}})])
    with caplog.at_level(logging.WARNING, "streamer.service"):
        await feed(streamer, [deep_like_frame(1), good])
    assert skipped(streamer, "too_deep") == 1
    assert [e.kind.value for e in streamer.publisher.events] == ["like"]  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records if "too_deep" in r.getMessage()] == [
        "frame skipped reason=too_deep seq=1 detail=too_deep: record block: nesting deeper than 32"
    ]


async def test_unknown_types_and_bad_fields_are_skipped_by_reason(tmp_path: Path) -> None:
    streamer = make(tmp_path)
    unknown = identity_frame(3, A, "a.example").replace(b"#identity", b"#zzzzzzzz")
    list_did = Sample.of(identity_frame(4, A, "a.example")).with_body(did=[A])  # unhashable
    await feed(streamer, [unknown, list_did, b"\xa2at", b"\x00" * 10])
    assert skipped(streamer, "unknown_type") == 1
    assert skipped(streamer, "bad_length") == 1
    assert skipped(streamer, "bad_header") == 1
    assert streamer.publisher.events == []  # type: ignore[attr-defined]


async def test_an_unexpected_exception_is_an_internal_skip_with_one_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(wire, "frame_events", broken)
    streamer = make(tmp_path)
    with caplog.at_level(logging.WARNING, "streamer.service"):
        await feed(streamer, [identity_frame(seq, A, "a.example") for seq in (1, 2, 3)])
    assert skipped(streamer, "internal") == 3
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "reason=internal seq=1" in tracebacks[0].getMessage()


async def test_a_publish_failure_is_not_a_frame_problem(tmp_path: Path) -> None:
    class Failing(CollectingPublisher):
        async def publish(self, events: Sequence[Event]) -> None:
            raise ConnectionError("broker gone")

    streamer = make(tmp_path, Failing())
    with pytest.raises(ConnectionError):
        await feed(streamer, [identity_frame(1, A, "a.example")])
    assert sum(streamer.stats.frames_skipped.values()) == 0


async def test_cancellation_goes_through_the_safety_net(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cancelled(*_args: object, **_kwargs: object) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(wire, "frame_events", cancelled)
    with pytest.raises(asyncio.CancelledError):
        await feed(make(tmp_path), [identity_frame(1, A, "a.example")])


def test_skip_lines_are_limited_per_reason_and_say_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    skip_log = SkipLog(logging.getLogger("t.skips"), burst=2, period=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t.skips"):
        logged = [skip_log.skipped("bad_cbor", "x", lambda: 5) for _ in range(5)]
        logged.append(skip_log.skipped("too_deep", "y", lambda: None))
        now[0] = 11
        logged.append(skip_log.skipped("bad_cbor", "z", lambda: 6))
    assert logged == [True, True, False, False, False, True, True]
    assert [r.getMessage() for r in caplog.records] == [
        "frame skipped reason=bad_cbor seq=5 detail=x",
        "frame skipped reason=bad_cbor seq=5 detail=x",
        "frame skipped reason=too_deep seq=? detail=y",
        "frame skipped reason=bad_cbor seq=6 detail=z (3 more skips with this reason were not logged)",
    ]
