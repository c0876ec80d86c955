"""The atproto SDK reads the AppView emulator: its pydantic models hold our JSON shapes right.

The SDK's client is synchronous (httpx); it runs in a thread while the emulator serves on the
event loop. Strict string formats (DIDs, handles, CIDs, AT-URIs, datetimes) are checked too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from atproto import Client, models
from atproto_client.models.utils import get_or_create

from appview.emulator import AppViewEmulator
from appview.scenario import Scenario, World, build_world

WORLD = build_world(Scenario(accounts=30, silent=3))


@pytest.fixture
async def av() -> AsyncIterator[AppViewEmulator]:
    async with AppViewEmulator(WORLD) as emulator:
        yield emulator


async def test_the_sdk_resolves_handles_and_reads_profiles(av: AppViewEmulator) -> None:
    def read() -> tuple[list[str], list[models.AppBskyActorDefs.ProfileViewDetailed]]:
        client = Client(base_url=av.url + "/xrpc")
        dids = [client.com.atproto.identity.resolve_handle({"handle": a.handle}).did for a in WORLD.accounts]
        answer = client.app.bsky.actor.get_profiles({"actors": dids[:25]})
        return dids, answer.profiles

    dids, profiles = await asyncio.to_thread(read)
    assert dids == [a.did for a in WORLD.accounts]
    assert [(p.did, p.handle, p.followers_count) for p in profiles] == [
        (a.did, a.handle, a.followers) for a in WORLD.accounts[:25]
    ]


async def test_the_sdk_reads_every_author_feed_with_reasons_and_counts(av: AppViewEmulator) -> None:
    def read() -> dict[str, list[models.AppBskyFeedDefs.FeedViewPost]]:
        client = Client(base_url=av.url)  # the SDK adds /xrpc itself
        feeds = {}
        for a in WORLD.accounts:
            items, cursor = [], None
            while True:
                page = client.app.bsky.feed.get_author_feed(
                    {"actor": a.did, "limit": 40, "cursor": cursor, "include_pins": True}
                )
                items.extend(page.feed)
                if not (cursor := page.cursor):
                    break
            feeds[a.did] = items
        return feeds

    feeds = await asyncio.to_thread(read)
    for a in WORLD.accounts:
        items = feeds[a.did]
        pins = [i for i in items if isinstance(i.reason, models.AppBskyFeedDefs.ReasonPin)]
        reposts = [i for i in items if isinstance(i.reason, models.AppBskyFeedDefs.ReasonRepost)]
        assert [p.post.uri for p in pins] == ([a.pinned] if a.pinned else [])
        assert len(reposts) == sum(e.repost_of_others for e in WORLD.feeds[a.did])
        own = {i.post.uri: i.post for i in items if i.reason is None and i.post.author.did == a.did}
        truth = {p.uri: p for p in WORLD.posts.values() if p.author == a.did}
        assert set(own) == set(truth)
        for uri, view in own.items():
            assert (view.like_count, view.repost_count, view.reply_count, view.quote_count) == (
                truth[uri].likes,
                truth[uri].reposts,
                truth[uri].replies,
                truth[uri].quotes,
            )
            assert isinstance(view.record, models.AppBskyFeedPost.Record)


def strict(url: str, nsid: str, params: dict[str, object], model: type) -> object:
    raw = httpx.get(f"{url}/xrpc/{nsid}", params=params).raise_for_status().json()  # type: ignore[arg-type]
    return get_or_create(raw, model, strict_string_format=True)


async def test_every_answer_passes_the_sdks_strict_string_formats(av: AppViewEmulator) -> None:
    def check() -> None:
        dids = [a.did for a in WORLD.accounts]
        strict(
            av.url,
            "app.bsky.actor.getProfiles",
            {"actors": dids[:25]},
            models.AppBskyActorGetProfiles.Response,
        )
        strict(av.url, "app.bsky.actor.searchActors", {"q": "chu"}, models.AppBskyActorSearchActors.Response)
        strict(
            av.url,
            "com.atproto.identity.resolveHandle",
            {"handle": WORLD.accounts[0].handle},
            models.ComAtprotoIdentityResolveHandle.Response,
        )
        for did in dids:
            strict(
                av.url,
                "app.bsky.feed.getAuthorFeed",
                {"actor": did, "limit": 100, "includePins": "true"},
                models.AppBskyFeedGetAuthorFeed.Response,
            )
        uris = list(WORLD.posts)[:25]
        strict(av.url, "app.bsky.feed.getPosts", {"uris": uris}, models.AppBskyFeedGetPosts.Response)

    await asyncio.to_thread(check)


async def test_the_sdk_sees_handle_not_found_as_the_xrpc_error(av: AppViewEmulator) -> None:
    from atproto_client.exceptions import BadRequestError

    def ask() -> str:
        try:
            Client(base_url=av.url).com.atproto.identity.resolve_handle({"handle": "nobody.bsky.social"})
        except BadRequestError as error:
            return str(error.response.content.error)
        return "resolved"

    assert await asyncio.to_thread(ask) == "HandleNotFound"


def test_the_world_is_the_same_for_the_same_seed() -> None:
    again = build_world(Scenario(accounts=30, silent=3))
    assert [a.did for a in again.accounts] == [a.did for a in WORLD.accounts]
    assert list(again.posts) == list(WORLD.posts)
    assert isinstance(WORLD, World)
