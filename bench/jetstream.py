"""Jetstream throughput bench: bluepulse's Jetstream client against the SDK client and a bare loop.

The real relay window, converted as production Jetstream does and looped to N events (rkeys
rewritten per loop, so every commit is a distinct record), is preloaded into a Jetstream
emulator in its own process; each client, in its own fresh process on the other CPU, reads the
same N events uncompressed from `cursor=1` on the v2 wire and is timed from its first event to
its N-th (ours: the frames its kinds + collections subscription receives of them, acked
downstream; an extra row runs it with dict-zstd). Peak RSS is the client process's own.
Targets (issue 13): ours ≥ 3× the SDK and ≥ 0.7× the bare json loop.
Run: `.venv/bin/python bench/jetstream.py [--events N] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import _common

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from streamer.source import FrameHandler

# bench/streamer.py is not importable as `streamer` (the package); load it by path and share its
# meter, result, process plumbing and tracked-set choice.
_spec = importlib.util.spec_from_file_location("bench_streamer", Path(__file__).with_name("streamer.py"))
assert _spec is not None
assert _spec.loader is not None
bs = importlib.util.module_from_spec(_spec)
sys.modules["bench_streamer"] = bs  # its ClientSpec/Result cross process boundaries by that name
_spec.loader.exec_module(bs)

V2_PATH: Final = "/xrpc/network.bsky.jetstream.subscribeEvents"


@dataclass(frozen=True, slots=True)
class JetSpec(bs.ClientSpec):  # type: ignore[misc]  # bs is loaded by path: Any to mypy
    """`wanted`: the frames our subscription (kinds + collections) receives of the N events."""

    wanted: int = 0


# -- client side ----------------------------------------------------------------------------------
async def run_bare(spec: Any) -> Any:
    """The ceiling a Python client can reach: websockets' receive loop + json.loads per frame."""
    from websockets.asyncio.client import connect

    meter = bs.Meter(spec.count)
    handler = meter.wrap(json.loads)

    async def receive() -> None:
        async with connect(f"{spec.url}{V2_PATH}?cursor=1", max_size=None, compression=None) as ws:
            async for message in ws:
                handler(message)

    worker = asyncio.create_task(receive())
    await meter.wait(worker)
    result = meter.finish()
    await bs._stop(worker)
    return result


async def run_sdk(spec: Any) -> Any:
    """atproto's AsyncJetstreamClient, uncompressed: parses every frame into its models."""
    from atproto_jetstream import AsyncJetstreamClient

    meter = bs.Meter(spec.count)
    handler = meter.wrap(lambda _message: None)

    async def on_message(message: Any) -> None:
        handler(message)

    client = AsyncJetstreamClient({"cursor": 1}, base_uri=f"{spec.url}/xrpc", compress=False)
    worker = asyncio.create_task(client.start(on_message))
    await meter.wait(worker)
    result = meter.finish()
    await client.stop()
    await bs._stop(worker)
    return result


async def run_bluepulse_client(
    url: str, n: int, tracked: Sequence[str], *, wanted: int | None = None, compress: bool = False
) -> Any:
    """bluepulse's streamer on the v2 wire, `tracked` accounts, timed from event 1 to event N.

    JetstreamSource + Streamer (inflate, raw filter, decode survivors, records, publish) into the
    in-process queue, whose consumer acks every batch: the clock stops once event N's events
    were acked (the final checkpoint flushes), as bench/streamer.py times the relay streamer.
    Our subscription asks for kinds and collections, so the server sends `wanted` (<= N) frames
    of the N events: the clock stops at the last of them and the rate is of the N events.
    """
    from schemas.accounts import Account
    from streamer.cursor import CursorStore, source_id
    from streamer.jetstream_source import JetstreamSource
    from streamer.publish import QueuePublisher
    from streamer.service import Streamer
    from streamer.tracked import StreamerState, TrackedAccounts
    from streamer.wire import JetstreamWire
    from transport.memory import EventQueue

    meter = bs.Meter(wanted or n)

    class MeteredSource(JetstreamSource):
        async def run(self, handler: FrameHandler, cursor: Callable[[], int | None]) -> None:
            await super().run(meter.wrap(handler), cursor)

    accounts = TrackedAccounts(
        Account(did, f"t{i}.bench.example", f"Bench {i}") for i, did in enumerate(tracked)
    )
    name = source_id(url)
    with tempfile.TemporaryDirectory(prefix="bluepulse-bench-") as tmp:
        state = StreamerState(Path(tmp))
        queue = EventQueue()
        wire = JetstreamWire(name, compress=compress)
        streamer = Streamer(
            accounts,
            state,
            CursorStore.for_source(Path(tmp), name),
            QueuePublisher(queue),
            wire=wire,
            start_cursor=1,  # no saved position: the whole preloaded log, from seq 1
        )
        source = MeteredSource(url, inflater=wire.inflater)
        drain = bs._Drain(queue)
        tasks = asyncio.create_task(drain.run()), asyncio.create_task(streamer.run(source))
        await meter.wait(tasks[1])
        await streamer.checkpoint()  # flushed: the consumer acked every event
        stats = streamer.stats
        counts = {
            "events": sum(stats.events.values()),
            "drained": drain.events,
            "candidates": stats.frames_candidate,
            "skipped": sum(stats.frames_skipped.values()),
            "replayed": stats.frames_replayed,
            "reconnects": source.reconnects,
        }
        result = meter.finish(counts)
        result.counts["frames"], result.frames = result.frames, n  # rate: of the stream's N events
        await bs._stop(*tasks)
        state.close()
    return result


async def run_bluepulse(spec: Any) -> Any:
    return await run_bluepulse_client(spec.url, spec.count, spec.tracked, wanted=spec.wanted)


async def run_bluepulse_zstd(spec: Any) -> Any:
    """The same, dict-zstd compressed (the default of `--jetstream`): inflation included."""
    return await run_bluepulse_client(spec.url, spec.count, spec.tracked, wanted=spec.wanted, compress=True)


CLIENTS: Final[dict[str, Callable[[Any], Coroutine[Any, Any, Any]]]] = {
    "bare": run_bare,
    "sdk": run_sdk,
    "bluepulse": run_bluepulse,
    "bluepulse-zstd": run_bluepulse_zstd,
}


def _client_main(spec: Any, conn: Connection) -> None:
    _common.pin_cpu(spec.cpu)
    try:
        conn.send(asyncio.run(CLIENTS[spec.kind](spec)))
    except BaseException:
        conn.send(traceback.format_exc())
        raise


# -- server side ----------------------------------------------------------------------------------
def looped_events(capture: str, count: int) -> list[Any]:
    """`count` converted events cycling the window; commits of loop k get rkey `<rkey>-<k>`."""
    from relay.capture import read_frames
    from relay.jetstream_convert import convert_frame

    window = [event for frame in read_frames(capture) for event in convert_frame(frame)]
    out = []
    for i in range(count):
        k, at = divmod(i, len(window))
        event = window[at]
        out.append(event if k == 0 or event.kind != "commit" else event.with_rkey(f"{event.rkey}-{k}"))
    return out


def subscribed(capture: Path, count: int) -> int:
    """How many of the `count` looped events the streamer's v2 query makes the server send."""
    from urllib.parse import parse_qs

    from relay.capture import read_frames
    from relay.jetstream_convert import convert_frame
    from relay.jetstream_wire import parse
    from streamer.jetstream_source import query

    wants = parse("v2", parse_qs(query(1, v1=False, dictionary_id=None)), None).filter.wants
    window = [event for frame in read_frames(capture) for event in convert_frame(frame)]
    passing = [wants(e.kind, e.did, e.collection, 0) for e in window]
    loops, rest = divmod(count, len(window))
    return loops * sum(passing) + sum(passing[:rest])


def _emulator_main(capture: str, count: int, cpu: int | None, conn: Connection) -> None:
    _common.pin_cpu(cpu)
    try:
        asyncio.run(_serve(capture, count, conn))
    except BaseException:
        conn.send(traceback.format_exc())
        raise


async def _serve(capture: str, count: int, conn: Connection) -> None:
    from relay.jetstream_emulator import JetstreamEmulator

    emulator = JetstreamEmulator()
    emulator.publish_converted(looped_events(capture, count))
    async with emulator:
        conn.send(emulator.port)
        await asyncio.to_thread(conn.recv)  # "stop"
        conn.send(sum(c.events_sent for c in emulator.connections))


def measure(spec: Any, capture: Path, server_cpu: int | None) -> Any:
    """One client against a fresh emulator process, each in its own process and CPU."""
    ctx = mp.get_context("spawn")
    emu_conn, emu_child = ctx.Pipe()
    emulator = ctx.Process(
        target=_emulator_main, args=(str(capture), spec.count, server_cpu, emu_child), name="emulator"
    )
    emulator.start()
    try:
        port = bs._receive(emu_conn, emulator, 300)
        spec = replace(spec, url=f"ws://127.0.0.1:{port}")
        res_conn, res_child = ctx.Pipe()
        client = ctx.Process(target=_client_main, args=(spec, res_child), name=f"client-{spec.kind}")
        client.start()
        try:
            result = bs._receive(res_conn, client, bs._timeout(spec.count) + 60)
        finally:
            bs._end(client)
        emu_conn.send("stop")
        result.sent = bs._receive(emu_conn, emulator, 30)
        return result
    finally:
        bs._end(emulator)


# -- report ---------------------------------------------------------------------------------------
LABELS: Final = {
    "bare": "bare websockets loop + json.loads",
    "sdk": "atproto SDK AsyncJetstreamClient",
    "bluepulse": "bluepulse Jetstream client, 65 tracked",
    "bluepulse-zstd": "  the same, dict-zstd (extra row)",
}


def print_table(results: dict[str, list[Any]]) -> None:
    fps = {name: statistics.median(r.fps for r in runs) for name, runs in results.items() if runs}
    print(f"{'client':<40} {'events/s':>9} {'× bare':>7} {'× SDK':>7} {'peak RSS':>9}")
    for name, value in fps.items():
        peak = max(r.peak_kb for r in results[name]) / 1024
        print(
            f"{LABELS[name]:<40} {value:>9,.0f} {value / fps['bare']:>7.2f} {value / fps['sdk']:>7.2f}"
            f" {peak:>6.1f} MB"
        )
    if "bluepulse" in fps:
        ours = fps["bluepulse"]
        print("targets:")
        print(f"  {'PASS' if ours >= 3 * fps['sdk'] else 'MISS'}  ≥ 3× SDK: {ours / fps['sdk']:.2f}×")
        print(f"  {'PASS' if ours >= 0.7 * fps['bare'] else 'MISS'}  ≥ 0.7× bare: {ours / fps['bare']:.2f}×")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000, help="events per client (default 300000)")
    parser.add_argument("--quick", action="store_true", help="30000 events per client")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client; medians are reported")
    parser.add_argument("--capture", type=Path, default=bs.CORPUS / "frames.bin.zst")
    parser.add_argument("--expected", type=Path, default=bs.CORPUS / "expected_v1.jsonl")
    args = parser.parse_args(argv)
    count = 30_000 if args.quick else args.events
    server_cpu, client_cpu = _common.cpu_pair()
    tracked, why = bs.choose_tracked(args.expected)
    print(f"input: the real window converted to Jetstream events, looped to {count:,} distinct events,")
    print(
        "preloaded in an emulator process; v2 wire, uncompressed (+ our dict-zstd row), cursor=1;"
        f" CPUs {server_cpu}/{client_cpu}"
    )
    print(f"tracked 65 = {why}")
    wanted = subscribed(args.capture, count)
    print(f"our subscription (kinds + collections) receives {wanted:,} of the {count:,} events")
    base = JetSpec("", "", count, tracked=tuple(tracked), cpu=client_cpu, wanted=wanted)
    results: dict[str, list[Any]] = {name: [] for name in CLIENTS}
    for _ in range(max(1, args.repeat)):
        for name in CLIENTS:
            results[name].append(measure(replace(base, kind=name), args.capture, server_cpu))
    sent = sorted({r.sent for runs in results.values() for r in runs})
    print(
        f"each run: the emulator sent {', '.join(f'{s:,}' for s in sent)} events; timed event 1 → {count:,}"
    )
    print_table(results)
    for name in ("bluepulse", "bluepulse-zstd"):
        c = results[name][-1].counts
        print(
            f"{name}: frames received {c['frames']:,}, candidates {c['candidates']:,}, events {c['events']:,}"
            f" (acked {c['drained']:,}), skipped {c['skipped']}, replayed {c['replayed']},"
            f" reconnects {c['reconnects']}"
        )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
