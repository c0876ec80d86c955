"""The emulator's XRPC methods: the real paths' parameters, limits, JSON shapes and error envelopes.

Shapes follow the lexicons (app.bsky.actor.defs#profileViewDetailed/#profileView/
#profileViewBasic, app.bsky.feed.defs#feedViewPost/#postView/#reasonRepost/#reasonPin,
app.bsky.embed.record#view); errors are {"error", "message"} with the AppView's status codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appview.errors import BadXrpcRequest
from appview.scenario import Account, Post, World, cid_for, stamp

JSON = dict[str, Any]
Query = dict[str, list[str]]
Answer = tuple[int, JSON]
FEED_FILTERS = (
    "posts_with_replies",
    "posts_no_replies",
    "posts_with_media",
    "posts_and_author_threads",
    "posts_with_video",
)


def error(status: int, name: str, message: str) -> Answer:
    return status, {"error": name, "message": message}


def one(query: Query, name: str, default: str | None = None) -> str:
    values = query.get(name)
    if not values:
        if default is None:
            raise BadXrpcRequest(f'Error: Params must have the property "{name}"')
        return default
    return values[0]


def limit_of(query: Query, default: int, high: int) -> int:
    raw = one(query, "limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise BadXrpcRequest(f"Error: limit must be an integer between 1 and {high}")
    return int(raw)


def basic(a: Account) -> JSON:
    return {
        "did": a.did,
        "handle": a.handle,
        "displayName": a.display_name,
        "labels": [],
        "createdAt": stamp(a.created_at),
    }


def profile_view(a: Account) -> JSON:
    return {**basic(a), "description": a.description, "indexedAt": stamp(a.created_at)}


def profile_detailed(world: World, a: Account) -> JSON:
    view = {**profile_view(a), "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False}}
    if a.followers is not None:
        view |= {"followersCount": a.followers, "followsCount": a.follows, "postsCount": a.posts_count}
    if a.pinned:
        view["pinnedPost"] = {"uri": a.pinned, "cid": world.posts[a.pinned].cid}
    return view


def ref(world: World, uri: str) -> JSON:
    post = world.posts.get(uri)
    return {"uri": uri, "cid": post.cid if post else cid_for(uri)}


def record(world: World, p: Post) -> JSON:
    rec: JSON = {
        "$type": "app.bsky.feed.post",
        "text": p.text,
        "createdAt": stamp(p.created_at),
        "langs": ["fr"],
    }
    if p.reply_parent and p.reply_root:
        rec["reply"] = {"root": ref(world, p.reply_root), "parent": ref(world, p.reply_parent)}
    if p.quote:
        rec["embed"] = {"$type": "app.bsky.embed.record", "record": ref(world, p.quote)}
    return rec


def author_of(world: World, p: Post) -> Account:
    account = world.account(p.author)
    assert account is not None, p.author
    return account


def post_view(world: World, p: Post, *, embeds: bool = True) -> JSON:
    view: JSON = {
        "$type": "app.bsky.feed.defs#postView",
        "uri": p.uri,
        "cid": p.cid,
        "author": basic(author_of(world, p)),
        "record": record(world, p),
        "replyCount": p.replies,
        "repostCount": p.reposts,
        "likeCount": p.likes,
        "quoteCount": p.quotes,
        "bookmarkCount": 0,
        "indexedAt": stamp(p.indexed_at),
        "labels": [],
    }
    quoted = world.posts.get(p.quote) if p.quote else None
    if quoted and embeds:
        view["embed"] = {
            "$type": "app.bsky.embed.record#view",
            "record": {
                "$type": "app.bsky.embed.record#viewRecord",
                "uri": quoted.uri,
                "cid": quoted.cid,
                "author": basic(author_of(world, quoted)),
                "value": record(world, quoted),
                "indexedAt": stamp(quoted.indexed_at),
            },
        }
    return view


def thread_ref(world: World, uri: str) -> JSON:
    post = world.posts.get(uri)
    if post is None:
        return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri, "notFound": True}
    return post_view(world, post, embeds=False)


def resolve_handle(world: World, query: Query) -> Answer:
    handle = one(query, "handle").lower()
    account = world.account(handle)
    if account is None or handle.startswith("did:"):
        return error(400, "HandleNotFound", "Unable to resolve handle")
    return 200, {"did": account.did}


def get_profiles(world: World, query: Query) -> Answer:
    actors = query.get("actors", [])
    if not actors:
        raise BadXrpcRequest('Error: Params must have the property "actors"')
    if len(actors) > 25:
        raise BadXrpcRequest("Error: actors must not have more than 25 elements")
    found = (world.account(actor) for actor in actors)
    return 200, {"profiles": [profile_detailed(world, a) for a in found if a is not None]}


def search_actors(world: World, query: Query) -> Answer:
    q, size = one(query, "q", one(query, "term", "")).lower(), limit_of(query, 25, 100)
    start = int(one(query, "cursor", "0")) if one(query, "cursor", "0").isdigit() else 0
    words = q.split()
    hits = [
        a
        for a in world.accounts
        if words and all(w in f"{a.handle} {a.display_name} {a.description}".lower() for w in words)
    ]
    page = hits[start : start + size]
    body: JSON = {"actors": [profile_view(a) for a in page]}
    if start + size < len(hits):
        body["cursor"] = str(start + size)
    return 200, body


def get_author_feed(world: World, query: Query) -> Answer:
    account = world.account(one(query, "actor"))
    size, cursor = limit_of(query, 50, 100), one(query, "cursor", "")
    kind = one(query, "filter", "posts_with_replies")
    if kind not in FEED_FILTERS:
        raise BadXrpcRequest(f"Error: filter must be one of {', '.join(FEED_FILTERS)}")
    if account is None:
        raise BadXrpcRequest("Profile not found")
    entries = world.feeds[account.did]
    if kind != "posts_with_replies":
        entries = [e for e in entries if e.repost_of_others or not world.posts[e.uri].reply_parent]
    start = int(cursor) if cursor.isdigit() else 0
    items: list[JSON] = []
    if not cursor and account.pinned and one(query, "includePins", "false") == "true":
        items.append(
            {
                "post": post_view(world, world.posts[account.pinned]),
                "reason": {"$type": "app.bsky.feed.defs#reasonPin"},
            }
        )
    for entry in entries[start : start + size]:
        item: JSON = {"post": post_view(world, world.posts[entry.uri])}
        if entry.repost_of_others:
            item["reason"] = {
                "$type": "app.bsky.feed.defs#reasonRepost",
                "by": basic(account),
                "indexedAt": stamp(entry.sort_at),
            }
        post = world.posts[entry.uri]
        if post.reply_parent and post.reply_root:
            item["reply"] = {
                "root": thread_ref(world, post.reply_root),
                "parent": thread_ref(world, post.reply_parent),
            }
        items.append(item)
    body: JSON = {"feed": items}
    if start + size < len(entries):
        body["cursor"] = str(start + size)
    return 200, body


def get_posts(world: World, query: Query) -> Answer:
    uris = query.get("uris", [])
    if not uris:
        raise BadXrpcRequest('Error: Params must have the property "uris"')
    if len(uris) > 25:
        raise BadXrpcRequest("Error: uris must not have more than 25 elements")
    return 200, {"posts": [post_view(world, world.posts[u]) for u in uris if u in world.posts]}


METHODS: dict[str, Callable[[World, Query], Answer]] = {
    "com.atproto.identity.resolveHandle": resolve_handle,
    "app.bsky.actor.getProfiles": get_profiles,
    "app.bsky.actor.searchActors": search_actors,
    "app.bsky.feed.getAuthorFeed": get_author_feed,
    "app.bsky.feed.getPosts": get_posts,
}


def answer(world: World, nsid: str, query: Query) -> Answer:
    method = METHODS.get(nsid)
    if method is None:
        return error(501, "MethodNotImplemented", "Method Not Implemented")
    try:
        return method(world, query)
    except BadXrpcRequest as invalid:
        return error(400, "InvalidRequest", str(invalid))
