"""`bluepulse streamer` and `bluepulse aggregator` as real processes, for the Kafka pipeline tests.

Each is started as a user would (`python -m bluepulse.cli …`) with its own log file and /metrics
port; tests wait on scraped series, and `close()` (called in a finally) SIGKILLs whatever is left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Self

from tests.integration.test_run_pipeline import free_port

Metrics = dict[str, float]
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 4000


def parse_metrics(text: str) -> Metrics:
    """`series{labels} value` lines → {series with labels: value} (values may be in exponent form)."""
    out: Metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


class BluepulseProcess:
    """One `bluepulse <command>` process; start() again after kill() to restart it."""

    def __init__(self, name: str, args: list[str], tmp: Path, db: Path | None = None) -> None:
        self.name = name
        self.db = db  # the aggregator's DuckDB file
        self.port = free_port()
        self.argv = [sys.executable, "-m", "bluepulse.cli", *args, "--metrics-port", str(self.port)]
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEPULSE_")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no finally block, no flush, no commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL, self.tail()

    def terminate(self) -> int:
        """SIGTERM, as a user stopping it; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT_S)

    def close(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log (last {LOG_TAIL_CHARS} chars) ---\n{text[-LOG_TAIL_CHARS:]}"

    def scrape(self) -> Metrics:
        """The current /metrics, or {} while the endpoint is not up (yet)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
                return parse_metrics(resp.read().decode())
        except OSError:
            return {}

    async def wait_for(self, what: str, check: Callable[[Metrics], bool], timeout: float = 30.0) -> Metrics:
        """Scrape until `check` holds; fails at once if the process exited meanwhile."""
        metrics: Metrics = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    metrics = await asyncio.to_thread(self.scrape)
                    if metrics and check(metrics):
                        return metrics
                    assert self.running, f"{self.name} exited while waiting for {what}\n{self.tail()}"
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no {what} within {timeout} s\n{self.tail()}") from None

    async def wait_up(self, timeout: float = 30.0) -> Metrics:
        return await self.wait_for("/metrics endpoint", lambda m: True, timeout)


def streamer(
    tmp: Path, *, relay_url: str, accounts: Path, bootstrap: str, topic: str, partitions: int,
    checkpoint_interval: float = 1.0,
) -> BluepulseProcess:  # fmt: skip
    return BluepulseProcess("streamer", [
        "streamer", "--relay", relay_url, "--accounts", str(accounts), "--state-dir", str(tmp / "state"),
        "--kafka", bootstrap, "--topic", topic, "--partitions", str(partitions),
        "--checkpoint-interval", str(checkpoint_interval),
    ], tmp)  # fmt: skip


def aggregator(
    tmp: Path, name: str, *, accounts: Path, bootstrap: str, topic: str, group: str, partitions: int
) -> BluepulseProcess:
    db = tmp / f"{name}.duckdb"
    return BluepulseProcess(name, [
        "aggregator", "--kafka", bootstrap, "--topic", topic, "--group", group,
        "--partitions", str(partitions), "--accounts", str(accounts),
        "--db", str(db), "--snapshot-interval", "0.2",
    ], tmp, db)  # fmt: skip
