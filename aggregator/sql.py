"""Ad-hoc read-only SQL over a store file (the writer's snapshot): `bluepulse sql`.

Two walls. The guard accepts one SELECT (WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE,
EXPLAIN of a SELECT) and refuses, with a message naming the reason, anything that writes,
attaches, copies, exports/imports, installs/loads, changes settings, or calls a table
function that can read files; it inspects DuckDB's own parse tree, so quoting or comments
do not hide a call. Then the query runs on a read-only connection with external access
disabled and the configuration locked, so a gap in the guard still cannot reach a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import duckdb

_SAFE_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
ALLOWED_TABLE_FUNCTIONS: Final = frozenset({
    "range", "generate_series", "unnest", "duckdb_tables", "duckdb_views", "duckdb_columns",
    "duckdb_schemas", "duckdb_types", "duckdb_functions", "duckdb_indexes",
    "duckdb_constraints", "duckdb_databases", "duckdb_keywords",
})  # fmt: skip
_REFUSED_TYPES: Final = {
    "ATTACH": "ATTACH opens another database file",
    "DETACH": "DETACH changes the attached databases",
    "COPY": "COPY reads or writes files",
    "COPY_DATABASE": "COPY reads or writes files",
    "EXPORT": "EXPORT writes files",
    "PRAGMA": "PRAGMA and IMPORT DATABASE are not queries",
    "LOAD": "INSTALL/LOAD fetch or load extensions",
    "SET": "SET/RESET/USE change settings",
    "VARIABLE_SET": "SET VARIABLE changes settings",
    "CALL": "CALL runs procedures",
    "TRANSACTION": "transaction control is not a query",
}
_EXPLAIN: Final = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s", re.IGNORECASE)
_PATH_CHARS: Final = re.compile(r"[/\\.:*?~]")
_HINT: Final = (
    "ad-hoc SQL is read-only: one SELECT (or WITH, SHOW, DESCRIBE, EXPLAIN) over the store's tables and views"
)


class QueryRefusedError(ValueError):
    """The guard refused the statement; the message says why."""


class QueryError(RuntimeError):
    """The query was allowed but could not run (bad SQL, missing store, held file…)."""


def check_query(sql: str) -> None:
    """Raise QueryRefusedError unless `sql` is one read-only query that touches no file."""
    statement = _single_statement(sql)
    kind = statement.type.name
    if kind == "EXPLAIN":
        match = _EXPLAIN.match(statement.query)
        inner = statement.query[match.end() :] if match else ""
        statement = _single_statement(inner)
        kind = statement.type.name
    if kind != "SELECT":
        reason = _REFUSED_TYPES.get(kind, f"{kind} statements change the store")
        raise QueryRefusedError(f"refused: {reason}; {_HINT}")
    _check_tree(statement.query)


def _single_statement(sql: str) -> Any:
    if not sql.strip():
        raise QueryRefusedError(f"refused: empty query; {_HINT}")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefusedError(f"refused: not valid SQL: {exc}") from exc
    if len(statements) != 1:
        raise QueryRefusedError(f"refused: {len(statements)} statements; send exactly one")
    return statements[0]


def _check_tree(sql: str) -> None:
    with duckdb.connect(":memory:", config=_SAFE_CONFIG) as con:
        row = con.execute("SELECT json_serialize_sql($1::VARCHAR)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        message = tree.get("error_message", "cannot be parsed")
        raise QueryRefusedError(f"refused: this query cannot be checked ({message}); {_HINT}")
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefusedError(
                    f"refused: table function {name}() can read files or run other statements; {_HINT}"
                )
        elif kind == "BASE_TABLE" and _PATH_CHARS.search(str(node.get("table_name", ""))):
            raise QueryRefusedError(f"refused: FROM {node.get('table_name')!r} would read a file; {_HINT}")


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the parse tree, depth first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def writer_holds(db_path: str | Path) -> bool:
    """True when another process has the store open for writing.

    Asked with DuckDB's normal file lock: a connection with external access disabled skips
    that check and could read a file mid-write, so readers then go to the snapshot.
    """
    try:
        duckdb.connect(str(db_path), read_only=True).close()
    except duckdb.Error as exc:
        return "lock" in str(exc).lower()
    return False


def run_readonly_query(
    db_path: str | Path, sql: str, *, max_rows: int | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of one guarded query on a read-only, no-file-access connection."""
    check_query(sql)
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"{path}: no such store file")
    try:
        con = duckdb.connect(str(path), read_only=True, config=_SAFE_CONFIG)
    except duckdb.Error as exc:
        held = "lock" in str(exc).lower()
        hint = "; the aggregator holds it: query its snapshot file instead" if held else ""
        raise QueryError(f"{path}: cannot open: {exc}{hint}") from exc
    try:
        result = con.execute(sql)
        names = [d[0] for d in result.description or []]
        rows = result.fetchall() if max_rows is None else result.fetchmany(max_rows)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from exc
    finally:
        con.close()
    return names, rows
