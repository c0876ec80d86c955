"""Publish stage: hand one frame's events to a transport.

`flush()` returns only when everything published before the call is durable downstream
(queue: committed by the aggregator; JSONL: fsynced; Kafka: acknowledged): the cursor is
saved after it, never before.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from schemas import Event, encode
from transport.memory import EventQueue


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Blocks when the transport is full (back-pressure)."""

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class QueuePublisher:
    def __init__(self, queue: EventQueue) -> None:
        self._queue = queue

    async def publish(self, events: Sequence[Event]) -> None:
        await self._queue.put(events)

    async def flush(self) -> None:
        await self._queue.wait_done(self._queue.put_count)

    async def close(self) -> None:
        await self.flush()


class JsonlPublisher:
    """One JSON event per line, for inspecting the stream (`bluepulse streamer --out`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the publisher

    async def publish(self, events: Sequence[Event]) -> None:
        self._file.write(b"".join(encode(e) + b"\n" for e in events))

    async def flush(self) -> None:
        self._file.flush()
        await asyncio.to_thread(os.fsync, self._file.fileno())

    async def close(self) -> None:
        await self.flush()
        self._file.close()


class CollectingPublisher:
    """Keeps events in memory: tests and benchmarks without a transport."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
