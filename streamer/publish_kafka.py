"""Publish stage, Kafka flavour: one message per event, keyed by the tracked account's DID.

The key keeps one account's events on one partition, in order. `acks="all"` and idempotence
make a broker restart neither lose nor duplicate a message; a bounded window of unacknowledged
sends makes a slow or dead broker block `publish()` (back-pressure) instead of growing memory.
`flush()` returns only once every earlier event is acknowledged, so the cursor saved after it
never runs ahead of Kafka; a send that failed for good raises from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from schemas import RELAY, SCHEMA_HEADER, SCHEMA_VERSION, Event, encode
from streamer.errors import KafkaPublishError
from transport.kafka import POSITION_TYPE, SOURCE_HEADER, TYPE_HEADER, KafkaSettings, LogEvery, with_retry

log = logging.getLogger(__name__)

LINGER_MS: Final = 20
MAX_BATCH_BYTES: Final = 256 * 1024
MAX_IN_FLIGHT: Final = 10_000

ProducerFactory = Callable[..., Any]


class KafkaPublisher:
    """The streamer's `Publisher` over an idempotent `acks="all"` aiokafka producer."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        linger_ms: int = LINGER_MS,
        producer_factory: ProducerFactory = AIOKafkaProducer,
    ) -> None:
        self._settings = settings
        self._max_in_flight = max_in_flight
        self._linger_ms = linger_ms
        self._factory = producer_factory
        self._producer: Any = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._failure: BaseException | None = None
        self._headers = [(SCHEMA_HEADER, str(SCHEMA_VERSION).encode())]
        self._limiter = LogEvery()
        self.sent = 0
        self.acked = 0

    @property
    def in_flight(self) -> int:
        """Sends not yet acknowledged (bounded by `max_in_flight`)."""
        return len(self._pending)

    async def start(self) -> None:
        """Connect, waiting out a broker that is down (see `with_retry`)."""
        self._producer = await with_retry(self._start_producer, f"producer {self._settings.bootstrap}")
        log.info("kafka producer started %s", self._settings.describe())

    async def _start_producer(self) -> Any:
        """A fresh client per attempt: a failed start leaves the old one unusable."""
        producer = self._factory(
            **self._settings.client_kwargs(),
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_batch_size=MAX_BATCH_BYTES,
            compression_type=None,  # the aggregator may lack any codec library
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def publish(self, events: Sequence[Event]) -> None:
        """Hand one frame's events to the producer; blocks while the window is full."""
        self._raise_if_failed()
        if self._producer is None:
            raise RuntimeError("KafkaPublisher.start() was not awaited")
        for event in events:
            await self._make_room()
            self._pending.append(await self._send(event))
            self.sent += 1

    async def mark(self, seq: int, source: str = RELAY) -> None:
        """A position marker on every partition, behind the events sent before it (same order);
        a source other than the relay is named in a header (older aggregators read relay ones)."""
        self._raise_if_failed()
        headers = [(TYPE_HEADER, POSITION_TYPE)]
        if source != RELAY:
            headers.append((SOURCE_HEADER, source.encode()))
        partitions = await self._producer.partitions_for(self._settings.topic)
        for partition in sorted(partitions):
            await self._make_room()
            self._pending.append(
                await self._producer.send(
                    self._settings.topic,
                    value=str(seq).encode(),
                    partition=partition,
                    headers=headers,
                )
            )

    async def flush(self) -> None:
        """Return once every event published before the call is acknowledged by the broker."""
        if self._pending:
            await asyncio.wait(list(self._pending))  # wait() never cancels what it waits on
        self._settle()
        self._raise_if_failed()

    async def close(self) -> None:
        """Flush, then stop the producer even when the flush failed."""
        if self._producer is None:
            return
        try:
            await self.flush()
        finally:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _send(self, event: Event) -> asyncio.Future[Any]:
        """Enqueue one message; a full producer buffer (broker down) means wait and retry."""
        topic, key, value = self._settings.topic, event.subject_did.encode(), encode(event)
        while True:
            try:
                future: asyncio.Future[Any] = await self._producer.send(
                    topic, value=value, key=key, headers=self._headers
                )
            except KafkaTimeoutError:  # nothing was enqueued: retrying cannot duplicate
                self._log_stalled()
                continue
            return future

    async def _make_room(self) -> None:
        """Bounded memory: wait for the oldest sends before starting another."""
        self._settle()
        while len(self._pending) >= self._max_in_flight:
            await asyncio.wait([self._pending[0]])
            self._settle()
        self._raise_if_failed()

    def _settle(self) -> None:
        """Drop acknowledged sends from the front; remember the first failure."""
        pending = self._pending
        while pending and pending[0].done():
            future = pending.popleft()
            error = KafkaPublishError("send cancelled") if future.cancelled() else future.exception()
            if error is None:
                self.acked += 1
            elif self._failure is None:
                self._failure = error
                log.error(
                    "kafka send failed topic=%s error=%s: %s",
                    self._settings.topic,
                    type(error).__name__,
                    error,
                )

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise KafkaPublishError(f"a Kafka send failed: {self._failure!r}") from self._failure

    def _log_stalled(self) -> None:
        held = self._limiter.ready("stalled")
        if held is not None:
            log.warning(
                "kafka producer buffer full, publishing paused (broker slow or down) topic=%s in_flight=%d",
                self._settings.topic,
                len(self._pending),
            )
