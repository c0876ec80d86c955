"""Aggregator pipeline counters (events applied, batches, latency, last seq)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from aggregator.store import ApplyResult, committed_by_source


@dataclass(slots=True)
class AggregatorStats:
    events_applied: int = 0
    events_replayed: int = 0
    events_deduplicated: int = 0
    events_bad_time: int = 0
    batches: int = 0
    batch_seconds_sum: float = 0.0
    batch_seconds_last: float = 0.0
    messages_skipped: Counter[str] = field(default_factory=Counter)
    last_seq: dict[str, int] = field(default_factory=dict)  # by source
    newest_event_time: float | None = None
    snapshot_seconds: float = 0.0
    snapshot_time: float | None = None
    lag_by_partition: dict[str, int] = field(default_factory=dict)
    # Kafka handoffs (aggregator/handoff.py)
    batches_refused: int = 0  # offset commit refused: batch rolled back, consumed again
    messages_owed: int = 0  # messages this file owed after a crash, read outside the group
    handoffs_unverified: int = 0  # partitions whose commit history does not reach this file

    def record_batch(self, result: ApplyResult, skipped: Mapping[str, int], seconds: float) -> None:
        self.events_applied += result.applied
        self.events_replayed += result.replayed
        self.events_deduplicated += result.duplicates
        self.events_bad_time += result.bad_times
        self.batches += 1
        self.batch_seconds_sum += seconds
        self.batch_seconds_last = seconds
        self.messages_skipped.update(skipped)
        # the position committed (events and markers), not the last event's seq
        for source, seq in committed_by_source(result.positions.values()).items():
            self.last_seq[source] = max(self.last_seq.get(source, seq), seq)
        if result.newest_event is not None:
            newest = result.newest_event.timestamp()
            self.newest_event_time = max(self.newest_event_time or 0.0, newest)

    def lag_seconds(self) -> float | None:
        if self.newest_event_time is None:
            return None
        return max(0.0, time.time() - self.newest_event_time)
