"""Hostile frames made from real ones, for the fuzzer and the hostile stream test.

Each mutation takes a real frame (split once into header, body, CAR sections and item heads)
and returns bytes a hostile or broken relay could send: truncations, bit flips, length lies,
type swaps, invalid UTF-8, deep nesting (up to a 200 000-deep valid record), block swaps, CAR
section lies, unknown message types. This module splits frames and builds the pieces; the
mutation catalogue itself is relay.mutations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import libipld

from relay.car import dag_cbor
from streamer.frames import read_varint

DEEP: Final = 200_000  # the nesting that raised RecursionError in libipld
ENVELOPE_LIMIT: Final = 4096  # item heads are indexed in the envelope's first bytes only


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def bytes_head(n: int) -> bytes:
    """The CBOR head of a byte string of `n` bytes."""
    if n < 24:
        return bytes((0x40 + n,))
    size = 1 if n < 0x100 else 2 if n < 0x10000 else 4 if n < 0x100000000 else 8
    return bytes((0x58 + size.bit_length() - 1,)) + n.to_bytes(size)


def car_sections(car: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(CAR header block, [(36-byte CID, block data)]) of a well-formed CAR v1."""
    pos, length = read_varint(car, 0)
    header, pos = car[pos : pos + length], pos + length
    sections = []
    while pos < len(car):
        pos, length = read_varint(car, pos)
        sections.append((car[pos : pos + 36], car[pos + 36 : pos + length]))
        pos += length
    return header, sections


def build_car(header: bytes, sections: Sequence[tuple[bytes, bytes]]) -> bytes:
    parts = [varint(len(header)), header]
    for cid, data in sections:
        parts += [varint(len(cid) + len(data)), cid, data]
    return b"".join(parts)


def deep_value(depth: int) -> bytes:
    """Valid DAG-CBOR nested `depth` levels: one-element arrays around a one-key map."""
    return b"\x81" * (depth - 1) + b"\xa1\x61a\x00"


def deep_record(depth: int = DEEP) -> bytes:
    """A valid post record whose embed nests `depth` levels (keys in DAG-CBOR order)."""
    head = dag_cbor({"text": "x", "$type": "app.bsky.feed.post"})[1:]
    return b"\xa4" + head + dag_cbor("embed") + deep_value(depth) + dag_cbor("createdAt") + dag_cbor("2026")


def item_heads(data: bytes, limit: int = ENVELOPE_LIMIT) -> list[tuple[int, int]]:
    """(offset, major type) of each item head in well-formed DAG-CBOR, up to `limit` bytes."""
    heads: list[tuple[int, int]] = []
    stack: list[int] = []
    pos, todo = 0, 2  # header and body
    while (todo or stack) and pos < limit:
        if not todo:
            todo = stack.pop()
            continue
        head = data[pos]
        major, arg, pos = head >> 5, head & 0x1F, pos + 1
        heads.append((pos - 1, major))
        todo -= 1
        if arg >= 24:
            size = 1 << (arg - 24)
            arg, pos = int.from_bytes(data[pos : pos + size]), pos + size
        if major in (2, 3):
            pos += arg
        elif major in (4, 5) and arg:
            stack.append(todo)
            todo = arg * (major - 3)
        elif major == 6:
            todo += 1
    return heads


@dataclass(frozen=True, slots=True)
class Sample:
    """A real frame, split once so each mutation costs microseconds."""

    frame: bytes
    header: dict[str, Any]
    body: dict[str, Any]
    heads: list[tuple[int, int]]
    car_header: bytes
    sections: list[tuple[bytes, bytes]]
    records: list[int]  # indexes of sections holding an op's record

    @classmethod
    def of(cls, frame: bytes) -> Sample:
        header, body = libipld.decode_dag_cbor_multi(frame)
        car = body.get("blocks")
        car_header, sections = car_sections(car) if isinstance(car, bytes) else (b"", [])
        cids = {op.get("cid") for op in body.get("ops") or [] if isinstance(op, dict)}
        records = [i for i, (cid, _) in enumerate(sections) if cid in cids]
        return cls(frame, header, body, item_heads(frame), car_header, sections, records)

    def with_body(self, **changes: Any) -> bytes:
        return libipld.encode_dag_cbor(self.header) + libipld.encode_dag_cbor({**self.body, **changes})

    def with_sections(self, sections: Sequence[tuple[bytes, bytes]], header: bytes | None = None) -> bytes:
        return self.with_car(build_car(self.car_header if header is None else header, sections))

    def with_car(self, car: bytes) -> bytes:
        """The frame with its CAR replaced, every other byte kept (the filter sees a real layout)."""
        at = self.frame.find(b"\x66blocks") + 7
        blocks = self.body.get("blocks")
        if at < 7 or not isinstance(blocks, bytes) or self.frame[at] & 0x1F < 24:
            return self.with_body(blocks=car)
        end = at + 1 + (1 << ((self.frame[at] & 0x1F) - 24)) + len(blocks)
        return self.frame[:at] + bytes_head(len(car)) + car + self.frame[end:]

    def with_record(self, data: bytes, index: int = 0) -> bytes:
        """The frame with one op record's block replaced (its CID kept, so the op finds it)."""
        if not self.records:
            return self.with_car(data)
        which = self.records[index % len(self.records)]
        sections = list(self.sections)
        sections[which] = (sections[which][0], data)
        return self.with_sections(sections)


Mutation = Callable[[random.Random, Sample, Sequence[Sample]], bytes]
