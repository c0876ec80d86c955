"""Profiles re-read from the AppView: handles, names and follower counts into file and store.

Used by `bluepulse accounts refresh` (which holds the DuckDB lock) and by `bluepulse run
--refresh-every` (the running writer). Each read is one row per account in
`followers_history`; `account_totals.followers` is the latest of them. A profile the AppView
left out (deleted, suspended) or one without counts is counted and logged, never a zero; the
file keeps what it had for it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from aggregator.appview_sql import ProfileSnapshot
from aggregator.store import Store
from appview.client import AppViewClient
from appview.models import Profile
from bluepulse.backfill_app import snapshot
from schemas.accounts import Account, load_accounts, write_accounts

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Refreshed:
    accounts: int = 0
    snapshots: int = 0  # followers_history rows written
    renamed: list[tuple[Account, Account]] = field(default_factory=list)  # (before, after)
    missing: list[str] = field(default_factory=list)  # DIDs the AppView has no profile for
    no_counts: list[str] = field(default_factory=list)  # profiles without followersCount


def account_name(profile: Profile) -> str:
    """What the accounts file calls an account: its display name, else its handle."""
    return (profile.display_name or "").strip() or profile.handle


def updated(account: Account, profile: Profile) -> Account:
    followers = profile.followers if profile.followers is not None else account.followers
    return replace(account, handle=profile.handle, name=account_name(profile), followers=followers)


async def refresh_profiles(client: AppViewClient, accounts_path: Path, store: Store) -> Refreshed:
    """Read every tracked profile once; write the store (one transaction), then the file when
    a handle, a name or a follower count changed."""
    accounts = load_accounts(accounts_path)
    profiles = {p.did: p for p in await client.get_profiles(a.did for a in accounts)}
    at = datetime.now(UTC)
    result = Refreshed(accounts=len(accounts))
    rows: list[Account] = []
    snapshots: list[ProfileSnapshot] = []
    for account in accounts:
        profile = profiles.get(account.did)
        if profile is None:
            result.missing.append(account.did)
            rows.append(account)
            continue
        if profile.followers is None:
            result.no_counts.append(account.did)
        after = updated(account, profile)
        if (after.handle, after.name) != (account.handle, account.name):
            result.renamed.append((account, after))
        rows.append(after)
        snapshots.append(
            ProfileSnapshot(
                profile.did, profile.handle, after.name, profile.followers, profile.follows, profile.posts
            )
        )
    await asyncio.to_thread(store.record_profiles, snapshots, at)
    result.snapshots = sum(1 for s in snapshots if (s.followers, s.follows, s.posts) != (None,) * 3)
    if rows != accounts:
        write_accounts(accounts_path, rows)
    for before, after in result.renamed:
        log.info(
            "account renamed did=%s handle=%s->%s name=%r",
            before.did,
            before.handle,
            after.handle,
            after.name,
        )
    if result.missing:
        log.warning(
            "no AppView profile for %d accounts (kept as they were): %s",
            len(result.missing),
            " ".join(result.missing),
        )
    if result.no_counts:
        log.warning(
            "%d profiles without follower counts (skipped, not zero): %s",
            len(result.no_counts),
            " ".join(result.no_counts),
        )
    return result


async def refresh_post_counts(client: AppViewClient, store: Store) -> int:
    """New AppView counts for every post the store holds a snapshot of (getPosts, 25 a call).

    Each answer becomes a new snapshot S at T with the live counts L of T (the double-count
    rule of backfill); a post the AppView no longer has keeps its last snapshot. Returns the
    number of posts read.
    """
    _, rows = await asyncio.to_thread(store.query, "SELECT uri FROM post_snapshots ORDER BY uri")
    if not rows:
        return 0
    views = await client.get_posts(str(row[0]) for row in rows)
    if views:
        await asyncio.to_thread(store.record_posts, [snapshot(v) for v in views], datetime.now(UTC))
    if len(views) < len(rows):
        log.info(
            "post counts refreshed; %d posts no longer on the AppView keep their last snapshot",
            len(rows) - len(views),
        )
    return len(views)
