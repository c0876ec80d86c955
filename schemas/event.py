"""The versioned event contract between streamer and aggregator (event.v1.json).

Both halves import this module and never each other; a unit test holds the dataclass
equal to the JSON Schema so kcat users and other languages read the same contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Final

import orjson

from schemas.errors import SchemaError, SchemaReason

SCHEMA_VERSION: Final = 1
SCHEMA_HEADER: Final = "bluepulse-schema"
RELAY: Final = "relay"  # the source of an event that names none (every event before issue 13)


class Kind(StrEnum):
    POST = "post"
    REPLY = "reply"
    QUOTE = "quote"
    MENTION = "mention"
    LIKE = "like"
    REPOST = "repost"
    FOLLOW = "follow"
    HANDLE = "handle"
    ACCOUNT = "account"
    NAME_MENTION = "name_mention"  # a post names the account by a watch term (issue 16)


class Action(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    UPDATE = "update"


class Direction(StrEnum):
    BY = "by"
    TO = "to"


@dataclass(frozen=True, slots=True)
class Event:
    """One fact concerning one tracked account; (source, seq, idx) identifies it across
    replays of one source (`source`: "relay", "jetstream2@host[:port]", "jetstream1")."""

    seq: int
    idx: int
    kind: Kind
    action: Action
    direction: Direction
    subject_did: str
    actor_did: str
    time: str
    uri: str | None = None
    subject_uri: str | None = None
    target_did: str | None = None
    created_at: str | None = None
    text: str | None = None
    reply_root: str | None = None
    quote_uri: str | None = None
    link_uri: str | None = None
    handle: str | None = None
    active: bool | None = None
    status: str | None = None
    term: str | None = None
    source: str = RELAY
    v: int = SCHEMA_VERSION


FIELD_NAMES: Final = tuple(f.name for f in fields(Event))
_REQUIRED: Final = ("seq", "idx", "kind", "action", "direction", "subject_did", "actor_did", "time")
_OPTIONAL_STR: Final = (
    "uri",
    "subject_uri",
    "target_did",
    "created_at",
    "text",
    "reply_root",
    "quote_uri",
    "link_uri",
    "handle",
    "status",
    "term",
)


_ENCODED: Final = tuple(name for name in FIELD_NAMES if name != "source")


def encode(event: Event) -> bytes:
    """Compact JSON without nulls: the wire value of a Kafka message or a JSONL line.

    Read field by field (dataclasses.asdict deep-copies and cost ~4x as much per event) and
    written by orjson, once per event (the same bytes as json's compact, non-ASCII form).
    `source` is written only when it is not the relay: relay events stay byte-identical to
    those of earlier versions, which an aggregator of before issue 13 still reads.
    """
    body = {name: value for name in _ENCODED if (value := getattr(event, name)) is not None}
    if event.source != RELAY:
        body["source"] = event.source
    return orjson.dumps(body)


def decode(data: bytes | str) -> Event:
    """Parse and validate one event; raises SchemaError with a closed-set reason."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(SchemaReason.NOT_JSON, str(exc)) from exc
    if not isinstance(obj, dict):
        raise SchemaError(SchemaReason.NOT_OBJECT)
    return from_dict(obj)


def from_dict(obj: dict[str, Any]) -> Event:
    version = obj.get("v")
    if version != SCHEMA_VERSION:
        raise SchemaError(SchemaReason.UNKNOWN_VERSION, repr(version))
    unknown = obj.keys() - set(FIELD_NAMES)
    if unknown:
        raise SchemaError(SchemaReason.UNKNOWN_FIELD, ",".join(sorted(unknown)))
    missing = [name for name in _REQUIRED if obj.get(name) is None]
    if missing:
        raise SchemaError(SchemaReason.MISSING_FIELD, ",".join(missing))
    try:
        event = Event(
            seq=_int(obj["seq"]),
            idx=_int(obj["idx"]),
            kind=Kind(obj["kind"]),
            action=Action(obj["action"]),
            direction=Direction(obj["direction"]),
            subject_did=_did(obj["subject_did"]),
            actor_did=_did(obj["actor_did"]),
            time=_str(obj["time"]),
            active=_opt_bool(obj.get("active")),
            source=_source(obj.get("source")),
            **{name: _opt_str(obj.get(name)) for name in _OPTIONAL_STR},  # type: ignore[arg-type]
        )
    except (ValueError, TypeError) as exc:
        raise SchemaError(SchemaReason.BAD_FIELD, str(exc)) from exc
    return event


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _did(value: Any) -> str:
    if not _str(value).startswith("did:"):
        raise ValueError(f"expected a DID, got {value!r}")
    return str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _source(value: Any) -> str:
    if value is None:
        return RELAY
    if not _str(value):
        raise ValueError("expected a source id, got an empty string")
    return str(value)


def _opt_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")
