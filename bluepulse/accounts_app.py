"""`bluepulse accounts list|check|add|discover|refresh`: the tracked accounts file.

list / check read the file (check exits 0 or 2: it can gate a deployment). add / discover /
refresh ask the AppView (`--appview`): add resolves what people paste, writes every account
found (existing rows, their categories and DIDs kept once) and lists the unknown ones last on
stderr, exit 1; discover prints search candidates (`--add` appends them); refresh re-reads the
profiles into the file and the store (it takes the DuckDB lock: one writer per file). The file
is always written whole, atomically.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aggregator.report import render
from aggregator.store import Store
from appview.actors import pasted_tokens
from appview.client import AppViewClient
from appview.lookup import Unknown, lookup_accounts
from appview.models import Profile
from bluepulse import lock
from bluepulse.config import AccountsConfig
from bluepulse.errors import CommandError
from bluepulse.refresh import account_name, refresh_post_counts, refresh_profiles
from schemas.accounts import Account, load_accounts, write_accounts
from schemas.errors import RegistryError

log = logging.getLogger(__name__)

COLUMNS = ["did", "handle", "name", "category", "region", "followers"]
CANDIDATE_COLUMNS = ["handle", "name", "followers", "did", "description"]
PER_QUERY = 25


def main(config: AccountsConfig) -> int:
    if config.action in ("add", "discover", "refresh"):
        return run_async(config)
    accounts = load_accounts(config.accounts)
    if config.action == "check":
        print(f"{config.accounts}: {len(accounts)} accounts, OK")
        return 0
    rows = [(a.did, a.handle, a.name, a.category, a.region, a.followers) for a in accounts]
    show(render(COLUMNS, rows, config.format))
    return 0


def run_async(config: AccountsConfig) -> int:
    import asyncio  # noqa: PLC0415 - list/check never start a loop

    match config.action:
        case "add":
            return asyncio.run(add(config))
        case "discover":
            return asyncio.run(discover(config))
        case _:
            return asyncio.run(refresh(config))


def show(text: str) -> None:
    print(text, end="" if text.endswith("\n") else "\n")


def existing(path: Path) -> list[Account]:
    """The file's accounts; none when it does not exist yet (add creates it)."""
    return load_accounts(path) if path.exists() else []


def merge(
    rows: Sequence[Account], profiles: Sequence[Profile], category: str, region: str
) -> tuple[list[Account], list[Account], list[Unknown]]:
    """(all rows, rows added, refused): existing rows are kept as they are; a DID is listed once;
    a handle another DID of the file already has is refused (the file would be unreadable)."""
    out = list(rows)
    dids = {a.did for a in rows}
    handles = {a.handle.lower(): a.did for a in rows}
    added: list[Account] = []
    refused: list[Unknown] = []
    for p in profiles:
        if p.did in dids:
            continue
        if handles.get(p.handle.lower(), p.did) != p.did:
            reason = f"handle {p.handle} is on {handles[p.handle.lower()]} in the file (accounts refresh)"
            refused.append(Unknown(p.handle, reason))
            continue
        account = Account(p.did, p.handle.lower(), account_name(p), category, region, p.followers)
        out.append(account)
        added.append(account)
        dids.add(p.did)
        handles[p.handle.lower()] = p.did
    return out, added, refused


def write_added(config: AccountsConfig, profiles: Sequence[Profile]) -> list[Unknown]:
    rows = existing(config.accounts)
    merged, added, refused = merge(rows, profiles, config.category or "", config.region or "")
    if added:
        write_accounts(config.accounts, merged)
    kept = len(profiles) - len(added) - len(refused)
    print(f"{config.accounts}: {len(added)} accounts added, {kept} already there, {len(merged)} in all")
    for a in added:
        print(f"  + {a.handle}  {a.did}  {a.name}  followers={'' if a.followers is None else a.followers}")
    return refused


def report_unknown(unknown: Sequence[Unknown]) -> int:
    """The accounts not written, last and on stderr; exit 1 when there are any."""
    if not unknown:
        return 0
    print(f"{len(unknown)} not added (fix them and run `accounts add` again):", file=sys.stderr)
    for u in unknown:
        print(f"  {u.raw}: {u.reason}", file=sys.stderr)
    return 1


def pasted(config: AccountsConfig) -> list[str]:
    texts = list(config.targets)
    if config.from_file is not None:
        try:
            texts += pasted_tokens(config.from_file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"--from-file {config.from_file}: cannot read it: {exc}") from exc
    if not texts:
        raise CommandError("accounts add: give handles, profile URLs or DIDs (or --from-file FILE)")
    return texts


async def add(config: AccountsConfig) -> int:
    texts = pasted(config)
    existing(config.accounts)  # an unreadable file stops before any request
    async with AppViewClient(config.appview) as client:
        found = await lookup_accounts(client, texts)
    refused = write_added(config, [f.profile for f in found.found])
    return report_unknown([*found.unknown, *refused])


async def discover(config: AccountsConfig) -> int:
    if not config.targets:
        raise CommandError('accounts discover: give search words, e.g. "CHU" "centre hospitalier"')
    each = min(PER_QUERY, config.limit) if config.limit else PER_QUERY
    async with AppViewClient(config.appview) as client:
        seen: dict[str, tuple[str, str | None, str | None]] = {}
        for query in config.targets:
            for c in await client.search_actors(query, limit=each, max_results=each):
                seen.setdefault(c.did, (c.handle, c.display_name, c.description))
        dids = list(seen)[: config.limit] if config.limit else list(seen)
        profiles = {p.did: p for p in await client.get_profiles(dids)}
    rows = [
        (seen[d][0], seen[d][1], profiles[d].followers if d in profiles else None, d, seen[d][2])
        for d in dids
    ]
    show(render(CANDIDATE_COLUMNS, rows, config.format))
    if not config.add:
        return 0
    refused = write_added(config, [profiles[d] for d in dids if d in profiles])
    gone = [Unknown(d, "no Bluesky profile") for d in dids if d not in profiles]
    return report_unknown([*gone, *refused])


async def refresh(config: AccountsConfig) -> int:
    load_accounts(config.accounts)  # an unreadable file stops before the lock and the store
    hint = "a running `bluepulse run` refreshes the profiles itself (--refresh-every)"
    with lock.hold_store(config.db, hint), Store.open(config.db) as store:
        store.upsert_accounts(load_accounts(config.accounts))
        async with AppViewClient(config.appview) as client:
            done = await refresh_profiles(client, config.accounts, store)
            posts = await refresh_post_counts(client, store)
    print(
        f"{config.accounts}: {done.accounts} profiles read, {done.snapshots} follower snapshots stored "
        f"in {config.db}, {len(done.renamed)} renamed, {len(done.missing)} without a profile, "
        f"{len(done.no_counts)} without counts; {posts} backfilled posts' counts refreshed"
    )
    return 0
