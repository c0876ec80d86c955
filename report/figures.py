"""The barometer's figures: per account, top posts and posts per week of a period, read from a store.

Read-only: a connection opened `read_only` (or a writer's cursor) and Arrow tables registered on
it, never a write. Every definition the methods note gives is here once (report/i18n.py says
them in words): posts are the account's own posts created in the period (replies included,
reposts excluded — they are not posts of the account —, deleted posts excluded); their
engagement is what the store counts for them (live, plus the AppView's counts once backfilled:
the `top_posts` view); followers are the latest snapshot at or before the period's end.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa

from report.errors import ReportUsageError
from report.periods import Period
from schemas.accounts import Account

TOP_POSTS: Final = 100  # rows of top_posts.csv; the page shows the first TOP_POSTS_SHOWN
NEAR_INACTIVE_PER_WEEK: Final = 1.0  # HospiPulse's line: at most one post a week
COUNTS: Final = ("likes", "reposts", "replies", "quotes")

_PERIOD_POSTS: Final = """
SELECT p.uri, p.did, coalesce(p.created_at, p.first_seen) AS created,
    p.reply_parent IS NOT NULL AS is_reply,
    coalesce(t.likes, 0)::BIGINT AS likes, coalesce(t.reposts, 0)::BIGINT AS reposts,
    coalesce(t.replies, 0)::BIGINT AS replies, coalesce(t.quotes, 0)::BIGINT AS quotes
FROM posts p SEMI JOIN report_accounts a ON a.did = p.did
LEFT JOIN top_posts t ON t.uri = p.uri
WHERE NOT coalesce(p.deleted, false)
    AND coalesce(p.created_at, p.first_seen) >= $start AND coalesce(p.created_at, p.first_seen) < $end
"""
_ACCOUNTS: Final = """
WITH fe AS (SELECT h.did, arg_max(h.followers, h.time) AS followers, max(h.time) AS at
    FROM followers_history h SEMI JOIN report_accounts a ON a.did = h.did
    WHERE h.followers IS NOT NULL AND h.time <= $end GROUP BY h.did),
fs AS (SELECT h.did, arg_max(h.followers, h.time) AS followers
    FROM followers_history h SEMI JOIN report_accounts a ON a.did = h.did
    WHERE h.followers IS NOT NULL AND h.time <= $start GROUP BY h.did),
agg AS (SELECT did, count(*) AS posts, sum(likes) AS likes, sum(reposts) AS reposts,
    sum(replies) AS replies, sum(quotes) AS quotes,
    avg(likes + reposts + replies + quotes) AS mean_interactions
    FROM period_posts GROUP BY did),
mb AS (SELECT b.did, sum(b.mentions_by_name) AS mentions
    FROM account_buckets b SEMI JOIN report_accounts a ON a.did = b.did
    WHERE b.bucket >= $start AND b.bucket < $end GROUP BY b.did)
SELECT a.did, a.handle, a.name, a.category,
    coalesce(fe.followers, a.baseline) AS followers, fe.at AS followers_at, fs.followers AS followers_start,
    coalesce(agg.posts, 0), coalesce(agg.likes, 0), coalesce(agg.reposts, 0),
    coalesce(agg.replies, 0), coalesce(agg.quotes, 0), agg.mean_interactions, coalesce(mb.mentions, 0)
FROM report_accounts a LEFT JOIN fe ON fe.did = a.did LEFT JOIN fs ON fs.did = a.did
LEFT JOIN agg ON agg.did = a.did LEFT JOIN mb ON mb.did = a.did
"""
_TOP: Final = """
SELECT q.uri, q.did, q.created, q.is_reply, p.text, q.likes, q.reposts, q.replies, q.quotes
FROM period_posts q JOIN posts p ON p.uri = q.uri
ORDER BY q.likes + q.reposts + q.replies + q.quotes DESC, q.created, q.uri
LIMIT $limit
"""
_WEEKS: Final = """
SELECT (datediff('day', $start, created) // 7)::INTEGER AS week, count(*) AS posts,
    sum(likes + reposts + replies + quotes)::BIGINT AS interactions
FROM period_posts GROUP BY week ORDER BY week
"""
_COVERAGE: Final = """
SELECT min(t), max(t) FROM (
    SELECT bucket AS t FROM account_buckets
    UNION ALL SELECT coalesce(created_at, first_seen) FROM posts
    UNION ALL SELECT time FROM followers_history)
"""


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One line of barometer.csv (its leading columns, in order) plus what the page needs."""

    did: str
    handle: str
    name: str
    category: str
    followers: int | None
    followers_start: int | None
    posts: int
    likes: int
    reposts: int
    replies: int
    quotes: int
    interaction_rate_per_post: float | None
    posts_per_week: float
    followers_at: datetime | None  # the snapshot `followers` comes from; None: the accounts file's baseline
    mentions_by_name: int = 0  # posts naming the account (watch terms) in the period, untagged

    @property
    def followers_growth(self) -> int | None:
        if self.followers_start is None or self.followers is None or self.followers_at is None:
            return None
        return self.followers - self.followers_start

    @property
    def followers_growth_rate(self) -> float | None:
        growth = self.followers_growth
        if growth is None or not self.followers_start:
            return None
        return growth / self.followers_start

    @property
    def interactions(self) -> int:
        return self.likes + self.reposts + self.replies + self.quotes

    @property
    def inactive(self) -> bool:
        return self.posts == 0

    @property
    def near_inactive(self) -> bool:
        return 0 < self.posts_per_week <= NEAR_INACTIVE_PER_WEEK


@dataclass(frozen=True, slots=True)
class TopPost:
    uri: str
    did: str
    handle: str
    name: str
    created: datetime
    is_reply: bool
    text: str
    likes: int
    reposts: int
    replies: int
    quotes: int
    followers: int | None

    @property
    def interactions(self) -> int:
        return self.likes + self.reposts + self.replies + self.quotes

    @property
    def rate(self) -> float | None:
        return self.interactions / self.followers if self.followers else None

    @property
    def url(self) -> str:
        """The post on bsky.app (at://DID/app.bsky.feed.post/RKEY)."""
        rkey = self.uri.rsplit("/", 1)[-1]
        return f"https://bsky.app/profile/{self.did}/post/{rkey}"


@dataclass(frozen=True, slots=True)
class Week:
    index: int  # 0 = the period's first 7 days
    first: datetime
    days: int  # 7, fewer for the period's last block
    posts: int
    interactions: int


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    accounts: int
    posts: int
    posts_per_week_per_account: float
    interactions: int
    median_rate: float | None


@dataclass(frozen=True, slots=True)
class Barometer:
    period: Period
    rows: list[AccountRow]  # ranked by followers (unknown last), then name
    top: list[TopPost]
    weeks: list[Week]
    coverage: tuple[datetime, datetime] | None  # first and last time the store has anything about

    @property
    def posts(self) -> int:
        return sum(r.posts for r in self.rows)

    @property
    def interactions(self) -> int:
        return sum(r.interactions for r in self.rows)

    @property
    def mentions_by_name(self) -> int:
        return sum(r.mentions_by_name for r in self.rows)

    @property
    def median_rate(self) -> float | None:
        rates = [r.interaction_rate_per_post for r in self.rows if r.interaction_rate_per_post is not None]
        return statistics.median(rates) if rates else None

    @property
    def inactive(self) -> list[AccountRow]:
        return [r for r in self.rows if r.inactive]

    @property
    def near_inactive(self) -> list[AccountRow]:
        return [r for r in self.rows if r.near_inactive]

    @property
    def without_followers(self) -> list[AccountRow]:
        return [r for r in self.rows if r.followers is None]

    @property
    def covers_period(self) -> bool:
        """Whether the store holds anything from inside the period."""
        if self.coverage is None:
            return False
        first, last = self.coverage
        return first < self.period.end and last >= self.period.start

    @property
    def categories(self) -> list[Category]:
        named: dict[str, list[AccountRow]] = {}
        for row in self.rows:
            if row.category:
                named.setdefault(row.category, []).append(row)
        return [_category(name, rows, self.period.weeks) for name, rows in sorted(named.items())]


def _category(name: str, rows: list[AccountRow], weeks: float) -> Category:
    rates = [r.interaction_rate_per_post for r in rows if r.interaction_rate_per_post is not None]
    posts = sum(r.posts for r in rows)
    return Category(
        name,
        len(rows),
        posts,
        posts / weeks / len(rows),
        sum(r.interactions for r in rows),
        statistics.median(rates) if rates else None,
    )


def store_accounts(con: duckdb.DuckDBPyConnection) -> list[Account]:
    """The accounts the store knows, with their accounts-file baseline of followers."""
    rows = con.execute(
        "SELECT did, coalesce(handle, ''), coalesce(name, ''), coalesce(category, ''), "
        "coalesce(region, ''), followers FROM accounts ORDER BY did"
    ).fetchall()
    return [
        Account(str(d), str(h), str(n), str(c), str(r), None if f is None else int(f))
        for d, h, n, c, r, f in rows
    ]


def select_category(accounts: Sequence[Account], category: str | None) -> list[Account]:
    """The accounts of `category` (case-insensitive); ReportUsageError names the known ones."""
    if category is None:
        return list(accounts)
    chosen = [a for a in accounts if a.category.casefold() == category.strip().casefold()]
    if not chosen and accounts:
        known = sorted({a.category for a in accounts if a.category})
        raise ReportUsageError(
            f"--category {category!r}: no account has it; categories: {', '.join(known) or 'none'}"
        )
    return chosen


def read_barometer(con: duckdb.DuckDBPyConnection, period: Period, accounts: Sequence[Account]) -> Barometer:
    """Every figure of the report for `accounts` over `period`, in four queries."""
    bounds = {"start": period.start, "end": period.end}
    con.register("report_accounts", _accounts_table(accounts))
    try:
        con.register("period_posts", con.sql(_PERIOD_POSTS, params=bounds).to_arrow_table())
        try:
            rows = [_row(r, period) for r in con.execute(_ACCOUNTS, bounds).fetchall()]
            by_did = {r.did: r for r in rows}
            top = [_top(r, by_did) for r in con.execute(_TOP, {"limit": TOP_POSTS}).fetchall()]
            weeks = _weeks(con.execute(_WEEKS, {"start": period.start}).fetchall(), period)
        finally:
            con.unregister("period_posts")
    finally:
        con.unregister("report_accounts")
    found = con.execute(_COVERAGE).fetchone()
    coverage = (found[0], found[1]) if found and found[0] is not None else None
    rows.sort(key=lambda r: (r.followers is None, -(r.followers or 0), r.name.casefold(), r.did))
    return Barometer(period, rows, top, weeks, coverage)


def _accounts_table(accounts: Sequence[Account]) -> pa.Table:
    unique = list({a.did: a for a in accounts}.values())
    return pa.table(
        {
            "did": pa.array([a.did for a in unique], pa.string()),
            "handle": pa.array([a.handle for a in unique], pa.string()),
            "name": pa.array([a.name or a.handle for a in unique], pa.string()),
            "category": pa.array([a.category for a in unique], pa.string()),
            "baseline": pa.array([a.followers for a in unique], pa.int64()),
        }
    )


def _row(values: tuple[Any, ...], period: Period) -> AccountRow:
    did, handle, name, category, followers, at, start, posts, likes, reposts, replies, quotes, mean, named = (
        values
    )
    rate = mean / followers if posts and mean is not None and followers else None
    return AccountRow(
        did=did,
        handle=handle or "",
        name=name or handle or did,
        category=category or "",
        followers=followers,
        followers_start=start,
        posts=int(posts),
        likes=int(likes),
        reposts=int(reposts),
        replies=int(replies),
        quotes=int(quotes),
        interaction_rate_per_post=rate,
        posts_per_week=int(posts) / period.weeks,
        followers_at=at,
        mentions_by_name=int(named),
    )


def _top(values: tuple[Any, ...], by_did: dict[str, AccountRow]) -> TopPost:
    uri, did, created, is_reply, text, likes, reposts, replies, quotes = values
    account = by_did[did]
    return TopPost(
        uri,
        did,
        account.handle,
        account.name,
        created,
        bool(is_reply),
        text or "",
        int(likes),
        int(reposts),
        int(replies),
        int(quotes),
        account.followers,
    )


def _weeks(found: list[tuple[Any, ...]], period: Period) -> list[Week]:
    """Every 7-day block of the period, empty ones included (a gap is a finding)."""
    counts = {int(w): (int(p), int(i)) for w, p, i in found}
    blocks = (period.days + 6) // 7
    out = []
    for index in range(blocks):
        first = period.start + timedelta(days=7 * index)
        days = min(7, period.days - 7 * index)
        posts, interactions = counts.get(index, (0, 0))
        out.append(Week(index, first, days, posts, interactions))
    return out
