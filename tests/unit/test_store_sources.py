"""Several firehoses on one store: per-source watermarks, and dedup by identity across sources.

A relay seq (~3·10^10) and a Jetstream seq (small numbers) never compare; the same like read
from both counts once; a switch relay → Jetstream → relay on one file gives the totals of
one relay reading of the same facts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zstandard

from aggregator.schema_sql import MIGRATIONS
from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind
from schemas.accounts import Account

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
FANS = [f"did:plc:{c * 24}" for c in "wxyz"]
JET = "jetstream2@jetstream.example:443"
RELAY_SEQ = 31_000_000_000
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def at(minute: int, second: int = 0) -> str:
    return f"2026-07-04T{12 + minute // 60:02d}:{minute % 60:02d}:{second:02d}.000Z"


def fact(i: int) -> Event:
    """The i-th fact of a busy hour for A and B: posts, likes, reposts, follows, deletes, handles."""
    owner = (A, B)[i % 2]
    fan = FANS[i % len(FANS)]
    post = f"at://{owner}/app.bsky.feed.post/p{i // 10}"
    c, d, to, by = Action.CREATE, Action.DELETE, Direction.TO, Direction.BY
    base: dict[str, Any] = {"seq": 0, "idx": 0, "subject_did": owner, "time": at(i // 4, i % 60)}
    match i % 10:
        case 0:
            return Event(
                kind=Kind.POST, action=c, direction=by, actor_did=owner, uri=post, text=f"n°{i}", **base
            )
        case 1 | 2 | 3:
            uri = f"at://{fan}/app.bsky.feed.like/l{i}"
            return Event(
                kind=Kind.LIKE,
                action=c,
                direction=to,
                actor_did=fan,
                uri=uri,
                subject_uri=post,
                target_did=owner,
                **base,
            )
        case 4:  # the like of fact i - 3 withdrawn
            return replace(fact(i - 3), action=d, time=base["time"])
        case 5 | 6:
            uri = f"at://{fan}/app.bsky.feed.repost/r{i}"
            return Event(
                kind=Kind.REPOST,
                action=c,
                direction=to,
                actor_did=fan,
                uri=uri,
                subject_uri=post,
                target_did=owner,
                **base,
            )
        case 7:
            uri = f"at://{fan}/app.bsky.graph.follow/f{i}"
            return Event(
                kind=Kind.FOLLOW, action=c, direction=to, actor_did=fan, uri=uri, target_did=owner, **base
            )
        case 8:
            reply = f"at://{fan}/app.bsky.feed.post/q{i}"
            return Event(
                kind=Kind.REPLY,
                action=c,
                direction=to,
                actor_did=fan,
                uri=reply,
                subject_uri=post,
                target_did=owner,
                text="merci",
                **base,
            )
        case _:
            return Event(
                kind=Kind.HANDLE,
                action=Action.UPDATE,
                direction=by,
                actor_did=owner,
                handle=f"h{i}.example.com",
                **base,
            )


FACTS = [fact(i) for i in range(240)]


def relay(first: int, last: int) -> list[Event]:
    """Facts [first, last) as read from the relay: seq = RELAY_SEQ + fact number."""
    return [replace(FACTS[i], seq=RELAY_SEQ + i) for i in range(first, last)]


def jetstream(first: int, last: int, first_seq: int = 1) -> list[Event]:
    """Facts [first, last) as read from a Jetstream v2 instance: its own small seqs, its own
    witnessed time for commits (identity and account events carry the upstream time)."""
    out = []
    for n, i in enumerate(range(first, last)):
        e = FACTS[i]
        time = e.time if e.kind in (Kind.HANDLE, Kind.ACCOUNT) else e.time.replace(".000Z", ".123456Z")
        out.append(replace(e, seq=first_seq + n, source=JET, time=time))
    return out


def open_store(path: Path) -> Store:
    store = Store.open(path)
    store.upsert_accounts(
        [Account(A, "a.example.com", "A", "chu", "IDF"), Account(B, "b.example.com", "B", "chu", "ARA")]
    )
    return store


def apply_in_batches(store: Store, events: list[Event], size: int = 25) -> tuple[int, int, int]:
    """(applied, replayed, duplicates) over batches of `size` events."""
    applied = replayed = duplicates = 0
    for first in range(0, len(events), size):
        result = store.apply({"queue": PartitionBatch(events[first : first + size])})
        applied, replayed, duplicates = (
            applied + result.applied,
            replayed + result.replayed,
            duplicates + result.duplicates,
        )
    return applied, replayed, duplicates


def state(store: Store) -> dict[str, Any]:
    """What a reader sees: totals per account, per-post counters, handle history."""
    return {
        "totals": store.query("SELECT * FROM account_totals ORDER BY did")[1],
        "posts": store.query("SELECT uri, likes, reposts, replies, quotes FROM top_posts ORDER BY uri")[1],
        "handles": store.query("SELECT did, epoch_us(time), handle FROM handle_history ORDER BY ALL")[1],
    }


def test_two_sources_with_overlapping_seqs_both_apply(tmp_path: Path) -> None:
    """Jetstream seqs 1..40 are far below the relay watermark (~3·10^10): nothing is dropped."""
    with open_store(tmp_path / "s.duckdb") as store:
        assert store.apply({"queue": PartitionBatch(relay(0, 40))}).applied == 40
        result = store.apply({"queue": PartitionBatch(jetstream(40, 80))})
        assert (result.applied, result.replayed, result.duplicates) == (40, 0, 0)
        # each source keeps its own watermark: a replay of either is still dropped
        again = store.apply({"queue": PartitionBatch(relay(30, 40) + jetstream(70, 80, first_seq=31))})
        assert (again.applied, again.replayed) == (0, 20)
        sources = store.positions()["queue"].sources
        assert sources["relay"].watermark == (RELAY_SEQ + 39, 0)
        assert sources[JET].watermark == (40, 0)
    with Store.open(tmp_path / "s.duckdb") as reopened:
        assert reopened.positions()["queue"].sources == sources
        assert reopened.committed_seqs() == {"relay": RELAY_SEQ + 39, JET: 40}


def test_the_same_like_from_the_relay_and_from_jetstream_counts_once(tmp_path: Path) -> None:
    like = FACTS[1]
    assert like.kind is Kind.LIKE
    from_relay = replace(like, seq=30_123_456_789, source="relay")
    from_jet = replace(like, seq=12, source=JET, time=like.time.replace(".000Z", ".5Z"))
    with open_store(tmp_path / "s.duckdb") as store:
        assert store.apply({"queue": PartitionBatch([from_relay])}).applied == 1
        result = store.apply({"queue": PartitionBatch([from_jet])})
        assert (result.applied, result.replayed, result.duplicates) == (0, 0, 1)
        assert store.positions()["queue"].sources[JET].watermark == (12, 0)  # handled, not replayed later
        likes = store.query("SELECT likes_received FROM account_totals WHERE did = ?", [like.subject_did])[1]
        assert likes == [(1,)]
    with open_store(tmp_path / "both.duckdb") as store:  # both in one batch, Jetstream first
        result = store.apply({"queue": PartitionBatch([from_jet, from_relay])})
        assert (result.applied, result.duplicates) == (1, 1)
        assert store.query("SELECT source, seq FROM events")[1] == [(JET, 12)]


@pytest.mark.parametrize("jet_time", ["2026-07-04T12:00:07.517Z", "2026-07-04T14:00:07.517+02:00"])
def test_identity_and_account_events_with_the_same_upstream_time_count_once(
    tmp_path: Path, jet_time: str
) -> None:
    handle = Event(
        seq=RELAY_SEQ,
        idx=0,
        kind=Kind.HANDLE,
        action=Action.UPDATE,
        direction=Direction.BY,
        subject_did=A,
        actor_did=A,
        time="2026-07-04T12:00:07.517Z",
        handle="new.example.com",
    )
    account = replace(
        handle, seq=RELAY_SEQ + 1, kind=Kind.ACCOUNT, handle=None, active=False, status="deactivated"
    )
    later = replace(account, seq=RELAY_SEQ + 2, time="2026-07-04T12:05:00Z", active=True, status=None)
    with open_store(tmp_path / "s.duckdb") as store:
        store.apply({"queue": PartitionBatch([handle, account])})
        jet = [replace(e, seq=n, source=JET, time=jet_time) for n, e in enumerate((handle, account), start=7)]
        result = store.apply({"queue": PartitionBatch([*jet, replace(later, seq=9, source=JET)])})
        assert (result.applied, result.duplicates) == (1, 2)  # the reactivation is new
        assert store.query("SELECT count(*) FROM handle_history")[1] == [(1,)]
        assert store.query("SELECT active, status FROM status_history ORDER BY time")[1] == [
            (False, "deactivated"),
            (True, None),
        ]
        # the same account state at another upstream time is another event
        other = replace(handle, seq=10, source=JET, time="2026-07-04T12:00:08Z")
        assert store.apply({"queue": PartitionBatch([other])}).applied == 1


def test_relay_then_jetstream_then_relay_on_one_file_equals_one_relay_reading(tmp_path: Path) -> None:
    """The streamer's overlaps at each switch (design §4): Jetstream starts 10 s before the
    relay's last position, the relay resumes from its own old cursor; every overlap is dropped
    by identity, every new fact applied once."""
    with open_store(tmp_path / "truth.duckdb") as truth:
        assert apply_in_batches(truth, relay(0, 240)) == (240, 0, 0)
        expected = state(truth)
    db = tmp_path / "switch.duckdb"
    with open_store(db) as store:  # 1. relay
        assert apply_in_batches(store, relay(0, 100)) == (100, 0, 0)
    with open_store(db) as store:  # 2. Jetstream, from a bit before the relay's position
        assert apply_in_batches(store, jetstream(80, 170, first_seq=5_000), size=30) == (70, 0, 20)
    with open_store(db) as store:  # 3. back to the relay, from its own cursor (fact 100)
        assert apply_in_batches(store, relay(100, 240), size=40) == (70, 0, 70)
        got = state(store)
        sources = store.query("SELECT source, count(*) FROM events GROUP BY ALL ORDER BY ALL")[1]
    assert got == expected
    assert sources == [(JET, 70), ("relay", 170)]


def test_keys_older_than_dedup_hours_are_pruned_by_maintenance(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb", dedup_hours=2) as store:
        store.apply({"queue": PartitionBatch(relay(0, 40))})  # 12:00 .. 12:09
        late = replace(
            FACTS[1], seq=7, source=JET, uri="at://x/app.bsky.feed.like/late", time="2026-07-04T14:30:00Z"
        )
        store.apply({"queue": PartitionBatch([late])})  # a second source: the relay's keys are built
        assert store.query("SELECT count(*) FROM event_keys")[1] == [(41,)]
        result = store.maintain()
        assert result.keys_pruned == 40  # older than 14:30 - 2 h
        assert store.query("SELECT count(*) FROM event_keys")[1] == [(1,)]
        assert store.dedup == timedelta(hours=2)
        # within the window a copy from the other source is still recognised
        copy = replace(late, seq=RELAY_SEQ + 1_000, source="relay")
        assert store.apply({"queue": PartitionBatch([copy])}).duplicates == 1


def test_a_version_3_file_moves_its_positions_to_the_relay_and_backfills_keys(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        for version in (1, 2, 3):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])
        con.execute("INSERT INTO positions VALUES ('queue', NULL, 31000000010, 0, 31000000020)")
        con.execute(
            "INSERT INTO events (seq, idx, kind, action, direction, subject_did, actor_did, time, uri, v, "
            "partition, ingested_at) VALUES (31000000010, 0, 'like', 'create', 'to', ?, ?, "
            "'2026-07-04 12:00:00', ?, 1, 'queue', now()::TIMESTAMP)",
            [A, FANS[0], FACTS[1].uri],
        )
        con.execute("UPDATE clock SET newest_event = '2026-07-04 12:00:00'")
    with Store.open(path) as store:
        relay_position = store.positions()["queue"].sources["relay"]
        assert (relay_position.seq, relay_position.idx, relay_position.committed) == (
            31000000010,
            0,
            31000000020,
        )
        assert store.query("SELECT DISTINCT source FROM events")[1] == [("relay",)]
        copy = replace(FACTS[1], seq=4, source=JET, subject_did=A, actor_did=FANS[0])
        assert store.apply({"queue": PartitionBatch([copy])}).duplicates == 1  # the backfilled key


def test_a_version_1_file_meeting_a_second_source_keys_its_last_dedup_hours(tmp_path: Path) -> None:
    """An upgraded deployment that switches to Jetstream at once: the overlap with what the
    old version applied from the relay is still dropped."""
    path = tmp_path / "v1.duckdb"
    path.write_bytes(zstandard.ZstdDecompressor().decompress((FIXTURES / "store_v1.duckdb.zst").read_bytes()))
    with Store.open(path) as store:
        names, rows = store.query("SELECT * FROM events ORDER BY time DESC, seq DESC LIMIT 1")
        newest = dict(zip(names, rows[0], strict=True))
        assert newest["source"] == "relay"
        recent = store.query(
            "SELECT count(*) FROM events WHERE time >= (SELECT newest_event FROM clock) - INTERVAL 96 HOUR"
        )[1][0][0]
        assert store.query("SELECT count(*) FROM event_keys")[1] == [(0,)]  # one source: no keys yet
        fields = {k: newest[k] for k in ("kind", "action", "direction", "subject_did", "actor_did", "uri")}
        copy = Event(seq=1, idx=0, time="2026-11-02T12:00:00Z", source=JET, **fields)
        assert copy.uri is not None
        assert store.apply({"queue": PartitionBatch([copy])}).duplicates == 1
        keys = store.query("SELECT count(*) FROM event_keys")[1][0][0]
    assert 0 < keys <= recent


def test_the_key_lookup_runs_only_once_a_second_source_gave_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[int] = []
    real = Store._known_keys

    def counting(self: Store, keys: list[int]) -> set[int]:
        lookups.append(len(keys))
        return real(self, keys)

    monkeypatch.setattr(Store, "_known_keys", counting)
    with open_store(tmp_path / "s.duckdb") as store:
        store.apply({"queue": PartitionBatch(relay(0, 40))})
        store.apply({"queue": PartitionBatch([], marks={JET: 7})})  # a marker gives no event
        assert lookups == []  # one source: its replays are the watermark's
        assert store.query("SELECT count(*) FROM event_keys")[1] == [(0,)]
        result = store.apply({"queue": PartitionBatch(jetstream(30, 50))})
        assert (lookups, result.duplicates) == ([20], 10)
        assert store.query("SELECT count(*) FROM event_keys")[1] == [(50,)]
        store.apply({"queue": PartitionBatch(relay(50, 60))})
        assert lookups == [20, 10]
