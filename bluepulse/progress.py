"""Progress of long AppView work (backfill, refresh): a bar on a terminal, log lines otherwise.

On a terminal (stderr is a TTY) rich draws one bar; elsewhere (a service, a pipe, CI) a log
line every `interval` seconds says how far the work is, so a journal shows it is alive.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

log = logging.getLogger(__name__)


class Progress:
    """`with Progress("backfill", total=65) as bar: bar.advance(posts=12)`."""

    def __init__(
        self,
        what: str,
        total: int,
        *,
        unit: str = "accounts",
        interval: float = 10.0,
        bar: bool | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.done = 0
        self.details: dict[str, int] = {}
        self.started = self._last_line = time.monotonic()
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        if sys.stderr.isatty() if bar is None else bar:
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, detail="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def detail(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.details.items())

    def advance(self, steps: int = 1, **counts: int) -> None:
        """`steps` more units done; `counts` are added to the running details (posts=…)."""
        self.done += steps
        for key, value in counts.items():
            self.details[key] = self.details.get(key, 0) + value
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=steps, detail=self.detail())
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval or self.done == self.total:
            self._last_line = now
            log.info(
                "%s progress %s=%d/%d %s elapsed=%.1fs",
                self.what,
                self.unit,
                self.done,
                self.total,
                self.detail(),
                now - self.started,
            )
