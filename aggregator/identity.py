"""Dedup stage of an apply: drop the events whose identity the store already applied.

Second stage of `Store.apply` (admit → dedup → fold → columns → writes). The replay
watermark (positions.py) only compares events of one source; when a deployment switches
firehose (relay → Jetstream → relay) the sources overlap in time and the same like arrives
under two different (source, seq, idx). The identity of an event does not depend on its
source: for a commit-derived event (uri set) it is (kind, action, direction, subject_did,
uri); for a handle / account event (kind, subject_did, upstream time, handle, active,
status). Its key is a 64-bit blake2b of that tuple (stable across processes and
versions, unlike `hash()`), kept in `event_keys` for `dedup_hours` and looked up once per
batch (one anti-join, never per event).

Only a store that two sources gave events to needs this: one source's replays are the
watermark's. So a single-source store computes no key at all (the stage costs ~8 % of
apply throughput); the batch that brings a second source first `backfill`s the keys of the
last `dedup_hours` from the event log, and from then on every batch is keyed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from hashlib import blake2b
from typing import Any, Final

import duckdb
import pyarrow as pa

from aggregator.positions import Admitted
from aggregator.timeparse import parse_time_us
from schemas import Event, Kind

_STATES: Final = frozenset({Kind.HANDLE, Kind.ACCOUNT})
DEDUP_HOURS: Final = 96  # > 72 h, the longest cursor retention of a firehose (Jetstream)


_SEP: Final = "\x1f"
_BLAKE2B: Final = blake2b
_FROM_BYTES: Final = int.from_bytes


def _digest(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def identity_key(event: Event) -> int:
    """The 64-bit key of the event's identity (the same whatever firehose it came from)."""
    if event.uri is not None:  # the hot path: a join of str (StrEnum members are str)
        text = _SEP.join(("c", event.kind, event.action, event.direction, event.subject_did, event.uri))
        return _FROM_BYTES(_BLAKE2B(text.encode(), digest_size=8).digest(), "little", signed=True)
    moment = parse_time_us(event.time, {}) if event.kind in _STATES else None
    return row_key(
        (
            event.kind,
            event.action,
            event.direction,
            event.subject_did,
            None,
            event.time if moment is None else moment,
            event.handle,
            event.active,
            event.status,
            event.source,
            event.seq,
            event.idx,
        )
    )


def row_key(row: Sequence[Any]) -> int:
    """Key of (kind, action, direction, subject_did, uri, time, handle, active, status,
    source, seq, idx), an `events` row too (backfill on migration). A handle / account event
    (no uri) is known by its upstream time in epoch µs (its text when unparsable); any other
    event without a uri cannot be recognised across sources and keys on its own position."""
    kind, action, direction, did, uri, moment, handle, active, status, source, seq, idx = row
    if uri is not None:
        return _digest(f"c\x1f{kind}\x1f{action}\x1f{direction}\x1f{did}\x1f{uri}")
    if kind in _STATES:
        return _digest(f"s\x1f{kind}\x1f{did}\x1f{moment}\x1f{handle}\x1f{active}\x1f{status}")
    return _digest(f"p\x1f{source}\x1f{seq}\x1f{idx}\x1f{kind}\x1f{action}\x1f{direction}\x1f{did}")


def drop_known(admitted: Admitted, known: Callable[[list[int]], Collection[int]]) -> Admitted:
    """Keeps the first event of each identity the store has not applied; `known(keys)`
    answers which keys the store holds (asked once)."""
    if not admitted.events:
        return admitted
    keys = [identity_key(e) for e in admitted.events]
    applied = known(keys)
    if not applied and len(set(keys)) == len(keys):
        return replace(admitted, keys=keys)
    seen: set[int] = set(applied)
    events: list[Event] = []
    partitions: list[str] = []
    kept: list[int] = []
    for event, partition, key in zip(admitted.events, admitted.partitions, keys, strict=True):
        if key in seen:
            continue
        seen.add(key)
        events.append(event)
        partitions.append(partition)
        kept.append(key)
    duplicates = len(keys) - len(kept)
    return replace(admitted, events=events, partitions=partitions, keys=kept, duplicates=duplicates)


_RECENT_SQL: Final = """SELECT kind, action, direction, subject_did, uri, epoch_us(time), handle,
    active, status, source, seq, idx, time FROM events
WHERE time >= (SELECT newest_event FROM clock WHERE id = 1) - to_hours(CAST($1 AS BIGINT))"""


def backfill(con: duckdb.DuckDBPyConnection, hours: int) -> int:
    """(Re)build `event_keys` from the events applied in the last `hours` (the event log is
    kept longer: --retention-days); idempotent, so a crash before the batch that needed it
    commits only makes the next start do it again. Returns the number of keys."""
    con.execute("DELETE FROM event_keys")
    newest: dict[int, Any] = {}
    result = con.execute(_RECENT_SQL, [hours])
    while rows := result.fetchmany(50_000):
        for row in rows:
            key = row_key(row[:12])
            if key not in newest or row[12] > newest[key]:
                newest[key] = row[12]
    table = pa.table(
        {
            "key": pa.array(list(newest), pa.int64()),
            "time": pa.array(list(newest.values()), pa.timestamp("us")),
        }
    )
    con.register("backfill_keys", table)
    try:
        con.execute("INSERT INTO event_keys SELECT key, time FROM backfill_keys")
    finally:
        con.unregister("backfill_keys")
    return len(newest)
