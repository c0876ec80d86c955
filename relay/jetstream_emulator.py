"""Local Jetstream: relay frames converted as production does, served on the v2 and v1 wires.

`/xrpc/network.bsky.jetstream.subscribeEvents` (v2, `xrpc.v1.json`, inclusive seq cursor,
CursorTooOld below a floor, dict-zstd), `/subscribe` (v1 events, time_us or seq cursor clamped
silently) and `getZstdDictionary` share one port and one event log; request rules are in
relay.jetstream_wire, faults in relay.jetstream_faults. Seqs start at 1; an event's witnessed
time is its relay frame's time (at least 1 µs after the previous event's), so a timestamp cursor
taken from a relay position lands on the same moment here. Each connection drains the log by
index from its start: replay joins live with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import zstandard
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from relay import jetstream_dictionary
from relay.audience import AudienceWaits
from relay.errors import Rejected
from relay.jetstream_convert import Pending, convert_frame
from relay.jetstream_faults import JetstreamFaults
from relay.jetstream_log import EventLog, JetstreamEvent
from relay.jetstream_session import JetstreamConnection, Session, Shared
from relay.jetstream_wire import (
    DICTIONARY_PATH,
    SUBPROTOCOL,
    V1_PATH,
    V2_PATH,
    Start,
    parse,
    plan_start,
)
from relay.log import Signal
from relay.server import pace

__all__ = ["JetstreamConnection", "JetstreamEmulator", "JetstreamEvent", "JetstreamFaults", "play"]

log = logging.getLogger(__name__)
_CACHE = 500_000  # compressed frames kept, at most


class JetstreamEmulator(AudienceWaits):
    """An in-process Jetstream on loopback; `async with JetstreamEmulator() as js: js.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        floor: int | None = None,
        dictionary: bool = True,
        faults: JetstreamFaults | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.faults = faults or JetstreamFaults()
        self.connections: list[JetstreamConnection] = []  # subscriptions (v2, v1), rejected ones too
        self.dictionary_fetches: list[JetstreamConnection] = []
        self._log = EventLog(floor)
        self._dictionary = jetstream_dictionary.load() if dictionary else None
        self._compressor: zstandard.ZstdCompressor | None = None
        self._compressed: dict[int, bytes] = {}  # seq → frame under the current dictionary
        self._pending: dict[ServerConnection, tuple[JetstreamConnection, Session, Start]] = {}
        self._live: dict[ServerConnection, JetstreamConnection] = {}
        self._faults_changed = Signal()
        self._progress = Signal()
        self._server: Server | None = None
        self._next_seq = 1
        self._last_time = 0

    # lifecycle

    async def start(self) -> JetstreamEmulator:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            select_subprotocol=_select_subprotocol,
            compression=None,  # v2 never negotiates permessage-deflate
            max_size=2**20,
            ping_interval=None,
            close_timeout=2,
            write_limit=2**20,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> JetstreamEmulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # publishing and state

    def publish_relay_frame(self, frame: bytes) -> list[int]:
        """Convert one relay frame as Jetstream does, store its events; their seqs."""
        return self.publish_converted(convert_frame(frame))

    def publish_converted(self, events: Sequence[Pending]) -> list[int]:
        """Store already converted events under the next seqs (benches preload this way); seqs below
        the floor are used up but not kept."""
        seqs = []
        for pending in events:
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            if self._log.floor is not None and seq < self._log.floor:
                continue  # born below the retention floor: never served
            time_us = max(pending.upstream_us or 0, self._last_time + 1)
            self._last_time = time_us
            self._log.append(JetstreamEvent(seq, time_us, pending, pending.v2(seq, time_us)))
            seqs.append(seq)
        return seqs

    @property
    def events(self) -> list[JetstreamEvent]:
        """The retained events, oldest first."""
        return self._log.slice(self._log.start, self._log.end)

    @property
    def last_seq(self) -> int | None:
        return self._next_seq - 1 if self._next_seq > 1 else None

    @property
    def floor(self) -> int | None:
        return self._log.floor

    def set_floor(self, seq: int | None) -> None:
        """Forget events below `seq`: older seq cursors get CursorTooOld (v2) or clamp (v1)."""
        self._log.set_floor(seq)
        self._log.news.fire()

    def set_faults(self, **changes: int | None) -> None:
        self.faults = replace(self.faults, **changes)
        self._faults_changed.fire()
        self._log.news.fire()

    @property
    def dictionary_id(self) -> int | None:
        return None if self._dictionary is None else jetstream_dictionary.dictionary_id(self._dictionary)

    def rotate_dictionary(self) -> int:
        """Retire the current dictionary ID (clients holding it get UnknownZstdDictionary)."""
        current = self.dictionary_id
        if self._dictionary is None or current is None:
            raise RuntimeError("this emulator serves no dictionary")
        self._dictionary = jetstream_dictionary.with_id(self._dictionary, current + 1)
        self._compressor, self._compressed = None, {}
        return current + 1

    def _compress(self, seq: int | None, data: bytes) -> bytes:
        """One zstd frame under the current dictionary (cached per event: shared by clients)."""
        if seq is not None and (hit := self._compressed.get(seq)) is not None:
            return hit
        if self._compressor is None:
            assert self._dictionary is not None
            dictionary = zstandard.ZstdCompressionDict(self._dictionary)
            self._compressor = zstandard.ZstdCompressor(level=3, dict_data=dictionary, write_dict_id=True)
        out = self._compressor.compress(data)
        if len(self._compressed) >= _CACHE:
            self._compressed.clear()
        if seq is not None:
            self._compressed[seq] = out
        return out

    # requests

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        params = parse_qs(url.query, keep_blank_values=True)
        conn = JetstreamConnection(len(self.connections), url.path, params)
        if url.path == DICTIONARY_PATH:
            conn.id = len(self.dictionary_fetches)
            self.dictionary_fetches.append(conn)
            return self._dictionary_response(conn)
        if url.path not in (V2_PATH, V1_PATH):
            return ws.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        v2 = url.path == V2_PATH
        self.connections.append(conn)
        self._progress.fire()
        try:
            subscription = parse("v2" if v2 else "v1", params, self.dictionary_id)
            start = plan_start(subscription, self._log)
        except Rejected as exc:
            conn.outcome, conn.status = f"rejected:{exc.error}", exc.status
            return _response(exc.status, exc.body(v2), "application/json" if v2 else "text/plain")
        conn.position, conn.compressed, conn.open = start.index, subscription.dictionary_id is not None, True
        shared = Shared(self._log, lambda: self.faults, self._compress, self._faults_changed, self._progress)
        self._pending[ws] = (conn, Session(ws, conn, subscription.filter, shared), start)
        return None

    def _dictionary_response(self, conn: JetstreamConnection) -> Response:
        wanted = conn.params.get("id", [""])[0]
        current = self.dictionary_id
        if wanted and not wanted.isdigit():
            conn.outcome, conn.status = "rejected:InvalidRequest", 400
            return _xrpc_error(400, "InvalidRequest", "id must be an integer zstd dictionary ID")
        if self._dictionary is None or (wanted and int(wanted) != current):
            conn.outcome, conn.status = "rejected:DictionaryNotFound", 404
            message = f"no dictionary with id {wanted or 0}; current dictionary id is {current}"
            return _xrpc_error(404, "DictionaryNotFound", message)
        conn.outcome, conn.status = "dictionary", 200
        return _response(200, self._dictionary, "application/octet-stream")

    async def _handler(self, ws: ServerConnection) -> None:
        conn, session, start = self._pending.pop(ws)
        conn.subprotocol = ws.subprotocol
        self._live[ws] = conn
        self._progress.fire()
        sender = asyncio.create_task(session.run(start.info))
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            await asyncio.wait({sender, closed}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not sender.cancelled():
                exc = sender.exception()
                if exc is not None and not isinstance(exc, ConnectionClosed):
                    log.error("jetstream emulator sender failed conn=%s", conn.id, exc_info=exc)
        finally:
            closed.cancel()
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await sender
            conn.open = False
            conn.outcome = conn.outcome or "client_closed"
            self._live.pop(ws, None)
            self._progress.fire()


def _select_subprotocol(ws: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Answer `xrpc.v1.json` when offered; unnegotiated connections get the same framing."""
    return Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")]
    )
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _xrpc_error(status: int, error: str, message: str) -> Response:
    return _response(status, json.dumps({"error": error, "message": message}).encode(), "application/json")


async def play(
    emulator: JetstreamEmulator,
    relay_frames: Sequence[bytes],
    rate: float | None = None,
    *,
    loop: bool = False,
    count: int | None = None,
    max_lag: int = 10_000,
    wait_for_client: bool = False,
) -> int:
    """Publish relay frames in order (converted once each), paced like relay.server.play.

    rate: relay frames per second; None = as fast as the slowest subscriber keeps within
    `max_lag` events. Returns the number of relay frames published.
    """
    converted = [convert_frame(frame) for frame in relay_frames]
    return await pace(
        emulator,
        len(converted),
        lambda i: emulator.publish_converted(converted[i]),
        rate=rate,
        loop=loop,
        count=count,
        max_lag=max_lag,
        wait_for_client=wait_for_client,
    )
