"""Filter stage for Jetstream: does this raw JSON frame possibly concern a tracked account?

Runs on the undecoded text, as streamer/filter.py does on raw CBOR: every DID a frame mentions
(repo, like/repost subject, reply parent/root, quote, mention, follow subject) is visible as a
`did:plc:`/`did:web:` token, so one regex pass and a set lookup settle a create or an update.
A delete carries only its path: it is kept only when its repo has remembered paths. #identity,
#account and #sync concern only tracked repos. The needles are whole JSON string tokens (an
unescaped `"` cannot occur inside a string), so they cannot be faked by a record's text, and any
surprise (an unknown kind, an error or #info frame, a frame cut short) goes to the decoder,
which counts it: a frame is skipped unread only when it is surely a commit or identity/account
event that names no tracked DID. With watch terms a post create by anyone (a whole
`"app.bsky.feed.post"` token: the collection or the record's `$type`, never a URI) is a
candidate: orjson and streamer/names.py judge its text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from streamer.filter import DELETES_ONLY, DID_TOKEN, MENTIONS, SKIP, FrameFilter
from streamer.names import NameMatcher

V2_TYPE: Final = "network.bsky.jetstream.subscribeEvents#"
_DELETE: Final = b'"delete"'
_POST: Final = b'"app.bsky.feed.post"'
_CREATE: Final = b'"create"'
_ENDS: Final = (b"}", b"}\n")  # a frame that does not end so was cut short: the decoder says so


def _token(text: str) -> bytes:
    return f'"{text}"'.encode()


_V2: Final = (_token(V2_TYPE + "commit"), tuple(_token(V2_TYPE + k) for k in ("identity", "account", "sync")))
_V1: Final = (_token("commit"), (_token("identity"), _token("account")))


class JetstreamFilter(FrameFilter):
    """FrameFilter's tracked and rememberer sets, read from Jetstream JSON (v2 or v1)."""

    def __init__(
        self,
        tracked_dids: Iterable[str],
        rememberers: Iterable[str] = (),
        *,
        v1: bool = False,
        names: NameMatcher | None = None,
    ) -> None:
        super().__init__(tracked_dids, rememberers, names=names)
        self._commit, self._repo_kinds = _V1 if v1 else _V2
        self._search = DID_TOKEN.search

    def classify(self, frame: bytes) -> int:
        """SKIP, DELETES_ONLY (a delete by a repo with remembered paths) or MENTIONS."""
        whole = frame.endswith(_ENDS)
        if whole and self._commit in frame:
            if not self._tracked.isdisjoint(self._findall(frame)):
                return MENTIONS
            if self._names is not None and _POST in frame and _CREATE in frame:
                return MENTIONS  # a post create by anyone: its text may name an account
            if _DELETE in frame:
                repo = self._search(frame)  # a delete has no record: its first DID is the repo
                if repo is not None and repo.group() in self._rememberers:
                    return DELETES_ONLY
            return SKIP
        if whole and any(kind in frame for kind in self._repo_kinds):
            return MENTIONS if not self._tracked.isdisjoint(self._findall(frame)) else SKIP
        return MENTIONS  # #info, error frames, unknown kinds, malformed input: the decoder counts them
