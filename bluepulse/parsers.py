"""Value parsers for settings: text from a flag or a BLUEPULSE_* variable → a typed value.

Each raises ValueError with the reason a user reads after `--flag='value': ` (ConfigError lists
them all at once); its return type is the field's type (`setting()` makes mypy check it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
