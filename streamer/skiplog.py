"""One log line per skipped frame, rate-limited per reason, so a hostile flood stays readable.

The counters (`bluepulse_streamer_frames_skipped_total{reason}`) count every skip; this only
decides which skips also get a WARNING line. A suppressed line costs one dict lookup (no log
record is built), and the next line of that reason says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class SkipLog:
    """At most `burst` lines per reason per `period` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self.burst, self.period, self._clock = logger, burst, period, clock
        self._windows: dict[str, list[float]] = {}  # reason → [window start, lines, suppressed]

    def skipped(self, reason: str, detail: object, seq: Callable[[], int | None]) -> bool:
        """Log one skipped frame unless its reason is over its burst; True when logged.
        `seq` is called only for a line that is written."""
        now = self._clock()
        window = self._windows.get(reason)
        if window is None or now - window[0] > self.period:
            suppressed = int(window[2]) if window else 0
            window = self._windows[reason] = [now, 0, 0]
        else:
            suppressed = 0
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        note = f" ({suppressed} more skips with this reason were not logged)" if suppressed else ""
        # the reason is part of the template: a handler-level limiter keyed by template then
        # limits each reason on its own
        self._log.warning(
            "frame skipped reason=" + reason + " seq=%s detail=%s%s",
            _or_unknown(seq()),
            str(detail)[:200],
            note,
        )
        return True


def _or_unknown(seq: int | None) -> int | str:
    return "?" if seq is None else seq
