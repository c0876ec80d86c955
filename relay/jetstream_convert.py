"""Relay frame → Jetstream events, as production Jetstream writes them (the emulator's input side).

One event per commit op (create/update carry the record as atproto JSON and its CID; deletes
neither); #identity, #account and #sync wrap the upstream body verbatim (its own seq and time);
#sync never reaches the v1 wire. JSON is rendered the way Jetstream's Go encoder does (sorted
keys, compact, `<>&` and U+2028/9 escaped), so a record's text matches production byte for byte
(checked against the real window's expected_v1.jsonl). Like Jetstream's ingest gate, an op with
an invalid path or a missing/undecodable block is dropped alone; an undecodable frame gives none.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import cbor2

from streamer.frames import read_varint

NSID: Final = "network.bsky.jetstream.subscribeEvents"
KINDS: Final = ("commit", "identity", "account", "sync")
_CID_PREFIX: Final = b"\x01\x71\x12\x20"  # CIDv1, dag-cbor, sha2-256
_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_RE: Final = re.compile("[<>&\u2028\u2029]")
_COLLECTION_RE: Final = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]*)(\.[a-zA-Z0-9-]+)+$")
_RKEY_RE: Final = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_BLOB_ORDER: Final = ("$type", "ref", "mimeType", "size")
_BLOB_KEYS: Final = frozenset(_BLOB_ORDER)
_DECODE_ERRORS: Final = (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError, LookupError)


def go_json(value: Any) -> str:
    """JSON text as Jetstream's Go encoder writes it: map keys sorted, a blob's fields in its
    struct's order ($type, ref, mimeType, size), compact, `<>&` and U+2028/9 escaped."""
    text = json.dumps(_go_order(value), ensure_ascii=False, separators=(",", ":"))
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def _go_order(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("$type") == "blob" and value.keys() <= _BLOB_KEYS:
            keys = [k for k in _BLOB_ORDER if k in value]
        else:
            keys = sorted(value)
        return {k: _go_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_go_order(v) for v in value]
    return value


def cid_string(cid: bytes) -> str:
    """A CID's canonical string: base32 multibase for v1, base58btc for a v0 (`Qm…`)."""
    if cid[:2] == b"\x12\x20" and len(cid) == 34:
        return _base58(cid)
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


def _base58(data: bytes) -> str:
    n, out = int.from_bytes(data), ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def to_data_model(value: Any) -> Any:
    """Decoded DAG-CBOR → atproto JSON data model: links {"$link"}, bytes {"$bytes"} (unpadded)."""
    if isinstance(value, cbor2.CBORTag):
        if value.tag != 42 or not isinstance(value.value, bytes) or value.value[:1] != b"\0":
            raise ValueError(f"unexpected CBOR tag {value.tag}")
        return {"$link": cid_string(value.value[1:])}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("map key is not a string")
        return {k: to_data_model(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data_model(v) for v in value]
    return value


def wire_time(time_us: int) -> str:
    """RFC 3339 UTC with exactly six fractional digits, as the v2 `time` field."""
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_us % 1_000_000:06d}Z"


def parse_time_us(text: Any) -> int | None:
    """Unix µs of an ISO-8601 relay `time`, or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@dataclass(frozen=True, slots=True)
class Pending:
    """One Jetstream event before the server gives it a seq and a witnessed time.

    `body` is the JSON text of the commit fields (cid…rkey with the record) or of the wrapped
    upstream event; `upstream_us` is the relay's time of the frame (the witnessed-time floor).
    """

    kind: str
    did: str
    body: str
    upstream_us: int | None
    collection: str | None = None
    rev: str = ""
    operation: str = ""
    rkey: str = ""
    record: str | None = None  # JSON text; None for deletes and non-commits
    cid: str | None = None

    def with_rkey(self, rkey: str) -> Pending:
        """The same event under another rkey (benches: distinct events from one window)."""
        return replace(
            self,
            rkey=rkey,
            body=_commit_body(
                self.did,
                self.collection or "",
                self.operation,
                rkey=rkey,
                rev=self.rev,
                record=self.record,
                cid=self.cid,
            ),
        )

    def v2(self, seq: int, time_us: int) -> bytes:
        """The whole xrpc.v1.json message frame, keys in the generated encoder's order."""
        time = wire_time(time_us)
        head = f'{{"$type":"message","payload":{{"$type":"{NSID}#{self.kind}",'
        if self.kind == "commit":
            text = f'{head}{self.body},"seq":{seq},"time":"{time}"}}}}'
        elif self.kind == "account":
            text = f'{head}"account":{self.body},"did":"{self.did}","seq":{seq},"time":"{time}"}}}}'
        elif self.kind == "identity":
            text = f'{head}"did":"{self.did}","identity":{self.body},"seq":{seq},"time":"{time}"}}}}'
        else:
            text = f'{head}"did":"{self.did}","seq":{seq},"sync":{self.body},"time":"{time}"}}}}'
        return text.encode()

    def v1(self, seq: int, time_us: int) -> bytes | None:
        """The legacy /subscribe event (None for #sync, which v1 never emits)."""
        head = f'{{"did":"{self.did}","time_us":{time_us},"cursor":{seq},"kind":"{self.kind}",'
        if self.kind == "commit":
            commit = f'"rev":"{self.rev}","operation":"{self.operation}","collection":"{self.collection}",'
            commit += f'"rkey":"{self.rkey}"'
            if self.record is not None:
                commit += f',"record":{self.record},"cid":"{self.cid}"'
            return f'{head}"commit":{{{commit}}}}}'.encode()
        if self.kind == "sync":
            return None
        return f'{head}"{self.kind}":{self.body}}}'.encode()


def _commit_body(
    did: str,
    collection: str,
    operation: str,
    *,
    rkey: str,
    rev: str,
    record: str | None,
    cid: str | None,
) -> str:
    head = f'"cid":"{cid}",' if cid is not None else ""
    tail = f'"record":{record},' if record is not None else ""
    return (
        f'{head}"collection":"{collection}","did":"{did}","operation":"{operation}",'
        f'{tail}"rev":"{rev}","rkey":"{rkey}"'
    )


def convert_frame(frame: bytes) -> list[Pending]:
    """The Jetstream events of one relay frame, in op order ([] for info/error/undecodable)."""
    try:
        stream = io.BytesIO(frame)
        header = cbor2.load(stream)
        body = cbor2.load(stream)
    except _DECODE_ERRORS:
        return []
    if not isinstance(header, dict) or not isinstance(body, dict) or header.get("op") != 1:
        return []
    kind = str(header.get("t", "")).removeprefix("#")
    upstream_us = parse_time_us(body.get("time"))
    if kind == "commit":
        return _commit_ops(body, upstream_us)
    did = body.get("did")
    if kind not in KINDS or not isinstance(did, str):
        return []
    try:
        upstream = go_json(to_data_model(body))
    except (ValueError, TypeError):
        return []
    return [Pending(kind, did, upstream, upstream_us)]


def _commit_ops(body: dict[str, Any], upstream_us: int | None) -> list[Pending]:
    repo, rev, ops = body.get("repo"), body.get("rev"), body.get("ops")
    if not isinstance(repo, str) or not isinstance(rev, str) or not isinstance(ops, list):
        return []
    blocks = _car_blocks(body.get("blocks"))
    out: list[Pending] = []
    for op in ops:
        pending = _op(op, repo, rev, blocks, upstream_us) if isinstance(op, dict) else None
        if pending is not None:
            out.append(pending)
    return out


def _op(
    op: dict[str, Any], repo: str, rev: str, blocks: dict[bytes, bytes], upstream_us: int | None
) -> Pending | None:
    action, path = op.get("action"), op.get("path")
    if action not in ("create", "update", "delete") or not isinstance(path, str):
        return None
    collection, _, rkey = path.partition("/")
    if not _COLLECTION_RE.match(collection) or not _RKEY_RE.match(rkey) or rkey in (".", ".."):
        return None
    record = cid = None
    if action != "delete":
        link = op.get("cid")
        key = link.value[1:] if isinstance(link, cbor2.CBORTag) and isinstance(link.value, bytes) else None
        block = blocks.get(key) if key is not None else None
        if block is None:
            return None  # missing block: Jetstream drops the op
        try:
            value = cbor2.loads(block)
            if not isinstance(value, dict):
                return None
            record = go_json(to_data_model(value))
        except (*_DECODE_ERRORS, ValueError):
            return None
        cid = cid_string(_CID_PREFIX + hashlib.sha256(block).digest())
    body = _commit_body(repo, collection, action, rkey=rkey, rev=rev, record=record, cid=cid)
    return Pending("commit", repo, body, upstream_us, collection, rev, action, rkey, record, cid)


def _car_blocks(car: Any) -> dict[bytes, bytes]:
    """CID bytes → block bytes of a CAR v1 (whatever can be read of it)."""
    found: dict[bytes, bytes] = {}
    if not isinstance(car, bytes):
        return found
    try:
        pos, size = read_varint(car, 0)
        pos += size
        while pos < len(car):
            pos, size = read_varint(car, pos)
            section = car[pos : pos + size]
            pos += size
            cid_len = 36 if section[:1] == b"\x01" else 34
            found[section[:cid_len]] = section[cid_len:]
    except IndexError:
        pass
    return found
