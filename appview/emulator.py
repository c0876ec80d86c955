"""Local AppView emulator on loopback: the XRPC read methods over a small HTTP/1.1 server.

Plain `asyncio.start_server` with keep-alive and a GET-only parser: no new dependency, and fast
enough that a bench measures the client. Every answer carries `ratelimit-*` headers from a
token bucket per client IP; an empty bucket answers 429 with `Retry-After`. Faults are
deterministic: a 5xx every `fail_every` requests, a truncated JSON body every
`malformed_every`, and `latency` seconds before each answer. `calls` records what was asked.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import orjson

from appview.scenario import Scenario, World, build_world
from appview.views import answer, error

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = 3000  # requests per window, like the public AppView
DEFAULT_RATE_WINDOW = 300.0  # seconds
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the emulator saw it (faulted ones included)."""

    nsid: str
    query: dict[str, list[str]]
    status: int
    at: float  # time.monotonic() when it was answered


@dataclass(slots=True)
class Bucket:
    """A token bucket: `capacity` tokens, refilled at capacity/window per second."""

    capacity: int
    window: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.capacity / self.window)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def headers(self) -> dict[str, str]:
        rate = self.capacity / self.window
        return {
            "ratelimit-limit": str(self.capacity),
            "ratelimit-remaining": str(int(self.tokens)),
            "ratelimit-reset": str(math.ceil(time.time() + (self.capacity - self.tokens) / rate)),
            "ratelimit-policy": f"{self.capacity};w={round(self.window)}",
        }

    def retry_after(self) -> int:
        return max(1, math.ceil((1 - self.tokens) * self.window / self.capacity))


class AppViewEmulator:
    """`async with AppViewEmulator(Scenario(), port=0) as av: av.url` (no `/xrpc` suffix)."""

    def __init__(
        self,
        scenario: Scenario | World | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window: float = DEFAULT_RATE_WINDOW,
        fail_every: int | None = None,
        malformed_every: int | None = None,
        latency: float = 0.0,
    ) -> None:
        self.world = scenario if isinstance(scenario, World) else build_world(scenario)
        self.host, self.port = host, port
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.fail_every, self.malformed_every, self.latency = fail_every, malformed_every, latency
        self.calls: list[Call] = []
        self.requests = self.throttled = self.failed = self.malformed = 0
        self.in_flight = self.peak_in_flight = 0  # requests being answered at once
        self._buckets: dict[str, Bucket] = {}
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> AppViewEmulator:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._handlers.values()):
            writer.close()  # the handler then reads EOF and ends (cancelling it trips Python 3.11)
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> AppViewEmulator:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def calls_to(self, nsid: str) -> list[Call]:
        return [c for c in self.calls if c.nsid == nsid]

    # HTTP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers[task] = writer
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else "?"
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" "), "", ""][:3]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)
                }
                if int(headers.get("content-length", "0") or 0):
                    await reader.readexactly(int(headers["content-length"]))
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    status, extra, body = await self._respond(client, method, target, headers)
                finally:
                    self.in_flight -= 1
                keep = headers.get("connection", "").lower() != "close"
                writer.write(_response(status, extra, body, keep))
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            self._handlers.pop(task, None)  # type: ignore[arg-type]
            writer.close()

    async def _respond(
        self, client: str, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, extra headers and body of one request (a subclass serves other paths)."""
        url = urlsplit(target)
        nsid = url.path.removeprefix("/xrpc/")
        query = parse_qs(url.query)
        if self.latency:
            await asyncio.sleep(self.latency)
        bucket = self._buckets.setdefault(client, Bucket(self.rate_limit, self.rate_window))
        self.requests += 1
        allowed = bucket.take()
        extra = bucket.headers()
        if not allowed:
            self.throttled += 1
            extra["retry-after"] = str(bucket.retry_after())
            status, payload = error(429, "RateLimitExceeded", "Rate Limit Exceeded")
        elif method != "GET" or not url.path.startswith("/xrpc/"):
            status, payload = error(404, "NotFound", f"{method} {url.path}")
        elif self.fail_every and self.requests % self.fail_every == 0:
            self.failed += 1
            status, payload = error(502, "UpstreamFailure", "injected failure")
        else:
            status, payload = answer(self.world, nsid, query)
        self.calls.append(Call(nsid, query, status, time.monotonic()))
        body = orjson.dumps(payload)
        if status == 200 and self.malformed_every and self.requests % self.malformed_every == 0:
            self.malformed += 1
            body = body[: len(body) // 2]  # a truncated answer, as a broken proxy sends
        return status, extra, body


def _response(status: int, extra: dict[str, str], body: bytes, keep: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "content-type: application/json; charset=utf-8",
        f"content-length: {len(body)}",
        f"connection: {'keep-alive' if keep else 'close'}",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
