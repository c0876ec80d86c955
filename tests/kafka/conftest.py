"""Every test under tests/kafka gets the `kafka` marker (`pytest -m "not kafka"` skips them).

The broker fixtures (kafka_bootstrap, kafka_restart, kafka_topic, …) live in
tests/support/kafka_broker.py, shared with the transport contract suite.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relay.script import FrameScript
from tests.integration.test_run_crash import busy_day, run_to_end

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselection reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def day() -> FrameScript:
    """The frames the pipeline tests play (tests/integration/test_run_crash.py)."""
    return busy_day()


@pytest.fixture(scope="session")
def embedded(day: FrameScript, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DuckDB file of an uninterrupted `bluepulse run` of the day: the reference."""
    run = run_to_end(tmp_path_factory.mktemp("embedded") / "run", day, kill_after_events=None)
    with ThreadPoolExecutor(1) as pool:  # its own event loop, away from the tests' one
        return pool.submit(asyncio.run, run).result(timeout=60)
