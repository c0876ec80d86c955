"""Decode stage: the firehose frame envelope (header, body) and, on demand, its CAR blocks.

Malformed input raises FrameError with a FrameReason (streamer/errors.py), so the service can
count and skip it; CAR blocks are decoded only for frames that survived the filter. Every byte
string handed to libipld first passes the cbor_bounds walk (depth, lengths, item count), or a
fixed layout the walk provably passes (`_bounded_commit`, `_decode_block`'s fast path):
decoding one frame is total, whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import libipld

from streamer.cbor_bounds import MAX_DEPTH, MAX_ITEMS, check
from streamer.errors import BoundsError, FrameError, FrameReason

# {"t": "#commit", "op": 1} in DAG-CBOR (keys sorted by length): every #commit frame starts so.
COMMIT_PREFIX: Final = b"\xa2at\x67#commit\x62op\x01"

# items check(frame, count=2) has counted once past COMMIT_PREFIX: 2 top-level + the header's 4
_PREFIX_ITEMS: Final = 5
_MAX_SEQ: Final = 2**63  # a seq must fit a signed 64-bit column downstream
_DECODE_ERRORS: Final = (ValueError, TypeError, OverflowError, RecursionError)

# The commonest #commit body in its exact canonical layout, from COMMIT_PREFIX to the CAR's
# bytes: a 12-entry map, one op (a CID or null, a path of 24..255 bytes, a short action), rev
# and since 13-byte texts (since may be null), an 8-byte seq, a 32-byte repo, a 24-byte time, no
# blobs, the CAR as bytes with a 2-byte length; after the CAR, `_COMMIT_TAIL` to the frame's end.
# Every item of it is one check() walks in one step (short texts and maps, one-byte-length
# strings, tag 42, 8-byte integers, a 2-byte-length string bounded by the tail's match), ~40
# items at depth 3: when `_bounded_commit` accepts a frame, check() would return len(frame).
_CID_ITEM: Final = rb"\xd8\x2a\x58\x25\x00.{36}"
_COMMIT_HEAD: Final = re.compile(
    COMMIT_PREFIX
    + rb"\xac\x63ops\x81\xa3\x63cid(?:"
    + _CID_ITEM
    + rb"|\xf6)\x64path\x78(.)(.*?)"
    + rb"\x66action\x66(?:create|update|delete)\x63rev\x6d.{13}\x63seq\x1b.{8}"
    + rb"\x64repo\x78\x20.{32}\x64time\x78\x18.{24}\x65blobs\x80"
    + rb"\x65since(?:\xf6|\x6d.{13})\x66blocks\x59(.{2})",
    re.DOTALL,  # `.`: any byte
).match
_COMMIT_TAIL: Final = re.compile(
    rb"\x66commit"
    + _CID_ITEM
    + rb"\x66rebase[\xf4\xf5]\x66tooBig[\xf4\xf5]\x68prevData(?:"
    + _CID_ITEM
    + rb"|\xf6)",
    re.DOTALL,
).fullmatch


def _bounded_commit(frame: bytes) -> bool:
    """Is `frame` a #commit in `_COMMIT_HEAD`'s layout (check() would pass it whole)?"""
    head = _COMMIT_HEAD(frame)
    if head is None:
        return False
    length, path, car = head.groups()
    if len(path) != length[0]:  # the path's text is exactly its claimed length
        return False
    tail = head.end() + int.from_bytes(car)
    return tail < len(frame) and _COMMIT_TAIL(frame, tail) is not None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Header and body of a frame; `kind` is the message type (#commit, #identity…) or 'error'."""

    kind: str
    body: dict[str, Any]

    @property
    def seq(self) -> int | None:
        seq = self.body.get("seq")
        valid = isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < _MAX_SEQ
        return seq if valid else None


def decode_envelope(frame: bytes) -> Envelope:
    try:
        if frame.startswith(COMMIT_PREFIX):  # a complete 2-entry header map: walk the body only
            if _bounded_commit(frame):
                end = len(frame)
            else:
                end = check(frame, len(COMMIT_PREFIX), max_items=MAX_ITEMS - _PREFIX_ITEMS)
        else:
            end = check(frame, count=2)  # header and body; the CAR is one string, skipped
    except BoundsError as exc:
        raise FrameError(exc.reason, exc.detail) from exc
    if end != len(frame):
        raise FrameError(FrameReason.BAD_HEADER, f"{len(frame) - end} bytes after header and body")
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except _DECODE_ERRORS as exc:
        raise FrameError(FrameReason.BAD_CBOR, str(exc)[:120]) from exc
    if len(parts) != 2 or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        raise FrameError(FrameReason.BAD_HEADER, f"expected header and body, got {len(parts)} part(s)")
    header, body = parts
    op = header.get("op")
    if op == -1:
        return Envelope("error", body)
    kind = header.get("t")
    if op != 1 or not isinstance(kind, str):
        raise FrameError(FrameReason.BAD_HEADER, f"op={op!r} t={kind!r}")
    return Envelope(kind, body)


def decode_blocks(body: dict[str, Any], wanted: set[bytes]) -> dict[bytes, Any]:
    """The CAR blocks whose CID is in `wanted` (the op records), keyed by CID bytes.

    Walks the CAR sections and decodes only those blocks: the MST nodes, most of a frame's
    bytes, are never decoded.
    """
    if len(wanted) == 1:  # one record (most commits): the same walk, then the same decode
        only = next(iter(wanted))
        raw = find_block(body, only)
        return {} if raw is None else {only: decode_block(raw)}
    return _walk(_car(body), wanted, None)


def find_block(body: dict[str, Any], cid: bytes) -> bytes | None:
    """The raw bytes of the first CAR section whose CID is `cid` (None when there is none),
    after the walk decode_blocks makes: the same FrameError for the same sections before it."""
    car = _car(body)
    if len(cid) != _CID_LEN:
        _walk(car, {cid}, None)  # never found: walks every section, as it always did
        return None
    found = _walk(car, None, cid)
    return found.get(cid)


def decode_block(block: bytes) -> Any:
    """A record block found by find_block, decoded as decode_blocks decodes it."""
    try:
        return _decode_block(block)
    except FrameError:
        raise
    except (IndexError, *_DECODE_ERRORS) as exc:  # decode_blocks' reason for a libipld error
        raise FrameError(FrameReason.BAD_CAR, str(exc)[:120]) from exc


def _car(body: dict[str, Any]) -> bytes:
    car = body.get("blocks")
    if not isinstance(car, bytes):
        raise FrameError(FrameReason.BAD_BODY, "commit without CAR blocks")
    return car


def _walk(car: bytes, wanted: set[bytes] | None, only: bytes | None) -> dict[bytes, Any]:
    """The CAR sections up to the wanted ones: decoded blocks by CID for `wanted`, or the raw
    bytes of the first section whose CID is `only` (a CID of _CID_LEN bytes)."""
    found: dict[bytes, Any] = {}
    size = len(car)
    count = len(wanted) if wanted is not None else 1
    if not count:
        return found
    try:
        pos, length = read_varint(car, 0)
        pos += length  # the CAR header
        while pos < size:
            length = car[pos]  # section length: a varint, inlined for 1 and 2 bytes (hot loop)
            if length < 0x80:
                pos += 1
            elif car[pos + 1] < 0x80:
                length, pos = (length & 0x7F) | (car[pos + 1] << 7), pos + 2
            else:
                pos, length = read_varint(car, pos)
            end = pos + length
            if length < _CID_LEN or end > size:
                raise FrameError(FrameReason.BAD_CAR, f"section of {length} bytes at {pos} overruns the CAR")
            if only is not None:  # one record: compare in place, no CID slice, no decode
                if car.startswith(only, pos):
                    found[only] = car[pos + _CID_LEN : end]
                    break
            elif wanted is not None:
                cid = car[pos : pos + _CID_LEN]
                if cid in wanted:
                    found[cid] = _decode_block(car[pos + _CID_LEN : end])
                    if len(found) == count:
                        break
            pos = end
    except FrameError:
        raise
    except (IndexError, *_DECODE_ERRORS) as exc:
        raise FrameError(FrameReason.BAD_CAR, str(exc)[:120]) from exc
    return found


# Head bytes that matter to the fast path: containers (0x80..0xbf: arrays, maps) and the
# headers libipld accepts but DAG-CBOR and check() forbid (0xd9..0xdb: a non-minimal tag, 0xfa:
# a 32-bit float). translate(None, _NOT_SUSPECT) keeps only those bytes of a block.
_CONTAINERS: Final = bytes(range(0x80, 0xC0))
_NOT_SUSPECT: Final = bytes(b for b in range(256) if b < 0x80 or 0xC0 <= b not in (0xD9, 0xDA, 0xDB, 0xFA))
_FAST_MAX_BYTES: Final = 32_768  # < MAX_ITEMS: one item takes at least one byte


def _decode_block(block: bytes) -> Any:
    """One record block, bounded before libipld sees it.

    Fast path, same outcome as check() then libipld: a block of at most _FAST_MAX_BYTES bytes
    (so at most that many items, under MAX_ITEMS) holding at most MAX_DEPTH bytes in 0x80..0xbf
    (every nested array or map needs its own head byte there, so it nests at most MAX_DEPTH
    deep) and none of 0xd9..0xdb, 0xfa is safe for libipld as it is. When libipld decodes it,
    every length claim was true, the item spans the whole block, and no header check() forbids
    is in it (libipld rejects the rest of them: tests/unit/test_decode_total.py), so check()
    passes and the value is the one the slow path returns. Anything else takes the slow path.
    """
    if len(block) <= _FAST_MAX_BYTES:
        suspects = block.translate(None, _NOT_SUSPECT)
        if len(suspects) <= MAX_DEPTH and not suspects.translate(None, _CONTAINERS):
            try:
                return libipld.decode_dag_cbor(block)
            except Exception:  # the slow path below gives the reason, as before
                pass
    try:
        end = check(block)
    except BoundsError as exc:
        raise FrameError(exc.reason, f"record block: {exc.detail}") from exc
    if end != len(block):
        raise FrameError(FrameReason.BAD_CAR, f"{len(block) - end} bytes after a record block")
    return libipld.decode_dag_cbor(block)


_CID_LEN: Final = 36  # CIDv1, dag-cbor or raw, sha2-256: what atproto repos hold


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(position after, value) of an unsigned LEB128 varint."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return pos, value
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


_SEQ_KEY: Final = b"\x63seq"  # CBOR text "seq"
_SEQ_SEARCH: Final = 1 << 16  # `seq` sorts after `ops` and `rev`: near the start of a body


def raw_seq(frame: bytes) -> int | None:
    """The seq of a frame that cannot be decoded, read from the bytes after `seq` (log lines
    only: it may be wrong, it is never used as a position)."""
    at = frame.find(_SEQ_KEY, 0, _SEQ_SEARCH) + len(_SEQ_KEY)
    if at < len(_SEQ_KEY) or at >= len(frame):
        return None
    head = frame[at]
    if head < 24:  # a CBOR integer held in the head byte
        return head
    size = {0x18: 1, 0x19: 2, 0x1A: 4, 0x1B: 8}.get(head, 0)
    value = frame[at + 1 : at + 1 + size]
    return int.from_bytes(value) if size and len(value) == size else None


def peek_seq(frame: bytes) -> int | None:
    """The seq of a frame, or None when it has none or cannot be read (used off the hot path)."""
    try:
        return decode_envelope(frame).seq
    except FrameError:
        return None
