"""The streamer app: firehose source → streamer → a publisher, with its state, cursor and metrics.

The source is the relay, or Jetstream with `--jetstream` (a JetstreamSource and the Jetstream
wire); each source keeps its own cursor file (streamer/cursor.py).

`bluepulse streamer` is this app alone on Kafka (or a JSONL file); `bluepulse run` joins it to
the aggregator app by the in-process queue (`run_app`). Every exit ends with a checkpoint (flush,
then cursor): after a fatal background failure it is still tried, but its own failure is only
logged so the first error is the one reported.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from bluepulse import transport_choice
from bluepulse.config import StreamerAppSettings, StreamerConfig
from bluepulse.process import hosting, supervised
from schemas.accounts import Account, load_accounts, load_terms_file
from schemas.terms import merge_terms
from streamer.cursor import V1, CursorStore, source_id, start_cursor
from streamer.jetstream_source import JetstreamSource
from streamer.names import NameMatcher
from streamer.publish import Publisher
from streamer.service import Streamer
from streamer.source import RelaySource, WebsocketSource
from streamer.stats import StreamerCollector
from streamer.tracked import StreamerState, TrackedAccounts
from streamer.wire import JetstreamWire, RelayWire, Wire
from transport.errors import TaskFailedError
from transport.supervise import Supervisor

log = logging.getLogger(__name__)


@dataclass
class StreamerApp:
    streamer: Streamer
    source: WebsocketSource
    state: StreamerState
    checkpoint_interval: float

    @classmethod
    def build(
        cls,
        config: StreamerAppSettings,
        publisher: Publisher,
        registry: CollectorRegistry,
        supervisor: Supervisor,
    ) -> StreamerApp:
        """Fails fast (RegistryError, StateError) on a broken accounts or terms file or state directory."""
        accounts = load_accounts(config.accounts)
        names = watch_terms(config, accounts)
        source_name = source_id(config.jetstream)
        cursor_store = CursorStore.for_source(config.state_dir, source_name)
        cursor_store.check_writable()
        state = StreamerState(config.state_dir)
        tracked = TrackedAccounts(accounts, state.handles())
        source: WebsocketSource
        wire: Wire
        if config.jetstream is None:
            source = RelaySource(config.relay, receive_timeout=config.receive_timeout)
            wire = RelayWire()
        else:
            wire = JetstreamWire(
                source_name, v1=source_name == V1, compress=config.jetstream_compress == "on"
            )
            source = JetstreamSource(
                config.jetstream, inflater=wire.inflater, receive_timeout=config.receive_timeout
            )
        start = start_cursor(config.state_dir, source_name)
        streamer = Streamer(
            tracked,
            state,
            cursor_store,
            publisher,
            supervisor=supervisor,
            remember_days=config.remember_days,
            wire=wire,
            start_cursor=start,
            names=names,
        )
        registry.register(StreamerCollector(streamer.stats))
        log.info(
            "streamer ready source=%s url=%s tracked=%d watch_terms=%d cursor=%s",
            source_name,
            source.base_url,
            len(tracked),
            names.term_count,
            streamer.position(),
        )
        return cls(streamer, source, state, config.checkpoint_interval)

    def accounts(self) -> list[Account]:
        """The tracked accounts, with the handles the streamer has learnt since the file was written."""
        return self.streamer.tracked.accounts()

    async def stream(self) -> None:
        """Read the relay until cancelled; no final checkpoint (the caller orders the shutdown)."""
        await self.streamer.run(self.source, self.checkpoint_interval)

    async def mark_position(self) -> None:
        """Publish how far the relay was read (`run`: while the aggregator drains, see run_app)."""
        await self.streamer.mark_position()

    def abandon(self) -> None:
        """Close the state without a checkpoint: the cursor stays at the last committed point."""
        self.state.close()

    async def run(self) -> None:
        """Stream, then the final checkpoint, whatever the exit."""
        failed = True
        try:
            await self.stream()
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


def watch_terms(config: StreamerAppSettings, accounts: list[Account]) -> NameMatcher:
    """The accounts' `terms` and the `--terms-file` terms, compiled into one automaton."""
    extra = load_terms_file(config.terms_file, accounts) if config.terms_file is not None else {}
    return NameMatcher(merge_terms({a.did: a.terms for a in accounts}, extra))


async def main(config: StreamerConfig) -> int:
    """`bluepulse streamer`: the streamer app alone, publishing to Kafka or a JSONL file."""
    transport_choice.check_streamer_output(config)
    with hosting(config, dirs={"state directory": config.state_dir}) as registry:
        publisher = await transport_choice.streamer_publisher(config)
        try:
            app = StreamerApp.build(config, publisher, registry, supervised(registry))
            await app.run()
        finally:
            await publisher.close()
    return 0
