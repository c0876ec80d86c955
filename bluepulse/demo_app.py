"""`bluepulse demo`: a generated day played by the relay emulator into the `run` pipeline, offline.

A fresh day each time: <state-dir>/demo is emptied at start (seqs restart at 1), but only once
its lock is held and both ports are bound, so a second demo never wipes a running one.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from bluepulse import lock
from bluepulse.config import DemoConfig, RunConfig
from bluepulse.errors import listen_error
from bluepulse.options import derive
from bluepulse.process import hosting
from bluepulse.run_app import Pipeline
from relay.demo_day import demo_day
from relay.emulator import RelayEmulator
from relay.server import play

log = logging.getLogger(__name__)


async def main(config: DemoConfig, rerun: str) -> int:
    """`rerun`: how this shell runs bluepulse again, for the SQL hint the demo logs."""
    home = config.state_dir / "demo"
    with hosting(config, dirs={"demo directory": home}) as registry:
        relay = RelayEmulator(port=config.port)
        try:
            await relay.start()
        except OSError as exc:
            raise listen_error(exc, ("relay emulator host", relay.host), ("--port", config.port)) from exc
        try:
            _empty(home)
            await _play(config, home, relay, registry, rerun)
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
    config: DemoConfig, home: Path, relay: RelayEmulator, registry: CollectorRegistry, rerun: str
) -> None:
    day = demo_day(scale=config.demo_scale)
    accounts = home / "accounts.csv"
    rows = [f'{a.did},{a.handle},"{a.name}",{a.category},{a.region}' for a in day.accounts]
    accounts.write_text("did,handle,name,category,region\n" + "\n".join(rows) + "\n")
    run = replace(
        derive(RunConfig, config),
        relay=relay.url,
        accounts=accounts,
        state_dir=home / "state",
        db=home / "bluepulse.duckdb",
    )
    pipeline = Pipeline(run, registry)
    log.info(
        "demo: %d frames of a generated day at %.0f frames/s; try: %s sql --db %s "
        "'SELECT handle, posts, likes, reposts, replies, quotes FROM account_totals'",
        len(day.frames),
        config.demo_rate,
        rerun,
        shlex.quote(str(run.db)),
    )
    player = asyncio.create_task(play(relay, day.frames, rate=config.demo_rate, wait_for_client=True))
    player.add_done_callback(_played)
    try:
        await pipeline.run()
    finally:
        player.cancel()


def _played(player: asyncio.Task[int]) -> None:
    if not player.cancelled():
        log.info("demo day fully played; Ctrl-C to stop")
