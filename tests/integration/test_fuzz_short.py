"""The CI cut of bench/fuzz.py: 20 000 mutants of the real window, 0 crashes, 0 internal skips."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import fuzz  # noqa: E402 - bench/fuzz.py, found through the path above

from relay.mutate import Sample  # noqa: E402


async def test_20000_mutated_real_frames_never_crash_the_streamer(real_frames: list[bytes]) -> None:
    samples, dids = [Sample.of(f) for f in real_frames], fuzz.window_dids(real_frames)
    report = await fuzz.play_direct(samples, dids, 20_000, seed=2026)
    assert report.crashes == 0, report.examples
    assert report.skipped["internal"] == 0
    assert report.candidates > 19_000  # nearly every mutant reached the decoders
    for reason in ("too_deep", "bad_length", "bad_cbor", "bad_car", "bad_body", "unknown_type"):
        assert report.skipped[reason] > 0, reason
    assert report.events > 0  # mutants that stay valid still yield their events


async def test_the_websocket_path_counts_the_same_skips_as_the_direct_path(real_frames: list[bytes]) -> None:
    samples, dids = [Sample.of(f) for f in real_frames], fuzz.window_dids(real_frames)
    ws = await fuzz.play_websocket(samples, dids, 2_000, seed=7)
    direct = await fuzz.play_direct(samples, dids, 2_000, seed=7)
    assert ws.crashes == 0, ws.examples
    assert ws.frames == 2_000
    assert ws.reconnects == 0
    assert (ws.skipped, ws.events) == (direct.skipped, direct.events)
