"""Jetstream's request rules, as pure functions: query → filter and start, or a pre-upgrade error.

v2 (`subscribeEvents`): kinds/dids/collections ANDed (collections constrain commits only,
`prefix.*` allowed), v1 names and impossible combinations rejected with 400 InvalidRequest;
`cursor` inclusive (seq >= N), values >= 1e15 are unix µs (first event at/after, clamped to the
floor with an #info OutdatedCursor), a seq below the floor is 400 CursorTooOld; a future cursor
is the live tip. v1 (`/subscribe`): wantedCollections/wantedDids (identity and account pass any
collection filter), the same cursor but clamped silently, never #sync. Errors are XRPC JSON on
v2 and plain text on v1, as production's handler writes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from relay.errors import Rejected
from relay.jetstream_convert import KINDS, NSID
from relay.jetstream_log import EventLog

V2_PATH: Final = f"/xrpc/{NSID}"
V1_PATH: Final = "/subscribe"
DICTIONARY_PATH: Final = "/xrpc/network.bsky.jetstream.getZstdDictionary"
SUBPROTOCOL: Final = "xrpc.v1.json"
TIME_CURSOR: Final = 10**15  # cursors at or above are unix µs
_NSID_HEAD: Final = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]*)(\.[a-zA-Z0-9-]+)*$")


def invalid(message: str) -> Rejected:
    return Rejected(400, "InvalidRequest", message)


@dataclass(frozen=True)
class Filter:
    """What one connection receives; None on an axis = everything."""

    kinds: frozenset[str] | None = None
    dids: frozenset[str] | None = None
    collections: frozenset[str] | None = None
    prefixes: tuple[str, ...] = ()
    max_size: int = 0
    v1: bool = False

    def wants(self, kind: str, did: str, collection: str | None, size: int) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.dids is not None and did not in self.dids:
            return False
        if self.max_size and size > self.max_size:
            return False
        if kind != "commit" or self.collections is None or not collection:
            return True
        return collection in self.collections or collection.startswith(self.prefixes)


@dataclass
class Request:
    """A parsed subscription: its filter, cursor and compression."""

    wire: str  # "v2" | "v1"
    filter: Filter
    cursor: int | None
    dictionary_id: int | None = None
    params: dict[str, list[str]] = field(default_factory=dict)


def parse(wire: str, params: Mapping[str, Sequence[str]], current_dict: int | None) -> Request:
    """The subscription a query asks for; raises Rejected (400) as production does."""
    cursor = _cursor(params.get("cursor"))
    if wire == "v1":
        filter_ = _filter_v1(params)
        return Request("v1", filter_, cursor, None, {k: list(v) for k, v in params.items()})
    filter_ = _filter_v2(params)
    return Request(
        "v2", filter_, cursor, _dictionary(params, current_dict), {k: list(v) for k, v in params.items()}
    )


def _cursor(values: Sequence[str] | None) -> int | None:
    if not values or values[0] == "":
        return None
    try:
        cursor = int(values[0])
    except ValueError:
        raise invalid(f"subscribe: invalid cursor: {values[0]!r}") from None
    if cursor < 0:
        raise invalid(f"subscribe: invalid cursor: negative value {cursor}")
    return cursor


def _dictionary(params: Mapping[str, Sequence[str]], current: int | None) -> int | None:
    if params.get("compress") == ["true"]:
        raise invalid("compress=true is the /subscribe (v1) opt-in; this endpoint uses zstdDictionary=<id>")
    raw = (params.get("zstdDictionary") or [""])[0]
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0 or int(raw) >= 2**32:
        raise invalid("zstdDictionary must be a positive integer zstd dictionary ID")
    if int(raw) != current:
        now = f"current dictionary id is {current}" if current is not None else "no dictionary is served"
        raise Rejected(
            400,
            "UnknownZstdDictionary",
            f"unknown zstd dictionary id {raw}; {now} (fetch it via getZstdDictionary and reconnect)",
        )
    return current


def _filter_v2(params: Mapping[str, Sequence[str]]) -> Filter:
    for legacy, new in (("wantedDids", "dids"), ("wantedCollections", "collections")):
        if legacy in params:
            raise invalid(
                f"subscribe: invalid options: {legacy} is the legacy /subscribe parameter; use {new}"
            )
    kinds = list(params.get("kinds") or ())
    if len(kinds) > 4 or any(k not in KINDS for k in kinds):
        raise invalid(f"subscribe: invalid options: kinds must be among {', '.join(KINDS)}: {kinds}")
    collections, prefixes = _collections(params.get("collections") or (), strict=True)
    if collections is not None and kinds and "commit" not in kinds:
        raise invalid("subscribe: invalid options: collections filter can never apply: kinds excludes commit")
    return Filter(
        kinds=frozenset(kinds) or None,
        dids=frozenset(params.get("dids") or ()) or None,
        collections=collections,
        prefixes=prefixes,
        max_size=_max_size(params),
    )


def _filter_v1(params: Mapping[str, Sequence[str]]) -> Filter:
    collections, prefixes = _collections(params.get("wantedCollections") or (), strict=False)
    kinds = frozenset({"commit", "identity", "account"})  # v1 never emits #sync
    dids = frozenset(params.get("wantedDids") or ()) or None
    return Filter(kinds, dids, collections, prefixes, _max_size(params), v1=True)


def _collections(values: Sequence[str], *, strict: bool) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    if not values:
        return None, ()
    full, prefixes = set(), []
    for raw in values:
        head, star, _ = raw.partition(".*")
        if star and raw.endswith(".*"):
            if strict and not _NSID_HEAD.match(head):
                raise invalid(f"subscribe: invalid options: invalid collection wildcard: {raw}")
            prefixes.append(head + ".")
        else:
            full.add(raw)
    return frozenset(full), tuple(prefixes)


def _max_size(params: Mapping[str, Sequence[str]]) -> int:
    values = params.get("maxMessageSizeBytes")
    if not values:
        return 0
    if len(values) != 1 or not values[0].isdigit() or int(values[0]) >= 2**32:
        raise invalid(f"subscribe: invalid options: invalid maxMessageSizeBytes {values[0]!r}")
    return int(values[0])


@dataclass(frozen=True)
class Start:
    """Where a connection starts: a log index, and an #info to send first (v2 clamp)."""

    index: int
    info: str | None = None


def plan_start(request: Request, log: EventLog) -> Start:
    """The first log index for the cursor (inclusive); raises CursorTooOld below a v2 floor.

    Without a floor (`log.floor is None`) the whole log is retained and no cursor is too old.
    """
    cursor = request.cursor
    if cursor is None:
        return Start(log.end)
    floor = log.floor
    if cursor < TIME_CURSOR:
        if floor is not None and max(cursor, 1) < floor:
            if request.wire == "v2":
                raise Rejected(
                    400,
                    "CursorTooOld",
                    f"subscribe: cursor too old: cursor {cursor} below lookback floor {floor}; "
                    "re-backfill from your last seq",
                )
            return Start(log.start)
        return Start(log.seek_seq(cursor))
    oldest = log.oldest_time()
    if floor is not None and oldest is not None and cursor < oldest:
        if request.wire == "v1":
            return Start(log.start)
        resumed = log.seqs[log.start - log.base] if log.start < log.end else floor
        return Start(log.start, f"cursor {cursor} is below the retention floor; resuming at seq {resumed}")
    return Start(log.seek_time(cursor))
