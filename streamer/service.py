"""The streamer: source → frames → filter → records → publish, plus the cursor checkpoint.

Invariant: the cursor saved is the seq of a frame whose events (and every earlier frame's)
were flushed downstream and whose remembered paths were committed. Bad frames are counted by
reason and skipped; they never end the stream.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable
from datetime import datetime

from schemas import Kind
from streamer.cursor import CursorStore
from streamer.filter import MENTIONS, SKIP, FrameFilter
from streamer.frames import Envelope, FrameError, decode_envelope, peek_seq
from streamer.publish import Publisher
from streamer.records import frame_events
from streamer.source import RelaySource
from streamer.stats import StreamerStats
from streamer.tracked import StreamerState, TrackedAccounts

log = logging.getLogger(__name__)


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
        self._drop_cursor = False

    # -- hot path ---------------------------------------------------------------------------
    def handle(self, frame: bytes) -> Awaitable[None] | None:
        """Called per frame; returns a coroutine only for frames that may concern us."""
        self.stats.frames += 1
        verdict = self._classify(frame)
        if verdict == SKIP and len(frame) <= self.max_frame_bytes:
            self._last_frame = frame
            return None
        return self._candidate(frame, verdict)

    def _candidate(self, frame: bytes, verdict: int) -> Awaitable[None] | None:
        if len(frame) > self.max_frame_bytes:
            self.stats.frames_skipped["oversized"] += 1
            self._last_frame = frame
            return None
        self.stats.frames_candidate += 1
        return self._process(frame, need_records=verdict == MENTIONS)

    async def _process(self, frame: bytes, *, need_records: bool) -> None:
        try:
            env = decode_envelope(frame)
            if env.kind in ("error", "#info"):
                self._relay_message(env)
                return
            if env.kind not in ("#commit", "#identity", "#account", "#sync"):
                raise FrameError("unknown_type", env.kind)
            result = frame_events(env, self.tracked, self.state.recall, need_records=need_records)
        except FrameError as exc:
            self.stats.frames_skipped[exc.reason] += 1
            log.debug("frame skipped reason=%s", exc)
            self._last_frame = frame  # a bad frame is still consumed: its seq may be readable
            return
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

    def _relay_message(self, env: Envelope) -> None:
        name = str(env.body.get("error") or env.body.get("name") or "unknown")
        message = env.body.get("message")
        self.stats.relay_messages[name] += 1
        if env.kind == "error":
            log.error("relay error=%s message=%r", name, message)
            if self.source is not None:
                self.source.mark_unhealthy()
            if name == "FutureCursor":
                # Our cursor is ahead of the relay (it was reset or is another relay): keep
                # asking for it would loop forever, so resume from the live tip, loudly.
                log.error("cursor %s is ahead of the relay; resuming from the live tip", self._seq)
                self._drop_cursor = True
        else:
            log.warning("relay info=%s message=%r", name, message)

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

    async def checkpoint(self) -> int | None:
        """Flush, commit memory, then save the cursor: in that order, never before."""
        seq, frame = self.position(), self._seq_frame
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
        saver = asyncio.create_task(self._checkpoint_loop(checkpoint_interval))
        try:
            await source.run(self.handle, self.resume_cursor)
        finally:
            saver.cancel()
            self.stats.reconnects = source.reconnects

    async def _checkpoint_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.checkpoint()
            if self.source is not None:
                self.stats.reconnects = self.source.reconnects


def _frame_time(frame: bytes | None) -> float | None:
    if frame is None:
        return None
    try:
        value = decode_envelope(frame).body.get("time")
        return datetime.fromisoformat(str(value)).timestamp()
    except (FrameError, ValueError):
        return None
