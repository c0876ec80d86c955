"""The fold's inlined loop gives exactly what the per-event, call-per-count fold gave: the
same rows in the same order, the same post owners, states, handle and status changes."""

from __future__ import annotations

import random
from collections.abc import Collection

import pytest

from aggregator.counters import ACCOUNT_COUNTERS, POST_COUNTERS
from aggregator.fold import POST_KINDS, RULES, Deltas, Rule, _deleted_post_uris, _remember, fold
from aggregator.timeparse import MINUTE_US, parse_times_us
from schemas import Action, Direction, Event, Kind

DIDS = ["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]
URIS = [f"at://{DIDS[0]}/app.bsky.feed.post/p{i}" for i in range(4)] + [None]
_UNSEEN: Rule = (
    ((ACCOUNT_COUNTERS.index("posts_deleted"), 1), (ACCOUNT_COUNTERS.index("deletes"), 1)),
    None,
)


def _reference(events: list[Event], fallback_us: int, seen: Collection[str] | None) -> Deltas:
    """The fold as it was: a `_count` call per counted event."""
    out = Deltas()
    created: set[str] = set()
    out.times_us, out.bad_times = parse_times_us([e.time for e in events], fallback_us)
    out.dids.update(e.subject_did for e in events)
    for event, time_us in zip(events, out.times_us, strict=True):
        rule = RULES.get((event.direction, event.kind, event.action))
        if seen is not None and event.kind in POST_KINDS and event.direction == Direction.BY:
            if event.action != Action.DELETE:
                created.add(event.uri or "")
            elif not (event.uri in seen or event.uri in created):
                rule = _UNSEEN
        if rule is not None:
            minute = time_us // MINUTE_US * 60
            row = out.account.setdefault((event.subject_did, minute), [0] * len(ACCOUNT_COUNTERS))
            for column, delta in rule[0]:
                row[column] += delta
            uri = event.subject_uri
            if rule[1] is not None and uri is not None:
                if (uri, minute) not in out.post:
                    out.post[uri, minute] = [0] * len(POST_COUNTERS)
                    out.post_owner.setdefault(uri, event.subject_did)
                out.post[uri, minute][rule[1][0]] += rule[1][1]
        if event.kind in POST_KINDS | {Kind.HANDLE, Kind.ACCOUNT}:
            _remember(out, event, time_us)
    return out


def _batch(rng: random.Random, count: int) -> list[Event]:
    times = [f"2026-07-04T14:{m:02d}:{s:02d}.{rng.randrange(1000):03d}Z" for m in (1, 2, 3) for s in (0, 59)]
    return [
        Event(
            seq=i,
            idx=0,
            kind=rng.choice(list(Kind)),
            action=rng.choice(list(Action)),
            direction=rng.choice(list(Direction)),
            subject_did=rng.choice(DIDS),
            actor_did=rng.choice(DIDS),
            time=rng.choice([*times, "not a time"]),
            uri=rng.choice(URIS),
            subject_uri=rng.choice(URIS),
            text=rng.choice(["hi", None]),
            created_at=rng.choice(["2026-07-04T14:00:00Z", None]),
            handle=rng.choice(["h.example.com", None]),
            active=rng.choice([True, False, None]),
            status=rng.choice(["deactivated", None]),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("seed", range(30))
def test_fold_is_the_per_event_fold_row_for_row(seed: int) -> None:
    rng = random.Random(seed)
    events = _batch(rng, rng.randrange(1, 500))
    seen = [None, set(), {u for u in URIS[:2] if u}][seed % 3]
    got, want = fold(events, fallback_us=7, seen_posts=seen), _reference(events, 7, seen)
    assert list(got.account.items()) == list(want.account.items())
    assert list(got.post.items()) == list(want.post.items())
    assert list(got.post_owner.items()) == list(want.post_owner.items())
    assert list(got.posts.items()) == list(want.posts.items())
    assert (got.handles, got.statuses, got.dids) == (want.handles, want.statuses, want.dids)
    assert (got.times_us, got.bad_times) == (want.times_us, want.bad_times)


@pytest.mark.parametrize("seed", range(10))
def test_deleted_post_uris_are_those_of_the_post_deletes_by_the_account(seed: int) -> None:
    events = _batch(random.Random(seed), 300)
    want = {
        e.uri
        for e in events
        if e.action == Action.DELETE and e.direction == Direction.BY and e.kind in POST_KINDS and e.uri
    }
    assert _deleted_post_uris(events) == want
