"""Switching a running deployment relay → Jetstream → relay: one state dir, one DuckDB file,
real `bluepulse run` processes; totals equal the scenario's ground truth.

Jetstream starts 10 s before where the relay stood (its events of those seconds were
counted already); the relay comes back at its own old cursor and replays everything
Jetstream gave. The aggregator drops both overlaps by identity (design §3-4), so nothing is
counted twice and nothing new is lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb

from relay.emulator import RelayEmulator
from relay.jetstream_emulator import JetstreamEmulator
from relay.script import FrameScript
from streamer.cursor import source_id
from tests.integration.harness import A, B, X, Y
from tests.integration.test_run_pipeline import TOTALS_SQL, write_accounts
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, metrics_text

W = "did:plc:wwwwwwwwwwwwwwwwwwwwwwww"  # untracked: engagement given to A and B
NOISE = f"at://{Y}/app.bsky.feed.post/3kzz"  # a post nobody tracked wrote

EXPECTED = [
    # did, handle, posts, likes, reposts, replies, quotes, follows_gained, follows_lost
    (A, "chu-switch.fr", 2, 2, 1, 1, 0, 1, 1),
    (B, "ars.fr", 1, 1, 1, 0, 0, 1, 0),
]


def scenario() -> tuple[FrameScript, int, int]:
    """Frames one second apart; (script, frames read from the relay first, frames Jetstream
    has when the deployment switches to it). The last seconds before each switch concern
    tracked accounts, so each overlap holds events."""
    s = FrameScript()
    post_a, post_b = s.post(A, "annonce"), s.post(B, "alerte")
    for _ in range(10):
        s.like(W, NOISE)
    like_x = s.like(X, post_a)
    s.like(Y, post_a)
    s.repost(X, post_b)
    follow_x = s.follow(X, A)
    s.post(Y, "merci", reply_to=post_a)
    first = len(s.frames)  # 1. relay
    s.like(W, post_b)
    s.delete(like_x)  # un-like, resolved from the path the relay remembered
    s.follow(Y, B)
    s.handle(A, "chu-switch.fr")
    s.status(B, False, "deactivated")
    s.repost(Y, post_a)
    second = len(s.frames)  # 2. Jetstream
    s.like(W, post_a)
    s.delete(follow_x)  # unfollow
    s.post(A, "nouveau")
    for _ in range(3):
        s.like(W, NOISE)
    return s, first, second  # 3. relay again


class SwitchRun(ChildProcess):
    """`bluepulse run` on the relay or on Jetstream, with a shared state dir and DuckDB file."""

    def __init__(self, tmp: Path, step: str, source_args: list[str]) -> None:
        self.db = tmp / "bluepulse.duckdb"
        self.port = free_port()
        argv = bluepulse_argv(
            "run",
            *source_args,
            "--accounts",
            str(write_accounts(tmp / "accounts.csv")),
            "--state-dir",
            str(tmp / "state"),
            "--db",
            str(self.db),
            "--metrics-port",
            str(self.port),
            "--checkpoint-interval",
            "0.1",
            "--snapshot-interval",
            "0.2",
        )
        super().__init__(f"run-{step}", argv, tmp / f"run-{step}.log")

    async def wait_metric(self, needle: str, timeout: float = 30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    text = await asyncio.to_thread(metrics_text, self.port)
                    if needle in text:
                        return text
                except OSError:
                    pass
                assert self.running, self.output()
                await asyncio.sleep(0.1)


def counter(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


async def run_until_committed(run: SwitchRun, source: str, last_seq: int) -> str:
    """Wait until DuckDB committed `source` up to `last_seq`, stop cleanly; the last metrics."""
    try:
        metrics = await run.wait_metric(
            f'bluepulse_aggregator_last_seq{{source="{source}"}} {float(last_seq)}'
        )
        assert run.stop() == 0, run.output()
    finally:
        run.close()
    return metrics


async def test_relay_then_jetstream_then_relay_counts_every_event_once(tmp_path: Path) -> None:
    s, first, second = scenario()
    frames = s.frames
    relay_seq = first  # FrameScript numbers frames from 1

    # 1. the relay, live: the first frames
    async with RelayEmulator() as relay:
        run = SwitchRun(tmp_path, "relay", ["--relay", relay.url]).start()
        await run.wait_metric("bluepulse_streamer_frames_received_total")
        async with asyncio.timeout(20):
            await relay.wait_for_connections(1)
        for frame in frames[:first]:
            relay.publish(frame)
        metrics = await run_until_committed(run, "relay", relay_seq)
    assert counter(metrics, "bluepulse_aggregator_events_deduplicated_total") == 0

    # 2. Jetstream, which has those frames and the next ones: starts 10 s before the relay stood
    async with JetstreamEmulator() as js:
        seqs = [seq for frame in frames[:second] for seq in js.publish_relay_frame(frame)]
        jet = source_id(js.url)
        run = SwitchRun(tmp_path, "jetstream", ["--jetstream", js.url]).start()
        metrics = await run_until_committed(run, jet, seqs[-1])
    overlap = counter(metrics, "bluepulse_aggregator_events_deduplicated_total")
    assert overlap > 0  # the 10 s before the switch, given by the relay already

    # 3. back to the relay: it resumes at its own cursor and replays what Jetstream gave
    async with RelayEmulator() as relay:
        for frame in frames:
            relay.publish(frame)
        run = SwitchRun(tmp_path, "relay-again", ["--relay", relay.url]).start()
        metrics = await run_until_committed(run, "relay", len(frames))
    assert counter(metrics, "bluepulse_aggregator_events_deduplicated_total") > 0

    with duckdb.connect(str(tmp_path / "bluepulse.duckdb"), read_only=True) as con:
        totals = con.execute(TOTALS_SQL).fetchall()
        status = con.execute("SELECT active, status FROM accounts WHERE did = ?", [B]).fetchone()
        changes = con.execute("SELECT count(*) FROM status_history").fetchone()
        sources = con.execute("SELECT source, count(*) FROM events GROUP BY ALL ORDER BY ALL").fetchall()
        committed = con.execute("SELECT source, committed_seq FROM source_positions ORDER BY ALL").fetchall()
    assert totals == EXPECTED
    assert status == (False, "deactivated")
    assert changes == (1,)  # the relay's replay of the status change was recognised
    assert {name for name, _ in sources} == {"relay", jet}
    assert committed == sorted([(jet, seqs[-1]), ("relay", len(frames))])
