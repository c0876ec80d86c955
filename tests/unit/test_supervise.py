"""Supervised background jobs: a failing checkpoint is counted, retried and recovers; one that
never recovers stops the streamer with one clear error; the aggregator's snapshot likewise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aggregator.consume import SourceBatch
from aggregator.service import Aggregator
from aggregator.store import Store
from relay.script import FrameScript
from schemas import Event
from streamer.cursor import CursorStore
from streamer.service import Streamer
from streamer.source import FrameHandler
from streamer.tracked import StreamerState, TrackedAccounts
from tests.integration.harness import ACCOUNTS, A, X
from transport.backoff import Backoff
from transport.errors import TaskFailedError
from transport.supervise import Supervisor

FAST = Backoff(initial=0.01, maximum=0.02)


class FlakyPublisher:
    """Flush fails `failures` times (None: always), then works."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.events: list[Event] = []
        self.flushes = 0

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def mark(self, seq: int, source: str = "relay") -> None:
        return None

    async def flush(self) -> None:
        self.flushes += 1
        if self.failures is None or self.flushes <= self.failures:
            raise OSError(22, "Invalid argument")

    async def close(self) -> None:
        return None


class ScriptSource:
    """Feeds the frames once, then stays connected and silent."""

    reconnects = 0

    def __init__(self, frames: Sequence[bytes]) -> None:
        self.frames = frames

    async def run(self, handler: FrameHandler, cursor: Callable[[], int | None]) -> None:
        for frame in self.frames:
            pending = handler(frame)
            if pending is not None:
                await pending
        await asyncio.Event().wait()


def make_streamer(tmp: Path, publisher: FlakyPublisher, supervisor: Supervisor) -> Streamer:
    state = StreamerState(tmp)
    return Streamer(TrackedAccounts(ACCOUNTS), state, CursorStore(tmp), publisher, supervisor=supervisor)


def scraped(supervisor: Supervisor) -> str:
    registry = CollectorRegistry()
    registry.register(supervisor.collector())
    return generate_latest(registry).decode()


async def test_a_checkpoint_that_fails_twice_is_counted_retried_and_saves_the_cursor(tmp_path: Path) -> None:
    s = FrameScript()
    s.like(X, s.post(A, "Vaccination"))
    supervisor = Supervisor(backoff=FAST)
    streamer = make_streamer(tmp_path, FlakyPublisher(failures=2), supervisor)
    running = asyncio.create_task(streamer.run(ScriptSource(s.frames), checkpoint_interval=0.01))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            while CursorStore(tmp_path).load() != s.seq:
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert supervisor.errors["checkpoint"] == 2
    assert 'bluepulse_task_errors_total{task="checkpoint"} 2.0' in scraped(supervisor)
    assert streamer.stats.last_seq == s.seq


async def test_a_checkpoint_that_never_recovers_stops_the_streamer_with_one_clear_error(
    tmp_path: Path,
) -> None:
    s = FrameScript()
    s.post(A, "Vaccination")
    supervisor = Supervisor(backoff=FAST, max_failures=3)
    streamer = make_streamer(tmp_path, FlakyPublisher(failures=None), supervisor)
    with pytest.raises(TaskFailedError) as caught:
        async with asyncio.timeout(10):
            await streamer.run(ScriptSource(s.frames), checkpoint_interval=0.01)  # type: ignore[arg-type]
    assert (
        str(caught.value)
        == "checkpoint failed 3 times in a row, last error: OSError: [Errno 22] Invalid argument"
    )
    assert supervisor.errors["checkpoint"] == 3
    assert CursorStore(tmp_path).load() is None


class IdleSource:
    async def next_batch(self) -> SourceBatch | None:
        await asyncio.sleep(0.005)
        return None

    async def ack(self, batch: SourceBatch) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_snapshot_that_keeps_failing_stops_the_aggregator(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the snapshot directory should be")
    supervisor = Supervisor(backoff=FAST, max_failures=3)
    with Store.open(tmp_path / "store.duckdb") as store:
        aggregator = Aggregator(
            store,
            IdleSource(),
            snapshot_path=blocker / "snap.duckdb",
            snapshot_interval=0.01,
            supervisor=supervisor,
        )
        with pytest.raises(
            TaskFailedError, match=r"^snapshot failed 3 times in a row, last error: StoreError: "
        ):
            async with asyncio.timeout(10):
                await aggregator.run()
    assert 'bluepulse_task_errors_total{task="snapshot"} 3.0' in scraped(supervisor)
