"""Stable views for ad-hoc SQL (`bluepulse sql`), recreated by the writer at every open.

The leading columns of each view are a promise; new columns are only appended. Windows
are relative to the store clock (`clock.newest_event` = newest applied event time), so a
replayed capture answers as it did live and tests are deterministic. A bucket counts in
a window when its start lies in (now - span, now]: precise to the minute for data in
`account_minutes` (the last hours), to the hour in `account_hours`, to the day beyond.
"""

from __future__ import annotations

from typing import Final

from aggregator.counters import ACCOUNT_COUNTERS, POST_COUNTERS, VIEW_LEADING, VIEW_TRAILING

WINDOWS: Final = {"1h": "1 HOUR", "24h": "24 HOUR", "7d": "7 DAY", "30d": "30 DAY", "90d": "90 DAY"}
_INTERACTIONS: Final = "{p}likes + {p}reposts + {p}replies + {p}quotes"


def _coalesced(prefix: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"coalesce({prefix}{n}, 0)::BIGINT AS {n}" for n in names)


def _rate(interactions: str) -> str:
    return f"({interactions})::DOUBLE / nullif(a.followers, 0) AS interaction_rate"


# The accounts with their latest follower snapshot (accounts refresh, followers_history);
# the accounts file's baseline where no snapshot exists yet.
_ACCOUNTS_NOW: Final = """CREATE OR REPLACE VIEW accounts_now AS
WITH s AS (SELECT did, arg_max(followers, time) AS followers, max(time) AS followers_time
    FROM followers_history WHERE followers IS NOT NULL GROUP BY did)
SELECT a.* REPLACE (coalesce(s.followers, a.followers) AS followers), s.followers_time
FROM accounts a LEFT JOIN s ON s.did = a.did"""

_ACCOUNT_BUCKETS: Final = """CREATE OR REPLACE VIEW account_buckets AS
SELECT 'minute' AS level, * FROM account_minutes
UNION ALL SELECT 'hour' AS level, * FROM account_hours
UNION ALL SELECT 'day' AS level, * FROM account_days"""

_SUMS: Final = ", ".join(f"sum(b.{n}) AS {n}" for n in ACCOUNT_COUNTERS)

_ACCOUNT_TOTALS: Final = f"""CREATE OR REPLACE VIEW account_totals AS
WITH c AS (SELECT b.did, {_SUMS} FROM account_buckets b GROUP BY b.did)
SELECT a.did, a.handle, a.name, {_coalesced("c.", VIEW_LEADING)}, {_coalesced("c.", VIEW_TRAILING)},
    coalesce({_INTERACTIONS.format(p="c.")}, 0)::BIGINT AS interactions,
    a.category, a.region, a.followers, a.active, a.status
FROM accounts_now a LEFT JOIN c ON c.did = a.did"""

_SPANS: Final = ", ".join(
    f"('{name}', INTERVAL {span}, {order})" for order, (name, span) in enumerate(WINDOWS.items())
)
# the narrowest window a bucket falls in (WINDOWS grow in order): each bucket is read once and
# lands in one (did, ord) group, and a running sum over ord gives every wider window
_NARROWEST: Final = " ".join(
    f"WHEN b.bucket > n.now - INTERVAL {span} THEN {order}" for order, span in enumerate(WINDOWS.values())
)
_WIDEST: Final = list(WINDOWS.values())[-1]
_GROUP_SUMS: Final = ", ".join(f"sum(b.{n}) AS {n}" for n in ACCOUNT_COUNTERS)
_WIDER: Final = "OVER (PARTITION BY a.did ORDER BY s.ord ROWS UNBOUNDED PRECEDING)"
_RUNNING: Final = ", ".join(f"coalesce(sum(g.{n}) {_WIDER}, 0)::BIGINT AS {n}" for n in ACCOUNT_COUNTERS)
_ACCOUNT_WINDOW: Final = f"""CREATE OR REPLACE VIEW account_window AS
WITH n AS (SELECT newest_event AS now FROM clock WHERE id = 1),
spans AS (SELECT * FROM (VALUES {_SPANS}) t(name, span, ord)),
g AS (
    SELECT b.did, CASE {_NARROWEST} END AS ord, {_GROUP_SUMS}
    FROM account_buckets b, n
    WHERE b.bucket > n.now - INTERVAL {_WIDEST} AND b.bucket <= n.now
    GROUP BY ALL),
w AS (
    SELECT a.did, s.name, s.ord, a.followers, n.now - s.span AS window_start,
        n.now AS window_end, {_RUNNING}
    FROM accounts_now a CROSS JOIN spans s CROSS JOIN n
    LEFT JOIN g ON g.did = a.did AND g.ord = s.ord)
SELECT a.did, a.name AS "window", {", ".join("a." + c for c in VIEW_LEADING)},
    {_INTERACTIONS.format(p="a.")} AS interactions, {", ".join("a." + c for c in VIEW_TRAILING)},
    {_rate(_INTERACTIONS.format(p="a."))}, a.window_start, a.window_end
FROM w a
ORDER BY a.did, a.ord"""

_POST_INTERACTIONS: Final = _INTERACTIONS.format(p="c.")
_POST_SUMS: Final = ", ".join(f"sum(m.{n})::BIGINT AS {n}" for n in POST_COUNTERS)

_POST_BUCKETS: Final = """CREATE OR REPLACE VIEW post_buckets AS
SELECT 'minute' AS level, * FROM post_minutes
UNION ALL SELECT 'day' AS level, * FROM post_days"""

# a post's engagement: live counts, or, once the AppView was read for it (backfill), its
# snapshot S at T plus what the store counted live since T (live now - L, L counted at T)
_COMBINED: Final = ", ".join(
    f"CASE WHEN s.uri IS NULL THEN l.{n} ELSE s.{n} + l.{n} - s.live_{n} END AS {n}" for n in POST_COUNTERS
)
_TOP_POSTS: Final = f"""CREATE OR REPLACE VIEW top_posts AS
WITH k AS (SELECT m.uri, any_value(m.did) AS did, {_POST_SUMS}, max(m.bucket) AS last_bucket
    FROM post_buckets m GROUP BY m.uri),
l AS (
    SELECT coalesce(k.uri, p.uri) AS uri, coalesce(k.did, p.did) AS did,
        coalesce(k.likes, 0) AS likes, coalesce(k.reposts, 0) AS reposts,
        coalesce(k.replies, 0) AS replies, coalesce(k.quotes, 0) AS quotes, k.last_bucket
    FROM k FULL JOIN posts p ON p.uri = k.uri),
c AS (SELECT l.uri, l.did, {_COMBINED}, l.last_bucket, s.time AS snapshot_time
    FROM l LEFT JOIN post_snapshots s ON s.uri = l.uri)
SELECT c.uri, c.did, p.created_at, p.text, c.likes, c.reposts, c.replies, c.quotes,
    {_POST_INTERACTIONS} AS interactions, {_rate(_POST_INTERACTIONS)},
    a.handle, coalesce(p.deleted, false) AS deleted, c.last_bucket, c.snapshot_time
FROM c LEFT JOIN posts p ON p.uri = c.uri LEFT JOIN accounts_now a ON a.did = c.did
ORDER BY interactions DESC, c.uri"""

_HOT_POSTS: Final = f"""CREATE OR REPLACE VIEW hot_posts AS
WITH n AS (SELECT newest_event AS now FROM clock WHERE id = 1),
c AS (
    SELECT m.uri, m.did, {_POST_SUMS}
    FROM post_minutes m, n
    WHERE m.bucket > n.now - INTERVAL 1 HOUR AND m.bucket <= n.now
    GROUP BY m.uri, m.did)
SELECT c.uri, c.did, p.created_at, p.text, c.likes, c.reposts, c.replies, c.quotes,
    {_POST_INTERACTIONS} AS interactions, {_rate(_POST_INTERACTIONS)}, a.handle
FROM c LEFT JOIN posts p ON p.uri = c.uri LEFT JOIN accounts_now a ON a.did = c.did
WHERE {_POST_INTERACTIONS} > 0  -- a post whose hour was only un-likes is not "hot"
ORDER BY interactions DESC, c.uri"""

# Posts that name a tracked account by a watch term (issue 16), newest first, from the event
# log (kept `--retention-days`); the counts, kept forever, are `mentions_by_name` above.
_MENTIONS: Final = """CREATE OR REPLACE VIEW mentions AS
SELECT e.time, e.subject_did AS did, a.handle, e.term, e.uri, e.actor_did AS author, e.text,
    e.created_at
FROM events e LEFT JOIN accounts_now a ON a.did = e.subject_did
WHERE e.kind = 'name_mention' AND e.action = 'create'
ORDER BY e.time DESC, e.uri, e.subject_did"""

VIEWS: Final = (
    _ACCOUNTS_NOW,
    _ACCOUNT_BUCKETS,
    _ACCOUNT_TOTALS,
    _ACCOUNT_WINDOW,
    _POST_BUCKETS,
    _TOP_POSTS,
    _HOT_POSTS,
    _MENTIONS,
)
