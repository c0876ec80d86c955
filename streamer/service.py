"""The streamer: source → frames → filter → records → publish, plus the cursor checkpoint.

Invariant: the cursor saved is the seq of a frame whose events (and every earlier frame's)
were flushed downstream and whose remembered paths were committed. Bad frames are counted by
reason and skipped; they never end the stream. The checkpoint and the expiry of remembered
paths run under a Supervisor: retried and counted on failure, fatal when they do not recover.
What differs between the relay and Jetstream (filter, decoder, positions, inclusive cursor,
compression) is the Wire (streamer/wire.py); everything else is one code path.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections.abc import Awaitable
from typing import Final

from schemas import Kind
from streamer.cursor import CursorStore
from streamer.errors import FrameError, FrameReason, RelayMessage
from streamer.filter import MENTIONS, SKIP
from streamer.frames import Envelope
from streamer.jetstream_decode import ZSTD_MAGIC
from streamer.names import NameMatcher
from streamer.publish import Publisher
from streamer.skiplog import SkipLog
from streamer.source import WebsocketSource
from streamer.stats import StreamerStats
from streamer.tracked import StreamerState, TrackedAccounts
from streamer.wire import KINDS_WITH_EVENTS, Decoded, RelayWire, Wire
from transport.errors import ConsumerFailedError
from transport.supervise import Supervisor, run_with

log = logging.getLogger(__name__)
__all__ = ["KINDS_WITH_EVENTS", "Streamer"]
_RELAY_MESSAGES: Final = {name.value: name for name in RelayMessage}


class Streamer:
    def __init__(
        self,
        tracked: TrackedAccounts,
        state: StreamerState,
        cursor_store: CursorStore,
        publisher: Publisher,
        *,
        stats: StreamerStats | None = None,
        max_frame_bytes: int | None = None,
        supervisor: Supervisor | None = None,
        remember_days: float = 90.0,
        expiry_interval: float | None = None,
        wire: Wire | None = None,
        start_cursor: int | None = None,
        names: NameMatcher | None = None,
    ) -> None:
        """`start_cursor`: where to start when there is no saved position of this source (a
        time cursor derived from another source's position, see streamer/cursor.py); `names`:
        the watch terms matched in every post create (streamer/names.py)."""
        self.tracked = tracked
        self.state = state
        self.cursor_store = cursor_store
        self.publisher = publisher
        self.stats = stats or StreamerStats()
        self.stats.tracked_accounts = len(tracked)
        self.wire: Wire = wire or RelayWire()
        self.max_frame_bytes = max_frame_bytes or self.wire.max_frame_bytes
        self.names = names if names else None
        self.filter = self.wire.new_filter(tracked.dids(), state.rememberers(), names=self.names)
        self._classify = self.filter.classify
        self.source: WebsocketSource | None = None
        self._last_frame: bytes | None = None
        self._seq_frame: bytes | None = None
        self._seq: int | None = cursor_store.load()
        self._start_cursor = start_cursor
        self._replay_floor: int | None = None  # inclusive cursor: frames up to it were handled
        if self.wire.inclusive or self.wire.inflater is not None:
            self.handle = self._handle_jetstream  # type: ignore[method-assign,assignment]
        self._skip_log = SkipLog(log)
        self._internal_seen: set[str] = set()  # exception types already logged with a traceback
        self._drop_cursor = False
        self._marked: int | None = None
        self.supervisor = supervisor or Supervisor()
        self.remember_days = remember_days
        # expire about ten times per memory span, at least hourly
        self.expiry_interval = expiry_interval or min(3600.0, remember_days * 8640)
        self.stats.remembered_paths = state.remembered_count()

    # -- hot path ---------------------------------------------------------------------------
    def handle(self, frame: bytes) -> Awaitable[None] | None:
        """Called per frame; returns a coroutine only for frames that may concern us."""
        self.stats.frames += 1
        try:
            verdict = self._classify(frame)
        except Exception:  # e.g. a frame cut short of the filter's reads: the decoder judges it
            verdict = MENTIONS
        if verdict == SKIP and len(frame) <= self.max_frame_bytes:
            self._last_frame = frame
            return None
        return self._candidate(frame, verdict)

    def _handle_jetstream(self, message: bytes) -> Awaitable[None] | None:
        """Inflate a dict-zstd frame, drop what an inclusive cursor re-sent, then `handle`."""
        frame = message
        if message.startswith(ZSTD_MAGIC) and self.wire.inflater is not None:
            try:
                frame = self.wire.inflater.inflate(message)
            except FrameError as exc:
                self.stats.frames += 1
                self.stats.frames_candidate += 1  # counted under its reason, not as untracked
                self._skip(message, exc.reason, exc)
                return None
        if self._replay_floor is not None:
            seq = self.wire.peek_seq(frame)
            if seq is not None:
                if seq <= self._replay_floor:
                    self.stats.frames += 1
                    self.stats.frames_replayed += 1
                    return None
                self._replay_floor = None  # the stream is in order: past the floor for good
        return self.handle_frame(frame)

    def handle_frame(self, frame: bytes) -> Awaitable[None] | None:
        return Streamer.handle(self, frame)

    def _candidate(self, frame: bytes, verdict: int) -> Awaitable[None] | None:
        if len(frame) > self.max_frame_bytes:
            self.stats.frames_skipped[FrameReason.OVERSIZED] += 1
            self._last_frame = frame
            return None
        self.stats.frames_candidate += 1
        return self._process(frame, need_records=verdict == MENTIONS)

    async def _process(self, frame: bytes, *, need_records: bool) -> None:
        try:
            decoded = self._decode(frame, need_records=need_records)
        except FrameError as exc:
            self._skip(frame, exc.reason, exc)
            return
        except (sqlite3.Error, MemoryError):
            raise  # our own state, or the process, is broken: not a frame problem
        except Exception as exc:  # the last resort: one frame never ends the stream
            self._skip(frame, FrameReason.INTERNAL, exc)
            return
        if isinstance(decoded, Envelope):
            self._relay_message(decoded)
            return
        seq, result = decoded
        for reason in result.skipped:
            self.stats.ops_skipped[reason] += 1
        for actor, path, memory in result.remember:
            self.state.remember(actor, path, memory)
            self.filter.add_rememberer(actor)
        if result.events:
            for event in result.events:
                # `_value_`: the same str as `.value`, without Enum's property call per event
                self.stats.events[(event.kind._value_, event.direction._value_)] += 1
                if event.kind is Kind.HANDLE and event.handle:
                    self._update_handle(event.subject_did, event.handle)
            await self.publisher.publish(result.events)
        self._last_frame, self._seq_frame, self._seq = frame, frame, seq or self._seq

    def _decode(self, frame: bytes, *, need_records: bool) -> Decoded:
        """The frame's events at its position, or a relay message. Raises FrameError."""
        return self.wire.decode(
            frame, self.tracked, self.state.recall, need_records=need_records, names=self.names
        )

    def _skip(self, frame: bytes, reason: FrameReason, exc: Exception) -> None:
        """Count a frame that yields nothing and log it (rate-limited per reason); an unexpected
        exception type is logged with its traceback the first time it shows up."""
        self.stats.frames_skipped[reason] += 1
        self._last_frame = frame  # a bad frame is still consumed: its seq may be readable
        if reason is FrameReason.INTERNAL and type(exc).__name__ not in self._internal_seen:
            self._internal_seen.add(type(exc).__name__)
            log.error("frame skipped reason=internal seq=%s (a bug)", self.wire.raw_seq(frame), exc_info=exc)
            return
        detail = exc if isinstance(exc, FrameError) else f"{type(exc).__name__}: {exc}"
        self._skip_log.skipped(reason, detail, lambda: self.wire.raw_seq(frame))

    def _relay_message(self, env: Envelope) -> None:
        raw_name = env.body.get("error") or env.body.get("name")
        name = _relay_message(raw_name)
        name_text = str(raw_name)[:60] if name is RelayMessage.OTHER else name
        message = str(env.body.get("message"))[:200]
        self.stats.relay_messages[name] += 1
        if env.kind == "error":
            log.error("relay error=%s message=%r", name_text, message)
            if self.source is not None:
                self.source.mark_unhealthy()
            if name is RelayMessage.FUTURE_CURSOR:
                # Our cursor is ahead of the relay (it was reset or is another relay): keep
                # asking for it would loop forever, so resume from the live tip, loudly.
                log.error("cursor %s is ahead of the relay; resuming from the live tip", self._seq)
                self._drop_cursor = True
        else:
            log.warning("relay info=%s message=%r", name_text, message)

    def _update_handle(self, did: str, handle: str) -> None:
        if self.tracked.update_handle(did, handle):
            self.state.set_handle(did, handle)
            log.info("handle changed did=%s handle=%s", did, handle)

    # -- position and checkpoint -----------------------------------------------------------
    def position(self) -> int | None:
        """Seq of the last fully handled frame (decoded lazily: skipped frames are not)."""
        frame = self._last_frame
        if frame is not None and frame is not self._seq_frame:
            self._seq_frame = frame
            seq = self.wire.peek_seq(frame)
            if seq is not None:
                self._seq = seq
        return self._seq

    def resume_cursor(self) -> int | None:
        """Where the next connection starts: the position, else the start cursor, else live."""
        if self._drop_cursor:
            self._drop_cursor = False
            self._last_frame = self._seq_frame = None
            self._seq = self._start_cursor = None
            return None
        position = self.position()
        if position is None:
            return self._start_cursor
        if self.wire.inclusive:
            self._replay_floor = position  # the server re-sends it: already handled
        return position

    async def mark_position(self) -> int | None:
        """Send the position downstream (the aggregator commits it: its last_seq moves too)."""
        seq = self.position()
        if seq is not None and seq != self._marked:
            await self.publisher.mark(seq, self.wire.source)
            self._marked = seq
        return seq

    async def checkpoint(self) -> int | None:
        """Mark the position, flush, commit memory, then save the cursor: in that order."""
        seq, frame = await self.mark_position(), self._seq_frame
        await self.publisher.flush()
        self.state.commit()
        if seq is not None:
            frame_time = self.wire.frame_time(frame) or self.stats.last_frame_time
            self.cursor_store.save(seq, None if frame_time is None else int(frame_time * 1e6))
            self.stats.last_seq = seq
            self.stats.last_frame_time = frame_time
        return seq

    async def run(self, source: WebsocketSource, checkpoint_interval: float = 1.0) -> None:
        self.source = source
        gc.freeze()  # start-up objects (tracked sets, registry) leave the collector's scans
        every = self.supervisor.every
        try:
            await run_with(
                source.run(self.handle, self.resume_cursor),
                every("checkpoint", checkpoint_interval, self._checkpoint_job, fatal=(ConsumerFailedError,)),
                every("expiry", self.expiry_interval, self.expire_memory),
            )
        finally:
            self._source_stats(source)

    async def _checkpoint_job(self) -> None:
        await self.checkpoint()
        if self.source is not None:
            self._source_stats(self.source)

    def _source_stats(self, source: WebsocketSource) -> None:
        self.stats.reconnects = source.reconnects
        self.stats.gaps = getattr(source, "gaps", 0)  # a test's scripted source may have none
        self.stats.events_lost = getattr(source, "events_lost", 0)

    async def expire_memory(self) -> int:
        """Forget remembered paths older than `remember_days`: a later delete of one of them
        is unresolvable (documented). Refreshes the remembered-paths gauge."""
        removed = self.state.expire(self.remember_days)
        if removed:
            self.filter.set_rememberers(self.state.rememberers())
            log.info("remembered paths expired count=%d older_than_days=%g", removed, self.remember_days)
        self.stats.remembered_paths = self.state.remembered_count()
        return removed


def _relay_message(name: object) -> RelayMessage:
    """The lexicon's name for a relay message, or OTHER (labels stay bounded)."""
    return _RELAY_MESSAGES.get(name, RelayMessage.OTHER) if isinstance(name, str) else RelayMessage.OTHER
