"""Two aggregators in one consumer group, one of them SIGKILLed and restarted mid-stream, on the
real broker: relay emulator → `bluepulse streamer` → 4-partition topic → two `bluepulse
aggregator` processes, each with its own DuckDB file.

The partitions of the killed member move to the survivor (which applies their backlog into its
own file) and come back on the restart. At the end `bluepulse sql --db a --db b` equals an
uninterrupted `bluepulse run` of the same frames, the two /metrics sum to that SQL, and each
non-additive gauge of an account is exported by one aggregator: the owner of its partition.

The second test kills an aggregator in the one window that matters: right after it committed a
batch's offsets to the group and before DuckDB's COMMIT (a fault-injection variable makes it exit
there). Its partitions' next owner starts at that commit; the restarted member finds, in the
commit metadata, the messages its file owes and applies them (aggregator/handoff.py): the union
is exact again, nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any, Final

import duckdb
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from aggregator.consume_kafka import EXIT_AFTER_COMMIT_ENV, key_partition
from aggregator.counters import COUNTERS
from relay.script import FrameScript
from tests.kafka.processes import BluepulseProcess
from tests.kafka.test_pipeline_kafka import (
    APPLIED,
    COUNTERS_SQL,
    FAST,
    LAG,
    LAST_SEQ,
    SLOW,
    Pipeline,
    Site,
    TopicFactory,
    applied,
    positions,
    stored_positions,
)
from tests.kafka.test_transport import end_offsets
from tests.support.processes import bluepulse_argv, clean_env

PARTITIONS: Final = 4
OWNED: Final = "bluepulse_aggregator_owned_partitions"
OWED: Final = "bluepulse_aggregator_messages_owed_total"
UNVERIFIED: Final = "bluepulse_aggregator_handoffs_unverified_total"
# families that are a state or a ratio: exported by the account's owner only
SIGNALS: Final = (
    "viral_ratio",
    "hottest_post_interactions_1h",
    "activity_ratio",
    "posts_1h",
    "reposts_made_1h",
    "deletes_1h",
    "odd_hour_posts_1h",
    "novel_reposts_24h",
    "handle_changes_24h",
    "status_changes_24h",
    "active",
    "pds_changes_24h",
    "signing_key_changes_24h",
)
ACCOUNT_SQL: Final = "SELECT did, handle, category FROM account_totals ORDER BY did"


@pytest.fixture
async def site4(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic_factory: TopicFactory, kafka_group_id: str
) -> Site:
    return Site(tmp_path, kafka_bootstrap, await kafka_topic_factory(PARTITIONS), kafka_group_id)


async def group_offsets(bootstrap: str, group: str) -> dict[str, int]:
    """The group's committed offsets, read without joining it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {f"{tp.topic}/{tp.partition}": meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def settle(pipe: Pipeline, group: str, timeout: float = 30.0) -> dict[str, int]:
    """Wait until every message in the topic is applied (snapshots) and committed to the group."""
    dbs = [p.db for p in pipe.aggregators if p.db is not None and p.running]
    state: tuple[Any, ...] = ()
    try:
        async with asyncio.timeout(timeout):
            while True:
                held = await end_offsets(pipe.bootstrap, pipe.topic, PARTITIONS)
                ends = {f"{pipe.topic}/{p}": n for p, n in held.items() if n > 0}
                stored = await asyncio.to_thread(stored_positions, dbs)
                committed = await group_offsets(pipe.bootstrap, group)
                state = (ends, stored, committed)
                if stored == ends and committed == ends:
                    return ends
                await asyncio.sleep(0.1)
    except TimeoutError:
        tails = "\n".join(p.tail() for p in pipe.aggregators)
        raise AssertionError(f"never settled: ends, stored, committed = {state}\n{tails}") from None


async def shares(pipe: Pipeline, total: int, members: int, timeout: float = 40.0) -> list[float]:
    """Wait until `members` running aggregators hold every partition between them."""
    owned: list[float] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                scraped = [await asyncio.to_thread(p.scrape) for p in pipe.aggregators if p.running]
                owned = [m.get(OWNED, 0.0) for m in scraped]
                if sum(owned) == total and sum(1 for n in owned if n) == members:
                    return owned
                await asyncio.sleep(0.2)
    except TimeoutError:
        tails = "\n".join(p.tail() for p in pipe.aggregators)
        raise AssertionError(f"partitions held {owned}, not {total} over {members}\n{tails}") from None


def sql_rows(dbs: list[Path], query: str) -> list[dict[str, Any]]:
    argv = bluepulse_argv("sql", *(a for db in dbs for a in ("--db", str(db))), "--format", "json", query)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def reference_rows(db: Path, query: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        result = con.execute(query)
        names = [d[0] for d in result.description or []]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


@pytest.mark.timeout(120)
async def test_two_aggregators_one_killed_and_restarted_sum_to_the_ground_truth(
    site4: Site, day: FrameScript, embedded: Path
) -> None:
    frames = day.frames
    assert day.seq == len(frames), "the cut points below take seq n for frame n"
    first, second = len(frames) // 3, 2 * len(frames) // 3
    async with Pipeline(site4, aggregators=2, partitions=PARTITIONS) as pipe:
        survivor, victim = pipe.aggregators
        await pipe.start()
        await shares(pipe, PARTITIONS, 2)
        await asyncio.wait_for(pipe.play(frames[:first], FAST), 30)
        await pipe.stream.wait_for(f"{LAST_SEQ} {first}", lambda m: m.get(LAST_SEQ) == first, 30)
        await settle(pipe, site4.group)
        assert applied(victim.scrape()) > 0, "the victim applied nothing before the kill"
        victim.kill()  # quiet: its last batch is in DuckDB and in the group's commit
        assert victim.db is not None
        committed = await group_offsets(site4.bootstrap, site4.group)
        kept = positions(victim.db)
        assert kept, "the victim stored no position"
        assert {name: committed.get(name) for name in kept} == kept  # nothing applied but uncommitted

        player = pipe.play(frames[first:second], FAST)  # its partitions' backlog grows meanwhile
        await shares(pipe, PARTITIONS, 1)  # the session timed out: the survivor holds all four
        await asyncio.wait_for(player, 30)
        await pipe.stream.wait_for(f"{LAST_SEQ} {second}", lambda m: m.get(LAST_SEQ) == second, 30)
        await settle(pipe, site4.group)

        victim.start()
        await shares(pipe, PARTITIONS, 2)  # rebalanced again: the restarted member has its share back
        pipe.play(frames[second:], FAST)
        dbs = await pipe.finish(day.seq)

    assert survivor.db is not None
    assert set(positions(survivor.db)) == set(committed), "the survivor never took the victim's partitions"
    assert applied(pipe.last_metrics[victim.name]) > 0, "the restarted victim applied nothing"

    # one SQL surface over both files: the ground truth of an uninterrupted embedded run
    union = sql_rows(dbs, COUNTERS_SQL)
    assert union == reference_rows(embedded, COUNTERS_SQL)
    assert any(row["likes"] for row in union)

    # Prometheus sums the two /metrics: each per-account counter equals the SQL number
    scraped = [pipe.last_metrics[p.name] for p in pipe.aggregators]
    accounts = sql_rows(dbs, ACCOUNT_SQL)
    totals = {row["did"]: row for row in union}
    for account in accounts:
        labels = f'{{account="{account["handle"]}",category="{account["category"]}"}}'
        for counter in COUNTERS:
            if counter.metric_name is None:
                continue
            series = counter.metric_name + labels
            assert all(series in m for m in scraped), f"{series}: every aggregator exports its share"
            summed = sum(m[series] for m in scraped)
            assert summed == totals[account["did"]][counter.name], series

        # a state or a ratio: exported once, by the aggregator that holds the account's partition
        partition = f'{LAG}{{partition="{site4.topic}/{key_partition(account["did"].encode(), PARTITIONS)}"}}'
        owners = [m for m in scraped if partition in m]
        assert len(owners) == 1, f"{partition} held by {len(owners)} aggregators"
        owner_only = [f"bluepulse_account_followers{labels}"]
        owner_only += [f'bluepulse_account_{name}{{account="{account["handle"]}"}}' for name in SIGNALS]
        for series in owner_only:
            assert [series in m for m in scraped] == [m is owners[0] for m in scraped], series
    assert sum(m[OWNED] for m in scraped) == PARTITIONS
    assert all(m.get(APPLIED, 0) > 0 for m in scraped)


async def exited(proc: BluepulseProcess, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while proc.running:
            await asyncio.sleep(0.05)


@pytest.mark.timeout(150)
async def test_a_crash_between_the_offset_commit_and_the_store_commit_loses_and_doubles_nothing(
    site4: Site, day: FrameScript, embedded: Path
) -> None:
    frames = day.frames
    first, second = len(frames) // 3, 2 * len(frames) // 3
    async with Pipeline(site4, aggregators=2, partitions=PARTITIONS) as pipe:
        victim = pipe.aggregators[1]
        victim.env = {**clean_env(), EXIT_AFTER_COMMIT_ENV: "2"}  # its 2nd batch: in Kafka, not in DuckDB
        await pipe.start()
        await shares(pipe, PARTITIONS, 2)
        await asyncio.wait_for(pipe.play(frames[:first], SLOW), 30)
        await exited(victim)
        assert "exiting between the offset commit and COMMIT" in victim.tail(), victim.tail()
        assert victim.db is not None
        committed = await group_offsets(site4.bootstrap, site4.group)
        kept = positions(victim.db)
        behind = {
            name: committed[name] - kept.get(name, 0)
            for name in committed
            if committed[name] > kept.get(name, 0)
        }
        assert behind, f"the group's commit {committed} is not past the victim's file {kept}"

        player = pipe.play(frames[first:second], FAST)
        await shares(pipe, PARTITIONS, 1)  # the survivor starts the victim's partitions at the commit
        await asyncio.wait_for(player, 30)
        await pipe.stream.wait_for(f"{LAST_SEQ} {second}", lambda m: m.get(LAST_SEQ) == second, 30)

        victim.env = None
        victim.start()
        await shares(pipe, PARTITIONS, 2)
        pipe.play(frames[second:], FAST)
        dbs = await pipe.finish(day.seq)

    union = sql_rows(dbs, COUNTERS_SQL)
    assert union == reference_rows(embedded, COUNTERS_SQL)
    assert any(row["likes"] for row in union)
    scraped = [pipe.last_metrics[p.name] for p in pipe.aggregators]
    assert pipe.last_metrics[victim.name].get(OWED, 0) > 0, "the restarted victim applied nothing it owed"
    assert all(m.get(UNVERIFIED, 0) == 0 for m in scraped)
