"""Publish stage: hand one frame's events to a transport.

`flush()` returns only when everything published before the call is durable downstream
(queue: committed by the aggregator; JSONL: written, and fsynced when it is a regular file;
Kafka: acknowledged): the cursor is saved after it, never before. `mark(seq)` hands the
transport a position marker, so the aggregator commits how far the firehose was read even when
the last frames carried no tracked event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from schemas import RELAY, Event, encode
from streamer.errors import OutputError
from transport.memory import EventQueue, PositionMarker


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Blocks when the transport is full (back-pressure)."""

    async def mark(self, seq: int, source: str = RELAY) -> None:
        """Every frame of `source` up to `seq` is published: tell the consumer (called before
        `flush`); the aggregator commits it as that source's position."""

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class QueuePublisher:
    def __init__(self, queue: EventQueue) -> None:
        self._queue = queue

    async def publish(self, events: Sequence[Event]) -> None:
        await self._queue.put(events)

    async def mark(self, seq: int, source: str = RELAY) -> None:
        await self._queue.put(PositionMarker(seq, source))

    async def flush(self) -> None:
        await self._queue.wait_done(self._queue.put_count)

    async def close(self) -> None:
        await self.flush()


class JsonlPublisher:
    """One JSON event per line, for inspecting the stream (`bluepulse streamer --out`).

    `-` is standard output (a pipe, a terminal); a regular file is fsynced at each flush, a
    device (/dev/null) or a FIFO cannot be and only gets flushed. A write error is an
    OutputError (never an OSError, which the source would take for a relay failure).
    """

    def __init__(self, path: Path) -> None:
        self._name = "standard output" if str(path) == "-" else str(path)
        if str(path) == "-":
            self._file, self._owned = sys.stdout.buffer, False
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file, self._owned = open(path, "ab"), True  # noqa: SIM115 - lives as long as the publisher
            except OSError as exc:
                raise OutputError(f"cannot open output {path}: {exc.strerror or exc}") from exc
        self._failed = False
        self._fsync = stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)

    async def publish(self, events: Sequence[Event]) -> None:
        try:
            self._file.write(b"".join(encode(e) + b"\n" for e in events))
        except OSError as exc:
            raise self._error(exc) from exc

    async def mark(self, seq: int, source: str = RELAY) -> None:
        return None

    async def flush(self) -> None:
        try:
            self._file.flush()
            if self._fsync:
                await asyncio.to_thread(os.fsync, self._file.fileno())
        except OSError as exc:
            raise self._error(exc) from exc
        self._failed = False

    async def close(self) -> None:
        """Flush and close; quiet when a write already failed (that error was raised once)."""
        try:
            if not self._failed:
                await self.flush()
        finally:
            if self._owned:
                with contextlib.suppress(OSError):  # the buffer's last flush, already reported
                    self._file.close()

    def _error(self, exc: OSError) -> OutputError:
        self._failed = True
        return OutputError(f"cannot write events to {self._name}: {exc.strerror or exc}")


class CollectingPublisher:
    """Keeps events in memory: tests and benchmarks without a transport."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.marks: list[int] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def mark(self, seq: int, source: str = RELAY) -> None:
        self.marks.append(seq)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
