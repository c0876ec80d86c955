"""Rollup and retention: move old minute buckets into hours and days, prune the event log.

Bucket levels hold disjoint data, so a window sums all three and stays right whenever
the rollup runs (late events landing in an already rolled range are moved next time).
Cutoffs are aligned to the coarser bucket and relative to the store clock. Day buckets
are kept forever (all-time totals are sums over the levels); the event log is pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import duckdb

from aggregator.counters import ACCOUNT_COUNTERS, POST_COUNTERS


def _move_sql(source: str, target: str, unit: str, keys: tuple[str, ...], names: tuple[str, ...]) -> str:
    cols, key_cols = ", ".join(names), ", ".join(keys)
    sums = ", ".join(f"sum({n})" for n in names)
    sets = ", ".join(f"{n} = {target}.{n} + excluded.{n}" for n in names)
    return (
        f"INSERT INTO {target} ({key_cols}, bucket, {cols}) "
        f"SELECT {key_cols}, date_trunc('{unit}', bucket) AS b, {sums} FROM {source} "
        f"WHERE bucket < $1 GROUP BY {key_cols}, b "
        f"ON CONFLICT ({keys[0]}, bucket) DO UPDATE SET {sets}"
    )


_ACCOUNT: Final = ("did",)
_POST: Final = ("uri", "did")
_MINUTES_TO_HOURS: Final = _move_sql("account_minutes", "account_hours", "hour", _ACCOUNT, ACCOUNT_COUNTERS)
_HOURS_TO_DAYS: Final = _move_sql("account_hours", "account_days", "day", _ACCOUNT, ACCOUNT_COUNTERS)
_POST_MINUTES_TO_DAYS: Final = _move_sql("post_minutes", "post_days", "day", _POST, POST_COUNTERS)


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    minutes_rolled: int
    hours_rolled: int
    post_minutes_rolled: int
    events_pruned: int
    keys_pruned: int = 0


def _floor(moment: datetime, unit: str) -> datetime:
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _move(con: duckdb.DuckDBPyConnection, sql: str, source: str, cutoff: datetime) -> int:
    con.execute(sql, [cutoff]).fetchall()
    row = con.execute(f"DELETE FROM {source} WHERE bucket < $1", [cutoff]).fetchone()
    return int(row[0]) if row else 0


def run_maintenance(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    *,
    minute_keep: timedelta,
    hour_keep: timedelta,
    retention: timedelta,
    post_minutes_keep: timedelta,
    dedup: timedelta,
) -> MaintenanceResult:
    """Roll up and prune relative to `now`, inside the caller's transaction; identity keys
    (aggregator/identity.py) are kept for `dedup`."""
    minutes = _move(con, _MINUTES_TO_HOURS, "account_minutes", _floor(now - minute_keep, "hour"))
    hours = _move(con, _HOURS_TO_DAYS, "account_hours", _floor(now - hour_keep, "day"))
    posts = _move(con, _POST_MINUTES_TO_DAYS, "post_minutes", _floor(now - post_minutes_keep, "day"))
    row = con.execute("DELETE FROM events WHERE time < $1", [now - retention]).fetchone()
    keys = con.execute("DELETE FROM event_keys WHERE time < $1", [now - dedup]).fetchone()
    return MaintenanceResult(minutes, hours, posts, int(row[0]) if row else 0, int(keys[0]) if keys else 0)
