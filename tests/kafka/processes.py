"""`bluepulse streamer` and `bluepulse aggregator` as real processes, for the Kafka pipeline tests.

Each is started as a user would (`python -m bluepulse.cli …`) with its own log file and /metrics
port; tests wait on scraped series, and `close()` (called in a finally) SIGKILLs whatever is left.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import (
    STOP_TIMEOUT_S,
    ChildProcess,
    Metrics,
    bluepulse_argv,
    metrics_text,
    parse_metrics,
)

__all__ = ["BluepulseProcess", "Metrics", "aggregator", "streamer"]


class BluepulseProcess(ChildProcess):
    """One `bluepulse <command>` process; start() again after kill() to restart it."""

    def __init__(self, name: str, args: list[str], tmp: Path, db: Path | None = None) -> None:
        self.db = db  # the aggregator's DuckDB file
        self.port = free_port()
        super().__init__(name, bluepulse_argv(*args, "--metrics-port", str(self.port)), tmp / f"{name}.log")

    def kill(self) -> None:
        """SIGKILL: no finally block, no flush, no commit."""
        assert self.stop(signal.SIGKILL) == -signal.SIGKILL, self.tail()

    def terminate(self) -> int:
        """SIGTERM, as a user stopping it; returns the exit code."""
        return self.stop(signal.SIGTERM, STOP_TIMEOUT_S)

    def scrape(self) -> Metrics:
        """The current /metrics, or {} while the endpoint is not up (yet)."""
        try:
            return parse_metrics(metrics_text(self.port))
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
    tmp: Path,
    *,
    relay_url: str,
    accounts: Path,
    bootstrap: str,
    topic: str,
    partitions: int,
    checkpoint_interval: float = 1.0,
) -> BluepulseProcess:
    return BluepulseProcess(
        "streamer",
        [
            "streamer",
            "--relay",
            relay_url,
            "--accounts",
            str(accounts),
            "--state-dir",
            str(tmp / "state"),
            "--kafka",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            str(partitions),
            "--checkpoint-interval",
            str(checkpoint_interval),
        ],
        tmp,
    )


def aggregator(
    tmp: Path, name: str, *, accounts: Path, bootstrap: str, topic: str, group: str, partitions: int
) -> BluepulseProcess:
    db = tmp / f"{name}.duckdb"
    return BluepulseProcess(
        name,
        [
            "aggregator",
            "--kafka",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--partitions",
            str(partitions),
            "--accounts",
            str(accounts),
            "--db",
            str(db),
            "--snapshot-interval",
            "0.2",
        ],
        tmp,
        db,
    )
