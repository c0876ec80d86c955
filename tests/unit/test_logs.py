"""Log throttling says what it hid: a real logger, a real handler, a fake clock."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bluepulse.logs import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, RateLimit, Clock]]:
    clock, out = Clock(), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    limiter = RateLimit(burst=5, period=60.0, clock=clock)
    handler.addFilter(limiter)
    logger = logging.getLogger("bluepulse.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, out, limiter, clock
    finally:
        logger.removeHandler(handler)


def test_six_reconnects_give_five_lines_then_a_notice_when_the_window_ends(
    logged: tuple[logging.Logger, io.StringIO, RateLimit, Clock],
) -> None:
    logger, out, _, clock = logged
    for n in range(6):
        logger.warning("relay connection lost attempt=%d", n)
        clock.now += 1
    assert out.getvalue().count("relay connection lost") == 5
    clock.now += 60  # the window ended; any next record brings the notice
    logger.info("relay connected")
    lines = out.getvalue().splitlines()
    assert lines[-2] == (
        "WARNING 1 similar messages suppressed in the last 66 s: relay connection lost attempt=%d"
    )
    assert lines[-1] == "INFO relay connected"


def test_a_notice_is_given_at_exit_for_lines_held_back_in_an_open_window(
    logged: tuple[logging.Logger, io.StringIO, RateLimit, Clock],
) -> None:
    logger, out, limiter, clock = logged
    for _ in range(17):
        logger.warning("kafka not reachable")
        clock.now += 2
    limiter.flush_notices(final=True)
    assert out.getvalue().splitlines()[-1] == (
        "WARNING 12 similar messages suppressed in the last 34 s: kafka not reachable"
    )
    limiter.flush_notices(final=True)  # said once
    assert out.getvalue().count("suppressed") == 1


def test_nothing_suppressed_means_no_notice(
    logged: tuple[logging.Logger, io.StringIO, RateLimit, Clock],
) -> None:
    logger, out, limiter, clock = logged
    for _ in range(5):
        logger.warning("relay silent")
    clock.now += 120
    logger.warning("relay silent")
    limiter.flush_notices(final=True)
    assert "suppressed" not in out.getvalue()
    assert out.getvalue().count("relay silent") == 6
