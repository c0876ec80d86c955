"""Columns stage of an apply: the plan → one Arrow table per target, handed to DuckDB.

Fourth of the five stages of `Store.apply` (admit → dedup → fold → columns → writes). DuckDB's
executemany inserts ~1k rows/s; an Arrow table scanned by one grouped INSERT … SELECT runs
two orders of magnitude faster. Times are epoch microseconds (UTC) turned into Arrow
timestamps without a zone, i.e. DuckDB TIMESTAMP.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Final

import pyarrow as pa

from aggregator.counters import ACCOUNT_COUNTERS, POST_COUNTERS
from aggregator.fold import Deltas, HandleChange, Plan, StatusChange
from schemas import Event
from schemas.event import FIELD_NAMES

_US: Final = pa.timestamp("us")
_SECONDS: Final = pa.timestamp("s")
# every text field of the event contract (the rest are numbers, times and the active flag)
_NON_TEXT: Final = frozenset({"seq", "idx", "time", "active", "v"})
_TEXT_FIELDS: Final = tuple(name for name in FIELD_NAMES if name not in _NON_TEXT)
# text fields by how a batch fills them: (almost) always, rarely (kept on few kinds), one value
_SPARSE_TEXT: Final = ("reply_root", "quote_uri", "link_uri", "handle", "status", "term")
_DENSE_TEXT: Final = tuple(name for name in _TEXT_FIELDS if name not in {*_SPARSE_TEXT, "source"})
_SOURCE: Final = attrgetter("source")
_VERSION: Final = attrgetter("v")
EVENT_COLUMNS: Final = (
    "seq",
    "idx",
    "kind",
    "action",
    "direction",
    "subject_did",
    "actor_did",
    "time",
    "uri",
    "subject_uri",
    "target_did",
    "created_at",
    "text",
    "reply_root",
    "quote_uri",
    "link_uri",
    "handle",
    "active",
    "status",
    "v",
    "partition",
    "ingested_at",
    "source",
    "term",
)


@dataclass(frozen=True, slots=True)
class BatchTables:
    """Arrow tables of one apply; None (or empty) means nothing to write for that target."""

    events: pa.Table
    accounts: pa.Table
    posts: pa.Table
    post_states: pa.Table
    handles: pa.Table | None
    statuses: pa.Table | None
    offsets: Sequence[tuple[str, int | None]]  # (partition, next offset)
    source_positions: Sequence[tuple[str, str, int | None, int | None, int | None]]
    keys: pa.Table | None  # (key, time): identity keys of the events applied
    new_dids: pa.Table | None
    newest_event: datetime | None


def batch_tables(plan: Plan, known_dids: Collection[str]) -> BatchTables:
    """Every table of one apply; `known_dids` already have an `accounts` row."""
    admitted, deltas = plan.admitted, plan.deltas
    new_dids = sorted(deltas.dids.difference(known_dids))
    return BatchTables(
        events=events_table(admitted.events, admitted.partitions, deltas.times_us, plan.ingested_us),
        accounts=account_table(deltas),
        posts=post_table(deltas),
        post_states=posts_table(deltas),
        handles=handles_table(deltas.handles) if deltas.handles else None,
        statuses=statuses_table(deltas.statuses) if deltas.statuses else None,
        offsets=[(p.partition, p.next_offset) for p in admitted.positions.values()],
        source_positions=[
            (p.partition, source, s.seq, s.idx, s.committed)
            for p in admitted.positions.values()
            for source, s in p.sources.items()
        ],
        keys=keys_table(admitted.keys, deltas.times_us) if admitted.keys else None,
        new_dids=pa.table({"did": pa.array(new_dids, pa.string())}) if new_dids else None,
        newest_event=plan.newest_event,
    )


def _stamp(values: Iterable[int | None], unit: pa.DataType = _US) -> pa.Array:
    return pa.array(list(values), pa.int64()).cast(unit)


def _column(events: Sequence[Event], name: str, kind: pa.DataType) -> pa.Array:
    return pa.array(list(map(attrgetter(name), events)), kind)


def _sparse(events: Sequence[Event], name: str, kind: pa.DataType) -> pa.Array:
    """A column most batches leave all None: then no Arrow conversion (pa.nulls)."""
    values = list(map(attrgetter(name), events))
    if values and values[0] is None and values.count(None) == len(values):
        return pa.nulls(len(values), kind)
    return pa.array(values, kind)


def _uniform(values: Sequence[object], kind: pa.DataType) -> pa.Array:
    """A column most batches hold one value in (a source, a partition): then one scalar
    repeated (list.count compares identical objects first: a pass costs ~1 ns a value)."""
    if values and values.count(values[0]) == len(values):
        return pa.repeat(pa.scalar(values[0], kind), len(values))
    return pa.array(values, kind)


def events_table(
    events: Sequence[Event], partitions: Sequence[str], times_us: Sequence[int], ingested_us: int
) -> pa.Table:
    """The event log rows of a batch, columns in EVENT_COLUMNS order."""
    arrays = {name: _column(events, name, pa.string()) for name in _DENSE_TEXT}
    arrays.update((name, _sparse(events, name, pa.string())) for name in _SPARSE_TEXT)
    arrays["source"] = _uniform(list(map(_SOURCE, events)), pa.string())
    arrays["seq"] = _column(events, "seq", pa.int64())
    arrays["idx"] = _column(events, "idx", pa.int32())
    arrays["time"] = _stamp(times_us)
    arrays["active"] = _sparse(events, "active", pa.bool_())
    arrays["v"] = _uniform(list(map(_VERSION, events)), pa.int16())
    arrays["partition"] = _uniform(partitions, pa.string())
    arrays["ingested_at"] = pa.repeat(pa.scalar(ingested_us, _US), len(events))
    return pa.table({name: arrays[name] for name in EVENT_COLUMNS})


def keys_table(keys: Sequence[int], times_us: Sequence[int]) -> pa.Table:
    """Identity keys with their event time (store maintenance prunes them by it)."""
    return pa.table({"key": pa.array(keys, pa.int64()), "time": _stamp(times_us)})


def _counter_table(rows: dict[tuple[str, int], list[int]], key: str, names: tuple[str, ...]) -> pa.Table:
    keys = list(rows)
    values = list(zip(*rows.values(), strict=True)) if rows else [()] * len(names)
    data: dict[str, pa.Array] = {
        key: pa.array([k[0] for k in keys], pa.string()),
        "bucket": _stamp((k[1] for k in keys), _SECONDS),
    }
    for name, column in zip(names, values, strict=True):
        data[name] = pa.array(column, pa.int64())
    return pa.table(data)


def account_table(deltas: Deltas) -> pa.Table:
    """(did, bucket, *ACCOUNT_COUNTERS) per minute bucket touched by the batch."""
    return _counter_table(deltas.account, "did", ACCOUNT_COUNTERS)


def post_table(deltas: Deltas) -> pa.Table:
    """(uri, bucket, did, *POST_COUNTERS) per post and minute bucket touched by the batch."""
    table = _counter_table(deltas.post, "uri", POST_COUNTERS)
    owners = pa.array([deltas.post_owner[k[0]] for k in deltas.post], pa.string())
    return table.add_column(2, "did", owners)


def posts_table(deltas: Deltas) -> pa.Table:
    states = list(deltas.posts.values())
    return pa.table(
        {
            "uri": pa.array([s.uri for s in states], pa.string()),
            "did": pa.array([s.did for s in states], pa.string()),
            "created_at": _stamp(s.created_us for s in states),
            "text": pa.array([s.text for s in states], pa.string()),
            "reply_parent": pa.array([s.reply_parent for s in states], pa.string()),
            "reply_root": pa.array([s.reply_root for s in states], pa.string()),
            "quote_uri": pa.array([s.quote_uri for s in states], pa.string()),
            "link_uri": pa.array([s.link_uri for s in states], pa.string()),
            "first_seen": _stamp(s.seen_us for s in states),
            "deleted": pa.array([s.deleted for s in states], pa.bool_()),
            "deleted_at": _stamp(s.deleted_us for s in states),
        }
    )


def handles_table(changes: Sequence[HandleChange]) -> pa.Table:
    return pa.table(
        {
            "did": pa.array([c.did for c in changes], pa.string()),
            "time": _stamp(c.time_us for c in changes),
            "seq": pa.array([c.seq for c in changes], pa.int64()),
            "idx": pa.array([c.idx for c in changes], pa.int32()),
            "handle": pa.array([c.handle for c in changes], pa.string()),
        }
    )


def statuses_table(changes: Sequence[StatusChange]) -> pa.Table:
    return pa.table(
        {
            "did": pa.array([c.did for c in changes], pa.string()),
            "time": _stamp(c.time_us for c in changes),
            "seq": pa.array([c.seq for c in changes], pa.int64()),
            "idx": pa.array([c.idx for c in changes], pa.int32()),
            "active": pa.array([c.active for c in changes], pa.bool_()),
            "status": pa.array([c.status for c in changes], pa.string()),
        }
    )
