"""Store-at-size bench: /metrics and SQL on 10 000 tracked accounts with a year of buckets.

A child process generates the store: `Store.open` creates the real schema (its migrations),
then one `INSERT … SELECT` per table fills the store's own tables in DuckDB (faster than
`Store.apply`, and the rows are shaped by the same DDL): a year of `account_days`, the
`--hour-days` before the day cut-off in `account_hours`, the last `--minute-hours` (from the
hour floor, as maintenance leaves them) in `account_minutes`, posts with their day and minute
buckets, and `--events-per-account` events over the event-log retention. This process then
opens the file as the aggregator does and measures, in one run: `/metrics` scrape time p50 /
p99 through the real exposition (`register_aggregator_metrics` on the registry `bluepulse
aggregator` serves; prometheus_client formatting every family as reference), once with
the signals cached and once recomputed at every scrape (a busy aggregator commits between
scrapes), the series per account and in total from the scrape text, `account_totals` and
`account_window` (all accounts, one account), the DuckDB file size and this process's peak RSS.

    .venv/bin/python bench/store_size.py [--accounts 10000] [--scrapes 20] [--keep FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import _common

from aggregator.counters import ACCOUNT_COUNTERS, POST_COUNTERS
from aggregator.exposition import register_aggregator_metrics
from aggregator.stats import AggregatorStats
from aggregator.store import Store
from schemas.accounts import Account

NOW = datetime(2026, 7, 4, 14, 0)  # the store clock: newest applied event
TARGET_SECONDS = 1.0
SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} ", re.MULTILINE)


def _values(names: tuple[str, ...], scale: int) -> str:
    return ", ".join(f"(random() * {scale})::BIGINT AS {n}" for n in names)


def generate(path: Path, args: argparse.Namespace) -> None:
    """Fill a fresh store (runs in a child process: its memory is not the measured one)."""
    days, hours, minutes = _cutoffs(args)
    with Store.open(path, memory_limit="8GB", threads=4) as store:
        store.upsert_accounts(
            [
                Account(_did(i), f"account{i}.example.org", f"Account {i}", f"category{i % 12}", "")
                for i in range(args.accounts)
            ]
        )
        store.set_followers({_did(i): 100 + i for i in range(args.accounts)})
        con = store.cursor()
        con.execute(
            "CREATE TEMP TABLE gen_dids AS SELECT i, 'did:plc:bench' || lpad(i::VARCHAR, 19, '0') AS did "
            f"FROM range({args.accounts}) t(i)"
        )
        con.execute("SET preserve_insertion_order = false")
        _buckets(con, "account_days", "1 DAY", days, count=args.year_days, end=hours, density=args.density)
        _buckets(
            con,
            "account_hours",
            "1 HOUR",
            hours,
            count=args.hour_days * 24,
            end=minutes,
            density=args.density,
        )
        count = int((NOW - minutes).total_seconds() // 60) + 1
        _buckets(
            con,
            "account_minutes",
            "1 MINUTE",
            minutes,
            count=count,
            end=NOW + timedelta(minutes=1),
            density=args.density,
        )
        _posts(con, args)
        _events(con, args)
        con.execute("UPDATE clock SET newest_event = ? WHERE id = 1", [NOW])
        con.execute("CHECKPOINT")
        con.close()


def _cutoffs(args: argparse.Namespace) -> tuple[datetime, datetime, datetime]:
    """Where each level starts, as `maintenance` leaves a store: minutes from the hour floor of
    now - minute keep, hours from the day floor of now - hour keep, days a year before that."""
    minutes = (NOW - timedelta(hours=args.minute_hours)).replace(minute=0)
    hours = (NOW - timedelta(days=args.hour_days)).replace(hour=0, minute=0)
    return hours - timedelta(days=args.year_days), hours, minutes


def _buckets(  # type: ignore[no-untyped-def]
    con, table: str, step: str, start: datetime, *, count: int, end: datetime, density: float
) -> None:
    sample = f"AND random() < {density}" if density < 1 else ""
    con.execute(
        f"INSERT INTO {table} (did, bucket, {', '.join(ACCOUNT_COUNTERS)}) "
        f"SELECT d.did, b.bucket, {_values(ACCOUNT_COUNTERS, 20)} FROM gen_dids d, "
        f"(SELECT ?::TIMESTAMP + n * INTERVAL {step} AS bucket FROM range({count}) t(n)) b "
        f"WHERE b.bucket < ? {sample}",
        [start, end],
    )


def _posts(con, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """Posts over the year; each counts on its day (post_days) or, in the last 24 h, on minutes."""
    total, span = args.accounts * args.posts_per_account, args.year_days + args.hour_days
    con.execute(
        "CREATE TEMP TABLE gen_posts AS SELECT d.did, "
        "'at://' || d.did || '/app.bsky.feed.post/' || lpad(p::VARCHAR, 13, '0') AS uri, "
        f"?::TIMESTAMP - (random() * {span * 86400})::BIGINT * INTERVAL 1 SECOND AS created "
        f"FROM gen_dids d, range({args.posts_per_account}) t(p)",
        [NOW],
    )
    con.execute(
        "INSERT INTO posts (uri, did, created_at, text, first_seen) "
        "SELECT uri, did, created, 'Nouvelle campagne de vaccination', created FROM gen_posts"
    )
    cut = NOW - timedelta(hours=24)
    cols = ", ".join(POST_COUNTERS)
    con.execute(
        f"INSERT INTO post_days (uri, bucket, did, {cols}) SELECT uri, date_trunc('day', created), did, "
        f"{_values(POST_COUNTERS, 30)} FROM gen_posts WHERE created < ?",
        [cut.replace(hour=0)],
    )
    con.execute(
        f"INSERT INTO post_minutes (uri, bucket, did, {cols}) "
        "SELECT uri, date_trunc('minute', created), did, "
        f"{_values(POST_COUNTERS, 30)} FROM gen_posts WHERE created >= ?",
        [cut.replace(hour=0)],
    )
    print(f"  posts: {total:,}", flush=True)


def _events(con, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """The event log over its retention: posts and reposts by, likes to the accounts."""
    seconds = args.retention_days * 86400
    con.execute(
        "INSERT INTO events BY NAME SELECT 1000000 + row_number() OVER () AS seq, 0 AS idx, "
        "k.kind, 'create' AS action, k.direction, d.did AS subject_did, "
        "CASE WHEN k.direction = 'by' THEN d.did "
        "ELSE 'did:plc:other' || (e % 5000)::VARCHAR END AS actor_did, "
        f"?::TIMESTAMP - (random() * {seconds})::BIGINT * INTERVAL 1 SECOND AS time, "
        "'at://' || d.did || '/app.bsky.feed.' || k.kind || '/' || e::VARCHAR AS uri, "
        "CASE WHEN k.kind = 'repost' THEN 'did:plc:other' || (e % 500)::VARCHAR END AS target_did, "
        "1 AS v, 'bluepulse.events/0' AS partition, ?::TIMESTAMP AS ingested_at "
        f"FROM gen_dids d, range({args.events_per_account}) t(e), "
        "(VALUES (0, 'post', 'by'), (1, 'repost', 'by'), (2, 'like', 'to'), (3, 'like', 'to')) "
        "k(r, kind, direction) "
        "WHERE e % 4 = k.r",
        [NOW, NOW],
    )


def _did(i: int) -> str:
    return "did:plc:bench" + str(i).rjust(19, "0")


def timed(work: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        out.append(time.perf_counter() - started)
    return out


def quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms"


def cardinality(text: str) -> tuple[int, Counter[str], int]:
    """(total series, series per family for one account, accounts seen) from a scrape."""
    total = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    per_family: Counter[str] = Counter()
    accounts: set[str] = set()
    one = 'account="account1.example.org"'
    for name, labels in SERIES.findall(text):
        match = re.search(r'account="([^"]*)"', labels)
        if match:
            accounts.add(match.group(1))
        if one in labels.split(","):
            per_family[name] += 1
    return total, per_family, len(accounts)


def measure(path: Path, args: argparse.Namespace) -> None:
    from prometheus_client import generate_latest

    from bluepulse.process import MetricsRegistry

    rows = {}
    with Store.open(path) as store:
        for table in ("account_minutes", "account_hours", "account_days", "posts", "post_days", "events"):
            rows[table] = store.query(f"SELECT count(*) FROM {table}")[1][0][0]
        print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
        stats = AggregatorStats()
        registry = MetricsRegistry()  # as `bluepulse aggregator` serves it
        collector = register_aggregator_metrics(registry, store, stats)
        text = registry.exposition(None)[0].decode()  # warm-up: first signals, DuckDB caches
        cached = timed(lambda: registry.exposition(None), args.scrapes)
        # reference: every family through prometheus_client's own formatting
        reference = timed(lambda: generate_latest(registry), max(3, args.scrapes // 5))

        def busy_scrape() -> None:  # a batch committed since the last scrape: signals recomputed
            stats.batches += 1
            collector._signals_min_age = 0.0
            registry.exposition(None)

        busy = timed(busy_scrape, args.scrapes)
        collector.close()
        total, per_family, accounts = cardinality(text)
        one = "did:plc:bench" + "1".rjust(19, "0")
        con = store.cursor()
        queries = {
            "account_totals (all)": lambda: con.execute("SELECT * FROM account_totals").fetchall(),
            "account_window (all)": lambda: con.execute("SELECT * FROM account_window").fetchall(),
            "account_totals (1 did)": lambda: con.execute(
                "SELECT * FROM account_totals WHERE did = ?", [one]
            ).fetchall(),
            "account_window (1 did, 24h)": lambda: con.execute(
                "SELECT * FROM account_window WHERE did = ? AND \"window\" = '24h'", [one]
            ).fetchall(),
        }
        query_times = {name: timed(q, args.queries) for name, q in queries.items()}
        con.close()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    print(f"DuckDB file: {size / 1e6:.0f} MB")
    print(f"/metrics, signals cached:     {quantiles(cached)} over {len(cached)} scrapes")
    print(f"/metrics, signals recomputed: {quantiles(busy)} over {len(busy)} scrapes")
    ratio = statistics.median(cached) / statistics.median(reference)
    print(f"  prometheus_client formatting (reference): {quantiles(reference)}; ours / reference {ratio:.2f}")
    worst = max(sorted(busy)[min(len(busy) - 1, int(len(busy) * 0.99))], *cached)
    print(f"  scrape p99 / target (< {TARGET_SECONDS:.0f} s): {worst / TARGET_SECONDS:.2f}")
    per_account = sum(per_family.values())
    families = ", ".join(sorted(n.removeprefix("bluepulse_account_") for n in per_family))
    print(
        f"series: {total:,} in total, {accounts:,} accounts labelled, {per_account} per account "
        f"({len(per_family)} families: {families})"
    )
    for name, samples in query_times.items():
        print(f"{name}: {quantiles(samples)} over {len(samples)} runs (/ target {max(samples):.2f})")
    print(f"peak RSS of the measuring process: {_common.status_kb('VmHWM') / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--year-days", type=int, default=365, help="days of account_days")
    parser.add_argument("--hour-days", type=int, default=8, help="days of account_hours (hour keep)")
    parser.add_argument("--minute-hours", type=int, default=3, help="hours of account_minutes (minute keep)")
    parser.add_argument("--density", type=float, default=1.0, help="share of (account, bucket) with a row")
    parser.add_argument("--posts-per-account", type=int, default=100)
    parser.add_argument("--events-per-account", type=int, default=100)
    parser.add_argument("--retention-days", type=int, default=90)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep (or reuse) the generated store here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bluepulse-bench-size-") as tmp:
        path = args.keep or Path(tmp, "store.duckdb")
        if not path.exists():
            started = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(target=generate, args=(path, args))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"generation failed: exit {child.exitcode}")
            took = time.perf_counter() - started
            print(f"generated {args.accounts:,} accounts in {took:.0f} s", flush=True)
        measure(path, args)


if __name__ == "__main__":
    main()
