"""Rollup and retention keep every window and all-time total right, late events included."""

from __future__ import annotations

from pathlib import Path

from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"
P1 = f"at://{A}/app.bsky.feed.post/p1"
# Like times; the newest (the store's `now`) is 2026-07-04T12:00:00Z.
TIMES = [
    "2026-03-01T00:00:00Z",  # 125 days before now: all-time only (and past the 90-day log retention)
    "2026-05-10T00:00:00Z",  # 55 days: 90d
    "2026-06-20T00:00:00Z",  # 14.5 days: 30d
    "2026-06-30T00:00:00Z",  # 4.5 days: 7d
    "2026-07-03T00:00:00Z",  # 36 hours: 7d
    "2026-07-04T10:00:00Z",  # 2 hours: 24h
    "2026-07-04T11:30:00Z",  # 30 minutes: 1h
    "2026-07-04T12:00:00Z",  # now
]
EXPECTED = {"1h": 2, "24h": 3, "7d": 5, "30d": 6, "90d": 7}


def like(seq: int, time: str) -> Event:
    return Event(
        seq=seq,
        idx=0,
        kind=Kind.LIKE,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did=A,
        actor_did=X,
        time=time,
        subject_uri=P1,
        target_did=A,
    )


def windows(store: Store) -> dict[str, int]:
    found = store.query(f"SELECT \"window\", likes FROM account_window WHERE did = '{A}'")[1]
    return dict(found)


def count(store: Store, table: str) -> int:
    return int(store.query(f"SELECT count(*) FROM {table}")[1][0][0])


def test_windows_are_exact_before_and_after_rollup(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb", retention_days=90) as store:
        store.apply({"queue": PartitionBatch([like(i, t) for i, t in enumerate(TIMES, 1)])})
        assert windows(store) == EXPECTED
        result = store.maintain()
        assert (result.minutes_rolled, result.events_pruned) == (5, 1)
        assert windows(store) == EXPECTED
        assert store.query(f"SELECT likes FROM account_totals WHERE did = '{A}'")[1] == [(8,)]
        assert store.query(f"SELECT likes FROM top_posts WHERE uri = '{P1}'")[1] == [(8,)]
        assert store.query(f"SELECT likes FROM hot_posts WHERE uri = '{P1}'")[1] == [(2,)]
        levels = [count(store, f"account_{level}") for level in ("minutes", "hours", "days")]
        assert levels == [3, 2, 3]
        assert count(store, "events") == 7


def test_a_late_event_in_a_rolled_up_range_is_still_counted(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.apply({"queue": PartitionBatch([like(i, t) for i, t in enumerate(TIMES, 1)])})
        store.maintain()
        store.apply({"queue": PartitionBatch([like(20, "2026-06-30T00:00:00Z")])})
        expected = EXPECTED | {"7d": 6, "30d": 7, "90d": 8}
        assert windows(store) == expected
        store.maintain()
        assert windows(store) == expected
        assert store.query(f"SELECT likes FROM account_totals WHERE did = '{A}'")[1] == [(9,)]


def test_windows_follow_the_newest_event_time(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.apply({"queue": PartitionBatch([like(i, t) for i, t in enumerate(TIMES, 1)])})
        store.apply({"queue": PartitionBatch([like(30, "2026-07-05T11:00:00Z")])})
        assert windows(store) == {"1h": 1, "24h": 3, "7d": 6, "30d": 7, "90d": 8}
        assert str(store.clock()) == "2026-07-05 11:00:00"


def test_an_empty_store_answers_windows_with_zeros(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.set_followers({A: None})
        assert windows(store) == dict.fromkeys(EXPECTED, 0)
        assert store.maintain().minutes_rolled == 0


def test_metrics_engagement_1h_is_the_1h_window_before_and_after_rollup(tmp_path: Path) -> None:
    """/metrics reads the last hour straight from the buckets: it must stay the view's '1h'."""
    from aggregator.exposition import register_aggregator_metrics
    from aggregator.stats import AggregatorStats
    from bluepulse.process import MetricsRegistry
    from schemas.accounts import Account

    def engagement(store: Store) -> str:
        registry = MetricsRegistry()
        collector = register_aggregator_metrics(registry, store, AggregatorStats())
        text = registry.exposition(None)[0].decode()
        collector.close()
        return next(line for line in text.splitlines() if line.startswith("bluepulse_account_engagement_1h{"))

    with Store.open(tmp_path / "s.duckdb", retention_days=90) as store:
        store.upsert_accounts([Account(A, "a.example.com", "A", "chu", "IDF")])
        store.apply({"queue": PartitionBatch([like(i, t) for i, t in enumerate(TIMES, 1)])})
        assert engagement(store).endswith(f"}} {float(EXPECTED['1h'])}")
        store.maintain()
        assert windows(store)["1h"] == EXPECTED["1h"]
        assert engagement(store).endswith(f"}} {float(EXPECTED['1h'])}")
