"""Bench: events/s of `Store.apply` (Arrow + grouped upserts) vs a plain executemany insert.

Generates realistic events for N tracked accounts over one hour of firehose time, applies
them in batches (metrics updated per batch, as the aggregator does), and prints the rate,
the baseline rate measured in the same run, RSS at start/middle/end, and snapshot times.

    .venv/bin/python bench/aggregator.py [--events 500000] [--accounts 65] [--batch 20000]
        [--large-batch 5000] [--two-sources]

Each figure is printed next to its target (issue 17: `Store.apply` ≥ 200,000 events/s with the
metrics updated, on this mixed batch: every event kind, deletes included). `--batch` is the
CLI's --batch-events default: what the aggregator takes at once when its queue or the Kafka
topic is that deep. The same events are applied a second time, into a fresh store, in batches
of `--large-batch` (the old default, 5 000): a transaction has fixed costs (~3 ms to plan each
grouped upsert, the commit's WAL write) that a larger batch spreads over more events.

`--two-sources`: the store first gets one event from a Jetstream source, so every batch
pays the cross-source dedup (identity keys, one lookup, key insert: aggregator/identity.py).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its name would
# shadow the `aggregator` package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import duckdb
from prometheus_client import CollectorRegistry, Counter, Histogram

from aggregator.columns import EVENT_COLUMNS
from aggregator.snapshot import snapshot_by_copy_database
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

APPLY_TARGET = 200_000  # events/s, issue 17 item 2

_MIX = (  # (weight, direction, kind, action)
    (45, Direction.TO, Kind.LIKE, Action.CREATE),
    (3, Direction.TO, Kind.LIKE, Action.DELETE),
    (10, Direction.TO, Kind.REPOST, Action.CREATE),
    (1, Direction.TO, Kind.REPOST, Action.DELETE),
    (8, Direction.TO, Kind.REPLY, Action.CREATE),
    (2, Direction.TO, Kind.QUOTE, Action.CREATE),
    (3, Direction.TO, Kind.MENTION, Action.CREATE),
    (5, Direction.TO, Kind.FOLLOW, Action.CREATE),
    (1, Direction.TO, Kind.FOLLOW, Action.DELETE),
    (5, Direction.BY, Kind.POST, Action.CREATE),
    (1, Direction.BY, Kind.POST, Action.DELETE),
    (5, Direction.BY, Kind.LIKE, Action.CREATE),
    (3, Direction.BY, Kind.REPOST, Action.CREATE),
    (2, Direction.BY, Kind.FOLLOW, Action.CREATE),
)


def _did(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=24))


class Generator:
    """Deterministic realistic events: Pareto-skewed accounts, one hour of firehose time."""

    def __init__(self, count: int, accounts: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.count = count
        self.tracked = [_did(self.rng) for _ in range(accounts)]
        self.others = [_did(self.rng) for _ in range(5_000)]
        self.posts = {d: [f"at://{d}/app.bsky.feed.post/{i:013d}" for i in range(40)] for d in self.tracked}
        self.weights = [m[0] for m in _MIX]
        self.start = datetime(2026, 7, 4, 14, 0, tzinfo=UTC)
        self.seq = 1_000_000

    def batch(self, first: int, size: int) -> list[Event]:
        return [self.event(i) for i in range(first, min(first + size, self.count))]

    def event(self, i: int) -> Event:
        rng = self.rng
        _, direction, kind, action = rng.choices(_MIX, self.weights)[0]
        subject = self.tracked[int(rng.paretovariate(1.2)) % len(self.tracked)]
        actor = subject if direction == Direction.BY else rng.choice(self.others)
        moment = self.start + timedelta(seconds=3600 * i / self.count)
        self.seq += rng.randint(1, 3)
        post = rng.choice(self.posts[subject])
        uri = f"at://{actor}/app.bsky.feed.{kind.value}/{self.seq:013d}"
        engaged = direction == Direction.TO and kind != Kind.MENTION
        return Event(
            seq=self.seq,
            idx=0,
            kind=kind,
            action=action,
            direction=direction,
            subject_did=subject,
            actor_did=actor,
            time=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            uri=post if kind == Kind.POST else uri,
            subject_uri=post if engaged else None,
            target_did=subject if direction == Direction.TO else None,
            text="Nouvelle campagne de vaccination" if kind in (Kind.POST, Kind.REPLY) else None,
            created_at=moment.isoformat(),
        )


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@dataclass
class StoreFigures:
    rate: float = 0.0
    rss: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def bench_store(path: Path, gen: Generator, batch: int, *, two_sources: bool = False) -> StoreFigures:
    """Apply generated batches (generation time excluded), metrics updated per batch."""
    registry = CollectorRegistry()
    applied = Counter("bluepulse_aggregator_events_applied_total", "", registry=registry)
    latency = Histogram("bluepulse_aggregator_batch_seconds", "", registry=registry)
    figures = StoreFigures()
    with Store.open(path) as store:
        if two_sources:  # untimed: the switch itself (keys of the event log, none here)
            actor, subject = gen.others[0], gen.tracked[0]
            other = Event(
                seq=1,
                idx=0,
                kind=Kind.FOLLOW,
                action=Action.CREATE,
                direction=Direction.TO,
                subject_did=subject,
                actor_did=actor,
                time="2026-07-04T13:59:59Z",
                uri=f"at://{actor}/app.bsky.graph.follow/1",
                source="jetstream2@bench",
            )
            store.apply({"bluepulse.events/0": PartitionBatch([other])})
        figures.rss.append(rss_mb())
        for n, offset in enumerate(range(0, gen.count, batch)):
            chunk = gen.batch(offset, batch)
            t0 = time.perf_counter()
            result = store.apply({"bluepulse.events/0": PartitionBatch(chunk, offset + batch)})
            applied.inc(result.applied)
            elapsed = time.perf_counter() - t0
            latency.observe(elapsed)
            figures.latencies.append(elapsed)
            if (n + 1) % max(1, gen.count // batch // 4) == 0:
                figures.rss.append(rss_mb())
    figures.rate = gen.count / sum(figures.latencies)
    return figures


def bench_executemany(path: Path, events: list[Event]) -> float:
    con = duckdb.connect(str(path))
    names = [c for c in EVENT_COLUMNS if c not in ("partition", "ingested_at")]
    con.execute(f"CREATE TABLE events ({', '.join(f'{c} VARCHAR' for c in names)})")
    rows = [tuple(str(getattr(e, c)) for c in names) for e in events]
    started = time.perf_counter()
    con.executemany(f"INSERT INTO events VALUES ({', '.join('?' * len(names))})", rows)
    elapsed = time.perf_counter() - started
    con.close()
    return len(events) / elapsed


def bench_snapshots(path: Path) -> tuple[float, int]:
    with Store.open(path) as store:
        con = store.cursor()
        t0 = time.perf_counter()
        snapshot_by_copy_database(con, path.with_name("snap-copy.duckdb"))
        t1 = time.perf_counter()
    return t1 - t0, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=65)
    parser.add_argument(
        "--batch", type=int, default=20_000, help="events per apply (CLI --batch-events default)"
    )
    parser.add_argument(
        "--large-batch", type=int, default=5_000, help="second run's batch, the old default (0: none)"
    )
    parser.add_argument("--baseline-events", type=int, default=3_000)
    parser.add_argument("--two-sources", action="store_true", help="every batch deduplicated by identity")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gen = Generator(args.events, args.accounts)
        store = bench_store(Path(tmp, "store.duckdb"), gen, args.batch, two_sources=args.two_sources)
        large = None
        if args.large_batch:
            again = Generator(args.events, args.accounts)
            large_path = Path(tmp, "large.duckdb")
            large = bench_store(large_path, again, args.large_batch, two_sources=args.two_sources)
        sample = Generator(args.baseline_events, args.accounts).batch(0, args.baseline_events)
        base = bench_executemany(Path(tmp, "base.duckdb"), sample)
        copy_s, size = bench_snapshots(Path(tmp, "store.duckdb"))
    lat = sorted(store.latencies)
    sources = " two-sources" if args.two_sources else ""
    print(f"events={args.events} accounts={args.accounts} batch={args.batch}{sources}")
    print(f"store.apply       : {store.rate:>10,.0f} events/s (Arrow + grouped upserts, metrics)")
    print(f"executemany insert: {base:>10,.0f} events/s ({args.baseline_events} rows, log only)")
    print(f"ratio             : {store.rate / base:>10.1f}x")
    if large is not None:
        print(f"store.apply, batch {args.large_batch:,}: {large.rate:,.0f} events/s (same events, new store)")
    print(
        f"batch latency ms  : p50 {lat[len(lat) // 2] * 1e3:.1f}, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.1f}, max {lat[-1] * 1e3:.1f}"
    )
    print("RSS MB at 0/25/50/75/100 %: " + " / ".join(f"{r:.0f}" for r in store.rss))
    print(f"snapshot ({size / 1e6:.0f} MB file): ATTACH+COPY FROM DATABASE {copy_s:.2f}s")
    print("targets:")
    runs = [(args.batch, store.rate)] + ([(args.large_batch, large.rate)] if large is not None else [])
    for size_, rate in runs:
        verdict = "PASS" if rate >= APPLY_TARGET else "MISS"
        print(
            f"  {verdict}  Store.apply {rate:,.0f} events/s (target ≥ {APPLY_TARGET:,}), "
            f"batches of {size_:,}; {rate / base:,.0f}x executemany"
        )


if __name__ == "__main__":
    main()
