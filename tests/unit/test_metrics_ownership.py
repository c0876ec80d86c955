"""Several aggregators in one consumer group: each exports its file's share of the additive
families for every account, and the non-additive ones (followers, snapshot age, signals,
identity evidence) only for the accounts of the partitions it holds, so Prometheus `sum()`
across aggregators counts each series once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as _openmetrics_latest

from aggregator.consume_kafka import KafkaSource, key_partition
from aggregator.exposition import register_aggregator_metrics
from aggregator.stats import AggregatorStats
from bluepulse.process import MetricsRegistry
from tests.support.processes import parse_metrics
from tests.unit.test_exposition_text import store_with_accounts
from transport.kafka import KafkaSettings

openmetrics_latest: Final = cast(Callable[[MetricsRegistry], bytes], _openmetrics_latest)
A, B = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
FOLLOWERS = "bluepulse_account_followers"
OWNER_ONLY = (FOLLOWERS, "bluepulse_account_followers_snapshot_age_seconds", "bluepulse_account_active")
ADDITIVE = ("bluepulse_account_posts_total", "bluepulse_account_likes_net", "bluepulse_account_engagement_1h")


def scrape(tmp_path: Path, owns: Callable[[str], bool] | None, partitions: int | None) -> dict[str, float]:
    tmp_path.mkdir()
    with store_with_accounts(tmp_path / "store.duckdb") as store:
        registry = MetricsRegistry()
        collector = register_aggregator_metrics(
            registry,
            store,
            AggregatorStats(),
            owns=owns,
            owned_partitions=None if partitions is None else (lambda: partitions),
        )
        text, _ = registry.exposition(None)
        om, _ = registry.exposition(OPENMETRICS)
        assert text == generate_latest(registry)  # the text path stays byte-identical
        assert om == openmetrics_latest(registry)
        collector.close()
    return parse_metrics(text.decode())


def series_of(metrics: dict[str, float], family: str) -> set[str]:
    return {name for name in metrics if name.startswith(family + "{")}


def test_an_aggregator_exports_the_gauges_of_its_own_accounts_and_every_accounts_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.5)
    everything = scrape(tmp_path / "all", None, None)
    only_a = scrape(tmp_path / "a", lambda did: did == A, 1)
    only_b = scrape(tmp_path / "b", lambda did: did == B, 2)
    assert "bluepulse_aggregator_owned_partitions" not in everything  # embedded: no partitions
    assert (
        only_a["bluepulse_aggregator_owned_partitions"],
        only_b["bluepulse_aggregator_owned_partitions"],
    ) == (
        1,
        2,
    )
    for family in OWNER_ONLY:
        assert series_of(everything, family), family
        a, b = series_of(only_a, family), series_of(only_b, family)
        assert not a & b, family  # never exported twice
        assert a | b == series_of(everything, family), family
    assert series_of(only_a, FOLLOWERS) == {f'{FOLLOWERS}{{account="a.example.com",category="chu"}}'}
    for family in ADDITIVE:  # every account's share, from each aggregator
        assert series_of(only_a, family) == series_of(only_b, family) == series_of(everything, family)


def test_owned_partitions_follow_the_streamers_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for count in (1, 3, 4, 6, 7):
        for n in range(200):
            key = f"did:plc:{n:024d}".encode()
            assert key_partition(key, count) == partitioner(key, list(range(count)), [])


class Coordinator:
    async def fetch_committed_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Any]:
        return {}  # nobody committed


class Consumer:
    """What `KafkaSource` asks a consumer during a rebalance."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.sought: dict[TopicPartition, int] = {}
        self._coordinator = Coordinator()

    async def position(self, tp: TopicPartition) -> int:
        return 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    async def committed(self, tp: TopicPartition) -> Any:
        return None


async def test_the_source_owns_the_accounts_of_its_assigned_partitions() -> None:
    settings = KafkaSettings("localhost:9092", topic="t", partitions=6)
    source = KafkaSource(settings, "g", dict)
    source._consumer = Consumer(4)  # the topic's real count wins over --partitions
    dids = [f"did:plc:{n:024d}" for n in range(40)]
    assert not any(map(source.owns, dids))  # nothing before the first assignment
    await source._on_assigned({TopicPartition("t", 1), TopicPartition("t", 3)})
    assert source.owned_partitions() == 2
    assert [source.owns(d) for d in dids] == [key_partition(d.encode(), 4) in (1, 3) for d in dids]
    await source._on_revoked({TopicPartition("t", 1), TopicPartition("t", 3)})
    assert source.owned_partitions() == 0
    assert not any(map(source.owns, dids))
    await source._on_assigned({TopicPartition("t", p) for p in range(4)})
    assert all(map(source.owns, dids))
