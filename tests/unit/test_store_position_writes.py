"""Positions are written by an UPDATE once a (partition, source) has a row, by the upsert
before: the tables must hold exactly what the store keeps in memory, and what a reopen reads.

Covers a partition's first batch, later batches (offset None keeps the old one), a marker-only
batch, a second partition, and a second source arriving in a later batch of a known partition.
"""

from __future__ import annotations

from pathlib import Path

from aggregator.store import PartitionBatch, Store
from schemas import Event
from tests.support.events import like as support_like

FAN = "did:plc:ffffffffffffffffffffffff"
JET = "jetstream2@jetstream.example:443"


def like(seq: int, source: str = "relay") -> Event:
    return support_like(
        seq,
        actor=FAN,
        time=f"2026-07-04T12:00:{seq % 60:02d}.000Z",
        uri=f"at://{FAN}/app.bsky.feed.like/{source[:3]}{seq}",
        source=source,
    )


def tables(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    _, offsets = store.query("SELECT partition, next_offset FROM positions ORDER BY ALL")
    _, sources = store.query(
        "SELECT partition, source, seq, idx, committed_seq FROM source_positions ORDER BY ALL"
    )
    return offsets, sources


def in_memory(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    positions = store.positions()
    offsets = sorted((p.partition, p.next_offset) for p in positions.values())
    sources = sorted(
        (p.partition, name, s.seq, s.idx, s.committed)
        for p in positions.values()
        for name, s in p.sources.items()
    )
    return offsets, sources


def test_position_rows_follow_every_kind_of_batch(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    steps = [
        {"p/0": PartitionBatch([like(10), like(11)], 2)},  # first batch: rows inserted
        {"p/0": PartitionBatch([like(12)], None)},  # offset None keeps 2, seq moves
        {"p/0": PartitionBatch([], 5, marks={"relay": 40})},  # a marker: committed seq only
        {"p/1": PartitionBatch([like(20)], 1), "p/0": PartitionBatch([like(13)], 6)},
        {"p/0": PartitionBatch([like(3, JET)], 7)},  # a second source in a known partition
        {"p/0": PartitionBatch([like(4, JET), like(14)], 9, marks={JET: 2})},  # marks below seq
        {"p/0": PartitionBatch([like(12)], 10)},  # a replay: only the offset moves
    ]
    with Store.open(path) as store:
        for step in steps:
            store.apply(step)
            assert tables(store) == in_memory(store)
        final = tables(store)
    assert final == (
        [("p/0", 10), ("p/1", 1)],
        [("p/0", JET, 4, 0, 4), ("p/0", "relay", 14, 0, 40), ("p/1", "relay", 20, 0, 20)],
    )
    with Store.open(path) as reopened:
        assert in_memory(reopened) == final
        assert reopened.committed_seqs() == {"relay": 40, JET: 4}
