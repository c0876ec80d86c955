"""AppView writes of the store: profile snapshots (follower history) and post snapshots (backfill).

Not the firehose path: `Store.record_profiles` / `Store.record_posts` run these inside one
transaction each. A post snapshot stores the AppView's counts S at time T and, read in the same
transaction, the live counts L the store had for that post; the views count S + (live − L), so
nothing counted live before T is counted again. A snapshot whose counts did not change is left
as it is (a second backfill of the same period changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import duckdb
import pyarrow as pa

from aggregator.counters import POST_COUNTERS


@dataclass(frozen=True, slots=True)
class ProfileSnapshot:
    """One profile as the AppView gave it; a count it left out is None (unknown, not zero)."""

    did: str
    handle: str
    name: str
    followers: int | None
    follows: int | None
    posts: int | None


@dataclass(frozen=True, slots=True)
class PostSnapshot:
    """One post of a tracked account with the AppView's counts."""

    uri: str
    did: str
    created_at: datetime
    text: str
    reply_parent: str | None
    reply_root: str | None
    quote_uri: str | None
    likes: int
    reposts: int
    replies: int
    quotes: int


@dataclass(frozen=True, slots=True)
class PostsRecorded:
    new: int  # posts the store had no snapshot of
    updated: int  # snapshots whose counts changed (S, T and L rewritten)
    unchanged: int


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


_P: Final = POST_COUNTERS
_LIVE_SUMS: Final = ", ".join(f"sum(b.{n}) AS {n}" for n in _P)
_DIFFERS: Final = " OR ".join(f"post_snapshots.{n} <> excluded.{n}" for n in _P)

FOLLOWERS_HISTORY_SQL: Final = """INSERT INTO followers_history
SELECT did, $1, followers, follows, posts FROM profiles
WHERE followers IS NOT NULL OR follows IS NOT NULL OR posts IS NOT NULL
ON CONFLICT (did, time) DO NOTHING"""
RENAME_SQL: Final = """UPDATE accounts SET handle = p.handle, name = p.name
FROM profiles p WHERE accounts.did = p.did
    AND (accounts.handle IS DISTINCT FROM p.handle OR accounts.name IS DISTINCT FROM p.name)"""

POSTS_SQL: Final = """INSERT INTO posts (uri, did, created_at, text, reply_parent, reply_root,
    quote_uri, first_seen)
SELECT uri, did, created_at, text, reply_parent, reply_root, quote_uri, $1 FROM snap
ON CONFLICT (uri) DO UPDATE SET created_at = coalesce(posts.created_at, excluded.created_at),
    text = coalesce(posts.text, excluded.text),
    reply_parent = coalesce(posts.reply_parent, excluded.reply_parent),
    reply_root = coalesce(posts.reply_root, excluded.reply_root),
    quote_uri = coalesce(posts.quote_uri, excluded.quote_uri)"""
COUNT_SQL: Final = f"""SELECT count(*) FILTER (WHERE t.uri IS NULL),
    count(*) FILTER (WHERE t.uri IS NOT NULL AND ({" OR ".join(f"t.{n} <> s.{n}" for n in _P)}))
FROM snap s LEFT JOIN post_snapshots t ON t.uri = s.uri"""
SNAPSHOTS_SQL: Final = f"""INSERT INTO post_snapshots
WITH live AS (SELECT b.uri, {_LIVE_SUMS} FROM post_buckets b SEMI JOIN snap USING (uri) GROUP BY b.uri)
SELECT s.uri, s.did, $1, {", ".join(f"s.{n}" for n in _P)},
    {", ".join(f"coalesce(live.{n}, 0)" for n in _P)}
FROM snap s LEFT JOIN live ON live.uri = s.uri
ON CONFLICT (uri) DO UPDATE SET time = excluded.time,
    {", ".join(f"{p}{n} = excluded.{p}{n}" for p in ("", "live_") for n in _P)}
WHERE {_DIFFERS}"""


def profiles_table(profiles: Sequence[ProfileSnapshot]) -> pa.Table:
    def ints(values: list[int | None]) -> pa.Array:
        return pa.array(values, pa.int64())

    return pa.table(
        {
            "did": pa.array([p.did for p in profiles], pa.string()),
            "handle": pa.array([p.handle for p in profiles], pa.string()),
            "name": pa.array([p.name for p in profiles], pa.string()),
            "followers": ints([p.followers for p in profiles]),
            "follows": ints([p.follows for p in profiles]),
            "posts": ints([p.posts for p in profiles]),
        }
    )


def posts_table(posts: Sequence[PostSnapshot]) -> pa.Table:
    unique = list({p.uri: p for p in posts}.values())
    columns: dict[str, pa.Array] = {
        name: pa.array([getattr(p, name) for p in unique], pa.string())
        for name in ("uri", "did", "text", "reply_parent", "reply_root", "quote_uri")
    }
    columns["created_at"] = pa.array([naive_utc(p.created_at) for p in unique], pa.timestamp("us"))
    for name in _P:
        columns[name] = pa.array([getattr(p, name) for p in unique], pa.int64())
    return pa.table(columns)


def write_profiles(con: duckdb.DuckDBPyConnection, table: pa.Table, at: datetime) -> None:
    """Inside the caller's transaction: one follower-history row per profile with counts, and
    the handle / name the AppView now gives."""
    con.register("profiles", table)
    try:
        con.execute(FOLLOWERS_HISTORY_SQL, [naive_utc(at)])
        con.execute(RENAME_SQL)
    finally:
        con.unregister("profiles")


def write_posts(con: duckdb.DuckDBPyConnection, table: pa.Table, at: datetime) -> PostsRecorded:
    """Inside the caller's transaction: the posts rows, then their snapshots with L read now."""
    con.register("snap", table)
    try:
        row = con.execute(COUNT_SQL).fetchone()
        new, updated = (int(row[0]), int(row[1])) if row else (0, 0)
        con.execute(POSTS_SQL, [naive_utc(at)])
        con.execute(SNAPSHOTS_SQL, [naive_utc(at)])
    finally:
        con.unregister("snap")
    return PostsRecorded(new, updated, table.num_rows - new - updated)
