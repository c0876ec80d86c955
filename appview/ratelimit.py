"""The AppView's rate-limit headers, read into one shared pause for every request of a client.

`ratelimit-remaining: 0` pauses new requests until `ratelimit-reset`; a 429 pauses them for
`Retry-After` (else until the reset, else a backoff). The reset is epoch seconds on Bluesky's
AppView; small values are read as a delta (the IETF draft's form), so both kinds of server work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

EPOCH_THRESHOLD = 1_000_000_000  # a reset above this is an epoch time, below it a delta


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def reset_at(headers: Mapping[str, str], now: float) -> float | None:
    """Wall-clock time at which the quota resets, from `ratelimit-reset`."""
    reset = _number(headers.get("ratelimit-reset"))
    if reset is None:
        return None
    return reset if reset > EPOCH_THRESHOLD else now + reset


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Wall-clock time named by `Retry-After` (seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return now + max(0.0, seconds)
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class RateGate:
    """One pause shared by all of a client's requests; `max_wait` caps a single pause."""

    def __init__(self, max_wait: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self.max_wait = max_wait
        self.clock = clock
        self.blocked_until = 0.0
        self.waited = 0.0  # seconds spent paused, for progress and benches
        self.limit: int | None = None
        self.remaining: int | None = None

    def observe(self, status: int, headers: Mapping[str, str], fallback: float) -> None:
        """Read one answer's headers; `fallback` is the pause for a 429 that names no time."""
        now = self.clock()
        limit, remaining = (
            _number(headers.get("ratelimit-limit")),
            _number(headers.get("ratelimit-remaining")),
        )
        self.limit = int(limit) if limit is not None else self.limit
        self.remaining = int(remaining) if remaining is not None else self.remaining
        until: float | None = None
        if status == 429:
            until = retry_after(headers, now) or reset_at(headers, now) or now + fallback
        elif remaining is not None and remaining <= 0:
            until = reset_at(headers, now)
        if until is not None:
            self.blocked_until = max(self.blocked_until, min(until, now + self.max_wait))

    async def wait(self) -> None:
        """Sleep while the pause lasts (a later answer may extend it)."""
        while (delay := self.blocked_until - self.clock()) > 0:
            self.waited += delay
            await asyncio.sleep(delay)
