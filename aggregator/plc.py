"""Identity forensics, parse stage: a PLC audit log or a did:web document → identity rows.

Pure functions over upstream JSON (fuzzable): each operation becomes one `IdentityOp` (handle,
PDS endpoint, signing key, rotation keys) as `identity_history` stores it. Legacy `create`
operations are normalised as the PLC directory does; nullified operations are kept, flagged
(an op a rotation key overrode is evidence too), and never count as the account's state. An
entry that cannot be read is skipped and counted by the caller (invariant 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import orjson

from aggregator.errors import IdentityParseError

AT: Final = "at://"
PDS_SERVICE: Final = "atproto_pds"
WEB_KIND: Final = "did_web"


@dataclass(frozen=True, slots=True)
class IdentityOp:
    """One identity_history row: the DID's identity as one operation (or document) set it."""

    did: str
    time: datetime  # naive UTC: the op's createdAt (did:web: when the document was first seen)
    handle: str | None
    pds: str | None
    signing_key: str | None
    rotation_keys: tuple[str, ...]
    cid: str
    nullified: bool = False
    kind: str = "plc_operation"  # plc_operation | plc_tombstone | create | did_web


@dataclass(frozen=True, slots=True)
class ParsedLog:
    ops: list[IdentityOp]
    skipped: int  # entries that could not be read (or belong to another DID)


def parse_audit_log(did: str, data: object) -> ParsedLog:
    """`GET /<did>/log/audit` → its operations in log order; unreadable entries are skipped."""
    if not isinstance(data, list):
        raise IdentityParseError(f"audit log of {did} is not a JSON array")
    ops: list[IdentityOp] = []
    skipped = 0
    for entry in data:
        try:
            ops.append(parse_entry(did, entry))
        except (KeyError, TypeError, ValueError):
            skipped += 1
    return ParsedLog(ops, skipped)


def parse_entry(did: str, entry: Any) -> IdentityOp:
    """One audit-log entry; raises KeyError/TypeError/ValueError when it cannot be read."""
    if entry["did"] != did:
        raise ValueError(f"entry of {entry['did']!r} in the log of {did}")
    op, cid = entry["operation"], entry["cid"]
    if not isinstance(cid, str) or not cid:
        raise ValueError("no cid")
    handle, pds, key, rotation = _identity(op)
    return IdentityOp(
        did,
        parse_time(entry["createdAt"]),
        handle,
        pds,
        key,
        rotation,
        cid,
        nullified=bool(entry.get("nullified", False)),
        kind=op["type"],
    )


def _identity(op: Any) -> tuple[str | None, str | None, str | None, tuple[str, ...]]:
    """(handle, PDS endpoint, signing key, rotation keys) an operation sets."""
    kind = op["type"]
    if kind == "plc_operation":
        service = (op.get("services") or {}).get(PDS_SERVICE) or {}
        methods = op.get("verificationMethods") or {}
        return (
            _handle(op.get("alsoKnownAs") or []),
            _text(service.get("endpoint")),
            _text(methods.get("atproto")),
            _keys(op.get("rotationKeys") or []),
        )
    if kind == "plc_tombstone":
        return None, None, None, ()
    if kind == "create":  # legacy genesis op, normalised as did-method-plc does
        signing, recovery, service = (
            _text(op["signingKey"]),
            _text(op["recoveryKey"]),
            _text(op.get("service")),
        )
        pds = service if service is None or "://" in service else "https://" + service
        handle = _handle([op["handle"]]) if op.get("handle") else None
        return handle, pds, signing, tuple(k for k in (recovery, signing) if k)
    raise ValueError(f"unknown operation type {kind!r}")


def parse_did_document(did: str, doc: object, *, seen_at: datetime) -> IdentityOp:
    """A did:web `did.json` → one row; its cid is a digest of what it says (handle, PDS, key),
    so the same document fetched again is the same row and a changed one a new row."""
    if not isinstance(doc, dict) or doc.get("id") != did:
        raise IdentityParseError(f"{did}: not its DID document")
    handle = _handle(doc.get("alsoKnownAs") or [])
    pds = next(
        (
            _text(s.get("serviceEndpoint"))
            for s in _dicts(doc.get("service"))
            if str(s.get("id", "")).endswith("#" + PDS_SERVICE)
        ),
        None,
    )
    key = next(
        (
            _did_key(m)
            for m in _dicts(doc.get("verificationMethod"))
            if str(m.get("id", "")).endswith("#atproto")
        ),
        None,
    )
    digest = hashlib.blake2b(orjson.dumps([handle, pds, key]), digest_size=16).hexdigest()
    return IdentityOp(did, _naive(seen_at), handle, pds, key, (), "web:" + digest, kind=WEB_KIND)


def did_web_url(did: str, scheme: str = "https") -> str:
    """Where a did:web's document lives: `did:web:host%3A8443` → https://host:8443/.well-known/did.json,
    `did:web:host:user:alice` → https://host/user/alice/did.json."""
    parts = did.removeprefix("did:web:").split(":")
    if not did.startswith("did:web:") or not parts[0]:
        raise ValueError(f"not a did:web: {did}")
    host = unquote(parts[0])
    path = "/".join(unquote(p) for p in parts[1:]) or ".well-known"
    return f"{scheme}://{host}/{path}/did.json"


def parse_time(text: object) -> datetime:
    if not isinstance(text, str):
        raise TypeError("createdAt is not a string")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return _naive(moment)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _handle(aka: object) -> str | None:
    if not isinstance(aka, list):
        raise TypeError("alsoKnownAs is not a list")
    for name in aka:
        if isinstance(name, str) and name:
            return name.removeprefix(AT)
    return None


def _keys(keys: object) -> tuple[str, ...]:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TypeError("rotationKeys is not a list of strings")
    return tuple(keys)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value or None


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _did_key(method: dict[str, Any]) -> str | None:
    multibase = method.get("publicKeyMultibase")
    return f"did:key:{multibase}" if isinstance(multibase, str) and multibase else None
