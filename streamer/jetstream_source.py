"""Source stage for Jetstream: v2 `subscribeEvents` (or v1 `/subscribe`) kept alive across failures.

The reconnect loop, backoff and watchdog are streamer/source.py's WebsocketSource; this says
what a Jetstream connection asks for. Never `dids`: it filters by repo author, and the likes,
reposts, replies, quotes and follows given *to* a tracked account come from untracked repos.
v2 answers some requests before the upgrade with HTTP 400: CursorTooOld (our position is below
the retention floor: the gap is logged, counted and we resume at the floor — never a crash loop,
never a silent jump to live) and UnknownZstdDictionary (the dictionary was retired: fetch the
current one). Dict-zstd frames are inflated by the Streamer's wire (the shared Inflater).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.request
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.exceptions import InvalidStatus

from streamer.cursor import is_v1
from streamer.jetstream_decode import Inflater
from streamer.records import FOLLOW, LIKE, POST, REPOST
from streamer.source import WebsocketSource
from transport.backoff import Backoff

log = logging.getLogger(__name__)

V2_PATH: Final = "/xrpc/network.bsky.jetstream.subscribeEvents"
DICTIONARY_PATH: Final = "/xrpc/network.bsky.jetstream.getZstdDictionary"
SUBPROTOCOL: Final = "xrpc.v1.json"
KINDS: Final = ("commit", "identity", "account")
COLLECTIONS: Final = (POST, LIKE, REPOST, FOLLOW, "app.bsky.actor.profile")
TIME_CURSOR: Final = 10**15  # v2 reads a cursor at or above this as unix µs
_MAX_DICTIONARY: Final = 16 << 20
_SCHEMES: Final = {"http": "ws", "https": "wss"}
_FLOOR: Final = re.compile(r"floor\D{0,20}(\d+)")


def stream_url(url: str) -> str:
    """ws(s)://host[:port] → the v2 endpoint; a URL ending in /subscribe (v1) is kept."""
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/")
    if not path.endswith(("/subscribe", V2_PATH)):
        path += V2_PATH
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def query(cursor: int | None, *, v1: bool, dictionary_id: int | None) -> str:
    params: list[tuple[str, object]] = []
    if v1:
        params += [("wantedCollections", c) for c in COLLECTIONS]
    else:
        params += [("kinds", k) for k in KINDS] + [("collections", c) for c in COLLECTIONS]
        if dictionary_id is not None:
            params.append(("zstdDictionary", dictionary_id))
    if cursor is not None:
        params.append(("cursor", cursor))
    return urlencode(params)


class JetstreamSource(WebsocketSource):
    label = "jetstream"

    def __init__(
        self,
        url: str,
        *,
        inflater: Inflater | None = None,
        receive_timeout: float = 60.0,
        max_message_bytes: int = 16 * 1024 * 1024,  # > 1 MB frames are skipped, not fatal
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            stream_url(url),
            receive_timeout=receive_timeout,
            max_message_bytes=max_message_bytes,
            backoff=backoff,
        )
        self.v1 = is_v1(self.base_url)
        self.subprotocols = None if self.v1 else (SUBPROTOCOL,)
        self.inflater = None if self.v1 else inflater
        self._floor: int | None = None  # CursorTooOld said: no seq below this is kept
        self._asked: int | None = None
        self._live = False  # CursorTooOld without a readable floor: the live tip, once, loudly

    async def prepare(self, cursor: int | None) -> str:
        if self._floor is not None and cursor is not None and cursor < min(self._floor, TIME_CURSOR):
            cursor = self._floor
        if self._live:
            cursor, self._live = None, False
        self._asked = cursor
        if self.inflater is not None and self.inflater.dictionary_id is None:
            await self._load_dictionary()
        dictionary_id = self.inflater.dictionary_id if self.inflater is not None else None
        return f"{self.base_url}?{query(cursor, v1=self.v1, dictionary_id=dictionary_id)}"

    async def _load_dictionary(self) -> None:
        """Fetch the current dictionary; on failure this connection is uncompressed (logged)."""
        assert self.inflater is not None
        parts = urlsplit(self.base_url)
        http = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        url = urlunsplit((http, parts.netloc, DICTIONARY_PATH, "", ""))
        try:
            blob = await asyncio.to_thread(_fetch, url)
            dictionary_id = self.inflater.load(blob)
        except (OSError, ValueError) as exc:
            log.warning("zstd dictionary unavailable, reading uncompressed url=%s error=%s", url, exc)
            return
        log.info("zstd dictionary loaded id=%d bytes=%d", dictionary_id, len(blob))

    def refused(self, exc: InvalidStatus) -> str:
        error, message = _xrpc_error(exc.response.body)
        if error == "CursorTooOld":
            self._too_old(message)
        elif error == "UnknownZstdDictionary" and self.inflater is not None:
            self.inflater.dictionary_id = None  # fetch the current one before the next connection
        return f"HTTP {exc.response.status_code} {error or ''}: {message[:200]}"

    def _too_old(self, message: str) -> None:
        found = _FLOOR.search(message) or (re.findall(r"\d+", message) or [None])[-1]
        floor = int(found.group(1) if isinstance(found, re.Match) else found) if found else None
        asked = self._asked
        self.gaps += 1
        if floor is None or asked is None:
            log.error("jetstream cursor too old and no floor in %r: resuming at the live tip (gap)", message)
            self._live = True
            return
        lost = max(0, floor - asked)
        self.events_lost += lost
        self._floor = floor
        log.warning(
            "jetstream cursor %d is below the retention floor %d: %d events lost, resuming at the floor",
            asked,
            floor,
            lost,
        )


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # the configured host
        blob: bytes = response.read(_MAX_DICTIONARY + 1)
    if len(blob) > _MAX_DICTIONARY:
        raise ValueError("dictionary larger than 16 MB")
    return blob


def _xrpc_error(body: bytes | bytearray | None) -> tuple[str | None, str]:
    """(error name, message) of an XRPC error body; (None, the text) for anything else."""
    text = (body or b"").decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except ValueError:
        return None, text
    if not isinstance(obj, dict):
        return None, text
    error, message = obj.get("error"), obj.get("message")
    return (error if isinstance(error, str) else None), (message if isinstance(message, str) else text)
