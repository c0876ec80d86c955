"""The aggregator loop: consume → fold → store, then acknowledge; periodic snapshot and upkeep.

Invariant: a batch is acknowledged to its source (releasing the streamer's cursor) only after
DuckDB committed it; a failed transaction stops the aggregator without advancing anything.
With a fence (Kafka), the batch's offsets are committed to the group inside the transaction,
just before COMMIT; a refused commit rolls the batch back and the aggregator goes on.
Snapshot and maintenance run between batches under the Supervisor's policy: a failure is
counted and retried with backoff; one that does not recover stops the aggregator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

from aggregator.consume import BatchSource, Fence, SourceBatch
from aggregator.errors import BatchRefusedError, StoreError
from aggregator.stats import AggregatorStats
from aggregator.store import ApplyResult, PartitionBatch, Store
from transport.supervise import Periodic, Supervisor

log = logging.getLogger(__name__)
PRECOMMIT_TIMEOUT_S: Final = 60.0


class Aggregator:
    def __init__(
        self,
        store: Store,
        source: BatchSource,
        *,
        stats: AggregatorStats | None = None,
        snapshot_path: Path | None = None,
        snapshot_interval: float = 10.0,
        maintenance_interval: float = 300.0,
        minute_keep: timedelta = timedelta(hours=3),
        hour_keep: timedelta = timedelta(days=8),
        supervisor: Supervisor | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.fence = fence
        self.stats = stats or AggregatorStats()
        self.stats.last_seq = store.committed_seqs()
        self.snapshot_path = snapshot_path
        self.snapshot_interval = snapshot_interval
        self.maintenance_interval = maintenance_interval
        self.minute_keep, self.hour_keep = minute_keep, hour_keep  # rollup windows (maintain)
        self.supervisor = supervisor or Supervisor()
        self._snapshots = Periodic(self.supervisor, "snapshot", snapshot_interval)
        # a failed maintenance transaction means the writer's connection is broken: fatal
        self._maintenance = Periodic(
            self.supervisor,
            "maintenance",
            maintenance_interval,
            fatal=(StoreError,),
            start=time.monotonic() + maintenance_interval,
        )
        self._dirty = True
        self._stopping = False

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (never cancel a DuckDB write)."""
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            await self.step()

    async def step(self) -> int:
        """One batch (or an idle tick); returns the events applied."""
        batch = await self.source.next_batch()
        applied = await self.apply(batch) if batch is not None else 0
        await self._upkeep()
        return applied

    async def apply(self, batch: SourceBatch) -> int:
        started = time.perf_counter()
        writing = asyncio.ensure_future(
            asyncio.to_thread(self.store.apply, _partitions(batch), self._before_commit(batch))
        )
        try:
            result = await asyncio.shield(writing)
        except BatchRefusedError as exc:
            assert self.fence is not None  # only a fence's precommit raises it
            self.stats.batches_refused += 1
            log.warning("batch rolled back, its offsets were refused: %s", exc)
            await self.fence.refused(batch)
            return 0
        except asyncio.CancelledError:
            # never abandon a transaction half-way: let it finish, acknowledge it, then stop
            await asyncio.wait({writing})
            if not writing.cancelled() and writing.exception() is None:
                await self._committed(batch, writing.result(), started)
            raise
        await self._committed(batch, result, started)
        return result.applied

    async def apply_unfenced(self, batch: SourceBatch) -> int:
        """A batch a fence reads outside the group (messages this file owes): no offset commit,
        no ack; the positions it stores are the only record of it."""
        started = time.perf_counter()
        result = await asyncio.to_thread(self.store.apply, _partitions(batch))
        self.stats.record_batch(result, batch.skipped, time.perf_counter() - started)
        self._dirty = True
        return result.applied

    def _before_commit(self, batch: SourceBatch) -> Callable[[], object] | None:
        """The fence's precommit, run from the store's thread on this loop (which is free: it
        awaits the store), inside the DuckDB transaction."""
        fence = self.fence
        if fence is None:
            return None
        loop = asyncio.get_running_loop()

        def precommit() -> None:
            future = asyncio.run_coroutine_threadsafe(fence.precommit(batch), loop)
            try:
                future.result(PRECOMMIT_TIMEOUT_S)
            except concurrent.futures.TimeoutError as exc:  # rolled back; a late commit is settled
                future.cancel()
                raise BatchRefusedError(
                    f"offset commit unanswered after {PRECOMMIT_TIMEOUT_S:.0f} s"
                ) from exc

        return precommit

    async def _committed(self, batch: SourceBatch, result: ApplyResult, started: float) -> None:
        self.stats.record_batch(result, batch.skipped, time.perf_counter() - started)
        await self.source.ack(batch)
        self._dirty = True

    async def drain(self, idle_batches: int = 2) -> None:
        """Apply what is left (shutdown): stop after `idle_batches` empty polls in a row."""
        idle = 0
        while idle < idle_batches:
            idle = idle + 1 if await self.step() == 0 else 0
        await self.snapshot()

    async def snapshot(self) -> None:
        if self.snapshot_path is None or not self._dirty:
            return
        started = time.perf_counter()
        await asyncio.to_thread(self.store.snapshot, self.snapshot_path)
        self._dirty = False
        self.stats.snapshot_seconds = time.perf_counter() - started
        self.stats.snapshot_time = time.time()

    async def _upkeep(self) -> None:
        now = time.monotonic()
        if self._snapshots.due(now):
            # a big file takes long to copy: keep snapshots under ~10 % of the writer's time
            await self._snapshots.run(
                self.snapshot,
                next_interval=lambda: max(self.snapshot_interval, 10 * self.stats.snapshot_seconds),
            )
        if self._maintenance.due(now):
            await self._maintenance.run(self._maintain)

    async def _maintain(self) -> None:
        result = await asyncio.to_thread(
            self.store.maintain, minute_keep=self.minute_keep, hour_keep=self.hour_keep
        )
        log.info("store maintenance %s", result)


def _partitions(batch: SourceBatch) -> dict[str, PartitionBatch]:
    return {
        name: PartitionBatch(
            batch.events.get(name, ()), batch.next_offsets.get(name), batch.marks.get(name, {})
        )
        for name in batch.events.keys() | batch.next_offsets.keys() | batch.marks.keys()
    }
