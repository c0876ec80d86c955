"""Reconnect and retry pacing shared by the relay source and the Kafka clients."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter, so a fleet does not reconnect in lockstep."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0 = the first retry)."""
        ceiling = min(self.maximum, self.initial * 2 ** min(attempt, 30))
        return random.uniform(ceiling / 2, ceiling)
