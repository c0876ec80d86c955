"""`bluepulse` command line: flags and env → a typed config → the command's app.

Every way a command can stop is one line on stderr, and the exit status is decided here once, by
the two roots of `schemas.errors`: a UsageError (bad flag, unreadable accounts file, a lock held
by another bluepulse, a port in use) exits 2, a PipelineError (our running pipeline failed) exits
1, anything else is an unexpected error, exit 1; never a traceback (`--log-level DEBUG` adds it
for an unexpected error).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TypeVar

from bluepulse import commands
from bluepulse.config import COMMANDS, SETTINGS, AnyConfig, resolve
from bluepulse.errors import ConfigError
from bluepulse.logs import setup_logging
from bluepulse.options import add_arguments
from schemas.errors import PipelineError, UsageError

T = TypeVar("T")

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

USAGE_EXIT, FAILURE_EXIT = 2, 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bluepulse",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for config in COMMANDS:
        command = sub.add_parser(config.command, help=config.summary, description=config.summary)
        add_arguments(command, config.command, SETTINGS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    try:
        config = resolve(command, args)
    except ConfigError as exc:
        print(f"bluepulse {command}: configuration error:\n{exc}", file=sys.stderr)
        return USAGE_EXIT
    setup_logging(config.log_level, config.log_format)
    try:
        return run_command(config)
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130


def run_command(config: AnyConfig) -> int:
    """The command's exit status; every failure is one log line (see the module docstring)."""
    try:
        outcome = commands.start(config)
        return outcome if isinstance(outcome, int) else run_until_signal(outcome)
    except UsageError as exc:
        log.error("%s", exc)
        return USAGE_EXIT
    except PipelineError as exc:
        # our own pipeline failed (disk full, broken store, a send that failed for good):
        # nothing past the failure was acknowledged, so a restart resumes without loss
        log.error("stopped: %s", exc)
        return FAILURE_EXIT
    except Exception as exc:
        log.error("stopped by an unexpected error: %s: %s", type(exc).__name__, exc)
        log.debug("traceback of the unexpected error", exc_info=True)
        return FAILURE_EXIT


def run_until_signal(main_coro: Coroutine[object, object, int]) -> int:
    """Run the coroutine; SIGTERM/SIGINT cancel it so its finally blocks drain and commit."""

    async def runner() -> int:
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
