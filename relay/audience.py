"""What both emulators (relay, Jetstream) say about their subscribers, and the waits built on it.

Tests and the players pace themselves on these: how many subscriptions were served, how far the
slowest open, non-stalled subscriber is behind the log's end. Each emulator keeps its own log and
connection records; this mixin only needs their shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from websockets.asyncio.server import ServerConnection

from relay.log import Signal


class Subscriber(Protocol):
    @property
    def position(self) -> int: ...

    @property
    def stalled(self) -> bool: ...


class Log(Protocol):
    @property
    def end(self) -> int: ...


class _Emulator(Protocol):
    """The shape AudienceWaits reads: each emulator has these under its own, narrower types."""

    @property
    def connections(self) -> Sequence[object]: ...  # every subscription served (open or not)

    @property
    def _live(self) -> Mapping[ServerConnection, Subscriber]: ...

    @property
    def _log(self) -> Log: ...

    @property
    def _progress(self) -> Signal: ...  # fired when a batch was sent or a connection came or went

    def lag(self) -> int: ...

    async def wait_lag_at_most(self, items: int) -> None: ...


class AudienceWaits:
    """`connection_count`, `lag` and the wait_* methods over `_live`, `_log`, `_progress`."""

    @property
    def connection_count(self: _Emulator) -> int:
        """Currently open subscriber connections."""
        return len(self._live)

    def lag(self: _Emulator) -> int:
        """Items the slowest open, non-stalled subscriber still has to receive."""
        end = self._log.end
        return max((end - c.position for c in self._live.values() if not c.stalled), default=0)

    async def wait_for_connections(self: _Emulator, count: int) -> None:
        """Until `count` subscriptions were served in total (open, closed or refused)."""
        while len(self.connections) < count:
            await self._progress.wait()

    async def wait_lag_at_most(self: _Emulator, items: int) -> None:
        """Until every open, non-stalled subscriber is within `items` of the log's end."""
        while self.lag() > items:
            await self._progress.wait()

    async def wait_for_audience(self: _Emulator) -> None:
        """Until at least one subscriber is connected."""
        while not self._live:
            await self._progress.wait()

    async def wait_caught_up(self: _Emulator) -> None:
        """Until every open, non-stalled subscriber was sent the whole log."""
        await self.wait_lag_at_most(0)
