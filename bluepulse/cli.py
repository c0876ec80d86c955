"""`bluepulse` command line: parses flags and env, then hands off to one wiring function."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from aggregator.store import StoreError
from bluepulse import commands
from bluepulse.config import ConfigError, add_flags, resolve
from bluepulse.logs import setup_logging
from schemas.accounts import RegistryError
from streamer.publish_kafka import KafkaPublishError
from streamer.tracked import StateError
from transport.memory import ConsumerFailedError

log = logging.getLogger("bluepulse")

COMMANDS = {
    "run": "single machine: relay → streamer → in-process queue → aggregator → DuckDB + /metrics",
    "demo": "the same pipeline offline, on the built-in relay emulator and a generated day",
    "streamer": "relay → tracked-account events → Kafka or a JSONL file",
    "aggregator": "Kafka → DuckDB + /metrics",
    "accounts": "list or check the tracked accounts file",
    "sql": "read-only SQL on the DuckDB file (works while the aggregator runs)",
    "relay": "serve a capture file with the relay wire protocol (emulator)",
    "record": "capture a live firehose into a capture file",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bluepulse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == "accounts":
            command.add_argument("action", choices=["list", "check"])
        if name == "sql":
            command.add_argument("query", help="one read-only statement")
        add_flags(command, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    try:
        config = resolve(command, args)
    except ConfigError as exc:
        print(f"bluepulse {command}: configuration error:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_format)
    handler = getattr(commands, f"cmd_{command}")
    try:
        result = handler(config)
        if asyncio.iscoroutine(result):
            result = run_until_signal(result)
    except (RegistryError, StateError, commands.CommandError) as exc:
        log.error("%s", exc)
        return 2
    except (StoreError, ConsumerFailedError, KafkaPublishError) as exc:
        # our own pipeline failed (disk full, broken store, a send that failed for good):
        # nothing past the failure was acknowledged, so a restart resumes without loss
        log.error("stopped: %s", exc)
        return 1
    return int(result or 0)


def run_until_signal(main_coro: Coroutine[Any, Any, Any]) -> Any:
    """Run the coroutine; SIGTERM/SIGINT cancel it so its finally blocks drain and commit."""

    async def runner() -> Any:
        task = asyncio.ensure_future(main_coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            log.info("stopped by signal")
            return 0

    return asyncio.run(runner())


if __name__ == "__main__":
    sys.exit(main())
