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
from schemas.event import FIELD_NAMES
from streamer.errors import FrameError, FrameReason, OpReason
from streamer.frames import Envelope, decode_block, decode_blocks, find_block
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
    by_tracked = repo in tracked
    for op in ops:
        path, action = (op.get("path"), op.get("action")) if isinstance(op, dict) else (None, None)
        if not isinstance(path, str) or "/" not in path or action not in ("create", "update", "delete"):
            out.skipped.append(OpReason.BAD_OP)
            continue
        collection = path.split("/", 1)[0]
        if collection not in ENGAGEMENT:
            continue  # profiles, blocks, lists…: not engagement
        if action == "delete":
            ctx = Op(out, repo, seq, time, f"at://{repo}/{path}", by_tracked, tracked, names)
            ctx.delete(collection, recall(repo, path))
            continue
        if not need_records and not by_tracked:
            continue
        if blocks is None:
            blocks = _record_blocks(body, ops)
        cid = op.get("cid")
        record = blocks.get(cid) if isinstance(cid, bytes) else None
        if type(record) is _RawBlock:
            kind = _REMEMBERED_KINDS.get(collection)
            fixed = fixed_record(record.data, kind is Kind.FOLLOW) if kind is not None else None
            if kind is not None and fixed is not None:  # the record's fields straight from its bytes
                uri, verb = f"at://{repo}/{path}", _ACTIONS[action]
                _engagement(
                    out,
                    kind,
                    verb,
                    fixed,
                    actor=repo,
                    seq=seq,
                    time=time,
                    uri=uri,
                    path=path,
                    by_tracked=by_tracked,
                    tracked=tracked,
                )
                continue
            record = blocks[cid] = decode_block(record.data)
        if not isinstance(record, dict):
            out.skipped.append(OpReason.MISSING_BLOCK)
            continue
        Op(out, repo, seq, time, f"at://{repo}/{path}", by_tracked, tracked, names).write(
            collection, path, record, action
        )


class _RawBlock:
    """The undecoded block of a commit's one record (decoded only if the direct read declines)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _record_blocks(body: dict[str, Any], ops: list[Any]) -> dict[bytes, Any]:
    """The op records by CID: decoded, or for a commit with one record CID its raw block (the
    same walk and, once decoded, the same value or FrameError as decode_blocks)."""
    wanted = _op_cids(ops)
    if len(wanted) != 1:
        return decode_blocks(body, wanted)
    only = next(iter(wanted))
    raw = find_block(body, only)
    return {} if raw is None else {only: _RawBlock(raw)}


# _engagement builds Events positionally (the busy stream's hot path): fail at import, not
# silently, if the contract's field order ever changes under it
_POSITIONAL: Final = ("seq", "idx", "kind", "action", "direction", "subject_did", "actor_did", "time")
_POSITIONAL_TAIL: Final = ("uri", "subject_uri", "target_did", "created_at")
if FIELD_NAMES[:12] != _POSITIONAL + _POSITIONAL_TAIL:
    raise ImportError(f"streamer.records builds Events positionally; Event's fields are now {FIELD_NAMES}")


# A like or repost record in canonical DAG-CBOR: {$type, subject: {cid, uri}, createdAt}; a
# follow: {$type, subject: DID text, createdAt}. Keys sort by length, then bytewise.
_FIXED_TYPE: Final = b"\xa3\x65$type"
_FIXED_REF: Final = b"\x67subject\xa2\x63cid"
_FIXED_DID: Final = b"\x67subject"
_FIXED_URI: Final = b"\x63uri"
_FIXED_CREATED: Final = b"\x69createdAt"


def fixed_record(block: bytes, follow: bool) -> tuple[str, str | None, str] | None:
    """(target DID or "", subject URI, createdAt) of a like/repost (`follow` False) or follow
    record read from its block's bytes, exactly as libipld + `_create` read them; None (decode
    it) for any other layout: another key (`via`…), a length that is not minimal or overruns,
    text that is not UTF-8, a follow subject that is not a DID, bytes after the record."""
    if not block.startswith(_FIXED_TYPE):
        return None
    at = _text_end(block, 7)  # $type: any text, as _create never reads it
    if at < 0:
        return None
    if follow:
        if not block.startswith(_FIXED_DID, at):
            return None
        did, at = _text_at(block, at + 8)
        if did is None or not did.startswith("did:"):
            return None
        target, subject_uri = did, None
    else:
        if not block.startswith(_FIXED_REF, at):
            return None
        at = _text_end(block, at + 13)  # subject.cid: a text, never read
        if at < 0 or not block.startswith(_FIXED_URI, at):
            return None
        subject_uri, at = _text_at(block, at + 4)
        if subject_uri is None:
            return None
        target = uri_did(subject_uri) or ""
    if not block.startswith(_FIXED_CREATED, at):
        return None
    created_at, at = _text_at(block, at + 10)
    if created_at is None or at != len(block):
        return None
    return target, subject_uri, created_at


def _text_end(block: bytes, at: int) -> int:
    """Offset after the minimally encoded, UTF-8 text string at `at`; -1 if there is none."""
    return _text_at(block, at)[1]


def _text_at(block: bytes, at: int) -> tuple[str | None, int]:
    """(value, offset after) of the minimally encoded UTF-8 text string at `at`, or (None, -1)."""
    if at >= len(block):
        return None, -1
    head = block[at]
    if 0x60 <= head < 0x78:
        length, at = head - 0x60, at + 1
    elif head == 0x78 and at + 1 < len(block) and block[at + 1] >= 24:
        length, at = block[at + 1], at + 2
    elif head == 0x79 and at + 2 < len(block) and (length := int.from_bytes(block[at + 1 : at + 3])) >= 256:
        at += 3
    else:
        return None, -1
    end = at + length
    if end > len(block):
        return None, -1
    try:
        return block[at:end].decode(), end
    except UnicodeDecodeError:
        return None, -1


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
    fields = (target, subject_uri, created_at)
    _engagement(
        ctx.out,
        kind,
        action,
        fields,
        actor=ctx.actor,
        seq=ctx.seq,
        time=ctx.time,
        uri=ctx.uri,
        path=path,
        by_tracked=ctx.by_tracked,
        tracked=ctx.tracked,
    )


def _engagement(
    out: FrameResult,
    kind: Kind,
    action: Action,
    fields: tuple[str, str | None, str | None],
    *,
    actor: str,
    seq: int,
    time: str,
    uri: str,
    path: str,
    by_tracked: bool,
    tracked: Container[str],
) -> None:
    """The events of a like/repost/follow write, `fields` (target DID or "", subject URI,
    createdAt): one by a tracked actor, one to a tracked target other than the actor, and the
    path to remember. Events are built positionally: the hot path of a busy stream."""
    target, subject_uri, created_at = fields
    events, source = out.events, out.source
    tail = (time, uri, subject_uri, target or None, created_at)  # Event's fields after actor_did
    if by_tracked:
        events.append(Event(seq, len(events), kind, action, Direction.BY, actor, actor, *tail, source=source))
    concerned = target != actor and target in tracked  # Op.concerned: self-engagement is noise
    if concerned:
        events.append(
            Event(seq, len(events), kind, action, Direction.TO, target, actor, *tail, source=source)
        )
    if by_tracked or concerned:
        out.remember.append((actor, path, Memory(kind.value, target, subject_uri)))


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
