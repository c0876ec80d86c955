"""Source stage: the websocket to a firehose, kept alive across failures.

Reconnects with jittered exponential backoff that resets after a healthy connection, resumes
from the caller's cursor, and closes a socket that stays silent past the receive timeout.
Frames go to a synchronous handler so the ones that cannot concern us cost no coroutine.
`WebsocketSource` is that loop; a source says only its URL, subprotocol, what to do before a
connection and with a refused handshake: RelaySource (subscribeRepos) here, JetstreamSource in
streamer/jetstream_source.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.typing import Subprotocol

from transport.backoff import Backoff

log = logging.getLogger(__name__)

SUBSCRIBE_PATH: Final = "/xrpc/com.atproto.sync.subscribeRepos"
FrameHandler = Callable[[bytes], Awaitable[None] | None]


def subscribe_url(base_url: str, cursor: int | None) -> str:
    url = base_url.rstrip("/")
    if not url.endswith(SUBSCRIBE_PATH):
        url += SUBSCRIBE_PATH
    return f"{url}?{urlencode({'cursor': cursor})}" if cursor is not None else url


class WebsocketSource:
    """The reconnect loop, backoff and silence watchdog every firehose source shares."""

    label = "relay"  # what log lines call the other end
    subprotocols: tuple[str, ...] | None = None

    def __init__(
        self,
        base_url: str,
        *,
        receive_timeout: float = 60.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        backoff: Backoff | None = None,
    ) -> None:
        self.base_url = base_url
        self.receive_timeout = receive_timeout
        self.max_message_bytes = max_message_bytes
        self.backoff = backoff or Backoff()
        self.reconnects = 0
        self.gaps = 0  # resumes that could not start at the position asked for
        self.events_lost = 0
        self.connections = 0
        self.connected = False
        self._received = 0
        self._unhealthy = False
        self._busy = False
        self._ws: ClientConnection | None = None

    def mark_unhealthy(self) -> None:
        """The handler saw an error frame: this connection must not reset the backoff."""
        self._unhealthy = True

    async def run(self, handler: FrameHandler, cursor: Callable[[], int | None]) -> None:
        """Receive forever (until cancelled), reconnecting from `cursor()` after any failure."""
        attempt = 0
        while True:
            before, opened, self._unhealthy = self._received, self.connections, False
            try:
                url = await self.prepare(cursor())
                await self._session(url, handler)
                reason = f"closed by {self.label}"
            except InvalidStatus as exc:
                reason = self.refused(exc)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            healthy = self._received > before and not self._unhealthy
            attempt = 0 if healthy else attempt + 1
            delay = self.backoff.delay(attempt)
            self.reconnects += 1
            what = (
                f"{self.label} connection lost" if self.connections > opened else f"{self.label} unreachable"
            )
            log.warning("%s reason=%r retry_in=%.2fs", what, reason, delay)
            await asyncio.sleep(delay)

    async def prepare(self, cursor: int | None) -> str:
        """The URL of the next connection (and anything it needs first)."""
        raise NotImplementedError

    def refused(self, exc: InvalidStatus) -> str:
        """The handshake was answered with an HTTP error: the reason logged before retrying."""
        return f"HTTP {exc.response.status_code}"

    async def _session(self, url: str, handler: FrameHandler) -> None:
        protocols = [Subprotocol(p) for p in self.subprotocols] if self.subprotocols else None
        async with connect(
            url,
            max_size=self.max_message_bytes,
            compression=None,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            subprotocols=protocols,
        ) as ws:
            self._ws, self.connected = ws, True
            self.connections += 1
            log.info("%s connected url=%s", self.label, url)
            watchdog = asyncio.create_task(self._watch_silence(ws))
            try:
                await self._receive(ws, handler)
            finally:
                self.connected = False
                watchdog.cancel()

    async def _receive(self, ws: ClientConnection, handler: FrameHandler) -> None:
        recv = ws.recv
        while True:
            try:
                message = await recv(False)  # text frames as their UTF-8 bytes, undecoded
            except ConnectionClosedOK:
                return
            self._received += 1
            pending = handler(message)
            if pending is not None:
                self._busy = True  # back-pressure is not silence
                try:
                    await pending
                finally:
                    self._busy = False

    async def _watch_silence(self, ws: ClientConnection) -> None:
        """Close a socket that delivered nothing for `receive_timeout` seconds."""
        seen = self._received
        while True:
            await asyncio.sleep(self.receive_timeout)
            if self._received == seen and not self._busy:
                log.warning("%s silent for %.0fs, reconnecting", self.label, self.receive_timeout)
                await ws.close(code=1000, reason="receive timeout")
                return
            seen = self._received


class RelaySource(WebsocketSource):
    """com.atproto.sync.subscribeRepos, resumed from the cursor (exclusive: seq > cursor)."""

    async def prepare(self, cursor: int | None) -> str:
        return subscribe_url(self.base_url, cursor)
