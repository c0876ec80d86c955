"""Streamer counters, kept as plain ints on the hot path and exposed at scrape time.

A prometheus_client Counter costs a lock per increment; the frame loop only bumps ints and
the collector turns them into metric families when /metrics is scraped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamer.errors import FrameReason, OpReason, RelayMessage

if TYPE_CHECKING:
    from prometheus_client.core import Metric


@dataclass(slots=True)
class StreamerStats:
    frames: int = 0
    frames_candidate: int = 0
    frames_skipped: Counter[FrameReason] = field(default_factory=Counter)
    ops_skipped: Counter[OpReason] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    relay_messages: Counter[RelayMessage] = field(default_factory=Counter)
    last_seq: int | None = None
    last_frame_time: float | None = None
    tracked_accounts: int = 0
    reconnects: int = 0
    frames_replayed: int = 0  # re-sent by an inclusive (Jetstream) cursor, dropped unread
    gaps: int = 0  # times the source could not resume where we stood (CursorTooOld)
    events_lost: int = 0  # events between our position and the floor we resumed at
    remembered_paths: int = 0  # refreshed at start and by each expiry run, not per scrape

    def lag_seconds(self) -> float | None:
        if self.last_frame_time is None:
            return None
        return max(0.0, time.time() - self.last_frame_time)


class StreamerCollector(Collector):
    def __init__(self, stats: StreamerStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield _counter("frames_received", "Frames received from the relay.", s.frames)
        skipped = CounterMetricFamily(
            "bluepulse_streamer_frames_skipped", "Frames skipped, by reason.", labels=["reason"]
        )
        untracked = (
            s.frames - s.frames_candidate - s.frames_skipped[FrameReason.OVERSIZED] - s.frames_replayed
        )
        skipped.add_metric([FrameReason.UNTRACKED], untracked)
        for reason, count in sorted(s.frames_skipped.items()):
            skipped.add_metric([reason], count)
        yield skipped
        ops = CounterMetricFamily(
            "bluepulse_streamer_ops_skipped", "Commit ops skipped, by reason.", labels=["reason"]
        )
        for op_reason, count in sorted(s.ops_skipped.items()):
            ops.add_metric([op_reason], count)
        yield ops
        events = CounterMetricFamily(
            "bluepulse_streamer_events_emitted",
            "Events published, by kind and direction.",
            labels=["kind", "direction"],
        )
        for (kind, direction), count in sorted(s.events.items()):
            events.add_metric([kind, direction], count)
        yield events
        relay = CounterMetricFamily(
            "bluepulse_streamer_relay_messages",
            "#info and error frames from the relay, by name.",
            labels=["name"],
        )
        for name, count in sorted(s.relay_messages.items()):
            relay.add_metric([name], count)
        yield relay
        yield _counter("reconnects", "Relay reconnections.", s.reconnects)
        yield _counter(
            "frames_replayed", "Frames an inclusive cursor re-sent, dropped unread.", s.frames_replayed
        )
        yield _counter("gaps", "Resumes that could not start at the saved position (cursor too old).", s.gaps)
        yield _counter(
            "events_lost", "Events skipped by those resumes (the floor minus the position).", s.events_lost
        )
        yield _gauge("tracked_accounts", "Tracked accounts.", s.tracked_accounts)
        yield _gauge(
            "remembered_paths",
            "Remembered like/repost/follow paths (as of the last expiry).",
            s.remembered_paths,
        )
        if s.last_seq is not None:
            yield _gauge("last_seq", "Highest firehose seq whose events are flushed.", s.last_seq)
        lag = s.lag_seconds()
        if lag is not None:
            yield _gauge("lag_seconds", "Now minus the firehose time of the last frame.", lag)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"bluepulse_streamer_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"bluepulse_streamer_{name}", doc, value=value)
