"""The wire a Streamer reads: how a frame is classified, decoded and placed (relay or Jetstream).

The Streamer (streamer/service.py) keeps one code path for checkpointing, supervision,
publishing, stats and skips; a Wire is what differs between the relay's DAG-CBOR frames and
Jetstream's JSON (v2 or v1): the raw filter, the decoder, how a position and a firehose time are
read back from a frame, whether the cursor is inclusive, and whether frames arrive compressed.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from streamer.errors import FrameError, FrameReason
from streamer.filter import FrameFilter
from streamer.frames import Envelope, decode_envelope, peek_seq, raw_seq
from streamer.jetstream_decode import Inflater, decode_v1, decode_v2, peek_position, raw_position
from streamer.jetstream_filter import JetstreamFilter
from streamer.names import NameMatcher
from streamer.records import FrameResult, Recall, frame_events

RELAY: Final = "relay"
KINDS_WITH_EVENTS: Final = frozenset({"#commit", "#identity", "#account", "#sync"})
Decoded = tuple[int | None, FrameResult] | Envelope  # events at a position, or a relay message


class Wire(Protocol):
    source: str  # the source id events carry (schemas.Event.source)
    inclusive: bool  # the cursor re-sends the event it names: drop seq <= the saved one
    max_frame_bytes: int
    inflater: Inflater | None  # set: binary frames are dict-zstd

    def new_filter(
        self, tracked: Iterable[str], rememberers: Iterable[str], *, names: NameMatcher | None = None
    ) -> FrameFilter:
        """`names`: the watch terms; then a post create by anyone that names an account is a candidate."""

    def decode(
        self,
        frame: bytes,
        tracked: Container[str],
        recall: Recall,
        *,
        need_records: bool,
        names: NameMatcher | None = None,
    ) -> Decoded:
        """Raises FrameError for any frame that cannot be read."""

    def peek_seq(self, frame: bytes) -> int | None: ...

    def frame_time(self, frame: bytes | None) -> float | None: ...

    def raw_seq(self, frame: bytes) -> int | None: ...


@dataclass
class RelayWire:
    """com.atproto.sync.subscribeRepos: DAG-CBOR header + body, records in a CAR."""

    max_frame_bytes: int = 5 * 1024 * 1024
    source: str = RELAY
    inclusive: bool = False
    inflater: Inflater | None = None

    def new_filter(
        self, tracked: Iterable[str], rememberers: Iterable[str], *, names: NameMatcher | None = None
    ) -> FrameFilter:
        return FrameFilter(tracked, rememberers, names=names)

    def decode(
        self,
        frame: bytes,
        tracked: Container[str],
        recall: Recall,
        *,
        need_records: bool,
        names: NameMatcher | None = None,
    ) -> Decoded:
        env = decode_envelope(frame)
        if env.kind in ("error", "#info"):
            return env
        if env.kind not in KINDS_WITH_EVENTS:
            raise FrameError(FrameReason.UNKNOWN_TYPE, env.kind[:60])
        return env.seq, frame_events(env, tracked, recall, need_records=need_records, names=names)

    def peek_seq(self, frame: bytes) -> int | None:
        return peek_seq(frame)

    def frame_time(self, frame: bytes | None) -> float | None:
        if frame is None:
            return None
        try:
            value = decode_envelope(frame).body.get("time")
            return datetime.fromisoformat(str(value)).timestamp()
        except (FrameError, ValueError):
            return None

    def raw_seq(self, frame: bytes) -> int | None:
        return raw_seq(frame)


@dataclass
class JetstreamWire:
    """Jetstream JSON: v2 message/error frames (seq cursor) or v1 events (time_us cursor)."""

    source: str
    v1: bool = False
    compress: bool = True
    max_frame_bytes: int = 1 << 20
    inclusive: bool = True
    inflater: Inflater | None = field(default=None)

    def __post_init__(self) -> None:
        if self.compress and not self.v1 and self.inflater is None:
            self.inflater = Inflater()
        self._decode = decode_v1 if self.v1 else decode_v2

    def new_filter(
        self, tracked: Iterable[str], rememberers: Iterable[str], *, names: NameMatcher | None = None
    ) -> FrameFilter:
        return JetstreamFilter(tracked, rememberers, v1=self.v1, names=names)

    def decode(
        self,
        frame: bytes,
        tracked: Container[str],
        recall: Recall,
        *,
        need_records: bool,
        names: NameMatcher | None = None,
    ) -> Decoded:
        return self._decode(
            frame, tracked, recall, need_records=need_records, source=self.source, names=names
        )

    def peek_seq(self, frame: bytes) -> int | None:
        found = peek_position(frame, v1=self.v1)
        return found[0] if found else None

    def frame_time(self, frame: bytes | None) -> float | None:
        found = peek_position(frame, v1=self.v1)
        return found[1] if found else None

    def raw_seq(self, frame: bytes) -> int | None:
        return raw_position(frame)
