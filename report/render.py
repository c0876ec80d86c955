"""index.html: the barometer as one self-contained page (Jinja2), and the report's files written together.

Everything the page needs is inside it: CSS (screen and A4 print), charts as PNG data URIs,
no script and no network. Text comes from report/words.py in the report's language; Jinja2
escapes every value (post texts and names are other people's input).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import jinja2

from report.charts import Chart, make_charts
from report.figures import Barometer
from report.i18n import Language
from report.tables import write_barometer, write_top_posts

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
TOP_SHOWN: Final = 10
NAMES_IN_NOTICE: Final = 12


@dataclass(frozen=True, slots=True)
class ReportFiles:
    index: Path
    barometer: Path
    top_posts: Path
    charts: list[Path]


def write_report(barometer: Barometer, lang: Language, out: Path, category: str | None = None) -> ReportFiles:
    """index.html, barometer.csv, top_posts.csv and one PNG per chart, into `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):  # a chart this period has no data for must not linger
        stale.unlink()
    charts = make_charts(barometer, lang, out)
    index = out / "index.html"
    index.write_text(render(barometer, charts, lang, category), encoding="utf-8")
    write_barometer(barometer, out / "barometer.csv")
    write_top_posts(barometer.top, out / "top_posts.csv")
    return ReportFiles(
        index, out / "barometer.csv", out / "top_posts.csv", [out / f"{name}.png" for name in charts]
    )


def notices(barometer: Barometer, lang: Language) -> list[str]:
    """What the reader must know before the figures: missing accounts, data or follower counts."""
    found = []
    if not barometer.rows:
        found.append(lang.t("no_accounts"))
    if barometer.coverage is None or not barometer.covers_period:
        found.append(lang.t("no_data"))
    else:
        first, last = barometer.coverage
        if first.date() > barometer.period.first or last.date() < barometer.period.last:
            found.append(lang.t("partial", first=lang.day(first), last=lang.day(last)))
    missing = barometer.without_followers
    if missing:
        names = ", ".join(r.name for r in missing[:NAMES_IN_NOTICE]) + (
            "…" if len(missing) > NAMES_IN_NOTICE else ""
        )
        found.append(lang.t("no_followers", count=lang.num(len(missing)), names=names))
    return found


def render(
    barometer: Barometer, charts: dict[str, Chart], lang: Language, category: str | None = None
) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rated = [r for r in barometer.rows if r.interaction_rate_per_post is not None]
    best = max(rated, key=lambda r: r.interaction_rate_per_post or 0.0) if rated else None
    return env.get_template("index.html.j2").render(
        b=barometer,
        L=lang,
        charts=charts,
        category=category,
        notices=notices(barometer, lang),
        top=barometer.top[:TOP_SHOWN],
        best=best,
        generated=lang.day(datetime.now(UTC)),
    )
