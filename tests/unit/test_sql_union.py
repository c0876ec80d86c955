"""`bluepulse sql --db a --db b`: several aggregators' files read as one answer as one file would,
and the user's query is as walled in as on one file (the ATTACHes are ours, before the lock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator import sql as sql_module
from aggregator.errors import QueryError, QueryRefusedError, StoreHeldError
from aggregator.sql import open_readonly_union_query, run_readonly_query
from aggregator.store import PartitionBatch, Store
from schemas import Event
from tests.unit.test_store import ACCOUNTS, scenario

# every view a user queries, in a stable order (the windows are relative to the newest event)
VIEW_QUERIES = (
    "SELECT * FROM account_totals ORDER BY did",
    'SELECT * FROM account_window ORDER BY did, "window"',
    "SELECT * FROM top_posts ORDER BY uri",
    "SELECT * FROM hot_posts ORDER BY uri",
    "SELECT * FROM mentions ORDER BY time, uri",
    "SELECT * FROM accounts_now ORDER BY did",
    "SELECT * FROM account_buckets ORDER BY did, level, bucket",
    "SELECT count(*), min(time), max(time) FROM events",
    "SELECT * FROM clock",
)


def store_file(path: Path, events: list[Event], partition: str = "t/0") -> Path:
    with Store.open(path) as store:
        store.upsert_accounts(ACCOUNTS)
        if events:
            store.apply({partition: PartitionBatch(events, 1)})
    return path


def union_rows(paths: list[Path], sql: str) -> list[tuple[object, ...]]:
    def no_snapshot(path: Path, held: StoreHeldError) -> Path:
        raise held

    with open_readonly_union_query(paths, sql, no_snapshot) as query:
        return [row for batch in query.batches() for row in batch]


def summed_buckets(rows: list[tuple[object, ...]]) -> dict[tuple[object, ...], list[int]]:
    """account_buckets rows keyed by (did, level, bucket), counters summed: a bucket the rebalance
    split between two files is one bucket of the single store."""
    out: dict[tuple[object, ...], list[int]] = {}
    for level, did, bucket, *counters in rows:
        key = (did, level, bucket)
        previous = out.get(key, [0] * len(counters))
        out[key] = [a + int(b) for a, b in zip(previous, counters, strict=True)]  # type: ignore[call-overload]
    return out


@pytest.mark.parametrize("cut", [0, 1, 17, 19])
def test_two_files_split_by_a_rebalance_read_as_one_file(tmp_path: Path, cut: int) -> None:
    """The partition of A moved after `cut` events: the first file holds A's beginning, the
    second its end; the union answers every view exactly as the file that saw everything."""
    events = scenario()
    one = store_file(tmp_path / "one.duckdb", events)
    first = store_file(tmp_path / "a.duckdb", events[:cut])
    second = store_file(tmp_path / "b.duckdb", events[cut:])
    for sql in VIEW_QUERIES:
        _, expected = run_readonly_query(one, sql)
        found = union_rows([first, second], sql)
        if "account_buckets" in sql:
            assert summed_buckets(found) == summed_buckets(expected), sql
        else:
            assert found == expected, sql


@pytest.mark.parametrize("cut", [5, 9, 14])
def test_a_post_created_before_the_move_and_deleted_after_it_stays_in_the_net_post_count(
    tmp_path: Path, cut: int
) -> None:
    """The known limit (README "Scaling out"): the new owner never saw P2 created, so it counts
    its delete as one of a post made before tracking began (posts_deleted and deletes, not
    posts - 1). Everything else is exact; the net `posts` is one too high."""
    events = scenario()
    one = store_file(tmp_path / "one.duckdb", events)
    first = store_file(tmp_path / "a.duckdb", events[:cut])
    second = store_file(tmp_path / "b.duckdb", events[cut:])
    sql = VIEW_QUERIES[0]
    columns, [expected_a, expected_b] = run_readonly_query(one, sql)
    [found_a, found_b] = union_rows([first, second], sql)
    posts = columns.index("posts")
    assert found_b == expected_b
    assert found_a[posts] == expected_a[posts] + 1
    assert found_a[:posts] + found_a[posts + 1 :] == expected_a[:posts] + expected_a[posts + 1 :]


def test_each_file_stays_readable_by_its_attached_name(tmp_path: Path) -> None:
    events = scenario()
    first = store_file(tmp_path / "a.duckdb", events[:5])
    second = store_file(tmp_path / "b.duckdb", events[5:])
    rows = union_rows(
        [first, second], "SELECT (SELECT count(*) FROM db1.events), (SELECT count(*) FROM db2.events)"
    )
    assert rows == [(5, len(events) - 5)]


def test_the_users_query_cannot_reach_a_file_even_past_the_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store_file(tmp_path / "a.duckdb", scenario()[:5])
    second = store_file(tmp_path / "b.duckdb", scenario()[5:])
    with pytest.raises(QueryRefusedError, match="ATTACH"):
        union_rows([first, second], f"ATTACH '{tmp_path / 'c.duckdb'}' AS c")
    monkeypatch.setattr(sql_module, "check_query", lambda sql: None)
    (tmp_path / "secret.csv").write_text("a\n1\n")
    for sql in (
        f"ATTACH '{tmp_path / 'c.duckdb'}' AS c",
        f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "INSERT INTO db1.accounts (did) VALUES ('did:plc:x')",
    ):  # (DETACH, or a table in the in-memory catalog, gets past this wall: no file in reach)
        with pytest.raises(QueryError):
            union_rows([first, second], sql)
    assert not (tmp_path / "c.duckdb").exists()
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_file_or_a_file_given_twice_is_a_query_error(tmp_path: Path) -> None:
    first = store_file(tmp_path / "a.duckdb", scenario())
    with pytest.raises(QueryError, match="no such store file"):
        union_rows([first, tmp_path / "absent.duckdb"], "SELECT 1")
    with pytest.raises(QueryError, match="given twice"):
        union_rows([first, tmp_path / "." / "a.duckdb"], "SELECT 1")
