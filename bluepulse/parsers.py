"""Value parsers for settings: text from a flag or a BLUEPULSE_* variable → a typed value.

Each raises ValueError with the reason a user reads after `--flag='value': ` (ConfigError lists
them all at once); its return type is the field's type (`setting()` makes mypy check it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

RELAY_SCHEMES: Final = ("wss", "ws", "https", "http")


def whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def port(text: str) -> int:
    value = whole(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def positive(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def at_least(minimum: float, why: str) -> Callable[[str], float]:
    """A number not below `minimum` (`why` says what a smaller value would break)."""

    def parse(text: str) -> float:
        value = number(text)
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g} ({why})")
        return value

    return parse


def positive_int(text: str) -> int:
    value = whole(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def non_negative_int(text: str) -> int:
    value = whole(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """An empty value (`BLUEPULSE_RATE=`) means unset, like leaving the option out."""

    def parse_optional(text: str) -> T | None:
        return parse(text) if text else None

    return parse_optional


def choice(*choices: str) -> Callable[[str], str]:
    """Any case accepted (`debug`), the canonical spelling kept."""
    canonical = {c.lower(): c for c in choices}

    def parse(text: str) -> str:
        try:
            return canonical[text.strip().lower()]
        except KeyError:
            raise ValueError(f"must be one of {', '.join(choices)}") from None

    return parse


def url(text: str) -> str:
    """A relay URL must name its scheme and host: a typo fails at start, not in endless retries."""
    parts = urlsplit(text.strip())
    if parts.scheme.lower() not in RELAY_SCHEMES:
        raise ValueError(f"must be a URL starting with {', '.join(s + '://' for s in RELAY_SCHEMES)}")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("URL has no host")
    return text.strip()


def boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def http_url(text: str) -> str:
    """An HTTP(S) base URL (the AppView): scheme and host required."""
    value = url(text)
    if urlsplit(value).scheme.lower() not in ("http", "https"):
        raise ValueError("must be a URL starting with http:// or https://")
    return value.rstrip("/")


_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `6h` or `1d`; 0 means off."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    try:
        seconds = float(value[:-1] if unit else value) * (unit or 1.0)
    except ValueError:
        raise ValueError("must be seconds or a duration such as 90s, 30m, 6h, 1d (0 = off)") from None
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number")
    if seconds < 0:
        raise ValueError("must be 0 (off) or a positive duration such as 30m, 6h, 1d")
    return seconds


def moment(text: str) -> datetime:
    """A date (`2025-01-01`, midnight UTC) or an ISO 8601 time (naive = UTC) → an aware datetime."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a date (2025-01-01) or a time (2025-01-01T08:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def end_moment(text: str) -> datetime:
    """An end: a bare date means the whole day (`--to 2025-03-31` ends at 2025-04-01 00:00 UTC)."""
    value = moment(text)
    return value + timedelta(days=1) if len(text.strip()) == 10 else value
