"""Shared test fixtures: the real relay capture and its production Jetstream reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real" / "jetstream-corpus"


def corpus_path(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        pytest.fail(f"real fixture missing: {path} (the repo expects ../shared/fixtures next to it)")
    return path


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
