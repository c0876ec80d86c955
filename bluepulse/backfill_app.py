"""`bluepulse backfill --from DATE [--to DATE]`: the tracked accounts' posts of a period, from the AppView.

For each account getAuthorFeed is paged back past `--from` (appview/history.py: its replies
kept, reposts of others' posts left out, a pinned post once) and every post of the period is
stored with its AppView counts, one transaction per account (aggregator/appview_sql.py: S at T
and the live counts L, so live and backfilled engagement never add up twice). A stop half-way
keeps the accounts done; running it again is idempotent. The DuckDB file has one writer: a
running pipeline's lock refuses this command (exit 2), `bluepulse run --backfill-from` does
the same work inside it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.appview_sql import PostSnapshot
from aggregator.store import Store
from appview.client import AppViewClient
from appview.errors import AppViewUnavailable
from appview.history import posts_in_period
from appview.models import PostView
from bluepulse import lock
from bluepulse.config import BackfillConfig
from bluepulse.errors import CommandError
from bluepulse.progress import Progress
from schemas.accounts import Account, load_accounts

log = logging.getLogger(__name__)

LANES = 8  # accounts paged at once (the client bounds its requests in flight too)


@dataclass(slots=True)
class Backfilled:
    accounts: int = 0
    posts: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    reposts_skipped: int = 0
    items_skipped: int = 0


def snapshot(post: PostView) -> PostSnapshot:
    return PostSnapshot(
        post.uri,
        post.author_did,
        post.created_at,
        post.text,
        post.reply_parent,
        post.reply_root,
        post.quote_uri,
        post.like_count,
        post.repost_count,
        post.reply_count,
        post.quote_count,
    )


async def first_failure(jobs: Sequence[Awaitable[None]]) -> None:
    """Run the jobs; the first to fail cancels the others (what they stored stays) and is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def backfill_accounts(
    client: AppViewClient,
    store: Store,
    accounts: Sequence[Account],
    *,
    start: datetime,
    end: datetime | None,
    progress: Progress,
    lanes: int = LANES,
) -> Backfilled:
    """Every account's posts with start <= createdAt < end stored; returns what changed."""
    result = Backfilled()
    gate = asyncio.Semaphore(lanes)

    async def one(account: Account) -> None:
        async with gate:
            got = await posts_in_period(client, account.did, start, end)
        posts = [snapshot(p) for p in got.posts if p.author_did == account.did]
        recorded = await asyncio.to_thread(store.record_posts, posts, datetime.now(UTC))
        result.accounts += 1
        result.posts += len(posts)
        result.new, result.updated = result.new + recorded.new, result.updated + recorded.updated
        result.unchanged += recorded.unchanged
        result.reposts_skipped += got.reposts_skipped
        result.items_skipped += got.items_skipped
        progress.details["requests"] = client.stats.requests
        progress.advance(posts=len(posts))

    await first_failure([one(a) for a in accounts])
    return result


def period(config: BackfillConfig) -> tuple[datetime, datetime]:
    if config.start is None:
        raise CommandError("backfill: --from DATE is required (e.g. --from 2025-01-01)")
    end = config.end or datetime.now(UTC)
    if end <= config.start:
        raise CommandError(
            f"backfill: --to ({end:%Y-%m-%d %H:%M}) must come after --from ({config.start:%Y-%m-%d %H:%M})"
        )
    return config.start, end


async def main(config: BackfillConfig) -> int:
    start, end = period(config)
    accounts = load_accounts(config.accounts)
    hint = "a running pipeline holds it: backfill inside it with `bluepulse run --backfill-from DATE`"
    began = time.perf_counter()
    with lock.hold_store(config.db, hint), Store.open(config.db) as store:
        store.upsert_accounts(accounts)
        baseline = {a.did: a.followers for a in accounts if a.followers is not None}
        if baseline:
            store.set_followers(baseline)
        async with AppViewClient(config.appview) as client:
            with Progress("backfill", len(accounts)) as progress:
                try:
                    done = await backfill_accounts(
                        client, store, accounts, start=start, end=end, progress=progress
                    )
                except AppViewUnavailable as exc:
                    raise AppViewUnavailable(
                        f"{exc} ({progress.done} of {len(accounts)} accounts stored; run it again to finish)"
                    ) from exc
            stats = client.stats
    took = time.perf_counter() - began
    print(
        f"backfill {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC: {done.accounts} accounts, "
        f"{done.posts} posts ({done.new} new, {done.updated} updated, {done.unchanged} unchanged) "
        f"in {config.db}; {stats.requests} requests ({stats.retries} retried, {stats.rate_limited} "
        f"rate-limited, {sum(stats.skipped.values())} answers skipped) in {took:.1f} s"
    )
    return 0
