"""Event factories for store and aggregator tests: one like, with what each test varies."""

from __future__ import annotations

from schemas import RELAY, Action, Direction, Event, Kind

ACCOUNT = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # the tracked account liked
FAN = "did:plc:ffffffffffffffffffffffff"  # who likes it


def like(
    seq: int,
    *,
    subject: str = ACCOUNT,
    actor: str = FAN,
    time: str = "2026-07-04T12:00:00Z",
    uri: str | None = None,
    source: str = RELAY,
) -> Event:
    """A like received by `subject`'s post p1, by `actor` (its record at `uri`)."""
    return Event(
        seq=seq,
        idx=0,
        kind=Kind.LIKE,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did=subject,
        actor_did=actor,
        time=time,
        uri=uri or f"at://{actor}/app.bsky.feed.like/{seq}",
        subject_uri=f"at://{subject}/app.bsky.feed.post/p1",
        target_did=subject,
        source=source,
    )
