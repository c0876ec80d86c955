"""The emulator's in-memory event log: frames in publish order, bounded retention.

Connections read it by absolute index, so a replay that catches up with live
publishing never skips or repeats a frame. Seqs must increase, like a relay's;
frames without a seq (raw/malformed) sit between two seqs.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right


class Signal:
    """Wake every waiter at once; cheap to fire when nobody waits."""

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def fire(self) -> None:
        """Resume all current waiters."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Sleep until the next `fire` (cancelling one waiter leaves the others)."""
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._waiter)


class FrameLog:
    """Append-only frames with absolute indexes; the oldest are trimmed past `retention`.

    Search keys are 2*seq for a frame with a seq and 2*previous_seq+1 for a raw
    frame, so `cursor=N` (key 2N) replays a raw frame published after seq N
    and skips one published before it.
    """

    def __init__(self, retention: int) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.retention = retention
        self.frames: list[bytes] = []
        self.keys: list[int] = []
        self.base = 0  # absolute index of frames[0]
        self.last_seq: int | None = None
        self.news = Signal()  # fired on every append
        self._slack = max(64, retention // 8)  # trim in chunks: amortised O(1)

    @property
    def end(self) -> int:
        """Absolute index one past the newest frame."""
        return self.base + len(self.frames)

    @property
    def start(self) -> int:
        """Absolute index of the oldest retained frame."""
        return max(self.base, self.end - self.retention)

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, frame: bytes, seq: int | None) -> int:
        """Add a frame (seq None = raw); returns its absolute index."""
        if seq is None:
            key = 2 * (self.last_seq or 0) + 1
        else:
            if self.last_seq is not None and seq <= self.last_seq:
                raise ValueError(f"seq {seq} does not follow {self.last_seq}")
            self.last_seq = seq
            key = 2 * seq
        self.frames.append(frame)
        self.keys.append(key)
        if len(self.frames) > self.retention + self._slack:
            cut = len(self.frames) - self.retention
            del self.frames[:cut]
            del self.keys[:cut]
            self.base += cut
        self.news.fire()
        return self.end - 1

    def slice(self, lo: int, hi: int) -> list[bytes]:
        """Frames at absolute indexes [lo, hi) (a copy of references)."""
        return self.frames[lo - self.base : hi - self.base]

    def seq_before(self, index: int) -> int | None:
        """Seq of the frame at `index - 1` (or the one a raw frame follows)."""
        if index - 1 < self.base or index - 1 >= self.end:
            return self.last_seq
        return self.keys[index - 1 - self.base] // 2

    def oldest_seq(self) -> int | None:
        """Seq of the oldest retained frame that has one."""
        for key in self.keys[self.start - self.base :]:
            if key % 2 == 0:
                return key // 2
        return None

    def seek(self, cursor: int) -> int:
        """Absolute index of the first retained frame after `cursor`."""
        lo = self.start - self.base
        return self.base + bisect_right(self.keys, 2 * cursor, lo=lo)
