"""The aggregator app: a batch source → aggregator → DuckDB store, with its snapshot and metrics.

`bluepulse aggregator` is this app alone on Kafka; `bluepulse run` joins it to the streamer app
by the in-process queue (`run_app`). The store is opened before the source, so a Kafka consumer
can seek to the offsets the store committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from prometheus_client import CollectorRegistry

from aggregator.consume import BatchSource
from aggregator.consume_kafka import KafkaSource
from aggregator.exposition import register_aggregator_metrics
from aggregator.forensics import IdentityForensics
from aggregator.plc_client import PLC_DIRECTORY, PlcClient
from aggregator.service import Aggregator
from aggregator.store import Store
from bluepulse import transport_choice
from bluepulse.config import AggregatorAppSettings, AggregatorConfig, snapshot_path
from bluepulse.process import hosting, supervised
from schemas.accounts import Account, load_accounts
from transport.supervise import Supervisor, run_with

Lag = Callable[[], Mapping[str, int]]  # messages behind, per partition (Kafka only)


def open_store(config: AggregatorAppSettings, accounts: Sequence[Account]) -> Store:
    """The DuckDB store, with the registry's view of the accounts (labels, names)."""
    config.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(config.db, retention_days=int(config.retention_days), dedup_hours=config.dedup_hours)
    store.upsert_accounts(accounts)
    known = {a.did: a.followers for a in accounts if a.followers is not None}
    if known:
        store.set_followers(known)
    return store


class AggregatorApp:
    """Owns the store and the source from here on: `close` releases both."""

    def __init__(
        self,
        config: AggregatorAppSettings,
        store: Store,
        source: BatchSource,
        registry: CollectorRegistry,
        supervisor: Supervisor,
        *,
        lag: Lag | None = None,
    ) -> None:
        self.store, self.source, self.supervisor, self._lag = store, source, supervisor, lag
        kafka = source if isinstance(source, KafkaSource) else None
        self.aggregator = Aggregator(
            store,
            source,
            snapshot_path=snapshot_path(config.db),
            snapshot_interval=config.snapshot_interval,
            minute_keep=timedelta(hours=config.minute_buckets_hours),
            hour_keep=timedelta(days=config.hour_buckets_days),
            supervisor=supervisor,
            fence=kafka,  # offsets committed inside the DuckDB transaction (aggregator/handoff.py)
        )
        if kafka is not None:
            kafka.attach(self.aggregator.apply_unfenced, self.aggregator.stats)
        # several aggregators in a group: each exports the non-additive gauges of its partitions' accounts
        self.store_metrics = register_aggregator_metrics(
            registry,
            store,
            self.aggregator.stats,
            owns=kafka.owns if kafka is not None else None,
            owned_partitions=kafka.owned_partitions if kafka is not None else None,
        )
        self.forensics = forensics(config, store, registry, supervisor)

    async def run(self) -> None:
        """Consume until `stop`; with a `lag` reader, /metrics gets the consumer's lag every second;
        identity look-ups (--plc) run beside it."""
        jobs = []
        if self._lag is not None:
            jobs.append(self.supervisor.every("metrics", 1.0, self.refresh_lag))
        if self.forensics is not None:
            jobs.append(self.forensics.run())
        await run_with(self.aggregator.run(), *jobs)

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run`."""
        self.aggregator.stop()

    async def drain(self) -> None:
        """Apply what the source still holds (shutdown of `run`), then snapshot."""
        await self.aggregator.drain()

    async def refresh_lag(self) -> None:
        """Copies the consumer's per-partition lag into the stats /metrics reads (a supervised job)."""
        if self._lag is not None:
            self.aggregator.stats.lag_by_partition = dict(self._lag())

    async def close(self) -> None:
        """Metrics first (they read the store), then the source, then the store."""
        try:
            self.store_metrics.close()
            if self.forensics is not None:
                await self.forensics.aclose()
            await self.source.close()
        finally:
            self.store.close()


def forensics(
    config: AggregatorAppSettings, store: Store, registry: CollectorRegistry, supervisor: Supervisor
) -> IdentityForensics | None:
    """The identity look-up job of `--plc` (None with `--plc off`), its counters on /metrics."""
    if config.plc == "off":
        return None
    client = PlcClient(config.plc or PLC_DIRECTORY)
    registry.register(client.stats.collector())
    return IdentityForensics(store, client, supervisor)


async def main(config: AggregatorConfig) -> int:
    """`bluepulse aggregator`: the aggregator app alone, consuming from Kafka."""
    transport_choice.check_aggregator_input(config)
    with hosting(config, files={"DuckDB store": config.db}) as registry:
        store = open_store(config, load_accounts(config.accounts))
        try:
            source = await transport_choice.aggregator_source(
                config,
                lambda: {name: p.next_offset for name, p in store.positions().items()},
                store.store_id,
            )
        except BaseException:
            store.close()
            raise
        app = AggregatorApp(config, store, source, registry, supervised(registry), lag=source.lag)
        try:
            await app.run()
        finally:
            await app.close()
    return 0
