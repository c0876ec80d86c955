"""One function per `bluepulse` command, wiring the stages for it."""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from bluepulse.config import Config
from bluepulse.streamer_app import build_streamer
from schemas.accounts import load_accounts
from streamer.publish import JsonlPublisher, Publisher

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """A usage problem found after parsing (missing output, bad combination)."""


def serve_metrics(config: Config, registry: CollectorRegistry) -> None:
    if config.metrics_port:
        start_http_server(config.metrics_port, addr=config.metrics_host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)


def cmd_accounts(config: Config) -> int:
    accounts = load_accounts(config.accounts)
    if config.action == "check":
        print(f"{config.accounts}: {len(accounts)} accounts, OK")
        return 0
    writer = csv.writer(sys.stdout, delimiter="\t" if config.format == "table" else ",")
    writer.writerow(["did", "handle", "name", "category", "region"])
    for a in accounts:
        writer.writerow([a.did, a.handle, a.name, a.category, a.region])
    return 0


async def cmd_streamer(config: Config) -> int:
    publisher: Publisher
    if config.kafka:
        from bluepulse.kafka_app import kafka_publisher

        publisher = await kafka_publisher(config)
    elif config.out:
        publisher = JsonlPublisher(config.out)
    else:
        raise CommandError("bluepulse streamer needs --out FILE.jsonl or --kafka HOST:PORT")
    registry = CollectorRegistry()
    app = build_streamer(config, publisher, registry)
    serve_metrics(config, registry)
    try:
        await app.run(config.checkpoint_interval)
    finally:
        await publisher.close()
    return 0


async def cmd_relay(config: Config) -> int:
    from relay.server import serve_capture

    if config.capture is None:
        raise CommandError("bluepulse relay needs --capture FILE")
    await serve_capture(
        config.capture, host=config.host, port=config.port, rate=config.rate, loop=config.loop,
        drop_every=config.drop_every, stall_after=config.stall_after,
        malformed_every=config.malformed_every,
    )  # fmt: skip
    return 0


async def cmd_record(config: Config) -> int:
    from relay.recorder import record

    if config.out is None:
        raise CommandError("bluepulse record needs --out FILE")
    count: Any = await record(config.relay, config.out, cursor=config.cursor, limit=config.limit)
    log.info("recorded frames=%s file=%s", count, config.out)
    return 0


async def cmd_run(config: Config) -> int:
    from bluepulse.run_app import Pipeline

    registry = CollectorRegistry()
    pipeline = Pipeline(config, registry)
    serve_metrics(config, registry)
    await pipeline.run()
    return 0


async def cmd_aggregator(config: Config) -> int:
    from aggregator.service import Aggregator
    from bluepulse.kafka_app import kafka_source
    from bluepulse.run_app import open_store, snapshot_path, track_lag

    if not config.kafka:
        raise CommandError("bluepulse aggregator needs --kafka HOST:PORT (bluepulse run needs no broker)")
    store = open_store(config, load_accounts(config.accounts))
    try:
        source = await kafka_source(config, lambda: {n: p.next_offset for n, p in store.positions().items()})
        aggregator = Aggregator(
            store, source, snapshot_path=snapshot_path(config.db), snapshot_interval=config.snapshot_interval
        )
        registry = CollectorRegistry()
        from aggregator.exposition import register_aggregator_metrics

        store_metrics = register_aggregator_metrics(registry, store, aggregator.stats)
        serve_metrics(config, registry)
        lag = asyncio.create_task(track_lag(source, aggregator.stats))
        try:
            await aggregator.run()
        finally:
            lag.cancel()
            store_metrics.close()
            await source.close()
    finally:
        store.close()
    return 0


def cmd_sql(config: Config) -> int:
    from aggregator.report import render
    from aggregator.sql import QueryError, QueryRefusedError, run_readonly_query
    from bluepulse.run_app import snapshot_path

    snapshot = snapshot_path(config.db)
    try:
        try:
            columns, rows = run_readonly_query(config.db, config.query)
        except QueryError as exc:
            if "holds it" not in str(exc) or not snapshot.exists():
                raise
            age = time.time() - snapshot.stat().st_mtime
            print(
                f"(the aggregator is writing {config.db}: reading its snapshot, {age:.0f} s old)",
                file=sys.stderr,
            )
            columns, rows = run_readonly_query(snapshot, config.query)
    except QueryRefusedError as exc:
        raise CommandError(f"query refused: {exc}") from exc
    except QueryError as exc:
        raise CommandError(f"query failed: {exc}") from exc
    print(render(columns, rows, config.format))
    return 0


async def cmd_demo(config: Config) -> int:
    """A generated day played by the relay emulator into the full `run` pipeline, offline."""
    import shutil
    from dataclasses import replace

    from bluepulse.run_app import Pipeline
    from relay.demo_day import demo_day
    from relay.emulator import RelayEmulator
    from relay.server import play

    home = config.state_dir / "demo"
    if home.exists():
        shutil.rmtree(home)  # the demo's own data: a fresh day each time (seqs restart at 1)
    home.mkdir(parents=True)
    day = demo_day(scale=config.demo_scale)
    accounts = home / "accounts.csv"
    rows = [f'{a.did},{a.handle},"{a.name}",{a.category},{a.region}' for a in day.accounts]
    accounts.write_text("did,handle,name,category,region\n" + "\n".join(rows) + "\n")
    async with RelayEmulator(port=config.port) as relay:
        paths = {"accounts": accounts, "state_dir": home / "state", "db": home / "bluepulse.duckdb"}
        demo = replace(config, values={**config.values, "relay": relay.url, **paths})
        registry = CollectorRegistry()
        pipeline = Pipeline(demo, registry)
        serve_metrics(demo, registry)
        log.info(
            "demo: %d frames of a generated day at %.0f frames/s; try: bluepulse sql --db %s "
            "'SELECT handle, posts, likes, reposts, replies, quotes FROM account_totals'",
            len(day.frames), config.demo_rate, demo.db,
        )  # fmt: skip
        player = asyncio.create_task(play(relay, day.frames, rate=config.demo_rate, wait_for_client=True))
        player.add_done_callback(lambda _: log.info("demo day fully played; Ctrl-C to stop"))
        try:
            await pipeline.run()
        finally:
            player.cancel()
    return 0
