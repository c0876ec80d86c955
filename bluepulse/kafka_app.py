"""Wiring of the Kafka transport from a Config: settings, topic, producer and consumer.

Both halves ensure the topic first (with retry while the broker is down), so whichever starts
first creates it with the configured partition count rather than a broker's auto-created one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aggregator.consume_kafka import KafkaSource
from bluepulse.commands import CommandError
from bluepulse.config import Config
from streamer.publish_kafka import KafkaPublisher
from transport.kafka import KafkaSettings, KafkaSettingsError, ensure_topic, with_retry

log = logging.getLogger(__name__)


def kafka_settings(config: Config) -> KafkaSettings:
    """The Kafka options of `config`; inconsistent ones are a usage error, listed at once."""
    if not config.kafka:
        raise CommandError(f"bluepulse {config.command} needs --kafka HOST:PORT")
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
            client_id=f"bluepulse-{config.command}",
        )
    except KafkaSettingsError as exc:
        raise CommandError(f"Kafka options:\n{exc}") from exc


async def prepare_topic(settings: KafkaSettings) -> int:
    """Create the topic if missing, waiting for the broker; return its partition count."""
    return await with_retry(lambda: ensure_topic(settings), f"topic {settings.topic}")


async def kafka_publisher(config: Config) -> KafkaPublisher:
    """A started publisher on an existing topic."""
    settings = kafka_settings(config)
    await prepare_topic(settings)
    publisher = KafkaPublisher(settings)
    await publisher.start()
    return publisher


async def kafka_source(config: Config, positions: Callable[[], Mapping[str, int | None]]) -> KafkaSource:
    """A started consumer of `config.group` that seeks to `positions()` on every assignment."""
    settings = kafka_settings(config)
    await prepare_topic(settings)
    source = KafkaSource(settings, config.group, positions, max_events=config.batch_events)
    await source.start()
    return source
