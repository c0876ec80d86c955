"""The report's charts: vega-altair specs rendered offline by vl-convert to PNG (inline and for slides).

vl-convert is a self-contained engine (no browser, no network); its first conversion starts
it (~0.3 s), the others take a few tens of ms. Number and date formats follow the report's
language through vl-convert's d3 locales. The page embeds the same PNG (twice the pixels, crisp
in print) rather than the SVG: vega lays text out with vl-convert's fonts, and a browser that
draws the SVG's text with its own, wider ones clipped the account names. A chart with nothing
to draw is not made: the page says why instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import altair as alt
import vl_convert as vlc

from report.figures import Barometer
from report.i18n import Language

BARS: Final = 25  # accounts on a ranking chart; the table lists them all
WIDTH: Final = 620
COLOR: Final = "#1f5f99"
# the category axis's title above its labels, where long names leave no room beside them
_ABOVE: Final = alt.Axis(
    labelLimit=190, titleAngle=0, titleAnchor="end", titleAlign="left", titleBaseline="bottom", titleY=-4
)


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # file stem: followers.png
    caption: str
    alt: str
    png: bytes

    @property
    def width(self) -> int:
        """CSS pixels: the PNG is drawn at twice its size (scale 2), for print."""
        return int.from_bytes(self.png[16:20], "big") // 2  # the PNG IHDR's width

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def make_charts(barometer: Barometer, lang: Language, out: Path) -> dict[str, Chart]:
    """Every chart that has data, by name; each also written as `out/NAME.png`."""
    specs: dict[str, tuple[alt.TopLevelMixin, str, str]] = {}
    ranked = [r for r in barometer.rows if r.followers is not None][:BARS]
    if ranked:
        specs["followers"] = _followers(ranked, lang)
    if barometer.posts:
        specs["posts_per_week"] = _weekly(barometer, lang)
    rated = sorted(
        (r for r in barometer.rows if r.interaction_rate_per_post is not None),
        key=lambda r: (-(r.interaction_rate_per_post or 0.0), r.name),
    )[:BARS]
    if rated:
        specs["interaction_rate"] = _rates(rated, lang)
    categories = barometer.categories
    if categories and barometer.posts:
        specs["categories"] = _categories(barometer, lang)
    return {
        name: _render(name, chart, (caption, text), lang, out)
        for name, (chart, caption, text) in specs.items()
    }


def _render(name: str, chart: alt.TopLevelMixin, texts: tuple[str, str], lang: Language, out: Path) -> Chart:
    spec: dict[str, Any] = chart.to_dict()
    locale: Any = lang.chart_locale  # one of vl-convert's d3 locale names (i18n.CHART_LOCALES)
    png = vlc.vegalite_to_png(spec, scale=2, format_locale=locale, time_format_locale=locale)
    (out / f"{name}.png").write_bytes(png)
    return Chart(name, *texts, png)


def _bars(values: list[dict[str, Any]], x: alt.X, lang: Language, label: str) -> alt.Chart:
    return cast(
        alt.Chart,
        (
            alt.Chart({"values": values}, width=WIDTH - 200)
            .mark_bar(color=COLOR)
            .encode(
                x=x,
                y=alt.Y("name:N", sort=None, title=lang.t("axis_account"), axis=_ABOVE),
                tooltip=[alt.Tooltip("name:N"), alt.Tooltip(label)],
            )
            .configure_view(stroke=None)
        ),
    )


def _followers(rows: list[Any], lang: Language) -> tuple[alt.Chart, str, str]:
    values = [{"name": r.name, "followers": r.followers} for r in rows]
    x = alt.X("followers:Q", title=lang.t("axis_followers"), axis=alt.Axis(format=",d", tickMinStep=1))
    caption = lang.t("followers_chart", n=len(rows))
    return _bars(values, x, lang, "followers:Q"), caption, caption


def _rates(rows: list[Any], lang: Language) -> tuple[alt.Chart, str, str]:
    values = [{"name": r.name, "rate": r.interaction_rate_per_post} for r in rows]
    x = alt.X("rate:Q", title=lang.t("axis_rate"), axis=alt.Axis(format=".1%"))
    caption = lang.t("rate_chart", n=len(rows))
    return _bars(values, x, lang, "rate:Q"), caption, caption


def _weekly(barometer: Barometer, lang: Language) -> tuple[alt.Chart, str, str]:
    values = [{"week": lang.short_date(w.first), "posts": w.posts} for w in barometer.weeks]
    last = barometer.weeks[-1]
    partial = lang.t("weekly_partial", days=last.days) if last.days < 7 else ""
    caption = lang.t("weekly_chart", first=lang.day(barometer.period.first), partial=partial)
    chart = (
        alt.Chart({"values": values}, width=WIDTH - 80, height=220)
        .mark_bar(color=COLOR)
        .encode(
            x=alt.X("week:N", sort=None, title=lang.t("axis_week"), axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("posts:Q", title=lang.t("axis_posts"), axis=alt.Axis(format=",d", tickMinStep=1)),
            tooltip=["week:N", "posts:Q"],
        )
        .configure_view(stroke=None)
    )
    return chart, caption, caption


def _categories(barometer: Barometer, lang: Language) -> tuple[alt.Chart, str, str]:
    values = [{"name": c.name, "ppw": c.posts_per_week_per_account} for c in barometer.categories]
    chart = (
        alt.Chart({"values": values}, width=WIDTH - 200)
        .mark_bar(color=COLOR)
        .encode(
            x=alt.X("ppw:Q", title=lang.t("axis_ppw_account"), axis=alt.Axis(format=",.1f")),
            y=alt.Y("name:N", sort="-x", title=lang.t("axis_category"), axis=_ABOVE),
            tooltip=["name:N", alt.Tooltip("ppw:Q", format=",.2f")],
        )
        .configure_view(stroke=None)
    )
    caption = lang.t("categories_chart")
    return chart, caption, caption
