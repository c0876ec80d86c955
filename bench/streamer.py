"""Streamer throughput bench: bluepulse's streamer against the SDK client and a bare loop.

The real relay window, looped with rewritten seqs (frames keep their real MST blocks), is
preloaded into a relay emulator in its own process; each client, in its own fresh process
on the other CPU, replays the same N frames with `cursor=0` and is timed from its first frame
to its N-th (the streamer's until the queue consumer acked every event). Peak RSS is the
client process's own. Run: `.venv/bin/python bench/streamer.py [--frames N] [--quick] [--terms N]
[--stress] [--profile FILE]`;
`--terms N` adds a streamer with N watch terms per tracked account (French hospital names and
variants, one Aho-Corasick automaton: streamer/names.py) and checks it stays ≥ 0.6× the bare loop.
`--stress` adds the busy case (a viral burst): the same frames with the 65 tracked accounts chosen
among the window's most engaged DIDs (like/repost/follow subjects, reply parents and roots, quoted
authors, mentioned accounts) plus the repos whose deletes, handle and account changes the window
carries, so ~40 % of frames emit events and no record is rewritten (CAR blocks stay the relay's
own); it checks the stress streamer stays ≥ 4× the SDK client. `--profile FILE` runs that
streamer (the stress one with `--stress`) under cProfile and prints its top entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import random
import statistics
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import _common

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from streamer.source import FrameHandler
    from transport.memory import EventQueue

CORPUS: Final = _common.ROOT.parent / "shared/fixtures/real/jetstream-corpus"
SUBSCRIBE_PATH: Final = "/xrpc/com.atproto.sync.subscribeRepos"
PLC_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
TRACKED_SMALL: Final = 65
TRACKED_LARGE: Final = 100_000
AUTHORS: Final = 2  # tracked authors of the window's most liked/reposted posts
POSTERS: Final = 1  # tracked DIDs that post in the window
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ClientSpec:
    kind: str  # bare | sdk | streamer
    url: str
    count: int
    tracked: tuple[str, ...] = ()
    extra_random: int = 0
    cpu: int | None = None
    terms: int = 0  # watch terms per tracked account
    profile: str = ""  # cProfile stats file for this client process


@dataclass(slots=True)
class Result:
    frames: int
    seconds: float
    cpu_seconds: float  # the client process's CPU time over the same span
    rss_kb: dict[str, int]
    peak_kb: int
    counts: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # frames the emulator sent on this run

    @property
    def fps(self) -> float:
        return (self.frames - 1) / self.seconds

    @property
    def cpu_fps(self) -> float:
        """Frames per client CPU-second: steadier than wall time when the machine is shared."""
        return (self.frames - 1) / self.cpu_seconds


# -- client side: the meter ---------------------------------------------------------------------
class Meter:
    """Times frame 1 → frame N through a wrapper around the per-frame handler."""

    def __init__(self, count: int) -> None:
        if count < 1000:
            raise ValueError("use at least 1000 frames")
        self.count = count
        self.done = asyncio.Event()
        self.rss_kb = {"setup": _common.status_kb("VmRSS")}
        self._first = 0.0
        self._first_cpu = 0.0

    def wrap(self, handle: Callable[[T], R]) -> Callable[[T], R]:
        """The same cheap wrapper for every client: one increment and one set lookup."""
        n = 0
        marks = frozenset({1, self.count // 2, self.count})

        def timed(frame: T) -> R:
            nonlocal n
            n += 1
            if n in marks:
                self._mark(n)
            return handle(frame)

        return timed

    def _mark(self, n: int) -> None:
        if n == 1:
            self._first, self._first_cpu = time.perf_counter(), time.process_time()
            self.rss_kb["start"] = _common.status_kb("VmRSS")
        elif n == self.count // 2:
            self.rss_kb["middle"] = _common.status_kb("VmRSS")
        if n == self.count:
            self.done.set()

    async def wait(self, worker: asyncio.Task[Any]) -> None:
        """Until frame N was seen; the worker's failure (or a timeout) is raised instead."""
        done = asyncio.create_task(self.done.wait())
        limit = _timeout(self.count)
        finished, _ = await asyncio.wait({done, worker}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if done not in finished:
            done.cancel()
            if worker in finished:
                worker.result()
            raise TimeoutError(f"frame {self.count} not reached in {limit:.0f}s")

    def finish(self, counts: dict[str, int] | None = None) -> Result:
        seconds, cpu = time.perf_counter() - self._first, time.process_time() - self._first_cpu
        self.rss_kb["end"] = _common.status_kb("VmRSS")
        peak = max(_common.status_kb("VmHWM"), _common.max_rss_kb())
        return Result(self.count, seconds, cpu, self.rss_kb, peak, counts or {})


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _timeout(count: int) -> float:
    return 120 + count / 2000


# -- client side: the three clients ---------------------------------------------------------------
def _ignore(_frame: bytes) -> None:
    return None


async def run_bare(spec: ClientSpec) -> Result:
    """The ceiling: websockets' receive loop, with the streamer's connect options."""
    from websockets.asyncio.client import connect

    meter = Meter(spec.count)
    handler = meter.wrap(_ignore)

    async def receive() -> None:
        url = f"{spec.url}{SUBSCRIBE_PATH}?cursor=0"
        async with connect(url, max_size=16 * 1024 * 1024, compression=None) as ws:
            async for message in ws:
                handler(message if isinstance(message, bytes) else message.encode())

    worker = asyncio.create_task(receive())
    await meter.wait(worker)
    result = meter.finish()
    await _stop(worker)
    return result


async def run_sdk(spec: ClientSpec) -> Result:
    """atproto's AsyncFirehoseSubscribeReposClient: parse each message, CAR-decode commits."""
    from atproto import CAR, models
    from atproto_firehose import AsyncFirehoseSubscribeReposClient, parse_subscribe_repos_message

    commit_type = models.ComAtprotoSyncSubscribeRepos.Commit
    counts: Counter[str] = Counter()

    def decode(message: Any) -> None:
        try:
            commit = parse_subscribe_repos_message(message)
            if isinstance(commit, commit_type) and commit.blocks:
                CAR.from_bytes(commit.blocks)
                counts["cars"] += 1
        except Exception:  # counted: a decode error must not stop the bench
            counts["errors"] += 1

    meter = Meter(spec.count)
    handler = meter.wrap(decode)

    async def on_message(message: Any) -> None:
        handler(message)

    client = AsyncFirehoseSubscribeReposClient({"cursor": 0}, base_uri=f"{spec.url}/xrpc")
    worker = asyncio.create_task(client.start(on_message))
    await meter.wait(worker)
    result = meter.finish(dict(counts))
    await client.stop()
    await _stop(worker)
    return result


class _Drain:
    """The aggregator's side of the in-process queue: take a batch, ack it."""

    def __init__(self, queue: EventQueue) -> None:
        self.queue = queue
        self.events = 0

    async def run(self) -> None:
        while True:
            items = await self.queue.get_batch(5_000, 0.2)
            if items:
                self.events += sum(len(item) for item in items)
                await self.queue.mark_done(len(items))


async def run_streamer(spec: ClientSpec) -> Result:
    """RelaySource + Streamer (decode, filter, records, publish) + a queue consumer."""
    from schemas.accounts import Account
    from streamer.cursor import CursorStore
    from streamer.publish import QueuePublisher
    from streamer.service import Streamer
    from streamer.source import RelaySource
    from streamer.tracked import StreamerState, TrackedAccounts
    from transport.memory import EventQueue

    class MeteredSource(RelaySource):
        async def run(self, handler: FrameHandler, cursor: Callable[[], int | None]) -> None:
            await super().run(meter.wrap(handler), cursor)

    from streamer.names import NameMatcher

    dids = [*spec.tracked, *random_dids(spec.extra_random, spec.extra_random, set(spec.tracked))]
    accounts = (Account(did, f"t{i}.bench.example", f"Bench {i}") for i, did in enumerate(dids))
    tracked = TrackedAccounts(accounts)
    names = NameMatcher(hospital_terms(spec.tracked, spec.terms)) if spec.terms else None
    del dids, accounts
    with tempfile.TemporaryDirectory(prefix="bluepulse-bench-") as tmp:
        cursor = CursorStore(Path(tmp))
        cursor.save(0)  # resume from 0: replay the whole preloaded log
        state = StreamerState(Path(tmp))
        queue = EventQueue()
        streamer = Streamer(tracked, state, cursor, QueuePublisher(queue), names=names)
        meter = Meter(spec.count)
        source = MeteredSource(spec.url)
        drain = _Drain(queue)
        tasks = asyncio.create_task(drain.run()), asyncio.create_task(streamer.run(source))
        await meter.wait(tasks[1])
        await streamer.checkpoint()  # flushed: the consumer acked every event
        stats = streamer.stats
        counts = {
            "events": sum(stats.events.values()),
            "name_mentions": sum(n for (kind, _), n in stats.events.items() if kind == "name_mention"),
            "drained": drain.events,
            "candidates": stats.frames_candidate,
            "skipped": sum(stats.frames_skipped.values()),
            "reconnects": source.reconnects,
        }
        result = meter.finish(counts)
        await _stop(*tasks)
        state.close()
    return result


CLIENTS: Final[dict[str, Callable[[ClientSpec], Coroutine[Any, Any, Result]]]] = {
    "bare": run_bare,
    "sdk": run_sdk,
    "streamer": run_streamer,
}


def _client_main(spec: ClientSpec, conn: Connection) -> None:
    _common.pin_cpu(spec.cpu)
    try:
        if spec.profile:
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(asyncio.run, CLIENTS[spec.kind](spec))
            profiler.dump_stats(spec.profile)
        else:
            result = asyncio.run(CLIENTS[spec.kind](spec))
        conn.send(result)
    except BaseException:
        conn.send(traceback.format_exc())
        raise


# -- server side: the emulator process ---------------------------------------------------------
def _emulator_main(capture: str, count: int, cpu: int | None, conn: Connection) -> None:
    _common.pin_cpu(cpu)
    try:
        asyncio.run(_serve(capture, count, conn))
    except BaseException:
        conn.send(traceback.format_exc())
        raise


async def _serve(capture: str, count: int, conn: Connection) -> None:
    """Preload `count` looped frames (seqs rewritten), serve them, report frames sent."""
    from relay.capture import SeqTemplate, iter_looped, read_frames
    from relay.emulator import RelayEmulator

    templates = [SeqTemplate(frame) for frame in read_frames(capture)]
    first = templates[0].seq
    emulator = RelayEmulator(retention=count)
    for i, frame in enumerate(iter_looped(templates, count, first)):
        emulator.publish(frame, first + i)
    async with emulator:
        conn.send(emulator.port)
        await asyncio.to_thread(conn.recv)  # "stop"
        conn.send(sum(c.frames_sent for c in emulator.connections))


# -- orchestration ------------------------------------------------------------------------------
CITIES: Final = (
    "Toulouse",
    "Lille",
    "Bordeaux",
    "Nantes",
    "Rennes",
    "Montpellier",
    "Strasbourg",
    "Grenoble",
    "Nice",
    "Marseille",
    "Lyon",
    "Brest",
    "Angers",
    "Tours",
    "Dijon",
    "Besançon",
    "Reims",
    "Amiens",
    "Rouen",
    "Caen",
    "Limoges",
    "Poitiers",
    "Nîmes",
    "Saint-Étienne",
    "Clermont-Ferrand",
    "Orléans",
    "Nancy",
    "Metz",
    "Pointe-à-Pitre",
    "Fort-de-France",
    "La Réunion",
    "Guyane",
    "Ajaccio",
    "Bastia",
    "Annecy",
    "Chambéry",
    "Valence",
    "Avignon",
    "Perpignan",
    "Béziers",
    "Pau",
    "Bayonne",
    "Niort",
    "La Rochelle",
    "Le Mans",
    "Laval",
    "Vannes",
    "Lorient",
    "Quimper",
    "Saint-Brieuc",
    "Cholet",
    "Troyes",
    "Mulhouse",
    "Colmar",
    "Belfort",
    "Chalon-sur-Saône",
    "Mâcon",
    "Bourg-en-Bresse",
    "Roanne",
    "Villefranche",
    "Montauban",
    "Albi",
    "Rodez",
    "Cahors",
    "Agen",
)


def hospital_terms(dids: Sequence[str], per_account: int) -> dict[str, list[str]]:
    """`per_account` realistic watch terms for each DID: a French hospital's name and variants."""
    out: dict[str, list[str]] = {}
    for i, did in enumerate(dids):
        city = CITIES[i % len(CITIES)]
        tag = "".join(part.capitalize() for part in city.replace("-", " ").split())
        variants = [
            f"CHU de {city}",
            f"CHU {city}",
            f"#CHU{tag}",
            f"Hôpital de {city}",
            f"Centre hospitalier de {city}",
            f"CH {city}",
            f"hopital {city}",
            f"#Hopital{tag}",
            f"Hospices civils de {city}",
            f"CHR {city}",
        ]
        out[did] = [
            variants[k % len(variants)] + ("" if k < len(variants) else f" {k}") for k in range(per_account)
        ]
    return out


def random_dids(n: int, seed: int, exclude: set[str]) -> list[str]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        did = "did:plc:" + "".join(rng.choices(PLC_ALPHABET, k=24))
        if did not in exclude:
            out[did] = None
    return list(out)


def choose_tracked(expected: Path, authors: int = AUTHORS, posters: int = POSTERS) -> tuple[list[str], str]:
    """Authors of the most liked/reposted posts, some posting DIDs, the rest absent."""
    liked: Counter[str] = Counter()
    committers: dict[str, None] = {}
    for line in expected.read_text().splitlines():
        event = json.loads(line)
        commit = event.get("commit") or {}
        subject = (commit.get("record") or {}).get("subject")
        if commit.get("collection") in ("app.bsky.feed.like", "app.bsky.feed.repost"):
            uri = subject.get("uri", "") if isinstance(subject, dict) else ""
            liked[uri.removeprefix("at://").split("/")[0]] += 1
        elif commit.get("collection") == "app.bsky.feed.post" and commit.get("operation") == "create":
            committers[event["did"]] = None
    top = [did for did, _ in sorted(liked.items(), key=lambda kv: (-kv[1], kv[0]))[:authors]]
    chosen = top + [did for did in committers if did not in top][:posters]
    absent = TRACKED_SMALL - len(chosen)
    chosen += random_dids(absent, TRACKED_SMALL, set(chosen))
    why = (
        f"{len(top)} most liked/reposted authors + {posters} posting DID(s) + {absent} absent from the window"
    )
    return chosen, why


def _uri_did(uri: object) -> str | None:
    if not isinstance(uri, str) or not uri.startswith("at://did:"):
        return None
    return uri.removeprefix("at://").split("/")[0]


def _engaged(record: dict[str, Any], collection: str) -> list[str | None]:
    """The DIDs a record engages: subject, follow subject, reply parent/root, quote, mentions."""
    if collection == "app.bsky.graph.follow":
        return [record.get("subject") if isinstance(record.get("subject"), str) else None]
    if collection in ("app.bsky.feed.like", "app.bsky.feed.repost"):
        subject = record.get("subject")
        return [_uri_did(subject.get("uri")) if isinstance(subject, dict) else None]
    if collection != "app.bsky.feed.post":
        return []
    out: list[str | None] = []
    reply = record.get("reply")
    if isinstance(reply, dict):
        out += [_uri_did((reply.get(k) or {}).get("uri")) for k in ("parent", "root")]
    embed = record.get("embed") or {}
    quoted = embed.get("record") or {}
    out.append(_uri_did((quoted.get("record") or quoted).get("uri")))
    for facet in record.get("facets") or []:
        for feature in facet.get("features") or []:
            if feature.get("$type") == "app.bsky.richtext.facet#mention":
                out.append(feature.get("did"))
    return out


def choose_stress(expected: Path, total: int = TRACKED_SMALL) -> tuple[list[str], str]:
    """A viral burst: `total` tracked DIDs that the window's frames engage the most.

    First the repos of the window's deletes, #identity and #account (so those kinds emit), then
    the most engaged DIDs (ties in window order). No frame is rewritten: the relay's own CAR
    blocks are replayed. Returns the DIDs and the share of the window's frames that concern them.
    """
    frames: list[tuple[str, list[str]]] = []  # (repo, engaged DIDs) per frame
    by_repo: dict[str, None] = {}
    engaged: Counter[str] = Counter()
    order: dict[str, int] = {}
    for line in expected.read_text().splitlines():
        event = json.loads(line)
        did, commit = event["did"], event.get("commit") or {}
        if event.get("kind") in ("identity", "account") or commit.get("operation") == "delete":
            by_repo[did] = None
        dids = [
            d
            for d in _engaged(commit.get("record") or {}, commit.get("collection", ""))
            if isinstance(d, str) and d.startswith("did:") and d != did
        ]
        for d in dids:
            engaged[d] += 1
            order.setdefault(d, len(order))
        frames.append((did, dids))
    chosen = list(by_repo)[:total]
    ranked = sorted(engaged, key=lambda d: (-engaged[d], order[d]))
    chosen += [d for d in ranked if d not in by_repo][: total - len(chosen)]
    tracked = set(chosen)
    hit = sum(1 for repo, dids in frames if repo in tracked or tracked.intersection(dids))
    why = (
        f"{len(by_repo)} repos with deletes/#identity/#account + {len(chosen) - len(by_repo)} most engaged"
        f" DIDs: {hit} of {len(frames)} window events ({100 * hit / len(frames):.0f} %) concern them"
    )
    return chosen, why


def _receive(conn: Connection, proc: BaseProcess, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not conn.poll(1.0):
        if not proc.is_alive():
            raise RuntimeError(f"{proc.name} exited with code {proc.exitcode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name}: no answer in {timeout:.0f}s")
    value = conn.recv()
    if isinstance(value, str):  # a traceback
        raise RuntimeError(f"{proc.name} failed:\n{value}")
    return value


def _end(proc: BaseProcess) -> None:
    proc.join(10)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)


def measure(spec: ClientSpec, capture: Path, server_cpu: int | None) -> Result:
    """One client against a fresh emulator process, each in its own process and CPU."""
    ctx = mp.get_context("spawn")
    emu_conn, emu_child = ctx.Pipe()
    emulator = ctx.Process(
        target=_emulator_main, args=(str(capture), spec.count, server_cpu, emu_child), name="emulator"
    )
    emulator.start()
    try:
        port = _receive(emu_conn, emulator, 300)
        spec = replace(spec, url=f"ws://127.0.0.1:{port}")
        res_conn, res_child = ctx.Pipe()
        client = ctx.Process(target=_client_main, args=(spec, res_child), name=f"client-{spec.kind}")
        client.start()
        try:
            result: Result = _receive(res_conn, client, _timeout(spec.count) + 60)
        finally:
            _end(client)
        emu_conn.send("stop")
        result.sent = _receive(emu_conn, emulator, 30)
        return result
    finally:
        _end(emulator)


# -- report -------------------------------------------------------------------------------------
LABELS: Final = {
    "bare": "bare websockets receive loop",
    "sdk": "atproto SDK client (parse + CAR decode)",
    "streamer65": "bluepulse streamer, 65 tracked",
    "streamer100k": "bluepulse streamer, 100,000 tracked",
    "streamer65terms": "bluepulse streamer, 65 tracked + terms",
    "stress65": "bluepulse streamer, stress (65 engaged)",
}


def _mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def _check(label: str, ok: bool, detail: str) -> None:
    print(f"  {'PASS' if ok else 'FAIL'}  {label}: {detail}")


# issue 17's targets, printed next to the ratios of the same run: (row, reference, ratio)
TARGETS: Final = {"streamer65": ("bare", 0.75), "stress65": ("sdk", 4.0)}


def print_table(results: dict[str, list[Result]]) -> dict[str, float]:
    fps = {name: statistics.median(r.fps for r in runs) for name, runs in results.items()}
    print(f"{'client':<40} {'frames/s':>9} {'× bare':>7} {'× SDK':>7} {'frames/CPU-s':>13}")
    for name, value in fps.items():
        runs = results[name]
        cpu = statistics.median(r.cpu_fps for r in runs)
        spread = (
            f"  runs {min(r.fps for r in runs):,.0f}–{max(r.fps for r in runs):,.0f}" if len(runs) > 1 else ""
        )
        line = f"{LABELS[name]:<40} {value:>9,.0f} {value / fps['bare']:>7.2f} {value / fps['sdk']:>7.2f}"
        target = ""
        if name in TARGETS:
            ref, ratio = TARGETS[name]
            verdict = "PASS" if value >= ratio * fps[ref] else "FAIL"
            target = f"  target ≥ {ratio:g}× {'SDK' if ref == 'sdk' else ref}: {verdict}"
        print(f"{line} {cpu:>13,.0f}{spread}{target}")
    return fps


def print_counts(results: dict[str, list[Result]]) -> None:
    for name in ("streamer65", "streamer100k", "streamer65terms", "stress65"):
        if name not in results:
            continue
        last = results[name][-1]
        c = last.counts
        share = 100 * c["candidates"] / last.frames
        print(
            f"{LABELS[name]}: candidate frames {c['candidates']:,} ({share:.1f} %), events {c['events']:,}"
            f" (name mentions {c['name_mentions']:,}, acked {c['drained']:,}), skipped {c['skipped']},"
            f" reconnects {c['reconnects']}, peak RSS {_mb(last.peak_kb)}"
        )
    sdk = results["sdk"][-1].counts
    print(f"atproto SDK: CARs decoded {sdk.get('cars', 0):,}, decode errors {sdk.get('errors', 0)}")


def print_targets(results: dict[str, list[Result]], fps: dict[str, float]) -> None:
    small, large, sdk, bare = fps["streamer65"], fps["streamer100k"], fps["sdk"], fps["bare"]
    print("targets:")
    _check("streamer(65) ≥ 4× SDK", small >= 4 * sdk, f"{small / sdk:.2f}×")
    _check("streamer(65) ≥ 0.75× bare", small >= 0.75 * bare, f"{small / bare:.2f}×")
    if "streamer65terms" in fps:
        terms = fps["streamer65terms"]
        _check(
            "streamer(65, watch terms) ≥ 0.6× bare",
            terms >= 0.6 * bare,
            f"{terms / bare:.2f}× ({100 * (1 - terms / small):+.1f} % vs without terms)",
        )
    if "stress65" in fps:
        stress = fps["stress65"]
        _check(
            "stress streamer(65 engaged) ≥ 4× SDK",
            stress >= 4 * sdk,
            f"{stress / sdk:.2f}× ({stress / bare:.2f}× bare, {stress / small:.2f}× the realistic streamer)",
        )
    slower = 1 - large / small
    _check("streamer(100k) within 20 % of streamer(65)", slower < 0.2, f"{100 * slower:+.1f} % slower")
    peak = max(r.peak_kb for r in results["streamer100k"])
    _check("peak RSS, 100k tracked < 150 MB", peak < 150 * 1024, f"{_mb(peak)} (VmHWM / ru_maxrss)")
    rss = results["streamer100k"][-1].rss_kb
    growth = rss["end"] - rss["middle"]
    _check(
        "RSS flat, 100k tracked (middle→end < 5 MB)",
        growth < 5 * 1024,
        f"setup {_mb(rss['setup'])}, start {_mb(rss['start'])}, middle {_mb(rss['middle'])}, "
        f"end {_mb(rss['end'])}",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per client (default 200000)")
    parser.add_argument("--quick", action="store_true", help="30000 frames per client")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client; medians are reported")
    parser.add_argument("--authors", type=int, default=AUTHORS, help="most liked/reposted authors tracked")
    parser.add_argument("--posters", type=int, default=POSTERS, help="posting DIDs of the window tracked")
    parser.add_argument(
        "--terms", type=int, default=0, help="also run the 65-account streamer with N watch terms per account"
    )
    parser.add_argument(
        "--stress", action="store_true", help="also run the busy case: 65 tracked among the most engaged DIDs"
    )
    parser.add_argument(
        "--profile", type=Path, help="cProfile the 65-account streamer (the stress one with --stress) to FILE"
    )
    parser.add_argument("--top", type=int, default=25, help="profile entries printed (by own time)")
    parser.add_argument("--capture", type=Path, default=CORPUS / "frames.bin.zst")
    parser.add_argument("--expected", type=Path, default=CORPUS / "expected_v1.jsonl")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    count = 30_000 if args.quick else args.frames
    server_cpu, client_cpu = _common.cpu_pair()
    tracked, why = choose_tracked(args.expected, args.authors, args.posters)
    from relay.capture import read_frames

    window = read_frames(args.capture)
    print(
        f"input: the real window ({len(window)} frames, avg {sum(map(len, window)) / len(window):,.0f} B) "
        f"looped to {count:,} frames with rewritten seqs, preloaded in a relay emulator process"
    )
    print(f"CPUs: emulator {server_cpu}, client {client_cpu} (each client in a fresh process, cursor=0)")
    print(f"tracked 65 = {why}; 100k = those 65 + {TRACKED_LARGE - TRACKED_SMALL:,} random did:plc")
    base = ClientSpec("", "", count, cpu=client_cpu)
    specs = {
        "bare": replace(base, kind="bare"),
        "sdk": replace(base, kind="sdk"),
        "streamer65": replace(base, kind="streamer", tracked=tuple(tracked)),
        "streamer100k": replace(
            base, kind="streamer", tracked=tuple(tracked), extra_random=TRACKED_LARGE - TRACKED_SMALL
        ),
    }
    if args.terms:
        specs["streamer65terms"] = replace(specs["streamer65"], terms=args.terms)
        LABELS["streamer65terms"] = f"bluepulse streamer, 65 tracked × {args.terms} terms"
        print(
            f"watch terms: {TRACKED_SMALL} × {args.terms} = {TRACKED_SMALL * args.terms}"
            " (French hospital names and variants)"
        )
    if args.stress:
        stress, why_stress = choose_stress(args.expected)
        specs["stress65"] = replace(base, kind="streamer", tracked=tuple(stress))
        print(f"stress 65 = {why_stress}")
    if args.profile:
        profiled = "stress65" if args.stress else "streamer65"
        specs[profiled] = replace(specs[profiled], profile=str(args.profile))
    results: dict[str, list[Result]] = {name: [] for name in specs}
    for _ in range(max(1, args.repeat)):
        for name, spec in specs.items():
            results[name].append(measure(spec, args.capture, server_cpu))
    sent = sorted({r.sent for runs in results.values() for r in runs})
    print(
        f"each run: the emulator sent {', '.join(f'{s:,}' for s in sent)} frames; timed frame 1 → {count:,}"
    )
    fps = print_table(results)
    print_counts(results)
    print_targets(results, fps)
    if args.profile:
        import pstats

        print(f"cProfile of {LABELS[profiled]} (slower under the profiler), top {args.top} by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
