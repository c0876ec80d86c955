"""Supervised background jobs: a failure is logged, counted and retried; one that does not
recover stops the process with one clear message.

Every periodic job of a pipeline process (cursor checkpoint, memory expiry, SQL snapshot, store
maintenance, metrics refresh) runs under a `Supervisor`, so a job can never die silently and
leave a live process that has stopped saving. Shared by both halves (neither imports the other).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, NoReturn, TypeVar

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from transport.backoff import Backoff
from transport.errors import TaskFailedError

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[], Awaitable[object]]
MAX_FAILURES: Final = 5  # consecutive failures before a job is declared dead
MAX_RETRY_DELAY: Final = 30.0


class Supervisor:
    """Failure policy and error counts of one process's background jobs."""

    def __init__(self, *, max_failures: int = MAX_FAILURES, backoff: Backoff | None = None) -> None:
        self.max_failures = max_failures
        self.errors: Counter[str] = Counter()  # bluepulse_task_errors_total{task}
        self._backoff = backoff
        self._failures: Counter[str] = Counter()  # consecutive, per task

    def backoff(self, interval: float) -> Backoff:
        """Retry pacing: starts near the job's own interval, capped at 30 s."""
        if self._backoff is not None:
            return self._backoff
        return Backoff(initial=min(max(interval, 0.05), 1.0), maximum=MAX_RETRY_DELAY)

    def failures(self, task: str) -> int:
        """Consecutive failures of `task` so far (0 after a success)."""
        return self._failures[task]

    def declare(self, task: str) -> None:
        """Expose the task's error counter at 0 before its first failure."""
        self.errors[task] += 0

    async def every(
        self, task: str, interval: float, job: Job, *, fatal: tuple[type[BaseException], ...] = ()
    ) -> NoReturn:
        """Run `job` every `interval` seconds forever; raises TaskFailedError when it dies."""
        self.declare(task)
        backoff = self.backoff(interval)
        delay = interval
        while True:
            await asyncio.sleep(delay)
            ok = await self.attempt(task, job, fatal)
            delay = interval if ok else backoff.delay(self._failures[task] - 1)

    async def attempt(self, task: str, job: Job, fatal: tuple[type[BaseException], ...] = ()) -> bool:
        """Run `job` once under the policy: True when it succeeded, False when it will be retried."""
        try:
            await job()
        except fatal as exc:
            self.errors[task] += 1
            raise TaskFailedError(f"{task} failed: {_describe(exc)}") from exc
        except Exception as exc:
            self._failed(task, exc)
            return False
        if self._failures.pop(task, 0):
            log.info("background task recovered task=%s", task)
        return True

    def _failed(self, task: str, exc: Exception) -> None:
        self.errors[task] += 1
        self._failures[task] += 1
        failures = self._failures[task]
        if failures >= self.max_failures:
            raise TaskFailedError(
                f"{task} failed {failures} times in a row, last error: {_describe(exc)}"
            ) from exc
        log.warning(
            "background task failed, retrying task=%s failures=%d error=%s", task, failures, _describe(exc)
        )

    def collector(self) -> Collector:
        return _ErrorsCollector(self.errors)


class Periodic:
    """A job run between other work (the aggregator's upkeep), with the Supervisor's policy."""

    def __init__(
        self,
        supervisor: Supervisor,
        task: str,
        interval: float,
        *,
        fatal: tuple[type[BaseException], ...] = (),
        start: float | None = None,
    ) -> None:
        self.supervisor, self.task, self.interval, self.fatal = supervisor, task, interval, fatal
        self._backoff = supervisor.backoff(interval)
        self.next_at = time.monotonic() if start is None else start
        supervisor.declare(task)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    async def run(self, job: Job, *, next_interval: Callable[[], float] | None = None) -> bool:
        """Run now; schedule the next run (or the retry). False when it will be retried."""
        ok = await self.supervisor.attempt(self.task, job, self.fatal)
        if ok:
            self.next_at = time.monotonic() + (next_interval() if next_interval else self.interval)
        else:
            self.next_at = time.monotonic() + self._backoff.delay(self.supervisor.failures(self.task) - 1)
        return ok


async def run_with(main: Awaitable[T], *background: Awaitable[Any]) -> T:
    """Await `main` while the `background` jobs run; the first job to fail cancels `main`
    and its error is raised (jobs never end on their own). Jobs are cancelled when `main` ends."""
    main_task = asyncio.ensure_future(main)
    jobs = [asyncio.ensure_future(job) for job in background]
    try:
        await asyncio.wait({main_task, *jobs}, return_when=asyncio.FIRST_COMPLETED)
        for job in jobs:
            if job.done():
                main_task.cancel()
                await asyncio.gather(main_task, return_exceptions=True)
                job.result()  # raises the job's error
                raise TaskFailedError("a background task ended unexpectedly")
        return await main_task
    finally:
        for task in (main_task, *jobs):
            task.cancel()
        await asyncio.gather(main_task, *jobs, return_exceptions=True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _ErrorsCollector(Collector):
    def __init__(self, errors: Counter[str]) -> None:
        self._errors = errors

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "bluepulse_task_errors", "Background task failures (retried, or fatal), by task.", labels=["task"]
        )
        for task, count in sorted(self._errors.items()):
            family.add_metric([task], count)
        yield family
