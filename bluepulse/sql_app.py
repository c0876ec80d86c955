"""`bluepulse sql`: one guarded query, its rows streamed to stdout as DuckDB yields them.

Nothing holds the whole result: rows are fetched in batches and written as they come, so
`SELECT * FROM range(100000000)` prints in flat memory. A table on a terminal stops after
100 000 rows by default (a person reads it; a file or pipe gets everything) and says so.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

from aggregator.errors import QueryError, QueryRefusedError, StoreHeldError
from aggregator.report import RowLimit, write_rows
from aggregator.sql import QueryRows, open_readonly_query, open_readonly_union_query
from bluepulse.config import SqlConfig, snapshot_path
from bluepulse.errors import CommandError

TERMINAL_TABLE_ROWS: Final = 100_000


def max_rows(configured: int | None, fmt: str, terminal: bool) -> int | None:
    """Rows to print at most (None: all): 0 means all; unset means a screenful bound only for a person."""
    if configured is None:
        return TERMINAL_TABLE_ROWS if fmt == "table" and terminal else None
    return configured or None


def main(config: SqlConfig) -> int:
    limit = max_rows(config.max_rows, config.format, sys.stdout.isatty())
    try:
        with _open(config) as query:
            rows = RowLimit(query.batches(), limit)
            write_rows(sys.stdout, query.columns, rows, config.format)
            sys.stdout.flush()
    except QueryRefusedError as exc:
        raise CommandError(f"query refused: {exc}") from exc
    except QueryError as exc:
        raise CommandError(f"query failed: {exc}") from exc
    except BrokenPipeError:  # `bluepulse sql … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if rows.truncated:
        shown = f"{limit:,}".replace(",", " ")
        print(f"(showing the first {shown} rows; --max-rows to change)", file=sys.stderr)
    return 0


@contextmanager
def _open(config: SqlConfig) -> Iterator[QueryRows]:
    """One store (or its snapshot while the aggregator holds it for writing), or several read as one."""
    if len(config.db) > 1:
        with open_readonly_union_query(config.db, config.query, _snapshot_of) as query:
            yield query
        return
    [db] = config.db
    with ExitStack() as stack:
        try:
            query = stack.enter_context(open_readonly_query(db, config.query))
        except StoreHeldError as exc:
            query = stack.enter_context(open_readonly_query(_snapshot_of(db, exc), config.query))
        yield query


def _snapshot_of(db: Path, held: StoreHeldError) -> Path:
    """The snapshot the aggregator writing `db` keeps (saying so, and how old), else `held`."""
    snapshot = snapshot_path(db)
    if not snapshot.exists():
        raise held
    age = time.time() - snapshot.stat().st_mtime
    print(f"(the aggregator is writing {db}: reading its snapshot, {age:.0f} s old)", file=sys.stderr)
    return snapshot
