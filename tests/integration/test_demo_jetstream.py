"""`bluepulse demo --jetstream` ends with the same account totals as `bluepulse demo`: the day's truth.

The demo day (relay/demo_day.py) knows its expected per-account totals; played through the relay
emulator or converted by the Jetstream emulator and read over v2 with dict-zstd, the store must
hold exactly those. Each demo is a real process, stopped with Ctrl-C as a user stops it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import duckdb
import pytest

from relay.demo_day import COUNTERS, demo_day
from tests.support.processes import clean_env

BLUEPULSE: Final = Path(sys.executable).with_name("bluepulse")
SCALE: Final = 0.3
TOTALS: Final = f"SELECT did, {', '.join(COUNTERS)} FROM account_totals ORDER BY did"
Totals = dict[str, dict[str, int]]


def read_totals(db: Path) -> Totals | None:
    if not db.is_file():
        return None
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute(TOTALS).fetchall()
    except duckdb.Error:  # the snapshot is being replaced or not complete yet: read it again
        return None
    return {row[0]: dict(zip(COUNTERS, (int(v or 0) for v in row[1:]), strict=True)) for row in rows}


def run_demo(tmp: Path, *flags: str) -> tuple[Totals, str]:
    """The demo until its snapshot holds the day's truth (or 60 s), then Ctrl-C: final totals, log."""
    expected = demo_day(scale=SCALE).expected
    argv = [str(BLUEPULSE), "demo", *flags, "--demo-scale", str(SCALE), "--demo-rate", "20000"]
    argv += ["--metrics-port", "0", "--state-dir", "d", "--snapshot-interval", "0.2"]
    log = tmp / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=tmp, env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            snapshot = tmp / "d/demo/bluepulse.snapshot.duckdb"
            while read_totals(snapshot) != expected and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    final = read_totals(tmp / "d/demo/bluepulse.duckdb")
    assert final is not None, log.read_text()
    return final, log.read_text()


@pytest.fixture(scope="module")
def expected() -> Totals:
    day = demo_day(scale=SCALE)
    assert all(sum(row.values()) > 0 for row in day.expected.values())
    return day.expected


def test_demo_over_jetstream_ends_with_the_relay_demo_s_totals(tmp_path: Path, expected: Totals) -> None:
    (tmp_path / "relay").mkdir()
    (tmp_path / "jetstream").mkdir()
    over_relay, relay_log = run_demo(tmp_path / "relay")
    over_jetstream, jetstream_log = run_demo(tmp_path / "jetstream", "--jetstream")
    assert over_relay == expected, relay_log[-3000:]
    assert over_jetstream == expected, jetstream_log[-3000:]
    # the second demo really read Jetstream: v2 with the dictionary, its own cursor file
    assert "over jetstream" in jetstream_log
    assert "zstdDictionary=" in jetstream_log
    state = tmp_path / "jetstream/d/demo/state"
    assert [p.name for p in state.glob("cursor.*")], sorted(p.name for p in state.iterdir())
    assert not (state / "cursor").exists()
    assert "over the relay" in relay_log
    assert (tmp_path / "relay/d/demo/state/cursor").is_file()
