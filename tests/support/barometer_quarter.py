"""A generated quarter of 65 health establishments with known truth, for the report's tests and bench.

Seeded: the same arguments give the same events. Some accounts never post in the period
(inactive), many post at most once a week, a few have no follower count at all, a few only
the accounts file's baseline, a few a follower history that starts inside the period. Posts
sit on the period's edges (first and last second), before and after it; some are deleted;
accounts repost others' posts (not posts of theirs); engagement arrives after each post, some
of it undone (un-like, un-repost), some of it after the period's end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from aggregator.appview_sql import ProfileSnapshot
from aggregator.store import PartitionBatch, Store
from report.periods import Period
from schemas import Action, Direction, Event, Kind
from schemas.accounts import Account

CATEGORIES: Final = ("CHU", "CH", "Clinique", "ESPIC", "")
_B32: Final = "abcdefghijklmnopqrstuvwxyz234567"


@dataclass
class Quarter:
    period: Period
    accounts: list[Account]
    events: list[Event] = field(default_factory=list)
    # (did, time, followers): the follower history the AppView would have given
    followers: list[tuple[str, datetime, int]] = field(default_factory=list)
    baseline_only: set[str] = field(default_factory=set)  # follower count only in the accounts file
    no_followers: set[str] = field(default_factory=set)
    inactive: set[str] = field(default_factory=set)


def did_of(seed: int, n: int) -> str:
    rng = random.Random(seed * 100_003 + n)
    return "did:plc:" + "".join(rng.choice(_B32) for _ in range(24))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Builder:
    def __init__(self, quarter: Quarter, seed: int) -> None:
        self.q = quarter
        self.rng = random.Random(seed)
        self.raw: list[tuple[datetime, dict[str, object]]] = []
        self.n = 0
        self.public = [did_of(seed + 1, i) for i in range(600)]

    def add(self, when: datetime, **values: object) -> None:
        self.raw.append((when, values))

    def post(self, account: Account, created: datetime, reply_to: str | None = None) -> str:
        self.n += 1
        uri = f"at://{account.did}/app.bsky.feed.post/3p{self.n:09d}"
        kind = Kind.REPLY if reply_to else Kind.POST
        self.add(
            created + timedelta(seconds=self.rng.randint(0, 5)),
            kind=kind,
            action=Action.CREATE,
            direction=Direction.BY,
            subject_did=account.did,
            actor_did=account.did,
            uri=uri,
            created_at=iso(created),
            text=f"Publication {self.n} de {account.name} : info santé",
            subject_uri=reply_to,
            target_did=reply_to.split("/")[2] if reply_to else None,
        )
        return uri

    def engage(self, account: Account, uri: str, created: datetime, mean: float) -> None:
        for kind, share in ((Kind.LIKE, 1.0), (Kind.REPOST, 0.25), (Kind.REPLY, 0.12), (Kind.QUOTE, 0.05)):
            for _ in range(self._count(mean * share)):
                actor = self.rng.choice(self.public)
                when = created + timedelta(seconds=self.rng.expovariate(1 / 20_000))
                self.n += 1
                rkey = f"3e{self.n:09d}"
                collection = {Kind.LIKE: "like", Kind.REPOST: "repost"}.get(kind, "post")
                own = f"at://{actor}/app.bsky.feed.{collection}/{rkey}"
                common = {
                    "direction": Direction.TO,
                    "subject_did": account.did,
                    "actor_did": actor,
                    "subject_uri": uri,
                    "target_did": account.did,
                    "uri": own,
                }
                self.add(when, kind=kind, action=Action.CREATE, **common)
                if kind in (Kind.LIKE, Kind.REPOST) and self.rng.random() < 0.06:  # un-like, un-repost
                    self.add(
                        when + timedelta(hours=self.rng.uniform(0.1, 30)),
                        kind=kind,
                        action=Action.DELETE,
                        **common,
                    )

    def name_mention(self, account: Account, when: datetime) -> None:
        self.n += 1
        actor = self.rng.choice(self.public)
        self.add(
            when,
            kind=Kind.NAME_MENTION,
            action=Action.CREATE,
            direction=Direction.TO,
            subject_did=account.did,
            actor_did=actor,
            uri=f"at://{actor}/app.bsky.feed.post/3n{self.n:09d}",
            target_did=account.did,
            term=account.name.split(" — ")[0],
            text=f"Merci à {account.name}",
        )

    def _count(self, mean: float) -> int:
        return max(0, round(self.rng.gauss(mean, mean * 0.5))) if mean > 0 else 0

    def events(self) -> list[Event]:
        self.raw.sort(key=lambda item: item[0])
        return [
            Event(seq=i + 1, idx=0, time=iso(when), **values)  # type: ignore[arg-type]
            for i, (when, values) in enumerate(self.raw)
        ]


def generate_quarter(
    accounts_count: int = 65,
    first: date = date(2025, 1, 1),
    days: int = 90,
    seed: int = 15,
    engagement: float = 1.0,
) -> Quarter:
    """`accounts_count` establishments over `days` days from `first`; ~20 posts an account a quarter.
    `engagement` scales the likes, reposts, replies and quotes (the bench's big store uses less)."""
    period = Period(first, first + timedelta(days=days - 1), "quarter" if days == 90 else "range")
    accounts = [
        Account(
            did_of(seed, i),
            f"etab-{i:05d}.example.fr",
            f"Établissement {i:05d} — {'Hôpital' if i % 3 else 'Clinique'}",
            CATEGORIES[i % 5],
        )
        for i in range(accounts_count)
    ]
    q = Quarter(period, accounts)
    b = _Builder(q, seed)
    start = period.start.replace(tzinfo=UTC)
    end = period.end.replace(tzinfo=UTC)
    for i, account in enumerate(accounts):
        size = b.rng.choice((90, 250, 600, 1100, 2400)) + 7 * i
        _followers(q, b, account, i, size, start, end)
        _posts(q, b, account, i, size * engagement, start, end, days)
    for account in accounts[::9]:  # posts by the public naming an establishment (watch terms), some outside
        for _ in range(b.rng.randint(1, 6)):
            when = start + timedelta(seconds=b.rng.uniform(-86_400, (end - start).total_seconds() + 86_400))
            b.name_mention(account, when)
    if accounts:  # the edges: first and last instant of the period, and just outside
        a = accounts[7]
        for moment in (start, end - timedelta(seconds=1), start - timedelta(seconds=1), end):
            b.engage(a, b.post(a, moment), moment, 4)
    q.events = b.events()
    return q


def _followers(
    q: Quarter, b: _Builder, account: Account, i: int, size: int, start: datetime, end: datetime
) -> None:
    if i % 13 == 5:
        q.no_followers.add(account.did)
        return
    if i % 17 == 3:
        q.baseline_only.add(account.did)
        q.accounts[i] = Account(account.did, account.handle, account.name, account.category, "", size)
        return
    first_week = 3 if i % 11 == 4 else -2  # history starting inside the period: no followers_start
    for week in range(first_week, (end - start).days // 7 + 3):  # one snapshot after the end too
        when = start + timedelta(days=7 * week, hours=b.rng.choice((6, 18)))  # few distinct times: few writes
        q.followers.append(
            (account.did, when.replace(tzinfo=None), size + week * (i % 5) * 3 + b.rng.randint(0, 4))
        )
    if i % 19 == 2:  # a snapshot exactly at the period's start and end: "at or before" includes them
        q.followers.append((account.did, start.replace(tzinfo=None), size - 1))
        q.followers.append((account.did, end.replace(tzinfo=None), size + 500))


def _posts(
    q: Quarter,
    b: _Builder,
    account: Account,
    i: int,
    size: float,
    start: datetime,
    end: datetime,
    days: float,
) -> None:
    seconds = (end - start).total_seconds()
    if i % 11 == 0:
        q.inactive.add(account.did)
        count = 0
    elif i % 5 == 1 or i % 7 == 2:
        count = b.rng.randint(1, int(days / 7))  # at most one a week
    else:
        count = b.rng.randint(int(days / 7) + 2, int(days / 1.9))
    rate = b.rng.uniform(0.004, 0.03)
    for n in range(count):
        created = start + timedelta(seconds=b.rng.uniform(0, seconds))
        reply_to = (
            f"at://{b.rng.choice(b.public)}/app.bsky.feed.post/3x{n}" if b.rng.random() < 0.15 else None
        )
        uri = b.post(account, created, reply_to)
        boost = 12 if (i == 20 and n == 0) else 1  # one viral post
        b.engage(account, uri, created, size * rate * boost)
        if b.rng.random() < 0.04:  # deleted later: excluded, with its engagement
            b.add(
                created + timedelta(hours=3),
                kind=Kind.POST,
                action=Action.DELETE,
                direction=Direction.BY,
                subject_did=account.did,
                actor_did=account.did,
                uri=uri,
            )
    for _ in range(b.rng.randint(0, 4)):  # reposts of others' posts: not posts of the account
        when = start + timedelta(seconds=b.rng.uniform(0, seconds))
        b.add(
            when,
            kind=Kind.REPOST,
            action=Action.CREATE,
            direction=Direction.BY,
            subject_did=account.did,
            actor_did=account.did,
            subject_uri=f"at://{b.rng.choice(b.public)}/app.bsky.feed.post/3r",
            uri=f"at://{account.did}/app.bsky.feed.repost/3r{b.rng.randint(0, 10**9)}",
        )
    for _ in range(2):  # before and after the period: never counted
        for moment in (
            start - timedelta(days=b.rng.uniform(1, 20)),
            end + timedelta(days=b.rng.uniform(0.1, 5)),
        ):
            b.engage(account, b.post(account, moment), moment, size * rate)


def write_store(q: Quarter, path: Path, batch: int = 20_000, partition: str = "queue") -> None:
    """The quarter through the store's own API: accounts, events (Store.apply), follower history
    (Store.record_profiles, one call per snapshot time)."""
    with Store.open(path, memory_limit="1GB") as store:
        store.upsert_accounts(q.accounts)
        store.set_followers({a.did: a.followers for a in q.accounts if a.followers is not None})
        for offset in range(0, len(q.events), batch):
            store.apply({partition: PartitionBatch(q.events[offset : offset + batch])})
        by_time: dict[datetime, list[ProfileSnapshot]] = {}
        names = {a.did: a for a in q.accounts}
        for did, when, count in q.followers:
            a = names[did]
            by_time.setdefault(when, []).append(ProfileSnapshot(did, a.handle, a.name, count, 10, 100))
        for when, profiles in sorted(by_time.items()):
            store.record_profiles(profiles, when)


def accounts_csv(q: Quarter, path: Path) -> Path:
    lines = ["did,handle,name,category,region,followers"]
    for a in q.accounts:
        name = a.name.replace('"', '""')
        followers = "" if a.followers is None else a.followers
        lines.append(f'{a.did},{a.handle},"{name}",{a.category},{a.region},{followers}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
