"""The decoder's fast paths give exactly the outcome of the bounds walk then libipld.

streamer/frames.py skips check() for a small record block with few container bytes (libipld
decodes it directly) and walks only the body of a #commit frame (its header is the fixed
COMMIT_PREFIX). Both must return the same value or raise the same FrameReason as the slow path,
whatever the bytes: compared here on real blocks, hostile blocks and random byte mutations.
"""

from __future__ import annotations

import random
from typing import Any

import libipld
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.mutate import deep_value
from streamer.cbor_bounds import MAX_DEPTH, MAX_ITEMS, check
from streamer.errors import BoundsError, FrameError, FrameReason
from streamer.frames import COMMIT_PREFIX, _decode_block, decode_blocks, decode_envelope

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOUP = [0x80, 0x81, 0x82, 0xA1, 0x61, 0x41, 0x00, 0x01, 0xFA, 0xD9, 0xF6, 0x18]  # heads and fillers
_DECODE_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, IndexError)


def slow_block(block: bytes) -> Any:
    """The decoder before the fast path: check(), trailing bytes, then libipld."""
    try:
        end = check(block)
    except BoundsError as exc:
        return exc.reason
    if end != len(block):
        return FrameReason.BAD_CAR
    try:
        return ("value", libipld.decode_dag_cbor(block))
    except _DECODE_ERRORS:
        return FrameReason.BAD_CAR  # decode_blocks' reason for a libipld error


def fast_block(block: bytes) -> Any:
    try:
        return ("value", _decode_block(block))
    except FrameError as exc:
        return exc.reason
    except _DECODE_ERRORS:
        return FrameReason.BAD_CAR


def assert_same_block(block: bytes) -> None:
    assert fast_block(block) == slow_block(block), block[:80]


def slow_envelope_walk(frame: bytes) -> int | FrameReason:
    try:
        return check(frame, count=2)
    except BoundsError as exc:
        return exc.reason


def fast_envelope_walk(frame: bytes) -> int | FrameReason:
    try:
        return check(frame, len(COMMIT_PREFIX), max_items=MAX_ITEMS - 5)
    except BoundsError as exc:
        return exc.reason


def _record_blocks(frames: list[bytes]) -> list[bytes]:
    blocks = []
    for frame in frames:
        try:
            body = decode_envelope(frame).body
        except FrameError:
            continue
        car = body.get("blocks")
        cids = {op["cid"] for op in body.get("ops") or [] if isinstance(op.get("cid"), bytes)}
        if isinstance(car, bytes):
            blocks += [car[car.rfind(cid) + 36 :] for cid in cids if car.rfind(cid) > 0]
    return blocks


@pytest.fixture(scope="module")
def real_blocks(real_frames: list[bytes]) -> list[bytes]:
    blocks = []
    for raw in _record_blocks(real_frames):  # a record block is the CAR's section after its CID
        try:
            blocks.append(raw[: check(raw)])
        except BoundsError:
            continue
    assert len(blocks) > 50
    return blocks


# headers libipld accepts but DAG-CBOR (and check) forbid, or that only check refuses
HOSTILE = [
    b"\xfa\x3f\x80\x00\x00",  # 32-bit float
    b"\xa1\x61a\xfa\x3f\x80\x00\x00",
    b"\xd9\x00\x2a\x58\x25\x00\x01q\x12 " + bytes(32),  # tag 42, non-minimal
    b"\xda\x00\x00\x00\x2a\x58\x25\x00\x01q\x12 " + bytes(32),
    b"\xdb" + bytes(7) + b"\x2a\x58\x25\x00\x01q\x12 " + bytes(32),
    b"\xd8\x2a\x58\x25\x00\x01q\x12 " + bytes(32),  # a fine link
    b"\x9f\x01\xff",
    b"\xf7",
    b"\xf8\x20",
    b"\xc1\x01",
    b"\x01\x02",  # trailing bytes
    b"\x5b\x00\x00\x01\x00\x00\x00\x00\x00",  # a lying length
    b"\x9b\x00\x00\x01\x00\x00\x00\x00\x00",
    deep_value(MAX_DEPTH),
    deep_value(MAX_DEPTH + 1),
    b"\x81" * 40 + b"\x00",
    b"\xa1\x61a" * 33 + b"\x00",
    b"\x99\xc3\x50" + b"\x00" * 50_000,  # too many items
]


@pytest.mark.parametrize("block", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_blocks_take_the_outcome_of_the_slow_path(block: bytes) -> None:
    assert_same_block(block)


def test_real_blocks_and_their_mutations_decode_as_before(real_blocks: list[bytes]) -> None:
    rng = random.Random(17)
    for block in real_blocks:
        assert_same_block(block)
        for _ in range(30):
            mutated = bytearray(block)
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(mutated))
                mutated[at] = rng.choice([rng.randrange(256), 0xFA, 0xD9, 0x9F, 0xB8, 0x81, 0x5B])
            assert_same_block(bytes(mutated))
            assert_same_block(block[: rng.randrange(len(block))])  # cut short


@FAST
@given(st.binary(max_size=64))
def test_any_bytes_as_a_block_decode_as_before(data: bytes) -> None:
    assert_same_block(data)


@FAST
@given(st.lists(st.sampled_from(SOUP), max_size=80))
def test_container_soups_decode_as_before(heads: list[int]) -> None:
    assert_same_block(bytes(heads))


def test_the_commit_body_walk_matches_the_whole_frame_walk(real_frames: list[bytes]) -> None:
    rng = random.Random(18)
    commits = [frame for frame in real_frames if frame.startswith(COMMIT_PREFIX)]
    assert commits
    for frame in commits:
        assert fast_envelope_walk(frame) == slow_envelope_walk(frame) == len(frame)
        head = len(COMMIT_PREFIX)
        for _ in range(20):
            mutated = bytearray(frame)
            at = rng.randrange(head, min(len(frame), head + 400))  # the body's fields
            mutated[at] = rng.randrange(256)
            assert fast_envelope_walk(bytes(mutated)) == slow_envelope_walk(bytes(mutated))
            cut = frame[: rng.randrange(head, len(frame))]
            assert fast_envelope_walk(cut) == slow_envelope_walk(cut)


def test_the_commit_body_walk_keeps_the_item_limit_to_the_item() -> None:
    body_items = MAX_ITEMS - 6  # + 2 top-level + 4 header entries = MAX_ITEMS: allowed
    for owed, expected in ((body_items, None), (body_items + 1, FrameReason.TOO_MANY_ITEMS)):
        frame = COMMIT_PREFIX + b"\x99" + owed.to_bytes(2) + b"\x00" * owed
        assert slow_envelope_walk(frame) == fast_envelope_walk(frame)
        assert fast_envelope_walk(frame) == (expected or len(frame))


def test_one_wanted_cid_and_a_set_find_the_same_blocks(real_frames: list[bytes]) -> None:
    for frame in real_frames:
        try:
            body = decode_envelope(frame).body
        except FrameError:
            continue
        for op in body.get("ops") or []:
            cid = op.get("cid")
            if isinstance(cid, bytes):
                one = decode_blocks(body, {cid})
                assert one == {k: v for k, v in decode_blocks(body, {cid, b"x" * 36}).items() if k == cid}
    with pytest.raises(FrameError) as raised:  # a short wanted CID never matches: every section walked
        decode_blocks({"blocks": b"\x01\x00\x05" + b"\x00" * 5}, {b"\x00"})
    assert raised.value.reason is FrameReason.BAD_CAR
