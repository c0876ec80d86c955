"""Identity forensics, the job: which accounts to look up, when, and storing what was found.

A supervised background job beside the aggregator (never in the DuckDB write path): every
`interval` it reads the signals from a reader cursor and fetches the identity history of each
account whose handle or status changed, or whose takeover indicators just turned on
(signals.takeover_indicators: the rule's set and thresholds); while an account stays flagged,
its history is fetched again every `refetch` seconds. A DID the directory cannot serve now is
retried with backoff at later polls (counted by the client); its alert fires meanwhile, without
the evidence. Rows land in `identity_history` through `Store.record_identity`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from aggregator import signals
from aggregator.errors import PlcUnavailableError
from aggregator.plc_client import PlcClient
from aggregator.store import Store
from transport.backoff import Backoff
from transport.supervise import Supervisor

log = logging.getLogger(__name__)

TASK = "identity"


@dataclass(frozen=True, slots=True)
class _Seen:
    handles: float = 0.0
    statuses: float = 0.0
    flagged: bool = False


class IdentityForensics:
    """`run()` forever under the supervisor; `poll()` once (tests); `aclose()` at the end."""

    def __init__(
        self,
        store: Store,
        client: PlcClient,
        supervisor: Supervisor,
        *,
        interval: float = 5.0,
        refetch: float = 300.0,
        concurrency: int = 4,
        retry: Backoff | None = None,
    ) -> None:
        self.store, self.client, self.supervisor = store, client, supervisor
        self.interval, self.refetch = interval, refetch
        self.retry = retry or Backoff(initial=10.0, maximum=600.0)
        self._slots = asyncio.Semaphore(concurrency)
        self._seen: dict[str, _Seen] = {}
        self._next: dict[str, float] = {}  # did → monotonic time of its retry or refetch
        self._failures: dict[str, int] = {}
        self.fetched: deque[str] = deque(maxlen=256)  # the latest DIDs fetched successfully

    async def run(self) -> NoReturn:
        self.supervisor.declare(TASK)
        await self.supervisor.every(TASK, self.interval, self.poll)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def poll(self) -> int:
        """One look at the signals; fetches what is due. Returns the number of new rows stored."""
        current = await asyncio.to_thread(self._signals)
        due = self.due(current, time.monotonic())
        stored = await asyncio.gather(*(self._fetch(did) for did in due))
        return sum(stored)

    def _signals(self) -> signals.Signals:
        con = self.store.cursor()
        try:
            return signals.compute(con)
        finally:
            con.close()

    def due(self, s: signals.Signals, now: float) -> list[str]:
        """Accounts to fetch now: a new handle or status change, an indicator turning on, or a
        scheduled retry / refetch. Only did:plc and did:web have a history to read."""
        flagged = signals.takeover_indicators(s)
        dids = {*s.handle_changes_24h, *s.status_changes_24h, *flagged, *self._next}
        out = []
        for did in sorted(d for d in dids if d.startswith(("did:plc:", "did:web:"))):
            seen = _Seen(
                s.handle_changes_24h.get(did, 0.0), s.status_changes_24h.get(did, 0.0), did in flagged
            )
            before = self._seen.get(did, _Seen())
            self._seen[did] = seen
            triggered = (
                seen.handles > before.handles
                or seen.statuses > before.statuses
                or (seen.flagged and not before.flagged)
            )
            if triggered or now >= self._next.get(did, float("inf")):
                out.append(did)
        return out

    async def _fetch(self, did: str) -> int:
        async with self._slots:
            try:
                ops = await self.client.history(did)
            except PlcUnavailableError as exc:
                failures = self._failures[did] = self._failures.get(did, 0) + 1
                self._next[did] = time.monotonic() + self.retry.delay(failures - 1)
                log.warning(
                    "identity history unavailable, retrying later did=%s failures=%d error=%s",
                    did,
                    failures,
                    exc,
                )
                return 0
        fetched_at = datetime.now(UTC).replace(tzinfo=None)
        new = await asyncio.to_thread(self.store.record_identity, ops, fetched_at) if ops else 0
        self.client.stats.ops_stored += new
        self._failures.pop(did, None)
        if self._seen.get(did, _Seen()).flagged:
            self._next[did] = time.monotonic() + self.refetch
        else:
            self._next.pop(did, None)
        self.fetched.append(did)
        log.info("identity history fetched did=%s ops=%d new=%d", did, len(ops), new)
        return new
