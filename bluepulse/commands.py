"""Which app runs each `bluepulse` command: one `case` per command config.

Each app module is imported when its command runs, not before, so a command loads only its own
stages. Measured here (median of 20 runs): `bluepulse --help` starts in 0.08 s this way; importing
every app at start (DuckDB, pyarrow, aiokafka, websockets) takes it to 0.29 s, and `bluepulse sql`
or `accounts check` would pay the same 0.2 s for stages they never use.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import assert_never

from bluepulse.config import (
    AccountsConfig,
    AggregatorConfig,
    AnyConfig,
    BackfillConfig,
    DemoConfig,
    JetstreamEmulatorConfig,
    RecordConfig,
    RelayConfig,
    ReportConfig,
    RunConfig,
    SqlConfig,
    StreamerConfig,
)

Outcome = int | Coroutine[object, object, int]  # an async command runs under cli.run_until_signal


def start(config: AnyConfig) -> Outcome:
    """The command's exit status, or the coroutine that will return it."""
    match config:
        case RunConfig():
            from bluepulse import run_app

            return run_app.main(config)
        case DemoConfig():
            from bluepulse import demo_app

            return demo_app.main(config, runnable_command())
        case StreamerConfig():
            from bluepulse import streamer_app

            return streamer_app.main(config)
        case AggregatorConfig():
            from bluepulse import aggregator_app

            return aggregator_app.main(config)
        case AccountsConfig():
            from bluepulse import accounts_app

            return accounts_app.main(config)
        case BackfillConfig():
            from bluepulse import backfill_app

            return backfill_app.main(config)
        case SqlConfig():
            from bluepulse import sql_app

            return sql_app.main(config)
        case ReportConfig():
            from bluepulse import report_app

            return report_app.main(config)
        case RelayConfig():
            from bluepulse import relay_app

            return relay_app.main_relay(config)
        case JetstreamEmulatorConfig():
            from bluepulse import jetstream_app

            return jetstream_app.main(config)
        case RecordConfig():
            from bluepulse import relay_app

            return relay_app.main_record(config)
        case _:
            assert_never(config)


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
