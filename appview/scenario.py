"""Generated AppView content with known truth, deterministic from a seed (emulator, tests, benches).

Accounts `chu-<city>.bsky.social` plus custom-domain ones (one did:web); followers spread like
HospiPulse's (tens to ~2,500); posts before and during the period with likes, reposts, replies
and quotes; some replies and quotes, some reposts of others' posts, a pinned older post, silent
accounts and accounts whose profile carries no counts. `World.period_posts` is the truth.
"""

from __future__ import annotations

import hashlib
import random
from base64 import b32encode
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
CITIES = (  # noqa: SIM905 — a dozen names a line reads better than one
    "toulouse lille lyon bordeaux nantes rennes brest angers tours poitiers limoges dijon "
    "besancon reims amiens rouen caen nancy metz strasbourg grenoble nice montpellier nimes "
    "marseille clermont orleans stetienne guadeloupe martinique reunion guyane ajaccio bastia "
    "pau bayonne perpignan avignon toulon annecy chambery valence troyes lemans laval vannes "
    "quimper lorient larochelle niort angouleme perigueux agen tarbes albi rodez cahors "
    "montauban auch foix mende aurillac lepuy vichy moulins nevers auxerre chartres blois "
    "bourges chateauroux evreux"
).split()


def tid(moment: datetime, clock: int) -> str:
    """A record key the way PDSes make them: µs since epoch and a clock id, base32-sortable."""
    value = (int(moment.timestamp() * 1_000_000) << 10) | (clock & 0x3FF)
    return "".join(TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def cid_for(text: str) -> str:
    """A real CIDv1 string (dag-cbor, sha-256) over `text`: the SDK's strict formats accept it."""
    digest = hashlib.sha256(text.encode()).digest()
    return "b" + b32encode(bytes([0x01, 0x71, 0x12, 0x20]) + digest).decode().lower().rstrip("=")


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to generate; the same seed gives the same world."""

    seed: int = 14
    accounts: int = 65
    days: int = 90
    end: datetime = datetime(2025, 4, 1, tzinfo=UTC)
    days_before: int = 45  # posts older than the period, so paging has to go past its start
    custom_domains: int = 6  # the first one is a did:web account
    silent: int = 6  # accounts with no posts at all
    no_counts: int = 3  # profiles without followersCount/followsCount/postsCount
    posts_per_week: tuple[float, float] = (0.3, 4.0)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(slots=True)
class Account:
    did: str
    handle: str
    display_name: str
    description: str
    followers: int | None
    follows: int | None
    created_at: datetime
    posts_count: int = 0
    pinned: str | None = None  # a post URI


@dataclass(slots=True)
class Post:
    uri: str
    cid: str
    author: str
    text: str
    created_at: datetime
    likes: int
    reposts: int
    replies: int
    quotes: int
    reply_parent: str | None = None
    reply_root: str | None = None
    quote: str | None = None

    @property
    def indexed_at(self) -> datetime:
        return self.created_at + timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One line of an author feed: an own post, or a repost (by the author) of someone's post."""

    uri: str
    sort_at: datetime
    repost_of_others: bool = False


@dataclass(slots=True)
class World:
    scenario: Scenario
    accounts: list[Account] = field(default_factory=list)
    posts: dict[str, Post] = field(default_factory=dict)
    feeds: dict[str, list[FeedEntry]] = field(default_factory=dict)  # newest first
    index: dict[str, Account] = field(default_factory=dict)  # by DID and by handle

    def account(self, actor: str) -> Account | None:
        """An account by DID or handle (handles are case-insensitive)."""
        if not self.index:
            self.index = {key: a for a in self.accounts for key in (a.did, a.handle)}
        return self.index.get(actor if actor.startswith("did:") else actor.lower())

    def period_posts(
        self, did: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Post]:
        """The truth: posts `did` authored with start <= createdAt < end (the scenario's period)."""
        low, high = start or self.scenario.start, end or self.scenario.end
        return [p for p in self.posts.values() if p.author == did and low <= p.created_at < high]


def _did(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))


def _accounts(s: Scenario, rng: random.Random) -> list[Account]:
    accounts = []
    for i in range(s.accounts):
        city = CITIES[i % len(CITIES)] + (str(i // len(CITIES)) if i >= len(CITIES) else "")
        custom = i < s.custom_domains
        handle = f"hopital-{city}.fr" if custom else f"chu-{city}.bsky.social"
        did = f"did:web:{handle}" if i == 0 else _did(rng)
        counted = not (s.custom_domains <= i < s.custom_domains + s.no_counts)
        followers = int(min(2500, rng.lognormvariate(5.5, 1.0))) + 10
        accounts.append(
            Account(
                did=did,
                handle=handle,
                display_name=f"CHU de {city.capitalize()}"
                if not custom
                else f"Hôpital de {city.capitalize()}",
                description=f"Compte officiel du centre hospitalier de {city.capitalize()}.",
                followers=followers if counted else None,
                follows=rng.randint(5, 400) if counted else None,
                created_at=s.start - timedelta(days=rng.randint(200, 700)),
            )
        )
    return accounts


def _engagement(rng: random.Random, followers: int | None) -> tuple[int, int, int, int]:
    scale = (followers or 100) / 100
    likes = int(rng.expovariate(1 / (2.0 * scale)))
    return (
        likes,
        int(likes * rng.uniform(0, 0.3)),
        int(likes * rng.uniform(0, 0.15)),
        int(likes * rng.uniform(0, 0.05)),
    )


def _posts(s: Scenario, world: World, rng: random.Random) -> None:
    first, span = s.start - timedelta(days=s.days_before), s.days + s.days_before
    active = world.accounts[: len(world.accounts) - s.silent] if s.silent else world.accounts
    for account in active:
        rate = rng.uniform(*s.posts_per_week)
        count = max(1, round(rate * span / 7 * rng.uniform(0.7, 1.3)))
        times = sorted(first + timedelta(seconds=rng.uniform(0, span * 86400)) for _ in range(count))
        for n, exact in enumerate(times):
            moment = exact.replace(microsecond=exact.microsecond // 1000 * 1000)  # JSON carries ms
            uri = f"at://{account.did}/app.bsky.feed.post/{tid(moment, n)}"
            likes, reposts, replies, quotes = _engagement(rng, account.followers)
            post = Post(
                uri,
                cid_for(uri),
                account.did,
                f"Actualité {n + 1} de {account.display_name}",
                moment,
                likes,
                reposts,
                replies,
                quotes,
            )
            link = rng.random()
            earlier = [p for p in world.posts.values() if p.created_at < moment] if link < 0.21 else []
            if earlier and link < 0.15:
                parent = rng.choice(earlier)
                post.reply_parent, post.reply_root = parent.uri, parent.reply_root or parent.uri
            elif earlier:
                post.quote = rng.choice(earlier).uri
            world.posts[uri] = post
        account.posts_count = count


def _feeds(s: Scenario, world: World, rng: random.Random) -> None:
    for account in world.accounts:
        entries = [FeedEntry(p.uri, p.created_at) for p in world.posts.values() if p.author == account.did]
        others = [p for p in world.posts.values() if p.author != account.did]
        if entries and others:
            for original in rng.sample(others, k=min(len(others), max(1, len(entries) // 8))):
                when = original.created_at + timedelta(hours=rng.uniform(1, 72))
                entries.append(FeedEntry(original.uri, when, repost_of_others=True))
        entries.sort(key=lambda e: e.sort_at, reverse=True)
        world.feeds[account.did] = entries
    own = [a for a in world.accounts if any(not e.repost_of_others for e in world.feeds[a.did])]
    for i, account in enumerate(own[::5]):  # every fifth posting account pins a post
        mine = [e.uri for e in world.feeds[account.did] if not e.repost_of_others]
        old = [u for u in mine if world.posts[u].created_at < s.start]
        account.pinned = (old or mine)[-1] if i % 2 == 0 else mine[len(mine) // 2]


def build_world(scenario: Scenario | None = None) -> World:
    """The scenario's accounts, posts and feeds; the same seed gives the same world."""
    s = scenario or Scenario()
    rng = random.Random(s.seed)
    world = World(s, _accounts(s, rng))
    _posts(s, world, rng)
    _feeds(s, world, rng)
    return world
