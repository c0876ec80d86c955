"""`bluepulse run --jetstream` against the Jetstream emulator: DuckDB ends with the day's truth.

The demo day (relay/demo_day.py, ~12 000 relay frames) is converted by the Jetstream emulator
and read by a real `bluepulse run` process over each wire and fault the issue names: v2 with
dict-zstd and a dropped connection every 1 800 events (plus malformed and unknown frames), v2
uncompressed cut by ConsumerTooSlow error frames, and v1 `/subscribe` with drops. Whatever the
wire, the store's account totals must equal the day's known per-account truth: nothing lost
at a reconnect, nothing counted twice by the inclusive cursor.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from relay.demo_day import demo_day
from relay.jetstream_emulator import JetstreamEmulator, play
from relay.jetstream_faults import JetstreamFaults
from tests.integration.test_demo_jetstream import Totals, read_totals
from tests.support.processes import clean_env

BLUEPULSE: Final = Path(sys.executable).with_name("bluepulse")


@dataclass(frozen=True)
class Wire:
    path: str
    compress: str
    faults: JetstreamFaults


WIRES: Final = {
    "v2-zstd-drops": Wire(
        "", "on", JetstreamFaults(drop_every=1800, malformed_every=997, unknown_type_every=1500)
    ),
    "v2-plain-consumer-too-slow": Wire("", "off", JetstreamFaults(error_after=2500)),
    "v1-drops": Wire("/subscribe", "on", JetstreamFaults(drop_every=1800)),
}


async def wait_totals(db: Path, expected: Totals, proc: subprocess.Popen[bytes], log: Path) -> Totals | None:
    """Poll the snapshot until it holds the truth (or 90 s); the last reading."""
    totals = None
    for _ in range(450):
        assert proc.poll() is None, log.read_text()[-3000:]
        totals = read_totals(db)
        if totals == expected:
            break
        await asyncio.sleep(0.2)
    return totals


@pytest.mark.parametrize("name", list(WIRES))
async def test_run_over_jetstream_ends_with_the_day_s_truth(tmp_path: Path, name: str) -> None:
    wire = WIRES[name]
    day = demo_day(scale=1.0)
    rows = [f'{a.did},{a.handle},"{a.name}",{a.category},{a.region}' for a in day.accounts]
    (tmp_path / "accounts.csv").write_text("did,handle,name,category,region\n" + "\n".join(rows) + "\n")
    async with JetstreamEmulator(faults=wire.faults) as emulator:
        argv = [str(BLUEPULSE), "run", "--jetstream", emulator.url + wire.path]
        argv += ["--jetstream-compress", wire.compress, "--accounts", "accounts.csv", "--state-dir", "st"]
        argv += ["--db", "bp.duckdb", "--metrics-port", "0", "--snapshot-interval", "0.2"]
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, then polled
                argv, cwd=tmp_path, env=clean_env(), stdout=out, stderr=subprocess.STDOUT
            )
            try:
                await asyncio.wait_for(emulator.wait_for_connections(1), 30)
                await play(emulator, day.frames)
                snapshot = tmp_path / "bp.snapshot.duckdb"
                seen = await wait_totals(snapshot, day.expected, proc, log)
                assert seen == day.expected, log.read_text()[-3000:]
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()[-3000:]
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        reconnects = len(emulator.connections)
    assert read_totals(tmp_path / "bp.duckdb") == day.expected
    # the faults really cut the stream: several connections, each resumed from the saved cursor
    assert reconnects >= 3, reconnects
