"""Which days a report covers: `--from/--to` (both inclusive), `--quarter 2025Q1`, `--month 2025-03`.

A period is whole days in UTC, first and last included: 2025-01-01 to 2025-03-31 is 90 days.
Times in the store are naive UTC, so the period's bounds are naive UTC midnights: `[start, end)`.
Only the standard library here: `bluepulse.config` imports the parsers at every start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from report.errors import PeriodError

Kind = Literal["range", "quarter", "month"]
_QUARTER: Final = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # included
    last: date  # included
    kind: Kind = "range"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def weeks(self) -> float:
        return self.days / 7

    @property
    def start(self) -> datetime:
        """The first instant of the period (naive UTC, as the store's times)."""
        return datetime(self.first.year, self.first.month, self.first.day)

    @property
    def end(self) -> datetime:
        """The first instant after the period (naive UTC): the period is [start, end)."""
        return self.start + timedelta(days=self.days)

    @property
    def slug(self) -> str:
        """A short machine name: 2025Q1, 2025-03, 2025-01-01_2025-02-15."""
        if self.kind == "quarter":
            return f"{self.first.year}Q{(self.first.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        return f"{self.first.isoformat()}_{self.last.isoformat()}"


def day(text: str) -> date:
    """A calendar day, `2025-03-31`."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("must be a day: YYYY-MM-DD, e.g. 2025-03-31") from None


def quarter(text: str) -> Period:
    """`2025Q1` (or `2025-Q1`, `2025q1`): January to March 2025."""
    found = _QUARTER.match(text.strip())
    if not found:
        raise ValueError("must be a quarter: YYYYQN, e.g. 2025Q1")
    year, number = int(found[1]), int(found[2])
    first = date(year, 3 * number - 2, 1)
    return Period(first, _month_last(year, 3 * number), "quarter")


def month(text: str) -> Period:
    """`2025-03`: the whole of March 2025."""
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found[2]) <= 12:
        raise ValueError("must be a month: YYYY-MM, e.g. 2025-03")
    year, number = int(found[1]), int(found[2])
    return Period(date(year, number, 1), _month_last(year, number), "month")


def _month_last(year: int, number: int) -> date:
    following = date(year + number // 12, number % 12 + 1, 1)
    return following - timedelta(days=1)


def choose(
    first: date | None, last: date | None, by_quarter: Period | None, by_month: Period | None
) -> Period:
    """The one period the options name; PeriodError when they name none or several."""
    given = [name for name, value in (("--quarter", by_quarter), ("--month", by_month)) if value]
    if first is not None or last is not None:
        given.insert(0, "--from/--to")
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise PeriodError(
            f"name one period: --from DATE --to DATE, --quarter 2025Q1 or --month 2025-03 (given: {what})"
        )
    if by_quarter is not None:
        return by_quarter
    if by_month is not None:
        return by_month
    if first is None or last is None:
        raise PeriodError(
            "--from and --to go together: both days are included (--from 2025-01-01 --to 2025-03-31)"
        )
    if last < first:
        raise PeriodError(f"--to {last} is before --from {first}")
    return Period(first, last, "range")
