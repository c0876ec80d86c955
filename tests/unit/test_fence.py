"""A fenced source commits a batch's offsets inside its DuckDB transaction, before COMMIT; a
refused commit rolls the whole batch back (aggregator/service.py, aggregator/handoff.py)."""

from __future__ import annotations

from pathlib import Path

from aggregator.consume import SourceBatch
from aggregator.errors import BatchRefusedError
from aggregator.service import Aggregator
from aggregator.store import Store
from tests.support.events import like

PARTITION = "bluepulse.events/0"


def likes(first: int, count: int) -> SourceBatch:
    events = [like(seq) for seq in range(first, first + count)]
    return SourceBatch({PARTITION: events}, {PARTITION: first + count})


class Source:
    def __init__(self) -> None:
        self.acked: list[SourceBatch] = []

    async def next_batch(self) -> SourceBatch | None:
        return None

    async def ack(self, batch: SourceBatch) -> None:
        self.acked.append(batch)

    async def close(self) -> None:
        return None


class Fence:
    """Records what a reader saw at precommit time; refuses when told to."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.refuse = False
        self.seen_at_precommit: list[int] = []
        self.refused_batches: list[SourceBatch] = []

    async def precommit(self, batch: SourceBatch) -> None:
        self.seen_at_precommit.append(likes_in(self.store))
        if self.refuse:
            raise BatchRefusedError("a rebalance fenced this member out")

    async def refused(self, batch: SourceBatch) -> None:
        self.refused_batches.append(batch)


def likes_in(store: Store) -> int:
    con = store.cursor()  # another connection: committed rows only
    try:
        row = con.execute("SELECT count(*) FROM events WHERE kind = 'like'").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


async def test_offsets_are_committed_inside_the_transaction_and_a_refusal_rolls_it_back(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        source, fence = Source(), Fence(store)
        aggregator = Aggregator(store, source, fence=fence)

        assert await aggregator.apply(likes(1, 3)) == 3
        assert fence.seen_at_precommit == [0]  # the batch was not committed yet
        assert likes_in(store) == 3
        assert store.positions()[PARTITION].next_offset == 4
        assert len(source.acked) == 1

        fence.refuse = True
        assert await aggregator.apply(likes(4, 5)) == 0
        assert likes_in(store) == 3  # nothing of the refused batch
        assert store.positions()[PARTITION].next_offset == 4  # consumed again from here
        assert len(fence.refused_batches) == 1
        assert len(source.acked) == 1  # never acknowledged
        assert aggregator.stats.batches_refused == 1

        fence.refuse = False
        assert await aggregator.apply(likes(4, 5)) == 5  # its owner applies it once
        assert likes_in(store) == 8
        assert store.positions()[PARTITION].next_offset == 9
