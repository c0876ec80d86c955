"""The barometer report's speed: a quarter of 65 accounts (~1 300 posts) and a year of 10 000.

Each case generates its store first (tests/support/barometer_quarter.py, through the store's
own API; not timed), then times `bluepulse report` in a child process, as a user runs it:
reading the store, the figures, four charts (SVG + PNG), the page and the CSV files. Targets
(issue 15): < 2 s and < 60 s. Peak RSS is the child's.

    .venv/bin/python bench/report.py [--big-accounts 10000] [--skip-big]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project root on sys.path)

from tests.support.barometer_quarter import generate_quarter, write_store
from tests.support.processes import bluepulse_argv, clean_env

CHUNK = 500  # accounts generated and applied at a time (each its own partition: seqs restart)


def build(db: Path, accounts: int, days: int, engagement: float) -> tuple[int, int]:
    """The store of `accounts` over `days`, built CHUNK accounts at a time; (events, posts)."""
    events = posts = 0
    for k, first in enumerate(range(0, accounts, CHUNK)):
        q = generate_quarter(
            accounts_count=min(CHUNK, accounts - first), days=days, seed=15 + k, engagement=engagement
        )
        write_store(q, db, partition=f"bench-{k}")
        events += len(q.events)
        posts += sum(
            1
            for e in q.events
            if e.direction == "by" and e.kind in ("post", "reply") and e.action == "create"
        )
    return events, posts


def case(
    name: str,
    accounts: int,
    days: int,
    period: list[str],
    *,
    target: float,
    work: Path,
    engagement: float = 1.0,
) -> bool:
    started = time.perf_counter()
    db = work / f"{name}.duckdb"
    events, posts = build(db, accounts, days, engagement)
    print(
        f"{name}: {accounts} accounts x {days} days, {events:,} events, ~{posts:,} posts "
        f"(engagement x{engagement}; store built in {time.perf_counter() - started:.1f} s)"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        bluepulse_argv("report", *period, "--db", str(db), "--out", str(work / name), "--log-level", "ERROR"),
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        print(done.stderr)
        return False
    ok = took < target
    rss = f"{peak / 1024:.0f} MB" if peak > before else f"<= {before / 1024:.0f} MB (earlier child)"
    print(f"  report in {took:.2f} s (target < {target:.0f} s: {'ok' if ok else 'MISSED'}), peak RSS {rss}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-accounts", type=int, default=10_000)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ok = case("quarter", 65, 90, ["--quarter", "2025Q1"], target=2.0, work=work)
        if not args.skip_big:
            year = ["--from", "2025-01-01", "--to", "2025-12-31"]
            ok = case("year", args.big_accounts, 365, year, target=60.0, work=work, engagement=0.1) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
