"""barometer.csv and top_posts.csv: the report's figures for machines, whatever the page's language.

Dot decimals, ISO 8601 times (UTC), `true`/`false`, an empty cell for an unknown value. The
columns of barometer.csv up to `inactive` are a promise (issue 15); later ones are appended only.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Final

from report.figures import AccountRow, Barometer, TopPost

BAROMETER_COLUMNS: Final = (
    "did", "handle", "name", "category", "followers", "followers_start", "followers_growth",
    "posts", "posts_per_week", "likes", "reposts", "replies", "quotes", "interactions",
    "interaction_rate_per_post", "inactive",
    # appended: not part of the promise's order, but kept
    "near_inactive", "followers_at", "mentions_by_name", "period_first", "period_last",
)  # fmt: skip
TOP_POSTS_COLUMNS: Final = (
    "rank", "uri", "url", "did", "handle", "name", "created_at", "is_reply", "likes", "reposts",
    "replies", "quotes", "interactions", "followers", "interaction_rate", "text",
)  # fmt: skip

Cell = str | int | float | bool | datetime | None


def cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    return str(value)


def write_barometer(barometer: Barometer, path: Path) -> None:
    period = barometer.period
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(BAROMETER_COLUMNS)
        for row in barometer.rows:
            writer.writerow(
                [cell(v) for v in _barometer_row(row)] + [period.first.isoformat(), period.last.isoformat()]
            )


def _barometer_row(r: AccountRow) -> tuple[Cell, ...]:
    return (
        r.did, r.handle, r.name, r.category, r.followers, r.followers_start, r.followers_growth,
        r.posts, r.posts_per_week, r.likes, r.reposts, r.replies, r.quotes, r.interactions,
        r.interaction_rate_per_post, r.inactive, r.near_inactive, r.followers_at, r.mentions_by_name,
    )  # fmt: skip


def write_top_posts(top: list[TopPost], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TOP_POSTS_COLUMNS)
        for rank, p in enumerate(top, 1):
            writer.writerow([cell(v) for v in (
                rank, p.uri, p.url, p.did, p.handle, p.name, p.created, p.is_reply, p.likes, p.reposts,
                p.replies, p.quotes, p.interactions, p.followers, p.rate, p.text,
            )])  # fmt: skip
