"""Wiring of the streamer half from a Config: registry, state, cursor, source, publisher."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from bluepulse.config import Config
from schemas.accounts import load_accounts
from streamer.cursor import CursorStore
from streamer.publish import Publisher
from streamer.service import Streamer
from streamer.source import RelaySource
from streamer.stats import StreamerCollector
from streamer.tracked import StreamerState, TrackedAccounts

log = logging.getLogger(__name__)


@dataclass
class StreamerApp:
    streamer: Streamer
    source: RelaySource
    state: StreamerState

    async def run(self, checkpoint_interval: float) -> None:
        try:
            await self.streamer.run(self.source, checkpoint_interval)
        finally:
            await asyncio.shield(self.shutdown())

    async def shutdown(self) -> None:
        """Flush what was published, then save the cursor: the last step of every exit."""
        seq = await self.streamer.checkpoint()
        self.state.close()
        log.info("streamer stopped cursor=%s", seq)


def build_streamer(config: Config, publisher: Publisher, registry: CollectorRegistry) -> StreamerApp:
    """Fails fast (RegistryError, StateError) on a broken accounts file or state directory."""
    accounts = load_accounts(config.accounts)
    cursor_store = CursorStore(config.state_dir)
    cursor_store.check_writable()
    state = StreamerState(config.state_dir)
    tracked = TrackedAccounts(accounts, state.handles())
    streamer = Streamer(tracked, state, cursor_store, publisher)
    registry.register(StreamerCollector(streamer.stats))
    source = RelaySource(config.relay, receive_timeout=config.receive_timeout)
    log.info("streamer ready relay=%s tracked=%d cursor=%s", config.relay, len(tracked), streamer.position())
    return StreamerApp(streamer, source, state)
