"""The streamer: source → frames → filter → records → publish, plus the cursor checkpoint.

Invariant: the cursor saved is the seq of a frame whose events (and every earlier frame's)
were flushed downstream and whose remembered paths were committed. Bad frames are counted by
reason and skipped; they never end the stream. The checkpoint and the expiry of remembered
paths run under a Supervisor: retried and counted on failure, fatal when they do not recover.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections.abc import Awaitable
from datetime import datetime
from typing import Final

from schemas import Kind
from streamer.cursor import CursorStore
from streamer.errors import FrameError, FrameReason, RelayMessage
from streamer.filter import MENTIONS, SKIP, FrameFilter
from streamer.frames import Envelope, decode_envelope, peek_seq, raw_seq
from streamer.publish import Publisher
from streamer.records import FrameResult, frame_events
from streamer.skiplog import SkipLog
from streamer.source import RelaySource
from streamer.stats import StreamerStats
from streamer.tracked import StreamerState, TrackedAccounts
from transport.errors import ConsumerFailedError
from transport.supervise import Supervisor, run_with

log = logging.getLogger(__name__)
KINDS_WITH_EVENTS = frozenset({"#commit", "#identity", "#account", "#sync"})
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
        max_frame_bytes: int = 5 * 1024 * 1024,
        supervisor: Supervisor | None = None,
        remember_days: float = 90.0,
        expiry_interval: float | None = None,
    ) -> None:
        self.tracked = tracked
        self.state = state
        self.cursor_store = cursor_store
        self.publisher = publisher
        self.stats = stats or StreamerStats()
        self.stats.tracked_accounts = len(tracked)
        self.max_frame_bytes = max_frame_bytes
        self.filter = FrameFilter(tracked.dids(), state.rememberers())
        self._classify = self.filter.classify
        self.source: RelaySource | None = None
        self._last_frame: bytes | None = None
        self._seq_frame: bytes | None = None
        self._seq: int | None = cursor_store.load()
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
        if decoded is None:
            return
        env, result = decoded
        for reason in result.skipped:
            self.stats.ops_skipped[reason] += 1
        for actor, path, memory in result.remember:
            self.state.remember(actor, path, memory)
            self.filter.add_rememberer(actor)
        if result.events:
            for event in result.events:
                self.stats.events[(event.kind.value, event.direction.value)] += 1
                if event.kind is Kind.HANDLE and event.handle:
                    self._update_handle(event.subject_did, event.handle)
            await self.publisher.publish(result.events)
        self._last_frame, self._seq_frame, self._seq = frame, frame, env.seq or self._seq

    def _decode(self, frame: bytes, *, need_records: bool) -> tuple[Envelope, FrameResult] | None:
        """The frame's envelope and events; None for a relay message. Raises FrameError."""
        env = decode_envelope(frame)
        if env.kind in ("error", "#info"):
            self._relay_message(env)
            return None
        if env.kind not in KINDS_WITH_EVENTS:
            raise FrameError(FrameReason.UNKNOWN_TYPE, env.kind[:60])
        return env, frame_events(env, self.tracked, self.state.recall, need_records=need_records)

    def _skip(self, frame: bytes, reason: FrameReason, exc: Exception) -> None:
        """Count a frame that yields nothing and log it (rate-limited per reason); an unexpected
        exception type is logged with its traceback the first time it shows up."""
        self.stats.frames_skipped[reason] += 1
        self._last_frame = frame  # a bad frame is still consumed: its seq may be readable
        if reason is FrameReason.INTERNAL and type(exc).__name__ not in self._internal_seen:
            self._internal_seen.add(type(exc).__name__)
            log.error("frame skipped reason=internal seq=%s (a bug)", raw_seq(frame), exc_info=exc)
            return
        detail = exc if isinstance(exc, FrameError) else f"{type(exc).__name__}: {exc}"
        self._skip_log.skipped(reason, detail, lambda: raw_seq(frame))

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
            seq = peek_seq(frame)
            if seq is not None:
                self._seq = seq
        return self._seq

    def resume_cursor(self) -> int | None:
        if self._drop_cursor:
            self._drop_cursor = False
            self._last_frame = self._seq_frame = None
            self._seq = None
            return None
        return self.position()

    async def mark_position(self) -> int | None:
        """Send the position downstream (the aggregator commits it: its last_seq moves too)."""
        seq = self.position()
        if seq is not None and seq != self._marked:
            await self.publisher.mark(seq)
            self._marked = seq
        return seq

    async def checkpoint(self) -> int | None:
        """Mark the position, flush, commit memory, then save the cursor: in that order."""
        seq, frame = await self.mark_position(), self._seq_frame
        await self.publisher.flush()
        self.state.commit()
        if seq is not None:
            self.cursor_store.save(seq)
            self.stats.last_seq = seq
            self.stats.last_frame_time = _frame_time(frame) or self.stats.last_frame_time
        return seq

    async def run(self, source: RelaySource, checkpoint_interval: float = 1.0) -> None:
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
            self.stats.reconnects = source.reconnects

    async def _checkpoint_job(self) -> None:
        await self.checkpoint()
        if self.source is not None:
            self.stats.reconnects = self.source.reconnects

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


def _frame_time(frame: bytes | None) -> float | None:
    if frame is None:
        return None
    try:
        value = decode_envelope(frame).body.get("time")
        return datetime.fromisoformat(str(value)).timestamp()
    except (FrameError, ValueError):
        return None
