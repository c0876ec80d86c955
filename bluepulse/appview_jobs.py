"""The AppView inside `bluepulse run`: profile refreshes on a schedule and a backfill at start.

The DuckDB file has one writer, so a running pipeline does this work itself, as supervised
background jobs beside the aggregator (Store methods serialize on the store's lock). An AppView
that is down or an accounts file being edited is a logged, counted failure
(`bluepulse_task_errors_total{task}`), never a stop: live counting goes on. The first refresh
is due `--refresh-every` after the newest snapshot in the store (after the start when there is
none), so a short run or the offline demo never calls the AppView.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import NoReturn

from aggregator.store import Store
from appview.client import AppViewClient
from appview.errors import AppViewUnavailable
from bluepulse.backfill_app import backfill_accounts
from bluepulse.config import RunConfig
from bluepulse.progress import Progress
from bluepulse.refresh import refresh_post_counts, refresh_profiles
from schemas.accounts import load_accounts
from schemas.errors import RegistryError
from transport.errors import TaskFailedError
from transport.supervise import Supervisor

log = logging.getLogger(__name__)


class AppViewJobs:
    """`jobs()` are the coroutines to run beside the pipeline; `close()` after they are cancelled."""

    def __init__(self, config: RunConfig, store: Store, supervisor: Supervisor) -> None:
        self.config, self.store, self.supervisor = config, store, supervisor
        self.client = AppViewClient(config.appview)

    def jobs(self) -> list[Coroutine[object, object, NoReturn]]:
        out = []
        if self.config.refresh_every > 0:
            out.append(self.refresh_on_schedule())
        if self.config.backfill_from is not None:
            out.append(self.backfill_once())
        return out

    async def close(self) -> None:
        await self.client.aclose()

    def first_refresh_delay(self) -> float:
        _, rows = self.store.query("SELECT max(time) FROM followers_history")
        newest = rows[0][0] if rows else None
        if not isinstance(newest, datetime):
            return self.config.refresh_every
        age = (datetime.now(UTC).replace(tzinfo=None) - newest).total_seconds()
        return max(0.0, self.config.refresh_every - age)

    async def refresh(self) -> None:
        """One refresh; an unreachable AppView or an unreadable file waits for the next one."""
        try:
            done = await refresh_profiles(self.client, self.config.accounts, self.store)
            await refresh_post_counts(self.client, self.store)
        except (AppViewUnavailable, RegistryError) as exc:
            self.supervisor.errors["refresh"] += 1
            log.warning("profile refresh skipped until the next one: %s", exc)
            return
        log.info(
            "profiles refreshed accounts=%d snapshots=%d renamed=%d missing=%d",
            done.accounts,
            done.snapshots,
            len(done.renamed),
            len(done.missing),
        )

    async def refresh_on_schedule(self) -> NoReturn:
        self.supervisor.declare("refresh")
        await asyncio.sleep(self.first_refresh_delay())
        await self.supervisor.attempt("refresh", self.refresh)
        await self.supervisor.every("refresh", self.config.refresh_every, self.refresh)

    async def backfill(self) -> None:
        start = self.config.backfill_from
        assert start is not None
        accounts = load_accounts(self.config.accounts)
        with Progress("backfill", len(accounts), bar=False) as progress:
            done = await backfill_accounts(
                self.client, self.store, accounts, start=start, end=None, progress=progress
            )
        log.info(
            "backfill done since=%s accounts=%d posts=%d new=%d updated=%d",
            start.isoformat(),
            done.accounts,
            done.posts,
            done.new,
            done.updated,
        )

    async def backfill_once(self) -> NoReturn:
        """Until one backfill succeeds (it is idempotent, so a retry redoes no harm); abandoned,
        with an error line, after the Supervisor's failures in a row."""
        backoff = self.supervisor.backoff(1.0)
        try:
            while not await self.supervisor.attempt("backfill", self.backfill):  # noqa: ASYNC110 - retries
                await asyncio.sleep(backoff.delay(self.supervisor.failures("backfill") - 1))
        except TaskFailedError as exc:
            log.error(
                "backfill abandoned, live counting goes on (restart with --backfill-from): %s",
                exc,
            )
        await asyncio.Event().wait()  # done: idle until the pipeline stops
        raise AssertionError("unreachable")
