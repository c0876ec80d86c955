"""The filter's one-create fast path decides every frame it matches as the general path does."""

from __future__ import annotations

import random

from streamer.filter import _ONE_CREATE, DID_TOKEN, MENTIONS, SKIP, FrameFilter
from streamer.frames import decode_envelope
from streamer.names import NameMatcher
from streamer.records import frame_events


def _filters(did: str, repo: str) -> list[FrameFilter]:
    remembering = FrameFilter([did], [repo])
    named = FrameFilter([did], names=NameMatcher({did: ["the", "a", "bluesky"]}))
    return [FrameFilter([did]), remembering, named]


def test_fast_path_matches_most_real_frames_and_agrees_with_the_general_path(
    real_frames: list[bytes],
) -> None:
    fast = 0
    for frame in real_frames:
        if _ONE_CREATE(frame) is None:
            continue
        fast += 1
        repo = decode_envelope(frame).body["repo"]
        dids = {d.decode() for d in DID_TOKEN.findall(frame)} | {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}
        for did in dids:
            for flt in _filters(did, repo):
                assert flt.classify(frame) == flt._classify_general(frame), (did, repo)
    assert fast >= 130  # likes, reposts, follows and posts: 140 of the window's 150 frames


def test_fast_path_agrees_on_mutated_heads_and_tails(real_frames: list[bytes]) -> None:
    """One byte changed anywhere in the parsed head or in the record tail: the fast path
    either declines (another layout) or decides as the general path does."""
    rng = random.Random(17)
    matched = [f for f in real_frames if _ONE_CREATE(f) is not None]
    for frame in matched[::7]:
        repo = decode_envelope(frame).body["repo"]
        dids = sorted({d.decode() for d in DID_TOKEN.findall(frame)})
        for _ in range(150):
            at = rng.randrange(200) if rng.random() < 0.6 else len(frame) - 1 - rng.randrange(900)
            mutated = bytearray(frame)
            mutated[at] = rng.choice([rng.randrange(256), ord("/"), 0x20, 0x3B, 0x78, ord("d")])
            variant = bytes(mutated)
            for flt in _filters(rng.choice(dids), repo):
                assert flt.classify(variant) == flt._classify_general(variant), (at, variant[at])


def test_an_rkey_spelling_the_repo_key_is_read_from_the_layout(real_frames: list[bytes]) -> None:
    """An rkey of TID letters may spell `drepox` (CBOR "repo" + a text head): the general path
    then misreads the repo and scans the whole frame; the fast path reads the true one, and its
    verdict stays sound (the decoder finds an event exactly when it keeps the frame)."""
    like = next(f for f in real_frames if _ONE_CREATE(f) is not None and b"app.bsky.feed.like/" in f[:120])
    rkey = like.find(b"app.bsky.feed.like/") + len(b"app.bsky.feed.like/")
    forged = like[:rkey] + b"drepox2222222" + like[rkey + 13 :]
    assert _ONE_CREATE(forged) is not None
    env = decode_envelope(forged)
    body = env.body
    did = next(d.decode() for d in DID_TOKEN.findall(forged) if d.decode() != body["repo"])
    for tracked in ({body["repo"]}, {did}, {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}):
        verdict = FrameFilter(tracked).classify(forged)
        events = frame_events(env, tracked, lambda a, p: None).events
        assert (verdict == MENTIONS) == bool(events), (tracked, verdict)
        assert verdict in (MENTIONS, SKIP)
