"""Jetstream decoding: the same events as the relay from the same frames, the raw pre-filter, and a
counted skip (never an exception) for every bad input."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import pytest
import zstandard

from relay.jetstream_convert import convert_frame
from relay.script import FrameScript
from schemas import Event
from streamer.errors import FrameError, FrameReason
from streamer.filter import DELETES_ONLY, DID_TOKEN, MENTIONS, SKIP, FrameFilter
from streamer.frames import Envelope, decode_envelope
from streamer.jetstream_decode import MAX_JSON, Inflater, decode_v1, decode_v2
from streamer.jetstream_filter import JetstreamFilter
from streamer.records import Memory, frame_events

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # tracked
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"  # tracked
X = "did:plc:xxxxxxxxxxxxxxxxxxxxxxxx"  # untracked
Y = "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"  # untracked
TRACKED = {A, B}
NSID = "network.bsky.jetstream.subscribeEvents"


def scenario() -> FrameScript:
    """Every kind, both directions, deletes resolved from memory, engagement by untracked users."""
    s = FrameScript()
    post = s.post(A, "Campagne de vaccination", mentions=(B, X))
    other = s.post(X, "unrelated")
    s.post(X, "bravo", reply_to=post)
    s.post(Y, "vu", quote=post)
    s.post(B, "lien", link="https://example.org")
    like = s.like(X, post)
    s.like(Y, other)  # concerns nobody
    repost = s.repost(Y, post)
    follow = s.follow(X, A)
    s.follow(A, X)
    s.delete(like)
    s.delete(repost)
    s.delete(follow)
    s.delete(post)
    s.handle(A, "chu.example.fr")
    s.handle(X, "x.example")
    s.status(B, False, "deactivated")
    return s


class Relay:
    def __init__(self, tracked: set[str] = TRACKED) -> None:
        self.tracked = tracked
        self.memory: dict[tuple[str, str], Memory] = {}
        self.filter = FrameFilter(tracked)

    def run(self, frames: Iterable[bytes]) -> list[Event]:
        events: list[Event] = []
        for frame in frames:
            verdict = self.filter.classify(frame)
            if verdict != SKIP:
                res = frame_events(
                    decode_envelope(frame), self.tracked, self.recall, need_records=verdict == MENTIONS
                )
                self.memory.update({(a, p): m for a, p, m in res.remember})
                for actor, _, _ in res.remember:
                    self.filter.add_rememberer(actor)
                events.extend(res.events)
        return events

    def recall(self, actor: str, path: str) -> Memory | None:
        return self.memory.get((actor, path))


class Jetstream(Relay):
    def __init__(self, tracked: set[str] = TRACKED, *, v1: bool = False) -> None:
        super().__init__(tracked)
        self.v1 = v1
        self.filter = JetstreamFilter(tracked, v1=v1)
        self.verdicts: list[int] = []

    def run(self, frames: Iterable[bytes]) -> list[Event]:
        events: list[Event] = []
        decode = decode_v1 if self.v1 else decode_v2
        for frame in frames:
            verdict = self.filter.classify(frame)
            self.verdicts.append(verdict)
            if verdict == SKIP:
                continue
            decoded = decode(
                frame, self.tracked, self.recall, need_records=verdict == MENTIONS, source="jetstream2@h"
            )
            assert not isinstance(decoded, Envelope)
            _, res = decoded
            self.memory.update({(a, p): m for a, p, m in res.remember})
            for actor, _, _ in res.remember:
                self.filter.add_rememberer(actor)
            events.extend(res.events)
        return events


def jetstream_frames(frames: list[bytes], *, v1: bool = False) -> list[bytes]:
    out, seq = [], 0
    for frame in frames:
        for pending in convert_frame(frame):
            seq += 1
            time_us = (pending.upstream_us or 1_700_000_000_000_000) + seq
            text = pending.v1(seq, time_us) if v1 else pending.v2(seq, time_us)
            if text is not None:
                out.append(text)
    return out


def identity(e: Event) -> tuple[object, ...]:
    """Everything but the position, the source and a commit's envelope time."""
    return (
        e.kind,
        e.action,
        e.direction,
        e.subject_did,
        e.actor_did,
        e.uri,
        e.subject_uri,
        e.target_did,
        e.created_at,
        e.text,
        e.reply_root,
        e.quote_uri,
        e.link_uri,
        e.handle,
        e.active,
        e.status,
        e.time if e.uri is None else None,
    )


@pytest.mark.parametrize("v1", [False, True], ids=["v2", "v1"])
def test_jetstream_yields_exactly_the_relay_events(v1: bool) -> None:
    frames = scenario().frames
    relay = Relay().run(frames)
    jet = Jetstream(v1=v1)
    events = jet.run(jetstream_frames(frames, v1=v1))
    assert [identity(e) for e in events] == [identity(e) for e in relay]
    kinds = {e.kind.value for e in events}
    assert kinds == {"post", "reply", "quote", "mention", "like", "repost", "follow", "handle", "account"}
    assert {e.source for e in events} == {"jetstream2@h"}
    assert SKIP in jet.verdicts
    assert DELETES_ONLY in jet.verdicts


def test_engagement_from_untracked_repos_is_counted() -> None:
    events = Jetstream().run(jetstream_frames(scenario().frames))
    to_a = {(e.kind.value, e.actor_did) for e in events if e.direction.value == "to" and e.subject_did == A}
    assert {("like", X), ("reply", X), ("quote", Y), ("repost", Y), ("follow", X)} <= to_a


def test_identity_and_account_carry_the_upstream_time() -> None:
    frames = scenario().frames
    jet = [e for e in Jetstream().run(jetstream_frames(frames)) if e.kind.value in ("handle", "account")]
    relay = [e for e in Relay().run(frames) if e.kind.value in ("handle", "account")]
    assert [e.time for e in jet] == [e.time for e in relay]
    assert all(e.time for e in jet)


def commit(record: object, *, seq: int = 7, operation: str = "create") -> bytes:
    payload = {
        "$type": f"{NSID}#commit",
        "seq": seq,
        "did": X,
        "time": "2026-01-01T00:00:00.000000Z",
        "rev": "r",
        "operation": operation,
        "collection": "app.bsky.feed.like",
        "rkey": "k",
        "record": record,
    }
    return json.dumps({"$type": "message", "payload": payload}).encode()


LIKE_OF_A = {"subject": {"uri": f"at://{A}/app.bsky.feed.post/p", "cid": "c"}, "createdAt": "t"}
BAD = {
    FrameReason.BAD_JSON: [b'{"$type":"message","payload":{', b"<html>502</html>", b"[1,2]"],
    FrameReason.BAD_UTF8: [commit(LIKE_OF_A).replace(b'"did"', b'"d\xff"')],
    FrameReason.BAD_BODY: [
        commit("not an object"),
        commit(LIKE_OF_A, seq=-1),
        json.dumps({"$type": "message", "payload": []}).encode(),
        json.dumps(
            {"$type": "message", "payload": {"$type": f"{NSID}#identity", "seq": 1, "did": A}}
        ).encode(),
    ],
    FrameReason.UNKNOWN_TYPE: [
        b'{"$type":"bogus"}',
        json.dumps({"$type": "message", "payload": {"$type": f"{NSID}#future", "seq": 1, "did": A}}).encode(),
    ],
}


@pytest.mark.parametrize(("reason", "frame"), [(r, f) for r, fs in BAD.items() for f in fs])
def test_bad_input_is_a_frame_error_with_its_reason(reason: FrameReason, frame: bytes) -> None:
    with pytest.raises(FrameError) as caught:
        decode_v2(frame, TRACKED, lambda a, p: None, source="s")
    assert caught.value.reason is reason


def test_a_record_of_the_wrong_shape_is_an_op_skip() -> None:
    decoded = decode_v2(commit({"subject": "x"}), TRACKED, lambda a, p: None, source="s")
    assert not isinstance(decoded, Envelope)
    assert [r.value for r in decoded[1].skipped] == ["bad_record"]


def test_error_and_info_frames_are_messages() -> None:
    error = decode_v2(b'{"$type":"error","error":"ConsumerTooSlow"}', TRACKED, lambda a, p: None, source="s")
    info_frame = {"$type": "message", "payload": {"$type": f"{NSID}#info", "name": "OutdatedCursor"}}
    info = decode_v2(json.dumps(info_frame).encode(), TRACKED, lambda a, p: None, source="s")
    assert isinstance(error, Envelope)
    assert error.kind == "error"
    assert error.body["error"] == "ConsumerTooSlow"
    assert isinstance(info, Envelope)
    assert info.kind == "#info"
    for frame in (b'{"$type":"error","error":"ConsumerTooSlow"}', b"garbage", b'{"$type":"message","pay'):
        assert JetstreamFilter(TRACKED).classify(frame) == MENTIONS  # decoded, so counted


def test_the_filter_skips_untracked_and_keeps_tracked_in_any_field() -> None:
    f = JetstreamFilter(TRACKED)
    assert f.classify(commit({"subject": {"uri": f"at://{Y}/app.bsky.feed.post/p"}})) == SKIP
    assert f.classify(commit(LIKE_OF_A)) == MENTIONS
    assert f.classify(commit(None, operation="delete")) == SKIP
    f.add_rememberer(X)
    assert f.classify(commit(None, operation="delete")) == DELETES_ONLY


def test_inflate_caps_the_output() -> None:
    dictionary = zstandard.train_dictionary(4096, [commit(LIKE_OF_A, seq=n) for n in range(400)])
    inflater = Inflater()
    assert inflater.load(dictionary.as_bytes()) == dictionary.dict_id()
    compressor = zstandard.ZstdCompressor(dict_data=dictionary)
    assert inflater.inflate(compressor.compress(commit(LIKE_OF_A))) == commit(LIKE_OF_A)
    bomb = zstandard.ZstdCompressor(dict_data=dictionary).compress(b" " * (MAX_JSON + 1))
    hidden = zstandard.ZstdCompressor(dict_data=dictionary, write_content_size=False).compress(
        b" " * (2 * MAX_JSON)
    )
    for frame, reason in (
        (bomb, "zstd_bomb"),
        (hidden, "zstd_bomb"),
        (b"\x28\xb5\x2f\xfd" + b"x" * 20, "bad_zstd"),
    ):
        with pytest.raises(FrameError) as caught:
            inflater.inflate(frame)
        assert caught.value.reason.value == reason


@pytest.mark.parametrize("wide", [True, False], ids=["every-did-tracked", "three-tracked"])
def test_production_v1_output_of_the_real_window_maps_to_the_relay_events(
    real_frames: list[bytes], expected_v1: list[dict[str, object]], wide: bool
) -> None:
    """Production Jetstream v1's reading of the captured window, decoded by us, yields exactly
    what our relay path yields from the raw frames of that window."""
    mentioned = [d.decode() for frame in real_frames for d in DID_TOKEN.findall(frame)]
    counts = Counter(mentioned)
    tracked = set(counts) if wide else {did for did, _ in counts.most_common(3)}
    expected = [identity(e) for e in Relay(tracked).run(real_frames)]
    lines = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in expected_v1]
    got = [identity(e) for e in Jetstream(tracked, v1=True).run(lines)]
    assert len(expected) > (100 if wide else 3)
    assert sorted(got, key=repr) == sorted(expected, key=repr)
