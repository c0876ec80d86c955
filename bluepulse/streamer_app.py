"""Wiring of the streamer half from a Config: registry, state, cursor, source, publisher.

Every exit ends with a checkpoint (flush, then cursor): after a fatal background failure it is
still tried, but its own failure is only logged so the first error is the one reported.
"""

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
from transport.supervise import Supervisor, TaskFailedError

log = logging.getLogger(__name__)


@dataclass
class StreamerApp:
    streamer: Streamer
    source: RelaySource
    state: StreamerState

    async def run(self, checkpoint_interval: float) -> None:
        failed = True
        try:
            await self.streamer.run(self.source, checkpoint_interval)
            failed = False
        except asyncio.CancelledError:  # a signal: the normal way to stop
            failed = False
            raise
        finally:
            await asyncio.shield(self.shutdown(quiet=failed))

    async def shutdown(self, *, quiet: bool = False) -> None:
        """Flush what was published, then save the cursor: the last step of every exit.

        A failure raises TaskFailedError (exit 1, one message), or is only logged when `quiet`
        (the process is already stopping on another error)."""
        try:
            seq = await self.streamer.checkpoint()
            self.state.close()
        except Exception as exc:
            if quiet:
                log.error("final checkpoint failed too, cursor not saved: %s", exc)
                return
            raise TaskFailedError(f"final checkpoint failed, cursor not saved: {exc}") from exc
        log.info("streamer stopped cursor=%s", seq)


def build_streamer(
    config: Config, publisher: Publisher, registry: CollectorRegistry, supervisor: Supervisor | None = None
) -> StreamerApp:
    """Fails fast (RegistryError, StateError) on a broken accounts file or state directory.

    Without a `supervisor` (the streamer alone) one is made and its error counter registered."""
    if supervisor is None:
        supervisor = Supervisor()
        registry.register(supervisor.collector())
    accounts = load_accounts(config.accounts)
    cursor_store = CursorStore(config.state_dir)
    cursor_store.check_writable()
    state = StreamerState(config.state_dir)
    tracked = TrackedAccounts(accounts, state.handles())
    streamer = Streamer(
        tracked, state, cursor_store, publisher, supervisor=supervisor, remember_days=config.remember_days
    )
    registry.register(StreamerCollector(streamer.stats))
    source = RelaySource(config.relay, receive_timeout=config.receive_timeout)
    log.info("streamer ready relay=%s tracked=%d cursor=%s", config.relay, len(tracked), streamer.position())
    return StreamerApp(streamer, source, state)
