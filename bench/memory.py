"""Streamer memory bench: RSS stays flat over a long replay because remembered paths expire.

The real relay window, looped with rewritten seqs, goes through the streamer's own handler in
this process (no socket: what is measured is the streamer's state). Every DID the window
mentions is tracked, so each like, repost and follow is remembered. A looped window repeats
its record paths, which would only overwrite rows; the bench state tags each remembered path
with the loop number, as a live network brings new paths all the time. A fake clock advances
`--hours-per-loop` per loop and the expiry job runs as in production (`expire_memory`), with a
`--remember-days` window a few loops long. Prints RSS and remembered paths at 0/25/50/75/100 %
and, as the reference, the same replay with expiry off (paths then grow without bound; RSS
grows less, as the rows live in SQLite's file, but the table and its file grow forever).
Run: `.venv/bin/python bench/memory.py [--frames N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import _common

from relay.capture import SeqTemplate, iter_looped, read_frames
from schemas import Event
from schemas.accounts import Account
from streamer.cursor import CursorStore
from streamer.records import Memory
from streamer.service import Streamer
from streamer.tracked import StreamerState, TrackedAccounts

CAPTURE = _common.ROOT.parent / "shared/fixtures/real/jetstream-corpus/frames.bin.zst"
DID = re.compile(rb"did:plc:[a-z2-7]{24}")
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class LoopState(StreamerState):
    """Remembers each loop's paths as new ones (see the module docstring)."""

    loop = 0

    def remember(self, actor: str, path: str, memory: Memory) -> None:
        super().remember(actor, f"{path}~{self.loop}", memory)


class Discard:
    async def publish(self, events: Sequence[Event]) -> None:
        return None

    async def mark(self, seq: int, source: str = "relay") -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def replay(
    frames: list[bytes], count: int, *, expire: bool, hours_per_loop: float, remember_days: float
) -> list[tuple[int, int, int]]:
    """(percent, RSS KiB, remembered paths) at 0/25/50/75/100 % of `count` frames."""
    templates = [SeqTemplate(f) for f in frames]
    dids = sorted({m.decode() for f in frames for m in DID.findall(f)})
    clock, marks, size = Clock(), [], len(frames)
    checkpoints = {count * p // 100: p for p in (0, 25, 50, 75, 100)}
    with tempfile.TemporaryDirectory(prefix="bluepulse-bench-memory-") as tmp:
        state = LoopState(Path(tmp), clock=clock)
        tracked = TrackedAccounts([Account(d, f"h{i}.test", "", "") for i, d in enumerate(dids)])
        streamer = Streamer(tracked, state, CursorStore(Path(tmp)), Discard(), remember_days=remember_days)
        for i, frame in enumerate(iter_looped(templates, count, templates[0].seq)):
            if i in checkpoints:
                marks.append(sample(streamer, checkpoints[i]))
            if i % size == 0 and i:
                state.loop += 1
                clock.now += hours_per_loop * HOUR
                await streamer.checkpoint()
                if expire:
                    await streamer.expire_memory()
            pending = streamer.handle(frame)
            if pending is not None:
                await pending
        await streamer.checkpoint()
        marks.append(sample(streamer, 100))
        state.close()
    return marks


def sample(streamer: Streamer, percent: int) -> tuple[int, int, int]:
    gc.collect()
    return percent, _common.status_kb("VmRSS"), streamer.state.remembered_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--hours-per-loop", type=float, default=6.0)
    parser.add_argument("--remember-days", type=float, default=1.0)
    args = parser.parse_args()
    frames = read_frames(CAPTURE)
    loops = args.frames / len(frames)
    print(
        f"window {len(frames)} frames, {args.frames} frames = {loops:.0f} loops, "
        f"{args.hours_per_loop} h per loop, remember {args.remember_days} day(s)"
    )
    for expire in (True, False):
        marks = asyncio.run(
            replay(
                frames,
                args.frames,
                expire=expire,
                hours_per_loop=args.hours_per_loop,
                remember_days=args.remember_days,
            )
        )
        label = "expiry on " if expire else "expiry off"
        cells = "  ".join(f"{p}%: {kb / 1024:.1f} MiB {n} paths" for p, kb, n in marks)
        growth = (marks[-1][1] - marks[0][1]) / 1024
        print(f"{label}  {cells}  (RSS 0→100 %: {growth:+.1f} MiB)")


if __name__ == "__main__":
    main()
