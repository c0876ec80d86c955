"""Async client of the AppView's read API: one request policy under every XRPC method.

Policy: bounded concurrency (a semaphore), the shared rate-limit pause (ratelimit.py), retries of
5xx, timeouts, connection errors and unreadable bodies with jittered capped backoff, then
AppViewUnavailable. 4xx envelopes are XrpcError; bad items are counted and skipped, so one
broken answer never loses the rest of a batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx
import orjson

from appview.errors import AppViewReason, AppViewSkip, AppViewUnavailable, XrpcError
from appview.models import (
    ActorCandidate,
    FeedPage,
    PostView,
    Profile,
    candidate_from_json,
    feed_item_from_json,
    post_from_json,
    profile_from_json,
)
from appview.ratelimit import RateGate
from transport.backoff import Backoff

log = logging.getLogger(__name__)

DEFAULT_APPVIEW = "https://public.api.bsky.app"
BATCH = 25  # getProfiles actors / getPosts uris per call (lexicon maxLength)
T = TypeVar("T")
Params = dict[str, str | list[str]]


@dataclass(slots=True)
class ClientStats:
    """What the client did, for progress lines and benches."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    transport_errors: int = 0  # timeouts and connection errors
    skipped: Counter[AppViewReason] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Resolution:
    """A handle's DID, or why it has none (`error` is the XRPC error name, e.g. HandleNotFound)."""

    handle: str
    did: str | None
    error: str | None = None


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class AppViewClient:
    """`async with AppViewClient(url) as av: await av.get_profiles([...])`."""

    def __init__(
        self,
        base_url: str = DEFAULT_APPVIEW,
        *,
        concurrency: int = 8,
        timeout: float = 15.0,
        max_attempts: int = 6,
        max_throttled: int = 30,
        backoff: Backoff | None = None,
        max_rate_wait: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/xrpc")
        self.stats = ClientStats()
        self.gate = RateGate(max_wait=max_rate_wait)
        self.max_attempts, self.max_throttled = max_attempts, max_throttled
        self.backoff = backoff or Backoff(initial=0.2, maximum=8.0)
        self._slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/xrpc/",
            timeout=timeout,
            limits=limits,
            transport=transport,
            headers={"user-agent": "bluepulse (+https://github.com/bluepulse)", "accept": "application/json"},
        )

    async def __aenter__(self) -> AppViewClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # the request policy

    async def xrpc(self, nsid: str, params: Params) -> dict[str, Any]:
        """One XRPC query's JSON object, after the whole retry policy."""
        attempts = throttled = 0
        last = ""
        while True:
            await self.gate.wait()
            async with self._slots:
                await self.gate.wait()
                self.stats.requests += 1
                try:
                    answer = await self._http.get(nsid, params=params)
                except httpx.TransportError as exc:
                    self.stats.transport_errors += 1
                    answer, last = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            if answer is not None:
                delay = self.backoff.delay(throttled)
                self.gate.observe(answer.status_code, answer.headers, fallback=delay)
                if answer.status_code == 429:
                    self.stats.rate_limited += 1
                    throttled += 1
                    if throttled >= self.max_throttled:
                        raise AppViewUnavailable(f"{self.base_url} kept answering 429 to {nsid}")
                    continue
                body, last = self._read(nsid, answer)
                if body is not None:
                    return body
            attempts += 1
            if attempts >= self.max_attempts:
                raise AppViewUnavailable(
                    f"AppView {self.base_url} unavailable: {nsid} failed {attempts} times (last: {last})"
                )
            self.stats.retries += 1
            await asyncio.sleep(self.backoff.delay(attempts - 1))

    def _read(self, nsid: str, answer: httpx.Response) -> tuple[dict[str, Any] | None, str]:
        """The answer's JSON object, or None and why it is worth asking again (5xx, unreadable)."""
        status = answer.status_code
        if status >= 500:
            self.stats.server_errors += 1
            return None, f"HTTP {status}"
        try:
            body = orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            self.stats.skipped[AppViewReason.NOT_JSON] += 1
            return None, f"HTTP {status} with a body that is not JSON"
        if not isinstance(body, dict):
            self.stats.skipped[AppViewReason.BAD_SHAPE] += 1
            return None, f"HTTP {status} with a JSON body that is not an object"
        if status >= 400:
            error, message = body.get("error"), body.get("message")
            raise XrpcError(status, str(error or f"HTTP{status}"), str(message or ""))
        if status != 200:
            return None, f"{nsid} answered HTTP {status}"
        return body, ""

    def _items(self, body: dict[str, Any], key: str, read: Callable[[object], T]) -> list[T]:
        """The readable items of `body[key]`; the others are counted and skipped."""
        raw = body.get(key)
        if not isinstance(raw, list):
            self.stats.skipped[AppViewReason.BAD_SHAPE] += 1
            log.warning("appview answer without a %s list: skipped", key)
            return []
        items: list[T] = []
        for obj in raw:
            try:
                items.append(read(obj))
            except AppViewSkip as skip:
                self.stats.skipped[skip.reason] += 1
                log.warning("appview item skipped reason=%s detail=%s", skip.reason, skip.detail)
        return items

    async def _batched(
        self, nsid: str, key: str, values: Iterable[str], out: str, read: Callable[[object], T]
    ) -> list[T]:
        unique = list(dict.fromkeys(values))

        async def one(batch: Sequence[str]) -> list[T]:
            try:
                return self._items(await self.xrpc(nsid, {key: list(batch)}), out, read)
            except XrpcError:  # one bad value refuses the batch: halve it to keep the others
                if len(batch) > 1:
                    half = len(batch) // 2
                    return [*await one(batch[:half]), *await one(batch[half:])]
                self.stats.skipped[AppViewReason.XRPC_ERROR] += 1
                log.warning("appview %s refused %s", nsid, batch[0])
                return []

        pages = await asyncio.gather(*(one(batch) for batch in chunks(unique, BATCH)))
        return [item for page in pages for item in page]

    # the methods

    async def resolve_handle(self, handle: str) -> Resolution:
        """A handle's DID; 400 HandleNotFound (or any 4xx) is a Resolution without a DID."""
        try:
            body = await self.xrpc("com.atproto.identity.resolveHandle", {"handle": handle})
        except XrpcError as error:
            return Resolution(handle, None, error.error)
        did = body.get("did")
        if not isinstance(did, str) or not did.startswith("did:"):
            self.stats.skipped[AppViewReason.BAD_SHAPE] += 1
            return Resolution(handle, None, "BadAnswer")
        return Resolution(handle, did)

    async def resolve_handles(self, handles: Iterable[str]) -> list[Resolution]:
        return list(await asyncio.gather(*(self.resolve_handle(h) for h in dict.fromkeys(handles))))

    async def get_profiles(self, actors: Iterable[str]) -> list[Profile]:
        """Profiles of DIDs or handles, 25 per call; unknown actors are absent from the answer."""
        return await self._batched(
            "app.bsky.actor.getProfiles", "actors", actors, "profiles", profile_from_json
        )

    async def get_posts(self, uris: Iterable[str]) -> list[PostView]:
        """Post views, 25 URIs per call; deleted or unknown posts are absent from the answer."""
        return await self._batched("app.bsky.feed.getPosts", "uris", uris, "posts", post_from_json)

    async def search_actors(self, q: str, *, limit: int = 25, max_results: int = 100) -> list[ActorCandidate]:
        """searchActors hits, paging with the cursor until `max_results` or the end."""
        found: list[ActorCandidate] = []
        cursor: str | None = None
        while len(found) < max_results:
            params: Params = {"q": q, "limit": str(max(1, min(100, limit)))}
            if cursor:
                params["cursor"] = cursor
            body = await self.xrpc("app.bsky.actor.searchActors", params)
            page = self._items(body, "actors", candidate_from_json)
            found.extend(page)
            cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else None
            if not page or not cursor:
                break
        return found[:max_results]

    async def author_feed(
        self,
        actor: str,
        *,
        limit: int = 100,
        filter: str = "posts_with_replies",  # the lexicon's parameter name
        include_pins: bool = True,
        cursor: str | None = None,
    ) -> AsyncIterator[FeedPage]:
        """getAuthorFeed pages, newest first, until the AppView gives no cursor (or the caller stops)."""
        while True:
            params: Params = {
                "actor": actor,
                "limit": str(max(1, min(100, limit))),
                "filter": filter,
                "includePins": "true" if include_pins else "false",
            }
            if cursor:
                params["cursor"] = cursor
            body = await self.xrpc("app.bsky.feed.getAuthorFeed", params)
            raw = body.get("feed")
            items = self._items(body, "feed", feed_item_from_json)
            skipped = len(raw) - len(items) if isinstance(raw, list) else 0
            nxt = body.get("cursor")
            cursor = nxt if isinstance(nxt, str) and nxt and nxt != cursor else None
            yield FeedPage(items, cursor, skipped)
            if cursor is None or not raw:
                return
