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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb

from aggregator.errors import QueryError, QueryRefusedError, StoreHeldError, lock_held
from aggregator.sql_text import after_explain, leading_words, skip_blanks
from aggregator.union import attach, create_union_views

_SAFE_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
ALLOWED_TABLE_FUNCTIONS: Final = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_schemas",
        "duckdb_types",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_constraints",
        "duckdb_databases",
        "duckdb_keywords",
    }
)
_PIVOT: Final = (
    "without an IN list runs two statements and cannot be checked; name the values: "
    "PIVOT t ON col IN ('a', 'b') USING sum(v)"
)
# What each refused kind of statement does, after the words the user wrote ("ANALYZE …").
_REFUSED_TYPES: Final = {
    "ATTACH": "opens another database file",
    "DETACH": "changes the attached databases",
    "COPY": "reads or writes files",
    "COPY_DATABASE": "reads or writes files",
    "EXPORT": "writes files",
    "PRAGMA": "is not a query",
    "LOAD": "fetches or loads extensions (INSTALL/LOAD)",
    "SET": "changes settings (SET/RESET/USE)",
    "VARIABLE_SET": "changes settings",
    "CALL": "runs a procedure",
    "TRANSACTION": "is transaction control, not a query",
    "PREPARE": "prepares a statement: send the query itself",
    "EXECUTE": "runs a prepared statement: send the query itself",
    "MULTI": "runs several statements (a PIVOT without an IN list?) and cannot be checked",
}
# Where DuckDB's statement type misnames what the user wrote, the leading words decide.
_REFUSED_WORDS: Final = {
    "ANALYZE": "recomputes the store's statistics (it writes)",
    "VACUUM": "rewrites the store",
    "CHECKPOINT": "writes the store",
    "FORCE CHECKPOINT": "writes the store",
    "IMPORT DATABASE": "reads files",
    "UPDATE EXTENSIONS": "fetches extensions",
    "PIVOT": _PIVOT,
}
_PIVOT_WORD: Final = re.compile(r"\bPIVOT\b", re.IGNORECASE)
_PATH_CHARS: Final = re.compile(r"[/\\.:*?~]")
_WRITES: Final = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE",
        "DROP",
        "ALTER",
        "MERGE_INTO",
        "CREATE_FUNC",
    }
)
BATCH_ROWS: Final = 10_000  # rows fetched at a time: output starts at once, memory stays flat
_HINT: Final = (
    "ad-hoc SQL is read-only: one SELECT (or WITH, SHOW, DESCRIBE, EXPLAIN) over the store's tables and views"
)


def check_query(sql: str) -> None:
    """Raise QueryRefusedError unless `sql` is one read-only query that touches no file."""
    statement = _single_statement(sql)
    kind = _kind(statement)
    if kind == "EXPLAIN":
        statement = _single_statement(after_explain(statement.query))
        kind = _kind(statement)
    if kind != "SELECT":
        raise QueryRefusedError(_refusal(statement.query, kind))
    _check_tree(statement.query)


def _kind(statement: Any) -> str:
    """DuckDB's statement type name; a type this duckdb's Python enum lacks is "UNKNOWN"."""
    try:
        return str(statement.type.name)
    except ValueError:  # e.g. UPDATE EXTENSIONS: "29 is not a valid StatementType"
        return "UNKNOWN"


def _refusal(sql: str, kind: str) -> str:
    """Name the statement by the words the user wrote, then say what it would do."""
    words = leading_words(sql)
    if kind == "MULTI" and _PIVOT_WORD.search(sql):  # WITH … PIVOT, EXPLAIN PIVOT: the PIVOT is the cause
        words = "PIVOT"
    what = _REFUSED_WORDS.get(words) or _REFUSED_WORDS.get(words.split(" ")[0])
    if what is None:
        what = _REFUSED_TYPES.get(
            kind, "changes the store" if kind in _WRITES else "is not a read-only query"
        )
    return f"{words or kind} {what}; {_HINT}"


def _single_statement(sql: str) -> Any:
    if not sql[skip_blanks(sql, 0) :].strip():
        raise QueryRefusedError(f"empty query; {_HINT}")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefusedError(f"not valid SQL: {exc}") from exc
    if len(statements) != 1:
        raise QueryRefusedError(f"{len(statements)} statements; send exactly one")
    return statements[0]


def _check_tree(sql: str) -> None:
    with duckdb.connect(":memory:", config=_SAFE_CONFIG) as con:
        row = con.execute("SELECT json_serialize_sql($1::VARCHAR)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        message = tree.get("error_message", "cannot be parsed")
        raise QueryRefusedError(f"this query cannot be checked ({message}); {_HINT}")
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefusedError(
                    f"table function {name}() can read files or run other statements; {_HINT}"
                )
        elif kind == "BASE_TABLE" and _PATH_CHARS.search(str(node.get("table_name", ""))):
            raise QueryRefusedError(f"FROM {node.get('table_name')!r} would read a file; {_HINT}")


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


class QueryRows:
    """An open query: its column names, and its rows fetched in batches as they are read."""

    def __init__(self, result: duckdb.DuckDBPyConnection) -> None:
        self._result = result
        self.columns: list[str] = [d[0] for d in result.description or []]

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        """Batches of at most `size` rows, never the whole result: memory stays flat."""
        while True:
            try:
                batch = self._result.fetchmany(size)
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc
            if not batch:
                return
            yield batch


@contextmanager
def open_readonly_query(db_path: str | Path, sql: str) -> Iterator[QueryRows]:
    """One guarded query on a read-only, no-file-access connection, closed on exit."""
    check_query(sql)
    con = _connect(Path(db_path))
    try:
        try:
            result = con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        yield QueryRows(result)
    finally:
        con.close()


@contextmanager
def open_readonly_union_query(
    db_paths: Sequence[Path], sql: str, readable: Callable[[Path, StoreHeldError], Path]
) -> Iterator[QueryRows]:
    """One guarded query over several store files read as one (aggregator/union.py).

    The query is checked first, as for one file. The ATTACHes are ours, made before it on a
    fresh in-memory connection that may still open files; then external access is disabled
    and the configuration locked, so the user's query runs exactly as walled in as on one
    file (ATTACH refused by the guard, and by DuckDB should the guard miss it). A file its
    aggregator holds is replaced by `readable(path, error)` (its snapshot) or the error raised.
    """
    check_query(sql)
    seen: set[Path] = set()
    for path in db_paths:
        if Path(path).resolve() in seen:
            raise QueryError(f"{path}: given twice; its counts would be summed twice")
        seen.add(Path(path).resolve())
    con = duckdb.connect(":memory:", config=_ATTACH_CONFIG)
    try:
        try:
            paths = [_attach_readable(con, i, Path(p), readable) for i, p in enumerate(db_paths)]
            create_union_views(con, [str(p) for p in paths])
        except duckdb.Error as exc:
            raise QueryError(f"cannot read the files as one: {exc}") from exc
        for key, value in _LOCK_AFTER_ATTACH:
            con.execute(f"SET {key} = {value}")
        try:
            result = con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        yield QueryRows(result)
    finally:
        con.close()


# `_SAFE_CONFIG` reached in two steps: files may be opened (ATTACH) until the lock
_ATTACH_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    k: v for k, v in _SAFE_CONFIG.items() if k not in ("enable_external_access", "lock_configuration")
}
_LOCK_AFTER_ATTACH: Final = (("enable_external_access", "false"), ("lock_configuration", "true"))


def _attach_readable(
    con: duckdb.DuckDBPyConnection, index: int, path: Path, readable: Callable[[Path, StoreHeldError], Path]
) -> Path:
    _check_file(path)
    try:
        attach(con, index, str(path))
        return path
    except duckdb.Error as exc:
        if not lock_held(exc):
            raise QueryError(f"{path}: cannot open: {exc}") from exc
        held = StoreHeldError(f"{path}: cannot open: {exc}; the aggregator holds it")
    other = readable(path, held)
    _check_file(other)
    try:
        attach(con, index, str(other))
    except duckdb.Error as exc:
        raise QueryError(f"{other}: cannot open: {exc}") from exc
    return other


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise QueryError(f"{path}: is a directory; --db names the store file (e.g. data/bluepulse.duckdb)")
    if not path.is_file():
        raise QueryError(f"{path}: no such store file")


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    _check_file(path)
    try:
        return duckdb.connect(str(path), read_only=True, config=_SAFE_CONFIG)
    except duckdb.Error as exc:
        if lock_held(exc):
            raise StoreHeldError(
                f"{path}: cannot open: {exc}; the aggregator holds it: query its snapshot file instead"
            ) from exc
        raise QueryError(f"{path}: cannot open: {exc}") from exc


def run_readonly_query(
    db_path: str | Path, sql: str, *, max_rows: int | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of one guarded query, the whole result (or its first `max_rows`) in memory."""
    with open_readonly_query(db_path, sql) as query:
        rows: list[tuple[Any, ...]] = []
        for batch in query.batches():
            rows.extend(batch)
            if max_rows is not None and len(rows) >= max_rows:
                del rows[max_rows:]
                break
        return query.columns, rows
