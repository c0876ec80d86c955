"""Every event kind from built wire frames, through filter → envelope → records."""

from __future__ import annotations

import libipld
import pytest

from relay.car import error_frame
from relay.script import FrameScript
from schemas import Event
from streamer.errors import FrameError
from streamer.filter import MENTIONS, SKIP, FrameFilter
from streamer.frames import decode_envelope
from streamer.records import Memory, frame_events

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # tracked hospital
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"  # tracked agency
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"  # somebody
Y = "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"  # somebody else
TRACKED = {A, B}


class Decoder:
    def __init__(self) -> None:
        self.memory: dict[tuple[str, str], Memory] = {}
        self.filter = FrameFilter(TRACKED)

    def run(self, frames: list[bytes]) -> list[Event]:
        events: list[Event] = []
        for frame in frames:
            verdict = self.filter.classify(frame)
            if verdict == SKIP:
                continue
            env = decode_envelope(frame)
            res = frame_events(
                env, TRACKED, lambda a, p: self.memory.get((a, p)), need_records=verdict == MENTIONS
            )
            self.memory.update({(a, p): m for a, p, m in res.remember})
            for actor, _, _ in res.remember:
                self.filter.add_rememberer(actor)
            events.extend(res.events)
        return events


def facts(events: list[Event]) -> list[tuple[str, str, str, str, str]]:
    return [(e.kind.value, e.action.value, e.direction.value, e.subject_did, e.actor_did) for e in events]


def test_like_of_a_tracked_post_is_an_event_to_its_author() -> None:
    s = FrameScript()
    post = s.post(A, "Campagne de vaccination")
    s.like(X, post)
    events = Decoder().run(s.frames)
    assert facts(events) == [("post", "create", "by", A, A), ("like", "create", "to", A, X)]
    assert events[1].subject_uri == post


def test_unlike_resolves_from_the_remembered_path() -> None:
    s = FrameScript()
    post = s.post(A, "x")
    like = s.like(X, post)
    s.delete(like)
    events = Decoder().run(s.frames)
    assert facts(events)[-1] == ("like", "delete", "to", A, X)
    assert events[-1].subject_uri == post
    assert events[-1].uri == like


def test_unrelated_delete_yields_nothing() -> None:
    s = FrameScript()
    s.delete(s.like(X, f"at://{Y}/app.bsky.feed.post/3kabc"))
    assert Decoder().run(s.frames) == []


def test_repost_and_unrepost_by_and_to() -> None:
    s = FrameScript()
    post = s.post(B, "x")
    rp = s.repost(A, post)  # tracked A reposts tracked B
    s.delete(rp)
    got = facts(Decoder().run(s.frames))[1:]
    assert got == [
        ("repost", "create", "by", A, A),
        ("repost", "create", "to", B, A),
        ("repost", "delete", "by", A, A),
        ("repost", "delete", "to", B, A),
    ]


def test_reply_quote_and_mention_are_events_to_each_tracked_target() -> None:
    s = FrameScript()
    post_a = s.post(A, "x")
    post_b = s.post(B, "y")
    s.post(X, "reply", reply_to=post_a)
    s.post(X, "quote", quote=post_b)
    s.post(X, "hello @a", mentions=(A,))
    s.post(Y, "deep reply", reply_to=f"at://{Y}/app.bsky.feed.post/3kzzz", root=post_b)
    got = facts(Decoder().run(s.frames))[2:]
    assert got == [
        ("reply", "create", "to", A, X),
        ("quote", "create", "to", B, X),
        ("mention", "create", "to", A, X),
        ("reply", "create", "to", B, Y),
    ]


def test_self_reply_counts_as_a_post_only() -> None:
    s = FrameScript()
    post = s.post(A, "1/2")
    s.post(A, "2/2", reply_to=post)
    events = Decoder().run(s.frames)
    assert facts(events) == [("post", "create", "by", A, A)] * 2
    assert events[1].subject_uri == post


def test_follow_and_unfollow_of_a_tracked_account() -> None:
    s = FrameScript()
    follow = s.follow(X, A)
    s.delete(follow)
    events = Decoder().run(s.frames)
    assert facts(events) == [("follow", "create", "to", A, X), ("follow", "delete", "to", A, X)]
    assert events[1].target_did == A


def test_post_delete_handle_and_status_by_the_tracked_account() -> None:
    s = FrameScript()
    s.delete(s.post(A, "oops"))
    s.handle(A, "new-handle.example.org")
    s.status(A, False, "deactivated")
    events = Decoder().run(s.frames)
    assert facts(events) == [
        ("post", "create", "by", A, A),
        ("post", "delete", "by", A, A),
        ("handle", "update", "by", A, A),
        ("account", "update", "by", A, A),
    ]
    assert events[2].handle == "new-handle.example.org"
    assert (events[3].active, events[3].status) == (False, "deactivated")


def test_link_and_text_travel_with_a_tracked_post() -> None:
    s = FrameScript()
    s.post(A, "Regardez", link="https://www.youtube.com/watch?v=abc")
    (event,) = Decoder().run(s.frames)
    assert (event.text, event.link_uri) == ("Regardez", "https://www.youtube.com/watch?v=abc")


def test_record_with_wrong_field_types_is_skipped_by_reason() -> None:
    s = FrameScript()
    s.create(X, "app.bsky.feed.like", {"subject": {"uri": 42, "cid": "x"}, "mention": A})
    env = decode_envelope(s.frames[0])
    result = frame_events(env, TRACKED, lambda a, p: None)
    assert (result.events, result.skipped) == ([], ["bad_record"])


def test_event_indexes_are_stable_within_a_frame() -> None:
    s = FrameScript()
    post = s.post(B, "y")
    s.post(A, "quoting and mentioning", quote=post, mentions=(B,))
    events = Decoder().run(s.frames)[1:]
    assert [(e.seq, e.idx) for e in events] == [(2, 0), (2, 1)]


def test_malformed_frames_raise_typed_errors() -> None:
    unknown_op = libipld.encode_dag_cbor({"op": 2}) + libipld.encode_dag_cbor({})
    for junk, reason in ((b"\xff\x00garbage", "bad_cbor"), (unknown_op, "bad_header")):
        with pytest.raises(FrameError) as caught:
            decode_envelope(junk)
        assert caught.value.reason == reason
    assert decode_envelope(error_frame("FutureCursor")).kind == "error"
