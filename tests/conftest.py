"""Shared test fixtures: the real relay capture and its production Jetstream reading; the real
Kafka broker's fixtures (tests/support/kafka_broker.py) for tests/kafka and tests/contract."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.support.kafka_broker"]

_CORPUS_IN_SHARED = Path("shared") / "fixtures" / "real" / "jetstream-corpus"
# ../shared next to the checkout (the workspace layout), else the workspace's own copy when
# the checkout is a fresh clone elsewhere; BLUEPULSE_TEST_CORPUS names another directory.
CORPUS_CANDIDATES = [
    *([Path(os.environ["BLUEPULSE_TEST_CORPUS"])] if os.environ.get("BLUEPULSE_TEST_CORPUS") else []),
    Path(__file__).resolve().parents[2] / _CORPUS_IN_SHARED,
    Path("/work") / _CORPUS_IN_SHARED,
]


def corpus_path(name: str) -> Path:
    for directory in CORPUS_CANDIDATES:
        if (directory / name).exists():
            return directory / name
    tried = ", ".join(str(d) for d in CORPUS_CANDIDATES)
    pytest.fail(f"real fixture {name} not found in: {tried} (set BLUEPULSE_TEST_CORPUS)")


@pytest.fixture(scope="session")
def real_frames() -> list[bytes]:
    from relay.capture import read_frames

    return read_frames(corpus_path("frames.bin.zst"))


@pytest.fixture(scope="session")
def expected_v1() -> list[dict[str, Any]]:
    lines = corpus_path("expected_v1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def real_dids(expected_v1: list[dict[str, Any]]) -> set[str]:
    return {e["did"] for e in expected_v1}
