"""Scripted firehose activity: readable scenarios for tests and the generated day of `demo`.

Each call appends one real wire frame (DAG-CBOR + CAR) with the next seq and returns what a
later call needs (a post URI, a like's path), so a scenario reads like what people did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from relay.car import account_frame, commit_frame, identity_frame, iso_time, tid

POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
REPOST = "app.bsky.feed.repost"
FOLLOW = "app.bsky.graph.follow"


class FrameScript:
    def __init__(
        self, first_seq: int = 1, start: datetime | None = None, step: timedelta = timedelta(seconds=1)
    ) -> None:
        self.frames: list[bytes] = []
        self.seq = first_seq - 1
        self.now = start or datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
        self.step = step
        self._rkeys = 0

    def _next(self) -> tuple[int, str]:
        self.seq += 1
        self.now += self.step
        return self.seq, iso_time(self.now)

    def _rkey(self) -> str:
        self._rkeys += 1
        return tid(int(self.now.timestamp() * 1_000_000) + self._rkeys)

    def at(self, when: datetime) -> FrameScript:
        """Move the clock (the next frame gets `when` + step)."""
        self.now = when
        return self

    def commit(self, repo: str, ops: list[tuple[str, str, dict[str, Any] | None]], filler: int = 0) -> None:
        seq, time = self._next()
        self.frames.append(commit_frame(seq, repo, ops, time=time, filler_blocks=filler))

    def create(self, repo: str, collection: str, record: dict[str, Any], filler: int = 0) -> str:
        """Create a record; returns its at:// URI."""
        path = f"{collection}/{self._rkey()}"
        record = {"$type": collection, "createdAt": iso_time(self.now), **record}
        self.commit(repo, [("create", path, record)], filler)
        return f"at://{repo}/{path}"

    def delete(self, uri: str) -> None:
        repo, path = uri[5:].split("/", 1)
        self.commit(repo, [("delete", path, None)])

    def post(
        self,
        author: str,
        text: str,
        *,
        reply_to: str | None = None,
        root: str | None = None,
        quote: str | None = None,
        mentions: tuple[str, ...] = (),
        link: str | None = None,
    ) -> str:
        record: dict[str, Any] = {"text": text, "langs": ["fr"]}
        if reply_to:
            record["reply"] = {"parent": _ref(reply_to), "root": _ref(root or reply_to)}
        if quote:
            record["embed"] = {"$type": "app.bsky.embed.record", "record": _ref(quote)}
        elif link:
            record["embed"] = {
                "$type": "app.bsky.embed.external",
                "external": {"uri": link, "title": link, "description": ""},
            }
        if mentions:
            record["facets"] = [
                {
                    "index": {"byteStart": 0, "byteEnd": 1},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
                for did in mentions
            ]
        return self.create(author, POST, record)

    def like(self, actor: str, post_uri: str) -> str:
        return self.create(actor, LIKE, {"subject": _ref(post_uri)})

    def repost(self, actor: str, post_uri: str) -> str:
        return self.create(actor, REPOST, {"subject": _ref(post_uri)})

    def follow(self, actor: str, subject_did: str) -> str:
        return self.create(actor, FOLLOW, {"subject": subject_did})

    def handle(self, did: str, handle: str | None) -> None:
        seq, time = self._next()
        self.frames.append(identity_frame(seq, did, handle, time=time))

    def status(self, did: str, active: bool, status: str | None = None) -> None:
        seq, time = self._next()
        self.frames.append(account_frame(seq, did, active, status, time=time))


def _ref(uri: str) -> dict[str, str]:
    return {"uri": uri, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
