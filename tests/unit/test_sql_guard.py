"""Ad-hoc SQL is read-only: the guard refuses every dangerous form; the connection is a second wall."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aggregator import sql as sql_module
from aggregator.errors import QueryError, QueryRefusedError
from aggregator.sql import check_query, open_readonly_query, run_readonly_query
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sql")
    (root / "secret.csv").write_text("a,b\n1,2\n")
    with Store.open(root / "store.duckdb") as store:
        store.apply(
            {
                "queue": PartitionBatch(
                    [
                        Event(
                            seq=1,
                            idx=0,
                            kind=Kind.MENTION,
                            action=Action.CREATE,
                            direction=Direction.TO,
                            subject_did=A,
                            actor_did=A.replace("a", "x"),
                            time="2026-07-04T12:00:00Z",
                            text="hi",
                        ),
                    ]
                )
            }
        )
        store.snapshot(root / "snapshot.duckdb")
    return root / "snapshot.duckdb"


REFUSED = {
    "INSERT INTO accounts (did) VALUES ('did:plc:x')": "INSERT changes the store",
    "UPDATE accounts SET name = 'x'": "UPDATE changes the store",
    "DELETE FROM events": "DELETE changes the store",
    "CREATE TABLE t (a INT)": "CREATE changes the store",
    "DROP VIEW account_totals": "DROP changes the store",
    "ATTACH '/tmp/other.duckdb' AS o": "ATTACH",
    "DETACH o": "DETACH",
    "COPY events TO '/tmp/out.csv'": "COPY",
    "COPY events FROM '/tmp/in.csv'": "COPY",
    "EXPORT DATABASE '/tmp/dump'": "EXPORT",
    "IMPORT DATABASE '/tmp/dump'": "IMPORT",
    "INSTALL httpfs": "INSTALL/LOAD",
    "LOAD httpfs": "INSTALL/LOAD",
    "SET enable_external_access = true": "SET",
    "RESET threads": "SET",
    "PRAGMA version": "PRAGMA",
    "CHECKPOINT": "CHECKPOINT writes the store",
    "CALL pragma_version()": "CALL runs a procedure",
    "BEGIN TRANSACTION": "transaction",
    "SELECT 1; SELECT 2": "2 statements",
    "SELECT 1; DROP TABLE events": "2 statements",
    "": "empty",
    "SELECT * FROM read_csv('/etc/passwd')": "read_csv",
    "SELECT * FROM read_csv_auto('/etc/passwd')": "read_csv_auto",
    "SELECT * FROM read_parquet('x.parquet')": "read_parquet",
    "SELECT * FROM parquet_scan('x.parquet')": "parquet_scan",
    "SELECT * FROM read_json('x.json')": "read_json",
    "SELECT * FROM read_json_auto('x.json')": "read_json_auto",
    "SELECT * FROM read_text('/etc/hostname')": "read_text",
    "SELECT * FROM read_blob('/etc/hostname')": "read_blob",
    "SELECT * FROM glob('/etc/*')": "glob",
    "SELECT * FROM sniff_csv('/etc/passwd')": "sniff_csv",
    "SELECT * FROM query('SELECT 1')": "query",
    "SELECT * FROM '/etc/passwd'": "would read a file",
    'SELECT * FROM "secret.csv"': "would read a file",
    "SELECT count(*) FROM events WHERE seq IN (SELECT 1 FROM read_text('/etc/hostname'))": "read_text",
    "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x": "read_csv",
    "SELECT 1 FROM events, LATERAL read_json('x.json')": "read_json",
    "SELECT * FROM /* hidden */ READ_CSV ('/etc/passwd')": "read_csv",
    "EXPLAIN COPY events TO '/tmp/x.csv'": "COPY",
    "SELEC nonsense": "not valid SQL",
    # the statement is named as the user wrote it, not by DuckDB's internal statement type
    "ANALYZE": "ANALYZE recomputes the store's statistics",
    "analyze events": "ANALYZE recomputes",
    "VACUUM": "VACUUM rewrites the store",
    "PIVOT events ON kind USING count(*)": "PIVOT without an IN list",
    "WITH e AS (FROM events) PIVOT e ON kind USING count(*)": "PIVOT without an IN list",
    "explain pivot events on kind using count(*)": "PIVOT without an IN list",
    "UPDATE EXTENSIONS": "UPDATE EXTENSIONS fetches extensions",  # a type the Python enum lacks
    "FORCE INSTALL httpfs": "FORCE INSTALL fetches",
    "PREPARE p AS SELECT 1": "PREPARE prepares a statement",
    "/* c */ -- d\n  COPY events TO '/tmp/x.csv'": "COPY reads or writes files",
    "/* a /* nested */ b */ EXPLAIN /* c */ DELETE FROM events": "DELETE changes the store",
    "/* only a comment */": "empty query",
}


@pytest.mark.parametrize(("sql", "reason"), REFUSED.items())
def test_guard_refuses_with_a_clear_message(sql: str, reason: str, snapshot: Path) -> None:
    with pytest.raises(QueryRefusedError) as info:
        run_readonly_query(snapshot, sql)
    assert reason.lower() in str(info.value).lower()
    assert "refused" not in str(info.value).lower()  # the CLI says "query refused: " once


ALLOWED = [
    "SELECT * FROM account_totals",
    'SELECT did, "window", interactions FROM account_window WHERE "window" = \'24h\'',
    "SELECT * FROM top_posts LIMIT 5",
    "SELECT * FROM hot_posts",
    "SELECT kind, count(*) FROM events GROUP BY kind",
    "WITH t AS (SELECT * FROM account_totals) SELECT count(*) FROM t",
    "FROM events",
    "SHOW TABLES",
    "DESCRIBE account_totals",
    "SUMMARIZE events",
    "EXPLAIN SELECT * FROM account_totals",
    "/* c */ EXPLAIN SELECT 1",
    "-- why\nEXPLAIN /* plan */ ANALYZE SELECT count(*) FROM events",
    "EXPLAIN (FORMAT json) SELECT 1",
    "PIVOT events ON kind IN ('mention', 'like') USING count(*)",
    "SELECT * FROM range(3)",
    "SELECT table_name FROM duckdb_tables()",
    "SELECT 'COPY events TO x; ATTACH' AS harmless_text",
    "SELECT text FROM events -- ATTACH in a comment\n",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_guard_allows_selects_on_the_views(sql: str, snapshot: Path) -> None:
    check_query(sql)
    columns, _ = run_readonly_query(snapshot, sql)
    assert columns


def test_query_returns_columns_and_rows(snapshot: Path) -> None:
    columns, rows = run_readonly_query(
        snapshot, f"SELECT did, mentions FROM account_totals WHERE did = '{A}'"
    )
    assert (columns, rows) == (["did", "mentions"], [(A, 1)])


def test_the_connection_refuses_files_even_if_the_guard_let_a_query_through(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_module, "check_query", lambda sql: None)
    secret = snapshot.parent / "secret.csv"
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM '{secret}'",
        f"COPY (SELECT 1) TO '{snapshot.parent / 'out.csv'}'",
        f"ATTACH '{snapshot.parent / 'other.duckdb'}' AS o",
        "SET enable_external_access = true",
        "INSERT INTO accounts (did) VALUES ('did:plc:x')",
        "LOAD httpfs",
    ):
        with pytest.raises(QueryError):
            run_readonly_query(snapshot, sql)
    assert not (snapshot.parent / "out.csv").exists()
    assert not (snapshot.parent / "other.duckdb").exists()


def test_missing_store_and_bad_sql_are_query_errors(snapshot: Path, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no such store"):
        run_readonly_query(tmp_path / "absent.duckdb", "SELECT 1")
    with pytest.raises(QueryError, match="is a directory; --db names the store file"):
        run_readonly_query(tmp_path, "SELECT 1")
    with pytest.raises(QueryError, match="no_such_table"):
        run_readonly_query(snapshot, "SELECT * FROM no_such_table")


def test_guard_parse_tree_check_needs_no_file_access() -> None:
    con = duckdb.connect(":memory:", config=sql_module._SAFE_CONFIG)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_rows_stream_in_batches_and_the_connection_closes(snapshot: Path) -> None:
    with open_readonly_query(snapshot, "SELECT * FROM range(25)") as query:
        sizes = [len(batch) for batch in query.batches(10)]
        assert query.columns == ["range"]
    assert sizes == [10, 10, 5]
    duckdb.connect(str(snapshot)).close()  # no reader left holding the file
    assert run_readonly_query(snapshot, "SELECT * FROM range(25)", max_rows=12)[1][-1] == (11,)


def test_an_error_while_rows_stream_is_a_query_error(snapshot: Path) -> None:
    sql = "SELECT CASE WHEN range < 15000 THEN range ELSE error('boom at ' || range) END FROM range(20000)"
    with open_readonly_query(snapshot, sql) as query, pytest.raises(QueryError, match="boom"):
        for _ in query.batches(1000):
            pass
