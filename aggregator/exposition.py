"""Expose stage: /metrics read from the store at scrape time, so Grafana equals SQL.

Per-account series are labelled by handle and category (a few thousand accounts at most);
posts never get a label of their own: the hottest posts of the last hour are exposed by
rank, with the URI in a bounded info metric.

Several aggregators (one consumer group, a file each) are summed by Prometheus: every event
lives in one file, so each exports its file's share of the additive families (the counters,
the net gauges, `engagement_1h`) for every account; a family that is a state or a ratio
(`followers`, its snapshot age, the signals, `identity_change`) is exported by the aggregator
that owns the account's partition now (`owns`), and by no other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, cast

import duckdb
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from aggregator import signals
from aggregator.counters import BY_VIEW, Flow
from aggregator.stats import AggregatorStats
from aggregator.store import Store

log = logging.getLogger(__name__)

# (column of account_totals, metric name, help): Prometheus counters for the gross counters,
# gauges equal to SQL for the net ones (aggregator/counters.py), and the follower baseline
_COUNTER_FAMILIES: Final = tuple(
    (c.name, m, c.doc) for c in BY_VIEW if (m := c.metric) and c.flow is Flow.GROSS
)
_GAUGE_FAMILIES: Final = (
    *((c.name, m, c.doc) for c in BY_VIEW if (m := c.metric) and c.flow is Flow.NET),
    ("followers", "followers", "Followers: the latest AppView snapshot, else the accounts file's baseline."),
)
TOP_K: Final = 10
_go: Final = cast(Callable[[float], str], floatToGoString)  # prometheus_client's float format
_ENGAGEMENT_DOC: Final = "Interactions received, last hour."
_AGE_DOC: Final = "Seconds since the follower count was read from the AppView (accounts refresh)."
# account_window's '1h' interactions, without the view's wider windows (10k accounts: 0.2 s -> 17 ms)
_LAST_HOUR: Final = """SELECT b.did, sum(b.likes) + sum(b.reposts) + sum(b.replies) + sum(b.quotes)
FROM account_buckets b, clock n
WHERE n.id = 1 AND b.bucket > n.newest_event - INTERVAL 1 HOUR AND b.bucket <= n.newest_event
GROUP BY b.did"""
# account_totals columns exported by the account's owner only (a state, not a share of events)
_OWNER_ONLY: Final = frozenset({"followers"})
Owns = Callable[[str], bool]  # did -> its events come to this aggregator now


# per account_totals column of the families above: exported by the account's owner only
_OWNER_ONLY_MASK: Final = tuple(c in _OWNER_ONLY for c, _, _ in _COUNTER_FAMILIES + _GAUGE_FAMILIES)


class StoreCollector(Collector):
    """Reads the store through its own cursor (scrapes come from the HTTP thread)."""

    def __init__(
        self,
        store: Store,
        version: Callable[[], int],
        signals_ttl: float = 15.0,
        signals_min_age: float = 2.0,
        owns: Owns | None = None,
    ) -> None:
        self._store = store
        self._owns = owns  # None: every account (one aggregator, `bluepulse run`)
        self._lock = threading.Lock()
        self._signals_ttl = signals_ttl
        self._version = version  # changes whenever a batch commits
        self._closed = False
        self._signals_min_age = signals_min_age  # signals cost tens of ms: not on every scrape
        self._signals: tuple[float, int, signals.Signals] | None = None

    def close(self) -> None:
        """Wait for a scrape in progress, then answer no more: the store is about to close
        (closing DuckDB under a running query aborts the process)."""
        with self._lock:
            self._closed = True

    def collect(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                return
            try:
                con = self._store.cursor()
                try:
                    yield from self._accounts(con)
                    yield from self._hot_posts(con)
                    yield from self._signal_metrics(con)
                finally:
                    con.close()
            except duckdb.Error as exc:  # a scrape must never take the process down
                log.warning("store metrics unavailable: %s", exc)

    def text(self, openmetrics: bool) -> str:
        """The same families as `collect`, rendered straight to exposition text (the /metrics
        handler serves it next to the registry's output): 30 series per account would
        otherwise cost a Sample object and prometheus_client's formatting each."""
        with self._lock:
            if self._closed:
                return ""
            try:
                con = self._store.cursor()
                try:
                    out: list[str] = []
                    self._accounts_text(con, openmetrics, out)
                    _render(self._hot_posts(con), openmetrics, out)
                    self._signals_text(con, openmetrics, out)
                    return "".join(out)
                finally:
                    con.close()
            except duckdb.Error as exc:  # a scrape must never take the process down
                log.warning("store metrics unavailable: %s", exc)
                return ""

    def _account_rows(self, con: duckdb.DuckDBPyConnection) -> tuple[list[Any], dict[str, Any]]:
        columns = ", ".join("t." + c for c, _, _ in _COUNTER_FAMILIES + _GAUGE_FAMILIES)
        rows = con.execute(
            f"SELECT t.did, coalesce(t.handle, t.did), coalesce(t.category, ''), "
            f"epoch(n.followers_time), {columns} "
            "FROM account_totals t LEFT JOIN accounts_now n ON n.did = t.did ORDER BY t.did"
        ).fetchall()
        window = dict(con.execute(_LAST_HOUR).fetchall())
        return rows, window

    def _accounts_text(self, con: duckdb.DuckDBPyConnection, openmetrics: bool, out: list[str]) -> None:
        rows, window = self._account_rows(con)
        heads = [("counter", name, doc) for _, name, doc in _COUNTER_FAMILIES]
        heads += [("gauge", name, doc) for _, name, doc in _GAUGE_FAMILIES]
        heads += [
            ("gauge", "engagement_1h", _ENGAGEMENT_DOC),
            ("gauge", "followers_snapshot_age_seconds", _AGE_DOC),
        ]
        lines: list[list[str]] = [[] for _ in heads]
        *value_lines, engagement, age = lines
        now = time.time()
        go = _go
        owns = self._owns
        for did, handle, category, snapshot_at, *values in rows:
            labels = f'{{account="{_escape(handle)}",category="{_escape(category)}"}} '
            mine = owns is None or owns(did)
            for family, value, owned in zip(value_lines, values, _OWNER_ONLY_MASK, strict=True):
                if value is not None and (mine or not owned):
                    family.append(labels + go(float(value)))
            engagement.append(labels + go(float(window.get(did) or 0)))
            if snapshot_at is not None and mine:
                age.append(labels + go(max(0.0, now - float(snapshot_at))))
        for (kind, name, doc), family in zip(heads, lines, strict=True):
            sample = f"bluepulse_account_{name}" + ("_total" if kind == "counter" else "")
            _head(out, f"bluepulse_account_{name}" if openmetrics else sample, kind, doc, openmetrics)
            if family:
                out.append(sample + ("\n" + sample).join(family) + "\n")

    def _accounts(self, con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
        rows, window = self._account_rows(con)
        families = [_family(CounterMetricFamily, name, doc) for _, name, doc in _COUNTER_FAMILIES]
        families += [_family(GaugeMetricFamily, name, doc) for _, name, doc in _GAUGE_FAMILIES]
        engagement = _family(GaugeMetricFamily, "engagement_1h", _ENGAGEMENT_DOC)
        age = _family(GaugeMetricFamily, "followers_snapshot_age_seconds", _AGE_DOC)
        now = time.time()
        for did, handle, category, snapshot_at, *values in rows:
            labels = [handle, category]
            mine = self._owns is None or self._owns(did)
            for family, value, owned in zip(families, values, _OWNER_ONLY_MASK, strict=True):
                if value is not None and (mine or not owned):
                    family.add_metric(labels, float(value))
            engagement.add_metric(labels, float(window.get(did) or 0))
            if snapshot_at is not None and mine:
                age.add_metric(labels, max(0.0, now - float(snapshot_at)))
        yield from families
        yield engagement
        yield age

    def _hot_posts(self, con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
        rows = con.execute(
            "SELECT uri, coalesce(handle, did), interactions FROM hot_posts LIMIT ?", [TOP_K]
        ).fetchall()
        value = GaugeMetricFamily(
            "bluepulse_hot_post_interactions_1h",
            "Interactions in the last hour of the post at this rank.",
            labels=["rank"],
        )
        info = InfoMetricFamily(
            "bluepulse_hot_post", "Which post holds each rank of the last hour.", labels=["rank"]
        )
        for rank, (uri, handle, interactions) in enumerate(rows, start=1):
            value.add_metric([str(rank)], float(interactions))
            info.add_metric([str(rank)], {"uri": uri, "account": handle})
        yield value
        yield info

    def _signal_metrics(self, con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
        s, labels, series = self._signal_series(con)
        for name, doc, values in series:
            family = GaugeMetricFamily(f"bluepulse_account_{name}", doc, labels=["account"])
            for did, handle in sorted(labels.items()):
                family.add_metric([handle], float(values.get(did, 0.0)))
            yield family
        yield _identity_changes(s, labels, self._owns)

    def _signals_text(self, con: duckdb.DuckDBPyConnection, openmetrics: bool, out: list[str]) -> None:
        s, labels, series = self._signal_series(con)
        accounts = [(did, f'{{account="{_escape(handle)}"}} ') for did, handle in sorted(labels.items())]
        go = _go
        for name, doc, values in series:
            sample = f"bluepulse_account_{name}"
            _head(out, sample, "gauge", doc, openmetrics)
            out.extend(f"{sample}{lab}{go(float(values.get(did, 0.0)))}\n" for did, lab in accounts)
        _render([_identity_changes(s, labels, self._owns)], openmetrics, out)

    def _signal_series(
        self, con: duckdb.DuckDBPyConnection
    ) -> tuple[signals.Signals, dict[str, str], tuple[tuple[str, str, Any], ...]]:
        now = time.monotonic()
        version = self._version()
        cached = self._signals
        age = now - cached[0] if cached is not None else 0.0
        stale = cached is not None and cached[1] != version and age >= self._signals_min_age
        if cached is None or stale or age > self._signals_ttl:
            cached = self._signals = (now, version, signals.compute(con))
        s = cached[2]
        labels = dict(con.execute("SELECT did, coalesce(handle, did) FROM accounts").fetchall())
        if self._owns is not None:  # the signals are states and ratios: their owner's only
            labels = {did: handle for did, handle in labels.items() if self._owns(did)}
        series = (
            (
                "viral_ratio",
                "Hottest post's last-hour interactions / usual per-post interactions.",
                {d: v[2] for d, v in s.viral.items()},
            ),
            (
                "hottest_post_interactions_1h",
                "Last-hour interactions of the account's hottest post.",
                {d: v[1] for d, v in s.viral.items()},
            ),
            ("activity_ratio", "Posts+reposts last hour / hourly baseline of 30 days.", s.activity_ratio),
            ("posts_1h", "Posts created in the last hour.", s.posts_1h),
            ("reposts_made_1h", "Reposts made in the last hour.", s.reposts_1h),
            ("deletes_1h", "Records deleted in the last hour.", s.deletes_1h),
            (
                "odd_hour_posts_1h",
                "Posts in the last hour at an hour of day unused for 30 days.",
                s.odd_hour_posts_1h,
            ),
            (
                "novel_reposts_24h",
                "Reposts (24 h) of authors never engaged with before.",
                s.novel_reposts_24h,
            ),
            ("handle_changes_24h", "Handle changes in the last 24 hours.", s.handle_changes_24h),
            ("status_changes_24h", "Account status changes in the last 24 hours.", s.status_changes_24h),
            ("active", "1 when the account is active on the network.", s.active),
            (
                "pds_changes_24h",
                "PDS endpoint changes in the PLC log (did:web document), last 24 h.",
                s.pds_changes_24h,
            ),
            (
                "signing_key_changes_24h",
                "Signing key changes in the PLC log (did:web document), last 24 h.",
                s.signing_key_changes_24h,
            ),
        )
        return s, labels, series


class PipelineCollector(Collector):
    def __init__(self, stats: AggregatorStats, owned_partitions: Callable[[], int] | None = None) -> None:
        self._stats = stats
        self._owned_partitions = owned_partitions  # Kafka only

    def describe(self) -> Iterator[Any]:
        """Names known up front make `/metrics?name[]=bluepulse_aggregator_last_seq` a cheap
        scrape that skips the store queries (pollers and latency probes use it)."""
        return self.collect()

    def collect(self) -> Iterator[Any]:
        s = self._stats
        yield _plain(CounterMetricFamily, "events_applied", "Events committed to DuckDB.", s.events_applied)
        yield _plain(CounterMetricFamily, "events_replayed", "Replayed events dropped.", s.events_replayed)
        dedup_doc = "Events dropped because another firehose gave them before (relay <-> Jetstream)."
        yield _plain(CounterMetricFamily, "events_deduplicated", dedup_doc, s.events_deduplicated)
        yield _plain(CounterMetricFamily, "batches", "Transactions committed.", s.batches)
        yield _plain(CounterMetricFamily, "batch_seconds", "Time in transactions.", s.batch_seconds_sum)
        yield _plain(GaugeMetricFamily, "last_batch_seconds", "Last transaction time.", s.batch_seconds_last)
        skipped = CounterMetricFamily(
            "bluepulse_aggregator_messages_skipped", "Messages not decodable, by reason.", labels=["reason"]
        )
        for reason, count in sorted(s.messages_skipped.items()):
            skipped.add_metric([reason], count)
        yield skipped
        last_seq = GaugeMetricFamily(
            "bluepulse_aggregator_last_seq",
            "Firehose seq committed in DuckDB, frames without tracked "
            "events included (highest over partitions), by source (their seqs are different numbers).",
            labels=["source"],
        )
        for source, seq in sorted(s.last_seq.items()):
            last_seq.add_metric([source], seq)
        yield last_seq
        yield _plain(GaugeMetricFamily, "lag_seconds", "Now minus newest event time.", s.lag_seconds())
        consumer_lag = GaugeMetricFamily(
            "bluepulse_aggregator_consumer_lag",
            "Kafka messages behind, by partition.",
            labels=["partition"],
        )
        for partition, behind in sorted(s.lag_by_partition.items()):
            consumer_lag.add_metric([partition], behind)
        yield consumer_lag
        yield _plain(
            GaugeMetricFamily, "snapshot_time_seconds", "When the SQL snapshot was written.", s.snapshot_time
        )
        # Kafka handoffs (aggregator/handoff.py); always 0 with the in-process queue
        refused_doc = "Batches rolled back because the group refused their offsets (a rebalance)."
        yield _plain(CounterMetricFamily, "batches_refused", refused_doc, s.batches_refused)
        owed_doc = "Messages this file owed after a crash between its two commits, read outside the group."
        yield _plain(CounterMetricFamily, "messages_owed", owed_doc, s.messages_owed)
        unverified_doc = "Partitions whose commit history no longer names this file (handoff not provable)."
        yield _plain(CounterMetricFamily, "handoffs_unverified", unverified_doc, s.handoffs_unverified)
        if self._owned_partitions is not None:
            yield _plain(
                GaugeMetricFamily,
                "owned_partitions",
                "Kafka partitions this aggregator holds now (its accounts' gauges are exported here).",
                self._owned_partitions(),
            )


def register_aggregator_metrics(
    registry: CollectorRegistry,
    store: Store,
    stats: AggregatorStats,
    *,
    owns: Owns | None = None,
    owned_partitions: Callable[[], int] | None = None,
) -> StoreCollector:
    """Returns the store collector: close it before closing the store. With several aggregators
    (Kafka), `owns` tells which accounts' non-additive gauges this one exports."""
    collector = StoreCollector(store, lambda: stats.batches, owns=owns)
    register_text = getattr(registry, "register_text", None)  # bluepulse.process.MetricsRegistry
    if register_text is not None:
        register_text(collector)  # served as text: prometheus_client costs seconds at 10k accounts
    else:
        registry.register(collector)
    registry.register(PipelineCollector(stats, owned_partitions))
    return collector


def _identity_changes(s: signals.Signals, labels: dict[str, str], owns: Owns | None) -> InfoMetricFamily:
    """The evidence of the takeover indicators: the latest PDS / signing-key change of each
    account in the last 24 h, old → new (one series per account at most)."""
    info = InfoMetricFamily(
        "bluepulse_account_identity_change",
        "Latest PDS / signing-key change in the last 24 h (PLC log or did:web), old -> new.",
        labels=["account", "did"],
    )
    for did, change in sorted(s.identity_change.items()):
        if owns is not None and not owns(did):  # another aggregator's account
            continue
        evidence = {
            "old_pds": change.old_pds,
            "new_pds": change.new_pds,
            "old_key": change.old_key,
            "new_key": change.new_key,
            "changed_at": change.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        info.add_metric([labels.get(did, did), did], {k: v or "" for k, v in evidence.items()})
    return info


def _family(cls: Any, name: str, doc: str) -> Any:
    return cls(f"bluepulse_account_{name}", doc, labels=["account", "category"])


def _plain(cls: Any, name: str, doc: str, value: float | None) -> Any:
    """A family even when there is no value yet (no sample then): `describe` must name it."""
    return cls(f"bluepulse_aggregator_{name}", doc, value=value)


def _escape(value: str) -> str:
    """A label value as prometheus_client writes it (both formats)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _head(out: list[str], name: str, kind: str, doc: str, openmetrics: bool) -> None:
    """HELP and TYPE lines as prometheus_client writes them (text 0.0.4 or OpenMetrics)."""
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        doc = doc.replace('"', r"\"")
    out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")


def _render(families: Iterable[Any], openmetrics: bool, out: list[str]) -> None:
    """Small families (no exemplars, timestamps or OpenMetrics-only samples) as prometheus_client
    writes them."""
    for family in families:
        name, kind = family.name, family.type
        if kind == "info" and not openmetrics:
            name, kind = name + "_info", "gauge"
        elif kind == "counter" and not openmetrics:
            name += "_total"
        _head(out, name, kind, family.documentation, openmetrics)
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
            out.append(f"{sample.name}{{{labels}}} " if labels else f"{sample.name} ")
            out.append(_go(sample.value) + "\n")
