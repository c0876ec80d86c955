"""Records stage: map one decoded frame to the events that concern tracked accounts.

Pure functions (no I/O): the caller passes the tracked set and a recall function for
remembered record paths, and gets back events, paths to remember and per-op skip reasons.
Any decoded input yields a result or a FrameError: every field is type-checked before use, and
every event it emits passes the event contract (DIDs start with `did:`, seq a 63-bit int).

The mapping rules (`Op.write`, `Op.delete`, `identity_event`, `account_event`) are the one
copy both wires call: the relay path here (commit ops + CAR blocks, `frame_events`) and the
Jetstream path (one JSON op per event, streamer/jetstream_decode.py), so a like read from
either wire yields the same event. A post create by anyone is also matched against the watch
terms (streamer/names.py): each tracked account it names yields a `name_mention`, unless the
post already tags that account with a mention facet (counted once, as the mention).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from schemas import Action, Direction, Event, Kind
from streamer.errors import FrameError, FrameReason, OpReason
from streamer.frames import Envelope, decode_blocks
from streamer.names import NameMatcher

POST: Final = "app.bsky.feed.post"
LIKE: Final = "app.bsky.feed.like"
REPOST: Final = "app.bsky.feed.repost"
FOLLOW: Final = "app.bsky.graph.follow"
_REMEMBERED_KINDS: Final = {LIKE: Kind.LIKE, REPOST: Kind.REPOST, FOLLOW: Kind.FOLLOW}
_MENTION: Final = "app.bsky.richtext.facet#mention"
_MAX_HANDLE: Final = 253  # atproto handles are domain names


class Memory(NamedTuple):
    """What a like/repost/follow pointed at, kept so its delete (a bare path) can be resolved."""

    kind: str
    target_did: str
    subject_uri: str | None


Recall = Callable[[str, str], Memory | None]


ENGAGEMENT: Final = frozenset({POST, LIKE, REPOST, FOLLOW})  # collections that can yield events
_ACTIONS: Final = {action.value: action for action in Action}  # a dict lookup, not Enum's __call__


@dataclass(slots=True)
class FrameResult:
    source: str = "relay"  # the source id every event of this frame carries
    events: list[Event] = field(default_factory=list)
    remember: list[tuple[str, str, Memory]] = field(default_factory=list)
    skipped: list[OpReason] = field(default_factory=list)

    def emit(self, **values: Any) -> None:
        self.events.append(Event(idx=len(self.events), source=self.source, **values))


def uri_did(uri: object) -> str | None:
    """The authority DID of an at:// URI, or None."""
    if not isinstance(uri, str) or not uri.startswith("at://did:"):
        return None
    end = uri.find("/", 5)
    return uri[5:] if end < 0 else uri[5:end]


def frame_events(
    env: Envelope,
    tracked: Container[str],
    recall: Recall,
    *,
    need_records: bool = True,
    names: NameMatcher | None = None,
) -> FrameResult:
    """Events of a #commit, #identity or #account envelope; other kinds yield nothing."""
    result = FrameResult()
    body = env.body
    seq, time, did = env.seq, body.get("time"), body.get("did")
    if env.kind == "#commit":
        _commit(body, seq, tracked, recall, result, need_records=need_records, names=names)
        return result
    if seq is None or not isinstance(did, str) or did not in tracked:
        return result
    if env.kind == "#identity":
        identity_event(result, seq, did, time, body.get("handle"))
    elif env.kind == "#account":
        account_event(result, seq, did, time, active=body.get("active"), status=body.get("status"))
    return result


def identity_event(out: FrameResult, seq: int, did: str, time: object, handle: object) -> None:
    """A tracked account's #identity; `time` is the upstream (relay) event's time on both wires."""
    out.emit(
        seq=seq,
        kind=Kind.HANDLE,
        action=Action.UPDATE,
        direction=Direction.BY,
        subject_did=did,
        actor_did=did,
        time=_text(time),
        handle=handle if isinstance(handle, str) and 0 < len(handle) <= _MAX_HANDLE else None,
    )


def account_event(
    out: FrameResult, seq: int, did: str, time: object, *, active: object, status: object
) -> None:
    """A tracked account's #account; `time` is the upstream (relay) event's time on both wires."""
    out.emit(
        seq=seq,
        kind=Kind.ACCOUNT,
        action=Action.UPDATE,
        direction=Direction.BY,
        subject_did=did,
        actor_did=did,
        time=_text(time),
        active=active if isinstance(active, bool) else None,
        status=status if isinstance(status, str) else None,
    )


def _commit(
    body: dict[str, Any],
    seq: int | None,
    tracked: Container[str],
    recall: Recall,
    out: FrameResult,
    *,
    need_records: bool,
    names: NameMatcher | None,
) -> None:
    repo, ops = body.get("repo"), body.get("ops")
    if not isinstance(repo, str) or not repo.startswith("did:") or seq is None or not isinstance(ops, list):
        raise FrameError(FrameReason.BAD_BODY, "commit without a repo DID, a valid seq or ops")
    time = _text(body.get("time"))
    blocks: dict[bytes, Any] | None = None
    for op in ops:
        path, action = (op.get("path"), op.get("action")) if isinstance(op, dict) else (None, None)
        if not isinstance(path, str) or "/" not in path or action not in ("create", "update", "delete"):
            out.skipped.append(OpReason.BAD_OP)
            continue
        collection = path.split("/", 1)[0]
        if collection not in ENGAGEMENT:
            continue  # profiles, blocks, lists…: not engagement
        ctx = Op(out, repo, seq, time, f"at://{repo}/{path}", repo in tracked, tracked, names)
        if action == "delete":
            ctx.delete(collection, recall(repo, path))
            continue
        if not need_records and not ctx.by_tracked:
            continue
        if blocks is None:
            blocks = decode_blocks(body, _op_cids(ops))
        cid = op.get("cid")
        record = blocks.get(cid) if isinstance(cid, bytes) else None
        if not isinstance(record, dict):
            out.skipped.append(OpReason.MISSING_BLOCK)
            continue
        ctx.write(collection, path, record, action)


def _op_cids(ops: list[Any]) -> set[bytes]:
    return {op["cid"] for op in ops if isinstance(op, dict) and isinstance(op.get("cid"), bytes)}


@dataclass(slots=True)
class Op:
    """One create/update/delete of an engagement collection by `actor`: the mapping rules."""

    out: FrameResult
    actor: str
    seq: int
    time: str
    uri: str
    by_tracked: bool
    tracked: Container[str]
    names: NameMatcher | None = None  # watch terms: post creates by anyone are matched

    def emit(self, kind: Kind, action: Action, subject: str, **values: Any) -> None:
        direction = Direction.BY if subject == self.actor else Direction.TO
        self.out.emit(
            seq=self.seq,
            kind=kind,
            action=action,
            direction=direction,
            subject_did=subject,
            actor_did=self.actor,
            time=self.time,
            uri=self.uri,
            **values,
        )

    def concerned(self, did: str | None) -> bool:
        """A 'to' event needs a tracked target other than the actor (self-engagement is noise)."""
        return did is not None and did != self.actor and did in self.tracked

    def write(self, collection: str, path: str, record: dict[str, Any], action: str) -> None:
        """A create or update with its record; a record without its lexicon's shape is a skip."""
        try:
            _create(self, collection, path, record, _ACTIONS[action])
        except (TypeError, KeyError, AttributeError, ValueError):
            self.out.skipped.append(OpReason.BAD_RECORD)

    def delete(self, collection: str, memory: Memory | None) -> None:
        """A delete: a bare path, resolved by what was remembered when it was created."""
        _delete(self, collection, memory)


def _create(ctx: Op, collection: str, path: str, record: dict[str, Any], action: Action) -> None:
    created_at = _opt_text(record.get("createdAt"))
    if collection == POST:
        _post(ctx, record, action, created_at)
        return
    kind = _REMEMBERED_KINDS[collection]
    if kind is Kind.FOLLOW:
        target, subject_uri = record["subject"], None
        if not isinstance(target, str) or not target.startswith("did:"):
            raise TypeError("follow subject is not a DID")
    else:
        subject_uri = record["subject"]["uri"]
        if not isinstance(subject_uri, str):
            raise TypeError("subject uri is not a string")
        target = uri_did(subject_uri) or ""
    values = {"subject_uri": subject_uri, "target_did": target or None, "created_at": created_at}
    if ctx.by_tracked:
        ctx.emit(kind, action, ctx.actor, **values)
    if ctx.concerned(target):
        ctx.emit(kind, action, target, **values)
    if ctx.by_tracked or ctx.concerned(target):
        ctx.out.remember.append((ctx.actor, path, Memory(kind.value, target, subject_uri)))


def _delete(ctx: Op, collection: str, memory: Memory | None) -> None:
    kind = Kind.POST if collection == POST else _REMEMBERED_KINDS[collection]
    target = memory.target_did if memory else None
    subject_uri = memory.subject_uri if memory else None
    values = {"subject_uri": subject_uri, "target_did": target}
    if ctx.by_tracked:
        ctx.emit(kind, Action.DELETE, ctx.actor, **values)
    if memory is not None and ctx.concerned(target):
        ctx.emit(kind, Action.DELETE, target or "", **values)


def _post(ctx: Op, record: dict[str, Any], action: Action, created_at: str | None) -> None:
    text = record.get("text")
    if not isinstance(text, str):
        raise TypeError("post text is not a string")
    reply = record.get("reply")
    parent = _opt_text(reply["parent"]["uri"]) if isinstance(reply, dict) else None
    root = _opt_text(reply["root"]["uri"]) if isinstance(reply, dict) else None
    quote, link = _embed_uris(record.get("embed"))
    common = {"created_at": created_at, "text": text, "reply_root": root, "quote_uri": quote}
    if ctx.by_tracked:
        ctx.emit(
            Kind.POST,
            action,
            ctx.actor,
            subject_uri=parent,
            target_did=uri_did(parent),
            link_uri=link,
            **common,
        )
    seen = {ctx.actor}
    for kind, uri in ((Kind.REPLY, parent), (Kind.REPLY, root), (Kind.QUOTE, quote)):
        target = uri_did(uri)
        if target not in seen and ctx.concerned(target):
            seen.add(target or "")
            ctx.emit(kind, action, target or "", subject_uri=uri, target_did=target, **common)
    tagged = set()
    for target in _mentions(record.get("facets")):
        if target not in seen and ctx.concerned(target):
            seen.add(target)
            tagged.add(target)
            ctx.emit(Kind.MENTION, action, target, target_did=target, **common)
    if ctx.names and action is Action.CREATE:
        for hit in ctx.names.find(text):
            if hit.did not in tagged and ctx.concerned(hit.did):  # a tagged account counts once
                ctx.emit(Kind.NAME_MENTION, action, hit.did, target_did=hit.did, term=hit.term, **common)


def _embed_uris(embed: object) -> tuple[str | None, str | None]:
    """(quoted post URI, external link URI) of a post embed."""
    if not isinstance(embed, dict):
        return None, None
    kind = embed.get("$type")
    if kind == "app.bsky.embed.record":
        return _opt_text(embed["record"]["uri"]), None
    if kind == "app.bsky.embed.recordWithMedia":
        return _opt_text(embed["record"]["record"]["uri"]), None
    if kind == "app.bsky.embed.external":
        return None, _opt_text(embed["external"]["uri"])
    return None, None


def _mentions(facets: object) -> list[str]:
    if not isinstance(facets, list):
        return []
    dids = []
    for facet in facets:
        for feature in facet.get("features", []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == _MENTION:
                did = feature.get("did")
                if isinstance(did, str):
                    dids.append(did)
    return dids


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _opt_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")
