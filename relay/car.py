"""Build real `subscribeRepos` wire frames (DAG-CBOR header + body, CAR blocks).

Tests and benches need frames that decode exactly like the relay's: canonical
DAG-CBOR (cbor2 ``canonical=True`` sorts keys length-first like DAG-CBOR), CID
links as tag 42, and a CAR v1 whose root is a signed-commit-like block. The
signature and the MST node are shaped like the real ones but not verifiable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import cbor2

ACTIONS = ("create", "update", "delete")
Op = tuple[str, str, dict[str, Any] | None]  # (action, "collection/rkey", record or None)

_CID_PREFIX = b"\x01\x71\x12\x20"  # CIDv1, dag-cbor, sha2-256, 32 bytes
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def dag_cbor(value: Any) -> bytes:
    """Encode one value as DAG-CBOR (canonical key order)."""
    return cbor2.dumps(value, canonical=True)


def cid_for(block: bytes) -> bytes:
    """Raw CIDv1 (dag-cbor, sha256) bytes of an encoded block."""
    return _CID_PREFIX + hashlib.sha256(block).digest()


def link(cid: bytes) -> cbor2.CBORTag:
    """A DAG-CBOR CID link (tag 42 with the identity multibase prefix)."""
    return cbor2.CBORTag(42, b"\x00" + cid)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def car_v1(root: bytes, blocks: Iterable[tuple[bytes, bytes]]) -> bytes:
    """CAR v1 bytes: header {roots:[root], version:1} then (cid, data) sections."""
    header = dag_cbor({"roots": [link(root)], "version": 1})
    parts = [_varint(len(header)), header]
    for cid, data in blocks:
        parts += [_varint(len(cid) + len(data)), cid, data]
    return b"".join(parts)


def iso_time(when: datetime | str | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a Z, like the relay's `time` field."""
    if isinstance(when, str):
        return when
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def tid(micros: int, clock_id: int = 0) -> str:
    """A 13-character sortable TID (the format of `rev` and record keys)."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def _rev_for(time: str, seq: int) -> str:
    moment = datetime.fromisoformat(time.replace("Z", "+00:00"))
    return tid(int(moment.timestamp() * 1_000_000), seq)


def _frame(header: dict[str, Any], body: dict[str, Any]) -> bytes:
    return dag_cbor(header) + dag_cbor(body)


def _mst_node(keys: Sequence[tuple[str, bytes]]) -> bytes:
    """One MST-shaped node {e:[{k,p,t,v}], l} over (path, record cid) pairs."""
    entries, previous = [], b""
    for path, cid in sorted(keys):
        key = path.encode()
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        entries.append({"k": key[shared:], "p": shared, "t": None, "v": link(cid)})
        previous = key
    return dag_cbor({"e": entries, "l": None})


def _filler(seed: str, count: int) -> list[bytes]:
    """Deterministic MST-like nodes that pad a frame to a realistic size (no DIDs)."""
    nodes = []
    for i in range(count):
        digest = hashlib.sha256(f"{seed}/{i}".encode()).digest()
        entries = [
            {
                "k": f"app.bsky.feed.like/3l{digest[j : j + 5].hex()[:11]}".encode(),
                "p": 0 if j == 0 else 19,
                "t": link(cid_for(digest[j:] + bytes([j]))),
                "v": link(cid_for(digest[:j] + bytes([j]))),
            }
            for j in range(4)
        ]
        nodes.append(dag_cbor({"e": entries, "l": link(cid_for(digest))}))
    return nodes


def _commit_block(did: str, rev: str, data_cid: bytes) -> bytes:
    sig = hashlib.sha512(f"{did}/{rev}".encode()).digest()  # 64 bytes, like a real sig
    return dag_cbor({"did": did, "rev": rev, "sig": sig, "data": link(data_cid), "prev": None, "version": 3})


def commit_frame(
    seq: int,
    repo: str,
    ops: Sequence[Op],
    *,
    time: datetime | str | None = None,
    rev: str | None = None,
    since: str | None = None,
    filler_blocks: int = 0,
) -> bytes:
    """A `#commit` frame; each create/update record is a CAR block keyed by its op CID."""
    when = iso_time(time)
    rev = rev or _rev_for(when, seq)
    record_blocks: list[tuple[bytes, bytes]] = []
    mst_keys: list[tuple[str, bytes]] = []
    wire_ops: list[dict[str, Any]] = []
    for action, path, record in ops:
        if action not in ACTIONS:
            raise ValueError(f"unknown op action {action!r}")
        if action == "delete" or record is None:
            wire_ops.append({"action": action, "path": path, "cid": None})
            continue
        data = dag_cbor(record)
        cid = cid_for(data)
        record_blocks.append((cid, data))
        mst_keys.append((path, cid))
        wire_ops.append({"action": action, "path": path, "cid": link(cid)})
    mst = _mst_node(mst_keys)
    mst_cid = cid_for(mst)
    commit = _commit_block(repo, rev, mst_cid)
    commit_cid = cid_for(commit)
    extra = [(cid_for(node), node) for node in _filler(f"{repo}/{rev}", filler_blocks)]
    blocks = car_v1(commit_cid, [(commit_cid, commit), (mst_cid, mst), *record_blocks, *extra])
    body = {
        "ops": wire_ops,
        "rev": rev,
        "seq": seq,
        "repo": repo,
        "time": when,
        "blobs": [],
        "since": since,
        "blocks": blocks,
        "commit": link(commit_cid),
        "rebase": False,
        "tooBig": False,
        "prevData": link(cid_for(f"prev:{repo}/{rev}".encode())),
    }
    return _frame({"op": 1, "t": "#commit"}, body)


def identity_frame(
    seq: int, did: str, handle: str | None = None, time: datetime | str | None = None
) -> bytes:
    """An `#identity` frame (handle omitted when None, like the relay)."""
    body: dict[str, Any] = {"did": did, "seq": seq, "time": iso_time(time)}
    if handle is not None:
        body["handle"] = handle
    return _frame({"op": 1, "t": "#identity"}, body)


def account_frame(
    seq: int,
    did: str,
    active: bool,
    status: str | None = None,
    time: datetime | str | None = None,
) -> bytes:
    """An `#account` frame; `status` (takendown, deactivated…) only when inactive."""
    body: dict[str, Any] = {"did": did, "seq": seq, "time": iso_time(time), "active": active}
    if status is not None:
        body["status"] = status
    return _frame({"op": 1, "t": "#account"}, body)


def sync_frame(seq: int, did: str, time: datetime | str | None = None, rev: str | None = None) -> bytes:
    """A `#sync` frame: a CAR holding only the commit block."""
    when = iso_time(time)
    rev = rev or _rev_for(when, seq)
    commit = _commit_block(did, rev, cid_for(dag_cbor({"e": [], "l": None})))
    commit_cid = cid_for(commit)
    body = {
        "did": did,
        "rev": rev,
        "seq": seq,
        "time": when,
        "blocks": car_v1(commit_cid, [(commit_cid, commit)]),
    }
    return _frame({"op": 1, "t": "#sync"}, body)


def info_frame(name: str, message: str | None = None) -> bytes:
    """An `#info` frame (no seq), e.g. name="OutdatedCursor"."""
    body: dict[str, Any] = {"name": name}
    if message is not None:
        body["message"] = message
    return _frame({"op": 1, "t": "#info"}, body)


def error_frame(error: str, message: str | None = None) -> bytes:
    """An error frame (header op -1), e.g. FutureCursor or ConsumerTooSlow."""
    body: dict[str, Any] = {"error": error}
    if message is not None:
        body["message"] = message
    return _frame({"op": -1}, body)
