"""Snapshots: readers in another process query a consistent copy while the writer keeps writing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from aggregator.snapshot import snapshot_by_copy_database
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"
P1 = f"at://{A}/app.bsky.feed.post/p1"
LIKES_SQL = f"SELECT likes FROM account_totals WHERE did = '{A}'"
READER = """
import json, sys
from aggregator.errors import QueryError
from aggregator.sql import run_readonly_query
out = []
for _ in range(int(sys.argv[3])):
    try:
        out.append(run_readonly_query(sys.argv[1], sys.argv[2])[1][0][0])
    except QueryError as exc:
        out.append(str(exc))
print(json.dumps(out))
"""


def likes(first_seq: int, count: int) -> list[Event]:
    return [
        Event(
            seq=first_seq + i,
            idx=0,
            kind=Kind.LIKE,
            action=Action.CREATE,
            direction=Direction.TO,
            subject_did=A,
            actor_did=X,
            time=f"2026-07-04T12:00:{i % 60:02d}Z",
            subject_uri=P1,
        )
        for i in range(count)
    ]


def reader(db: Path, sql: str, repeat: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", READER, str(db), sql, str(repeat)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_snapshot_is_readable_by_another_process_while_the_writer_keeps_writing(tmp_path: Path) -> None:
    snap = tmp_path / "snapshot.duckdb"
    with Store.open(tmp_path / "store.duckdb") as store:
        store.apply({"queue": PartitionBatch(likes(1, 100))})
        store.snapshot(snap)
        proc = reader(snap, LIKES_SQL, repeat=20)
        seq = 101
        while proc.poll() is None:  # the writer keeps committing while the reader reads
            store.apply({"queue": PartitionBatch(likes(seq, 50))})
            seq += 50
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out) == [100] * 20
        store.snapshot(snap)  # the next snapshot replaces the file atomically
        assert not list(tmp_path.glob(".snapshot.duckdb.*"))
        proc = reader(snap, LIKES_SQL)
        assert json.loads(proc.communicate(timeout=60)[0]) == [seq - 1]


def test_the_live_store_is_not_opened_by_readers_who_are_pointed_to_the_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    with Store.open(db) as store:
        store.apply({"queue": PartitionBatch(likes(1, 3))})
        out, _ = reader(db, LIKES_SQL).communicate(timeout=60)
    assert "query its snapshot file instead" in json.loads(out)[0]


def test_copy_database_snapshot_holds_tables_and_views(tmp_path: Path) -> None:
    target = tmp_path / "copy.duckdb"
    with Store.open(tmp_path / "store.duckdb") as store:
        store.apply({"queue": PartitionBatch(likes(1, 7))})
        snapshot_by_copy_database(store.cursor(), target)
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute(LIKES_SQL).fetchall() == [(7,)]
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(7,)]
    finally:
        con.close()


def test_the_writer_keeps_its_file_lock_across_snapshots(tmp_path: Path) -> None:
    """A byte copy of the file would drop DuckDB's POSIX lock and let a second writer in."""
    import subprocess
    import sys

    db = tmp_path / "locked.duckdb"
    with Store.open(db) as store:
        store.snapshot(tmp_path / "snap.duckdb")
        probe = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)"
        other = subprocess.run(
            [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=False
        )
    assert other.returncode != 0
    assert "lock" in other.stderr.lower()
