"""`bluepulse demo`: a generated day played by the relay emulator into the `run` pipeline, offline.

With `--jetstream` the same day goes through the Jetstream emulator (each relay frame converted
as production Jetstream converts it) and the pipeline reads it as `run --jetstream` does: v2,
dict-zstd. Both ways end with the same totals, the day's truth.

A fresh day each time: <state-dir>/demo is emptied at start (seqs restart at 1), but only once
its lock is held and both ports are bound, so a second demo never wipes a running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import shutil
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry

from appview.plc_emulator import PlcEmulator
from bluepulse import lock
from bluepulse.config import DemoConfig, RunConfig
from bluepulse.errors import listen_error
from bluepulse.options import derive
from bluepulse.process import hosting
from bluepulse.run_app import Pipeline
from relay import jetstream_emulator
from relay.demo_day import demo_day
from relay.emulator import RelayEmulator
from relay.jetstream_emulator import JetstreamEmulator
from relay.server import play
from relay.takeover_scenario import demo_plc_logs

Emulator = RelayEmulator | JetstreamEmulator
# The day starts this long after /metrics shows every account: a scraper then records each
# counter at 0 first, and increase() counts the day's first events too
START_DELAY_S: Final = 1.0

log = logging.getLogger(__name__)


async def main(config: DemoConfig, rerun: str) -> int:
    """`rerun`: how this shell runs bluepulse again, for the SQL hint the demo logs."""
    home = config.state_dir / "demo"
    with hosting(config, dirs={"demo directory": home}) as registry:
        relay: Emulator = (
            JetstreamEmulator(port=config.port) if config.jetstream else RelayEmulator(port=config.port)
        )
        try:
            await relay.start()
        except OSError as exc:
            what = "jetstream emulator host" if config.jetstream else "relay emulator host"
            raise listen_error(exc, (what, relay.host), ("--port", config.port)) from exc
        try:
            _empty(home)
            async with PlcEmulator() as directory:  # the demo day's PLC directory
                await _play(config, home, relay, registry, rerun, directory=directory)
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


async def _play(
    config: DemoConfig,
    home: Path,
    relay: Emulator,
    registry: CollectorRegistry,
    rerun: str,
    *,
    directory: PlcEmulator,
) -> None:
    day = demo_day(scale=config.demo_scale)
    directory.logs = demo_plc_logs(day)  # the night's takeover moves the account's PDS
    accounts = home / "accounts.csv"
    rows = [f'{a.did},{a.handle},"{a.name}",{a.category},{a.region}' for a in day.accounts]
    accounts.write_text("did,handle,name,category,region\n" + "\n".join(rows) + "\n")
    run = replace(
        derive(RunConfig, config),
        relay=relay.url,
        jetstream=relay.url if config.jetstream else None,  # the demo's switch, not run's URL
        jetstream_compress="on",
        accounts=accounts,
        state_dir=home / "state",
        db=home / "bluepulse.duckdb",
        plc=directory.url,  # offline: the demo's own PLC directory
    )
    pipeline = Pipeline(run, registry)
    log.info(
        "demo: %d frames of a generated day at %.0f frames/s over %s; try: %s sql --db %s "
        "'SELECT handle, posts, likes, reposts, replies, quotes FROM account_totals'",
        len(day.frames),
        config.demo_rate,
        "jetstream" if config.jetstream else "the relay",
        rerun,
        shlex.quote(str(run.db)),
    )
    if isinstance(relay, JetstreamEmulator):
        played = jetstream_emulator.play(relay, day.frames, rate=config.demo_rate, wait_for_client=True)
    else:
        played = play(relay, day.frames, rate=config.demo_rate, wait_for_client=True)
    player = asyncio.create_task(_after(START_DELAY_S, played))
    player.add_done_callback(_played)
    reporter = asyncio.create_task(_report_when_played(player, pipeline, home / "report"))
    try:
        await pipeline.run()
    finally:
        player.cancel()
        reporter.cancel()


async def _after(delay: float, played: Awaitable[int]) -> int:
    await asyncio.sleep(delay)
    return await played


def _played(player: asyncio.Task[int]) -> None:
    if not player.cancelled():
        log.info("demo day fully played; Ctrl-C to stop")


async def _report_when_played(player: asyncio.Task[int], pipeline: Pipeline, out: Path) -> None:
    """Once the day is played and applied, the barometer report of the day (issue 15) in `out`."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(player)
    if player.cancelled():
        return
    from bluepulse import report_app  # noqa: PLC0415  (altair, vl-convert, jinja2: once the day is played)

    seen, quiet = pipeline.store.clock(), 0
    while quiet < 2:  # the store clock still for two seconds: the queue is drained
        await asyncio.sleep(1.0)
        now = pipeline.store.clock()
        quiet, seen = (quiet + 1, seen) if now == seen else (0, now)
    index = await asyncio.to_thread(report_app.demo_report, pipeline.store, out)
    if index is not None:
        log.info("demo report of the day written: %s (open it in a browser)", index)
