"""`bluepulse report`: the barometer of a period from a DuckDB store, as files for people and machines.

The store is opened read-only; while a writer holds it the report reads the writer's snapshot
(as `bluepulse sql` does) and says how old it is. Everything heavy (altair, vl-convert,
jinja2, babel) is imported here, when the command runs, never at `bluepulse --help`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb

from aggregator.errors import StoreError, lock_held
from aggregator.store import Store
from bluepulse.config import ReportConfig, snapshot_path
from bluepulse.errors import CommandError
from report.errors import ReportFailedError
from report.make import make_report, store_days
from report.periods import choose
from schemas.accounts import Account, load_accounts
from schemas.errors import RegistryError

log = logging.getLogger(__name__)


def main(config: ReportConfig) -> int:
    period = choose(config.first_day, config.last_day, config.quarter, config.month)
    if config.out is None:
        raise CommandError("--out DIR is required: the directory the report is written to")
    accounts = None if config.accounts is None else read_accounts(config.accounts)
    con = connect(config.db)
    try:
        files = make_report(
            con, period, config.out, lang=config.lang, accounts=accounts, category=config.category
        )
    except duckdb.Error as exc:
        raise ReportFailedError(f"{config.db}: cannot read the store: {exc}") from exc
    except OSError as exc:
        raise ReportFailedError(f"{config.out}: cannot write the report: {exc}") from exc
    finally:
        con.close()
    log.info(
        "report written period=%s..%s lang=%s index=%s csv=%s charts=%d",
        period.first,
        period.last,
        config.lang,
        files.index,
        files.barometer,
        len(files.charts),
    )
    return 0


def read_accounts(path: Path) -> list[Account]:
    """The accounts file; one with a header and no account is an empty list (a report says so)."""
    try:
        return load_accounts(path)
    except RegistryError:
        if path.is_file() and _header_only(path):
            return []
        raise


def _header_only(path: Path) -> bool:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return len([line for line in lines if not line.lstrip().startswith("#")]) <= 1


def connect(db: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store, or to its snapshot while a writer holds it."""
    if db.is_dir():
        raise CommandError(f"{db}: is a directory; --db names the store file (e.g. data/bluepulse.duckdb)")
    if not db.is_file():
        raise CommandError(f"{db}: no such store file (--db)")
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        if not lock_held(exc):
            raise ReportFailedError(f"{db}: cannot open the store: {exc}") from exc
        snapshot = snapshot_path(db)
        if not snapshot.is_file():
            raise CommandError(
                f"{db}: a writer holds it and has written no snapshot yet; retry shortly"
            ) from exc
    age = time.time() - snapshot.stat().st_mtime
    log.info("the aggregator is writing %s: reading its snapshot, %.0f s old", db, age)
    try:
        return duckdb.connect(str(snapshot), read_only=True)
    except duckdb.Error as exc:
        raise ReportFailedError(f"{snapshot}: cannot open the snapshot: {exc}") from exc


def demo_report(store: Store, out: Path) -> Path | None:
    """The report of the days the demo's store holds, read through a cursor of its writer; a
    failure is logged, never the end of the demo."""
    con = store.cursor()
    try:
        period = store_days(con)
        if period is None:
            log.warning("demo report: the store holds no post yet")
            return None
        return make_report(con, period, out).index
    except (duckdb.Error, OSError, StoreError) as exc:
        log.warning("demo report not written: %s", exc)
        return None
    finally:
        con.close()
