"""The #commit layout decode_envelope accepts without check(): check() passes every frame it
accepts, whatever the bytes (real frames, byte mutations, cuts, lying lengths)."""

from __future__ import annotations

import random

import pytest

from streamer.cbor_bounds import MAX_ITEMS, check
from streamer.errors import BoundsError
from streamer.frames import COMMIT_PREFIX, _bounded_commit

_HEAD = len(COMMIT_PREFIX)


def walked_whole(frame: bytes) -> bool:
    try:
        return check(frame, _HEAD, max_items=MAX_ITEMS - 5) == len(frame)
    except BoundsError:
        return False


def assert_sound(frame: bytes) -> bool:
    accepted = _bounded_commit(frame)
    assert not accepted or walked_whole(frame), frame[:120]
    return accepted


@pytest.fixture(scope="module")
def accepted(real_frames: list[bytes]) -> list[bytes]:
    frames = [f for f in real_frames if _bounded_commit(f)]
    assert len(frames) >= 130  # 141 of the window's 150 frames
    return frames


def test_real_frames_in_the_layout_are_walked_whole(accepted: list[bytes]) -> None:
    for frame in accepted:
        assert walked_whole(frame)


def test_mutated_cut_and_lengthened_frames_are_accepted_only_when_walked_whole(accepted: list[bytes]) -> None:
    rng = random.Random(19)
    still = 0
    for frame in accepted:
        for _ in range(40):
            mutated = bytearray(frame)
            for _ in range(rng.randint(1, 2)):
                zone = rng.random()
                if zone < 0.5:
                    at = rng.randrange(min(len(frame), 300))  # the head: keys, lengths, texts
                elif zone < 0.8:
                    at = len(frame) - 1 - rng.randrange(min(len(frame), 160))  # the tail
                else:
                    at = rng.randrange(len(frame))
                mutated[at] = rng.choice([rng.randrange(256), 0x18, 0x20, 0x78, 0x59, 0xF6, 0x66, 0xF4])
            still += assert_sound(bytes(mutated))
        assert not assert_sound(frame[: rng.randrange(_HEAD, len(frame))])  # cut short
        assert not assert_sound(frame + bytes([rng.randrange(256)]))  # a trailing byte
    assert still > 1000  # many mutations keep the layout: the test exercises acceptance


def test_a_lying_car_or_path_length_is_refused(accepted: list[bytes]) -> None:
    frame = accepted[0]
    car = frame.find(b"\x66blocks\x59") + 8
    path = frame.find(b"\x64path\x78") + 6
    for at, delta in ((car + 1, 1), (car + 1, -1), (car, 1), (path, 1), (path, -1)):
        lying = bytearray(frame)
        lying[at] = (lying[at] + delta) % 256
        assert not _bounded_commit(bytes(lying))
