"""SIGKILL of `bluepulse run` mid-stream, then a restart: the same totals as an uninterrupted run."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path
from typing import Any

import duckdb

from relay.emulator import RelayEmulator
from relay.script import FrameScript
from relay.server import play
from tests.integration.harness import A, B
from tests.integration.test_run_pipeline import RunProcess
from tests.support.ports import free_port

TOTALS = "SELECT * EXCLUDE (handle, name) FROM account_totals ORDER BY did"
POSTS = "SELECT uri, likes, reposts, replies, quotes FROM top_posts ORDER BY uri"
PLAY_RATE = 2500.0  # frames/s: the busy day lasts about a second, room for a kill mid-stream


def busy_day(frames: int = 2500, seed: int = 3) -> FrameScript:
    rng = random.Random(seed)
    people = [
        f"did:plc:{''.join(rng.choice('abcdefghijklmnopqrstuvwxyz234567') for _ in range(24))}"
        for _ in range(200)
    ]
    s = FrameScript()
    posts = [s.post(rng.choice((A, B)), f"post {i}") for i in range(12)]
    undoable: list[str] = []
    while len(s.frames) < frames:
        roll, actor = rng.random(), rng.choice(people)
        if roll < 0.45:
            undoable.append(s.like(actor, rng.choice(posts)))
        elif roll < 0.6:
            undoable.append(s.repost(actor, rng.choice(posts)))
        elif roll < 0.7:
            undoable.append(s.follow(actor, rng.choice((A, B))))
        elif roll < 0.8 and undoable:
            s.delete(undoable.pop(rng.randrange(len(undoable))))
        elif roll < 0.85:
            s.post(actor, "réponse", reply_to=rng.choice(posts))
        else:
            s.like(actor, f"at://{rng.choice(people)}/app.bsky.feed.post/3kx")  # background
    return s


def totals(db: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(TOTALS).fetchall(), con.execute(POSTS).fetchall()


async def run_to_end(tmp: Path, s: FrameScript, *, kill_after_events: int | None) -> Path:
    tmp.mkdir()
    async with RelayEmulator() as relay, RunProcess(tmp, relay.url, free_port()) as run:
        await run.wait_metric("bluepulse_streamer_frames_received_total")
        async with asyncio.timeout(20):
            await relay.wait_for_connections(1)
        player = asyncio.create_task(play(relay, s.frames, rate=PLAY_RATE))
        if kill_after_events is not None:
            while _applied(await asyncio.to_thread(_scrape, run)) < kill_after_events:
                await asyncio.sleep(0.02)
            assert run.stop(signal.SIGKILL) == -signal.SIGKILL
            assert not player.done(), "the stream ended before the kill: make it longer"
            run.start()
        await player
        await run.wait_metric(f"bluepulse_streamer_last_seq {float(s.seq)}", timeout=60)
        assert run.stop() == 0
    return run.db


def _scrape(run: RunProcess) -> str:
    try:
        return run.metrics()
    except OSError:  # a scrape racing the process start
        return ""


def _applied(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("bluepulse_aggregator_events_applied_total "):
            return float(line.split()[1])
    return 0.0


async def test_sigkill_mid_stream_then_restart_ends_with_the_uninterrupted_totals(tmp_path: Path) -> None:
    s = busy_day()
    reference = await run_to_end(tmp_path / "clean", s, kill_after_events=None)
    crashed = await run_to_end(tmp_path / "killed", s, kill_after_events=random.randint(200, 600))
    expected = totals(reference)
    assert expected[0][0][1] > 0  # A posted: the scenario reached the store
    assert totals(crashed) == expected
