"""The fold is pure: events → counter deltas grouped by key, equal to a per-event reference."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from aggregator.fold import ACCOUNT_COUNTERS, POST_COUNTERS, drop_replayed, fold
from aggregator.timeparse import parse_time_us, parse_times_us
from schemas import Action, Direction, Event, Kind

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"
POST = f"at://{A}/app.bsky.feed.post/p1"
T0 = "2026-07-04T14:38:07.517Z"
T0_MINUTE = 1783175880  # 2026-07-04T14:38:00Z


def ev(seq: int, kind: Kind, action: Action, direction: Direction, **kw: object) -> Event:
    values: dict[str, object] = {
        "subject_did": A,
        "actor_did": A if direction == Direction.BY else X,
        "time": T0,
    }
    values.update(kw)
    return Event(seq=seq, idx=0, kind=kind, action=action, direction=direction, **values)  # type: ignore[arg-type]


def account_row(events: list[Event], did: str = A) -> dict[str, int]:
    deltas = fold(events, fallback_us=0)
    total: Counter[str] = Counter()
    for (key_did, _), row in deltas.account.items():
        if key_did == did:
            total.update(dict(zip(ACCOUNT_COUNTERS, row, strict=True)))
    return {k: v for k, v in total.items() if v}


def test_like_then_unlike_nets_to_zero_but_counts_both_gross() -> None:
    like = ev(1, Kind.LIKE, Action.CREATE, Direction.TO, subject_uri=POST)
    unlike = ev(2, Kind.LIKE, Action.DELETE, Direction.TO, subject_uri=POST)
    assert account_row([like, unlike]) == {"likes_received": 1, "unlikes": 1}
    deltas = fold([like, unlike], fallback_us=0)
    assert deltas.post == {(POST, T0_MINUTE): [0, 0, 0, 0]}


def test_post_delete_lowers_posts_and_counts_the_delete() -> None:
    create = ev(1, Kind.POST, Action.CREATE, Direction.BY, uri=POST, text="hello")
    delete = ev(2, Kind.POST, Action.DELETE, Direction.BY, uri=POST)
    assert account_row([create, delete]) == {"posts_created": 1, "posts_deleted": 1, "deletes": 1}
    state = fold([create, delete], fallback_us=0).posts[POST]
    assert state.deleted
    assert state.text == "hello"


def test_received_replies_quotes_mentions_follows_are_counted() -> None:
    events = [
        ev(1, Kind.REPLY, Action.CREATE, Direction.TO, subject_uri=POST),
        ev(2, Kind.QUOTE, Action.CREATE, Direction.TO, subject_uri=POST),
        ev(3, Kind.MENTION, Action.CREATE, Direction.TO),
        ev(4, Kind.FOLLOW, Action.CREATE, Direction.TO, target_did=A),
        ev(5, Kind.FOLLOW, Action.DELETE, Direction.TO, target_did=A),
    ]
    assert account_row(events) == {
        "replies": 1,
        "quotes": 1,
        "mentions": 1,
        "follows_gained": 1,
        "follows_lost": 1,
    }
    assert fold(events, fallback_us=0).post == {(POST, T0_MINUTE): [0, 0, 1, 1]}


def test_actions_by_the_account_count_as_made_not_received() -> None:
    events = [
        ev(1, Kind.LIKE, Action.CREATE, Direction.BY, subject_uri="at://x/p"),
        ev(2, Kind.REPOST, Action.CREATE, Direction.BY, subject_uri="at://x/p"),
        ev(3, Kind.FOLLOW, Action.CREATE, Direction.BY, target_did=X),
        ev(4, Kind.FOLLOW, Action.DELETE, Direction.BY, target_did=X),
    ]
    assert account_row(events) == {"likes_made": 1, "reposts_made": 1, "deletes": 1}


def test_handle_and_status_events_become_history_rows() -> None:
    deltas = fold(
        [
            ev(1, Kind.HANDLE, Action.UPDATE, Direction.BY, handle="new.example.com"),
            ev(2, Kind.ACCOUNT, Action.UPDATE, Direction.BY, active=False, status="deactivated"),
        ],
        fallback_us=0,
    )
    assert [(h.did, h.handle) for h in deltas.handles] == [(A, "new.example.com")]
    assert [(s.active, s.status) for s in deltas.statuses] == [(False, "deactivated")]
    assert deltas.account == {}


def test_same_key_twice_in_a_batch_is_grouped_into_one_row() -> None:
    likes = [ev(i, Kind.LIKE, Action.CREATE, Direction.TO, subject_uri=POST) for i in range(5)]
    deltas = fold(likes, fallback_us=0)
    assert len(deltas.account) == 1
    assert deltas.post == {(POST, T0_MINUTE): [5, 0, 0, 0]}


def test_unparsable_time_uses_fallback_and_is_counted() -> None:
    deltas = fold(
        [ev(1, Kind.MENTION, Action.CREATE, Direction.TO, time="yesterday")], fallback_us=120_000_000
    )
    assert deltas.bad_times == 1
    assert deltas.times_us == [120_000_000]
    assert list(deltas.account) == [(A, 120)]


def test_drop_replayed_keeps_only_events_above_the_watermark() -> None:
    events = [ev(s, Kind.MENTION, Action.CREATE, Direction.TO) for s in (5, 6, 6, 7)]
    kept, dropped, high = drop_replayed(events, {"relay": (5, 0)})
    assert [e.seq for e in kept] == [6, 7]
    assert dropped == 2
    assert high == {"relay": (7, 0)}
    assert drop_replayed([], {"relay": (5, 0)}) == ([], 0, {"relay": (5, 0)})


def test_drop_replayed_compares_seqs_of_one_source_only() -> None:
    relay = [replace(ev(s, Kind.MENTION, Action.CREATE, Direction.TO), source="relay") for s in (30, 31)]
    jet = [replace(ev(s, Kind.MENTION, Action.CREATE, Direction.TO), source="js2@h") for s in (3, 4, 4)]
    kept, dropped, high = drop_replayed([relay[0], jet[0], relay[1], jet[1], jet[2]], {"relay": (30, 0)})
    assert [(e.source, e.seq) for e in kept] == [("js2@h", 3), ("relay", 31), ("js2@h", 4)]
    assert dropped == 2
    assert high == {"relay": (31, 0), "js2@h": (4, 0)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-04T14:38:07.517Z", 1783175887517000),
        ("2026-07-04T14:38:07Z", 1783175887000000),
        ("2026-07-04T14:38:07.123456789Z", 1783175887123456),
        ("2026-07-04T16:38:07.517+02:00", 1783175887517000),
        ("not a time", None),
        ("", None),
    ],
)
def test_times_parse_to_utc_microseconds_both_ways(text: str, expected: int | None) -> None:
    assert parse_time_us(text, {}) == expected
    values, bad = parse_times_us([text], -1)
    assert values == [-1 if expected is None else expected]
    assert bad == (expected is None)


def _random_events(rng: random.Random, count: int) -> list[Event]:
    kinds, actions, directions = list(Kind), list(Action), list(Direction)
    dids, uris = [A, B], [POST, f"at://{B}/app.bsky.feed.post/q", None]
    return [
        Event(
            seq=i,
            idx=0,
            kind=rng.choice(kinds),
            action=rng.choice(actions),
            direction=rng.choice(directions),
            subject_did=rng.choice(dids),
            actor_did=X,
            time=f"2026-07-04T14:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
            uri=rng.choice(uris),
            subject_uri=rng.choice(uris),
        )
        for i in range(count)
    ]


def _reference(events: list[Event]) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Per-event semantics written out longhand, independent of the fold's rule table."""
    acc: Counter[tuple[str, str]] = Counter()
    post: Counter[tuple[str, str]] = Counter()
    for e in events:
        sign = {Action.CREATE: 1, Action.DELETE: -1}.get(e.action, 0)
        if e.direction == Direction.BY and e.kind in (Kind.POST, Kind.REPLY, Kind.QUOTE) and sign:
            acc[e.subject_did, "posts"] += sign
            acc[e.subject_did, "posts_created" if sign > 0 else "posts_deleted"] += 1
            acc[e.subject_did, "deletes"] += sign < 0
        made = {Kind.LIKE: "likes_made", Kind.REPOST: "reposts_made", Kind.FOLLOW: "follows_made"}
        if e.direction == Direction.BY and e.kind in made and sign:
            acc[e.subject_did, made[e.kind]] += sign
            acc[e.subject_did, "deletes"] += sign < 0
        if e.direction == Direction.TO and e.kind in (Kind.LIKE, Kind.REPOST) and sign:
            name = "likes" if e.kind == Kind.LIKE else "reposts"
            acc[e.subject_did, name] += sign
            gross = {
                ("likes", 1): "likes_received",
                ("likes", -1): "unlikes",
                ("reposts", 1): "reposts_received",
                ("reposts", -1): "unreposts",
            }
            acc[e.subject_did, gross[name, sign]] += 1
            if e.subject_uri:
                post[e.subject_uri, name] += sign
        if e.direction == Direction.TO and e.action == Action.CREATE:
            simple = {
                Kind.REPLY: "replies",
                Kind.QUOTE: "quotes",
                Kind.MENTION: "mentions",
                Kind.NAME_MENTION: "mentions_by_name",
                Kind.FOLLOW: "follows_gained",
            }
            if e.kind in simple:
                acc[e.subject_did, simple[e.kind]] += 1
                if e.kind in (Kind.REPLY, Kind.QUOTE) and e.subject_uri:
                    post[e.subject_uri, simple[e.kind]] += 1
        if e.direction == Direction.TO and e.kind == Kind.FOLLOW and e.action == Action.DELETE:
            acc[e.subject_did, "follows_lost"] += 1
    return +acc, +post


@pytest.mark.parametrize("seed", range(20))
def test_fold_matches_the_per_event_reference_on_random_batches(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_events(rng, rng.randrange(1, 400))
    deltas = fold(events, fallback_us=0)
    acc: Counter[tuple[str, str]] = Counter()
    for (did, _), row in deltas.account.items():
        for name, value in zip(ACCOUNT_COUNTERS, row, strict=True):
            acc[did, name] += value
    post: Counter[tuple[str, str]] = Counter()
    for (uri, _), prow in deltas.post.items():
        for name, value in zip(POST_COUNTERS, prow, strict=True):
            post[uri, name] += value
    assert (+acc, +post) == _reference(events)


@pytest.mark.parametrize("seed", range(10))
def test_folding_two_halves_adds_up_to_folding_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_events(rng, 300)
    cut = rng.randrange(len(events))
    whole = fold(events, fallback_us=0).account
    parts: dict[tuple[str, int], list[int]] = {}
    for half in (events[:cut], events[cut:]):
        for key, row in fold(half, fallback_us=0).account.items():
            parts[key] = [a + b for a, b in zip(parts.get(key, [0] * len(row)), row, strict=True)]
    assert {k: v for k, v in whole.items() if any(v)} == {k: v for k, v in parts.items() if any(v)}
