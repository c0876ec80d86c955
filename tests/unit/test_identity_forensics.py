"""Takeover forensics: PLC audit logs and did:web documents parsed to identity_history rows,
stored idempotently, and turned into the PDS / signing-key indicators with their evidence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator import signals
from aggregator.errors import IdentityParseError
from aggregator.forensics import IdentityForensics
from aggregator.plc import did_web_url, parse_audit_log, parse_did_document
from aggregator.plc_client import PlcClient
from aggregator.store import Store
from appview.plc_emulator import (
    PlcEmulator,
    did_key,
    did_web_document,
    legacy_create_entry,
    plc_entry,
    tombstone_entry,
)
from relay.takeover_scenario import NEW_PDS, OLD_PDS, takeover_scenario
from schemas.accounts import Account
from transport.backoff import Backoff
from transport.supervise import Supervisor

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
T0 = datetime(2026, 11, 5, 2, 40, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "bluepulse.rules.yml"
K1, K2, R1 = did_key("k1"), did_key("k2"), did_key("r1")


def log_of(
    did: str, *moves: tuple[datetime, str, str], nullify_last: bool = False
) -> list[dict[str, object]]:
    """Genesis on OLD_PDS/K1 in 2024, then each (when, pds, key) as a plc_operation."""
    entries = [
        plc_entry(
            did,
            datetime(2024, 3, 1, tzinfo=UTC),
            handle="chu.example",
            pds=OLD_PDS,
            signing_key=K1,
            rotation_keys=[R1],
            prev=None,
        )
    ]
    for when, pds, key in moves:
        entries.append(
            plc_entry(
                did,
                when,
                handle="chu.example",
                pds=pds,
                signing_key=key,
                rotation_keys=[R1],
                prev=str(entries[-1]["cid"]),
            )
        )
    if nullify_last:
        entries[-1]["nullified"] = True
    return entries


# -- parsing ---------------------------------------------------------------------------------


def test_plc_operations_give_handle_pds_signing_and_rotation_keys() -> None:
    parsed = parse_audit_log(A, log_of(A, (T0, NEW_PDS, K2)))
    assert parsed.skipped == 0
    first, moved = parsed.ops
    assert (first.handle, first.pds, first.signing_key, first.rotation_keys) == (
        "chu.example",
        OLD_PDS,
        K1,
        (R1,),
    )
    assert (moved.pds, moved.signing_key, moved.time) == (NEW_PDS, K2, datetime(2026, 11, 5, 2, 40))
    assert moved.cid != first.cid
    assert moved.kind == "plc_operation"
    assert not moved.nullified


def test_legacy_create_op_is_normalised_like_the_plc_directory_does() -> None:
    entry = legacy_create_entry(
        A,
        datetime(2023, 4, 1, tzinfo=UTC),
        handle="chu.bsky.social",
        service="bsky.social",
        signing_key=K1,
        recovery_key=R1,
    )
    (op,) = parse_audit_log(A, [entry]).ops
    assert op.kind == "create"
    assert (op.handle, op.pds, op.signing_key) == ("chu.bsky.social", "https://bsky.social", K1)
    assert op.rotation_keys == (R1, K1)  # recovery key first, then the signing key


def test_nullified_ops_are_kept_flagged_and_tombstones_clear_the_identity() -> None:
    entries = log_of(A, (T0, NEW_PDS, K2), nullify_last=True)
    entries.append(tombstone_entry(A, T0 + timedelta(hours=1), prev=str(entries[0]["cid"])))
    ops = parse_audit_log(A, entries).ops
    assert [o.nullified for o in ops] == [False, True, False]
    assert (ops[2].kind, ops[2].pds, ops[2].signing_key, ops[2].handle) == ("plc_tombstone", None, None, None)


def test_unreadable_or_foreign_entries_are_skipped_and_counted() -> None:
    good = log_of(A)[0]
    no_cid = {**good, "cid": ""}
    foreign = {**good, "did": B}
    bad_time = {**good, "createdAt": 17}
    bad_type = {**good, "operation": {"type": "plc_mystery"}}
    parsed = parse_audit_log(A, [good, no_cid, foreign, bad_time, bad_type, "junk"])
    assert (len(parsed.ops), parsed.skipped) == (1, 5)
    with pytest.raises(IdentityParseError):
        parse_audit_log(A, {"message": "DID not registered"})


def test_did_web_document_gives_one_row_whose_cid_follows_its_content() -> None:
    did = "did:web:chu.example"
    doc = did_web_document(did, handle="chu.example", pds="https://pds.chu.example", key_multibase="zQ3shKEY")
    seen = datetime(2026, 11, 5, 3, tzinfo=UTC)
    op = parse_did_document(did, doc, seen_at=seen)
    assert (op.handle, op.pds, op.signing_key, op.kind) == (
        "chu.example",
        "https://pds.chu.example",
        "did:key:zQ3shKEY",
        "did_web",
    )
    assert op.time == datetime(2026, 11, 5, 3)
    again = parse_did_document(did, doc, seen_at=seen + timedelta(hours=1))
    moved = parse_did_document(
        did, {**doc, "service": [{"id": "#atproto_pds", "serviceEndpoint": NEW_PDS}]}, seen_at=seen
    )
    assert again.cid == op.cid != moved.cid
    with pytest.raises(IdentityParseError):
        parse_did_document("did:web:other.example", doc, seen_at=seen)


def test_did_web_urls_follow_the_did_web_method() -> None:
    assert did_web_url("did:web:chu.example") == "https://chu.example/.well-known/did.json"
    assert did_web_url("did:web:127.0.0.1%3A8443", "http") == "http://127.0.0.1:8443/.well-known/did.json"
    assert did_web_url("did:web:chu.example:staff:com") == "https://chu.example/staff/com/did.json"


# -- store and indicators --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "s.duckdb")
    s.upsert_accounts([Account(A, "chu.example", "CHU", "CHU"), Account(B, "ars.example", "ARS", "ARS")])
    s.query("UPDATE clock SET newest_event = ? WHERE id = 1", [datetime(2026, 11, 5, 3, 30)])
    return s


def test_identity_history_is_idempotent_by_cid_and_takes_a_later_nullification(store: Store) -> None:
    fetched = datetime(2026, 11, 5, 4)
    ops = parse_audit_log(A, log_of(A, (T0, NEW_PDS, K2))).ops
    assert store.record_identity(ops, fetched) == 2
    assert store.record_identity(ops, fetched) == 0
    nullified = parse_audit_log(A, log_of(A, (T0, NEW_PDS, K2), nullify_last=True)).ops
    assert store.record_identity(nullified, fetched) == 0
    _, rows = store.query("SELECT pds, rotation_keys, nullified FROM identity_history ORDER BY time")
    assert rows == [(OLD_PDS, [R1], False), (NEW_PDS, [R1], True)]


def test_a_pds_and_key_change_in_the_window_is_an_indicator_with_its_evidence(store: Store) -> None:
    store.record_identity(parse_audit_log(A, log_of(A, (T0, NEW_PDS, K2))).ops, datetime(2026, 11, 5, 4))
    s = signals.compute(store.cursor())
    assert (s.pds_changes_24h, s.signing_key_changes_24h) == ({A: 1.0}, {A: 1.0})
    change = s.identity_change[A]
    assert (change.old_pds, change.new_pds, change.old_key, change.new_key) == (OLD_PDS, NEW_PDS, K1, K2)
    assert change.time == datetime(2026, 11, 5, 2, 40)
    assert signals.takeover_indicators(s)[A] == {"pds_change": 1.0, "signing_key_change": 1.0}


def test_a_key_rotation_on_the_same_pds_is_a_signing_key_change_only(store: Store) -> None:
    store.record_identity(parse_audit_log(B, log_of(B, (T0, OLD_PDS, K2))).ops, datetime(2026, 11, 5, 4))
    s = signals.compute(store.cursor())
    assert (s.pds_changes_24h, s.signing_key_changes_24h) == ({B: 0.0}, {B: 1.0})
    assert signals.takeover_indicators(s)[B] == {"signing_key_change": 1.0}


def test_old_changes_first_ops_and_nullified_ops_are_no_indicator(store: Store) -> None:
    old = datetime(2026, 11, 3, tzinfo=UTC)  # more than 24 h before the store clock
    store.record_identity(parse_audit_log(A, log_of(A, (old, NEW_PDS, K2))).ops, datetime(2026, 11, 5, 4))
    store.record_identity(
        parse_audit_log(B, log_of(B, (T0, NEW_PDS, K2), nullify_last=True)).ops, datetime(2026, 11, 5, 4)
    )
    s = signals.compute(store.cursor())
    assert s.pds_changes_24h == {}
    assert s.signing_key_changes_24h == {}
    assert s.identity_change == {}
    assert signals.takeover_indicators(s) == {}


def test_the_evidence_is_the_latest_change_and_every_change_counts(store: Store) -> None:
    moves = ((T0, NEW_PDS, K2), (T0 + timedelta(minutes=30), OLD_PDS, did_key("k3")))
    store.record_identity(parse_audit_log(A, log_of(A, *moves)).ops, datetime(2026, 11, 5, 4))
    s = signals.compute(store.cursor())
    assert (s.pds_changes_24h[A], s.signing_key_changes_24h[A]) == (2.0, 2.0)
    assert (s.identity_change[A].old_pds, s.identity_change[A].new_pds) == (NEW_PDS, OLD_PDS)


def test_indicator_thresholds() -> None:
    s = signals.Signals(
        handle_changes_24h={A: 1.0},
        odd_hour_posts_1h={A: 2.0, B: 3.0},
        activity_ratio={A: 50.0, B: 12.0},
        posts_1h={A: 3.0, B: 4.0},
        reposts_1h={A: 1.0, B: 1.0},
        deletes_1h={B: 10.0},
        novel_reposts_24h={A: 4.0},
    )
    assert signals.takeover_indicators(s) == {
        A: {"handle_change": 1.0},  # a burst needs 5 posts+reposts, odd hours 3
        B: {"odd_hour_posts": 3.0, "activity_burst": 12.0, "mass_delete": 10.0},
    }


def test_the_job_s_indicator_set_is_the_alert_rule_s() -> None:
    """The forensics job turns on with the rule's indicators: same names, same thresholds."""
    expr = RULES.read_text().split("record: account:bluepulse_takeover_indicator:value", 1)[1]
    expr = expr.split("- alert:", 1)[0]
    found: dict[str, list[tuple[str, float]]] = {}
    for block in expr.split("label_replace(")[1:]:
        name = re.search(r'"indicator", "(\w+)"', block)
        assert name is not None, block
        found[name[1]] = [(op, float(v)) for op, v in re.findall(r"(>=|>)\s*([\d.]+)", block)]
    assert found.keys() == signals.THRESHOLDS.keys()
    for name, ((op, value), *more) in found.items():
        assert signals.THRESHOLDS[name] == (value if op == ">=" else value + 1), name  # counts: > 0 is >= 1
        assert more == ([(">=", signals.BURST_MIN_ACTIONS)] if name == "activity_burst" else []), name


# -- the job against the PLC emulator ----------------------------------------------------------


def job(store: Store, plc_url: str, **client: object) -> IdentityForensics:
    fast = Backoff(initial=0.01, maximum=0.02)
    return IdentityForensics(
        store,
        PlcClient(plc_url, backoff=fast, **client),
        Supervisor(),  # type: ignore[arg-type]
        retry=Backoff(initial=60.0, maximum=60.0),
    )


def with_signals(**values: dict[str, float]) -> signals.Signals:
    return signals.Signals(**values)  # type: ignore[arg-type]


async def test_fetches_on_a_handle_or_status_change_and_when_indicators_turn_on_only(store: Store) -> None:
    forensics = job(store, "http://unused.invalid")
    quiet = with_signals(handle_changes_24h={A: 0.0, B: 0.0}, status_changes_24h={A: 0.0, B: 0.0})
    assert forensics.due(quiet, 0.0) == []
    assert forensics.due(with_signals(handle_changes_24h={A: 1.0, B: 0.0}), 1.0) == [A]
    assert forensics.due(with_signals(handle_changes_24h={A: 1.0}), 2.0) == []  # already seen
    assert forensics.due(with_signals(handle_changes_24h={A: 1.0}, status_changes_24h={B: 1.0}), 3.0) == [B]
    # a status change is no indicator: B turns on only with its night burst
    burst = {"odd_hour_posts_1h": {B: 9.0}, "activity_ratio": {B: 90.0}, "posts_1h": {B: 8.0}}
    assert forensics.due(with_signals(**burst), 4.0) == [B]  # turning on
    assert forensics.due(with_signals(**burst), 5.0) == []  # staying on
    assert (
        forensics.due(with_signals(handle_changes_24h={"did:key:zx": 1.0}), 6.0) == []
    )  # no history to read


async def test_a_poll_stores_the_log_and_retries_a_failing_directory_later(store: Store) -> None:
    sc = takeover_scenario()
    did = sc.expected.did
    store.upsert_accounts(sc.accounts)
    async with PlcEmulator(sc.plc_logs, fail_first=3) as plc:
        forensics = job(store, plc.url, attempts=3)
        forensics._seen.clear()
        store.query(
            "INSERT INTO handle_history VALUES (?, ?, 1, 0, ?)",
            [did, datetime(2026, 11, 5, 3), sc.expected.handle],
        )
        assert await forensics.poll() == 0  # 3 attempts, 3 injected 503s
        assert forensics.client.stats.errors["http_5xx"] == 3
        assert forensics.client.stats.fetches["failed"] == 1
        assert await forensics.poll() == 0  # not due again before its retry delay
        forensics._next[did] = 0.0  # the retry delay has passed
        assert await forensics.poll() == sc.expected.identity_rows
        await forensics.aclose()
    assert [c.status for c in plc.calls] == [503, 503, 503, 200]
    _, rows = store.query("SELECT count(*) FROM identity_history WHERE did = ?", [did])
    assert rows == [(sc.expected.identity_rows,)]


async def test_did_web_accounts_are_read_from_their_did_json(store: Store) -> None:
    async with PlcEmulator() as plc:
        did = plc.web_did()
        plc.web_docs[did] = did_web_document(did, handle="chu.example", pds=NEW_PDS, key_multibase="zQ3shWEB")
        client = PlcClient("http://unused.invalid", web_scheme="http")
        (op,) = await client.history(did)
        assert await client.history(plc.web_did("staff:nobody")) == []  # 404: unknown document
        await client.aclose()
    assert (op.did, op.pds, op.signing_key, op.handle) == (did, NEW_PDS, "did:key:zQ3shWEB", "chu.example")
    assert [c.nsid for c in plc.calls] == ["/.well-known/did.json", "/staff/nobody/did.json"]
    assert client.stats.errors["not_found"] == 1
