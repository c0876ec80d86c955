"""Store schema: the DDL of each schema version and the migration runner.

A file's `schema_version` table says which migrations ran; opening a file written by a
newer version fails with one clear message instead of guessing (invariant 1: our own
broken state fails loudly). A fresh file runs every step, so each step is history: never
edited, and a new counter (counters.COUNTERS) arrives with its own step. All times are
TIMESTAMP in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import duckdb

from aggregator.errors import StoreError

STORE_SCHEMA_VERSION: Final = 8


def _counters(names: tuple[str, ...]) -> str:
    return ", ".join(f"{name} BIGINT NOT NULL DEFAULT 0" for name in names)


# the counters as version 1 named them (today's: aggregator/counters.py; a test compares)
_V1_ACCOUNT_COUNTERS: Final = (
    "posts",
    "posts_deleted",
    "reposts_made",
    "likes_made",
    "follows_made",
    "deletes",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "mentions",
    "follows_gained",
    "follows_lost",
    "posts_created",
    "likes_given",
    "unlikes",
    "reposts_given",
    "unreposts",
)
_ACCOUNT_COLUMNS: Final = _counters(_V1_ACCOUNT_COUNTERS)
_POST_COLUMNS: Final = _counters(("likes", "reposts", "replies", "quotes"))
_ACCOUNT_LEVELS: Final = ("account_minutes", "account_hours", "account_days")

_V1: Final = (
    """CREATE TABLE events (
        seq BIGINT NOT NULL, idx INTEGER NOT NULL, kind VARCHAR NOT NULL,
        action VARCHAR NOT NULL, direction VARCHAR NOT NULL, subject_did VARCHAR NOT NULL,
        actor_did VARCHAR NOT NULL, time TIMESTAMP NOT NULL, uri VARCHAR, subject_uri VARCHAR,
        target_did VARCHAR, created_at VARCHAR, text VARCHAR, reply_root VARCHAR,
        quote_uri VARCHAR, link_uri VARCHAR, handle VARCHAR, active BOOLEAN, status VARCHAR,
        v SMALLINT NOT NULL, partition VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE accounts (
        did VARCHAR PRIMARY KEY, handle VARCHAR, name VARCHAR, category VARCHAR,
        region VARCHAR, followers BIGINT, active BOOLEAN, status VARCHAR,
        handle_changed_at TIMESTAMP, status_changed_at TIMESTAMP)""",
    *(
        f"CREATE TABLE account_{level} (did VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, "
        f"{_ACCOUNT_COLUMNS}, PRIMARY KEY (did, bucket))"
        for level in ("minutes", "hours", "days")
    ),
    """CREATE TABLE posts (
        uri VARCHAR PRIMARY KEY, did VARCHAR NOT NULL, created_at TIMESTAMP, text VARCHAR,
        reply_parent VARCHAR, reply_root VARCHAR, quote_uri VARCHAR, link_uri VARCHAR,
        first_seen TIMESTAMP NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false,
        deleted_at TIMESTAMP)""",
    *(
        f"CREATE TABLE post_{level} (uri VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, "
        f"did VARCHAR NOT NULL, {_POST_COLUMNS}, PRIMARY KEY (uri, bucket))"
        for level in ("minutes", "days")
    ),
    """CREATE TABLE handle_history (did VARCHAR NOT NULL, time TIMESTAMP NOT NULL,
        seq BIGINT NOT NULL, idx INTEGER NOT NULL, handle VARCHAR)""",
    """CREATE TABLE status_history (did VARCHAR NOT NULL, time TIMESTAMP NOT NULL,
        seq BIGINT NOT NULL, idx INTEGER NOT NULL, active BOOLEAN, status VARCHAR)""",
    """CREATE TABLE positions (partition VARCHAR PRIMARY KEY, next_offset BIGINT,
        seq BIGINT, idx BIGINT)""",
    "CREATE TABLE clock (id INTEGER PRIMARY KEY, newest_event TIMESTAMP)",
    "INSERT INTO clock VALUES (1, NULL)",
)

# v2: the firehose seq up to which a partition is committed, advanced by position markers
# too (frames without a tracked event), not only by events; seeded from the event watermark
_V2: Final = (
    "ALTER TABLE positions ADD COLUMN committed_seq BIGINT",
    "UPDATE positions SET committed_seq = seq",
)

# v3: the gross likes and reposts an account received were named as if it gave them
RENAMED_V3: Final = (("likes_given", "likes_received"), ("reposts_given", "reposts_received"))
_V3: Final = tuple(
    f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}"
    for table in _ACCOUNT_LEVELS
    for old, new in RENAMED_V3
)

# v4 (issue 13, several firehoses): the replay watermark and the committed seq are per
# (partition, source) — a relay seq, a Jetstream v2 seq and a v1 time_us never compare —
# while the Kafka offset stays per partition; what a file holds came from the relay.
# `event_keys`: identity keys of the events applied (aggregator/identity.py), so a switch
# of firehose counts nothing twice; filled from `events` when a second source arrives.
_V4: Final = (
    """CREATE TABLE source_positions (partition VARCHAR NOT NULL, source VARCHAR NOT NULL,
        seq BIGINT, idx BIGINT, committed_seq BIGINT, PRIMARY KEY (partition, source))""",
    """INSERT INTO source_positions SELECT partition, 'relay', seq, idx, committed_seq
        FROM positions WHERE seq IS NOT NULL OR committed_seq IS NOT NULL""",
    "ALTER TABLE positions DROP COLUMN seq",
    "ALTER TABLE positions DROP COLUMN idx",
    "ALTER TABLE positions DROP COLUMN committed_seq",
    "ALTER TABLE events ADD COLUMN source VARCHAR NOT NULL DEFAULT 'relay'",
    # no PRIMARY KEY: the apply's anti-join already keeps keys unique, the lookup is a hash
    # join that never probes an index, and the ART index cost ~8 % of apply throughput
    "CREATE TABLE event_keys (key BIGINT NOT NULL, time TIMESTAMP NOT NULL)",
)

# v5 (issue 14, the AppView): `followers_history`, one row per profile read (no follower
# history exists anywhere else); `post_snapshots`, a post's AppView counts S read at `time`
# T with the live counts L the store had for it in the same transaction: its engagement is
# S + (live now - L), so live events counted before T are never counted twice (views.py).
_SNAPSHOT_COUNTS: Final = ", ".join(
    f"{prefix}{name} BIGINT NOT NULL"
    for prefix in ("", "live_")
    for name in ("likes", "reposts", "replies", "quotes")
)
_V5: Final = (
    """CREATE TABLE followers_history (did VARCHAR NOT NULL, time TIMESTAMP NOT NULL,
        followers BIGINT, follows BIGINT, posts BIGINT, PRIMARY KEY (did, time))""",
    f"""CREATE TABLE post_snapshots (uri VARCHAR PRIMARY KEY, did VARCHAR NOT NULL,
        time TIMESTAMP NOT NULL, {_SNAPSHOT_COUNTS})""",
)

# v6 (issue 16, takeover forensics): each operation of a DID's PLC audit log (a did:web: each
# distinct DID document seen), one row per (did, cid); `nullified` ops are kept as evidence
_V6: Final = (
    """CREATE TABLE identity_history (did VARCHAR NOT NULL, time TIMESTAMP NOT NULL,
        handle VARCHAR, pds VARCHAR, signing_key VARCHAR, rotation_keys VARCHAR[],
        cid VARCHAR NOT NULL, nullified BOOLEAN NOT NULL DEFAULT false, kind VARCHAR,
        fetched_at TIMESTAMP NOT NULL, PRIMARY KEY (did, cid))""",
)

# v7 (issue 16, watch terms): `mentions_by_name`, posts naming an account by a watch term
# without tagging it (Kind.NAME_MENTION); `events.term`, the term that matched
_V7: Final = (
    *(
        f"ALTER TABLE {table} ADD COLUMN mentions_by_name BIGINT NOT NULL DEFAULT 0"
        for table in _ACCOUNT_LEVELS
    ),
    "ALTER TABLE events ADD COLUMN term VARCHAR",
)

# v8 (issue 17, several aggregators): the file's own id, named in the Kafka commit metadata of
# the partitions it consumes, so a member can tell which messages it owes (aggregator/handoff.py)
_V8: Final = (
    "CREATE TABLE store_identity (id INTEGER PRIMARY KEY, store_id VARCHAR NOT NULL)",
    "INSERT INTO store_identity VALUES (1, substr(replace(gen_random_uuid()::VARCHAR, '-', ''), 1, 16))",
)

# version -> statements that take a file from version - 1 to version
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: _V1,
    2: _V2,
    3: _V3,
    4: _V4,
    5: _V5,
    6: _V6,
    7: _V7,
    8: _V8,
}


def file_version(con: duckdb.DuckDBPyConnection) -> int:
    """0 for a fresh file; otherwise the highest version recorded in schema_version."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version' AND schema_name = 'main'"
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, path: str) -> int:
    """Bring the file to STORE_SCHEMA_VERSION in one transaction; returns the old version."""
    version = file_version(con)
    if version > STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by store schema version {version}, but this bluepulse knows "
            f"versions up to {STORE_SCHEMA_VERSION}; upgrade bluepulse or use another --db file"
        )
    if version == STORE_SCHEMA_VERSION:
        return version
    con.begin()
    try:
        if version == 0:
            con.execute(
                "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
        for step in range(version + 1, STORE_SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                con.execute(statement)
            now = datetime.now(UTC).replace(tzinfo=None)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [step, now])
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        raise StoreError(f"{path}: migration from schema version {version} failed: {exc}") from exc
    return version
