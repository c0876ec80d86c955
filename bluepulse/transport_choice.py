"""The one place that chooses what joins the streamer app to the aggregator app.

`run` (and `demo`): the in-process bounded queue, QueuePublisher → QueueSource. `streamer` and
`aggregator`: a Kafka topic, KafkaPublisher → KafkaSource; or, for the streamer alone, a JSON
lines file (`--out`) to inspect. Both Kafka halves ensure the topic first (with retry while the
broker is down), so whichever starts first creates it with the configured partition count
rather than a broker's auto-created one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aggregator.consume import QueueSource
from aggregator.consume_kafka import KafkaSource
from bluepulse.config import AggregatorConfig, StreamerConfig, TransportSettings
from bluepulse.errors import CommandError
from streamer.errors import OutputError
from streamer.publish import JsonlPublisher, Publisher, QueuePublisher
from streamer.publish_kafka import KafkaPublisher
from transport.errors import KafkaSettingsError
from transport.kafka import KafkaSettings, ensure_topic, with_retry
from transport.memory import EventQueue


@dataclass(frozen=True)
class QueueLink:
    """Both ends of the in-process queue; `queue.fail` wakes a publisher waiting on a dead consumer."""

    queue: EventQueue
    publisher: QueuePublisher
    source: QueueSource


def queue_link(queue_size: int, batch_events: int) -> QueueLink:
    queue = EventQueue(queue_size)
    return QueueLink(queue, QueuePublisher(queue), QueueSource(queue, batch_events))


def check_streamer_output(config: StreamerConfig) -> None:
    """Before anything starts: the streamer alone must publish somewhere."""
    if not config.kafka and not config.out:
        raise CommandError("bluepulse streamer needs --out FILE.jsonl or --kafka HOST:PORT")


def check_aggregator_input(config: AggregatorConfig) -> None:
    if not config.kafka:
        raise CommandError("bluepulse aggregator needs --kafka HOST:PORT (bluepulse run needs no broker)")


async def streamer_publisher(config: StreamerConfig) -> Publisher:
    """A started Kafka publisher on an existing topic, or the JSON lines file of `--out`."""
    if config.kafka:
        settings = kafka_settings(config, config.command)
        await prepare_topic(settings)
        publisher = KafkaPublisher(settings)
        await publisher.start()
        return publisher
    assert config.out is not None, "check_streamer_output ran first"
    try:
        return JsonlPublisher(config.out)
    except OutputError as exc:  # at start it is the flag that is wrong
        raise CommandError(f"--out {config.out}: {exc}") from exc


async def aggregator_source(
    config: AggregatorConfig, positions: Callable[[], Mapping[str, int | None]], store_id: str
) -> KafkaSource:
    """A started consumer of `config.group` that seeks to `positions()` on every assignment;
    `store_id` names the store file in the offset commits (aggregator/handoff.py)."""
    settings = kafka_settings(config, config.command)
    await prepare_topic(settings)
    source = KafkaSource(settings, config.group, positions, max_events=config.batch_events, store_id=store_id)
    await source.start()
    return source


def kafka_settings(config: TransportSettings, command: str) -> KafkaSettings:
    """The Kafka options of `config`; inconsistent ones are a usage error, listed at once."""
    if not config.kafka:
        raise CommandError(f"bluepulse {command} needs --kafka HOST:PORT")
    try:
        return KafkaSettings(
            bootstrap=config.kafka,
            topic=config.topic,
            partitions=config.partitions,
            security_protocol=config.kafka_security,
            sasl_mechanism=config.kafka_sasl_mechanism,
            username=config.kafka_username,
            password=config.kafka_password,
            ca_file=config.kafka_ca_file,
            client_id=f"bluepulse-{command}",
        )
    except KafkaSettingsError as exc:
        raise CommandError(f"Kafka options:\n{exc}") from exc


async def prepare_topic(settings: KafkaSettings) -> int:
    """Create the topic if missing, waiting for the broker; return its partition count."""
    return await with_retry(lambda: ensure_topic(settings), f"topic {settings.topic}")
