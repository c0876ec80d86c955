"""One Jetstream subscriber's send loop: drain the log from its start, filter, compress, inject faults.

Events are written in batches with one transport write (relay.wire.send_many): text frames, or
binary dict-zstd frames on a compressed connection. Fault counts are in events sent on this
connection, after filtering, so `drop_every=1800` means 1,800 events this client received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from websockets.asyncio.server import ServerConnection

from relay.jetstream_faults import (
    CONSUMER_TOO_SLOW,
    MALFORMED_JSON_KINDS,
    UNKNOWN_TYPE_KINDS,
    JetstreamFaults,
    malformed_json,
    unknown_type,
)
from relay.jetstream_log import EventLog
from relay.jetstream_wire import Filter
from relay.log import Signal
from relay.wire import send_many

_BATCH: Final = 256
_EVERYTHING: Final = Filter()
_INFO: Final = "network.bsky.jetstream.subscribeEvents#info"


@dataclass
class JetstreamConnection:
    """What the emulator saw of one request (for test assertions)."""

    id: int
    path: str
    params: dict[str, list[str]]
    subprotocol: str | None = None
    outcome: str | None = (
        None  # rejected:<Error> / dropped / error:ConsumerTooSlow / too_slow / client_closed
    )
    status: int = 101
    compressed: bool = False
    position: int = 0  # absolute log index of the next event to consider
    events_sent: int = 0
    injected: list[str] = field(default_factory=list)
    open: bool = False
    stalled: bool = False


@dataclass
class Shared:
    """The emulator state a session reads: log, current faults, compression, signals."""

    log: EventLog
    faults: Callable[[], JetstreamFaults]
    compress: Callable[[int | None, bytes], bytes]
    faults_changed: Signal
    progress: Signal


class Session:
    def __init__(
        self, ws: ServerConnection, conn: JetstreamConnection, filter_: Filter, shared: Shared
    ) -> None:
        self.ws, self.conn, self.filter, self.shared = ws, conn, filter_, shared
        self.v1 = filter_.v1
        self.last: bytes | None = None  # the last event sent, uncompressed (malformed frames copy it)

    async def run(self, info: str | None) -> None:
        conn, log = self.conn, self.shared.log
        if info is not None:
            payload = {"$type": _INFO, "message": info, "name": "OutdatedCursor"}
            await self._send_one(json.dumps({"$type": "message", "payload": payload}).encode())
            conn.injected.append("info:OutdatedCursor")
        while True:
            if conn.position < log.start:  # the floor passed this reader
                await self._terminal("too_slow")
                return
            budget = self.shared.faults().budget(conn.events_sent)
            if budget == 0:
                if await self._stop_fault():
                    return
                continue
            if conn.position >= log.end:
                await log.news.wait()
                continue
            messages = self._batch(_BATCH if budget is None else min(budget, _BATCH))
            if messages:
                if not await send_many(self.ws, messages, text=not conn.compressed):
                    return
                conn.events_sent += len(messages)
                await self._inject()
            self.shared.progress.fire()

    def _batch(self, limit: int) -> list[bytes]:
        """Up to `limit` wanted events from the connection's position (which moves past them)."""
        conn, log, filter_, v1 = self.conn, self.shared.log, self.filter, self.v1
        everything = filter_ == _EVERYTHING
        messages: list[bytes] = []
        hi = conn.position
        for event in log.slice(conn.position, min(log.end, conn.position + _BATCH)):
            hi += 1
            data = event.v1() if v1 else event.v2
            if data is None:
                continue
            if everything or filter_.wants(event.kind, event.did, event.collection, len(data)):
                messages.append(self.shared.compress(event.seq, data) if conn.compressed else data)
                self.last = data
                if len(messages) == limit:
                    break
        conn.position = hi
        return messages

    async def _send_one(self, frame: bytes, *, binary: bool = False) -> None:
        """One extra frame; `binary` for invalid UTF-8, which a text frame may not carry (RFC 6455)."""
        data = self.shared.compress(None, frame) if self.conn.compressed else frame
        await send_many(self.ws, [data], text=not (self.conn.compressed or binary))

    async def _inject(self) -> None:
        sent, faults, injected = self.conn.events_sent, self.shared.faults(), self.conn.injected
        if faults.malformed_every and sent % faults.malformed_every == 0:
            done = sum(1 for label in injected if label.startswith("malformed"))
            kind = MALFORMED_JSON_KINDS[done % len(MALFORMED_JSON_KINDS)]
            await self._send_one(malformed_json(kind, self.last, self.v1), binary=kind == "bad_utf8")
            injected.append(f"malformed:{kind}")
        if faults.unknown_type_every and sent % faults.unknown_type_every == 0:
            done = sum(1 for label in injected if label.startswith("unknown"))
            kind = UNKNOWN_TYPE_KINDS[done % len(UNKNOWN_TYPE_KINDS)]
            await self._send_one(unknown_type(kind, self._last_seq()))
            injected.append(f"unknown:{kind}")

    def _last_seq(self) -> int | None:
        if self.last is None:
            return None
        value = json.loads(self.last)
        seq = value.get("cursor") if self.v1 else value["payload"].get("seq")
        return seq if isinstance(seq, int) else None

    async def _stop_fault(self) -> bool:
        """Error frame or drop (True: connection over), or stall until the faults change (False)."""
        faults, sent = self.shared.faults(), self.conn.events_sent
        if faults.error_after is not None and sent >= faults.error_after:
            await self._terminal("error:ConsumerTooSlow")
            return True
        if faults.drop_every is not None and sent >= faults.drop_every:
            self.conn.outcome = "dropped"
            self.ws.transport.abort()  # no close frame: an abnormal closure
            return True
        self.conn.stalled = True
        await self.shared.faults_changed.wait()
        self.conn.stalled = False
        return False

    async def _terminal(self, outcome: str) -> None:
        """v2: the terminal ConsumerTooSlow error frame, then close; v1 had no error frame."""
        self.conn.outcome = outcome
        if not self.v1:
            await self._send_one(CONSUMER_TOO_SLOW)
            self.conn.injected.append("error:ConsumerTooSlow")
        await self.ws.close(1008, "ConsumerTooSlow")
