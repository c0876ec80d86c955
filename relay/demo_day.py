"""A generated day of firehose activity around fictional French health establishments.

`demo` and the tests need a day that looks like the real thing (office-hour posts, engagement
that decays after each post, a viral post, a night-time takeover, a deactivation, and much
background chatter the filter must drop) while knowing in advance the exact totals a correct
pipeline must reach, so its output can be checked to the unit. Every action is scheduled on a
heap and run in time order; every choice comes from one seeded RNG, so a seed always gives
byte-identical frames.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from base64 import b32encode
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import partial
from itertools import accumulate
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.car import tid
from relay.script import FrameScript
from schemas.accounts import Account

COUNTERS: Final = (
    "posts",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "mentions",
    "follows_gained",
    "follows_lost",
)
DEFAULT_START: Final = datetime(2026, 11, 2, tzinfo=UTC)
DAY: Final = timedelta(hours=24)
BACKGROUND_PER_DAY: Final = 10_000  # frames about nobody tracked, at scale 1: ~5x the tracked traffic
PUBLIC_SIZE: Final = 400  # people who engage with the establishments (they also chat elsewhere)
CROWD_SIZE: Final = 2_500  # people who never touch a tracked account


class _Establishment(NamedTuple):
    slug: str
    name: str
    category: str
    region: str
    likes_per_post: float  # usual engagement; reposts, replies, quotes are shares of it
    posts_per_day: float
    follows_per_day: float


_E = _Establishment
_ESTABLISHMENTS: Final = (
    _E("chu-exemple-nord", "CHU Exemple Nord", "CHU", "Hauts-de-France", 14, 5, 12),
    _E("chu-exemple-sud", "CHU Exemple Sud", "CHU", "Occitanie", 12, 4, 10),
    _E("chu-exemple-ouest", "CHU Exemple Ouest", "CHU", "Bretagne", 10, 4, 8),
    _E("hopitaux-exemple-paris", "Hôpitaux Exemple de Paris", "CHU", "Île-de-France", 30, 7, 25),
    _E("ch-exemple-loire", "Centre hospitalier Exemple Loire", "CH", "Centre-Val de Loire", 5, 3, 4),
    _E("ch-exemple-alpes", "Centre hospitalier Exemple Alpes", "CH", "Auvergne-Rhône-Alpes", 6, 3, 5),
    _E("ars-exemple-grand-est", "ARS Exemple Grand Est", "ARS", "Grand Est", 16, 5, 12),
    _E("agence-sante-exemple", "Agence Exemple de santé publique", "agence", "national", 22, 6, 18),
    _E("syndicat-soignants-exemple", "Syndicat Exemple des soignants", "syndicat", "national", 20, 6, 15),
    _E("clinique-exemple-lilas", "Clinique Exemple des Lilas", "clinique", "Île-de-France", 4, 2, 3),
    _E("clcc-exemple-est", "Centre Exemple de lutte contre le cancer", "CLCC", "Grand Est", 8, 3, 6),
    _E("federation-hopitaux-exemple", "Fédération Exemple des hôpitaux", "fédération", "national", 12, 4, 8),
)
# what a post gets, as shares of its author's usual likes; "peer": another establishment
_SHARES: Final = (("like", 1.0), ("repost", 0.22), ("reply", 0.1), ("quote", 0.035), ("peer", 0.03))
_VIRAL, _TAKEOVER, _DEACTIVATED = 3, 5, 9  # indexes in _ESTABLISHMENTS

_NEWS: Final = (
    "Campagne de vaccination contre la grippe : prenez rendez-vous dès maintenant.",
    "Merci à nos équipes des urgences, mobilisées jour et nuit.",
    "Journée portes ouvertes de l'institut de formation en soins infirmiers jeudi prochain.",
    "Don du sang : la collecte a lieu dans le hall principal jusqu'à 17 h.",
    "Nouveau service de téléconsultation en cardiologie pour les patients suivis.",
    "Nous recrutons des infirmières et infirmiers en réanimation. Rejoignez-nous !",
    "Mois sans tabac : nos tabacologues vous accompagnent tout le mois de novembre.",
    "Bronchiolite : les bons gestes pour protéger les nourrissons.",
    "Épidémie de grippe : la région passe en phase pré-épidémique.",
    "Préavis de grève : les effectifs restent insuffisants dans plusieurs services.",
    "Inauguration du nouveau plateau d'imagerie médicale ce matin.",
    "Octobre rose : merci à toutes les participantes de la marche solidaire.",
)
_PEER_REPLIES: Final = ("Merci pour ce partage !", "Bravo aux équipes.", "Nous relayons volontiers.")
_PEER_QUOTES: Final = ("À lire :", "Une belle initiative de nos collègues.", "Information importante.")
_PUBLIC_REPLIES: Final = (
    "Merci pour l'info !",
    "Quels sont les horaires ?",
    "Bravo aux soignants 👏",
    "Toujours six heures d'attente aux urgences…",
    "Est-ce qu'on peut prendre rendez-vous en ligne ?",
    "Compte piraté ?",
)
_PUBLIC_QUOTES: Final = ("Enfin !", "À partager largement.", "Et les moyens humains ?", "Très utile, merci.")
_ANSWERS: Final = (
    "Bonjour, tout est indiqué sur notre site.",
    "Merci pour votre message, nous transmettons.",
)
_CHATTER: Final = (
    "Quelqu'un a vu le match hier soir ?",
    "Il pleut encore sur Lyon.",
    "Nouvelle recette de tarte aux pommes, un délice.",
    "Le train a encore du retard ce matin.",
    "Trop bien ce concert !",
    "Bonne journée à toutes et à tous.",
)
_SPAM: Final = (
    "🔥 La vérité qu'on vous cache ! Regardez avant suppression",
    "Réveillez-vous ! Partagez massivement",
    "Ils ne veulent pas que vous voyiez cette vidéo",
)
_VIRAL_TEXT: Final = "Alerte : les urgences pédiatriques sont saturées. Appelez le 15 avant de vous déplacer."
_APOLOGY: Final = "Notre compte a été piraté cette nuit. Les publications frauduleuses ont été supprimées."
_HOURLY: Final = (3, 2, 1.5, 1, 1, 1.5, 3, 6, 8, 9, 9, 9, 10, 9, 8, 8, 8, 8, 9, 10, 10, 9, 7, 5)  # local time


@dataclass(frozen=True, slots=True)
class DemoDay:
    """The frames of the day, its tracked accounts, and what a correct pipeline must count."""

    accounts: list[Account]
    frames: list[bytes]
    expected: dict[str, dict[str, int]]
    viral_post: str  # at:// URI of the post that gets ~20x its author's usual engagement
    takeover_did: str  # the account hijacked at night (handle change, spam, mass delete)
    deactivated_did: str  # the account deactivated late in the day


def demo_day(*, seed: int = 7, start: datetime | None = None, scale: float = 1.0) -> DemoDay:
    """One day (24 h from `start`) of activity; `scale` multiplies every volume."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    when = start or DEFAULT_START
    day = _Day(seed, when if when.tzinfo else when.replace(tzinfo=UTC), scale)
    day.plan()
    frames = day.run()
    return DemoDay(
        accounts=day.accounts,
        frames=frames,
        expected=day.expected,
        viral_post=day.viral,
        takeover_did=day.accounts[_TAKEOVER].did,
        deactivated_did=day.accounts[_DEACTIVATED].did,
    )


def make_did(seed: int, key: str) -> str:
    """A did:plc that depends only on (seed, key): the same day always has the same people."""
    digest = hashlib.sha256(f"bluepulse-demo/{seed}/{key}".encode()).digest()
    return "did:plc:" + b32encode(digest).decode().lower()[:24]


def _author(uri: str) -> str:
    return uri[5:].split("/", 1)[0]


def _paris() -> tzinfo:
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # no tz database: winter time is close enough for a demo
        return timezone(timedelta(hours=1), "CET")


_Key = tuple[str, str, str]  # (kind, actor, subject): a like, repost or follow that exists


class _Day:
    """The simulation state: scheduled actions, who posted what, and the expected totals."""

    def __init__(self, seed: int, start: datetime, scale: float) -> None:
        self.rng = random.Random(seed)
        self.seed, self.start, self.end, self.scale = seed, start, start + DAY, scale
        self.script = FrameScript(start=start, step=timedelta(0))
        self.heap: list[tuple[datetime, int, Callable[[], object]]] = []
        self.order = 0
        self.now = start
        self.accounts = [
            Account(make_did(seed, e.slug), f"{e.slug}.bsky.social", e.name, e.category, e.region)
            for e in _ESTABLISHMENTS
        ]
        self.profile = {a.did: e for a, e in zip(self.accounts, _ESTABLISHMENTS, strict=True)}
        self.expected = {a.did: dict.fromkeys(COUNTERS, 0) for a in self.accounts}
        self.public = [make_did(seed, f"public/{i}") for i in range(max(50, round(PUBLIC_SIZE * scale)))]
        self.public_cum = list(accumulate(1 / (i + 1) ** 0.7 for i in range(len(self.public))))
        self.crowd = self.public + [make_did(seed, f"crowd/{i}") for i in range(round(CROWD_SIZE * scale))]
        self.roots: dict[str, str] = {}  # post URI → its thread's root URI
        self.recent: dict[str, list[str]] = {a.did: [] for a in self.accounts}
        self.threads: dict[str, list[str]] = {}  # tracked root → public replies in its thread
        self.deleted: set[str] = set()
        self.inactive: set[str] = set()
        self.done: dict[_Key, str] = {}  # existing like/repost/follow → its record URI
        self.chatter: deque[str] = deque(maxlen=500)
        self.chatter_likes: list[str] = []
        self.videos: list[str] = []  # the unknown account's posts
        self.video_links: list[str] = []
        self.spam: list[str] = []
        self.viral = ""
        self.paris = _paris()

    # -- clock -------------------------------------------------------------------------------

    def local(self, hour: float) -> datetime:
        """The UTC moment, within the day, when Paris clocks show `hour`."""
        midnight = self.start.astimezone(self.paris).replace(hour=0, minute=0, second=0, microsecond=0)
        when = (midnight + timedelta(hours=hour)).astimezone(UTC)
        return when if when >= self.start else when + DAY

    def office_hours(self) -> bool:
        return 8 <= self.now.astimezone(self.paris).hour < 20

    def any_time(self) -> datetime:
        """A moment drawn from the daily rhythm: quiet nights, busy lunch and evening."""
        hour = self.rng.choices(range(24), weights=_HOURLY)[0]
        return self.local(hour + self.rng.random())

    def schedule(self, when: datetime, action: Callable[[], object]) -> None:
        if self.start <= when < self.end:
            self.order += 1
            heapq.heappush(self.heap, (when, self.order, action))

    def after(self, seconds: float, action: Callable[[], object]) -> None:
        self.schedule(self.now + timedelta(seconds=seconds), action)

    def run(self) -> list[bytes]:
        """Pop actions in time order; each one writes its frames at its own moment."""
        while self.heap:
            self.now, _, action = heapq.heappop(self.heap)
            self.script.at(self.now)
            action()
        return self.script.frames

    # -- helpers -----------------------------------------------------------------------------

    def count(self, mean: float) -> int:
        """A noisy count around `mean` (lognormal spread, mean-preserving, randomly rounded)."""
        if mean <= 0:
            return 0
        return int(mean * self.rng.lognormvariate(-0.125, 0.5) + self.rng.random())

    def someone(self) -> str:
        """A member of the public; a few very active people do much of the engaging."""
        return self.rng.choices(self.public, cum_weights=self.public_cum)[0]

    def peers(self, did: str) -> list[str]:
        return [a.did for a in self.accounts if a.did != did and a.did not in self.inactive]

    def credit(self, target: str, counter: str, actor: str, delta: int = 1) -> None:
        """Received engagement counts for a tracked target, never for the actor itself."""
        if target != actor and target in self.expected:
            self.expected[target][counter] += delta

    # -- what people do ----------------------------------------------------------------------

    def publish(
        self,
        actor: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        mentions: tuple[str, ...] = (),
        link: str | None = None,
    ) -> str:
        """Post, and credit each tracked account it replies to, quotes or mentions once."""
        root = self.roots.get(reply_to, reply_to) if reply_to else None
        uri = self.script.post(
            actor, text, reply_to=reply_to, root=root, quote=quote, mentions=mentions, link=link
        )
        self.roots[uri] = root or uri
        if actor in self.expected:
            self.expected[actor]["posts"] += 1
        seen = {actor}
        refs = (("replies", reply_to), ("replies", root), ("quotes", quote))
        targets = [(counter, _author(ref)) for counter, ref in refs if ref]
        targets += [("mentions", did) for did in mentions]
        for counter, target in targets:
            if target not in seen and target in self.expected:
                seen.add(target)
                self.credit(target, counter, actor)
        return uri

    def engage(self, kind: str, actor: str, uri: str) -> None:
        """Like or repost a post once; now and then take it back later."""
        key = (kind, actor, uri)
        if key in self.done or uri in self.deleted or actor in self.inactive or _author(uri) in self.inactive:
            return
        record = self.script.like(actor, uri) if kind == "like" else self.script.repost(actor, uri)
        self.done[key] = record
        counter = "likes" if kind == "like" else "reposts"
        self.credit(_author(uri), counter, actor)
        if self.rng.random() < (0.06 if kind == "like" else 0.04):
            self.after(self.rng.expovariate(1 / 7200), partial(self.undo, key, record, counter, -1))

    def follow(self, actor: str, did: str) -> None:
        key = ("follow", actor, did)
        if key in self.done or did in self.inactive or actor == did:
            return
        self.done[key] = record = self.script.follow(actor, did)
        self.credit(did, "follows_gained", actor)
        if self.rng.random() < 0.12:
            self.after(self.rng.expovariate(1 / 10_800), partial(self.undo, key, record, "follows_lost", 1))

    def undo(self, key: _Key, record: str, counter: str, delta: int) -> None:
        """Un-like, un-repost or unfollow: delete the record (it must still exist)."""
        if self.done.get(key) != record or key[1] in self.inactive:
            return
        del self.done[key]
        self.script.delete(record)
        self.credit(_author(key[2]) if key[2].startswith("at://") else key[2], counter, key[1], delta)

    def delete_post(self, uri: str) -> None:
        self.script.delete(uri)
        self.deleted.add(uri)
        if _author(uri) in self.expected and uri in self.roots:  # posts made before the day don't count
            self.expected[_author(uri)]["posts"] -= 1

    # -- the establishments ------------------------------------------------------------------

    def establishment_post(self, did: str) -> None:
        """An office-hours post: news, a reply to or a quote of a peer, mentions, links."""
        if did in self.inactive:
            return
        rng, peers = self.rng, self.peers(did)
        live = [u for p in peers for u in self.recent[p][-3:] if u not in self.deleted]
        roll = rng.random()
        if roll < 0.15 and live:
            uri = self.publish(did, rng.choice(_PEER_REPLIES), reply_to=rng.choice(live))
        elif roll < 0.27 and live:
            uri = self.publish(did, rng.choice(_PEER_QUOTES), quote=rng.choice(live))
        else:
            mentions = tuple(rng.sample(peers, rng.randint(1, 2))) if rng.random() < 0.2 else ()
            handles = "".join(f" @{self.handle(m)}" for m in mentions)
            link = f"https://www.{self.profile[did].slug}.exemple.fr/actualites/{rng.randint(100, 999)}"
            uri = self.publish(
                did, rng.choice(_NEWS) + handles, mentions=mentions, link=link if roll < 0.6 else None
            )
        self.recent[did].append(uri)
        self.plan_engagement(uri)
        if rng.random() < 0.1:  # a thread: the account replies to itself, a post but no reply
            self.after(
                rng.uniform(30, 300),
                partial(self.publish, did, "Plus d'informations ci-dessous.", reply_to=uri),
            )
        if rng.random() < 0.08:  # liking one's own post: not received engagement
            self.after(rng.uniform(5, 60), partial(self.engage, "like", did, uri))

    def handle(self, did: str) -> str:
        return f"{self.profile[did].slug}.bsky.social"

    def plan_engagement(self, uri: str, boost: float = 1.0, mean_delay: float = 5400.0) -> None:
        """Schedule what a post will get; exponential delays make the rate decay after posting."""
        usual = self.profile[_author(uri)].likes_per_post * boost * self.scale
        for kind, share in _SHARES:
            for _ in range(self.count(usual * share)):
                self.after(self.rng.expovariate(1 / mean_delay), partial(self.react, kind, uri))

    def react(self, kind: str, uri: str) -> None:
        """Someone engages with a tracked post (nothing happens once it is gone)."""
        if uri in self.deleted or _author(uri) in self.inactive:
            return
        if kind == "peer":  # another establishment likes or reposts it
            peers = self.peers(_author(uri))
            self.engage(self.rng.choice(("like", "repost")), self.rng.choice(peers), uri)
        elif kind in ("like", "repost"):
            actor = self.someone()
            if (kind, actor, uri) in self.done:  # the regulars have all seen it: it reaches further
                actor = self.rng.choice(self.crowd)
            self.engage(kind, actor, uri)
        elif kind == "reply":
            self.public_reply(self.someone(), uri)
        else:
            self.publish(self.someone(), self.rng.choice(_PUBLIC_QUOTES), quote=uri)

    def public_reply(self, actor: str, uri: str) -> None:
        """Reply to the post or deeper in its thread (the root's author still counts it)."""
        rng, author = self.rng, _author(uri)
        thread = self.threads.setdefault(self.roots.get(uri, uri), [])
        parent = rng.choice(thread) if thread and rng.random() < 0.3 else uri
        mentions = (rng.choice(self.peers(author)),) if rng.random() < 0.08 else ()
        reply = self.publish(actor, rng.choice(_PUBLIC_REPLIES), reply_to=parent, mentions=mentions)
        thread.append(reply)
        if self.office_hours() and rng.random() < 0.12:
            self.after(rng.uniform(300, 3600), partial(self.answer, author, reply))

    def answer(self, did: str, reply: str) -> None:
        if did not in self.inactive:
            self.publish(did, self.rng.choice(_ANSWERS), reply_to=reply)

    def public_mention(self, did: str) -> None:
        if did not in self.inactive:
            text = f"@{self.handle(did)} {self.rng.choice(_PUBLIC_REPLIES)}"
            self.publish(self.someone(), text, mentions=(did,))

    def viral_post(self, did: str) -> None:
        link = f"https://www.{self.profile[did].slug}.exemple.fr/urgences"
        self.viral = self.publish(did, _VIRAL_TEXT, link=link)
        self.recent[did].append(self.viral)
        self.plan_engagement(self.viral, boost=20.0, mean_delay=900.0)

    # -- the takeover --------------------------------------------------------------------------

    def propaganda(self, unknown: str) -> None:
        """An account nobody tracks posts a political video the hijacked account will repost."""
        video = hashlib.sha256(f"{self.seed}/{len(self.videos)}".encode()).hexdigest()[:11]
        link = f"https://www.youtube.com/watch?v={video}"
        self.video_links.append(link)
        self.videos.append(self.publish(unknown, "Le discours que les médias refusent de montrer", link=link))

    def spam_post(self, did: str) -> None:
        rng = self.rng
        unshared = [v for v in self.videos if ("repost", did, v) not in self.done]
        if unshared and rng.random() < 0.4:
            self.engage("repost", did, rng.choice(unshared))
            return
        link = rng.choice(self.video_links) if rng.random() < 0.5 else None
        uri = self.publish(did, rng.choice(_SPAM), link=link)
        self.spam.append(uri)
        self.plan_engagement(uri, boost=0.3, mean_delay=1800.0)

    def mass_delete(self, did: str) -> None:
        """The intruder wipes the account's history: posts from the previous weeks."""
        count = max(4, round(12 * self.scale))
        for i in range(count):
            old = self.start - timedelta(days=1 + 3 * i, hours=self.rng.uniform(0, 12))
            uri = f"at://{did}/app.bsky.feed.post/{tid(int(old.timestamp() * 1_000_000))}"
            self.after(2 * i, partial(self.delete_post, uri))

    def recover(self, did: str) -> None:
        """The team takes the account back: old handle, spam and reposts removed, an apology."""
        self.script.handle(did, self.handle(did))
        for i, uri in enumerate(self.spam):
            self.after(60 + 2 * i, partial(self.delete_post, uri))
        for video in self.videos:
            key = ("repost", did, video)
            if key in self.done:
                self.after(30, partial(self.undo, key, self.done[key], "reposts", -1))
        self.after(1200, partial(self.apology, did))

    def apology(self, did: str) -> None:
        self.recent[did].append(uri := self.publish(did, _APOLOGY))
        self.plan_engagement(uri, boost=2.0)

    # -- the plan ------------------------------------------------------------------------------

    def plan(self) -> None:
        for account in self.accounts:
            self.plan_account(account.did)
        viral = self.accounts[_VIRAL].did
        self.schedule(self.local(11 + self.rng.random() / 2), partial(self.viral_post, viral))
        self.plan_takeover(self.accounts[_TAKEOVER].did)
        deactivated = self.accounts[_DEACTIVATED].did
        self.schedule(self.local(22.6), partial(self.deactivate, deactivated))
        self.plan_background()

    def plan_account(self, did: str) -> None:
        """Posts in office hours, follows and mentions around the clock."""
        rng, profile = self.rng, self.profile[did]
        for _ in range(max(1, self.count(profile.posts_per_day * self.scale))):
            self.schedule(self.local(rng.uniform(8.5, 18.5)), partial(self.establishment_post, did))
        for _ in range(self.count(profile.follows_per_day * self.scale)):
            follower = rng.choice(self.peers(did)) if rng.random() < 0.05 else self.someone()
            self.schedule(self.any_time(), partial(self.follow, follower, did))
        for _ in range(self.count(profile.likes_per_post * 0.15 * self.scale)):
            self.schedule(self.any_time(), partial(self.public_mention, did))

    def plan_takeover(self, did: str) -> None:
        """Night: new handle, a burst of spam and reposts, history wiped; morning: recovery."""
        unknown = make_did(self.seed, "unknown")
        for i in range(max(2, round(3 * self.scale))):
            self.schedule(self.local(2.5 + i / 30), partial(self.propaganda, unknown))
        intruder = f"actu-verite-{make_did(self.seed, 'intruder')[-6:]}.bsky.social"
        self.schedule(self.local(2.85), partial(self.script.handle, did, intruder))
        for _ in range(max(8, round(30 * self.scale))):
            self.schedule(self.local(self.rng.uniform(3.0, 3.75)), partial(self.spam_post, did))
        self.schedule(self.local(3.8), partial(self.mass_delete, did))
        self.schedule(self.local(7.7), partial(self.recover, did))

    def deactivate(self, did: str) -> None:
        self.script.status(did, False, "deactivated")
        self.inactive.add(did)

    # -- the background --------------------------------------------------------------------------

    def plan_background(self) -> None:
        for i in range(20):  # posts from before the day, so likes can start at midnight
            old = self.start - timedelta(minutes=7 * i + 1)
            self.chatter.append(f"at://{self.crowd[i]}/app.bsky.feed.post/{tid(int(old.timestamp() * 1e6))}")
        for _ in range(round(BACKGROUND_PER_DAY * self.scale)):
            self.schedule(self.any_time(), self.background)

    def background(self) -> None:
        """Activity between people nobody tracks: the filter's daily bread."""
        rng = self.rng
        actor, roll = rng.choice(self.crowd), rng.random()
        if roll < 0.3:
            self.chatter_post(actor)
        elif roll < 0.8:
            self.chatter_likes.append(self.script.like(actor, rng.choice(self.chatter)))
        elif roll < 0.9:
            self.script.repost(actor, rng.choice(self.chatter))
        elif roll < 0.96 or not self.chatter_likes:
            self.script.follow(actor, rng.choice(self.crowd))
        else:
            self.script.delete(self.chatter_likes.pop(rng.randrange(len(self.chatter_likes))))

    def chatter_post(self, actor: str) -> None:
        rng, roll = self.rng, self.rng.random()
        reply_to = rng.choice(self.chatter) if roll < 0.3 else None
        quote = rng.choice(self.chatter) if 0.3 <= roll < 0.35 else None
        mentions = (rng.choice(self.crowd),) if roll > 0.92 else ()
        self.chatter.append(
            self.publish(actor, rng.choice(_CHATTER), reply_to=reply_to, quote=quote, mentions=mentions)
        )
