"""Fuzz bench: hostile frames mutated from the real window, through the streamer's decoders.

Every DID of the real window is tracked, so most mutants pass the filter and reach the frame,
CAR and record decoders. `--frames` mutants (default 10^6) go straight through
`Streamer.handle`; a sample (`--ws-frames`) goes through the real websocket path (relay
emulator → RelaySource → Streamer) and must end with the same counts. A crash is any exception
out of `handle`, its coroutine or a checkpoint; `internal` skips are bugs the service's last
safety net caught. Both must be 0. Run: `.venv/bin/python bench/fuzz.py [--frames N] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import _common

from bluepulse.logs import setup_logging
from relay.capture import read_frames
from relay.emulator import RelayEmulator
from relay.mutate import Sample
from relay.mutations import mutants
from schemas import Event
from schemas.accounts import Account
from streamer.cursor import CursorStore
from streamer.filter import DID_TOKEN
from streamer.service import Streamer
from streamer.source import RelaySource
from streamer.tracked import StreamerState, TrackedAccounts
from transport.backoff import Backoff

CAPTURE: Final = _common.ROOT.parent / "shared/fixtures/real/jetstream-corpus/frames.bin.zst"
CHECKPOINT_EVERY: Final = 5_000
HUGE_EVERY: Final = 20_000  # a frame past the 5 MiB limit now and then (each costs ~5 MB to build)


@dataclass(slots=True)
class FuzzReport:
    frames: int = 0
    seconds: float = 0.0
    crashes: int = 0
    examples: list[str] = field(default_factory=list)
    mutations: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    ops_skipped: Counter[str] = field(default_factory=Counter)
    candidates: int = 0
    events: int = 0
    reconnects: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def crash(self, what: str, exc: BaseException) -> None:
        self.crashes += 1
        if len(self.examples) < 5:
            self.examples.append(f"{what}: {type(exc).__name__}: {str(exc)[:160]}")

    def take(self, streamer: Streamer, publisher: CountingPublisher) -> None:
        stats = streamer.stats
        self.skipped, self.ops_skipped = Counter(stats.frames_skipped), Counter(stats.ops_skipped)
        self.candidates, self.events = stats.frames_candidate, publisher.events


class CountingPublisher:
    """Counts events and drops them: a million frames' events would not fit in memory."""

    def __init__(self) -> None:
        self.events = 0

    async def publish(self, events: Sequence[Event]) -> None:
        self.events += len(events)

    async def mark(self, seq: int, source: str = "relay") -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def window_dids(frames: Sequence[bytes]) -> list[str]:
    """Every DID the real window mentions: tracking them all sends most mutants to the decoders."""
    return sorted({did.decode() for frame in frames for did in DID_TOKEN.findall(frame)})


def make_streamer(state_dir: Path, dids: Sequence[str]) -> tuple[Streamer, CountingPublisher]:
    accounts = (Account(did, f"t{i}.fuzz.example", f"Fuzz {i}") for i, did in enumerate(dids))
    cursor = CursorStore(state_dir)
    cursor.save(0)
    publisher = CountingPublisher()
    return Streamer(TrackedAccounts(accounts), StreamerState(state_dir), cursor, publisher), publisher


async def play_direct(samples: Sequence[Sample], dids: Sequence[str], count: int, seed: int) -> FuzzReport:
    """`count` mutants through Streamer.handle, with a checkpoint every few thousand frames."""
    report = FuzzReport()
    next_mutant = mutants(samples, random.Random(seed), huge_every=HUGE_EVERY)
    with tempfile.TemporaryDirectory(prefix="bluepulse-fuzz-") as tmp:
        streamer, publisher = make_streamer(Path(tmp), dids)
        handle = streamer.handle
        start = time.perf_counter()
        for i in range(1, count + 1):
            name, frame = next_mutant()
            report.mutations[name] += 1
            try:
                pending = handle(frame)
                if pending is not None:
                    await pending
            except Exception as exc:  # a crash: what this bench exists to find
                report.crash(name, exc)
            if i % CHECKPOINT_EVERY == 0:
                await _checkpoint(streamer, report)
        await _checkpoint(streamer, report)
        report.seconds, report.frames = time.perf_counter() - start, count
        report.take(streamer, publisher)
        streamer.state.close()
    return report


async def _checkpoint(streamer: Streamer, report: FuzzReport) -> None:
    try:
        await streamer.checkpoint()  # reads the seq of the last (hostile) frame
    except Exception as exc:
        report.crash("checkpoint", exc)


async def play_websocket(samples: Sequence[Sample], dids: Sequence[str], count: int, seed: int) -> FuzzReport:
    """The first `count` mutants of `seed` through the relay emulator and a real websocket."""
    report = FuzzReport()
    next_mutant = mutants(samples, random.Random(seed), huge_every=HUGE_EVERY)
    async with RelayEmulator(retention=count + 1) as relay:
        for seq in range(1, count + 1):
            name, frame = next_mutant()
            report.mutations[name] += 1
            relay.publish(frame, seq)
        with tempfile.TemporaryDirectory(prefix="bluepulse-fuzz-ws-") as tmp:
            streamer, publisher = make_streamer(Path(tmp), dids)
            source = RelaySource(relay.url, receive_timeout=30, backoff=Backoff(initial=0.05, maximum=0.5))
            start = time.perf_counter()
            task = asyncio.create_task(streamer.run(source, checkpoint_interval=0.2))
            while streamer.stats.frames < count and not task.done():  # noqa: ASYNC110 - polls a counter
                await asyncio.sleep(0.01)
            report.seconds, report.frames = time.perf_counter() - start, streamer.stats.frames
            await _stop(task, report)
            report.reconnects = source.reconnects
            report.take(streamer, publisher)
            streamer.state.close()
    return report


async def _stop(task: asyncio.Task[None], report: FuzzReport) -> None:
    if task.done():  # the streamer ended on its own: that is a crash
        exc = task.exception()
        report.crash("streamer.run", exc or RuntimeError("the streamer returned"))
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counter.most_common()) or "none"


def print_report(title: str, report: FuzzReport) -> None:
    print(f"{title}: {report.frames:,} frames in {report.seconds:.1f} s = {report.fps:,.0f} frames/s")
    print(f"  mutations: {_counts(report.mutations)}")
    print(f"  candidates (decoded) {report.candidates:,}, events emitted {report.events:,}")
    print(f"  frames skipped by reason: {_counts(report.skipped)}")
    print(f"  ops skipped by reason: {_counts(report.ops_skipped)}")
    if report.reconnects:
        print(f"  reconnects: {report.reconnects}")
    print(
        f"  crashes: {report.crashes}, internal skips (bugs caught by the safety net): "
        f"{report.skipped['internal']}"
    )
    for example in report.examples:
        print(f"    {example}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="mutants through Streamer.handle")
    parser.add_argument("--ws-frames", type=int, default=20_000, help="mutants through the websocket path")
    parser.add_argument("--quick", action="store_true", help="50000 direct, 5000 over the websocket")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--capture", type=Path, default=CAPTURE)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    frames = read_frames(args.capture)
    samples, dids = [Sample.of(frame) for frame in frames], window_dids(frames)
    direct_count, ws_count = (50_000, 5_000) if args.quick else (args.frames, args.ws_frames)
    print(
        f"input: {len(frames)} real frames mutated (seed {args.seed}); {len(dids)} DIDs of the window tracked"
    )
    direct = await play_direct(samples, dids, direct_count, args.seed)
    print_report("direct (Streamer.handle)", direct)
    ws = await play_websocket(samples, dids, ws_count, args.seed)
    print_report("websocket (relay emulator → RelaySource → Streamer)", ws)
    same = await play_direct(samples, dids, ws_count, args.seed)
    agree = (same.skipped, same.events) == (ws.skipped, ws.events) and ws.frames == ws_count
    verdict = "yes" if agree else "NO"
    print(f"websocket sample matches the direct path on the same {ws_count:,} mutants: {verdict}")
    crashes = direct.crashes + ws.crashes + same.crashes
    internal = direct.skipped["internal"] + ws.skipped["internal"]
    print(f"total: {direct.frames + ws.frames:,} hostile frames, crashes {crashes}, internal {internal}")
    return 0 if crashes == 0 and internal == 0 and agree else 1


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging("ERROR")  # rate-limited: hostile relay error frames would flood the output
    logging.getLogger("relay").setLevel(logging.CRITICAL)
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
