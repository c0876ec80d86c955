"""Deleting a post the store never saw created does not push the post count below zero."""

from __future__ import annotations

from pathlib import Path

from aggregator.store import PartitionBatch, Store
from schemas import Action, Direction, Event, Kind
from schemas.accounts import Account

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def post(seq: int, action: Action, rkey: str) -> Event:
    return Event(
        seq=seq,
        idx=0,
        kind=Kind.POST,
        action=action,
        direction=Direction.BY,
        subject_did=A,
        actor_did=A,
        time="2026-11-02T10:00:00Z",
        uri=f"at://{A}/app.bsky.feed.post/{rkey}",
    )


def test_deleting_an_old_post_counts_as_a_delete_but_not_against_seen_posts(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        store.upsert_accounts([Account(A, "chu.fr", "CHU")])
        store.apply({"q": PartitionBatch([post(1, Action.CREATE, "3new"), post(2, Action.DELETE, "3old")])})
        store.apply({"q": PartitionBatch([post(3, Action.DELETE, "3older")])})
        _, rows = store.query("SELECT posts, posts_deleted, deletes FROM account_totals")
        assert rows == [(1, 2, 2)]
        store.apply({"q": PartitionBatch([post(4, Action.DELETE, "3new")])})
        _, rows = store.query("SELECT posts, posts_deleted, deletes FROM account_totals")
        assert rows == [(0, 3, 3)]
