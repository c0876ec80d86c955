"""The AppView client against the project's AppView emulator, with rate limits and faults on."""

from __future__ import annotations

import asyncio

import pytest

from appview.client import AppViewClient
from appview.emulator import AppViewEmulator
from appview.errors import AppViewReason, AppViewUnavailable, XrpcError
from appview.history import posts_in_period
from appview.lookup import lookup_accounts
from appview.scenario import Scenario, World, build_world
from tests.support.appview import pasted_forms
from tests.support.ports import free_port
from transport.backoff import Backoff

FAST = Backoff(initial=0.01, maximum=0.05)
WORLD = build_world(Scenario())


async def test_65_pasted_forms_resolve_to_their_dids_through_429s_and_5xx() -> None:
    unknown = [
        "chu-atlantide.bsky.social",
        "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "CHU de Nulle Part",
        "chu-lille",
    ]
    async with (
        AppViewEmulator(WORLD, rate_limit=30, rate_window=1.0, fail_every=7, malformed_every=11) as av,
        AppViewClient(av.url, backoff=FAST, max_attempts=8) as client,
    ):
        forms = pasted_forms(WORLD)
        found = await lookup_accounts(client, [*forms[:30], *unknown, *forms[30:]])
    assert [f.profile.did for f in found.found] == [a.did for a in WORLD.accounts]
    assert [f.raw for f in found.found] == forms
    assert [u.raw for u in found.unknown] == unknown
    reasons = [u.reason for u in found.unknown]
    assert "HandleNotFound" in reasons[0]
    assert "no Bluesky profile" in reasons[1]
    assert "discover" in reasons[2]
    assert "chu-lille.bsky.social" in reasons[3]
    assert min(av.throttled, av.failed, av.malformed) > 0, (av.throttled, av.failed, av.malformed)
    assert client.stats.rate_limited == av.throttled
    assert client.stats.server_errors == av.failed
    assert client.stats.skipped[AppViewReason.NOT_JSON] == av.malformed


async def test_get_profiles_asks_25_actors_at_most_and_leaves_unknown_ones_out() -> None:
    strangers = [f"did:plc:{'b' * 23}{c}" for c in "abcdefghij"]
    async with AppViewEmulator(WORLD) as av, AppViewClient(av.url) as client:
        profiles = await client.get_profiles([*(a.did for a in WORLD.accounts), *strangers])
    sizes = sorted(len(c.query["actors"]) for c in av.calls_to("app.bsky.actor.getProfiles"))
    assert sizes == [25, 25, 25]
    by_did = {p.did: p for p in profiles}
    assert set(by_did) == {a.did for a in WORLD.accounts}
    for a in WORLD.accounts:
        p = by_did[a.did]
        assert (p.handle, p.display_name, p.followers, p.follows) == (
            a.handle,
            a.display_name,
            a.followers,
            a.follows,
        )
    assert sum(p.followers is None for p in profiles) == WORLD.scenario.no_counts


def busiest(world: World) -> str:
    return max(world.accounts, key=lambda a: len(world.feeds[a.did])).did


async def test_paging_the_author_feed_stops_past_the_start_and_matches_the_truth() -> None:
    did = busiest(WORLD)
    start, end = WORLD.scenario.start, WORLD.scenario.end
    async with AppViewEmulator(WORLD, fail_every=5) as av, AppViewClient(av.url, backoff=FAST) as client:
        got = await posts_in_period(client, did, start, end, page_size=10)
    truth = WORLD.period_posts(did)
    assert sorted(p.uri for p in got.posts) == sorted(p.uri for p in truth)
    by_uri = {p.uri: p for p in truth}
    for post in got.posts:
        t = by_uri[post.uri]
        assert (post.like_count, post.repost_count, post.reply_count, post.quote_count) == (
            t.likes,
            t.reposts,
            t.replies,
            t.quotes,
        )
        assert (post.reply_parent, post.quote_uri, post.created_at) == (t.reply_parent, t.quote, t.created_at)
    feed_pages = [c for c in av.calls_to("app.bsky.feed.getAuthorFeed") if c.status == 200]
    all_pages = -(-len(WORLD.feeds[did]) // 10)
    assert got.pages == len(feed_pages) < all_pages  # it stopped instead of reading the whole history
    assert got.reposts_skipped > 0


@pytest.mark.parametrize("old_pin", [True, False])
async def test_a_pinned_post_counts_once_and_only_inside_the_period(old_pin: bool) -> None:
    start = WORLD.scenario.start
    pinned = [a for a in WORLD.accounts if a.pinned]
    account = next(a for a in pinned if (WORLD.posts[a.pinned or ""].created_at < start) is old_pin)
    async with AppViewEmulator(WORLD) as av, AppViewClient(av.url) as client:
        got = await posts_in_period(client, account.did, start, WORLD.scenario.end)
    uris = [p.uri for p in got.posts]
    assert len(uris) == len(set(uris)) == len(WORLD.period_posts(account.did))
    assert (account.pinned in uris) is not old_pin


async def test_get_posts_asks_25_uris_at_most_and_leaves_missing_ones_out() -> None:
    uris = list(WORLD.posts)[:60]
    gone = [u.replace("app.bsky.feed.post/", "app.bsky.feed.post/zz") for u in uris[:3]]
    async with AppViewEmulator(WORLD) as av, AppViewClient(av.url) as client:
        posts = await client.get_posts([*uris, *gone])
    assert all(len(c.query["uris"]) <= 25 for c in av.calls_to("app.bsky.feed.getPosts"))
    assert len(av.calls_to("app.bsky.feed.getPosts")) == 3
    assert {p.uri: p.like_count for p in posts} == {u: WORLD.posts[u].likes for u in uris}


async def test_retry_after_is_honoured() -> None:
    handles = [a.handle for a in WORLD.accounts[:6]]
    async with (
        AppViewEmulator(WORLD, rate_limit=3, rate_window=1.5) as av,
        AppViewClient(av.url, concurrency=6) as client,
    ):
        resolved = await client.resolve_handles(handles)
    assert [r.did for r in resolved] == [a.did for a in WORLD.accounts[:6]]
    throttled = [c for c in av.calls if c.status == 429]
    assert throttled
    assert client.stats.rate_limited == len(throttled)
    after = [c.at for c in av.calls if c.at > throttled[-1].at]
    assert after
    assert min(after) - throttled[-1].at >= 0.9  # Retry-After: 1 (loosely)
    assert client.gate.waited >= 0.9


async def test_search_actors_pages_with_the_cursor() -> None:
    async with AppViewEmulator(WORLD) as av, AppViewClient(av.url) as client:
        hits = await client.search_actors("CHU", limit=10, max_results=200)
    chus = [a.did for a in WORLD.accounts if a.handle.startswith("chu-")]
    assert [h.did for h in hits] == chus
    assert len(av.calls_to("app.bsky.actor.searchActors")) == -(-len(chus) // 10)
    assert hits[0].description
    assert hits[0].display_name


async def test_an_unknown_actor_feed_is_an_xrpc_error() -> None:
    async with AppViewEmulator(WORLD) as av, AppViewClient(av.url) as client:
        with pytest.raises(XrpcError) as caught:
            async for _ in client.author_feed("nobody.bsky.social"):
                pass
    assert (caught.value.status, caught.value.error) == (400, "InvalidRequest")


async def test_an_unreachable_appview_is_appview_unavailable() -> None:
    async with AppViewClient(f"http://127.0.0.1:{free_port()}", backoff=FAST, max_attempts=3) as client:
        with pytest.raises(AppViewUnavailable, match="failed 3 times"):
            await client.get_profiles(["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"])
    assert (client.stats.transport_errors, client.stats.retries) == (3, 2)


async def test_an_appview_failing_every_answer_is_appview_unavailable() -> None:
    async with (
        AppViewEmulator(WORLD, fail_every=1) as av,
        AppViewClient(av.url, backoff=FAST, max_attempts=4) as client,
    ):
        with pytest.raises(AppViewUnavailable, match="HTTP 502"):
            await client.resolve_handle(WORLD.accounts[1].handle)
    assert av.failed == 4


async def test_concurrency_is_bounded() -> None:
    async with (
        AppViewEmulator(WORLD, latency=0.05) as av,
        AppViewClient(av.url, concurrency=4) as client,
    ):
        await asyncio.gather(*(client.resolve_handle(a.handle) for a in WORLD.accounts[:20]))
    assert av.peak_in_flight == 4
