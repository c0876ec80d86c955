"""A streamer wired to a relay emulator (or, `jetstream=True`, a Jetstream one), for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from schemas import Event
from schemas.accounts import Account
from streamer.cursor import V1, CursorStore, source_id
from streamer.jetstream_source import JetstreamSource
from streamer.publish import CollectingPublisher
from streamer.service import Streamer
from streamer.source import RelaySource, WebsocketSource
from streamer.tracked import StreamerState, TrackedAccounts
from streamer.wire import JetstreamWire, RelayWire, Wire
from transport.backoff import Backoff

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # tracked: a hospital
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"  # tracked: an agency
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"  # the public
Y = "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"
ACCOUNTS = [Account(A, "chu-exemple.fr", "CHU Exemple", "CHU"), Account(B, "ars.fr", "ARS", "agence")]


class RunningStreamer:
    """Starts a streamer from a state dir; `stop()` shuts it down like SIGTERM would."""

    def __init__(
        self,
        relay_url: str,
        state_dir: Path,
        *,
        accounts: Iterable[Account] = ACCOUNTS,
        receive_timeout: float = 5.0,
        jetstream: bool = False,
        compress: bool = True,
        start_cursor: int | None = None,
    ) -> None:
        self.state = StreamerState(state_dir)
        name = source_id(relay_url if jetstream else None)
        self.cursor = CursorStore.for_source(state_dir, name)
        self.publisher = CollectingPublisher()
        tracked = TrackedAccounts(accounts, self.state.handles())
        backoff = Backoff(initial=0.02, maximum=0.1)
        self.source: WebsocketSource
        wire: Wire
        if jetstream:
            wire = JetstreamWire(name, v1=name == V1, compress=compress)
            self.source = JetstreamSource(
                relay_url, inflater=wire.inflater, receive_timeout=receive_timeout, backoff=backoff
            )
        else:
            wire = RelayWire()
            self.source = RelaySource(relay_url, receive_timeout=receive_timeout, backoff=backoff)
        self.streamer = Streamer(
            tracked, self.state, self.cursor, self.publisher, wire=wire, start_cursor=start_cursor
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> list[Event]:
        return self.publisher.events

    def start(self) -> RunningStreamer:
        self._task = asyncio.create_task(self.streamer.run(self.source, checkpoint_interval=0.05))
        return self

    async def wait_events(self, count: int, timeout: float = 10.0) -> list[Event]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.01)
        return self.events

    async def wait_connected(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.source.connected:
                await asyncio.sleep(0.01)

    async def wait_position(self, seq: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while (self.streamer.position() or 0) < seq:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.streamer.checkpoint()
        self.state.close()


def facts(events: Iterable[Event]) -> list[tuple[str, str, str, str, str]]:
    return [(e.kind.value, e.action.value, e.direction.value, e.subject_did, e.actor_did) for e in events]
