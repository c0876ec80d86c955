"""AppView backfill bench: the real `bluepulse backfill` (client, paging, DuckDB store) against the emulator.

The AppView emulator (65 accounts × 90 days by default, its default rate limit of 3000
requests / 5 min, optional latency and faults) runs in its own process on one CPU;
`bluepulse.backfill_app.main` (lock, store, getAuthorFeed paged per account until past the
start, 8 accounts at a time, one transaction per account) runs on the other CPU against a
fresh DuckDB file. Prints accounts/s, requests/s and total time, and checks the per-account
SQL totals of `top_posts` against the scenario's truth. Target (issue 14): < 30 s.
Run: `.venv/bin/python bench/backfill.py [--accounts 65] [--days 90] [--latency 0.05]`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _common

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event

TARGET_S = 30.0


def serve(args: argparse.Namespace, cpu: int | None, port_out: Connection, stop: Event) -> None:
    """The emulator's process: serve until `stop` is set; report (requests, 429s, 5xx) at the end."""
    _common.pin_cpu(cpu)
    from appview.emulator import AppViewEmulator
    from appview.scenario import Scenario

    async def main() -> None:
        scenario = Scenario(accounts=args.accounts, days=args.days)
        emulator = AppViewEmulator(scenario, latency=args.latency, fail_every=args.fail_every)
        async with emulator as av:
            port_out.send(av.port)
            await asyncio.to_thread(stop.wait)
            port_out.send((av.requests, av.throttled, av.failed))

    asyncio.run(main())


async def backfill(url: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    from aggregator.store import Store
    from appview.scenario import Scenario, build_world
    from bluepulse import backfill_app
    from bluepulse.config import BackfillConfig, resolve
    from schemas.accounts import Account, write_accounts

    world = build_world(Scenario(accounts=args.accounts, days=args.days))  # the truth, for checking
    start, end = world.scenario.start, world.scenario.end
    accounts, db = work / "accounts.csv", work / "bench.duckdb"
    write_accounts(accounts, [Account(a.did, a.handle, a.display_name) for a in world.accounts])
    flags = {"start": start.isoformat(), "end": end.isoformat(), "accounts": str(accounts)}
    config = resolve("backfill", {**flags, "db": str(db), "appview": url}, environ={})
    assert isinstance(config, BackfillConfig)
    began = time.perf_counter()
    await backfill_app.main(config)
    took = time.perf_counter() - began
    with Store.open(db) as store:
        rows = store.query(
            "SELECT did, count(*), sum(likes) FROM top_posts WHERE created_at >= ? AND created_at < ? "
            "GROUP BY did",
            [start.replace(tzinfo=None), end.replace(tzinfo=None)],
        )[1]
    got = {did: (int(n), int(likes)) for did, n, likes in rows}
    truth = {
        a.did: (len(ps), sum(p.likes for p in ps))
        for a in world.accounts
        if (ps := world.period_posts(a.did))
    }
    if got != truth:
        raise SystemExit(f"wrong backfill: {len(got)} accounts with posts vs truth {len(truth)}")
    return {"seconds": took, "accounts": len(world.accounts), "posts": sum(n for n, _ in got.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=65)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the emulator waits per answer")
    parser.add_argument("--fail-every", type=int, default=None, help="a 502 every N requests")
    args = parser.parse_args()

    server_cpu, client_cpu = _common.cpu_pair()
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    stop = ctx.Event()
    server = ctx.Process(target=serve, args=(args, server_cpu, theirs, stop), daemon=True)
    server.start()
    try:
        port = ours.recv()
        _common.pin_cpu(client_cpu)
        with tempfile.TemporaryDirectory() as work:
            result = asyncio.run(backfill(f"http://127.0.0.1:{port}", args, Path(work)))
        stop.set()
        served, throttled, failed = ours.recv()
    finally:
        stop.set()
        server.join(timeout=5)
    s = result["seconds"]
    print(
        f"bluepulse backfill {args.accounts} accounts x {args.days} days into DuckDB (latency "
        f"{args.latency * 1000:.0f} ms): {result['posts']:.0f} posts, {served} requests served "
        f"({throttled} throttled, {failed} failed) in {s:.2f} s"
    )
    print(f"  {result['accounts'] / s:.1f} accounts/s, {served / s:.1f} requests/s")
    print(f"  target < {TARGET_S:.0f} s: {'met' if s < TARGET_S else 'MISSED'} ({s / TARGET_S:.2f}x of it)")


if __name__ == "__main__":
    main()
