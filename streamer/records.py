"""Records stage: map one decoded frame to the events that concern tracked accounts.

Pure functions (no I/O): the caller passes the tracked set and a recall function for
remembered record paths, and gets back events, paths to remember and per-op skip reasons.
Any decoded input yields a result or a FrameError: every field is type-checked before use, and
every event it emits passes the event contract (DIDs start with `did:`, seq a 63-bit int).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from schemas import Action, Direction, Event, Kind
from streamer.errors import FrameError, FrameReason, OpReason
from streamer.frames import Envelope, decode_blocks

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


@dataclass(slots=True)
class FrameResult:
    events: list[Event] = field(default_factory=list)
    remember: list[tuple[str, str, Memory]] = field(default_factory=list)
    skipped: list[OpReason] = field(default_factory=list)

    def emit(self, **values: Any) -> None:
        self.events.append(Event(idx=len(self.events), **values))


def uri_did(uri: object) -> str | None:
    """The authority DID of an at:// URI, or None."""
    if not isinstance(uri, str) or not uri.startswith("at://did:"):
        return None
    end = uri.find("/", 5)
    return uri[5:] if end < 0 else uri[5:end]


def frame_events(
    env: Envelope, tracked: Container[str], recall: Recall, *, need_records: bool = True
) -> FrameResult:
    """Events of a #commit, #identity or #account envelope; other kinds yield nothing."""
    result = FrameResult()
    body = env.body
    seq, time, did = env.seq, body.get("time"), body.get("did")
    if env.kind == "#commit":
        _commit(body, seq, tracked, recall, result, need_records=need_records)
        return result
    if seq is None or not isinstance(did, str) or did not in tracked:
        return result
    if env.kind == "#identity":
        handle = body.get("handle")
        result.emit(
            seq=seq, kind=Kind.HANDLE, action=Action.UPDATE, direction=Direction.BY,
            subject_did=did, actor_did=did, time=_text(time),
            handle=handle if isinstance(handle, str) and 0 < len(handle) <= _MAX_HANDLE else None,
        )  # fmt: skip
    elif env.kind == "#account":
        active, status = body.get("active"), body.get("status")
        result.emit(
            seq=seq, kind=Kind.ACCOUNT, action=Action.UPDATE, direction=Direction.BY,
            subject_did=did, actor_did=did, time=_text(time),
            active=active if isinstance(active, bool) else None,
            status=status if isinstance(status, str) else None,
        )  # fmt: skip
    return result


def _commit(
    body: dict[str, Any], seq: int | None, tracked: Container[str], recall: Recall, out: FrameResult,
    *, need_records: bool,
) -> None:  # fmt: skip
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
        if collection not in (POST, LIKE, REPOST, FOLLOW):
            continue  # profiles, blocks, lists…: not engagement
        ctx = _Op(out, repo, seq, time, f"at://{repo}/{path}", repo in tracked, tracked)
        if action == "delete":
            _delete(ctx, collection, recall(repo, path))
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
        try:
            _create(ctx, collection, path, record, Action(action))
        except (TypeError, KeyError, AttributeError, ValueError):
            out.skipped.append(OpReason.BAD_RECORD)


def _op_cids(ops: list[Any]) -> set[bytes]:
    return {op["cid"] for op in ops if isinstance(op, dict) and isinstance(op.get("cid"), bytes)}


@dataclass(slots=True)
class _Op:
    out: FrameResult
    actor: str
    seq: int
    time: str
    uri: str
    by_tracked: bool
    tracked: Container[str]

    def emit(self, kind: Kind, action: Action, subject: str, **values: Any) -> None:
        direction = Direction.BY if subject == self.actor else Direction.TO
        self.out.emit(
            seq=self.seq, kind=kind, action=action, direction=direction, subject_did=subject,
            actor_did=self.actor, time=self.time, uri=self.uri, **values,
        )  # fmt: skip

    def concerned(self, did: str | None) -> bool:
        """A 'to' event needs a tracked target other than the actor (self-engagement is noise)."""
        return did is not None and did != self.actor and did in self.tracked


def _create(ctx: _Op, collection: str, path: str, record: dict[str, Any], action: Action) -> None:
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


def _delete(ctx: _Op, collection: str, memory: Memory | None) -> None:
    kind = Kind.POST if collection == POST else _REMEMBERED_KINDS[collection]
    target = memory.target_did if memory else None
    subject_uri = memory.subject_uri if memory else None
    values = {"subject_uri": subject_uri, "target_did": target}
    if ctx.by_tracked:
        ctx.emit(kind, Action.DELETE, ctx.actor, **values)
    if memory is not None and ctx.concerned(target):
        ctx.emit(kind, Action.DELETE, target or "", **values)


def _post(ctx: _Op, record: dict[str, Any], action: Action, created_at: str | None) -> None:
    text = record.get("text")
    if not isinstance(text, str):
        raise TypeError("post text is not a string")
    reply = record.get("reply")
    parent = _opt_text(reply["parent"]["uri"]) if isinstance(reply, dict) else None
    root = _opt_text(reply["root"]["uri"]) if isinstance(reply, dict) else None
    quote, link = _embed_uris(record.get("embed"))
    common = {"created_at": created_at, "text": text, "reply_root": root, "quote_uri": quote}
    if ctx.by_tracked:
        ctx.emit(Kind.POST, action, ctx.actor, subject_uri=parent, target_did=uri_did(parent),
                 link_uri=link, **common)  # fmt: skip
    seen = {ctx.actor}
    for kind, uri in ((Kind.REPLY, parent), (Kind.REPLY, root), (Kind.QUOTE, quote)):
        target = uri_did(uri)
        if target not in seen and ctx.concerned(target):
            seen.add(target or "")
            ctx.emit(kind, action, target or "", subject_uri=uri, target_did=target, **common)
    for target in _mentions(record.get("facets")):
        if target not in seen and ctx.concerned(target):
            seen.add(target)
            ctx.emit(Kind.MENTION, action, target, target_did=target, **common)


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
