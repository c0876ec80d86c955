"""`bluepulse run`: the streamer app + the aggregator app, joined by the in-process queue.

Shutdown order (SIGTERM/SIGINT): stop reading the relay, let the aggregator finish its batch
and drain the queue, then checkpoint the streamer (flush = everything committed) and save the
cursor. A failed DuckDB transaction stops everything without moving the cursor. Both apps
share one Supervisor: a background job that does not recover stops the process (exit 1).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from aggregator.store import Store
from bluepulse import transport_choice
from bluepulse.aggregator_app import AggregatorApp, open_store
from bluepulse.appview_jobs import AppViewJobs
from bluepulse.config import RunConfig
from bluepulse.process import hosting, supervised
from bluepulse.streamer_app import StreamerApp

log = logging.getLogger(__name__)


class Pipeline:
    """Both apps in one process; the streamer app first, so a bad accounts file opens no store."""

    def __init__(self, config: RunConfig, registry: CollectorRegistry) -> None:
        supervisor = supervised(registry)
        self.link = transport_choice.queue_link(config.queue_size, config.batch_events)
        self.streamer = StreamerApp.build(config, self.link.publisher, registry, supervisor)
        store = open_store(config, self.streamer.accounts())
        self.aggregator = AggregatorApp(config, store, self.link.source, registry, supervisor)
        self.appview = AppViewJobs(config, store, supervisor)  # refresh and backfill (--appview)

    @property
    def store(self) -> Store:
        return self.aggregator.store

    async def run(self) -> None:
        streaming = asyncio.create_task(self.streamer.stream())
        aggregating = asyncio.create_task(self.aggregator.run())
        jobs = [asyncio.create_task(job) for job in self.appview.jobs()]
        try:
            done, _ = await asyncio.wait({streaming, aggregating, *jobs}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # an aggregator failure surfaces here
        finally:
            for job in jobs:  # they write through the store: stopped before it closes
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await self.appview.close()
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
                await self.link.queue.fail(failed)
                self.streamer.abandon()
            else:
                # the final position marker must reach the queue while the aggregator drains:
                # the checkpoint after it then finds it committed instead of waiting forever
                await asyncio.gather(self.streamer.mark_position(), self.aggregator.drain())
                await self.streamer.shutdown(quiet=streamer_failed)  # the first error is the one reported
        finally:
            await self.aggregator.close()


async def main(config: RunConfig) -> int:
    """`bluepulse run`: locks (state directory, store), then /metrics, then the pipeline."""
    with hosting(
        config, dirs={"state directory": config.state_dir}, files={"DuckDB store": config.db}
    ) as registry:
        await Pipeline(config, registry).run()
    return 0
