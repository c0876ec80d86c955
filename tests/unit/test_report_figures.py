"""The barometer's figures equal an independent count from the generated events, to the last post.

The expected values below come from the events and the follower history the generator made,
folded here in plain Python: never from the report's SQL or the store's views.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bluepulse import report_app
from bluepulse.config import ReportConfig
from report.errors import PeriodError, ReportUsageError
from report.periods import Period, choose, month, quarter
from report.tables import BAROMETER_COLUMNS
from schemas import Action, Direction, Kind
from tests.support.barometer_quarter import Quarter, accounts_csv, generate_quarter, write_store

OWN = {Kind.POST, Kind.REPLY, Kind.QUOTE}


@dataclass
class Truth:
    posts: dict[str, list[str]]  # did -> uris of its counted posts
    counts: dict[str, list[int]]  # uri -> likes, reposts, replies, quotes
    followers: dict[str, int | None]
    followers_start: dict[str, int | None]
    named: dict[str, int]  # did -> posts naming it in the period


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).replace(tzinfo=None)


def independent(q: Quarter) -> Truth:
    created: dict[str, tuple[str, datetime]] = {}
    deleted: set[str] = set()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    named: dict[str, int] = defaultdict(int)
    for e in q.events:
        if e.kind == Kind.NAME_MENTION:
            if q.period.start <= parse(e.time) < q.period.end:
                named[e.subject_did] += 1
        elif e.direction == Direction.BY and e.kind in OWN and e.uri:
            if e.action == Action.CREATE:
                created[e.uri] = (e.subject_did, parse(e.created_at or e.time))
            else:
                deleted.add(e.uri)
        elif e.direction == Direction.TO and e.subject_uri:
            step = 1 if e.action == Action.CREATE else -1
            slot = {Kind.LIKE: 0, Kind.REPOST: 1, Kind.REPLY: 2, Kind.QUOTE: 3}[e.kind]
            counts[e.subject_uri][slot] += step
    posts: dict[str, list[str]] = defaultdict(list)
    for uri, (did, when) in created.items():
        if uri not in deleted and q.period.start <= when < q.period.end:
            posts[did].append(uri)
    end, start = {}, {}
    for a in q.accounts:
        history = sorted((t, n) for d, t, n in q.followers if d == a.did)
        at_end = [n for t, n in history if t <= q.period.end]
        at_start = [n for t, n in history if t <= q.period.start]
        end[a.did] = at_end[-1] if at_end else a.followers
        start[a.did] = at_start[-1] if at_start else None
    return Truth(posts, dict(counts), end, start, dict(named))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Quarter, Path]:
    q = generate_quarter()
    db = tmp_path_factory.mktemp("quarter") / "store.duckdb"
    write_store(q, db)
    return q, db


def run_report(db: Path, out: Path, **options: object) -> list[dict[str, str]]:
    config = ReportConfig(db=db, out=out, **options)  # type: ignore[arg-type]
    assert report_app.main(config) == 0
    with (out / "barometer.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def has_nan(html: str) -> bool:
    """A NaN, None or inf shown as text (the charts' data URIs aside)."""
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", html)
    return re.search(r"\b(nan|NaN|None|inf|Infinity)\b", text) is not None


def optional(value: str) -> float | None:
    return None if value == "" else float(value)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_barometer_rows_equal_the_independent_count(
    generated: tuple[Quarter, Path], tmp_path: Path, lang: str
) -> None:
    q, db = generated
    truth = independent(q)
    rows = run_report(db, tmp_path, quarter=quarter("2025Q1"), lang=lang)
    assert len(rows) == 65
    assert {r["did"] for r in rows} == {a.did for a in q.accounts}
    for row in rows:
        did = row["did"]
        uris = truth.posts.get(did, [])
        sums = [sum(truth.counts.get(u, [0] * 4)[k] for u in uris) for k in range(4)]
        assert int(row["posts"]) == len(uris), row["name"]
        assert [int(row[c]) for c in ("likes", "reposts", "replies", "quotes")] == sums, row["name"]
        assert int(row["interactions"]) == sum(sums)
        assert float(row["posts_per_week"]) == pytest.approx(len(uris) / (90 / 7))
        followers = truth.followers[did]
        assert optional(row["followers"]) == followers, row["name"]
        assert optional(row["followers_start"]) == truth.followers_start[did], row["name"]
        has_growth = (
            truth.followers_start[did] is not None and did not in q.baseline_only and followers is not None
        )
        expected_growth = followers - truth.followers_start[did] if has_growth else None  # type: ignore[operator]
        assert optional(row["followers_growth"]) == expected_growth
        rates = [sum(truth.counts.get(u, [0] * 4)) / followers for u in uris] if followers else []
        expected_rate = statistics.fmean(rates) if rates else None
        rate = optional(row["interaction_rate_per_post"])
        assert rate == (None if expected_rate is None else pytest.approx(expected_rate, rel=1e-8)), row[
            "name"
        ]
        assert row["inactive"] == ("true" if not uris else "false")
        assert int(row["mentions_by_name"]) == truth.named.get(did, 0), row["name"]
    assert sum(int(r["posts"]) for r in rows) == sum(len(v) for v in truth.posts.values())
    assert q.inactive <= {r["did"] for r in rows if r["inactive"] == "true"}
    assert any(r["followers"] == "" for r in rows)  # some accounts have no follower count
    assert all("nan" not in v.lower() for r in rows for v in r.values())
    assert sum(truth.named.values()) > 0  # the quarter has posts naming establishments


def test_columns_files_and_words_of_both_languages(generated: tuple[Quarter, Path], tmp_path: Path) -> None:
    q, db = generated
    truth = independent(q)
    total = sum(len(v) for v in truth.posts.values())
    for lang, total_text, title in (
        ("fr", f"{total:,}".replace(",", "\u202f"), "1er trimestre 2025"),
        ("en", f"{total:,}", "1st quarter 2025"),
    ):
        out = tmp_path / lang
        run_report(db, out, quarter=quarter("2025Q1"), lang=lang)
        with (out / "barometer.csv").open(encoding="utf-8") as f:
            assert tuple(next(csv.reader(f)))[:16] == BAROMETER_COLUMNS[:16]
        html = (out / "index.html").read_text(encoding="utf-8")
        assert title in html
        assert total_text in html
        assert ("31 mars 2025" if lang == "fr" else "31 March 2025") in html
        assert not has_nan(html)
        assert "http://" not in html
        assert "<script" not in html
        assert {p.name for p in out.glob("*.png")} == {
            "followers.png",
            "posts_per_week.png",
            "interaction_rate.png",
            "categories.png",
        }
        with (out / "top_posts.csv").open(encoding="utf-8") as f:
            top = list(csv.DictReader(f))
        best = max(sum(truth.counts.get(u, [0] * 4)) for v in truth.posts.values() for u in v)
        assert int(top[0]["interactions"]) == best
        assert top[0]["url"].startswith("https://bsky.app/profile/did:plc:")


def test_a_period_without_data_and_an_empty_accounts_file_say_so(
    generated: tuple[Quarter, Path], tmp_path: Path
) -> None:
    _, db = generated
    rows = run_report(db, tmp_path / "empty-period", month=month("2024-06"))
    assert {r["posts"] for r in rows} == {"0"}
    html = (tmp_path / "empty-period" / "index.html").read_text(encoding="utf-8")
    assert "aucune donnée sur cette période" in html
    assert list((tmp_path / "empty-period").glob("posts_per_week.png")) == []
    empty = tmp_path / "accounts.csv"
    empty.write_text("did,handle,name\n")
    assert run_report(db, tmp_path / "no-accounts", quarter=quarter("2025Q1"), accounts=empty) == []
    html = (tmp_path / "no-accounts" / "index.html").read_text(encoding="utf-8")
    assert "la liste des comptes est vide" in html
    assert "nan" not in html.lower().replace("nanc", "")


def test_the_accounts_file_and_a_category_choose_the_rows(
    generated: tuple[Quarter, Path], tmp_path: Path
) -> None:
    q, db = generated
    path = accounts_csv(q, tmp_path / "accounts.csv")
    rows = run_report(db, tmp_path / "chu", quarter=quarter("2025Q1"), accounts=path, category="chu")
    assert {r["category"] for r in rows} == {"CHU"}
    assert len(rows) == sum(1 for a in q.accounts if a.category == "CHU")
    with pytest.raises(ReportUsageError, match="categories: CH, CHU"):
        run_report(db, tmp_path / "x", quarter=quarter("2025Q1"), category="EHPAD")


def test_periods_are_whole_inclusive_days() -> None:
    q1 = quarter("2025Q1")
    assert (q1.first.isoformat(), q1.last.isoformat(), q1.days) == ("2025-01-01", "2025-03-31", 90)
    assert month("2024-02").days == 29
    assert quarter("2025q4").last.isoformat() == "2025-12-31"
    assert choose(q1.first, q1.last, None, None) == Period(q1.first, q1.last, "range")
    for bad in ((None, None, None, None), (q1.first, None, None, None), (q1.first, q1.last, q1, None)):
        with pytest.raises(PeriodError):
            choose(*bad)
    with pytest.raises(ValueError, match="YYYYQN"):
        quarter("2025Q5")


def test_every_sentence_has_both_languages() -> None:
    from report.words import WORDS

    assert [key for key, text in WORDS.items() if set(text) != {"fr", "en"} or not all(text.values())] == []
