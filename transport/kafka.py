"""Kafka transport settings shared by the streamer's producer and the aggregator's consumer.

One place turns the security options into aiokafka keyword arguments (the password never
reaches a repr or a log line), creates the topic with its partition count, and retries a dead
broker at start with capped, jittered backoff instead of crashing into a restart loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

from transport.backoff import Backoff
from transport.errors import KafkaSettingsError

log = logging.getLogger(__name__)

T = TypeVar("T")

SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
TOPIC_READY_TIMEOUT_S: Final = 30.0
_NO_ERROR: Final = 0


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the topic lives and how to reach it; `password` stays out of repr and logs."""

    bootstrap: str
    topic: str = "bluepulse.events"
    partitions: int = 6
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    client_id: str = "bluepulse"

    def __post_init__(self) -> None:
        problems = settings_problems(self)
        if problems:
            raise KafkaSettingsError("\n".join(problems))

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client (producer, consumer, admin) accepts."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = create_ssl_context(cafile=self.ca_file)
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs

    def describe(self) -> str:
        """key=value summary for log lines: never the password."""
        parts = [f"bootstrap={self.bootstrap}", f"topic={self.topic}", f"security={self.security_protocol}"]
        if self.uses_sasl:
            parts += [f"sasl={self.sasl_mechanism}", f"user={self.username}"]
        if self.ca_file is not None:
            parts.append(f"ca_file={self.ca_file}")
        return " ".join(parts)


def settings_problems(settings: KafkaSettings) -> list[str]:
    """All inconsistencies at once, so an operator fixes them in one go."""
    problems = []
    if not settings.bootstrap.strip():
        problems.append("Kafka bootstrap address is empty")
    if not settings.topic.strip():
        problems.append("Kafka topic is empty")
    if settings.partitions < 1:
        problems.append(f"partitions must be positive, got {settings.partitions}")
    if settings.security_protocol not in SECURITY_PROTOCOLS:
        problems.append(f"security protocol must be one of {', '.join(SECURITY_PROTOCOLS)}")
    if settings.sasl_mechanism not in SASL_MECHANISMS:
        problems.append(f"SASL mechanism must be one of {', '.join(SASL_MECHANISMS)}")
    if settings.uses_sasl and not (settings.username and settings.password):
        problems.append(f"{settings.security_protocol} needs a username and a password")
    if settings.ca_file is not None and not settings.uses_tls:
        problems.append("a CA file needs security protocol SSL or SASL_SSL")
    if settings.ca_file is not None and not settings.ca_file.is_file():
        problems.append(f"CA file {settings.ca_file} does not exist")
    return problems


# A position marker: no key, this header, the firehose seq as ASCII digits. The streamer sends
# one to every partition at each checkpoint; the aggregator commits it as a position only.
TYPE_HEADER: Final = "bluepulse-type"
POSITION_TYPE: Final = b"position"
SOURCE_HEADER: Final = "bluepulse-source"  # a position marker's source; absent: the relay


def partition_name(topic: str, partition: int) -> str:
    """The partition key the store keeps positions under."""
    return f"{topic}/{partition}"


def split_partition_name(name: str) -> tuple[str, int]:
    topic, _, number = name.rpartition("/")
    return topic, int(number)


class LogEvery:
    """Lets a log line through once per `interval` seconds per key, counting the rest.

    Kept here (not in bluepulse.logs) because transport must not import the CLI package, and a
    dead broker or a poisoned topic must not flood the log whatever handler is installed.
    """

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def ready(self, key: str) -> int | None:
        """None when the line should be held back; else how many were held since the last one."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


def is_transient(exc: BaseException) -> bool:
    """Errors a broker that is down, starting or electing leaders produces."""
    if isinstance(exc, KafkaTimeoutError):  # aiokafka marks it non-retriable; here it is a wait
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return isinstance(exc, OSError | TimeoutError)


async def with_retry(
    coro_factory: Callable[[], Awaitable[T]],
    what: str,
    *,
    backoff: Backoff | None = None,
    attempts: int | None = None,
    log_interval: float = 30.0,
) -> T:
    """Await a fresh `coro_factory()` until it succeeds; transient errors sleep and retry.

    Broker down at start is a wait, not a crash: the process stays up, logs one clear line per
    attempt (rate-limited) and is cancellable. Non-transient errors (bad credentials,
    authorization) and the last of `attempts` propagate.
    """
    policy = backoff or Backoff()
    limiter = LogEvery(log_interval)
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await coro_factory()
        except Exception as exc:
            if not is_transient(exc) or (attempts is not None and attempt >= attempts):
                raise
            delay = policy.delay(attempt - 1)
            _log_attempt(limiter, what, attempt, exc, delay)
            await asyncio.sleep(delay)
            continue
        if attempt > 1:
            log.info("kafka reachable what=%s attempts=%d", what, attempt)
        return result


def _log_attempt(limiter: LogEvery, what: str, attempt: int, exc: BaseException, delay: float) -> None:
    held = limiter.ready(what)
    if held is None:
        log.debug("kafka not reachable what=%s attempt=%d error=%r", what, attempt, exc)
        return
    log.warning(
        "kafka not reachable, retrying what=%s attempt=%d retry_in=%.1fs error=%s: %s",
        what,
        attempt,
        delay,
        type(exc).__name__,
        exc,
    )


async def ensure_topic(settings: KafkaSettings) -> int:
    """Create the topic with `settings.partitions` if missing; return its partition count.

    An existing topic is left as it is (changing the partition count moves keys to other
    partitions and breaks per-account order), with a warning if its count differs.
    """
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        await _create_if_missing(admin, settings)
        count = await _wait_led(admin, settings.topic)
    finally:
        await admin.close()
    if count != settings.partitions:
        log.warning(
            "kafka topic exists with another partition count, left as it is topic=%s partitions=%d want=%d",
            settings.topic,
            count,
            settings.partitions,
        )
    return count


async def _create_if_missing(admin: AIOKafkaAdminClient, settings: KafkaSettings) -> None:
    response = await admin.create_topics([NewTopic(settings.topic, settings.partitions, 1)])
    for _topic, code, *rest in response.topic_errors:
        if code == TopicAlreadyExistsError.errno:
            return
        if code != _NO_ERROR:
            detail = rest[0] if rest else ""
            raise for_code(code)(f"creating topic {settings.topic} failed: {detail}")
    log.info("kafka topic created topic=%s partitions=%d", settings.topic, settings.partitions)


async def _wait_led(admin: AIOKafkaAdminClient, topic: str) -> int:
    """Wait until every partition has a leader: a producer started earlier would stall."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOPIC_READY_TIMEOUT_S
    while True:
        [meta] = await admin.describe_topics([topic])
        parts = meta["partitions"]
        if meta["error_code"] == _NO_ERROR and parts and all(_led(p) for p in parts):
            return len(parts)
        if loop.time() > deadline:
            raise TimeoutError(f"kafka topic {topic} has partitions without a leader")
        await asyncio.sleep(0.1)


def _led(partition: dict[str, Any]) -> bool:
    return bool(partition["error_code"] == _NO_ERROR and partition["leader"] >= 0)
