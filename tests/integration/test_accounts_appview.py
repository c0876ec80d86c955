"""`bluepulse accounts add|discover|refresh` as a user runs them, on the AppView emulator with
rate limits, 5xx and malformed answers injected."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from aggregator.exposition import StoreCollector
from aggregator.store import Store
from appview.emulator import AppViewEmulator
from appview.scenario import Scenario, build_world
from schemas.accounts import Account, load_accounts, write_accounts
from tests.support.appview import accounts_file, bluepulse, pasted_forms
from tests.support.ports import free_port

WORLD = build_world(Scenario())
UNKNOWN = ["chu-atlantide.bsky.social", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "CHU de Nulle Part", "chu-lille"]


async def test_accounts_add_of_65_pasted_forms_writes_their_dids_and_reports_the_unknown(
    tmp_path: Path,
) -> None:
    first = WORLD.accounts[0]
    path = tmp_path / "accounts.csv"
    write_accounts(path, [Account(first.did, first.handle, "Mon hôpital", "CH", "Occitanie", 7)])
    forms = pasted_forms(WORLD)
    async with AppViewEmulator(WORLD, rate_limit=40, rate_window=1.0, fail_every=9, malformed_every=13) as av:
        done = await bluepulse(
            "accounts",
            "add",
            *forms[:30],
            *UNKNOWN,
            *forms[30:],
            "--category",
            "CHU",
            "--accounts",
            str(path),
            "--appview",
            av.url,
        )
    assert done.code == 1, done.err
    rows = load_accounts(path)
    assert [a.did for a in rows] == [a.did for a in WORLD.accounts]  # each once, the old row first
    assert rows[0] == Account(first.did, first.handle, "Mon hôpital", "CH", "Occitanie", 7)
    for row, truth in zip(rows[1:], WORLD.accounts[1:], strict=True):
        assert (row.handle, row.name, row.followers, row.category) == (
            truth.handle,
            truth.display_name,
            truth.followers,
            "CHU",
        )
    tail = done.err[done.err.index("4 not added") :]
    assert [line.split(": ")[0].strip() for line in tail.splitlines()[1:]] == UNKNOWN
    assert "HandleNotFound" in tail
    assert min(av.throttled, av.failed, av.malformed) > 0


async def test_accounts_add_without_a_reachable_appview_is_one_line_and_keeps_the_file(
    tmp_path: Path,
) -> None:
    path = accounts_file(tmp_path / "accounts.csv", WORLD)
    before = path.read_bytes()
    done = await bluepulse(
        "accounts",
        "add",
        "chu-toulouse.bsky.social",
        "--accounts",
        str(path),
        "--appview",
        f"http://127.0.0.1:{free_port()}",
    )
    assert done.code == 1
    assert [line for line in done.err.splitlines() if line.strip()] == [
        line for line in done.err.splitlines() if "unavailable" in line
    ]
    assert path.read_bytes() == before


async def test_accounts_discover_prints_candidates_and_add_appends_the_first_n(tmp_path: Path) -> None:
    path = tmp_path / "new" / "accounts.csv"
    async with AppViewEmulator(WORLD, fail_every=5) as av:
        shown = await bluepulse("accounts", "discover", "CHU", "--appview", av.url, "--format", "csv")
        added = await bluepulse(
            "accounts",
            "discover",
            "hôpital",
            "chu",
            "--add",
            "--limit",
            "4",
            "--accounts",
            str(path),
            "--appview",
            av.url,
            "--region",
            "Sud",
        )
    lines = shown.out.splitlines()
    assert lines[0] == "handle,name,followers,did,description"
    chu = [a for a in WORLD.accounts if "chu" in f"{a.handle} {a.display_name} {a.description}".lower()]
    assert len(lines) - 1 == min(25, len(chu))
    first = next(a for a in WORLD.accounts if a.handle in lines[1])
    assert lines[1].startswith(f"{first.handle},{first.display_name},{first.followers or ''},{first.did},")
    assert added.code == 0, added.err
    rows = load_accounts(path)
    assert len(rows) == 4
    assert all(r.region == "Sud" for r in rows)


async def test_accounts_refresh_writes_followers_history_and_the_totals_and_metric_follow_it(
    tmp_path: Path,
) -> None:
    path = accounts_file(tmp_path / "accounts.csv", WORLD, followers=True)
    stale = load_accounts(path)
    renamed = stale[10]
    stale[10] = Account(renamed.did, "ancien-nom.bsky.social", "Ancien nom", renamed.category)
    stale = [
        Account(a.did, a.handle, a.name, a.category, a.region, 1) if i < 5 else a for i, a in enumerate(stale)
    ]
    write_accounts(path, stale)
    db = tmp_path / "bluepulse.duckdb"
    async with AppViewEmulator(WORLD, rate_limit=10, rate_window=1.0, fail_every=2) as av:
        done = await bluepulse(
            "accounts", "refresh", "--accounts", str(path), "--db", str(db), "--appview", av.url
        )
    assert done.code == 0, done.err
    counted = [a for a in WORLD.accounts if a.followers is not None]
    assert f"{len(counted)} follower snapshots" in done.out
    assert "without follower counts" in done.err  # the profiles without counts: logged skips
    file_rows = {a.did: a for a in load_accounts(path)}
    assert (file_rows[renamed.did].handle, file_rows[renamed.did].name) == (
        WORLD.accounts[10].handle,
        WORLD.accounts[10].display_name,
    )
    with Store.open(db) as store:
        history = dict(store.query("SELECT did, followers FROM followers_history")[1])
        totals = dict(store.query("SELECT did, followers FROM account_totals")[1])
        handles = dict(store.query("SELECT did, handle FROM accounts")[1])
        registry = CollectorRegistry()
        collector = StoreCollector(store, lambda: 0)
        registry.register(collector)
        scraped = {
            s.labels["account"]: s.value
            for f in registry.collect()
            for s in f.samples
            if s.name == "bluepulse_account_followers"
        }
        ages = [
            s.value
            for f in registry.collect()
            for s in f.samples
            if s.name == "bluepulse_account_followers_snapshot_age_seconds"
        ]
        collector.close()
    assert history == {a.did: a.followers for a in counted}
    assert totals == {a.did: a.followers for a in WORLD.accounts}  # no counts: NULL, not a guess
    assert handles[renamed.did] == WORLD.accounts[10].handle
    assert scraped == {a.handle: a.followers for a in counted}
    assert len(ages) == len(counted)
    assert all(0 <= age < 60 for age in ages)
