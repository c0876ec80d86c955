"""Typed views of the AppView's JSON (lexicons app.bsky.actor.defs, app.bsky.feed.defs).

Each `*_from_json` reads one item and raises AppViewSkip(BAD_SHAPE) when a required field is
missing or mistyped, so a batch skips that item alone. Optional counts stay None when absent:
a profile without `followersCount` is "unknown", not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from appview.errors import AppViewReason, AppViewSkip

REASON_REPOST = "app.bsky.feed.defs#reasonRepost"
REASON_PIN = "app.bsky.feed.defs#reasonPin"
FeedReason = Literal["repost", "pin"]


@dataclass(frozen=True, slots=True)
class Profile:
    did: str
    handle: str
    display_name: str | None
    followers: int | None
    follows: int | None
    posts: int | None


@dataclass(frozen=True, slots=True)
class ActorCandidate:
    """A searchActors hit (profileView: no counts; getProfiles gives them)."""

    did: str
    handle: str
    display_name: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class PostView:
    uri: str
    cid: str
    author_did: str
    text: str
    created_at: datetime
    reply_parent: str | None
    reply_root: str | None
    quote_uri: str | None
    like_count: int
    repost_count: int
    reply_count: int
    quote_count: int
    indexed_at: datetime


@dataclass(frozen=True, slots=True)
class FeedItem:
    post: PostView
    reason: FeedReason | None  # repost: reposted *by* the feed's author; pin: its pinned post


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[FeedItem]
    cursor: str | None
    skipped: int  # items of this page that could not be read


def bad(detail: str) -> AppViewSkip:
    return AppViewSkip(AppViewReason.BAD_SHAPE, detail)


def need_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise bad(f"{key} missing or not a string")
    return value


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def opt_count(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad(f"{key} is not a count: {value!r}")
    return value


def need_obj(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise bad(f"{key} missing or not an object")
    return value


def parse_time(value: object, key: str) -> datetime:
    """An atproto datetime (RFC 3339, `Z` or offset); naive ones are read as UTC."""
    if not isinstance(value, str):
        raise bad(f"{key} missing or not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"{key} is not a datetime: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def profile_from_json(obj: object) -> Profile:
    if not isinstance(obj, dict):
        raise bad("profile is not an object")
    return Profile(
        did=need_str(obj, "did"),
        handle=need_str(obj, "handle"),
        display_name=opt_str(obj, "displayName") or None,
        followers=opt_count(obj, "followersCount"),
        follows=opt_count(obj, "followsCount"),
        posts=opt_count(obj, "postsCount"),
    )


def candidate_from_json(obj: object) -> ActorCandidate:
    if not isinstance(obj, dict):
        raise bad("actor is not an object")
    return ActorCandidate(
        did=need_str(obj, "did"),
        handle=need_str(obj, "handle"),
        display_name=opt_str(obj, "displayName") or None,
        description=opt_str(obj, "description") or None,
    )


def _ref_uri(ref: object) -> str | None:
    return ref.get("uri") if isinstance(ref, dict) and isinstance(ref.get("uri"), str) else None


def quoted_uri(record: Mapping[str, Any]) -> str | None:
    """The quoted post of a record's embed (app.bsky.embed.record or recordWithMedia)."""
    embed = record.get("embed")
    if not isinstance(embed, dict):
        return None
    kind = embed.get("$type")
    inner = embed.get("record")
    if kind == "app.bsky.embed.recordWithMedia" and isinstance(inner, dict):
        inner = inner.get("record")
    elif kind != "app.bsky.embed.record":
        return None
    uri = _ref_uri(inner)
    return uri if uri and "/app.bsky.feed.post/" in uri else None


def post_from_json(obj: object) -> PostView:
    if not isinstance(obj, dict):
        raise bad("post is not an object")
    record = need_obj(obj, "record")
    reply = record.get("reply")
    reply = reply if isinstance(reply, dict) else {}
    text = record.get("text", "")
    return PostView(
        uri=need_str(obj, "uri"),
        cid=need_str(obj, "cid"),
        author_did=need_str(need_obj(obj, "author"), "did"),
        text=text if isinstance(text, str) else "",
        created_at=parse_time(record.get("createdAt"), "record.createdAt"),
        reply_parent=_ref_uri(reply.get("parent")),
        reply_root=_ref_uri(reply.get("root")),
        quote_uri=quoted_uri(record),
        like_count=opt_count(obj, "likeCount") or 0,
        repost_count=opt_count(obj, "repostCount") or 0,
        reply_count=opt_count(obj, "replyCount") or 0,
        quote_count=opt_count(obj, "quoteCount") or 0,
        indexed_at=parse_time(obj.get("indexedAt"), "indexedAt"),
    )


def feed_item_from_json(obj: object) -> FeedItem:
    if not isinstance(obj, dict):
        raise bad("feed item is not an object")
    reason_obj = obj.get("reason")
    reason: FeedReason | None = None
    if isinstance(reason_obj, dict):
        kind = reason_obj.get("$type")
        if kind == REASON_REPOST:
            reason = "repost"
        elif kind == REASON_PIN:
            reason = "pin"
        else:
            raise bad(f"unknown feed reason {kind!r}")
    return FeedItem(post=post_from_json(obj.get("post")), reason=reason)
