"""/metrics renders the store's families as text itself (prometheus_client costs seconds at 10k
accounts): the served bytes are exactly what prometheus_client writes, in both formats."""

from __future__ import annotations

import gzip
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, cast

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as _openmetrics_latest

from aggregator.appview_sql import ProfileSnapshot
from aggregator.exposition import register_aggregator_metrics
from aggregator.stats import AggregatorStats
from aggregator.store import Store
from bluepulse.config import MetricsSettings
from bluepulse.process import MetricsRegistry, serve_metrics
from schemas.accounts import Account
from tests.support.ports import free_port

openmetrics_latest: Final = cast(Callable[[MetricsRegistry], bytes], _openmetrics_latest)
ODD = 'odd"quote\\back\nline.example.com'


def store_with_accounts(path: Path) -> Store:
    store = Store.open(path)
    a, b = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
    store.upsert_accounts([Account(a, "a.example.com", "A", "chu", "IDF"), Account(b, ODD, "B", 'c"\\', "x")])
    store.set_followers({a: 10, b: 3})
    store.record_profiles([ProfileSnapshot(a, "a.example.com", "A", 12, 3, 4)], datetime.now(UTC))
    return store


def test_the_text_path_writes_what_prometheus_client_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.5)  # the age gauge
    with store_with_accounts(tmp_path / "store.duckdb") as store:
        registry = MetricsRegistry()
        collector = register_aggregator_metrics(registry, store, AggregatorStats())
        text, text_type = registry.exposition(None)
        om, om_type = registry.exposition(OPENMETRICS)
        assert text == generate_latest(registry)
        assert om == openmetrics_latest(registry)
        assert text_type.startswith("text/plain")
        assert om_type.startswith("application/openmetrics-text")
        assert b"bluepulse_account_followers{" in text
        assert b'odd\\"quote\\\\back\\nline' in text
        collector.close()


def test_the_metrics_port_serves_the_text_path(tmp_path: Path) -> None:
    port = free_port()
    with store_with_accounts(tmp_path / "store.duckdb") as store:
        registry = MetricsRegistry()
        collector = register_aggregator_metrics(registry, store, AggregatorStats())
        with serve_metrics(MetricsSettings(metrics_port=port), registry):
            url = f"http://127.0.0.1:{port}/metrics"
            plain = urllib.request.urlopen(url).read().decode()
            request = urllib.request.Request(url, headers={"Accept": OPENMETRICS, "Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request) as answer:
                assert answer.headers["Content-Encoding"] == "gzip"
                om = gzip.decompress(answer.read()).decode()
            only = urllib.request.urlopen(url + "?name[]=bluepulse_aggregator_batches_total").read().decode()
        collector.close()
    assert "bluepulse_account_followers{" in plain
    assert "bluepulse_aggregator_batches_total" in plain
    assert om.endswith("# EOF\n")
    assert om.count("# EOF") == 1
    assert "bluepulse_account_followers{" in om
    assert "bluepulse_aggregator_batches_total" in only
    assert "bluepulse_account_" not in only
