"""What people paste as an account → a handle or a DID, or the reason it is neither.

Accepted: `chu-toulouse.bsky.social`, `@Chu-Toulouse.bsky.social` (handles are lower-cased),
custom-domain handles, bare DIDs (did:plc, did:web), `https://bsky.app/profile/<handle|did>`
URLs (a `/post/…` URL gives its author), and `at://` URIs. A rejection says why, so a person
can fix the line; nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from urllib.parse import unquote, urlsplit

PROFILE_HOSTS = frozenset({"bsky.app", "www.bsky.app", "main.bsky.dev", "staging.bsky.app"})
RESERVED_TLDS = frozenset(
    {"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion", "test"}
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PLC = re.compile(r"did:plc:[a-z2-7]{24}")
_WEB = re.compile(r"did:web:[a-z0-9.-]+(?:%3a\d+)?")
_SEPARATORS = re.compile(r"[\s,;|]+")
_WRAP = "\"'<>()[]{},;«»“”‘’"  # quotes and brackets people paste around an account
_EDGE = _WRAP + ".:!?"
_COMMENT = re.compile(r"(?:^|\s)#.*")


class ActorReason(StrEnum):
    """Why a pasted text is not an account."""

    EMPTY = "empty"
    NOT_A_HANDLE = "not_a_handle"  # spaces, or characters a handle cannot have
    NO_DOMAIN = "no_domain"  # `chu-toulouse` alone
    RESERVED_TLD = "reserved_tld"
    BAD_DID = "bad_did"
    UNSUPPORTED_DID = "unsupported_did_method"
    BAD_URL = "bad_url"


@dataclass(frozen=True, slots=True)
class ActorRef:
    """A pasted account: `value` is a lower-cased handle or a DID."""

    raw: str
    kind: Literal["handle", "did"]
    value: str


@dataclass(frozen=True, slots=True)
class ActorRejected:
    raw: str
    reason: ActorReason
    detail: str

    def __str__(self) -> str:
        return f"{self.raw!r}: {self.detail}"


def check_handle(raw: str, text: str) -> ActorRef | ActorRejected:
    handle = text.lower()
    if not handle:
        return ActorRejected(raw, ActorReason.EMPTY, "nothing to read")
    if any(c.isspace() for c in handle):
        return ActorRejected(
            raw, ActorReason.NOT_A_HANDLE, "a name, not a handle (try `bluepulse accounts discover`)"
        )
    labels = handle.split(".")
    if len(labels) < 2:
        return ActorRejected(raw, ActorReason.NO_DOMAIN, f"no domain: did you mean {handle}.bsky.social?")
    if len(handle) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return ActorRejected(raw, ActorReason.NOT_A_HANDLE, "not a valid handle (letters, digits, '-', '.')")
    if not labels[-1][0].isalpha():
        return ActorRejected(raw, ActorReason.NOT_A_HANDLE, "a handle's last label starts with a letter")
    if labels[-1] in RESERVED_TLDS:
        return ActorRejected(raw, ActorReason.RESERVED_TLD, f".{labels[-1]} is not a public domain")
    return ActorRef(raw, "handle", handle)


def check_did(raw: str, text: str) -> ActorRef | ActorRejected:
    method, _, rest = text.partition(":")[2].partition(":")
    method = method.lower()
    if method == "plc":
        did = f"did:plc:{rest.lower()}"
        if _PLC.fullmatch(did):
            return ActorRef(raw, "did", did)
        return ActorRejected(raw, ActorReason.BAD_DID, "a did:plc has 24 characters of a-z and 2-7")
    if method == "web":
        did = f"did:web:{rest.lower()}"
        if _WEB.fullmatch(did) and isinstance(check_handle(raw, unquote(rest).split(":")[0]), ActorRef):
            return ActorRef(raw, "did", did)
        return ActorRejected(raw, ActorReason.BAD_DID, "a did:web names a domain")
    return ActorRejected(raw, ActorReason.UNSUPPORTED_DID, f"did:{method} accounts are not on Bluesky")


def from_url(raw: str, text: str) -> ActorRef | ActorRejected:
    url = urlsplit(text if "://" in text else "https://" + text)
    if url.scheme == "at":
        return parse_actor_text(raw, unquote(url.netloc))
    parts = [unquote(p) for p in url.path.split("/") if p]
    if (url.hostname or "") not in PROFILE_HOSTS:
        return ActorRejected(raw, ActorReason.BAD_URL, f"not a Bluesky profile URL ({url.hostname})")
    if len(parts) < 2 or parts[0] != "profile":
        return ActorRejected(
            raw, ActorReason.BAD_URL, "a profile URL reads https://bsky.app/profile/<handle>"
        )
    return parse_actor_text(raw, parts[1])


def parse_actor_text(raw: str, text: str) -> ActorRef | ActorRejected:
    text = text.strip().strip(_EDGE).removeprefix("@").strip()
    if text.lower().startswith("did:"):
        return check_did(raw, text)
    return check_handle(raw, text)


def parse_actor(raw: str) -> ActorRef | ActorRejected:
    """One pasted text (a line's token) → an account reference, or why not."""
    text = raw.strip().strip(_WRAP)
    lowered = text.lower()
    is_url = lowered.startswith(("http://", "https://", "at://")) or lowered.split("/")[0] in PROFILE_HOSTS
    if is_url and "/" in text:
        return from_url(raw, text)
    return parse_actor_text(raw, text)


@dataclass(slots=True)
class Parsed:
    refs: list[ActorRef]
    rejected: list[ActorRejected]


def parse_actors(texts: Iterable[str]) -> Parsed:
    """Each text parsed; refs deduplicated by value (first spelling kept), order kept."""
    refs: dict[str, ActorRef] = {}
    rejected: list[ActorRejected] = []
    for raw in texts:
        parsed = parse_actor(raw)
        if isinstance(parsed, ActorRejected):
            rejected.append(parsed)
        else:
            refs.setdefault(parsed.value, parsed)
    return Parsed(list(refs.values()), rejected)


def pasted_tokens(text: str) -> list[str]:
    """The account-like tokens of pasted text (a file, a spreadsheet column); `#` starts a comment.

    A line whose tokens all look like words (no '.', ':', '@', '/') is kept whole, so a name
    pasted by mistake is reported once, as a name, rather than word by word.
    """
    tokens: list[str] = []
    for raw_line in text.splitlines():
        line = _COMMENT.sub("", raw_line).strip()
        if not line:
            continue
        words = [w for w in _SEPARATORS.split(line) if w]
        likely = [w for w in words if any(c in w for c in ".:@/")]
        tokens.extend(likely or [line])
    return tokens
