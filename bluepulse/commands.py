"""One function per `bluepulse` command, wiring the stages for it.

Every writing command (run, demo, streamer, aggregator) first locks what it writes (state
directory, DuckDB file), then binds its ports, and only then touches data: a second instance
stops with a message naming the first, and never deletes or opens what the first one writes.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from bluepulse import lock
from bluepulse.config import Config
from bluepulse.errors import CommandError, CommandFailedError, listen_error
from bluepulse.streamer_app import build_streamer
from schemas.accounts import load_accounts
from streamer.publish import JsonlPublisher, OutputError, Publisher

__all__ = ["CommandError", "CommandFailedError"]

log = logging.getLogger(__name__)


@contextmanager
def serve_metrics(config: Config, registry: CollectorRegistry) -> Iterator[None]:
    """/metrics while the block runs; a taken port or unknown host is one message, exit 2."""
    if not config.metrics_port:
        yield
        return
    try:
        server, _ = start_http_server(config.metrics_port, addr=config.metrics_host, registry=registry)
    except OSError as exc:
        where = ("--metrics-host", config.metrics_host), ("--metrics-port", config.metrics_port)
        raise listen_error(exc, *where) from exc
    log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def cmd_accounts(config: Config) -> int:
    from aggregator.report import render

    accounts = load_accounts(config.accounts)
    if config.action == "check":
        print(f"{config.accounts}: {len(accounts)} accounts, OK")
        return 0
    columns = ["did", "handle", "name", "category", "region", "followers"]
    rows = [(a.did, a.handle, a.name, a.category, a.region, a.followers) for a in accounts]
    text = render(columns, rows, config.format)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


async def cmd_streamer(config: Config) -> int:
    if not config.kafka and not config.out:
        raise CommandError("bluepulse streamer needs --out FILE.jsonl or --kafka HOST:PORT")
    with lock.hold_all({"state directory": config.state_dir}, {}):
        registry = CollectorRegistry()
        with serve_metrics(config, registry):
            publisher = await _publisher(config)
            try:
                app = build_streamer(config, publisher, registry)
                await app.run(config.checkpoint_interval)
            finally:
                await publisher.close()
    return 0


async def _publisher(config: Config) -> Publisher:
    if config.kafka:
        from bluepulse.kafka_app import kafka_publisher

        return await kafka_publisher(config)
    try:
        return JsonlPublisher(config.out)
    except OutputError as exc:  # at start it is the flag that is wrong
        raise CommandError(f"--out {config.out}: {exc}") from exc


async def cmd_relay(config: Config) -> int:
    from relay.capture import CaptureError
    from relay.server import serve_capture

    capture = _capture_file(config.capture)
    try:
        await serve_capture(
            capture, host=config.host, port=config.port, rate=config.rate, loop=config.loop,
            drop_every=config.drop_every, stall_after=config.stall_after,
            malformed_every=config.malformed_every,
        )  # fmt: skip
    except CaptureError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        if exc.filename is not None:  # reading the capture, not binding
            raise CommandError(f"--capture {capture}: {exc.strerror or exc}") from exc
        raise listen_error(exc, ("--host", config.host), ("--port", config.port)) from exc
    return 0


def _capture_file(path: Path | None) -> Path:
    if path is None:
        raise CommandError("bluepulse relay needs --capture FILE (a capture written by `bluepulse record`)")
    if path.is_dir():
        raise CommandError(f"--capture {path}: is a directory, not a capture file")
    if not path.exists():
        raise CommandError(f"--capture {path}: no such file")
    return path


async def cmd_record(config: Config) -> int:
    from websockets.exceptions import InvalidHandshake, InvalidURI

    from relay.recorder import record

    if config.out is None:
        raise CommandError("bluepulse record needs --out FILE")
    if config.out.is_dir():
        raise CommandError(f"--out {config.out}: is a directory")
    try:
        count: Any = await record(config.relay, config.out, cursor=config.cursor, limit=config.limit)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            raise CommandError(f"--out {config.out}: {exc.strerror or exc}") from exc
        refused = isinstance(exc, ConnectionRefusedError)
        reason = "connection refused" if refused else str(exc) or type(exc).__name__
        raise CommandFailedError(f"cannot record from relay {config.relay}: {reason}") from exc
    log.info("recorded frames=%s file=%s", count, config.out)
    return 0


async def cmd_run(config: Config) -> int:
    from bluepulse.run_app import Pipeline

    with lock.hold_all({"state directory": config.state_dir}, {"DuckDB store": config.db}):
        registry = CollectorRegistry()
        with serve_metrics(config, registry):
            pipeline = Pipeline(config, registry)
            await pipeline.run()
    return 0


async def cmd_aggregator(config: Config) -> int:
    if not config.kafka:
        raise CommandError("bluepulse aggregator needs --kafka HOST:PORT (bluepulse run needs no broker)")
    with lock.hold_all({}, {"DuckDB store": config.db}):
        registry = CollectorRegistry()
        with serve_metrics(config, registry):
            await _aggregate(config, registry)
    return 0


async def _aggregate(config: Config, registry: CollectorRegistry) -> None:
    from aggregator.exposition import register_aggregator_metrics
    from aggregator.service import Aggregator
    from bluepulse.kafka_app import kafka_source
    from bluepulse.run_app import open_store, refresh_lag, snapshot_path
    from transport.supervise import Supervisor, run_with

    store = open_store(config, load_accounts(config.accounts))
    try:
        source = await kafka_source(config, lambda: {n: p.next_offset for n, p in store.positions().items()})
        supervisor = Supervisor()  # snapshot, maintenance, metrics: retried, counted, or fatal
        registry.register(supervisor.collector())
        aggregator = Aggregator(
            store, source, snapshot_path=snapshot_path(config.db), snapshot_interval=config.snapshot_interval,
            supervisor=supervisor,
        )  # fmt: skip
        store_metrics = register_aggregator_metrics(registry, store, aggregator.stats)
        lag = supervisor.every("metrics", 1.0, lambda: refresh_lag(source, aggregator.stats))
        try:
            await run_with(aggregator.run(), lag)
        finally:
            store_metrics.close()
            await source.close()
    finally:
        store.close()


def cmd_sql(config: Config) -> int:
    from bluepulse.sql_app import run_sql

    return run_sql(config)


async def cmd_demo(config: Config) -> int:
    """A generated day played by the relay emulator into the full `run` pipeline, offline.

    A fresh day each time: <state-dir>/demo is emptied at start (seqs restart at 1), but only once
    its lock is held and both ports are bound, so a second demo never wipes a running one.
    """
    from relay.emulator import RelayEmulator

    home = config.state_dir / "demo"
    with lock.hold_all({"demo directory": home}, {}):
        registry = CollectorRegistry()
        with serve_metrics(config, registry):
            relay = RelayEmulator(port=config.port)
            try:
                await relay.start()
            except OSError as exc:
                raise listen_error(exc, ("relay emulator host", relay.host), ("--port", config.port)) from exc
            try:
                _empty(home)
                await _play_demo(config, home, relay, registry)
            finally:
                await relay.close()
    return 0


def _empty(home: Path) -> None:
    """Delete the previous demo's data, keeping the lock file this process holds."""
    for entry in home.iterdir():
        if entry.name == lock.DIR_LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


async def _play_demo(config: Config, home: Path, relay: Any, registry: CollectorRegistry) -> None:
    from dataclasses import replace

    from bluepulse.run_app import Pipeline
    from relay.demo_day import demo_day
    from relay.server import play

    day = demo_day(scale=config.demo_scale)
    accounts = home / "accounts.csv"
    rows = [f'{a.did},{a.handle},"{a.name}",{a.category},{a.region}' for a in day.accounts]
    accounts.write_text("did,handle,name,category,region\n" + "\n".join(rows) + "\n")
    paths = {"accounts": accounts, "state_dir": home / "state", "db": home / "bluepulse.duckdb"}
    demo = replace(config, values={**config.values, "relay": relay.url, **paths})
    pipeline = Pipeline(demo, registry)
    log.info(
        "demo: %d frames of a generated day at %.0f frames/s; try: %s sql --db %s "
        "'SELECT handle, posts, likes, reposts, replies, quotes FROM account_totals'",
        len(day.frames), config.demo_rate, runnable_command(), shlex.quote(str(demo.db)),
    )  # fmt: skip
    player = asyncio.create_task(play(relay, day.frames, rate=config.demo_rate, wait_for_client=True))
    player.add_done_callback(_played)
    try:
        await pipeline.run()
    finally:
        player.cancel()


def _played(player: asyncio.Task[int]) -> None:
    if not player.cancelled():
        log.info("demo day fully played; Ctrl-C to stop")


def runnable_command() -> str:
    """How to run bluepulse again from this shell: `bluepulse` only when PATH finds this one."""
    argv0 = sys.argv[0]
    script = Path(argv0)
    if script.name != "bluepulse":  # `python -m bluepulse.cli`, or a test runner
        return f"{shlex.quote(sys.executable)} -m bluepulse.cli"
    found = shutil.which("bluepulse")
    if found is not None and Path(found).resolve() == script.resolve():
        return "bluepulse"
    return shlex.quote(argv0 if "/" in argv0 else str(script.resolve()))
