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

`--hour` replays a 1-hour-equivalent stream instead: the real firehose carries ~2 000 events/s,
so one hour is 7.2 M events; the window carries 152 events in 150 frames, so the hour is
7.2 M × 150/152 ≈ 7.1 M frames (≈ 47 400 loops) at ≈ 1 974 frames/s, and the fake clock
advances 1/1 974 s per frame. Production timings and defaults: a checkpoint each second of
that clock (`Streamer.run`'s), the expiry job each `expiry_interval` (1 h), `remember_days` 90,
`gc.freeze()` after start-up as `Streamer.run` does; paths are still tagged per loop. Two runs,
each in its own fresh process (its RSS is the streamer's alone, no socket): the 65 tracked
accounts of `bench/streamer.py` (the window's 2 most liked/reposted authors, 1 posting DID, 62
absent) and the same 65 + 99 935 random DIDs (100 000). Prints RSS (VmRSS) and peak (VmHWM) at
0/10/…/100 % and PASS/MISS for "RSS flat ± 10 % after warm-up" (every sample from 10 % on, and
the final peak, within ± 10 % of the 10 % sample) and "streamer < 150 MB with 100k tracked"
(peak RSS of that process). `--hour-fraction F` replays F of the hour (a quick look);
`--fresh-dids` rewrites every untracked `did:plc` of each loop into a new one (same length, the
loop number in its last 5 characters; tracked DIDs untouched), as a live network brings new
accounts all the time: a per-DID cache in the streamer would then grow with the hour.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import multiprocessing as mp
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import _common

from relay.capture import SeqTemplate, iter_looped, read_frames
from schemas import Event
from schemas.accounts import Account
from streamer.cursor import CursorStore
from streamer.records import Memory
from streamer.service import Streamer
from streamer.tracked import StreamerState, TrackedAccounts

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

_spec = importlib.util.spec_from_file_location("bench_streamer", Path(__file__).with_name("streamer.py"))
assert _spec is not None
assert _spec.loader is not None
bs = importlib.util.module_from_spec(_spec)
sys.modules["bench_streamer"] = bs
_spec.loader.exec_module(bs)

CAPTURE = _common.ROOT.parent / "shared/fixtures/real/jetstream-corpus/frames.bin.zst"
DID = re.compile(rb"did:plc:[a-z2-7]{24}")
HOUR = 3600.0
EVENTS_PER_SECOND: Final = 2_000  # the real firehose, sustained
WINDOW_EVENTS: Final = 152  # v1 events in the window's 150 frames (manifest.json)
HOUR_MARKS: Final = tuple(range(0, 101, 10))
FLAT: Final = 0.10
STREAMER_MB: Final = 150


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


PLC: Final = b"abcdefghijklmnopqrstuvwxyz234567"


def fresh(loop: int, tracked: frozenset[bytes]) -> Callable[[re.Match[bytes]], bytes]:
    """Rewrites an untracked DID into this loop's new one (same length: the frame stays valid CBOR)."""
    tail = bytes(PLC[(loop >> (5 * k)) & 31] for k in range(5))

    def sub(match: re.Match[bytes]) -> bytes:
        did = match[0]
        return did if did in tracked else did[:-5] + tail

    return sub


async def replay_hour(
    frames: list[bytes], count: int, dids: list[str], *, fresh_dids: bool
) -> tuple[list[tuple[int, int, int, int]], int]:
    """(percent, RSS KiB, peak KiB, remembered paths) at 0/10/…/100 % of `count` frames, and the
    number of events emitted."""
    frame_rate = EVENTS_PER_SECOND * len(frames) / WINDOW_EVENTS
    templates = [SeqTemplate(f) for f in frames]
    clock, marks, size = Clock(), [], len(frames)
    checkpoints = {count * p // 100: p for p in HOUR_MARKS}
    per_second = max(1, round(frame_rate))
    with tempfile.TemporaryDirectory(prefix="bluepulse-bench-memory-") as tmp:
        state = LoopState(Path(tmp), clock=clock)
        tracked = TrackedAccounts(Account(d, f"t{i}.bench.example", f"Bench {i}") for i, d in enumerate(dids))
        wanted = set(dids)
        del dids
        keep = frozenset(m for f in frames for m in DID.findall(f) if m.decode() in wanted)
        del wanted
        sub = fresh(0, keep)
        streamer = Streamer(tracked, state, CursorStore(Path(tmp)), Discard())
        gc.collect()
        gc.freeze()  # as Streamer.run does after start-up
        next_expiry = clock.now + streamer.expiry_interval
        for i, looped in enumerate(iter_looped(templates, count, templates[0].seq)):
            if i in checkpoints:
                marks.append(sample_hour(streamer, checkpoints[i]))
            if i % size == 0 and i:
                state.loop += 1
                sub = fresh(state.loop, keep)
            frame = DID.sub(sub, looped) if fresh_dids else looped
            if i % per_second == 0 and i:
                clock.now += per_second / frame_rate
                await streamer.checkpoint()
                if clock.now >= next_expiry:
                    next_expiry += streamer.expiry_interval
                    await streamer.expire_memory()
            pending = streamer.handle(frame)
            if pending is not None:
                await pending
        await streamer.checkpoint()
        await streamer.expire_memory()
        marks.append(sample_hour(streamer, 100))
        events = sum(streamer.stats.events.values())
        state.close()
    return marks, events


def sample_hour(streamer: Streamer, percent: int) -> tuple[int, int, int, int]:
    gc.collect()
    rss, peak = _common.status_kb("VmRSS"), _common.status_kb("VmHWM")
    return percent, rss, peak, streamer.state.remembered_count()


def _hour_main(count: int, extra: int, fresh_dids: bool, conn: Connection) -> None:
    frames = read_frames(CAPTURE)
    chosen, _ = bs.choose_tracked(bs.CORPUS / "expected_v1.jsonl")
    dids = [*chosen, *bs.random_dids(extra, extra, set(chosen))]
    del chosen
    conn.send(asyncio.run(replay_hour(frames, count, dids, fresh_dids=fresh_dids)))


def hour(fraction: float, fresh_dids: bool) -> None:
    frames = read_frames(CAPTURE)
    events = round(EVENTS_PER_SECOND * HOUR * fraction)
    count = events * len(frames) // WINDOW_EVENTS
    rate = EVENTS_PER_SECOND * len(frames) / WINDOW_EVENTS
    print(
        f"1-hour-equivalent replay × {fraction:g}: {events:,} events = {count:,} frames "
        f"({count / len(frames):,.0f} loops of the {len(frames)}-frame window) at {rate:,.0f} frames/s "
        f"of fake clock ({count / rate / HOUR * 60:.1f} min); checkpoint each second, expiry each hour, "
        "remember 90 days" + ("; untracked DIDs new each loop" if fresh_dids else "")
    )
    ctx = mp.get_context("spawn")
    runs = {"65 tracked": 0, "100k tracked": bs.TRACKED_LARGE - bs.TRACKED_SMALL}
    procs = {}
    for label, extra in runs.items():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_hour_main, args=(count, extra, fresh_dids, child), name=f"memory-{label}")
        proc.start()
        procs[label] = proc, parent
    results: dict[str, list[tuple[int, int, int, int]]] = {}
    emitted: dict[str, int] = {}
    for label, (proc, parent) in procs.items():
        results[label], emitted[label] = parent.recv()
        proc.join()
    for label, marks in results.items():
        print(f"{label}: {emitted[label]:,} events emitted")
        for p, rss, peak, n in marks:
            print(f"  {p:3d} %  RSS {rss / 1024:6.1f} MiB  peak {peak / 1024:6.1f} MiB  {n:,} paths")
    for label, marks in results.items():
        base = next(rss for p, rss, _, _ in marks if p == 10)
        after = [rss for p, rss, _, _ in marks if p >= 10] + [marks[-1][2]]
        low, high = min(after) / base - 1, max(after) / base - 1
        ok = low >= -FLAT and high <= FLAT
        print(
            f"{'PASS' if ok else 'MISS'}  {label}: RSS flat ± {FLAT:.0%} after warm-up (10 %): "
            f"{low:+.1%} … {high:+.1%} of {base / 1024:.1f} MiB (final peak included)"
        )
    large = results["100k tracked"][-1][2] / 1024
    ok = large < STREAMER_MB
    print(f"{'PASS' if ok else 'MISS'}  streamer < {STREAMER_MB} MB with 100k tracked: peak {large:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--hour", action="store_true", help="the 1-hour-equivalent replay (see above)")
    parser.add_argument("--hour-fraction", type=float, default=1.0)
    parser.add_argument("--fresh-dids", action="store_true", help="untracked DIDs new each loop (--hour)")
    parser.add_argument("--hours-per-loop", type=float, default=6.0)
    parser.add_argument("--remember-days", type=float, default=1.0)
    args = parser.parse_args()
    if args.hour:
        hour(args.hour_fraction, args.fresh_dids)
        return
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
