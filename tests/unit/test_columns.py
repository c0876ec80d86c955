"""The event log table of a batch equals the plain one-`pa.array`-per-field build, whichever
shortcut a column takes (all None → pa.nulls, one value → pa.repeat)."""

from __future__ import annotations

import random
from dataclasses import replace
from operator import attrgetter

import pyarrow as pa
import pytest

from aggregator.columns import EVENT_COLUMNS, events_table
from schemas import Event
from tests.support.events import like

_TYPES = {"seq": pa.int64(), "idx": pa.int32(), "active": pa.bool_(), "v": pa.int16()}


def _plain(events: list[Event], partitions: list[str], times_us: list[int], ingested_us: int) -> pa.Table:
    """Every column converted value by value, no shortcut."""
    arrays = {}
    for name in EVENT_COLUMNS:
        if name == "time":
            arrays[name] = pa.array(times_us, pa.int64()).cast(pa.timestamp("us"))
        elif name == "ingested_at":
            arrays[name] = pa.array([ingested_us] * len(events), pa.int64()).cast(pa.timestamp("us"))
        elif name == "partition":
            arrays[name] = pa.array(partitions, pa.string())
        else:
            arrays[name] = pa.array(list(map(attrgetter(name), events)), _TYPES.get(name, pa.string()))
    return pa.table(arrays)


def _event(seq: int, **kw: object) -> Event:
    return replace(like(seq, time="2026-07-04T14:38:07.517Z"), **kw)  # type: ignore[arg-type]


def _random_batch(rng: random.Random, count: int) -> list[Event]:
    sparse = ("reply_root", "quote_uri", "link_uri", "handle", "status", "term", "text")
    events = []
    for seq in range(count):
        kw: dict[str, object] = {name: f"{name}-{seq}" for name in sparse if rng.random() < 0.05}
        if rng.random() < 0.05:
            kw["active"] = rng.random() < 0.5
        if rng.random() < 0.1:
            kw["source"] = "jetstream2@h"
        events.append(_event(seq, **kw))
    return events


@pytest.mark.parametrize("seed", range(12))
def test_events_table_equals_the_plain_build(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_batch(rng, rng.choice([1, 2, 50, 300]))
    if seed % 3 == 0:  # every sparse field None, one source: the shortcuts
        events = [_event(e.seq) for e in events]
    if seed % 4 == 1:  # the source is equal in every event but not the same object
        events = [replace(e, source="".join(["jet", "stream1"])) for e in events]
    partitions = ["p/0" if seed % 2 or i < len(events) // 2 else "p/1" for i in range(len(events))]
    times_us = [1_783_175_887_517_000 + i for i in range(len(events))]
    table = events_table(events, partitions, times_us, 42)
    assert table.schema == _plain(events, partitions, times_us, 42).schema
    assert table.equals(_plain(events, partitions, times_us, 42))
    assert table.to_pylist() == _plain(events, partitions, times_us, 42).to_pylist()


def test_empty_batch_gives_an_empty_table_of_the_same_schema() -> None:
    table = events_table([], [], [], 42)
    assert table.num_rows == 0
    assert table.schema == _plain([], [], [], 42).schema


def test_an_empty_string_is_not_taken_for_none() -> None:
    events = [_event(1, handle=""), _event(2)]
    table = events_table(events, ["p", "p"], [0, 1], 0)
    assert table.column("handle").to_pylist() == ["", None]
    assert table.column("v").to_pylist() == [1, 1]
