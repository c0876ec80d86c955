"""Identity forensics, fetch stage: a DID's identity history from the PLC directory (or did:web).

`GET <plc>/<did>/log/audit` for a did:plc, `https://<domain>/.well-known/did.json` for a did:web.
An unreachable directory, a 5xx or a 429 is retried with jittered backoff; every failed attempt
is counted by reason (`bluepulse_plc_fetch_errors_total`), and a DID still failing after the
last attempt raises `PlcUnavailableError`: the caller retries it later, and the alert fires without
the evidence meanwhile. Never called from the DuckDB write path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Final

import httpx
import orjson
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from aggregator.errors import IdentityParseError, PlcReason, PlcUnavailableError
from aggregator.plc import IdentityOp, did_web_url, parse_audit_log, parse_did_document
from transport.backoff import Backoff

log = logging.getLogger(__name__)

PLC_DIRECTORY: Final = "https://plc.directory"
_RETRIED: Final = frozenset({429, 500, 502, 503, 504})


class PlcStats:
    """`bluepulse_plc_fetches_total{outcome}` and `bluepulse_plc_fetch_errors_total{reason}`."""

    def __init__(self) -> None:
        self.fetches: Counter[str] = Counter({"ok": 0, "failed": 0})
        self.errors: Counter[str] = Counter()
        self.ops_stored = 0

    def collector(self) -> Collector:
        return _PlcCollector(self)


class PlcClient:
    """`await client.history(did)`; `aclose()` when done."""

    def __init__(
        self,
        base: str = PLC_DIRECTORY,
        *,
        stats: PlcStats | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: Backoff | None = None,
        web_scheme: str = "https",
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base = base.rstrip("/")
        self.stats = stats or PlcStats()
        self.attempts, self.web_scheme, self.clock = max(1, attempts), web_scheme, clock
        self.backoff = backoff or Backoff(initial=0.5, maximum=8.0)
        headers = {"user-agent": "bluepulse (identity forensics)", "accept": "application/json"}
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def history(self, did: str) -> list[IdentityOp]:
        """Every operation of the DID's log (did:web: its document now); [] for a DID the
        directory does not know. Raises PlcUnavailableError when no attempt succeeded."""
        try:
            ops = await self._history(did)
        except PlcUnavailableError:
            self.stats.fetches["failed"] += 1
            raise
        self.stats.fetches["ok"] += 1
        return ops

    async def _history(self, did: str) -> list[IdentityOp]:
        if did.startswith("did:web:"):
            doc = await self._get_json(did_web_url(did, self.web_scheme), did)
            if doc is None:
                return []
            try:
                return [parse_did_document(did, doc, seen_at=self.clock())]
            except IdentityParseError as exc:
                self.stats.errors[PlcReason.MALFORMED] += 1
                raise PlcUnavailableError(str(exc)) from exc
        data = await self._get_json(f"{self.base}/{did}/log/audit", did)
        if data is None:
            return []
        try:
            parsed = parse_audit_log(did, data)
        except IdentityParseError as exc:
            self.stats.errors[PlcReason.MALFORMED] += 1
            raise PlcUnavailableError(str(exc)) from exc
        if parsed.skipped:
            self.stats.errors[PlcReason.BAD_ENTRY] += parsed.skipped
            log.warning("PLC log entries skipped did=%s skipped=%d", did, parsed.skipped)
        return parsed.ops

    async def _get_json(self, url: str, did: str) -> object:
        """The JSON answer; None on 404 (unknown DID); retries what may pass on a retry."""
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff.delay(attempt - 1))
            try:
                answer = await self._http.get(url)
            except httpx.TransportError as exc:
                self.stats.errors[PlcReason.UNREACHABLE] += 1
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if answer.status_code == 404:
                self.stats.errors[PlcReason.NOT_FOUND] += 1
                return None
            if answer.status_code in _RETRIED:
                self.stats.errors[
                    PlcReason.THROTTLED if answer.status_code == 429 else PlcReason.HTTP_5XX
                ] += 1
                last = f"HTTP {answer.status_code}"
                continue
            if answer.status_code != 200:
                self.stats.errors[PlcReason.HTTP_4XX] += 1
                raise PlcUnavailableError(f"{url}: HTTP {answer.status_code}")
            try:
                return orjson.loads(answer.content)
            except orjson.JSONDecodeError as exc:
                self.stats.errors[PlcReason.MALFORMED] += 1
                last = f"not JSON: {exc}"
        raise PlcUnavailableError(f"{did}: {url} failed {self.attempts} times, last: {last}")


class _PlcCollector(Collector):
    def __init__(self, stats: PlcStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        fetches = CounterMetricFamily(
            "bluepulse_plc_fetches",
            "Identity histories fetched (PLC log or did:web), by outcome.",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._stats.fetches.items()):
            fetches.add_metric([outcome], count)
        yield fetches
        errors = CounterMetricFamily(
            "bluepulse_plc_fetch_errors",
            "Failed identity fetch attempts and unreadable entries, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(self._stats.errors.items()):
            errors.add_metric([reason], count)
        yield errors
        yield CounterMetricFamily(
            "bluepulse_plc_ops_stored", "New identity_history rows stored.", value=self._stats.ops_stored
        )
