"""`bluepulse run`: relay → streamer → bounded in-process queue → aggregator → DuckDB + /metrics.

Shutdown order (SIGTERM/SIGINT): stop reading the relay, let the aggregator finish its batch
and drain the queue, then checkpoint the streamer (flush = everything committed) and save the
cursor. A failed DuckDB transaction stops everything without moving the cursor. Both halves
share one Supervisor: a background job that does not recover stops the process (exit 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from aggregator.consume import QueueSource
from aggregator.consume_kafka import KafkaSource
from aggregator.exposition import register_aggregator_metrics
from aggregator.service import Aggregator
from aggregator.stats import AggregatorStats
from aggregator.store import Store
from bluepulse.config import Config
from bluepulse.streamer_app import build_streamer
from schemas.accounts import Account
from streamer.publish import QueuePublisher
from transport.memory import EventQueue
from transport.supervise import Supervisor

log = logging.getLogger(__name__)


def snapshot_path(db: Path) -> Path:
    """Where the writer keeps the read-only copy that `bluepulse sql` opens."""
    return db.with_name(db.stem + ".snapshot" + db.suffix)


def open_store(config: Config, accounts: Sequence[Account]) -> Store:
    """The DuckDB store, with the registry's view of the accounts (labels, names)."""
    config.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(config.db, retention_days=int(config.retention_days))
    store.upsert_accounts(accounts)
    known = {a.did: a.followers for a in accounts if a.followers is not None}
    if known:
        store.set_followers(known)
    return store


async def refresh_lag(source: KafkaSource, stats: AggregatorStats) -> None:
    """Copies the consumer's per-partition lag into the stats /metrics reads (a supervised job:
    `supervisor.every("metrics", 1.0, lambda: refresh_lag(source, stats))`)."""
    stats.lag_by_partition = dict(source.lag())


class Pipeline:
    """Both halves in one process, wired by a bounded queue."""

    def __init__(self, config: Config, registry: CollectorRegistry) -> None:
        self.queue = EventQueue(config.queue_size)
        self.supervisor = Supervisor()
        registry.register(self.supervisor.collector())
        self.app = build_streamer(config, QueuePublisher(self.queue), registry, self.supervisor)
        self.store = open_store(config, self.app.streamer.tracked.accounts())
        source = QueueSource(self.queue, config.batch_events)
        self.aggregator = Aggregator(
            self.store, source, snapshot_path=snapshot_path(config.db),
            snapshot_interval=config.snapshot_interval, supervisor=self.supervisor,
        )  # fmt: skip
        self.store_metrics = register_aggregator_metrics(registry, self.store, self.aggregator.stats)
        self.checkpoint_interval = config.checkpoint_interval

    async def run(self) -> None:
        streaming = asyncio.create_task(self.app.streamer.run(self.app.source, self.checkpoint_interval))
        aggregating = asyncio.create_task(self.aggregator.run())
        try:
            done, _ = await asyncio.wait({streaming, aggregating}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # an aggregator failure surfaces here
        finally:
            await asyncio.shield(self._shutdown(streaming, aggregating))

    async def _shutdown(self, streaming: asyncio.Task[None], aggregating: asyncio.Task[None]) -> None:
        streaming.cancel()
        stopped = (await asyncio.gather(streaming, return_exceptions=True))[0]
        streamer_failed = isinstance(stopped, Exception)
        self.aggregator.stop()
        failed = (await asyncio.gather(aggregating, return_exceptions=True))[0]
        try:
            if isinstance(failed, BaseException) and not isinstance(failed, asyncio.CancelledError):
                # the cursor stays where the last commit left it; the failure propagates
                log.error("aggregator failed, cursor not advanced: %s", failed)
                await self.queue.fail(failed)
                self.app.state.close()
            else:
                # the final position marker must reach the queue while the aggregator drains:
                # the checkpoint after it then finds it committed instead of waiting forever
                await asyncio.gather(self.app.streamer.mark_position(), self.aggregator.drain())
                await self.app.shutdown(quiet=streamer_failed)  # the first error is the one reported
        finally:
            self.store_metrics.close()
            self.store.close()
