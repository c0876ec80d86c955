"""Ad-hoc SQL is read-only: the guard refuses every dangerous form; the connection is a second wall."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aggregator import sql as sql_module
from aggregator.sql import QueryError, QueryRefusedError, check_query, run_readonly_query
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sql")
    (root / "secret.csv").write_text("a,b\n1,2\n")
    with Store.open(root / "store.duckdb") as store:
        store.apply({"queue": PartitionBatch([
            Event(seq=1, idx=0, kind=Kind.MENTION, action=Action.CREATE, direction=Direction.TO,
                  subject_did=A, actor_did=A.replace("a", "x"), time="2026-07-04T12:00:00Z", text="hi"),
        ])})  # fmt: skip
        store.snapshot(root / "snapshot.duckdb")
    return root / "snapshot.duckdb"


REFUSED = {
    "INSERT INTO accounts (did) VALUES ('did:plc:x')": "change the store",
    "UPDATE accounts SET name = 'x'": "change the store",
    "DELETE FROM events": "change the store",
    "CREATE TABLE t (a INT)": "change the store",
    "DROP VIEW account_totals": "change the store",
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
    "CALL pragma_version()": "CALL",
    "CHECKPOINT": "CALL",
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
}


@pytest.mark.parametrize(("sql", "reason"), REFUSED.items())
def test_guard_refuses_with_a_clear_message(sql: str, reason: str, snapshot: Path) -> None:
    with pytest.raises(QueryRefusedError, match="refused") as info:
        run_readonly_query(snapshot, sql)
    assert reason.lower() in str(info.value).lower()


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
    with pytest.raises(QueryError, match="no_such_table"):
        run_readonly_query(snapshot, "SELECT * FROM no_such_table")


def test_guard_parse_tree_check_needs_no_file_access() -> None:
    con = duckdb.connect(":memory:", config=sql_module._SAFE_CONFIG)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
