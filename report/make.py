"""One report from one store connection: check the schema, choose the accounts, read, write.

The connection is read-only (a file opened `read_only` by `bluepulse report`) or a reader
cursor of the running writer (`bluepulse demo`): nothing here writes to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final

import duckdb

from report.errors import ReportUsageError
from report.figures import read_barometer, select_category, store_accounts
from report.i18n import Language
from report.periods import Period
from report.render import ReportFiles, write_report
from schemas.accounts import Account

NEEDED: Final = ("accounts", "posts", "followers_history", "top_posts", "account_buckets")


def make_report(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    out: Path,
    *,
    lang: str = "fr",
    accounts: Sequence[Account] | None = None,
    category: str | None = None,
) -> ReportFiles:
    """Write the report of `period` into `out`; `accounts` None: the accounts the store knows."""
    check_store(con)
    chosen = select_category(store_accounts(con) if accounts is None else accounts, category)
    return write_report(read_barometer(con, period, chosen), Language(lang), out, category)


def check_store(con: duckdb.DuckDBPyConnection) -> None:
    """ReportUsageError when the file lacks what a report reads (a store of before follower history)."""
    found = {
        str(r[0])
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()"
        ).fetchall()
    }
    missing = [name for name in NEEDED if name not in found]
    if missing:
        raise ReportUsageError(
            f"not a bluepulse store of schema version 5 or later (missing: {', '.join(missing)}); "
            "open it once with this bluepulse (`bluepulse aggregator` or `run`) to migrate it"
        )


def store_days(con: duckdb.DuckDBPyConnection) -> Period | None:
    """The days the store's posts span (the demo reports on its day), None when it has none."""
    row = con.execute(
        "SELECT min(coalesce(created_at, first_seen)), max(coalesce(created_at, first_seen)) FROM posts"
    ).fetchone()
    if not row or row[0] is None:
        return None
    first, last = row[0], row[1]
    return Period(_day(first), _day(last), "range")


def _day(value: date) -> date:
    return date(value.year, value.month, value.day)
