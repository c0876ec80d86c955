"""The direct read of a like/repost/follow record gives exactly what libipld + records.py give.

streamer/records.py reads the fields of a one-record commit's like, repost or follow straight
from the block bytes (`fixed_record`) and declines (returns None: the block is decoded as before)
on any surprise. Compared here frame by frame against the general path (the direct read turned
off): the same events, remembered paths and op skips, or the same FrameReason, on the real
window's records, mutated records and hypothesis-generated records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.car import car_v1, cid_for, dag_cbor, link
from streamer import records
from streamer.errors import FrameError
from streamer.frames import decode_block, decode_envelope, find_block
from streamer.records import LIKE, REPOST, fixed_record, frame_events

ACTOR = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
TARGET = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
FOLLOW = "app.bsky.graph.follow"
COLLECTIONS = (LIKE, REPOST, FOLLOW)
TRACKED_SETS = (
    frozenset({TARGET}),
    frozenset({ACTOR}),
    frozenset({ACTOR, TARGET}),
    frozenset(),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame_with_block(block: bytes, collection: str, action: str = "create", repo: str = ACTOR) -> bytes:
    """A #commit frame with one op whose record block is `block`, bytes as given."""
    cid = cid_for(block)
    commit = dag_cbor({"did": repo, "rev": "3k", "data": link(cid_for(b"mst")), "version": 3})
    commit_cid = cid_for(commit)
    body = {
        "ops": [{"action": action, "path": f"{collection}/3kabc", "cid": link(cid)}],
        "rev": "3kabc",
        "seq": 7,
        "repo": repo,
        "time": "2026-01-01T00:00:00.000Z",
        "blobs": [],
        "since": None,
        "blocks": car_v1(commit_cid, [(commit_cid, commit), (cid, block)]),
        "commit": link(commit_cid),
        "rebase": False,
        "tooBig": False,
        "prevData": None,
    }
    return dag_cbor({"op": 1, "t": "#commit"}) + dag_cbor(body)


def outcome(frame: bytes, tracked: frozenset[str], *, direct: bool) -> Any:
    """events, remembered paths and op skips of the frame, or its skip reason."""
    saved = records.fixed_record
    if not direct:
        records.fixed_record = lambda _block, _follow: None
    try:
        result = frame_events(decode_envelope(frame), tracked, lambda _a, _p: None)
    except FrameError as exc:
        return exc.reason
    finally:
        records.fixed_record = saved
    return result.events, result.remember, result.skipped


def assert_same(block: bytes, collection: str) -> bool:
    """Both paths agree on every tracked set and action; True when the direct read answered."""
    answered = fixed_record(block, collection == FOLLOW) is not None
    if answered:  # where it answers, the block decodes (no skip) to a dict
        assert isinstance(decode_block(block), dict)
    for action in ("create", "update"):
        frame = frame_with_block(block, collection, action)
        for tracked in TRACKED_SETS:
            assert outcome(frame, tracked, direct=True) == outcome(frame, tracked, direct=False), (
                block,
                collection,
                tracked,
            )
    return answered


def _window_records(frames: list[bytes]) -> Iterator[tuple[bytes, str]]:
    for frame in frames:
        try:
            body = decode_envelope(frame).body
        except FrameError:
            continue
        for op in body.get("ops") or []:
            collection = str(op.get("path")).split("/")[0]
            if collection in COLLECTIONS and isinstance(op.get("cid"), bytes):
                block = find_block(body, op["cid"])
                if block is not None:
                    yield block, collection


def test_real_window_records(real_frames: list[bytes]) -> None:
    found = list(_window_records(real_frames))
    assert len(found) > 20
    answered = sum(assert_same(block, collection) for block, collection in found)
    assert answered > len(found) // 2  # the direct read is the common case


def test_real_frames_whole(real_frames: list[bytes]) -> None:
    """Every real frame, with its actor or its subject tracked: the two paths agree."""
    for frame in real_frames:
        try:
            env = decode_envelope(frame)
        except FrameError:
            continue
        if env.kind != "#commit":
            continue
        repo = env.body.get("repo")
        dids = {repo} if isinstance(repo, str) else set()
        for tracked in (frozenset(dids), frozenset({TARGET}), frozenset()):
            assert outcome(frame, tracked, direct=True) == outcome(frame, tracked, direct=False)


def test_mutated_real_records(real_frames: list[bytes]) -> None:
    rng = random.Random(17)
    for block, collection in list(_window_records(real_frames))[:60]:
        for _ in range(25):
            mutated = bytearray(block)
            at = rng.randrange(len(mutated))
            mutated[at] = rng.choice([rng.randrange(256), mutated[at] ^ 1, 0x78, 0x79, 0x60, 0xFF])
            assert_same(bytes(mutated), collection)
        for cut in (1, 2, len(block) // 2):
            assert_same(block[:-cut], collection)
        assert_same(block + b"\x00", collection)
        assert_same(block, FOLLOW if collection != FOLLOW else LIKE)  # the other shape


def _text_head(length: int) -> bytes:
    return bytes([0x60 + length]) if length < 24 else b"\x78" + bytes([length])


def test_edges_decline_or_agree() -> None:
    created, uri = "2026-01-01T00:00:00.000Z", f"at://{TARGET}/app.bsky.feed.post/3k"
    like = {"$type": LIKE, "subject": {"cid": "bafy", "uri": uri}, "createdAt": created}
    block = dag_cbor(like)
    assert fixed_record(block, False) == (TARGET, uri, created)
    assert_same(block, LIKE)
    # a non-minimal length head (0x78 with a length under 24): declined, both agree
    short = block.replace(b"\x64bafy", b"\x78\x04bafy")
    assert fixed_record(short, False) is None
    assert_same(short, LIKE)
    # a via (new lexicon field), a missing createdAt, a subject that is not a strong ref
    for record in (
        {**like, "via": {"cid": "x", "uri": uri}},
        {"$type": LIKE, "subject": {"cid": "bafy", "uri": uri}},
        {**like, "subject": {"cid": "bafy", "uri": 5}},
        {**like, "subject": uri},
        {**like, "createdAt": None},
    ):
        assert fixed_record(dag_cbor(record), False) is None
        assert_same(dag_cbor(record), LIKE)
    follow = {"$type": FOLLOW, "subject": TARGET, "createdAt": created}
    assert fixed_record(dag_cbor(follow), True) == (TARGET, None, created)
    for subject in ("not-a-did", ACTOR, "did:" + "x" * 300):
        assert_same(dag_cbor({**follow, "subject": subject}), FOLLOW)
    assert fixed_record(dag_cbor({**follow, "subject": "handle.example"}), True) is None
    bad_utf8 = dag_cbor(follow).replace(b"createdAt\x78\x18", b"createdAt\x78\x18\xff", 1)[:-1]
    assert fixed_record(bad_utf8, True) is None
    assert_same(bad_utf8, FOLLOW)


dids = st.sampled_from([ACTOR, TARGET, "did:web:example.com", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"])
texts = st.one_of(
    st.text(max_size=30),
    st.text(min_size=250, max_size=300),
    dids,
    dids.map(lambda did: f"at://{did}/app.bsky.feed.post/3k"),
)
values = st.one_of(texts, st.none(), st.integers(-5, 5), st.binary(max_size=8), st.booleans())
strong_refs = st.one_of(
    st.fixed_dictionaries({"cid": texts, "uri": texts}),
    st.fixed_dictionaries({"cid": values, "uri": values}),
    st.dictionaries(st.sampled_from(["cid", "uri", "other"]), values, max_size=3),
)
generated = st.fixed_dictionaries(
    {
        "$type": st.one_of(st.sampled_from(COLLECTIONS), texts),
        "subject": st.one_of(strong_refs, texts, values),
    },
    optional={
        "createdAt": st.one_of(texts, values),
        "via": strong_refs,
        "extra": values,
    },
)

shaped = st.one_of(  # the layouts the direct read answers for, with any texts in them
    st.fixed_dictionaries(
        {"$type": texts, "subject": st.fixed_dictionaries({"cid": texts, "uri": texts}), "createdAt": texts}
    ),
    st.fixed_dictionaries({"$type": texts, "subject": texts, "createdAt": texts}),
)
records_ = st.one_of(shaped, generated)


@FAST
@given(record=records_, collection=st.sampled_from(COLLECTIONS))
def test_generated_records(record: dict[str, Any], collection: str) -> None:
    assert_same(dag_cbor(record), collection)


@FAST
@given(
    record=records_,
    collection=st.sampled_from(COLLECTIONS),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_generated_records_mutated(
    record: dict[str, Any], collection: str, edits: list[tuple[int, int]]
) -> None:
    block = bytearray(dag_cbor(record))
    for at, value in edits:
        block[at % len(block)] = value
    assert_same(bytes(block), collection)


@FAST
@given(block=st.binary(max_size=120), collection=st.sampled_from(COLLECTIONS))
def test_random_bytes(block: bytes, collection: str) -> None:
    assert_same(b"\xa3\x65$type" + block, collection)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_direct_read_is_taken(collection: str) -> None:
    """Not vacuous: a canonical record is read directly, and a tracked target gets its event."""
    subject: Any = TARGET if collection == FOLLOW else {"cid": "b", "uri": f"at://{TARGET}/p/1"}
    block = dag_cbor({"$type": collection, "subject": subject, "createdAt": "t"})
    assert fixed_record(block, collection == FOLLOW) is not None
    events, remember, skipped = outcome(frame_with_block(block, collection), frozenset({TARGET}), direct=True)
    assert [(e.kind.value, e.direction.value, e.subject_did) for e in events] == [
        (collection.rsplit(".", 1)[1], "to", TARGET)
    ]
    assert remember
    assert not skipped
