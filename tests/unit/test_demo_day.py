"""The generated demo day: deterministic, well ordered, with its story (viral post, takeover,
deactivation) in it, and expected totals equal to what bluepulse's own filter → envelope →
records stages make of its frames, folded by the counting rules the aggregator applies."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import libipld
import pytest

from relay.demo_day import DemoDay, demo_day
from schemas import Action, Direction, Event, Kind
from streamer.filter import MENTIONS, SKIP, FrameFilter
from streamer.frames import decode_envelope
from streamer.records import Memory, frame_events

SCALE = 0.3
START = datetime(2026, 11, 2, tzinfo=UTC)
RECEIVED = {
    Kind.LIKE: "likes",
    Kind.REPOST: "reposts",
    Kind.REPLY: "replies",
    Kind.QUOTE: "quotes",
    Kind.MENTION: "mentions",
}
ENGAGEMENT = (Kind.LIKE, Kind.REPOST, Kind.REPLY, Kind.QUOTE)


class Decoded:
    """Every frame through the streamer's stages, with an in-memory recall of remembered paths."""

    def __init__(self, day: DemoDay) -> None:
        tracked = {a.did for a in day.accounts}
        flt = FrameFilter(tracked)
        memory: dict[tuple[str, str], Memory] = {}
        self.verdicts: Counter[int] = Counter()
        self.events: list[Event] = []
        for frame in day.frames:
            verdict = flt.classify(frame)
            self.verdicts[verdict] += 1
            if verdict == SKIP:
                continue
            env = decode_envelope(frame)
            res = frame_events(
                env, tracked, lambda a, p: memory.get((a, p)), need_records=verdict == MENTIONS
            )
            for actor, path, remembered in res.remember:
                memory[(actor, path)] = remembered
                flt.add_rememberer(actor)
            self.events.extend(res.events)


def fold(events: list[Event], dids: list[str]) -> dict[str, dict[str, int]]:
    """Net totals: posts by the account, engagement and follows received by it."""
    keys = ("posts", *RECEIVED.values(), "follows_gained", "follows_lost")
    totals = {did: dict.fromkeys(keys, 0) for did in dids}
    created: set[str | None] = set()
    for e in events:
        sign = -1 if e.action == Action.DELETE else 1
        row = totals[e.subject_did]
        if e.direction == Direction.BY:
            # a post deleted that was never seen created does not lower the count
            if e.kind == Kind.POST and (sign > 0 or e.uri in created):
                row["posts"] += sign
                created.add(e.uri)
        elif e.kind == Kind.FOLLOW:
            row["follows_gained" if sign > 0 else "follows_lost"] += 1
        elif e.kind in RECEIVED:
            row[RECEIVED[e.kind]] += sign
    return totals


def when(event: Event) -> datetime:
    return datetime.fromisoformat(event.time.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def day() -> DemoDay:
    return demo_day(seed=11, scale=SCALE)


@pytest.fixture(scope="module")
def decoded(day: DemoDay) -> Decoded:
    return Decoded(day)


@pytest.fixture(scope="module")
def full_day() -> tuple[DemoDay, Decoded]:
    """The default day at full volume (~12 000 frames, under a second to build)."""
    day = demo_day()
    return day, Decoded(day)


def test_same_seed_gives_identical_frames_and_another_seed_does_not(day: DemoDay) -> None:
    again = demo_day(seed=11, scale=SCALE)
    assert again.frames == day.frames
    assert again.expected == day.expected
    other = demo_day(seed=12, scale=SCALE)
    assert other.frames != day.frames
    assert {a.did for a in other.accounts}.isdisjoint(a.did for a in day.accounts)


def test_accounts_are_fictional_establishments_with_valid_dids(day: DemoDay) -> None:
    assert len(day.accounts) == 12
    assert len({a.did for a in day.accounts}) == 12
    assert all(re.fullmatch(r"did:plc:[a-z2-7]{24}", a.did) for a in day.accounts)
    assert all(a.handle.endswith(".bsky.social") and "exemple" in a.handle for a in day.accounts)
    assert {"CHU", "ARS", "syndicat", "clinique"} <= {a.category for a in day.accounts}
    assert set(day.expected) == {a.did for a in day.accounts}


def test_seq_strictly_increases_and_time_never_goes_back(day: DemoDay) -> None:
    bodies = [libipld.decode_dag_cbor_multi(frame)[1] for frame in day.frames]
    seqs = [body["seq"] for body in bodies]
    times = [datetime.fromisoformat(body["time"].replace("Z", "+00:00")) for body in bodies]
    assert all(a < b for a, b in itertools.pairwise(seqs))
    assert all(a <= b for a, b in itertools.pairwise(times))
    assert times[0] >= START
    assert times[-1] < START + timedelta(hours=24)


@pytest.mark.parametrize(("seed", "scale"), [(11, SCALE), (3, 0.15)])
def test_expected_totals_are_what_the_decoder_produces(seed: int, scale: float) -> None:
    day = demo_day(seed=seed, scale=scale)
    got = fold(Decoded(day).events, [a.did for a in day.accounts])
    assert got == day.expected
    assert all(sum(row.values()) > 0 for row in got.values())


def test_most_frames_concern_nobody_tracked(decoded: Decoded) -> None:
    assert decoded.verdicts[SKIP] > 4 * (decoded.verdicts.total() - decoded.verdicts[SKIP])


def test_full_day_totals_are_what_the_decoder_produces(full_day: tuple[DemoDay, Decoded]) -> None:
    day, decoded = full_day
    assert 5_000 <= len(day.frames) <= 15_000
    assert fold(decoded.events, [a.did for a in day.accounts]) == day.expected


def test_viral_post_gets_far_more_than_any_other_within_an_hour(full_day: tuple[DemoDay, Decoded]) -> None:
    day, decoded = full_day
    posted = next(when(e) for e in decoded.events if e.uri == day.viral_post and e.kind == Kind.POST)
    received = [e for e in decoded.events if e.kind in ENGAGEMENT and e.direction == Direction.TO]
    per_post = Counter(e.subject_uri for e in received)
    viral = per_post.pop(day.viral_post)
    burst = sum(e.subject_uri == day.viral_post and when(e) < posted + timedelta(hours=1) for e in received)
    assert burst >= 5 * max(per_post.values())
    assert burst >= 0.8 * viral


def test_takeover_night(day: DemoDay, decoded: Decoded) -> None:
    """New handle at night, a burst of posts, reposts of an unknown video, a mass delete."""
    did = day.takeover_did
    night = [e for e in decoded.events if e.actor_did == did and when(e) < START + timedelta(hours=3)]
    original = next(a.handle for a in day.accounts if a.did == did)
    handles = [e.handle for e in decoded.events if e.kind == Kind.HANDLE and e.subject_did == did]
    assert handles[0] != original
    assert handles[-1] == original
    posts = [e for e in night if e.kind == Kind.POST and e.action == Action.CREATE]
    later = [e for e in decoded.events if e.actor_did == did and e.action == Action.CREATE and e not in night]
    assert len(posts) >= 5
    assert len(posts) > 2 * sum(e.kind == Kind.POST for e in later)
    assert any("youtube.com" in (e.link_uri or "") for e in posts)
    reposted = {e.subject_uri or "" for e in night if e.kind == Kind.REPOST and e.action == Action.CREATE}
    assert reposted
    assert all(uri[5:].split("/")[0] not in day.expected for uri in reposted)
    for uri in reposted:
        path = uri.split("/", 3)[3].encode()
        assert any(path in f and b"youtube.com/watch" in f for f in day.frames)
    assert sum(e.kind == Kind.POST and e.action == Action.DELETE for e in night) >= 4


def test_deactivation_late_in_the_day_and_silence_after(day: DemoDay, decoded: Decoded) -> None:
    did = day.deactivated_did
    (status,) = [e for e in decoded.events if e.kind == Kind.ACCOUNT and e.subject_did == did]
    assert (status.active, status.status) == (False, "deactivated")
    assert when(status) > START + timedelta(hours=18)
    assert not [e for e in decoded.events if e.actor_did == did and e.seq > status.seq]


def test_self_engagement_is_generated_but_not_expected(full_day: tuple[DemoDay, Decoded]) -> None:
    events = full_day[1].events
    self_likes = [
        e for e in events if e.kind == Kind.LIKE and (e.subject_uri or "").startswith(f"at://{e.actor_did}/")
    ]
    assert self_likes
    assert all(e.direction == Direction.BY for e in self_likes)
