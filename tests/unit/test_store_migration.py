"""A store file written by the main of before the rename (schema version 1, commit 2a20f1e)
opens with today's Store and keeps every total; its schema ends up equal to a fresh file's.

The file and its expected numbers come from tests/fixtures/make_store_v1.py, run on that
commit's tree: they are what that code wrote and what its views answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zstandard

from aggregator.counters import ACCOUNT_COUNTERS
from aggregator.schema_sql import RENAMED_V3, STORE_SCHEMA_VERSION
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "store_v1.json").read_text())
RENAMED = dict(RENAMED_V3)
# counters a later version added (v7: mentions_by_name): a migrated file holds 0 for them
ADDED = tuple(
    n for n in ACCOUNT_COUNTERS if n not in {RENAMED.get(k, k) for k in EXPECTED["account_totals"][0]}
)


@pytest.fixture
def v1_file(tmp_path: Path) -> Path:
    path = tmp_path / "v1.duckdb"
    path.write_bytes(zstandard.ZstdDecompressor().decompress((FIXTURES / "store_v1.duckdb.zst").read_bytes()))
    return path


def columns(path: Path) -> list[tuple[str, str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal "
            "ORDER BY table_name, column_index"
        ).fetchall()
    return [(str(t), str(c), str(d)) for t, c, d in rows]


def test_the_fixture_is_a_version_1_file_with_counters_at_every_level(v1_file: Path) -> None:
    with duckdb.connect(str(v1_file), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
    assert EXPECTED["schema_version"] == 1
    assert set(EXPECTED["bucket_levels"]) == {"minute", "hour", "day"}
    assert ADDED == ("mentions_by_name",)
    old_names = [
        {v: k for k, v in RENAMED.items()}.get(name, name) for name in ACCOUNT_COUNTERS if name not in ADDED
    ]
    idle = [n for n in old_names if not sum(t[n] for t in EXPECTED["account_totals"])]
    assert idle == []  # every counter, deletes and withdrawals included, holds something


def test_a_version_1_file_opens_with_the_same_account_totals(v1_file: Path) -> None:
    with Store.open(v1_file) as store:
        names, rows = store.query("SELECT * FROM account_totals ORDER BY did")
        versions = store.query("SELECT max(version) FROM schema_version")[1]
    got = [dict(zip(names, row, strict=True)) for row in rows]
    expected = [
        {**{RENAMED.get(k, k): v for k, v in t.items()}, **dict.fromkeys(ADDED, 0)}
        for t in EXPECTED["account_totals"]
    ]
    assert got == expected
    assert versions == [(STORE_SCHEMA_VERSION,)]


def test_a_version_1_file_keeps_its_per_post_counts_and_bucket_levels(v1_file: Path) -> None:
    with Store.open(v1_file) as store:
        posts = store.query("SELECT uri, likes, reposts, replies, quotes FROM top_posts ORDER BY uri")[1]
        levels = store.query("SELECT level, count(*) FROM account_buckets GROUP BY level")[1]
    assert {uri: list(counts) for uri, *counts in posts} == EXPECTED["posts"]
    assert dict(levels) == EXPECTED["bucket_levels"]


def test_a_migrated_file_has_the_schema_of_a_fresh_one(v1_file: Path, tmp_path: Path) -> None:
    Store.open(v1_file).close()
    Store.open(tmp_path / "fresh.duckdb").close()
    migrated = columns(v1_file)
    assert migrated == columns(tmp_path / "fresh.duckdb")
    account_minutes = [c for t, c, _ in migrated if t == "account_minutes"]
    assert account_minutes == ["did", "bucket", *ACCOUNT_COUNTERS]


def test_a_migrated_file_keeps_counting_into_the_renamed_columns(v1_file: Path) -> None:
    with Store.open(v1_file) as store:
        account = store.query("SELECT did FROM account_totals WHERE posts > 0 ORDER BY did LIMIT 1")[1][0][0]
        post = store.query("SELECT uri FROM posts WHERE did = ? ORDER BY uri LIMIT 1", [account])[1][0][0]
        before = store.query("SELECT likes_received FROM account_totals WHERE did = ?", [account])[1][0][0]
        like = Event(
            seq=10**9,
            idx=0,
            kind=Kind.LIKE,
            action=Action.CREATE,
            direction=Direction.TO,
            subject_did=account,
            actor_did="did:plc:xxxxxxxxxxxxxxxxxxxxxxxx",
            time="2026-11-02T11:59:59Z",
            subject_uri=post,
            target_did=account,
        )
        assert store.apply({"queue": PartitionBatch([like])}).applied == 1
        after = store.query("SELECT likes_received FROM account_totals WHERE did = ?", [account])[1][0][0]
    assert after == before + 1
