"""An author's own posts of a period, read from getAuthorFeed (newest first, no date filter).

The feed is paged back until an own post older than `start` shows up. Reposts of others' posts
(`reasonRepost`) are not the author's posts and never stop the paging; the pinned post
(`reasonPin`, first item) is counted once, where its date puts it. Replies are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from appview.client import AppViewClient
from appview.models import PostView


@dataclass(slots=True)
class PeriodPosts:
    did: str
    posts: list[PostView] = field(default_factory=list)
    pages: int = 0
    reposts_skipped: int = 0
    items_skipped: int = 0  # unreadable feed items (counted by reason in the client's stats)


async def posts_in_period(
    client: AppViewClient, actor: str, start: datetime, end: datetime | None = None, *, page_size: int = 100
) -> PeriodPosts:
    """Posts `actor` made with start <= createdAt < end (end None: up to now)."""
    result = PeriodPosts(actor)
    seen: set[str] = set()
    async for page in client.author_feed(actor, limit=page_size, include_pins=True):
        result.pages += 1
        result.items_skipped += page.skipped
        past_start = False
        for item in page.items:
            post = item.post
            if item.reason == "repost":
                result.reposts_skipped += 1
                continue
            if post.author_did != actor and not actor.startswith("did:"):
                result.did = post.author_did  # actor was a handle: the feed tells its DID
            if post.uri in seen:
                continue
            seen.add(post.uri)
            if post.created_at < start:
                if item.reason != "pin":  # a pinned old post sits on top; it ends nothing
                    past_start = True
                continue
            if end is None or post.created_at < end:
                result.posts.append(post)
        if past_start:
            break
    return result
