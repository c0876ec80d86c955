"""Several aggregators' store files read as one: what `bluepulse sql --db a --db b` queries.

Each aggregator of a consumer group writes its own file, and an account's counts may sit in
more than one of them: its partition moves to another member on a rebalance, so the new
owner's file holds the account's later buckets and the old file its earlier ones. Summing
the per-file `account_totals` would be right; taking any one of them would not, and a window
(`account_window`, `hot_posts`) must be measured against the newest event of all the files.

So the union is built one level down, on the tables: every file is attached read-only
(`db1`, `db2`… in the order given), and an in-memory view of each table's name merges them —
buckets and logs are concatenated (UNION ALL: a bucket split between two files is summed by
the views, as the single-store views already sum buckets), `clock` is the newest event of all,
and a keyed table (`accounts`, `posts`, …) keeps one row per key, the latest state. Then the
very views of a single store (aggregator/views.py) are created over these, so every query of
one file works unchanged over several.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import duckdb

from aggregator.errors import QueryError
from aggregator.views import VIEWS

_EPOCH: Final = "TIMESTAMP '1970-01-01'"
# keyed tables: key columns and, per column, how rows of several files merge (default: any_value)
_LATEST_HANDLE: Final = f"arg_max({{c}}, coalesce(handle_changed_at, {_EPOCH}))"
_LATEST_STATUS: Final = f"arg_max({{c}}, coalesce(status_changed_at, {_EPOCH}))"
_KEYED: Final[dict[str, tuple[tuple[str, ...], dict[str, str]]]] = {
    "accounts": (
        ("did",),
        {
            "handle": _LATEST_HANDLE,
            "active": _LATEST_STATUS,
            "status": _LATEST_STATUS,
            "handle_changed_at": "max({c})",
            "status_changed_at": "max({c})",
        },
    ),
    "posts": (("uri",), {"deleted": "bool_or({c})", "deleted_at": "max({c})", "first_seen": "min({c})"}),
    "post_snapshots": (("uri",), {"*": "arg_max({c}, time)"}),
    "followers_history": (("did", "time"), {}),
    "identity_history": (("did", "cid"), {"nullified": "bool_or({c})", "fetched_at": "max({c})"}),
}
_FIRST_FILE_ONLY: Final = frozenset({"schema_version"})


def attached_name(index: int) -> str:
    """What the `index`-th file (0-based) is attached as: db1, db2… (`SELECT … FROM db2.events`)."""
    return f"db{index + 1}"


def attach(con: duckdb.DuckDBPyConnection, index: int, path: str) -> None:
    con.execute(f"ATTACH '{_quoted(path)}' AS {attached_name(index)} (READ_ONLY)")


def create_union_views(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> None:
    """Over the files attached as db1, db2… (`attach`), the merged tables and the store's views
    in `main`, under the single-store names."""
    names = [attached_name(i) for i in range(len(paths))]
    _check_versions(con, names, paths)
    for table, columns in _tables(con, names[0]).items():
        for other in names[1:]:
            if _columns(con, other, table) != columns:
                raise QueryError(f"table {table} differs between {paths[0]} and {paths[names.index(other)]}")
        con.execute(f"CREATE VIEW {table} AS {_merged(table, columns, names)}")
    for view in VIEWS:
        con.execute(view)


def _quoted(path: str) -> str:
    return path.replace("'", "''")


def _check_versions(con: duckdb.DuckDBPyConnection, names: Sequence[str], paths: Sequence[str]) -> None:
    versions = {}
    for name, path in zip(names, paths, strict=True):
        row = con.execute(f"SELECT max(version) FROM {name}.schema_version").fetchone()
        versions[path] = row[0] if row else None
    if len(set(versions.values())) != 1:
        found = ", ".join(f"{p}: {v}" for p, v in versions.items())
        raise QueryError(
            f"the files have different store schema versions ({found}); open each with one version"
        )


def _tables(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "ORDER BY table_name",
        [name],
    ).fetchall()
    return {str(table): _columns(con, name, str(table)) for (table,) in rows}


def _columns(con: duckdb.DuckDBPyConnection, name: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? ORDER BY column_index",
        [name, table],
    ).fetchall()
    return [str(c) for (c,) in rows]


def _merged(table: str, columns: Sequence[str], names: Sequence[str]) -> str:
    """The SELECT merging `table` of every attached file."""
    if table in _FIRST_FILE_ONLY:
        return f"SELECT * FROM {names[0]}.{table}"
    union = " UNION ALL ".join(f"SELECT * FROM {n}.{table}" for n in names)
    if table == "clock":
        return f"SELECT 1 AS id, max(newest_event) AS newest_event FROM ({union})"
    if table not in _KEYED:
        return union
    keys, rules = _KEYED[table]
    picks = [
        c if c in keys else (rules.get(c) or rules.get("*") or "any_value({c})").format(c=c) + f" AS {c}"
        for c in columns
    ]
    return f"SELECT {', '.join(picks)} FROM ({union}) GROUP BY {', '.join(keys)}"
