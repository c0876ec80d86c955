"""Remembered record paths expire after --remember-days; their number is on /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bluepulse.config import ConfigError, resolve
from streamer.cursor import CursorStore
from streamer.publish import CollectingPublisher
from streamer.records import Memory
from streamer.service import Streamer
from streamer.stats import StreamerCollector
from streamer.tracked import StreamerState, TrackedAccounts
from tests.integration.harness import ACCOUNTS, A, X, Y

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def remember(state: StreamerState, actor: str, rkey: str) -> None:
    state.remember(actor, f"app.bsky.feed.like/{rkey}", Memory("like", A, f"at://{A}/app.bsky.feed.post/p"))


def test_expiry_forgets_only_paths_older_than_the_window_and_updates_the_gauge(tmp_path: Path) -> None:
    clock = Clock()
    state = StreamerState(tmp_path, clock=clock)
    remember(state, X, "old")
    state.commit()
    clock.now += 80 * DAY
    remember(state, Y, "recent")
    state.commit()
    streamer = Streamer(
        TrackedAccounts(ACCOUNTS), state, CursorStore(tmp_path), CollectingPublisher(), remember_days=90
    )
    registry = CollectorRegistry()
    registry.register(StreamerCollector(streamer.stats))
    assert "bluepulse_streamer_remembered_paths 2.0" in generate_latest(registry).decode()
    clock.now += 11 * DAY  # the first like is 91 days old, the second 11
    assert streamer.state.expire(90) == 1
    assert state.recall(X, "app.bsky.feed.like/old") is None
    assert state.recall(Y, "app.bsky.feed.like/recent") is not None
    assert state.rememberers() == [Y]


async def test_the_expiry_job_refreshes_the_filter_and_the_gauge(tmp_path: Path) -> None:
    clock = Clock()
    state = StreamerState(tmp_path, clock=clock)
    for n in range(3):
        remember(state, X, f"r{n}")
    state.commit()
    streamer = Streamer(
        TrackedAccounts(ACCOUNTS), state, CursorStore(tmp_path), CollectingPublisher(), remember_days=0.5
    )
    registry = CollectorRegistry()
    registry.register(StreamerCollector(streamer.stats))
    clock.now += DAY
    assert await streamer.expire_memory() == 3
    assert "bluepulse_streamer_remembered_paths 0.0" in generate_latest(registry).decode()
    assert not streamer.filter._rememberers


def test_remember_days_is_an_option_with_env_and_a_90_day_default() -> None:
    assert resolve("streamer", {}, {}).remember_days == 90.0
    assert resolve("run", {}, {"BLUEPULSE_REMEMBER_DAYS": "7.5"}).remember_days == 7.5
    assert resolve("demo", {"remember_days": "30"}, {}).remember_days == 30.0
    for bad in ("nan", "inf", "0", "-1"):
        with pytest.raises(ConfigError, match="--remember-days"):
            resolve("streamer", {"remember_days": bad}, {})
