"""The report's words and number formats, French (default) and English.

Numbers, percentages and dates go through babel, so a French reader sees `2 405`, `2,89 %`,
`1er trimestre 2025` and `31 mars 2025`; an unknown value is a dash, never `nan` or `None`.
The CSV files do not come through here: they stay machine-readable whatever the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from report.periods import Period
from report.words import WORDS

DASH: Final = "—"
LOCALES: Final = {"fr": "fr_FR", "en": "en_GB"}
CHART_LOCALES: Final = {"fr": "fr-FR", "en": "en-GB"}  # d3 format / time-format locales of vl-convert
_PERCENT: Final = {"fr": "#,##0.00 %", "en": "#,##0.00%"}


@dataclass(frozen=True, slots=True)
class Language:
    """Words and formats of one report language."""

    code: str

    @property
    def locale(self) -> str:
        return LOCALES[self.code]

    @property
    def chart_locale(self) -> str:
        return CHART_LOCALES[self.code]

    def t(self, key: str, **values: object) -> str:
        """The sentence `key` in this language, with `values` put in."""
        text = WORDS[key][self.code]
        return text.format(**values) if values else text

    def num(self, value: int | None) -> str:
        return DASH if value is None else format_decimal(value, locale=self.locale)

    def signed(self, value: int | None) -> str:
        if value is None:
            return DASH
        text = format_decimal(abs(value), locale=self.locale)
        return f"+{text}" if value > 0 else (f"−{text}" if value < 0 else text)

    def dec(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return DASH
        return format_decimal(value, format="#,##0." + "0" * digits, locale=self.locale)

    def pct(self, value: float | None, signed: bool = False) -> str:
        if value is None:
            return DASH
        text = format_percent(abs(value) if signed else value, format=_PERCENT[self.code], locale=self.locale)
        if signed and value:
            return ("+" if value > 0 else "−") + text
        return text

    def day(self, value: date | datetime | None) -> str:
        """`31 mars 2025` / `31 March 2025`."""
        return DASH if value is None else format_date(value, format="long", locale=self.locale)

    def short_date(self, value: date | datetime) -> str:
        """`6 janv.` / `6 Jan`: chart axes."""
        return format_date(value, format="d MMM", locale=self.locale)

    def period_title(self, period: Period) -> str:
        """`1er trimestre 2025`, `Mars 2025`, `du 1 janvier 2025 au 15 février 2025`."""
        if period.kind == "quarter":
            return format_date(period.first, format="QQQQ y", locale=self.locale)
        if period.kind == "month":
            text = format_date(period.first, format="LLLL y", locale=self.locale)
            return text[:1].upper() + text[1:]
        if period.days == 1:
            return self.day(period.first)
        return self.t("range", first=self.day(period.first), last=self.day(period.last))

    def period_span(self, period: Period) -> str:
        """The days, always spelt out: `du 1 janvier 2025 au 31 mars 2025 (90 jours)`."""
        if period.days == 1:
            return self.t("span_one", first=self.day(period.first))
        return self.t("span", first=self.day(period.first), last=self.day(period.last), days=period.days)
