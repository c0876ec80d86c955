"""A failed DuckDB transaction stops `bluepulse run` without moving the cursor past it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aggregator.errors import StoreError
from bluepulse.config import resolve
from bluepulse.run_app import Pipeline
from relay.emulator import RelayEmulator
from relay.script import FrameScript
from tests.integration.harness import A, X
from tests.integration.test_run_pipeline import write_accounts


async def test_a_failed_transaction_stops_the_pipeline_and_keeps_the_cursor(tmp_path: Path) -> None:
    s = FrameScript()
    post = s.post(A, "x")
    for _ in range(5):
        s.like(X, post)
    flags = {
        "relay": None,
        "accounts": write_accounts(tmp_path / "accounts.csv"),
        "state_dir": tmp_path / "state",
        "db": tmp_path / "b.duckdb",
        "metrics_port": "0",
        "checkpoint_interval": "0.05",
    }
    async with RelayEmulator() as relay:
        config = resolve("run", {**flags, "relay": relay.url}, {})
        pipeline = Pipeline(config, CollectorRegistry())
        running = asyncio.create_task(pipeline.run())
        async with asyncio.timeout(10):
            await relay.wait_for_connections(1)
        for frame in s.frames[:3]:
            relay.publish(frame)
        cursor = tmp_path / "state" / "cursor"
        async with asyncio.timeout(10):
            while not cursor.exists() or cursor.read_text().strip() != "3":
                await asyncio.sleep(0.02)

        def disk_full(*_: Any) -> None:
            raise StoreError("b.duckdb: transaction failed: No space left on device")

        pipeline.store.apply = disk_full  # type: ignore[method-assign]
        for frame in s.frames[3:]:
            relay.publish(frame)
        with pytest.raises(StoreError, match="No space left"):
            async with asyncio.timeout(10):
                await running
    assert cursor.read_text().strip() == "3"
