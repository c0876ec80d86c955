"""Every test under tests/kafka gets the `kafka` marker (`pytest -m "not kafka"` skips them).

The broker fixtures (kafka_bootstrap, kafka_restart, kafka_topic, …) live in
tests/support/kafka_broker.py, shared with the transport contract suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselection reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.kafka)
