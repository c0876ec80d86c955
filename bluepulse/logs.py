"""Logging setup: key=value text by default, JSON on request, repeated warnings rate-limited."""

from __future__ import annotations

import atexit
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import TextIO


class RateLimit(logging.Filter):
    """Lets the same message template through at most `burst` times per `period` seconds.

    Hidden lines are never silent: once a template's window ends with lines held back, one
    line says how many (checked on every record that reaches the handler, and at exit).
    """

    def __init__(
        self, burst: int = 5, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst, self.period, self._clock = burst, period, clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}
        self._due = math.inf  # earliest end of a window that is holding lines back
        self._noticing = False

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now > self._due and not self._noticing:
            self.flush_notices()
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        start, count = self._seen.get(key, (now, 0))
        if now - start > self.period:
            start, count = now, 0
        self._seen[key] = (start, count + 1)
        if count >= self.burst:
            self._due = min(self._due, start + self.period)
        return count < self.burst

    def flush_notices(self, *, final: bool = False) -> None:
        """One line per template whose window ended (every one, when `final`) with lines held back."""
        now, self._due, self._noticing = self._clock(), math.inf, True
        try:
            for key, (start, count) in list(self._seen.items()):
                if count <= self.burst:
                    continue
                if not final and now - start <= self.period:
                    self._due = min(self._due, start + self.period)
                    continue
                del self._seen[key]
                name, msg = key
                logging.getLogger(name).warning(
                    "%d similar messages suppressed in the last %.0f s: %s",
                    count - self.burst,
                    now - start,
                    msg,
                )
        finally:
            self._noticing = False


def _notices_at_exit(handler: logging.StreamHandler[TextIO], limiter: RateLimit) -> None:
    """The last word on what was held back, if this handler is still the one in use."""
    if handler in logging.getLogger().handlers and not handler.stream.closed:
        limiter.flush_notices(final=True)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    limiter = RateLimit()
    handler.addFilter(limiter)
    atexit.register(_notices_at_exit, handler, limiter)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
