"""Local relay emulator: `com.atproto.sync.subscribeRepos` with a real relay's cursor rules.

A connection without a cursor starts at the live tip (a replay from the start
would hide cursor bugs); `cursor=N` replays every retained seq > N and goes on
live with no gap and no duplicate, because each connection drains the shared
log by index. Faults (drop, stall, malformed frames) are per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from relay.audience import AudienceWaits
from relay.capture import frame_seq
from relay.car import error_frame
from relay.faults import MALFORMED_KINDS, Faults, malformed_frame
from relay.log import FrameLog, Signal
from relay.subscription import ConnectionInfo, Plan, plan_start
from relay.wire import send_many

log = logging.getLogger(__name__)

PATH = "/xrpc/com.atproto.sync.subscribeRepos"
DEFAULT_RETENTION = 100_000
_BATCH = 256  # frames per transport write (about 1.4 MB of real frames)


class RelayEmulator(AudienceWaits):
    """An in-process relay on loopback; `async with RelayEmulator() as relay: relay.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retention: int = DEFAULT_RETENTION,
        drop_every: int | None = None,
        stall_after: int | None = None,
        malformed_every: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.faults = Faults(drop_every, stall_after, malformed_every)
        self.connections: list[ConnectionInfo] = []
        self._log = FrameLog(retention)
        self._plans: dict[ServerConnection, tuple[ConnectionInfo, Plan]] = {}
        self._live: dict[ServerConnection, ConnectionInfo] = {}
        self._faults_changed = Signal()
        self._progress = Signal()  # a batch was sent, or a connection came or went
        self._server: Server | None = None

    # lifecycle

    async def start(self) -> RelayEmulator:
        """Listen; `port=0` picks a free port, then `url` tells which."""
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,  # relays do not deflate the firehose; deflate would dominate
            max_size=None,
            ping_interval=None,  # the client pings if it wants; a stall must stay data-silent
            close_timeout=2,
            write_limit=2**20,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Close every connection (1001) and stop listening."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> RelayEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Base URL, e.g. ws://127.0.0.1:PORT (append PATH or let the client do it)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def subscribe_url(self) -> str:
        """Full subscribeRepos URL without a cursor."""
        return self.url + PATH

    # publishing and state

    def publish(self, frame: bytes, seq: int | None = None) -> int:
        """Log a frame under its seq (decoded when not given) and wake subscribers."""
        if seq is None:
            seq = frame_seq(frame)
            if seq is None:
                raise ValueError("frame has no body seq; use publish_raw")
        self._log.append(frame, seq)
        return seq

    def publish_raw(self, data: bytes) -> None:
        """Log bytes without a seq (e.g. a malformed frame).

        They sit between the seqs around them, so live subscribers get them in
        order and a later replay across that point sends them again.
        """
        self._log.append(data, None)

    def set_faults(self, **changes: int | None) -> None:
        """Change faults at runtime (drop_every=…, stall_after=…, malformed_every=…)."""
        self.faults = replace(self.faults, **changes)
        self._faults_changed.fire()
        self._log.news.fire()

    @property
    def last_seq(self) -> int | None:
        """Newest published seq."""
        return self._log.last_seq

    @property
    def oldest_seq(self) -> int | None:
        """Oldest retained seq."""
        return self._log.oldest_seq()

    # connection handling

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """Fix where a subscriber starts before the handshake answer leaves."""
        url = urlsplit(request.path)
        if url.path != PATH:
            return ws.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        values = parse_qs(url.query).get("cursor")
        cursor = None
        if values:
            try:
                cursor = int(values[-1])
            except ValueError:
                cursor = -1
            if cursor < 0:
                return ws.respond(HTTPStatus.BAD_REQUEST, "cursor must be a non-negative integer\n")
        conn = ConnectionInfo(id=len(self.connections), cursor=cursor)
        self.connections.append(conn)
        self._plans[ws] = (conn, plan_start(self._log, conn))
        self._progress.fire()
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn, plan = self._plans.pop(ws)
        self._live[ws] = conn
        self._progress.fire()
        sender: asyncio.Task[None] | None = None
        try:
            for frame, label in plan.preamble:
                await ws.send(frame)
                conn.injected.append(label)
            if plan.close:
                await ws.close()
                return
            sender = asyncio.create_task(self._send_loop(ws, conn))
            closed = asyncio.ensure_future(ws.wait_closed())
            await asyncio.wait({sender, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if sender.done() and not sender.cancelled() and sender.exception() is not None:
                exc = sender.exception()
                if not isinstance(exc, ConnectionClosed):
                    log.error("relay emulator sender failed conn=%s", conn.id, exc_info=exc)
        except ConnectionClosed:
            pass
        finally:
            if sender is not None and not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await sender
            conn.open = False
            conn.outcome = conn.outcome or "client_closed"
            self._live.pop(ws, None)
            self._progress.fire()

    async def _send_loop(self, ws: ServerConnection, conn: ConnectionInfo) -> None:
        """Drain the log from `conn.position`, applying the fault schedule."""
        log_ = self._log
        while True:
            if conn.position < log_.start:
                await self._refuse(ws, conn, "ConsumerTooSlow", "too_slow")
                return
            budget = self.faults.budget(conn.frames_sent)
            if budget == 0:
                if await self._apply_stop_fault(ws, conn):
                    return
                continue
            end = log_.end
            if conn.position >= end:
                await log_.news.wait()
                continue
            hi = min(end, conn.position + (_BATCH if budget is None else min(budget, _BATCH)))
            batch = log_.slice(conn.position, hi)
            conn.last_seq = log_.seq_before(hi)
            if not await send_many(ws, batch):
                return
            conn.frames_sent += len(batch)
            conn.position = hi
            self._progress.fire()
            every = self.faults.malformed_every
            if every is not None and conn.frames_sent % every == 0:
                await self._inject_malformed(ws, conn, batch[-1])

    async def _apply_stop_fault(self, ws: ServerConnection, conn: ConnectionInfo) -> bool:
        """Drop (True: connection over) or stall until the faults change (False)."""
        drop = self.faults.drop_every
        if drop is not None and conn.frames_sent >= drop:
            conn.outcome = "dropped"
            ws.transport.abort()  # no close frame: the client sees an abnormal closure
            return True
        # Silent for data but still answering pings: only a receive timeout notices,
        # which is what a consumer must have (websocket keepalive alone would not).
        conn.stalled = True
        await self._faults_changed.wait()
        conn.stalled = False
        return False

    async def _inject_malformed(self, ws: ServerConnection, conn: ConnectionInfo, last: bytes) -> None:
        kind = MALFORMED_KINDS[conn.malformed_sent % len(MALFORMED_KINDS)]
        await ws.send(malformed_frame(kind, last, conn.last_seq))
        conn.malformed_sent += 1
        conn.injected.append(f"malformed:{kind}")

    async def _refuse(self, ws: ServerConnection, conn: ConnectionInfo, error: str, outcome: str) -> None:
        conn.outcome = outcome
        await ws.send(error_frame(error))
        conn.injected.append(f"error:{error}")
        await ws.close()
