"""Store behaviour on real DuckDB files: exact totals, replays, split batches, failures, schema."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aggregator import store as store_module
from aggregator import writes
from aggregator.errors import StoreError
from aggregator.schema_sql import STORE_SCHEMA_VERSION
from aggregator.store import PartitionBatch, Store
from aggregator.views import WINDOWS
from schemas import Action, Direction, Event, Kind
from schemas.accounts import Account

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"
Y = "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"
Z = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
P1 = f"at://{A}/app.bsky.feed.post/p1"
P2 = f"at://{A}/app.bsky.feed.post/p2"
ACCOUNTS = [
    Account(A, "hospital-a.example.com", "Hôpital A", "chu", "IDF"),
    Account(B, "clinic-b.example.com", "Clinique B", "clinic", "ARA"),
]


def ev(seq: int, kind: Kind, action: Action, direction: Direction, actor: str, **kw: Any) -> Event:
    values: dict[str, Any] = {"subject_did": A, "time": f"2026-07-04T12:{seq:02d}:00.000Z"}
    values.update(kw)
    return Event(seq=seq, idx=0, kind=kind, action=action, direction=direction, actor_did=actor, **values)


def like(seq: int, actor: str, uri: str, action: Action = Action.CREATE) -> Event:
    return ev(
        seq,
        Kind.LIKE,
        action,
        Direction.TO,
        actor,
        subject_uri=uri,
        target_did=A,
        uri=f"at://{actor}/app.bsky.feed.like/{seq}",
    )


def scenario() -> list[Event]:
    """Every kind the issue names, for tracked account A (and B liking A's post)."""
    c, d, to, by = Action.CREATE, Action.DELETE, Direction.TO, Direction.BY
    return [
        ev(1, Kind.POST, c, by, A, uri=P1, text="Vaccination jeudi", created_at="2026-07-04T12:01:00Z"),
        ev(2, Kind.POST, c, by, A, uri=P2, text="Portes ouvertes"),
        like(3, X, P1),
        like(4, Y, P1),
        like(5, X, P1, d),  # un-like
        ev(6, Kind.REPOST, c, to, X, subject_uri=P1, target_did=A),
        ev(7, Kind.REPOST, c, to, Y, subject_uri=P2, target_did=A),
        ev(8, Kind.REPOST, d, to, Y, subject_uri=P2, target_did=A),  # un-repost
        ev(9, Kind.REPLY, c, to, Z, subject_uri=P1, target_did=A, text="Merci !"),
        ev(10, Kind.QUOTE, c, to, Z, subject_uri=P2, target_did=A, text="À voir"),
        ev(11, Kind.MENTION, c, to, X, target_did=A, text="@hospital-a bravo"),
        ev(12, Kind.FOLLOW, c, to, X, target_did=A),
        ev(13, Kind.FOLLOW, c, to, Y, target_did=A),
        ev(14, Kind.FOLLOW, d, to, X, target_did=A),  # unfollow
        ev(15, Kind.LIKE, c, by, B, subject_did=B, subject_uri=P1, target_did=A),
        replace(like(15, B, P1), idx=1),  # the same like, seen by A's side
        ev(16, Kind.POST, d, by, A, uri=P2),  # post delete
        ev(17, Kind.HANDLE, Action.UPDATE, by, A, handle="Hospital-A-New.example.com"),
        ev(18, Kind.ACCOUNT, Action.UPDATE, by, A, active=False, status="deactivated"),
    ]


def open_store(tmp_path: Path, name: str = "store.duckdb") -> Store:
    store = Store.open(tmp_path / name)
    store.upsert_accounts(ACCOUNTS)
    return store


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return store.query(sql)[1]


def totals(store: Store, did: str = A) -> dict[str, Any]:
    names, found = store.query("SELECT * FROM account_totals WHERE did = ?", [did])
    return dict(zip(names, found[0], strict=True))


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (sorted), without ingest times: equal dumps mean equal stores."""
    tables = [r[0] for r in rows(store, "SELECT table_name FROM duckdb_tables() ORDER BY 1")]
    out = {}
    for table in tables:
        if table in ("schema_version", "store_identity"):  # each file its own id
            continue
        columns = [c for c in store.query(f"SELECT * FROM {table} LIMIT 0")[0] if c != "ingested_at"]
        out[table] = sorted(rows(store, f"SELECT {', '.join(columns)} FROM {table}"), key=repr)
    return out


def test_scenario_account_totals_are_exact(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        result = store.apply({"queue": PartitionBatch(scenario())})
        assert result.applied == len(scenario())
        t = totals(store)
        named = ("posts", "likes", "reposts", "replies", "quotes", "follows_gained", "follows_lost")
        assert [t[k] for k in named] == [1, 2, 1, 1, 1, 2, 1]
        assert (t["mentions"], t["interactions"]) == (1, 5)
        assert (t["posts_created"], t["posts_deleted"], t["likes_received"], t["unlikes"]) == (2, 1, 3, 1)
        assert (t["reposts_received"], t["unreposts"]) == (2, 1)
        assert (t["handle"], t["name"], t["category"]) == ("hospital-a-new.example.com", "Hôpital A", "chu")
        assert (t["active"], t["status"]) == (False, "deactivated")
        b = totals(store, B)
        assert (b["likes_made"], b["likes"], b["posts"]) == (1, 0, 0)


def test_post_delete_keeps_the_engagement_already_received(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(scenario())})
        top = rows(
            store,
            "SELECT uri, likes, reposts, replies, quotes, interactions, deleted, text "
            "FROM top_posts ORDER BY uri",
        )
        assert top == [
            (P1, 2, 1, 1, 0, 4, False, "Vaccination jeudi"),
            (P2, 0, 0, 0, 1, 1, True, "Portes ouvertes"),
        ]


def test_handle_and_status_history_are_kept(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(scenario())})
        assert rows(store, "SELECT did, handle, seq FROM handle_history") == [
            (A, "Hospital-A-New.example.com", 17)
        ]
        assert rows(store, "SELECT did, active, status FROM status_history") == [(A, False, "deactivated")]
        store.upsert_accounts(ACCOUNTS)  # a registry reload keeps the handle seen on the firehose
        assert totals(store)["handle"] == "hospital-a-new.example.com"


def test_interaction_rate_is_null_until_followers_are_known(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(scenario())})
        rate_sql = f"SELECT interaction_rate FROM top_posts WHERE uri = '{P1}'"
        assert rows(store, rate_sql) == [(None,)]
        store.set_followers({A: 200})
        assert rows(store, rate_sql) == [(pytest.approx(0.02),)]
        sql = "SELECT interactions, interaction_rate FROM account_window WHERE did = ? AND \"window\" = '24h'"
        assert store.query(sql, [A])[1] == [(5, pytest.approx(0.025))]


def test_replaying_the_same_batch_changes_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(scenario())})
        before = dump(store)
        again = store.apply({"queue": PartitionBatch(scenario())})
        assert (again.applied, again.replayed) == (0, len(scenario()))
        assert dump(store) == before


def test_a_batch_split_across_two_applies_equals_one_apply(tmp_path: Path) -> None:
    events = scenario()
    with open_store(tmp_path, "one.duckdb") as one, open_store(tmp_path, "two.duckdb") as two:
        one.apply({"queue": PartitionBatch(events, 42)})
        two.apply({"queue": PartitionBatch(events[:7], 20)})
        two.apply({"queue": PartitionBatch(events[:10], 30)})  # overlaps: a partial replay
        two.apply({"queue": PartitionBatch(events[10:], 42)})
        assert dump(two) == dump(one)


def test_positions_keep_offset_and_highest_seq_per_partition(tmp_path: Path) -> None:
    events = scenario()
    with open_store(tmp_path) as store:
        store.apply(
            {
                "bluepulse.events/0": PartitionBatch(events[:5], 5),
                "bluepulse.events/1": PartitionBatch(events[5:9], 9),
            }
        )
        store.apply({"bluepulse.events/0": PartitionBatch([], 7)})  # skipped messages still advance
        positions = store.positions()
        p0, p1 = positions["bluepulse.events/0"], positions["bluepulse.events/1"]
        assert (p0.next_offset, p0.sources["relay"].seq) == (7, 5)
        assert (p1.next_offset, p1.sources["relay"].seq) == (9, 9)
        store.apply({"queue": PartitionBatch(events[:2])})
        assert store.positions()["queue"].next_offset is None
    with Store.open(tmp_path / "store.duckdb") as reopened:
        assert reopened.positions() == positions | {"queue": reopened.positions()["queue"]}
        assert reopened.apply({"bluepulse.events/1": PartitionBatch(events[5:9], 9)}).applied == 0


def test_a_failed_apply_rolls_back_and_does_not_advance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = scenario()
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(events[:5], 5)})
        before, positions = dump(store), store.positions()
        real = writes.write_batch

        def failing(con: duckdb.DuckDBPyConnection, tables: Any) -> None:
            real(con, tables)
            con.execute("SELECT error('disk full, say')")

        monkeypatch.setattr(store_module, "write_batch", failing)
        with pytest.raises(StoreError, match="rolled back"):
            store.apply({"queue": PartitionBatch(events[5:], 99)})
        assert dump(store) == before
        assert store.positions() == positions
        monkeypatch.setattr(store_module, "write_batch", real)
        assert store.apply({"queue": PartitionBatch(events[5:], 99)}).applied == len(events) - 5
        assert totals(store)["likes"] == 2


def test_unparsable_event_time_is_counted_and_applied(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        result = store.apply(
            {"queue": PartitionBatch([ev(1, Kind.MENTION, Action.CREATE, Direction.TO, X, time="garbage")])}
        )
        assert (result.applied, result.bad_times) == (1, 1)
        assert totals(store)["mentions"] == 1


def test_a_store_from_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [STORE_SCHEMA_VERSION + 1])
    con.close()
    newer = STORE_SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match=rf"written by store schema version {newer}.*upgrade bluepulse"):
        Store.open(path)


def test_reopening_keeps_data_and_schema_version(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.apply({"queue": PartitionBatch(scenario())})
    with Store.open(tmp_path / "store.duckdb") as store:
        assert totals(store)["likes"] == 2
        # one row per migration step a fresh file ran, none added by reopening it
        expected = [(STORE_SCHEMA_VERSION, STORE_SCHEMA_VERSION)]
        assert rows(store, "SELECT max(version), count(*) FROM schema_version") == expected


def test_a_second_process_cannot_open_the_store_and_is_told_why(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    code = (
        "import sys\nfrom aggregator.errors import StoreError\nfrom aggregator.store import Store\n"
        "try:\n    Store.open(sys.argv[1])\nexcept StoreError as exc:\n    print(exc)\n"
    )
    with Store.open(path):
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    assert "another process is writing it" in out


def test_views_promise_their_leading_columns(tmp_path: Path) -> None:
    promised = {
        "account_totals": [
            "did",
            "handle",
            "name",
            "posts",
            "likes",
            "reposts",
            "replies",
            "quotes",
            "follows_gained",
            "follows_lost",
        ],
        "account_window": [
            "did",
            "window",
            "posts",
            "likes",
            "reposts",
            "replies",
            "quotes",
            "follows_gained",
            "follows_lost",
            "interactions",
        ],
        "top_posts": [
            "uri",
            "did",
            "created_at",
            "text",
            "likes",
            "reposts",
            "replies",
            "quotes",
            "interactions",
        ],
    }
    with open_store(tmp_path) as store:
        for view, columns in promised.items():
            assert store.query(f"SELECT * FROM {view} LIMIT 0")[0][: len(columns)] == columns
        windows = rows(store, f"SELECT DISTINCT \"window\" FROM account_window WHERE did = '{A}'")
        assert sorted(w for (w,) in windows) == sorted(WINDOWS)
        assert "seq" in store.query("SELECT * FROM events LIMIT 0")[0]
