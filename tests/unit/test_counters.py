"""The counter table is the one list: the README's metric list, STORE.md's column table, the
views and what /metrics exposes all agree with aggregator/counters.py, both ways."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from aggregator.appview_sql import ProfileSnapshot
from aggregator.counters import ACCOUNT_COUNTERS, COUNTERS, LEADING, POST_COUNTERS, VIEW_LEADING
from aggregator.exposition import StoreCollector
from aggregator.store import Store
from schemas.accounts import Account

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
STORE_MD = (ROOT / "aggregator" / "STORE.md").read_text()


def readme_account_metrics() -> set[str]:
    """Names in the README's "per account" metrics line: `bluepulse_account_{a,b}_total`, the
    gauges written `_name`, and full `bluepulse_account_name`s."""
    line = next(x for x in README.splitlines() if x.startswith("- per account"))
    names = set()
    for group in re.findall(r"bluepulse_account_\{([^}]*)\}_total", line):
        names |= {f"bluepulse_account_{n}_total" for n in group.split(",")}
    names |= {f"bluepulse_account{n}" for n in re.findall(r"`(_\w+)`", line)}
    names |= set(re.findall(r"`(bluepulse_account_\w+)`", line))
    return names


def exposed_account_metrics(tmp_path: Path) -> set[str]:
    """Sample names of the per-account families (labels account and category) of a scrape."""
    did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    with Store.open(tmp_path / "store.duckdb") as store:
        store.upsert_accounts([Account(did, "a.example.com", "A", "chu", "IDF")])
        store.set_followers({did: 10})
        store.record_profiles([ProfileSnapshot(did, "a.example.com", "A", 12, 3, 4)], datetime.now(UTC))
        registry = CollectorRegistry()
        collector = StoreCollector(store, lambda: 0)
        registry.register(collector)
        samples = [s for family in registry.collect() for s in family.samples]
        collector.close()
    return {s.name for s in samples if set(s.labels) == {"account", "category"}}


def test_the_readme_lists_exactly_the_per_account_metrics_exposed(tmp_path: Path) -> None:
    documented, exposed = readme_account_metrics(), exposed_account_metrics(tmp_path)
    assert sorted(documented - exposed) == []  # documented but not exposed
    assert sorted(exposed - documented) == []  # exposed but not documented


def test_every_metric_of_the_table_is_exposed(tmp_path: Path) -> None:
    named = {c.metric_name for c in COUNTERS if c.metric_name is not None}
    assert named <= exposed_account_metrics(tmp_path)
    assert all(c.doc for c in COUNTERS if c.metric is not None)


def test_store_md_describes_exactly_the_counter_columns() -> None:
    section = STORE_MD.split("## Semantics", 1)[1].split("## Tables", 1)[0]
    first_cells = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    described = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    assert described - {"interactions", "interaction_rate"} == set(ACCOUNT_COUNTERS)


def test_view_places_are_each_used_once_and_the_promised_columns_lead() -> None:
    assert sorted(c.view for c in COUNTERS) == list(range(len(COUNTERS)))
    assert len(set(ACCOUNT_COUNTERS)) == len(ACCOUNT_COUNTERS)
    promised = ("posts", "likes", "reposts", "replies", "quotes", "follows_gained", "follows_lost")
    assert promised == VIEW_LEADING
    assert len(promised) == LEADING
    assert set(POST_COUNTERS) <= set(ACCOUNT_COUNTERS)  # a post's counts add up to its account's


def test_views_and_tables_carry_every_counter(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.duckdb") as store:
        totals = store.query("SELECT * FROM account_totals LIMIT 0")[0]
        window = store.query("SELECT * FROM account_window LIMIT 0")[0]
        minutes = store.query("SELECT * FROM account_minutes LIMIT 0")[0]
    assert totals[3 : 3 + LEADING] == list(VIEW_LEADING)
    assert window[2 : 2 + LEADING] == list(VIEW_LEADING)
    assert set(ACCOUNT_COUNTERS) <= set(totals) & set(window)
    assert minutes == ["did", "bucket", *ACCOUNT_COUNTERS]
