"""The fuzzer's mutation catalogue: hostile frames made from a real one (see relay.mutate).

Each mutation is (random.Random, Sample, pool of Samples) → bytes; MUTATIONS weights them and
`mutants` draws from them. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Final

import libipld

from relay.car import dag_cbor
from relay.mutate import DEEP, ENVELOPE_LIMIT, Mutation, Sample, build_car, deep_record, deep_value, varint

_INVALID_UTF8: Final = (b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")
_BODY_KEYS: Final = ("ops", "seq", "repo", "blocks", "time", "did", "handle", "active", "status", "rev")
_RECORD_PATHS: Final = (
    ("subject",),
    ("subject", "uri"),
    ("subject", "cid"),
    ("text",),
    ("createdAt",),
    ("$type",),
    ("reply",),
    ("reply", "parent"),
    ("reply", "parent", "uri"),
    ("reply", "root"),
    ("embed",),
    ("embed", "record"),
    ("embed", "record", "uri"),
    ("embed", "record", "record"),
    ("embed", "external"),
    ("embed", "$type"),
    ("facets",),
    ("facets", 0),
    ("facets", 0, "features"),
    ("facets", 0, "features", 0, "did"),
)
_EMBED_TYPES: Final = (
    "app.bsky.embed.record",
    "app.bsky.embed.recordWithMedia",
    "app.bsky.embed.external",
    "zz.unknown",
)


def weird(rng: random.Random, depth: int = 0) -> Any:
    """A value of a random DAG-CBOR type, often not the one a field expects."""
    pick = rng.randrange(12 if depth < 3 else 9)
    scalars: list[Any] = [
        rng.choice([0, -1, 2**63, 2**64 - 1, -(2**64)]),
        rng.choice(["", "x" * 300, "did:plc:" + "a" * 24]),
        rng.choice([b"", b"\x01q\x12 " + bytes(32)]),
        None,
        rng.choice([True, False]),
        rng.uniform(-1e9, 1e9),
        "at://did:plc:" + "b" * 24 + "/app.bsky.feed.post/3k",
        rng.choice(["\u0000", "é" * 40, "#mention"]),
        rng.choice(["app.bsky.richtext.facet#mention", "app.bsky.embed.record", "zz.unknown#type"]),
    ]
    if pick < len(scalars):
        return scalars[pick]
    if pick == 9:
        return [weird(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 10:
        return {rng.choice(["uri", "did", "record", "$type", "features", "x"]): weird(rng, depth + 1)}
    return {"$type": rng.choice(_EMBED_TYPES), "record": weird(rng, depth + 1), "uri": weird(rng, depth + 1)}


def _set_path(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with `path` set to `new` (containers created or replaced on the way)."""
    if not path:
        return new
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        items = list(value) if isinstance(value, list) and value else [{}]
        items[0] = _set_path(items[0], rest, new)
        return items
    out = dict(value) if isinstance(value, dict) else {}
    out[key] = _set_path(out.get(key), rest, new)
    return out


def truncate(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    return s.frame[: rng.randrange(len(s.frame))]


def bit_flips(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    data = bytearray(s.frame)
    span = len(data) if rng.random() < 0.3 else min(len(data), ENVELOPE_LIMIT)
    for _i in range(rng.randint(1, 8)):
        data[rng.randrange(span)] ^= 1 << rng.randrange(8)
    return bytes(data)


def byte_run(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    at, size = rng.randrange(len(s.frame)), rng.randint(1, 64)
    return s.frame[:at] + rng.randbytes(size) + s.frame[at + rng.choice([0, size, 2 * size]) :]


def length_lie(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    """A string, array or map head claiming another length (often far past the end)."""
    at, major = rng.choice([h for h in s.heads if 2 <= h[1] <= 5] or s.heads)
    arg = s.frame[at] & 0x1F
    skip = 1 + (1 << (arg - 24) if 24 <= arg <= 27 else 0)
    claim = rng.choice([0, 1, 23, 255, 65_535, 2**31, 2**32 - 1, 2**64 - 1, rng.randrange(1, 10_000)])
    head = _head(major, claim)
    return s.frame[:at] + head + s.frame[at + skip :]


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes(((major << 5) | n,))
    size = 1 if n < 0x100 else 2 if n < 0x10000 else 4 if n < 0x100000000 else 8
    return bytes(((major << 5) | (23 + size.bit_length()),)) + n.to_bytes(size)


def head_type_swap(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    at, _major = rng.choice(s.heads)
    data = bytearray(s.frame)
    data[at] = (rng.randrange(8) << 5) | (data[at] & 0x1F)
    return bytes(data)


def invalid_utf8(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    texts = [at for at, major in s.heads if major == 3 and s.frame[at] not in (0x60, 0x78)]
    at = rng.choice(texts or [0]) + 1
    bad = rng.choice(_INVALID_UTF8)
    return s.frame[:at] + bad + s.frame[at + len(bad) :]


def deep_envelope(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    depth = rng.choice([33, 100, 1_000, 10_000, DEEP])
    header = libipld.encode_dag_cbor(s.header)
    if rng.random() < 0.5:
        return header + b"\xa2" + dag_cbor("ops") + deep_value(depth) + dag_cbor("seq") + dag_cbor(7)
    return b"\xa2" + dag_cbor("t") + deep_value(depth) + dag_cbor("op") + b"\x01" + header


def deep_block(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    return s.with_record(deep_record(rng.choice([33, 100, 5_000, DEEP])), rng.randrange(4))


def wide(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    """A record (or a body) holding more items than any real one: 60 000 small integers."""
    items = b"\x99\xea\x60" + b"\x00" * 60_000
    if rng.random() < 0.5:
        return s.with_record(b"\xa1" + dag_cbor("embed") + items)
    return libipld.encode_dag_cbor(s.header) + b"\xa1" + dag_cbor("ops") + items


def record_type_swap(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    if not s.records:
        return s.with_body(ops=weird(rng))
    index = rng.randrange(len(s.records))
    record = libipld.decode_dag_cbor(s.sections[s.records[index]][1])
    for _i in range(rng.randint(1, 3)):
        record = _set_path(record, rng.choice(_RECORD_PATHS), weird(rng))
    if not isinstance(record, dict) or rng.random() < 0.05:
        record = weird(rng)
    return s.with_record(libipld.encode_dag_cbor(record), index)


def body_type_swap(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    key = rng.choice(_BODY_KEYS)
    ops = s.body.get("ops")
    if key == "ops" and isinstance(ops, list) and ops and rng.random() < 0.7:
        op = dict(ops[0]) if isinstance(ops[0], dict) else {}
        field = rng.choice(["path", "action", "cid", "path"])
        op[field] = rng.choice([weird(rng), "app.bsky.feed.like", "app.bsky.feed.zz/3k", "x/" * 50, ""])
        return s.with_body(ops=[op, *ops[1:]])
    return s.with_body(**{key: weird(rng)})


def header_swap(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    header = rng.choice(
        [
            {"t": rng.choice(["#bogus", "#commit2", "", "#info", "#labels"]), "op": 1},
            {"op": 2, "t": "#commit"},
            {"op": -1},
            {"t": weird(rng), "op": weird(rng)},
            {},
        ]
    )
    body = libipld.encode_dag_cbor(s.body)
    if rng.random() < 0.1:
        return libipld.encode_dag_cbor([header]) + body
    return libipld.encode_dag_cbor(header) + body


def block_swap(rng: random.Random, s: Sample, pool: Sequence[Sample]) -> bytes:
    """Records moved between blocks, or another frame's record in place of this one's."""
    other = rng.choice(pool)
    if other.records and (rng.random() < 0.5 or len(s.sections) < 2):
        return s.with_record(other.sections[rng.choice(other.records)][1], rng.randrange(4))
    sections = list(s.sections)
    if len(sections) >= 2:
        i, j = rng.sample(range(len(sections)), 2)
        sections[i], sections[j] = (sections[i][0], sections[j][1]), (sections[j][0], sections[i][1])
    return s.with_sections(sections)


def car_lie(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    """CAR section lengths that lie, over-long varints, missing or cut blocks."""
    car = build_car(s.car_header, s.sections)
    pick = rng.randrange(6)
    if pick == 0:
        return s.with_car(varint(rng.choice([2**40, len(car) + 1])) + car[1:])
    if pick == 1:
        return s.with_car(b"\xff" * rng.randint(9, 12) + car)
    if pick == 2:
        return s.with_car(car[: rng.randrange(max(1, len(car)))])
    sections = list(s.sections)
    if pick == 3 and s.records:
        del sections[s.records[0]]
        return s.with_sections(sections)
    parts = [varint(len(s.car_header)), s.car_header]
    for i, (cid, data) in enumerate(sections):
        lie = len(cid) + len(data) + rng.choice([-40, -1, 1, 2**20]) if i == len(sections) // 2 else None
        parts += [varint(max(0, lie) if lie is not None else len(cid) + len(data)), cid, data]
    return s.with_car(b"".join(parts))


def splice(rng: random.Random, s: Sample, pool: Sequence[Sample]) -> bytes:
    other = rng.choice(pool).frame
    pick = rng.randrange(4)
    if pick == 0:
        return s.frame + other[: rng.randrange(len(other))]
    if pick == 1:
        return libipld.encode_dag_cbor(s.header)
    if pick == 2:
        return b""
    return rng.randbytes(rng.randrange(1, 2048))


def huge(rng: random.Random, s: Sample, _: Sequence[Sample]) -> bytes:
    """Past the streamer's 5 MiB frame limit (rare: costly to build)."""
    return s.with_body(blobs=[b"\x00" * (5 * 1024 * 1024 + rng.randrange(1024))])


MUTATIONS: Final[dict[str, tuple[Mutation, int]]] = {
    "truncate": (truncate, 10),
    "bit_flips": (bit_flips, 14),
    "byte_run": (byte_run, 6),
    "length_lie": (length_lie, 12),
    "head_type_swap": (head_type_swap, 8),
    "invalid_utf8": (invalid_utf8, 6),
    "deep_envelope": (deep_envelope, 2),
    "deep_block": (deep_block, 3),
    "record_type_swap": (record_type_swap, 14),
    "body_type_swap": (body_type_swap, 10),
    "header_swap": (header_swap, 4),
    "block_swap": (block_swap, 5),
    "car_lie": (car_lie, 6),
    "splice": (splice, 3),
    "wide": (wide, 1),
}
_NAMES: Final = list(MUTATIONS)
_WEIGHTS: Final = [weight for _, weight in MUTATIONS.values()]


def mutants(
    samples: Sequence[Sample], rng: random.Random, *, huge_every: int = 0
) -> Callable[[], tuple[str, bytes]]:
    """A generator function: each call returns (mutation name, hostile frame)."""
    count = 0

    def next_mutant() -> tuple[str, bytes]:
        nonlocal count
        count += 1
        sample = rng.choice(samples)
        if huge_every and count % huge_every == 0:
            return "huge", huge(rng, sample, samples)
        name = rng.choices(_NAMES, _WEIGHTS)[0]
        return name, MUTATIONS[name][0](rng, sample, samples)

    return next_mutant
