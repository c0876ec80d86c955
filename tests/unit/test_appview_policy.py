"""The AppView client's reading of answers: rate-limit headers and item shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import formatdate

import httpx
import pytest

from appview.client import AppViewClient
from appview.errors import AppViewReason, AppViewSkip
from appview.models import feed_item_from_json, post_from_json, profile_from_json
from appview.ratelimit import RateGate

NOW = 1_750_000_000.0


def gate() -> RateGate:
    return RateGate(max_wait=120.0, clock=lambda: NOW)


def test_retry_after_seconds_pause_every_request() -> None:
    g = gate()
    g.observe(429, {"retry-after": "7", "ratelimit-reset": str(int(NOW) + 60)}, fallback=1.0)
    assert g.blocked_until == NOW + 7


def test_retry_after_as_an_http_date_is_read() -> None:
    g = gate()
    g.observe(429, {"retry-after": formatdate(NOW + 30, usegmt=True)}, fallback=1.0)
    assert g.blocked_until == pytest.approx(NOW + 30, abs=1)


def test_a_429_without_retry_after_waits_for_the_reset_else_the_backoff() -> None:
    g = gate()
    g.observe(429, {"ratelimit-reset": str(int(NOW) + 12)}, fallback=1.0)
    assert g.blocked_until == NOW + 12
    g2 = gate()
    g2.observe(429, {}, fallback=2.5)
    assert g2.blocked_until == NOW + 2.5


def test_remaining_zero_pauses_until_the_reset_epoch_or_delta() -> None:
    g = gate()
    g.observe(
        200,
        {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(int(NOW) + 40)},
        1.0,
    )
    assert (g.blocked_until, g.limit, g.remaining) == (NOW + 40, 3000, 0)
    g2 = gate()
    g2.observe(200, {"ratelimit-remaining": "0", "ratelimit-reset": "15"}, 1.0)  # IETF draft: a delta
    assert g2.blocked_until == NOW + 15


def test_remaining_above_zero_does_not_pause_and_a_pause_is_capped() -> None:
    g = gate()
    g.observe(200, {"ratelimit-remaining": "1", "ratelimit-reset": str(int(NOW) + 40)}, 1.0)
    assert g.blocked_until == 0
    g.observe(429, {"retry-after": "86400"}, 1.0)
    assert g.blocked_until == NOW + 120


def post(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "uri": "at://did:plc:a/app.bsky.feed.post/1",
        "cid": "bafy",
        "author": {"did": "did:plc:a", "handle": "a.bsky.social"},
        "record": {
            "$type": "app.bsky.feed.post",
            "text": "bonjour",
            "createdAt": "2025-02-01T10:00:00.000Z",
            "reply": {"root": {"uri": "at://r", "cid": "c"}, "parent": {"uri": "at://p", "cid": "c"}},
            "embed": {
                "$type": "app.bsky.embed.recordWithMedia",
                "record": {"record": {"uri": "at://did:plc:b/app.bsky.feed.post/9", "cid": "c"}},
            },
        },
        "likeCount": 4,
        "indexedAt": "2025-02-01T10:00:02.000Z",
    }
    return base | overrides


def test_a_post_view_reads_links_counts_and_times() -> None:
    view = post_from_json(post())
    assert view.created_at == datetime(2025, 2, 1, 10, tzinfo=UTC)
    assert (view.reply_parent, view.reply_root, view.quote_uri) == (
        "at://p",
        "at://r",
        "at://did:plc:b/app.bsky.feed.post/9",
    )
    assert (view.like_count, view.repost_count, view.reply_count, view.quote_count) == (4, 0, 0, 0)


@pytest.mark.parametrize(
    "broken",
    [
        post(uri=None),
        post(record="text"),
        post(likeCount=-1),
        post(likeCount="4"),
        post(indexedAt="yesterday"),
        post(author={}),
        "not an object",
    ],
)
def test_a_broken_post_is_a_bad_shape_skip(broken: object) -> None:
    with pytest.raises(AppViewSkip) as caught:
        post_from_json(broken)
    assert caught.value.reason is AppViewReason.BAD_SHAPE


def test_a_profile_without_counts_has_none_not_zero() -> None:
    profile = profile_from_json({"did": "did:plc:a", "handle": "a.bsky.social", "displayName": ""})
    assert (profile.followers, profile.follows, profile.posts, profile.display_name) == (
        None,
        None,
        None,
        None,
    )


def test_feed_reasons_are_read_and_unknown_ones_skipped() -> None:
    repost = {"post": post(), "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": {}}}
    pin = {"post": post(), "reason": {"$type": "app.bsky.feed.defs#reasonPin"}}
    assert feed_item_from_json(repost).reason == "repost"
    assert feed_item_from_json(pin).reason == "pin"
    assert feed_item_from_json({"post": post()}).reason is None
    with pytest.raises(AppViewSkip):
        feed_item_from_json({"post": post(), "reason": {"$type": "app.bsky.feed.defs#reasonSomethingNew"}})


async def test_a_broken_item_is_counted_and_the_rest_of_the_batch_kept() -> None:
    good = {"did": "did:plc:a", "handle": "a.bsky.social", "followersCount": 12}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/xrpc/app.bsky.actor.getProfiles"
        return httpx.Response(200, json={"profiles": [good, {"handle": "no-did.bsky.social"}, 7]})

    async with AppViewClient("http://appview.test", transport=httpx.MockTransport(answer)) as client:
        profiles = await client.get_profiles(["did:plc:a", "did:plc:b", "did:plc:c"])
    assert [(p.did, p.followers) for p in profiles] == [("did:plc:a", 12)]
    assert client.stats.skipped == {AppViewReason.BAD_SHAPE: 2}


async def test_a_value_the_appview_refuses_costs_only_itself() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        actors = request.url.params.get_list("actors")
        if "bad actor" in actors:
            return httpx.Response(400, json={"error": "InvalidRequest", "message": "actors must be valid"})
        return httpx.Response(200, json={"profiles": [{"did": a, "handle": "x.bsky.social"} for a in actors]})

    async with AppViewClient("http://appview.test", transport=httpx.MockTransport(answer)) as client:
        profiles = await client.get_profiles([f"did:plc:{i}" for i in range(10)] + ["bad actor"])
    assert [p.did for p in profiles] == [f"did:plc:{i}" for i in range(10)]
    assert client.stats.skipped == {AppViewReason.XRPC_ERROR: 1}
