"""The emulator's zstd dictionary for v2 dict-zstd frames, trained once on the real window.

Production Jetstream serves one structured zstd dictionary (`getZstdDictionary`) trained on its
own traffic; ours is the same kind of blob (magic, ID, entropy tables) trained on the real
capture's converted events and kept in `jetstream.zdict`, so the emulator needs no corpus at run
time. Rebuild: `.venv/bin/python -m relay.jetstream_dictionary CAPTURE`. Retiring a dictionary
only changes the ID in its header (`with_id`): frames name the ID they were compressed with.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import zstandard

from relay.capture import read_frames
from relay.jetstream_convert import Pending, convert_frame

PATH: Final = Path(__file__).with_name("jetstream.zdict")
DICT_ID: Final = 734_001
_MAGIC: Final = 0xEC30A437
_SIZE: Final = 16_384
_COPIES: Final = 12  # each event rendered under several seqs/times: enough samples to train on


def load() -> bytes:
    """The committed dictionary's raw bytes."""
    return PATH.read_bytes()


def dictionary_id(blob: bytes) -> int:
    """The ID a structured dictionary carries in its header (what `zstdDictionary=` names)."""
    magic, dict_id = struct.unpack_from("<II", blob)
    if magic != _MAGIC:
        raise ValueError("not a zstd dictionary")
    return int(dict_id)


def with_id(blob: bytes, dict_id: int) -> bytes:
    """The same dictionary under another ID (a rotation: the old ID becomes unknown)."""
    return blob[:4] + struct.pack("<I", dict_id) + blob[8:]


def train(events: Sequence[Pending], dict_id: int = DICT_ID) -> bytes:
    """A structured dictionary trained on v2 frames of `events`."""
    samples: list[bytes | bytearray | memoryview] = [
        event.v2(100_000 * k + i + 1, 1_783_175_888_000_000 + 7_919_000 * k + 1_231 * i)
        for k in range(_COPIES)
        for i, event in enumerate(events)
    ]
    return zstandard.train_dictionary(_SIZE, samples, dict_id=dict_id, level=3).as_bytes()


def main(argv: Sequence[str]) -> int:
    events = [event for frame in read_frames(argv[0]) for event in convert_frame(frame)]
    PATH.write_bytes(train(events))
    print(f"{PATH}: {PATH.stat().st_size} bytes, id {DICT_ID}, trained on {len(events)} events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
