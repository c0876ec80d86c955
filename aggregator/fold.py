"""Fold stage: the admitted events of one apply → a plan of counter deltas grouped by key.

Third of the five stages of `Store.apply` (admit → dedup → fold → columns → writes); pure but for
one lookup of which deleted posts the store has seen. Times are parsed here, once. Grouping
inside the batch lets the store upsert each key once (one DuckDB `INSERT … ON CONFLICT`
that holds a key twice keeps only one row). Replays and duplicates never reach
the fold (positions.admit, identity.drop_known).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, repeat
from operator import attrgetter, eq
from typing import Final

from aggregator.counters import ACCOUNT_COUNTERS, COLUMN, POST_COUNTERS
from aggregator.positions import Admitted, drop_replayed
from aggregator.timeparse import MINUTE_US, parse_time_us, parse_times_us, us_to_datetime
from schemas import Action, Direction, Event, Kind

# the fold's interface; the counter names and drop_replayed are re-exported for its tests
__all__ = ["ACCOUNT_COUNTERS", "POST_COUNTERS", "RULES", "Deltas", "Plan", "drop_replayed", "fold", "plan"]

POST_KINDS: Final = frozenset({Kind.POST, Kind.REPLY, Kind.QUOTE})

# (account counter updates, post counter update or None), each update = (column index, delta)
Rule = tuple[tuple[tuple[int, int], ...], tuple[int, int] | None]


def _rules() -> dict[tuple[str, str, str], Rule]:
    a = COLUMN  # counter name -> index in an account row (counters.COUNTERS)
    p = {name: i for i, name in enumerate(POST_COUNTERS)}
    by, to, create, delete = Direction.BY, Direction.TO, Action.CREATE, Action.DELETE
    rules: dict[tuple[str, str, str], Rule] = {}
    for kind in POST_KINDS:
        rules[by, kind, create] = (((a["posts"], 1), (a["posts_created"], 1)), None)
        rules[by, kind, delete] = (
            ((a["posts"], -1), (a["posts_deleted"], 1), (a["deletes"], 1)),
            None,
        )
    for kind, made in (
        (Kind.REPOST, "reposts_made"),
        (Kind.LIKE, "likes_made"),
        (Kind.FOLLOW, "follows_made"),
    ):
        rules[by, kind, create] = (((a[made], 1),), None)
        rules[by, kind, delete] = (((a[made], -1), (a["deletes"], 1)), None)
    for kind, name, gross, undone in (
        (Kind.LIKE, "likes", "likes_received", "unlikes"),
        (Kind.REPOST, "reposts", "reposts_received", "unreposts"),
    ):
        rules[to, kind, create] = (((a[name], 1), (a[gross], 1)), (p[name], 1))
        rules[to, kind, delete] = (((a[name], -1), (a[undone], 1)), (p[name], -1))
    for kind, name in ((Kind.REPLY, "replies"), (Kind.QUOTE, "quotes")):
        rules[to, kind, create] = (((a[name], 1),), (p[name], 1))
    rules[to, Kind.MENTION, create] = (((a["mentions"], 1),), None)
    rules[to, Kind.NAME_MENTION, create] = (((a["mentions_by_name"], 1),), None)
    rules[to, Kind.FOLLOW, create] = (((a["follows_gained"], 1),), None)
    rules[to, Kind.FOLLOW, delete] = (((a["follows_lost"], 1),), None)
    return rules


RULES: Final = _rules()
# A post deleted that the store never saw created (made before tracking began): it is a
# delete (takeover signals count it) but must not push the post count below what was seen.
_UNSEEN_POST_DELETE: Final[Rule] = (
    ((COLUMN["posts_deleted"], 1), (COLUMN["deletes"], 1)),
    None,
)


def _deleted_post_uris(events: Sequence[Event]) -> set[str]:
    """URIs of the posts a batch deletes: the store says which of them it has seen."""
    deletes = compress(events, map(eq, repeat(Action.DELETE), map(_ACTION, events)))  # C-level
    return {e.uri for e in deletes if e.direction == Direction.BY and e.kind in POST_KINDS and e.uri}


_HISTORY: Final = frozenset({Kind.HANDLE, Kind.ACCOUNT})
_SUBJECT: Final = attrgetter("subject_did")
_TIME: Final = attrgetter("time")
_ACTION: Final = attrgetter("action")


@dataclass(slots=True)
class PostState:
    """Last known state of a tracked account's post within the batch (last event wins)."""

    uri: str
    did: str
    seen_us: int
    created_us: int | None = None
    text: str | None = None
    reply_parent: str | None = None
    reply_root: str | None = None
    quote_uri: str | None = None
    link_uri: str | None = None
    deleted: bool = False
    deleted_us: int | None = None


@dataclass(frozen=True, slots=True)
class HandleChange:
    did: str
    time_us: int
    seq: int
    idx: int
    handle: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    did: str
    time_us: int
    seq: int
    idx: int
    active: bool | None
    status: str | None


@dataclass(slots=True)
class Deltas:
    """Everything one batch changes, keyed like the store's tables; buckets in epoch seconds."""

    account: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    post: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    post_owner: dict[str, str] = field(default_factory=dict)
    posts: dict[str, PostState] = field(default_factory=dict)
    handles: list[HandleChange] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    dids: set[str] = field(default_factory=set)
    times_us: list[int] = field(default_factory=list)
    bad_times: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one apply writes, decided before the transaction opens."""

    admitted: Admitted
    deltas: Deltas
    ingested_us: int
    newest_event: datetime | None  # naive UTC: the store clock moves to it


def plan(admitted: Admitted, *, ingested_us: int, seen: Callable[[set[str]], Collection[str]]) -> Plan:
    """Fold the admitted events; `seen(uris)` says which of the posts they delete the store has
    seen created (asked once, only when the batch deletes posts)."""
    deleted = _deleted_post_uris(admitted.events)
    seen_posts = seen(deleted) if deleted else set()
    deltas = fold(admitted.events, fallback_us=ingested_us, seen_posts=seen_posts)
    newest = us_to_datetime(max(deltas.times_us)) if deltas.times_us else None
    return Plan(admitted, deltas, ingested_us, newest)


def fold(events: Sequence[Event], *, fallback_us: int, seen_posts: Collection[str] | None = None) -> Deltas:
    """Group the batch's effects by key; an unparsable `time` falls back to `fallback_us`.

    `seen_posts`: posts the store knows were created (None: treat every deleted post as seen).
    """
    out = Deltas()
    created: set[str] = set()
    out.times_us, out.bad_times = parse_times_us(list(map(_TIME, events)), fallback_us)
    out.dids.update(map(_SUBJECT, events))
    # one loop, names bound locally, the counting inlined (was a call per event): -12%
    rules_get, history, post_kinds, by = RULES.get, _HISTORY, POST_KINDS, Direction.BY
    account, account_get, width = out.account, out.account.get, len(ACCOUNT_COUNTERS)
    post, post_get, post_width, owner = out.post, out.post.get, len(POST_COUNTERS), out.post_owner
    check_posts, seen = seen_posts is not None, seen_posts if seen_posts is not None else ()
    for event, time_us in zip(events, out.times_us, strict=True):
        kind = event.kind
        rule = rules_get((event.direction, kind, event.action))
        post_by = kind in post_kinds and event.direction == by
        if post_by and check_posts:
            rule = _post_rule(event, rule, seen, created)
        if rule is not None:
            minute = time_us // MINUTE_US * 60
            key = (event.subject_did, minute)
            row = account_get(key)
            if row is None:
                row = account[key] = [0] * width
            for column, delta in rule[0]:
                row[column] += delta
            post_update = rule[1]
            if post_update is not None and (uri := event.subject_uri) is not None:
                prow = post_get((uri, minute))
                if prow is None:
                    prow = post[uri, minute] = [0] * post_width
                    owner.setdefault(uri, event.subject_did)
                prow[post_update[0]] += post_update[1]
        if post_by:
            _post_state(out, event, time_us)
        elif kind in history:
            _remember(out, event, time_us)
    return out


def _post_rule(event: Event, rule: Rule | None, seen: Collection[str], created: set[str]) -> Rule | None:
    if event.action != Action.DELETE:
        created.add(event.uri or "")
        return rule
    known = event.uri in seen or event.uri in created
    return rule if known else _UNSEEN_POST_DELETE


def _remember(out: Deltas, event: Event, time_us: int) -> None:
    """Post states, handle and status changes: the few events whose content is kept."""
    if event.kind in POST_KINDS:
        if event.direction == Direction.BY:
            _post_state(out, event, time_us)
    elif event.kind == Kind.HANDLE:
        out.handles.append(HandleChange(event.subject_did, time_us, event.seq, event.idx, event.handle))
    else:
        out.statuses.append(
            StatusChange(event.subject_did, time_us, event.seq, event.idx, event.active, event.status)
        )


def _post_state(out: Deltas, event: Event, time_us: int) -> None:
    if event.uri is None:
        return
    state = out.posts.get(event.uri)
    if state is None:
        state = out.posts[event.uri] = PostState(event.uri, event.subject_did, time_us)
    if event.action == Action.DELETE:
        state.deleted, state.deleted_us = True, time_us
        return
    state.deleted, state.deleted_us = False, None
    state.text = event.text
    state.reply_parent = event.subject_uri
    state.reply_root = event.reply_root
    state.quote_uri = event.quote_uri
    state.link_uri = event.link_uri
    if state.created_us is None and event.created_at is not None:
        state.created_us = parse_time_us(event.created_at, {})
