"""`bluepulse backfill` on the AppView emulator: a quarter's posts and counts equal the truth,
a second run changes nothing, live and backfilled engagement never add up twice, and the
DuckDB file's one writer is respected."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from aggregator.store import PartitionBatch, Store
from appview.emulator import AppViewEmulator
from appview.scenario import Post, Scenario, World, build_world, stamp
from bluepulse import lock
from relay.emulator import RelayEmulator
from schemas import Action, Direction, Event, Kind
from tests.support.appview import accounts_file, bluepulse
from tests.support.ports import free_port
from tests.support.processes import ChildProcess, bluepulse_argv, metrics_text

WORLD = build_world(Scenario())
PERIOD = ("--from", "2025-01-01", "--to", "2025-03-31")  # the scenario's 90 days, end day included
START, END = WORLD.scenario.start.replace(tzinfo=None), WORLD.scenario.end.replace(tzinfo=None)
TOTALS_SQL = """SELECT did, count(*), sum(likes), sum(reposts), sum(replies), sum(quotes) FROM top_posts
WHERE created_at >= ? AND created_at < ? GROUP BY did"""


def truth(world: World) -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    for a in world.accounts:
        posts = world.period_posts(a.did)
        if posts:
            out[a.did] = (
                len(posts),
                sum(p.likes for p in posts),
                sum(p.reposts for p in posts),
                sum(p.replies for p in posts),
                sum(p.quotes for p in posts),
            )
    return out


def totals(db: Path) -> dict[str, tuple[int, ...]]:
    with Store.open(db) as store:
        rows = store.query(TOTALS_SQL, [START, END])[1]
    return {did: tuple(int(v) for v in values) for did, *values in rows}


def dump(db: Path) -> list[Any]:
    with Store.open(db) as store:
        return [store.query(f"SELECT * FROM {t} ORDER BY ALL")[1] for t in ("posts", "post_snapshots")]


async def backfill(db: Path, accounts: Path, url: str, *extra: str) -> Any:
    return await bluepulse(
        "backfill", *PERIOD, "--accounts", str(accounts), "--db", str(db), "--appview", url, *extra
    )


async def test_a_quarter_s_backfill_equals_the_truth_per_account_and_a_second_one_changes_nothing(
    tmp_path: Path,
) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    async with AppViewEmulator(
        WORLD, rate_limit=40, rate_window=1.0, fail_every=11, malformed_every=17
    ) as av:
        first = await backfill(db, accounts, av.url)
        assert first.code == 0, first.err
        before = dump(db)
        second = await backfill(db, accounts, av.url)
    assert second.code == 0, second.err
    assert totals(db) == truth(WORLD)
    assert dump(db) == before
    assert "(0 new, 0 updated" in second.out
    assert min(av.throttled, av.failed, av.malformed) > 0, (av.throttled, av.failed, av.malformed)
    with Store.open(db) as store:
        links = store.query("SELECT uri, reply_parent, quote_uri, text FROM posts")[1]
    by_uri = {p.uri: p for a in WORLD.accounts for p in WORLD.period_posts(a.did)}
    assert {u: (r, q, t) for u, r, q, t in links} == {
        u: (p.reply_parent, p.quote, p.text) for u, p in by_uri.items()
    }


def live(seq: int, post: Post, kind: Kind, actor: str) -> Event:
    """A live to-event (like or repost) on a tracked account's post."""
    return Event(
        seq=seq,
        idx=0,
        kind=kind,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did=post.author,
        actor_did=actor,
        time=stamp(post.created_at + timedelta(hours=1)),
        subject_uri=post.uri,
        target_did=post.author,
        uri=f"at://{actor}/app.bsky.feed.{kind}/{seq:013d}",
    )


async def test_live_events_then_a_backfill_that_includes_them_count_once(tmp_path: Path) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    post = max((p for a in WORLD.accounts for p in WORLD.period_posts(a.did)), key=lambda p: p.likes)
    fans = [f"did:plc:{c * 24}" for c in "bcdefg"]
    created = Event(
        seq=1,
        idx=0,
        kind=Kind.POST,
        action=Action.CREATE,
        direction=Direction.BY,
        subject_did=post.author,
        actor_did=post.author,
        time=stamp(post.created_at),
        uri=post.uri,
        created_at=stamp(post.created_at),
        text=post.text,
    )
    before = [created, *(live(10 + i, post, Kind.LIKE, f) for i, f in enumerate(fans[:4]))]
    before.append(live(20, post, Kind.REPOST, fans[0]))
    with Store.open(db) as store:
        store.apply({"queue": PartitionBatch(before)})
    assert post.likes >= 4
    assert post.reposts >= 1
    async with AppViewEmulator(WORLD) as av:
        done = await backfill(db, accounts, av.url)
    assert done.code == 0, done.err

    def counts() -> tuple[int, ...]:
        with Store.open(db) as store:
            rows = store.query(
                "SELECT likes, reposts, replies, quotes FROM top_posts WHERE uri = ?", [post.uri]
            )
        return tuple(rows[1][0])

    assert counts() == (post.likes, post.reposts, post.replies, post.quotes)  # not + 4 likes, + 1 repost
    after = [live(30 + i, post, Kind.LIKE, f) for i, f in enumerate(fans[4:])]
    with Store.open(db) as store:
        store.apply({"queue": PartitionBatch(after)})
    assert counts() == (post.likes + 2, post.reposts, post.replies, post.quotes)
    assert totals(db) == truth(WORLD) | {
        post.author: tuple(v + (2 if i == 1 else 0) for i, v in enumerate(truth(WORLD)[post.author]))
    }


async def test_backfill_is_refused_while_another_process_writes_the_store(tmp_path: Path) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    with lock.hold_store(db, "test"):
        done = await backfill(db, accounts, f"http://127.0.0.1:{free_port()}")
    assert done.code == 2
    assert f"in use by pid {os.getpid()}" in done.err
    assert "bluepulse run --backfill-from" in done.err
    assert not db.exists()


async def test_an_unreachable_appview_is_one_line_exit_1_and_keeps_what_is_stored(tmp_path: Path) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    async with AppViewEmulator(WORLD) as av:
        assert (await backfill(db, accounts, av.url)).code == 0
    stored = dump(db)
    done = await backfill(db, accounts, f"http://127.0.0.1:{free_port()}")
    assert done.code == 1
    lines = [line for line in done.err.splitlines() if line.strip()]
    assert len(lines) == 1, done.err
    assert "unavailable" in lines[0]
    assert dump(db) == stored


async def test_run_backfills_and_refreshes_inside_the_process_and_refuses_a_second_writer(
    tmp_path: Path,
) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    port = free_port()
    async with RelayEmulator() as relay, AppViewEmulator(WORLD, fail_every=13) as av:
        run = ChildProcess(
            "run",
            bluepulse_argv(
                "run",
                "--relay",
                relay.url,
                "--accounts",
                str(accounts),
                "--state-dir",
                str(tmp_path / "state"),
                "--db",
                str(db),
                "--metrics-port",
                str(port),
                "--appview",
                av.url,
                "--refresh-every",
                "1s",
                "--backfill-from",
                "2025-01-01",
            ),
            tmp_path / "run.log",
        ).start()
        try:
            async with asyncio.timeout(60):
                while "backfill done" not in run.output() or "profiles refreshed" not in run.output():
                    assert run.running, run.output()
                    await asyncio.sleep(0.2)
            text = await asyncio.to_thread(metrics_text, port)
            refused = await backfill(db, accounts, av.url)
            assert await asyncio.to_thread(run.stop) == 0, run.output()
        finally:
            run.close()
    assert refused.code == 2
    assert "bluepulse run" in refused.err
    assert "--backfill-from" in refused.err
    assert totals(db) == truth(WORLD)
    counted = [a for a in WORLD.accounts if a.followers is not None]
    followers = [line for line in text.splitlines() if line.startswith("bluepulse_account_followers{")]
    assert len(followers) == len(counted)
    assert "bluepulse_account_followers_snapshot_age_seconds{" in text


async def test_accounts_refresh_rereads_backfilled_posts_counts_with_get_posts(tmp_path: Path) -> None:
    db, accounts = tmp_path / "bluepulse.duckdb", accounts_file(tmp_path / "accounts.csv", WORLD)
    async with AppViewEmulator(WORLD) as av:
        assert (await backfill(db, accounts, av.url)).code == 0
        with duckdb.connect(str(db)) as con:  # an older snapshot: the AppView counted less back then
            con.execute("UPDATE post_snapshots SET likes = 0, reposts = 0")
        assert totals(db) != truth(WORLD)
        done = await bluepulse(
            "accounts", "refresh", "--accounts", str(accounts), "--db", str(db), "--appview", av.url
        )
        assert done.code == 0, done.err
        calls = [c for c in av.calls if c.nsid == "app.bsky.feed.getPosts"]
    assert totals(db) == truth(WORLD)
    assert calls
    assert all(len(c.query.get("uris", [])) <= 25 for c in calls)
    assert "backfilled posts' counts refreshed" in done.out
