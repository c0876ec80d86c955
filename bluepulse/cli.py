"""`bluepulse` command line: parses flags and env, then hands off to one wiring function.

Every way a command can stop is one line on stderr: exit 2 for a usage or configuration problem
(bad flag, unreadable accounts file, a lock held by another bluepulse, a port in use), exit 1 for
a runtime failure; never a traceback (`--log-level DEBUG` adds it for an unexpected error).
"""

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
from bluepulse.lock import LockError
from bluepulse.logs import setup_logging
from schemas.accounts import RegistryError
from streamer.publish import OutputError
from streamer.publish_kafka import KafkaPublishError
from streamer.tracked import StateError
from transport.memory import ConsumerFailedError
from transport.supervise import TaskFailedError

log = logging.getLogger("bluepulse")

DESCRIPTION = """\
bluepulse follows the Bluesky firehose and counts, in real time, the posts, likes, reposts,
replies, quotes and follows of the accounts you track (a CSV file: did,handle,name,...).
Counts go to a DuckDB file you can query with `bluepulse sql`, and to Prometheus /metrics.

Start with `bluepulse demo` (offline, no network needed), then `bluepulse run --accounts FILE`."""

EPILOG = """\
Every option can also be set by an environment variable, BLUEPULSE_<OPTION> (e.g.
BLUEPULSE_METRICS_PORT=0); a flag beats the variable. `bluepulse COMMAND --help` lists a
command's options. Exit status: 0 ok, 1 runtime failure, 2 usage or configuration problem."""

COMMANDS = {
    "run": "single machine: relay → streamer → in-process queue → aggregator → DuckDB + /metrics",
    "demo": "the same pipeline offline, on the built-in relay emulator and a generated day "
    "(starts fresh each time: <state-dir>/demo is deleted and recreated)",
    "streamer": "relay → tracked-account events → Kafka or a JSONL file",
    "aggregator": "Kafka → DuckDB + /metrics",
    "accounts": "list or check the tracked accounts file",
    "sql": "read-only SQL on the DuckDB file (works while the aggregator runs)",
    "relay": "serve a capture file with the relay wire protocol (emulator)",
    "record": "capture a live firehose into a capture file",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bluepulse", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == "accounts":
            command.add_argument(
                "action", choices=["list", "check"],
                help="list: print the accounts (see --format); check: validate the file, exit 0 or 2",
            )  # fmt: skip
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
    try:
        return run_command(command, config)
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130


def run_command(command: str, config: Any) -> int:
    """The command's exit status; every failure is one log line (see the module docstring)."""
    handler = getattr(commands, f"cmd_{command}")
    try:
        result = handler(config)
        if asyncio.iscoroutine(result):
            result = run_until_signal(result)
    except (RegistryError, StateError, LockError, commands.CommandError) as exc:
        log.error("%s", exc)
        return 2
    except (StoreError, ConsumerFailedError, KafkaPublishError, commands.CommandFailedError,
            TaskFailedError, OutputError) as exc:  # fmt: skip
        # our own pipeline failed (disk full, broken store, a send that failed for good):
        # nothing past the failure was acknowledged, so a restart resumes without loss
        log.error("stopped: %s", exc)
        return 1
    except Exception as exc:
        log.error("stopped by an unexpected error: %s: %s", type(exc).__name__, exc)
        log.debug("traceback of the unexpected error", exc_info=True)
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
