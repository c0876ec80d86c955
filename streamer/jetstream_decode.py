"""Decode stage for Jetstream: one JSON frame (v2 message/error framing, or a v1 event) → events.

Only frames that survived streamer/jetstream_filter.py get here; orjson parses them and the
mapping rules are streamer/records.py's (`Op`, `identity_event`, `account_event`), the same the
relay path calls. Every bad input raises FrameError with a FrameReason (bad_json, bad_utf8,
bad_body, unknown_type, zstd_bomb, bad_zstd), never another exception. #identity/#account
events carry the wrapped upstream event's `time`, so the relay and Jetstream produce the same
event (design §3); commit events carry the envelope's (witnessed) time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import zstandard

from streamer.errors import FrameError, FrameReason, OpReason
from streamer.frames import Envelope
from streamer.jetstream_filter import V2_TYPE
from streamer.names import NameMatcher
from streamer.records import ENGAGEMENT, FrameResult, Op, Recall, account_event, identity_event

MAX_JSON: Final = 1 << 20  # a Jetstream frame larger than this (inflated or not) is skipped
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_MAX_SEQ: Final = 2**63
_OPERATIONS: Final = frozenset({"create", "update", "delete"})
_RAW_SEQ: Final = re.compile(rb'"(?:seq|time_us)"\s*:\s*(\d{1,19})')


class Inflater:
    """Dict-zstd frames (one zstd frame of JSON text each), inflated to at most MAX_JSON bytes."""

    def __init__(self) -> None:
        self.dictionary_id: int | None = None
        self._dctx = zstandard.ZstdDecompressor()

    def load(self, blob: bytes) -> int:
        """Use this raw zstd dictionary; returns its id. Raises ValueError if it is not one."""
        if len(blob) < 8 or blob[:4] != b"\x37\xa4\x30\xec":
            raise ValueError("not a zstd dictionary")
        self._dctx = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(blob))
        self.dictionary_id = int.from_bytes(blob[4:8], "little")
        return self.dictionary_id

    def inflate(self, data: bytes) -> bytes:
        try:
            size = zstandard.frame_content_size(data)
        except zstandard.ZstdError as exc:
            raise FrameError(FrameReason.BAD_ZSTD, str(exc)[:120]) from exc
        if size > MAX_JSON:  # declared: refuse before allocating it
            raise FrameError(FrameReason.ZSTD_BOMB, f"declares {size} bytes")
        try:
            return self._dctx.decompress(data, max_output_size=MAX_JSON)
        except zstandard.ZstdError as exc:
            if size < 0 and len(self._dctx.stream_reader(data).read(MAX_JSON + 1)) > MAX_JSON:
                raise FrameError(FrameReason.ZSTD_BOMB, f"inflates past {MAX_JSON} bytes") from exc
            raise FrameError(FrameReason.BAD_ZSTD, str(exc)[:120]) from exc


def load_object(frame: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        try:
            frame.decode()
        except UnicodeDecodeError:
            raise FrameError(FrameReason.BAD_UTF8, str(exc)[:120]) from exc
        raise FrameError(FrameReason.BAD_JSON, str(exc)[:120]) from exc
    if not isinstance(obj, dict):
        raise FrameError(FrameReason.BAD_JSON, f"a JSON {type(obj).__name__}, not an object")
    return obj


def decode_v2(
    frame: bytes,
    tracked: Any,
    recall: Recall,
    *,
    need_records: bool = True,
    source: str,
    names: NameMatcher | None = None,
) -> tuple[int, FrameResult] | Envelope:
    """(seq, events) of a message frame, or the Envelope of an error/#info frame."""
    obj = load_object(frame)
    frame_type = obj.get("$type")
    if frame_type == "error":
        return Envelope("error", obj)
    if frame_type != "message":
        raise FrameError(FrameReason.UNKNOWN_TYPE, str(frame_type)[:60])
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise FrameError(FrameReason.BAD_BODY, "message without a payload object")
    kind = payload.get("$type")
    if not isinstance(kind, str) or not kind.startswith(V2_TYPE):
        raise FrameError(FrameReason.UNKNOWN_TYPE, str(kind)[:60])
    kind = kind[len(V2_TYPE) :]
    if kind == "info":
        return Envelope("#info", payload)
    seq, did = _seq(payload.get("seq")), _did(payload.get("did"))
    out = FrameResult(source)
    if kind == "commit":
        _commit(
            out,
            seq,
            did,
            payload,
            payload.get("time"),
            tracked=tracked,
            recall=recall,
            need_records=need_records,
            names=names,
        )
    elif kind in ("identity", "account", "sync"):
        _wrapped(out, seq, did, kind, payload.get(kind), tracked=tracked)
    else:
        raise FrameError(FrameReason.UNKNOWN_TYPE, kind[:60])
    return seq, out


def decode_v1(
    frame: bytes,
    tracked: Any,
    recall: Recall,
    *,
    need_records: bool = True,
    source: str,
    names: NameMatcher | None = None,
) -> tuple[int, FrameResult]:
    """(time_us, events) of a v1 event: {"did", "time_us", "kind", "commit"|"identity"|"account"}."""
    obj = load_object(frame)
    kind = obj.get("kind")
    seq, did = _seq(obj.get("time_us")), _did(obj.get("did"))
    out = FrameResult(source)
    if kind == "commit":
        commit = obj.get("commit")
        if not isinstance(commit, dict):
            raise FrameError(FrameReason.BAD_BODY, "commit event without a commit object")
        _commit(
            out,
            seq,
            did,
            commit,
            iso_time(seq),
            tracked=tracked,
            recall=recall,
            need_records=need_records,
            names=names,
        )
    elif kind in ("identity", "account"):
        _wrapped(out, seq, did, kind, obj.get(kind), tracked=tracked)
    else:
        raise FrameError(FrameReason.UNKNOWN_TYPE, str(kind)[:60])
    return seq, out


def _commit(
    out: FrameResult,
    seq: int,
    repo: str,
    commit: dict[str, Any],
    time: object,
    *,
    tracked: Any,
    recall: Recall,
    need_records: bool,
    names: NameMatcher | None = None,
) -> None:
    operation, collection, rkey = commit.get("operation"), commit.get("collection"), commit.get("rkey")
    if operation not in _OPERATIONS or not isinstance(collection, str) or not isinstance(rkey, str):
        out.skipped.append(OpReason.BAD_OP)
        return
    if collection not in ENGAGEMENT:
        return  # profiles and the rest: not engagement
    path = f"{collection}/{rkey}"
    op = Op(
        out,
        repo,
        seq,
        time if isinstance(time, str) else "",
        f"at://{repo}/{path}",
        repo in tracked,
        tracked,
        names,
    )
    if operation == "delete":
        op.delete(collection, recall(repo, path))
        return
    if not need_records and not op.by_tracked:
        return
    record = commit.get("record")
    if not isinstance(record, dict):
        raise FrameError(FrameReason.BAD_BODY, f"{operation} whose record is not an object")
    op.write(collection, path, record, operation)


def _wrapped(out: FrameResult, seq: int, did: str, kind: str, inner: object, *, tracked: Any) -> None:
    """#identity/#account/#sync: the upstream event, verbatim; its time is the event's time."""
    if not isinstance(inner, dict):
        raise FrameError(FrameReason.BAD_BODY, f"{kind} event without its upstream object")
    if did not in tracked:
        return
    if kind == "identity":
        identity_event(out, seq, did, inner.get("time"), inner.get("handle"))
    elif kind == "account":
        account_event(
            out, seq, did, inner.get("time"), active=inner.get("active"), status=inner.get("status")
        )


def _seq(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SEQ:
        return value
    raise FrameError(FrameReason.BAD_BODY, f"seq/time_us {str(value)[:40]!r} is not a 63-bit int")


def _did(value: object) -> str:
    if isinstance(value, str) and value.startswith("did:"):
        return value
    raise FrameError(FrameReason.BAD_BODY, "event without a repo DID")


def iso_time(time_us: int) -> str:
    """A v1 time_us as v2 writes its `time`: RFC 3339, six fractional digits, Z."""
    try:
        return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError, OSError):
        return ""


def peek_position(frame: bytes | None, *, v1: bool) -> tuple[int, float | None] | None:
    """(seq or time_us, firehose time in s) of a frame that carries one (off the hot path)."""
    if frame is None:
        return None
    try:
        obj = load_object(frame)
        if v1:
            seq = _seq(obj.get("time_us"))
            return seq, seq / 1e6
        payload = obj.get("payload")
        if obj.get("$type") != "message" or not isinstance(payload, dict) or "seq" not in payload:
            return None
        seq = _seq(payload.get("seq"))
        return seq, _timestamp(payload.get("time"))
    except FrameError:
        return None


def _timestamp(value: object) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def raw_position(frame: bytes) -> int | None:
    """The first seq/time_us in a frame that cannot be decoded (log lines only)."""
    found = _RAW_SEQ.search(frame, 0, 4096)
    return int(found.group(1)) if found else None
