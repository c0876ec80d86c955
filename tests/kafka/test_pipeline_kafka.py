"""The Kafka pipeline end to end on the real broker, each half a real process as a user starts it:
relay emulator → `bluepulse streamer --kafka` → 3-partition topic → `bluepulse aggregator --kafka`
→ DuckDB.

Every run ends with exactly the totals of `bluepulse run` (embedded mode) on the same frames,
whatever was cut mid-stream: the streamer (SIGKILL), the aggregator (SIGKILL), the broker
(stop, pause, start); two aggregators in one group split the partitions and their files sum to
the same totals.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb
import pytest

from aggregator.consume_kafka import EXIT_AFTER_COMMIT_ENV
from bluepulse.config import snapshot_path
from relay.emulator import RelayEmulator
from relay.script import FrameScript
from relay.server import play
from tests.integration.test_run_crash import totals
from tests.integration.test_run_pipeline import write_accounts
from tests.kafka import processes
from tests.kafka.processes import BluepulseProcess, Metrics
from tests.kafka.test_transport import end_offsets
from tests.support.processes import clean_env

if TYPE_CHECKING:
    from tests.support.kafka_broker import BrokerControl

TopicFactory = Callable[..., Awaitable[str]]
PARTITIONS = 3
LAST_SEQ = "bluepulse_streamer_last_seq"
RECEIVED = "bluepulse_streamer_frames_received_total"
UNSAVED = 100  # frames the streamer handled past its saved cursor when it is killed
APPLIED = "bluepulse_aggregator_events_applied_total"
REPLAYED = "bluepulse_aggregator_events_replayed_total"
LAG = "bluepulse_aggregator_consumer_lag"
# The counters of account_totals (what sums across files); the rest describes the account.
COUNTERS_SQL = (
    "SELECT * EXCLUDE (handle, name, category, region, followers, active, status) "
    "FROM account_totals ORDER BY did"
)
POST_COUNTS_SQL = "SELECT uri, likes, reposts, replies, quotes FROM top_posts ORDER BY uri"
FAST = 2500.0  # frames/s: the day in about a second
SLOW = 500.0  # frames/s: ~5 s for the day, room for a fault mid-stream


@dataclass(frozen=True)
class Site:
    """Where one test's pipeline runs: its directory, the broker, its own topic and group."""

    tmp: Path
    bootstrap: str
    topic: str
    group: str


@pytest.fixture
async def site(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> Site:
    return Site(tmp_path, kafka_bootstrap, await kafka_topic_factory(PARTITIONS), kafka_group_id)


class Pipeline:
    """Relay emulator in this process; streamer and aggregator(s) as real processes."""

    def __init__(self, site: Site, aggregators: int = 1, partitions: int = PARTITIONS) -> None:
        self.tmp, self.bootstrap, self.topic = site.tmp, site.bootstrap, site.topic
        self.partitions = partitions  # the topic's count (the site's topic was created with it)
        self.relay = RelayEmulator()
        self.accounts = write_accounts(site.tmp / "accounts.csv")
        self.aggregators = [self._aggregator(site, f"aggregator{n}") for n in range(1, aggregators + 1)]
        self.streamer: BluepulseProcess | None = None
        self.player: asyncio.Task[int] | None = None
        self.last_metrics: dict[str, Metrics] = {}  # each process's /metrics just before SIGTERM

    def _aggregator(self, site: Site, name: str) -> BluepulseProcess:
        return processes.aggregator(
            site.tmp,
            name,
            accounts=self.accounts,
            bootstrap=site.bootstrap,
            topic=site.topic,
            group=site.group,
            partitions=self.partitions,
        )

    async def __aenter__(self) -> Pipeline:
        await self.relay.start()
        self.streamer = processes.streamer(
            self.tmp,
            relay_url=self.relay.url,
            accounts=self.accounts,
            bootstrap=self.bootstrap,
            topic=self.topic,
            partitions=self.partitions,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.player is not None:
            self.player.cancel()
        for proc in [self.stream, *self.aggregators]:
            proc.close()
        await self.relay.close()

    @property
    def stream(self) -> BluepulseProcess:
        assert self.streamer is not None
        return self.streamer

    @property
    def aggregator(self) -> BluepulseProcess:
        return self.aggregators[0]

    async def start(self) -> None:
        """Aggregators first, then the streamer; returns once it is connected to the relay."""
        for proc in [*self.aggregators, self.stream]:
            proc.start()
        for proc in [*self.aggregators, self.stream]:
            await proc.wait_up()
        async with asyncio.timeout(20):
            await self.relay.wait_for_connections(1)

    def play(self, frames: Sequence[bytes], rate: float = FAST) -> asyncio.Task[int]:
        self.player = asyncio.create_task(play(self.relay, frames, rate=rate))
        return self.player

    async def finish(self, last_seq: int) -> list[Path]:
        """Wait until every frame is in Kafka and every message in DuckDB; stop all (exit 0)."""
        assert self.player is not None
        await asyncio.wait_for(self.player, 30)
        await self.stream.wait_for(f"{LAST_SEQ} {last_seq}", lambda m: m.get(LAST_SEQ) == last_seq, 60)
        held = await end_offsets(self.bootstrap, self.topic, self.partitions)
        ends = {f"{self.topic}/{p}": n for p, n in held.items() if n > 0}  # an empty one has no position
        dbs = [proc.db for proc in self.aggregators if proc.db is not None]
        try:
            async with asyncio.timeout(60):
                while (stored := await asyncio.to_thread(stored_positions, dbs)) != ends:
                    for proc in self.aggregators:
                        assert proc.running, proc.tail()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            tails = "\n".join(p.tail() for p in self.aggregators)
            raise AssertionError(f"stored positions {stored} never reached {ends}\n{tails}") from None
        for proc in [self.stream, *self.aggregators]:
            self.last_metrics[proc.name] = await asyncio.to_thread(proc.scrape)
            assert proc.terminate() == 0, proc.tail()
        return dbs


def positions(db: Path) -> dict[str, int]:
    """Next offset per partition committed in one store file."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT partition, next_offset FROM positions").fetchall()
    return {str(name): int(offset or 0) for name, offset in rows}


def stored_positions(dbs: Sequence[Path]) -> dict[str, int]:
    """Next offset per partition, the furthest any running aggregator's snapshot holds."""
    merged: dict[str, int] = {}
    for db in dbs:
        try:
            found = positions(snapshot_path(db))
        except duckdb.Error:  # no snapshot yet
            continue
        for name, offset in found.items():
            merged[name] = max(merged.get(name, 0), offset)
    return merged


def counter_sums(dbs: Sequence[Path]) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Per-account counters and per-post counts, summed over several store files."""
    accounts: dict[str, Counter[str]] = {}
    posts: dict[str, Counter[str]] = {}
    for db in dbs:
        with duckdb.connect(str(db), read_only=True) as con:
            for sql, out in ((COUNTERS_SQL, accounts), (POST_COUNTS_SQL, posts)):
                result = con.execute(sql)
                names = [d[0] for d in result.description or []]
                for key, *values in result.fetchall():
                    out.setdefault(str(key), Counter()).update(dict(zip(names[1:], values, strict=True)))
    return accounts, posts


def event_count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def applied(metrics: Metrics) -> float:
    return metrics.get(APPLIED, 0.0)


def assigned(metrics: Metrics) -> set[str]:
    return {series for series in metrics if series.startswith(LAG + "{")}


@pytest.mark.timeout(90)
async def test_kafka_mode_ends_with_exactly_the_totals_of_embedded_mode(
    site: Site, day: FrameScript, embedded: Path
) -> None:
    expected = totals(embedded)
    assert expected[0][0][1], "the reference run counted no post of A"
    assert expected[1], "the reference run counted no post"
    async with Pipeline(site) as pipe:
        await pipe.start()
        pipe.play(day.frames)
        [db] = await pipe.finish(day.seq)
    assert totals(db) == expected


@pytest.mark.timeout(90)
async def test_streamer_sigkill_mid_stream_then_restart_ends_with_the_same_totals(
    site: Site, day: FrameScript, embedded: Path
) -> None:
    point = random.randint(day.seq // 10, day.seq // 2)

    def past_its_cursor(m: Metrics) -> bool:  # frames n (seq n here) handled, cursor saved well before
        return m.get(RECEIVED, 0) >= point and 0 < m.get(LAST_SEQ, 0) <= m[RECEIVED] - UNSAVED

    async with Pipeline(site) as pipe:
        await pipe.start()
        player = pipe.play(day.frames, SLOW)
        await pipe.stream.wait_for(f"{UNSAVED} frames past the cursor after seq {point}", past_its_cursor)
        pipe.stream.kill()
        assert not player.done(), f"the day was over before the kill at seq {point}: make it longer"
        saved = int((site.tmp / "state" / "cursor").read_text())
        pipe.stream.start()
        [db] = await pipe.finish(day.seq)
        held = sum((await end_offsets(site.bootstrap, site.topic)).values())
    assert [c.cursor for c in pipe.relay.connections] == [None, saved]  # the restart asked for the gap
    assert held > event_count(embedded), "no event was published twice: the kill proved nothing"
    assert totals(db) == totals(embedded)


@pytest.mark.timeout(90)
async def test_aggregator_sigkill_mid_stream_then_restart_ends_with_the_same_totals(
    site: Site, day: FrameScript, embedded: Path
) -> None:
    point = random.randint(100, 700)
    async with Pipeline(site) as pipe:
        await pipe.start()
        player = pipe.play(day.frames, SLOW)
        await pipe.aggregator.wait_for(f"{APPLIED} >= {point}", lambda m: applied(m) >= point)
        pipe.aggregator.kill()
        assert not player.done(), f"the day was over before the kill at {point} events: make it longer"
        pipe.aggregator.start()
        [db] = await pipe.finish(day.seq)
    second_life = pipe.last_metrics[pipe.aggregator.name]
    assert applied(second_life) > 0
    # the restart sought to the offsets DuckDB committed: nothing already applied came back
    assert second_life.get(REPLAYED) == 0
    assert totals(db) == totals(embedded)


@pytest.mark.timeout(90)
async def test_aggregator_exit_between_its_offset_commit_and_commit_then_restart_loses_nothing(
    site: Site, day: FrameScript, embedded: Path
) -> None:
    """The group's commit is past the file (the batch is in Kafka's books, not in DuckDB): the
    restarted aggregator, the last committer, resumes at its file's offsets (handoff.py)."""
    async with Pipeline(site) as pipe:
        pipe.aggregator.env = {**clean_env(), EXIT_AFTER_COMMIT_ENV: "3"}
        await pipe.start()
        player = pipe.play(day.frames, SLOW)
        async with asyncio.timeout(30):
            while pipe.aggregator.running:
                await asyncio.sleep(0.05)
        assert not player.done(), "the day was over before the exit: make it longer"
        assert "exiting between the offset commit and COMMIT" in pipe.aggregator.tail()
        pipe.aggregator.env = None
        pipe.aggregator.start()
        [db] = await pipe.finish(day.seq)
    second_life = pipe.last_metrics[pipe.aggregator.name]
    assert second_life.get(REPLAYED) == 0
    assert totals(db) == totals(embedded)


@pytest.mark.timeout(90)
async def test_broker_restart_mid_stream_ends_with_the_same_totals_and_no_process_exits(
    site: Site, kafka_restart: BrokerControl, day: FrameScript, embedded: Path
) -> None:
    point = random.randint(100, 700)
    async with Pipeline(site) as pipe:
        await pipe.start()
        player = pipe.play(day.frames, SLOW)
        await pipe.aggregator.wait_for(f"{APPLIED} >= {point}", lambda m: applied(m) >= point)
        await kafka_restart.stop()
        assert not player.done(), f"the day was over before the broker stopped at {point} events"
        await asyncio.sleep(2)
        assert pipe.stream.running, pipe.stream.tail()
        assert pipe.aggregator.running, pipe.aggregator.tail()
        await kafka_restart.start()
        [db] = await pipe.finish(day.seq)  # fails if either process exited meanwhile
    assert (pipe.stream.starts, pipe.aggregator.starts) == (1, 1)
    assert totals(db) == totals(embedded)


@pytest.mark.timeout(90)
async def test_two_aggregators_in_one_group_split_the_partitions_and_sum_to_the_same_totals(
    site: Site, day: FrameScript, embedded: Path
) -> None:
    async with Pipeline(site, aggregators=2) as pipe:
        await pipe.start()
        shares: list[set[str]] = []
        async with asyncio.timeout(30):  # both members joined and the group settled
            while len(shares) != 2 or sum(map(len, shares)) != PARTITIONS or not all(shares):
                shares = [assigned(await asyncio.to_thread(p.scrape)) for p in pipe.aggregators]
                await asyncio.sleep(0.2)
        assert set.union(*shares) == {f'{LAG}{{partition="{site.topic}/{p}"}}' for p in range(PARTITIONS)}
        pipe.play(day.frames)
        dbs = await pipe.finish(day.seq)
    for db, proc in zip(dbs, pipe.aggregators, strict=True):
        assert any(positions(db).values()), f"{db.name} stored no consumed partition"
        assert applied(pipe.last_metrics[proc.name]) > 0, f"{proc.name} applied nothing"
    assert counter_sums(dbs) == counter_sums([embedded])
