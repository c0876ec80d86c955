"""Viral-post and account-takeover indicators, computed from the store for the alert rules.

Everything is relative to the store clock (newest applied event), like the views, so a
replayed capture raises the same signals it raised live. One query per indicator family,
each returning one row per tracked account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import duckdb

_NOW: Final = "(SELECT newest_event FROM clock WHERE id = 1)"

# A post's interactions as top_posts counts them (views.py): live counts `k`, plus its AppView
# snapshot `s` net of the live counts it already held.
_ENGAGEMENT: Final = " + ".join(
    f"CASE WHEN s.uri IS NULL THEN coalesce(k.{n}, 0) ELSE s.{n} + coalesce(k.{n}, 0) - s.live_{n} END"
    for n in ("likes", "reposts", "replies", "quotes")
)

# Last-hour interactions of each account's hottest post vs its usual interactions per post
# over the previous 30 days (at least 1, so a first post with 20 likes still stands out).
# `usual` reads only the posts of those 30 days: top_posts aggregates every post ever seen,
# which ran out of the store's memory limit at 10k accounts × a year (bench/store_size.py).
_VIRAL: Final = f"""
WITH hot AS (
    SELECT did, uri, sum(likes + reposts + replies + quotes) AS recent
    FROM post_minutes WHERE bucket > {_NOW} - INTERVAL 1 HOUR GROUP BY did, uri),
best AS (SELECT did, arg_max(uri, recent) AS uri, max(recent) AS recent FROM hot GROUP BY did),
recent_posts AS (SELECT uri, did FROM posts WHERE created_at > {_NOW} - INTERVAL 30 DAY),
counted AS (
    SELECT m.uri, any_value(m.did) AS did, sum(m.likes) AS likes, sum(m.reposts) AS reposts,
        sum(m.replies) AS replies, sum(m.quotes) AS quotes
    FROM post_buckets m SEMI JOIN recent_posts r USING (uri) GROUP BY m.uri),
usual AS (
    SELECT coalesce(k.did, r.did) AS did, avg({_ENGAGEMENT}) AS per_post
    FROM recent_posts r LEFT JOIN counted k USING (uri) LEFT JOIN post_snapshots s USING (uri)
    GROUP BY 1)
SELECT b.did, b.uri, b.recent, b.recent / greatest(coalesce(u.per_post, 0), 1.0)
FROM best b LEFT JOIN usual u USING (did)"""

# Posts+reposts in the last hour vs the account's hourly average over the previous 30 days.
_RATES: Final = f"""
WITH recent AS (
    SELECT did, sum(posts + posts_deleted) AS posts, sum(reposts_made) AS reposts,
        sum(deletes) AS deletes
    FROM account_minutes WHERE bucket > {_NOW} - INTERVAL 1 HOUR GROUP BY did),
base AS (
    SELECT did, sum(posts + posts_deleted) / (30 * 24.0) AS posts_per_hour,
        sum(reposts_made) / (30 * 24.0) AS reposts_per_hour
    FROM account_buckets
    WHERE bucket > {_NOW} - INTERVAL 30 DAY AND bucket <= {_NOW} - INTERVAL 1 HOUR GROUP BY did)
SELECT r.did, r.posts, r.reposts, r.deletes,
    (r.posts + r.reposts) / greatest(coalesce(b.posts_per_hour + b.reposts_per_hour, 0), 0.1)
FROM recent r LEFT JOIN base b USING (did)"""

# Posts in the last hour at an hour of day (UTC) when the account had not posted in 30 days.
_ODD_HOURS: Final = f"""
WITH recent AS (
    SELECT subject_did AS did, hour(time) AS h, count(*) AS n FROM events
    WHERE direction = 'by' AND kind IN ('post', 'repost') AND action = 'create'
      AND time > {_NOW} - INTERVAL 1 HOUR GROUP BY ALL),
usual AS (
    SELECT DISTINCT subject_did AS did, hour(time) AS h FROM events
    WHERE direction = 'by' AND kind IN ('post', 'repost') AND action = 'create'
      AND time > {_NOW} - INTERVAL 30 DAY AND time <= {_NOW} - INTERVAL 1 HOUR)
SELECT r.did, sum(r.n) FROM recent r ANTI JOIN usual u ON u.did = r.did AND u.h = r.h
GROUP BY r.did"""

# Reposts in the last 24 h of authors the account never engaged with before.
_NOVEL_REPOSTS: Final = f"""
WITH recent AS (
    SELECT subject_did AS did, target_did FROM events
    WHERE direction = 'by' AND kind = 'repost' AND action = 'create'
      AND time > {_NOW} - INTERVAL 24 HOUR AND target_did IS NOT NULL),
known AS (
    SELECT DISTINCT subject_did AS did, target_did FROM events
    WHERE direction = 'by' AND target_did IS NOT NULL AND time <= {_NOW} - INTERVAL 24 HOUR)
SELECT r.did, count(*) FROM recent r ANTI JOIN known k ON k.did = r.did AND k.target_did = r.target_did
GROUP BY r.did"""

_IDENTITY: Final = f"""
SELECT a.did,
    (SELECT count(*) FROM handle_history h WHERE h.did = a.did AND h.time > {_NOW} - INTERVAL 24 HOUR),
    (SELECT count(*) FROM status_history s WHERE s.did = a.did AND s.time > {_NOW} - INTERVAL 24 HOUR),
    coalesce(a.active, true)
FROM accounts a"""

# Identity changes (issue 16): PDS endpoint or signing key of an operation in the last 24 h of
# identity_history that differs from the operation before it (nullified ops are not the
# account's state); the latest such change per account is the evidence.
_IDENTITY_CHANGES: Final = f"""
WITH ops AS (
    SELECT did, time, cid, pds, signing_key,
        lag(pds) OVER w AS old_pds, lag(signing_key) OVER w AS old_key, row_number() OVER w AS n
    FROM identity_history WHERE NOT nullified
    WINDOW w AS (PARTITION BY did ORDER BY time, cid)),
changes AS (
    SELECT *, pds IS DISTINCT FROM old_pds AS pds_changed,
        signing_key IS DISTINCT FROM old_key AS key_changed
    FROM ops WHERE n > 1 AND time > {_NOW} - INTERVAL 24 HOUR),
latest AS (
    SELECT * FROM changes WHERE pds_changed OR key_changed
    QUALIFY row_number() OVER (PARTITION BY did ORDER BY time DESC, cid DESC) = 1)
SELECT l.did, c.pds_changes, c.key_changes, l.old_pds, l.pds, l.old_key, l.signing_key, l.time
FROM latest l JOIN (
    SELECT did, count(*) FILTER (WHERE pds_changed) AS pds_changes,
        count(*) FILTER (WHERE key_changed) AS key_changes
    FROM changes GROUP BY did) c USING (did)"""

# The indicator set of the AccountTakeoverSuspected rule (deploy/prometheus/rules), the same
# thresholds: the forensics job fetches an account's identity history when one turns on.
THRESHOLDS: Final = {
    "handle_change": 1.0,
    "odd_hour_posts": 3.0,
    "activity_burst": 10.0,
    "mass_delete": 10.0,
    "novel_reposts": 5.0,
    "pds_change": 1.0,
    "signing_key_change": 1.0,
}
BURST_MIN_ACTIONS: Final = 5.0  # activity_burst also needs this many posts+reposts in the hour


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """The latest PDS / signing-key change of an account in the window (old → new)."""

    old_pds: str | None
    new_pds: str | None
    old_key: str | None
    new_key: str | None
    time: datetime


@dataclass(slots=True)
class Signals:
    viral: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # uri, recent, ratio
    posts_1h: dict[str, float] = field(default_factory=dict)
    reposts_1h: dict[str, float] = field(default_factory=dict)
    deletes_1h: dict[str, float] = field(default_factory=dict)
    activity_ratio: dict[str, float] = field(default_factory=dict)
    odd_hour_posts_1h: dict[str, float] = field(default_factory=dict)
    novel_reposts_24h: dict[str, float] = field(default_factory=dict)
    handle_changes_24h: dict[str, float] = field(default_factory=dict)
    status_changes_24h: dict[str, float] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)
    pds_changes_24h: dict[str, float] = field(default_factory=dict)
    signing_key_changes_24h: dict[str, float] = field(default_factory=dict)
    identity_change: dict[str, IdentityChange] = field(default_factory=dict)


def compute(con: duckdb.DuckDBPyConnection) -> Signals:
    s = Signals()
    for did, uri, recent, ratio in con.execute(_VIRAL).fetchall():
        s.viral[did] = (uri, float(recent), float(ratio))
    for did, posts, reposts, deletes, ratio in con.execute(_RATES).fetchall():
        s.posts_1h[did], s.reposts_1h[did] = float(posts), float(reposts)
        s.deletes_1h[did], s.activity_ratio[did] = float(deletes), float(ratio)
    s.odd_hour_posts_1h = {d: float(n) for d, n in con.execute(_ODD_HOURS).fetchall()}
    s.novel_reposts_24h = {d: float(n) for d, n in con.execute(_NOVEL_REPOSTS).fetchall()}
    for did, handles, statuses, active in con.execute(_IDENTITY).fetchall():
        s.handle_changes_24h[did], s.status_changes_24h[did] = float(handles), float(statuses)
        s.active[did] = 1.0 if active else 0.0
    for did, pds_n, key_n, *change in con.execute(_IDENTITY_CHANGES).fetchall():
        s.pds_changes_24h[did], s.signing_key_changes_24h[did] = float(pds_n), float(key_n)
        s.identity_change[did] = IdentityChange(*change)
    return s


def takeover_indicators(s: Signals) -> dict[str, dict[str, float]]:
    """Per account, the indicators above their threshold (name → raw value), as the rule sees them."""
    raw = {
        "handle_change": s.handle_changes_24h,
        "odd_hour_posts": s.odd_hour_posts_1h,
        "activity_burst": s.activity_ratio,
        "mass_delete": s.deletes_1h,
        "novel_reposts": s.novel_reposts_24h,
        "pds_change": s.pds_changes_24h,
        "signing_key_change": s.signing_key_changes_24h,
    }
    out: dict[str, dict[str, float]] = {}
    for name, values in raw.items():
        for did, value in values.items():
            if value < THRESHOLDS[name]:
                continue
            if (
                name == "activity_burst"
                and s.posts_1h.get(did, 0) + s.reposts_1h.get(did, 0) < BURST_MIN_ACTIONS
            ):
                continue
            out.setdefault(did, {})[name] = value
    return out
