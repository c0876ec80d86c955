"""One function per `bluepulse` command, wiring the stages for it."""

from __future__ import annotations

import csv
import logging
import sys
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
